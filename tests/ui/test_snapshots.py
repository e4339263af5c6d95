"""Snapshot tests of the main screens (pytest-textual-snapshot): 80×24 and wider, dark and
light. Update after an intended change with ``pytest tests/ui/test_snapshots.py
--snapshot-update`` and review the SVGs under ``tests/ui/__snapshots__``."""

from __future__ import annotations

from typing import Any

from textual.widgets import Input, OptionList, Select, Tree

from terminal.ui.app import SscardApp
from terminal.ui.screens.counter import OPERATIONS
from terminal.ui.widgets.card_panel import CardPanel
from terminal.ui.widgets.pinpad import PinPad
from terminal.ui.widgets.split import SplitPanel
from terminal.ui.widgets.workbench import ApduConsole
from tests.ui.conftest import FIXTURE_CARD, World, settle, type_text, wait_text, wait_until


def pharmacy_app(world: World, theme: str = "dark") -> SscardApp:
    stack = world.stack("pharmacy")
    assert stack.services.drawer is not None
    stack.services.drawer.insert(FIXTURE_CARD)
    return SscardApp(stack.services, mode="pharmacy", theme=theme, watch_cards=False)


async def fill_cart(pilot: Any) -> None:
    app = pilot.app
    await wait_until(pilot, lambda: app.screen.query_one(CardPanel).balance_fen is not None,
                     what="the holder")
    await pilot.press("f2")
    await type_text(pilot, "2*amxl")
    await wait_text(pilot, "阿莫西林胶囊")
    await pilot.press("enter")
    await type_text(pilot, "tbkl")
    await wait_text(pilot, "头孢克洛胶囊")
    await pilot.press("enter")
    await wait_until(pilot, lambda: app.screen.flow is not None and len(app.screen.flow.cart) == 2,
                     what="two cart lines")
    panel = app.screen.query_one(SplitPanel)
    await wait_until(pilot, lambda: panel.live and panel.split is not None
                     and panel.split.total == app.screen.flow.cart.total_fen,
                     what="the live split of the cart")
    app.screen.query_one("#search", Input).blur()
    await settle(pilot)


def test_pharmacy_cart_80x24(snap_compare: Any, world: World) -> None:
    assert snap_compare(pharmacy_app(world), terminal_size=(80, 24), run_before=fill_cart)


def test_pharmacy_cart_light_120x40(snap_compare: Any, world: World) -> None:
    assert snap_compare(pharmacy_app(world, "light"), terminal_size=(120, 40),
                        run_before=fill_cart)


def test_pharmacy_pin_pad_80x24(snap_compare: Any, world: World) -> None:
    async def run_before(pilot: Any) -> None:
        await fill_cart(pilot)
        await pilot.press("f8")
        await wait_until(pilot, lambda: isinstance(pilot.app.screen, PinPad), what="PIN pad")
        await wait_text(pilot, "tries left")
        await type_text(pilot, "246")
        await settle(pilot)

    assert snap_compare(pharmacy_app(world), terminal_size=(80, 24), run_before=run_before)


def test_hospital_identity_check_100x32(snap_compare: Any, world: World) -> None:
    stack = world.stack("hospital")
    assert stack.services.drawer is not None
    stack.services.drawer.insert(FIXTURE_CARD)
    app = SscardApp(stack.services, mode="hospital", watch_cards=False)

    async def run_before(pilot: Any) -> None:
        await pilot.press("f6")
        await wait_text(pilot, "Compare the patient", "1980-01-01")
        await settle(pilot)

    assert snap_compare(app, terminal_size=(100, 32), run_before=run_before)


def test_counter_pin_unlock_form_80x24(snap_compare: Any, world: World) -> None:
    stack = world.stack("counter")
    app = SscardApp(stack.services, mode="counter", watch_cards=False)

    async def run_before(pilot: Any) -> None:
        screen = pilot.app.screen
        screen.query_one("#counter-at", Select).value = "B37080000CCB"
        ops = screen.query_one("#counter-ops", OptionList)
        ops.focus()
        ops.highlighted = [op.key for op in OPERATIONS].index("unlock_pin")
        await settle(pilot)

    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)


def test_workbench_file_tree_100x30(snap_compare: Any, world: World) -> None:
    stack = world.stack("workbench")
    assert stack.services.drawer is not None and stack.services.workbench is not None
    stack.services.drawer.insert(FIXTURE_CARD)
    app = SscardApp(stack.services, mode="workbench", watch_cards=False)
    bench = stack.services.workbench

    async def run_before(pilot: Any) -> None:
        await wait_until(pilot, lambda: bench.reader is not None, what="connection")
        await wait_text(pilot, "ATR 3B")
        await pilot.press("f4")
        tree = pilot.app.screen.query_one("#files", Tree)
        node = next(n for n in _walk(tree.root) if n.data == ("SSSE", "EF05"))
        tree.move_cursor(node)
        await pilot.press("enter")
        await wait_text(pilot, "J00000017")
        await settle(pilot)

    assert snap_compare(app, terminal_size=(100, 30), run_before=run_before)


def _walk(node: Any) -> Any:
    yield node
    for child in node.children:
        yield from _walk(child)


def test_workbench_console_80x24(snap_compare: Any, world: World) -> None:
    stack = world.stack("workbench")
    assert stack.services.drawer is not None and stack.services.workbench is not None
    stack.services.drawer.insert(FIXTURE_CARD)
    app = SscardApp(stack.services, mode="workbench", watch_cards=False)
    bench = stack.services.workbench

    async def run_before(pilot: Any) -> None:
        await wait_until(pilot, lambda: bench.reader is not None, what="connection")
        await wait_text(pilot, "ATR 3B")
        await pilot.press("f3")
        for command in ("00A404000F7378312E73682EC9E7BBE1B1A3D5CF", "00A4020002EF05",
                        "00B2070000"):
            pilot.app.screen.query_one("#apdu-input", Input).value = command
            await pilot.press("enter")
            await wait_until(pilot, lambda c=command: bool(bench.history)
                             and bench.history[-1].command.hex().upper() == c, what=command)
        console = pilot.app.screen.query_one(ApduConsole)
        await wait_until(pilot, lambda: len(console.exchanges) == 3, what="three console rows")
        await settle(pilot)

    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)


def test_hospital_admission_80x24(snap_compare: Any, world: World) -> None:
    stack = world.stack("hospital")
    assert stack.services.drawer is not None
    stack.services.drawer.insert(FIXTURE_CARD)
    app = SscardApp(stack.services, mode="hospital", theme="light", watch_cards=False)

    async def run_before(pilot: Any) -> None:
        await pilot.press("f6")
        await wait_text(pilot, "Compare the patient", "1980-01-01")
        await settle(pilot)

    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)

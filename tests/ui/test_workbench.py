"""Pilot tests of the workbench: APDU console, file tree, live card events, trace record and
replay, on the in-process virtual reader with a fixture card."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from textual.widgets import DataTable, Input, TabbedContent, Tree

from card.cos import VirtualCard
from reader.virtual import USER_READER, VirtualTransport
from terminal.core.workbench import Workbench
from terminal.ui.app import SscardApp, TerminalServices
from terminal.ui.widgets.pinpad import PinPad
from terminal.ui.widgets.workbench import ApduConsole, TracePanel
from tests.ui.conftest import screen_text, wait_until

ROOT = Path(__file__).resolve().parents[2]
READER = USER_READER.format(n=0)
SELECT_SSSE = "00 A4 04 00 0F 7378312E73682EC9E7BBE1B1A3D5CF"


@pytest.fixture
def bench(tmp_path: Path) -> Iterator[tuple[Workbench, VirtualTransport, Path]]:
    image = tmp_path / "zhang-san.json"
    shutil.copyfile(ROOT / "fixtures" / "cards" / "zhang-san.json", image)
    transport = VirtualTransport()
    transport.add_reader(READER, VirtualCard.from_image(image, t0=True))
    workbench = Workbench([transport])
    yield workbench, transport, tmp_path
    workbench.close()


def make_app(bench: tuple[Workbench, VirtualTransport, Path]) -> SscardApp:
    workbench, transport, tmp = bench
    services = TerminalServices(workbench=workbench, reader=READER, host_label="none",
                                card_events=transport.wait_for_event, data_dir=tmp / "data")
    return SscardApp(services, mode="workbench")


async def send(pilot, app: SscardApp, text: str) -> None:  # type: ignore[no-untyped-def]
    console = app.screen.query_one(ApduConsole)
    before = len(console.exchanges)
    await pilot.press("f3")
    app.screen.query_one("#apdu-input", Input).value = text
    await pilot.press("enter")
    await wait_until(pilot, lambda: len(console.exchanges) > before, what=f"answer to {text}")


async def test_console_sends_and_decodes(bench: tuple[Workbench, VirtualTransport, Path]) -> None:
    app = make_app(bench)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_until(pilot, lambda: bench[0].reader == READER, what="connection")
        await send(pilot, app, SELECT_SSSE)
        console = app.screen.query_one(ApduConsole)
        exchange = console.exchanges[-1]
        assert exchange.name == "SELECT" and exchange.sw == 0x9000
        # the FCI is decoded as a TLV tree: 6F → 84 DF name (spec/card.md §3)
        tree = app.screen.query_one("#decoded", Tree)
        labels = [str(n.label) for n in _walk(tree.root)]
        assert any(label.startswith("6F") for label in labels)
        assert any("社会保障" in label for label in labels)
        await send(pilot, app, "00 A4 02 00 02 EF 05")
        await send(pilot, app, "00 B2 07 00 00")  # EF05 tag 07: card number (Le fixed by 6Cxx)
        last = console.exchanges[-1]
        assert last.ok and last.data[:1] == b"\x07"
        shown = screen_text(app)
        assert "READ RECORD" in shown and "9000 success" in shown
        assert app.screen.query_one("#history", DataTable).row_count == 3
        # Up recalls the commands typed before (newest first), Down goes back
        line = app.screen.query_one("#apdu-input", Input)
        await pilot.press("up")
        assert line.value == "00 B2 07 00 00"
        await pilot.press("up", "up")
        assert line.value == SELECT_SSSE
        await pilot.press("down")
        assert line.value == "00 A4 02 00 02 EF 05"


async def test_console_refuses_bad_hex_without_sending(
        bench: tuple[Workbench, VirtualTransport, Path]) -> None:
    app = make_app(bench)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_until(pilot, lambda: bench[0].reader == READER, what="connection")
        await pilot.press("f3")
        app.screen.query_one("#apdu-input", Input).value = "00 A4 ZZ"
        await pilot.press("enter")
        await wait_until(pilot, lambda: "not hex" in screen_text(app), what="error shown")
        assert bench[0].history == []


async def test_file_tree_reads_issuer_data(
        bench: tuple[Workbench, VirtualTransport, Path]) -> None:
    app = make_app(bench)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_until(pilot, lambda: bench[0].reader == READER, what="connection")
        await pilot.press("f4")
        assert app.screen.query_one(TabbedContent).active == "tab-files"
        tree = app.screen.query_one("#files", Tree)
        node = next(n for n in _walk(tree.root) if n.data == ("SSSE", "EF05"))
        tree.move_cursor(node)
        await pilot.press("enter")
        await wait_until(pilot, lambda: "EF05 issuer data" in screen_text(app)
                         and "07 " in screen_text(app), what="EF05 records")
        text = screen_text(app)
        # the card number record (tag 07, an9) of fixtures/cards/zhang-san.json
        assert "J00000017" in text


async def test_card_removal_and_insertion_are_seen_live(
        bench: tuple[Workbench, VirtualTransport, Path]) -> None:
    workbench, transport, _ = bench
    app = make_app(bench)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_until(pilot, lambda: workbench.reader == READER, what="connection")
        card = transport.remove(READER)
        await wait_until(pilot, lambda: workbench.reader is None, what="removal seen")
        assert "not connected" in screen_text(app)
        assert card is not None
        transport.insert(card, READER)
        await wait_until(pilot, lambda: workbench.reader == READER, what="insertion seen")
        await send(pilot, app, SELECT_SSSE)
        assert app.screen.query_one(ApduConsole).exchanges[-1].ok


async def test_trace_is_recorded_masked_and_replays(
        bench: tuple[Workbench, VirtualTransport, Path]) -> None:
    workbench, _, tmp = bench
    app = make_app(bench)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_until(pilot, lambda: workbench.reader == READER, what="connection")
        await pilot.press("f5")
        assert workbench.recording
        await send(pilot, app, SELECT_SSSE)
        await send(pilot, app, "00 A4 02 00 02 EF 05")
        await send(pilot, app, "00 20 00 00 03 24 68 10")  # VERIFY 246810: never written
        assert app.screen.query_one(ApduConsole).exchanges[-1].ok
        await pilot.press("up")  # nor kept for recall: Up brings back the SELECT EF05
        assert app.screen.query_one("#apdu-input", Input).value == "00 A4 02 00 02 EF 05"
        app.screen.query_one("#apdu-input", Input).value = ""
        await pilot.press("f5")
        assert not workbench.recording
        trace = app.last_trace
        assert trace is not None and trace.exists()
        text = trace.read_text(encoding="utf-8")
        assert text.startswith("# sscard-trace 1")
        assert "246810" not in text.replace(" ", "")
        assert "XXXXXX" in text.replace(" ", "")
        panel = app.screen.query_one(TracePanel)
        await wait_until(pilot, lambda: panel.lines_seen >= 6, what="trace panel lines")
        assert "246810" not in screen_text(app).replace(" ", "")
        # replay: the masked VERIFY needs the PIN, asked on the PIN pad
        await pilot.press("f6")
        app.screen.query_one(Input).value = str(trace)
        await pilot.press("enter")
        # the trace panel shows VERIFY lines too: wait for the pad itself to be on top
        await wait_until(pilot, lambda: isinstance(app.screen, PinPad), what="PIN pad")
        for digit in "246810":
            await pilot.press(digit)
        await pilot.press("enter")
        await wait_until(pilot, lambda: "replay:" in screen_text(app), what="replay report")
        assert "all responses as expected" in screen_text(app)
        assert tmp.exists()


def _walk(node):  # type: ignore[no-untyped-def]
    yield node
    for child in node.children:
        yield from _walk(child)


async def test_three_wrong_verifies_show_tries_left_then_blocked(
        bench: tuple[Workbench, VirtualTransport, Path]) -> None:
    """spec/card.md §7: 63Cx counts down, then 6983; the console names each answer."""
    app = make_app(bench)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_until(pilot, lambda: bench[0].reader == READER, what="connection")
        await send(pilot, app, SELECT_SSSE)
        answers = []
        for _ in range(4):
            await send(pilot, app, "00 20 00 00 03 11 11 11")
            answers.append(app.screen.query_one(ApduConsole).exchanges[-1].sw_text)
        assert [a[:4] for a in answers] == ["63C2", "63C1", "63C0", "6983"] or \
            [a[:4] for a in answers] == ["63C2", "63C1", "6983", "6983"]
        assert "tries left" in answers[0]
        text = screen_text(app)
        assert "6983" in text and "111111" not in text.replace(" ", "")

"""Pilot tests of the hospital desk on the real stack: admission with the photo check (U2)
and discharge settlement with the payer's choice (U3); failures: wrong PIN ×3, a card
reported lost, a dead host."""

from __future__ import annotations

from typing import Any

import pytest
from textual.widgets import Input

from ledger.client import HostClient
from terminal.ui.app import SscardApp
from terminal.ui.screens.dialogs import ChooseDialog
from terminal.ui.widgets.identity import IdentityPanel
from terminal.ui.widgets.photo import PhotoView
from terminal.ui.widgets.pinpad import PinPad
from terminal.ui.widgets.slip import SlipPreview
from tests.ui.conftest import (
    FIXTURE_CARD,
    FIXTURE_PIN,
    OPENING_BALANCE,
    HostServer,
    World,
    screen_text,
    type_text,
    wait_text,
    wait_until,
)


async def admit(pilot: Any, app: SscardApp) -> str:
    """Read the card (F6), check the identity, admit (F8); returns the stay id."""
    await pilot.press("f6")
    await wait_text(pilot, "张三", "370802198001011235", "1980-01-01", "male 男")
    await pilot.press("f8")
    # the flow's own "admitted: …" may show before the screen has filled in the stay
    await wait_text(pilot, "admitted 已登记")
    stay = app.screen.query_one("#stay", Input).value
    assert stay
    return stay


async def test_admission_shows_photo_and_identity_then_registers(world: World) -> None:
    stack = world.stack("hospital")
    assert stack.services.drawer is not None
    stack.services.drawer.insert(FIXTURE_CARD)
    app = SscardApp(stack.services, mode="hospital", watch_cards=False)
    async with app.run_test(size=(100, 32)) as pilot:
        await pilot.press("f6")
        text = await wait_text(pilot, "Compare the patient", "370802198001011235")
        assert "汉族" in text
        panel = app.screen.query_one(IdentityPanel)
        assert panel.identity is not None and panel.identity.photo_kind == "jpeg"
        photo = app.screen.query_one(PhotoView)
        assert photo.photo.startswith(b"\xff\xd8")
        assert "▀" in text  # drawn with half blocks, not the "no photo" placeholder
        assert "no photo" not in text and "unreadable" not in text
        await pilot.press("f8")
        text = await wait_text(pilot, "admitted", "入院登记成功")
        stay = app.screen.query_one("#stay", Input).value
    rows = world.run(lambda tx: tx.all("SELECT mdtrt_id, state FROM admissions"))
    assert [r[0] for r in rows] == [stay]


async def test_discharge_with_the_personal_account_prints_the_slip(world: World) -> None:
    stack = world.stack("hospital")
    assert stack.services.drawer is not None
    stack.services.drawer.insert(FIXTURE_CARD)
    app = SscardApp(stack.services, mode="hospital", watch_cards=False)
    async with app.run_test(size=(100, 32)) as pilot:
        await admit(pilot, app)
        await pilot.press("f2")
        await type_text(pilot, "2*amxl")
        await wait_text(pilot, "阿莫西林胶囊")
        await pilot.press("enter")
        await wait_text(pilot, "25.00")
        await pilot.press("f8")
        await wait_until(pilot, lambda: isinstance(app.screen, ChooseDialog), what="payer")
        await wait_text(pilot, "self-pay ¥25.00")
        await pilot.press("enter")  # personal account, rest in cash
        await wait_until(pilot, lambda: isinstance(app.screen, PinPad), what="PIN pad")
        await type_text(pilot, FIXTURE_PIN)
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, SlipPreview), what="slip")
        slip = await wait_text(pilot, "INPATIENT SETTLEMENT", "账户余额")
        assert "475.00" in next(ln for ln in slip.splitlines() if "账户余额" in ln)
    assert world.balances(FIXTURE_CARD) == (OPENING_BALANCE - 2500, 100000)
    assert world.books_problems() == []


@pytest.mark.slow
async def test_discharge_wrong_pin_three_times_locks_and_charges_nothing(world: World) -> None:
    stack = world.stack("hospital")
    assert stack.services.drawer is not None
    stack.services.drawer.insert(FIXTURE_CARD)
    app = SscardApp(stack.services, mode="hospital", watch_cards=False)
    async with app.run_test(size=(100, 32)) as pilot:
        await admit(pilot, app)
        await pilot.press("f2")
        await type_text(pilot, "amxl")
        await wait_text(pilot, "阿莫西林胶囊")
        await pilot.press("enter")
        await pilot.press("f8")
        await wait_until(pilot, lambda: isinstance(app.screen, ChooseDialog), what="payer")
        await pilot.press("enter")
        for left in (2, 1):
            await wait_until(pilot, lambda: isinstance(app.screen, PinPad), what="PIN pad")
            await type_text(pilot, "111111")
            await pilot.press("enter")
            await wait_text(pilot, f"wrong PIN: {left}")
        await type_text(pilot, "111111")
        await pilot.press("enter")
        await wait_text(pilot, "PIN locked", "bank counter")
    assert world.balances(FIXTURE_CARD) == (OPENING_BALANCE, 100000)
    assert world.settlements() == []


async def test_admission_of_a_card_reported_lost_is_refused(world: World) -> None:
    card = world.cards[FIXTURE_CARD]
    with HostClient.connect(world.url, fixmedins_code="B37080000CCB") as bank:
        bank.call("8103", {"data": {"card_no": card.card_no, "certno": card.ssn,
                                    "loss_type": "2"}})
    stack = world.stack("hospital")
    assert stack.services.drawer is not None
    stack.services.drawer.insert(FIXTURE_CARD)
    app = SscardApp(stack.services, mode="hospital", watch_cards=False)
    async with app.run_test(size=(100, 32)) as pilot:
        await pilot.press("f6")
        await wait_text(pilot, "reported lost")
        assert "admitted" not in screen_text(app)
    assert world.run(lambda tx: tx.all("SELECT mdtrt_id FROM admissions")) == []


async def test_admission_with_a_dead_host_says_so(world: World, host_server: HostServer) -> None:
    stack = world.stack("hospital", host=host_server.url)
    assert stack.services.drawer is not None
    stack.services.drawer.insert(FIXTURE_CARD)
    app = SscardApp(stack.services, mode="hospital", watch_cards=False)
    async with app.run_test(size=(100, 32)) as pilot:
        host_server.stop()
        await pilot.press("f6")
        text = await wait_text(pilot, "unreachable")
        assert "Traceback" not in text
    assert world.run(lambda tx: tx.all("SELECT mdtrt_id FROM admissions")) == []

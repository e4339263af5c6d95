"""Pilot tests of the hospital desk's discharge on the real stack: the bank PIN of a
separate-PIN card (spec/card.md §1; sun-li: SSSE PIN 202020, bank PIN 123456) and a card
pulled before the settlement's record reached it (CARD_PULLED: back and finish, or keep it
without the record)."""

from __future__ import annotations

from typing import Any

from textual.widgets import Input, Label

from terminal.ui.app import SscardApp
from terminal.ui.screens.dialogs import ChooseDialog
from terminal.ui.widgets.pinpad import PinPad
from terminal.ui.widgets.slip import SlipPreview
from tests.ui.conftest import (
    BANK_DEPOSIT,
    FIXTURE_CARD,
    FIXTURE_PIN,
    OPENING_BALANCE,
    World,
    type_text,
    wait_text,
    wait_until,
)

SEPARATE = "sun-li"
SSSE_PIN, BANK_PIN = "202020", "123456"


def pad_title(app: SscardApp) -> str:
    if not isinstance(app.screen, PinPad):
        return ""
    return str(app.screen.query_one("#pin-title", Label).render())


async def admit_and_bill(pilot: Any, app: SscardApp, name: str) -> str:
    """Admit the holder of the inserted card (F6, F8), bill 2 × amoxicillin, settle (F8)
    up to the payer's choice; returns the stay id."""
    await pilot.press("f6")
    await wait_text(pilot, name, "Compare the patient")
    await pilot.press("f8")
    await wait_text(pilot, "admitted 已登记")      # the screen's note, set with the stay
    stay = app.screen.query_one("#stay", Input).value
    await pilot.press("f2")
    await type_text(pilot, "2*amxl")
    await wait_text(pilot, "阿莫西林胶囊")
    await pilot.press("enter")
    await wait_text(pilot, "25.00")
    await pilot.press("f8")
    await wait_until(pilot, lambda: isinstance(app.screen, ChooseDialog), what="payer")
    return stay


async def test_discharge_by_bank_asks_a_separate_pin_cards_bank_pin(world: World) -> None:
    world.enrol(SEPARATE)
    stack = world.stack("hospital")
    assert stack.services.drawer is not None
    stack.services.drawer.insert(SEPARATE)
    app = SscardApp(stack.services, mode="hospital", watch_cards=False)
    async with app.run_test(size=(100, 32)) as pilot:
        await admit_and_bill(pilot, app, "孙丽")
        await pilot.press("4")  # all from the bank account
        await wait_until(pilot, lambda: isinstance(app.screen, PinPad), what="PIN pad")
        assert "bank PIN" not in pad_title(app)
        await type_text(pilot, SSSE_PIN)
        await pilot.press("enter")
        await wait_until(pilot, lambda: "bank PIN" in pad_title(app), what="bank PIN pad")
        await wait_text(pilot, "银行密码", "tries left 剩余次数 6")
        await type_text(pilot, "999999")
        await pilot.press("enter")
        await wait_text(pilot, "wrong bank PIN", "tries left 剩余次数 5")
        await type_text(pilot, BANK_PIN)
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, SlipPreview), what="slip")
        await wait_text(pilot, "INPATIENT SETTLEMENT")
    medical, bank = world.balances(SEPARATE)
    assert medical == OPENING_BALANCE and BANK_DEPOSIT - 2500 <= bank < BANK_DEPOSIT
    assert world.books_problems() == []


async def test_discharge_card_pulled_before_its_record_then_back(world: World) -> None:
    stack = world.stack("hospital")
    drawer = stack.services.drawer
    card = stack.services.card
    assert drawer is not None and card is not None
    drawer.insert(FIXTURE_CARD)
    check_log = card.supports_transaction_log
    pulls = [True]

    def pulled_first() -> bool:
        if pulls:  # the holder pulls the card once the settlement is done
            pulls.pop()
            drawer.remove()
        return bool(check_log())

    card.supports_transaction_log = pulled_first
    app = SscardApp(stack.services, mode="hospital", watch_cards=False)
    async with app.run_test(size=(100, 32)) as pilot:
        await admit_and_bill(pilot, app, "张三")
        await pilot.press("enter")  # personal account, rest in cash
        await wait_until(pilot, lambda: isinstance(app.screen, PinPad), what="PIN pad")
        await type_text(pilot, FIXTURE_PIN)
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, ChooseDialog), what="card back")
        await wait_text(pilot, "insert the card again", "without the card record")
        drawer.insert(FIXTURE_CARD)
        await pilot.press("2")  # the card is back: read it
        await wait_until(pilot, lambda: isinstance(app.screen, PinPad), what="PIN again")
        await type_text(pilot, FIXTURE_PIN)
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, SlipPreview), what="slip")
        slip = await wait_text(pilot, "INPATIENT SETTLEMENT")
        assert "not recorded on the card" not in slip
    assert world.balances(FIXTURE_CARD)[0] < OPENING_BALANCE
    assert [s[1] for s in world.settlements()] == ["settled"]
    assert world.books_problems() == []

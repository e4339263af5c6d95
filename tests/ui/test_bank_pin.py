"""Pilot test of the bank PIN of a separate-PIN card (spec/card.md §1) on the pharmacy
screen, on the real stack: sun-li's card has the SSSE PIN 202020 and the bank PIN 123456."""

from __future__ import annotations

from textual.widgets import Label

from terminal.ui.app import SscardApp
from terminal.ui.widgets.pinpad import PinPad
from terminal.ui.widgets.slip import SlipPreview
from tests.ui.conftest import BANK_DEPOSIT, OPENING_BALANCE, World, type_text, wait_text, wait_until
from tests.ui.test_pharmacy import add_amoxicillin, start_sale

SEPARATE = "sun-li"
SSSE_PIN, BANK_PIN = "202020", "123456"


def pad_title(app: SscardApp) -> str:
    if not isinstance(app.screen, PinPad):
        return ""
    return str(app.screen.query_one("#pin-title", Label).render())


async def test_a_separate_pin_card_is_asked_its_bank_pin_to_pay_by_bank(world: World) -> None:
    world.enrol(SEPARATE)
    stack = world.stack("pharmacy")
    app = SscardApp(stack.services, mode="pharmacy", watch_cards=False)
    async with app.run_test(size=(100, 32)) as pilot:
        await start_sale(pilot, world, app, SEPARATE)
        await add_amoxicillin(pilot, app)
        await pilot.press("f5")
        await wait_text(pilot, "Payment 支付方式", "全部银行卡")
        await pilot.press("4")  # all from the bank account
        await wait_text(pilot, "payer 支付方式", "bank")
        await pilot.press("f8")
        await wait_until(pilot, lambda: isinstance(app.screen, PinPad), what="PIN pad")
        assert "bank PIN" not in pad_title(app)
        await type_text(pilot, SSSE_PIN)
        await pilot.press("enter")
        # the bank application wants its own PIN: a second pad, labelled as such
        await wait_until(pilot, lambda: "bank PIN" in pad_title(app), what="bank PIN pad")
        await wait_text(pilot, "银行密码", "tries left 剩余次数 6")
        await type_text(pilot, SSSE_PIN)  # the SSSE PIN is not the bank PIN
        await pilot.press("enter")
        await wait_text(pilot, "wrong bank PIN", "tries left 剩余次数 5")
        assert "bank PIN" in pad_title(app)
        await type_text(pilot, BANK_PIN)
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, SlipPreview), what="the slip")
        slip = await wait_text(pilot, "银行账户")
        assert "25.00" in next(ln for ln in slip.splitlines() if "银行账户" in ln)
    assert world.balances(SEPARATE) == (OPENING_BALANCE, BANK_DEPOSIT - 2500)
    assert world.books_problems() == []

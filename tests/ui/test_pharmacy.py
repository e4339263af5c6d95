"""Pilot tests of the pharmacy checkout on the real stack (seed rules U1, U4, U5, C2, C3, L1):
what the screen shows, and what the books hold afterwards."""

from __future__ import annotations

from typing import Any

import pytest
from textual.widgets import Input

from ledger.client import HostClient
from terminal.ui.app import SscardApp
from terminal.ui.widgets.card_panel import CardPanel
from terminal.ui.widgets.pinpad import PinPad
from terminal.ui.widgets.slip import SlipPreview
from tests.ui.conftest import (
    FIXTURE_CARD,
    FIXTURE_PIN,
    LOCKED_CARD,
    OPENING_BALANCE,
    HostServer,
    SlowLink,
    World,
    notifications,
    screen_text,
    type_text,
    wait_text,
    wait_until,
)

AMOXICILLIN = "阿莫西林胶囊"  # 12.50 yuan, class 甲, pinyin AMXLJN


async def start_sale(pilot: Any, world: World, app: SscardApp, card: str = FIXTURE_CARD) -> None:
    """Insert ``card`` with the F9 drawer, wait for the holder, add 2 × amoxicillin."""
    await pilot.press("f9")
    await wait_text(pilot, f"insert {card}")
    assert app.services.drawer is not None
    names = list(app.services.drawer.state().cards)
    await pilot.press(str(names.index(card) + 1))  # the dialog numbers its choices
    await wait_until(pilot, lambda: app.screen.query_one(CardPanel).balance_fen is not None
                     or "refused" in screen_text(app) or "lost" in screen_text(app),
                     what="the holder on the card panel")


async def add_amoxicillin(pilot: Any, app: SscardApp, qty: int = 2) -> None:
    await pilot.press("f2")
    await type_text(pilot, f"{qty}*amxl")  # quantity prefix and pinyin initials
    await wait_text(pilot, AMOXICILLIN, "甲")
    await pilot.press("enter")
    await wait_until(pilot, lambda: app.screen.flow is not None
                     and len(app.screen.flow.cart) == 1, what="the cart line")


async def test_a_sale_shows_the_slip_with_the_balance_and_books_it(world: World) -> None:
    stack = world.stack("pharmacy")
    app = SscardApp(stack.services, mode="pharmacy", watch_cards=False)
    async with app.run_test(size=(100, 32)) as pilot:
        await wait_text(pilot, "请插卡")
        await start_sale(pilot, world, app)
        text = await wait_text(pilot, "张三", "¥500.00", "370802********1235")
        assert "职工医保" in text  # insurance type 310
        await add_amoxicillin(pilot, app)
        await wait_text(pilot, "25.00")
        await pilot.press("f8")
        await wait_until(pilot, lambda: isinstance(app.screen, PinPad), what="PIN pad")
        text = await wait_text(pilot, "tries left", "¥25.00")
        await type_text(pilot, FIXTURE_PIN)
        assert FIXTURE_PIN not in screen_text(app)  # masked: ● only
        assert "● ● ● ● ● ●" in screen_text(app)
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, SlipPreview), what="the slip")
        slip = await wait_text(pilot, "SETTLEMENT SLIP", "账户余额")
        assert AMOXICILLIN in slip and "J00****17" in slip
        balance_line = next(ln for ln in slip.splitlines() if "账户余额" in ln)
        assert "475.00" in balance_line
        await pilot.press("f8")  # keep the slip as a file (printable text)
        await wait_until(pilot, lambda: not isinstance(app.screen, SlipPreview), what="closed")
        saved = list((world.data / "slips").glob("slip-*.txt"))
        assert len(saved) == 1
        assert "账户余额" in saved[0].read_text(encoding="utf-8")
        assert app.screen.query_one(CardPanel).balance_fen == OPENING_BALANCE - 2500
    # the books: the personal account paid 25.00, nothing else moved, every entry balances
    assert world.balances(FIXTURE_CARD) == (OPENING_BALANCE - 2500, 100000)
    assert [(s[1], s[2]) for s in world.settlements()] == [("settled", 2500)]
    assert world.books_problems() == []


async def test_three_wrong_pins_lock_the_card_and_nothing_is_charged(world: World) -> None:
    stack = world.stack("pharmacy")
    app = SscardApp(stack.services, mode="pharmacy", watch_cards=False)
    async with app.run_test(size=(100, 32)) as pilot:
        await start_sale(pilot, world, app)
        await add_amoxicillin(pilot, app, qty=1)
        await pilot.press("f8")
        for tries_left in (3, 2, 1):
            await wait_until(pilot, lambda: isinstance(app.screen, PinPad), what="PIN pad")
            await wait_text(pilot, f"剩余次数 {tries_left}")
            await type_text(pilot, "000000")
            await pilot.press("enter")
            if tries_left > 1:
                await wait_text(pilot, f"wrong PIN: {tries_left - 1}")
        text = await wait_text(pilot, "PIN locked", "bank counter", "ID card")
        assert "free of charge" in text
        await pilot.press("escape")
        await wait_until(pilot, lambda: not isinstance(app.screen, PinPad), what="pad closed")
        assert app.screen.query_one(CardPanel).state == "pin_locked"
        assert "nothing was charged" in screen_text(app) or "locked" in screen_text(app)
    assert world.balances(FIXTURE_CARD) == (OPENING_BALANCE, 100000)
    assert world.settlements() == []


async def test_a_locked_card_is_refused_before_the_pin(world: World) -> None:
    world.enrol(LOCKED_CARD)
    stack = world.stack("pharmacy")
    app = SscardApp(stack.services, mode="pharmacy", watch_cards=False)
    async with app.run_test(size=(100, 32)) as pilot:
        await start_sale(pilot, world, app, card=LOCKED_CARD)
        await add_amoxicillin(pilot, app, qty=1)
        await pilot.press("f8")
        await wait_text(pilot, "PIN locked", "bank counter")
    assert world.settlements() == []


async def test_a_card_reported_lost_cannot_pay(world: World) -> None:
    card = world.cards[FIXTURE_CARD]
    with HostClient.connect(world.url, fixmedins_code="B37080000CCB") as bank:
        bank.call("8103", {"data": {"card_no": card.card_no, "certno": card.ssn,
                                    "loss_type": "1"}})
    stack = world.stack("pharmacy")
    app = SscardApp(stack.services, mode="pharmacy", watch_cards=False)
    async with app.run_test(size=(100, 32)) as pilot:
        await start_sale(pilot, world, app)
        text = await wait_text(pilot, "reported lost")
        assert "F7 new sale" in text
        # the sale cannot go on: searching and adding is refused
        await pilot.press("f2")
        await type_text(pilot, "amxl")
        await pilot.press("enter")
        assert app.screen.flow is not None and app.screen.flow.finished
    assert world.balances(FIXTURE_CARD) == (OPENING_BALANCE, 100000)
    assert world.settlements() == []


async def test_a_dead_host_is_reported_and_nothing_is_charged(
        world: World, host_server: HostServer) -> None:
    stack = world.stack("pharmacy", host=host_server.url)
    app = SscardApp(stack.services, mode="pharmacy", watch_cards=False)
    async with app.run_test(size=(100, 32)) as pilot:
        host_server.stop()
        await start_sale(pilot, world, app)
        text = await wait_text(pilot, "unreachable")
        assert "nothing was charged" in text or "try again" in text
        assert "Traceback" not in text
        assert app.screen.query_one("#search", Input) is not None
    assert world.balances(FIXTURE_CARD) == (OPENING_BALANCE, 100000)
    assert world.settlements() == []


async def test_card_events_from_the_monitor_drive_the_sale(world: World) -> None:
    """Insert/remove arrive from the reader monitor (a worker): inserting starts the sale,
    pulling the card before paying keeps the cart, re-inserting puts it back."""
    stack = world.stack("pharmacy", watch=True)
    drawer = stack.services.drawer
    assert drawer is not None
    app = SscardApp(stack.services, mode="pharmacy")
    async with app.run_test(size=(100, 32)) as pilot:
        await wait_text(pilot, "请插卡")
        drawer.insert(FIXTURE_CARD)
        await wait_text(pilot, "张三", "¥500.00")
        await add_amoxicillin(pilot, app)
        drawer.remove()
        await wait_text(pilot, "No card")
        drawer.insert(FIXTURE_CARD)
        await wait_until(pilot, lambda: app.screen.flow is not None
                         and not app.screen.flow.finished and len(app.screen.flow.cart) == 1,
                         what="the cart back on the new sale")
        assert app.screen.flow.cart.total_fen == 2500
        await wait_text(pilot, "张三", AMOXICILLIN)
    assert world.settlements() == []


async def test_theme_and_mode_switch_from_the_keyboard(world: World) -> None:
    stack = world.stack("pharmacy")
    app = SscardApp(stack.services, mode="pharmacy", theme="light", watch_cards=False)
    async with app.run_test(size=(80, 24)) as pilot:
        assert app.theme == "sscard-light"
        await pilot.press("ctrl+t")
        assert app.theme == "sscard-dark"
        await pilot.press("f10")
        await wait_text(pilot, "Mode 模式", "Workbench")
        await pilot.press("4")  # numbered choice: the workbench
        await wait_text(pilot, "Workbench 工作台", "Console")
        assert app.current_mode == "workbench"
        await pilot.press("f10")
        await pilot.press("2")
        await wait_text(pilot, "Hospital 住院", "Admission")


async def test_the_pin_pad_works_with_the_mouse(world: World) -> None:
    stack = world.stack("pharmacy")
    app = SscardApp(stack.services, mode="pharmacy", watch_cards=False)
    async with app.run_test(size=(100, 32)) as pilot:
        await start_sale(pilot, world, app)
        await add_amoxicillin(pilot, app, qty=1)
        await pilot.press("f8")
        await wait_until(pilot, lambda: isinstance(app.screen, PinPad), what="PIN pad")
        for digit in "2468199":  # the seventh digit is ignored: a PIN has six
            await pilot.click(f"#pin-{digit}")
        await pilot.click("#pin-back")  # a wrong digit: ⌫ takes it back
        await pilot.click("#pin-0")
        assert app.screen.digits == FIXTURE_PIN
        await pilot.click("#pin-ok")
        await wait_until(pilot, lambda: isinstance(app.screen, SlipPreview), what="the slip")
    assert world.balances(FIXTURE_CARD) == (OPENING_BALANCE - 1250, 100000)


async def test_paying_from_the_cards_bank_account(world: World) -> None:
    """C1/C2: the same card and the same PIN pay from the bank account (ARQC to the host)."""
    stack = world.stack("pharmacy")
    app = SscardApp(stack.services, mode="pharmacy", watch_cards=False)
    async with app.run_test(size=(100, 32)) as pilot:
        await start_sale(pilot, world, app)
        await add_amoxicillin(pilot, app)
        await pilot.press("f5")
        await wait_text(pilot, "Payment 支付方式", "全部银行卡")
        await pilot.press("4")  # all from the bank account
        await wait_text(pilot, "payer 支付方式", "bank")
        await pilot.press("f8")
        await wait_until(pilot, lambda: isinstance(app.screen, PinPad), what="PIN pad")
        await type_text(pilot, FIXTURE_PIN)
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, SlipPreview), what="the slip")
        slip = await wait_text(pilot, "银行账户")
        assert "25.00" in next(ln for ln in slip.splitlines() if "银行账户" in ln)
    assert world.balances(FIXTURE_CARD) == (OPENING_BALANCE, 100000 - 2500)
    assert world.books_problems() == []


async def test_a_sale_against_a_running_host_server(world: World,
                                                    host_server: HostServer) -> None:
    """``--host http://…``: the same sale through ``sscard host serve`` (signed requests)."""
    stack = world.stack("pharmacy", host=host_server.url)
    app = SscardApp(stack.services, mode="pharmacy", watch_cards=False)
    async with app.run_test(size=(100, 32)) as pilot:
        assert "127.0.0.1" in screen_text(app)
        await start_sale(pilot, world, app)
        await add_amoxicillin(pilot, app, qty=1)
        await pilot.press("f8")
        await wait_until(pilot, lambda: isinstance(app.screen, PinPad), what="PIN pad")
        await type_text(pilot, FIXTURE_PIN)
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, SlipPreview), what="the slip")
        await wait_text(pilot, "账户余额", "487.50")
    assert world.balances(FIXTURE_CARD) == (OPENING_BALANCE - 1250, 100000)


async def test_changing_the_payment_at_the_pin_pad_redoes_the_split(world: World) -> None:
    """The split shown is the host's trial for the chosen payment: F5 on the PIN pad
    changes it (a new 2101), and the pad shows the new split."""
    stack = world.stack("pharmacy")
    app = SscardApp(stack.services, mode="pharmacy", watch_cards=False)
    async with app.run_test(size=(100, 32)) as pilot:
        await start_sale(pilot, world, app)
        await add_amoxicillin(pilot, app)
        await pilot.press("f8")
        await wait_until(pilot, lambda: isinstance(app.screen, PinPad), what="PIN pad")
        await wait_text(pilot, "账户 ¥25.00", "现金 ¥0.00")
        await pilot.press("f5")
        await wait_text(pilot, "Payment 支付方式", "全部现金")
        await pilot.press("3")  # all in cash
        await wait_until(pilot, lambda: isinstance(app.screen, PinPad), what="PIN pad again")
        await wait_text(pilot, "账户 ¥0.00", "现金 ¥25.00")
        await type_text(pilot, FIXTURE_PIN)
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, SlipPreview), what="the slip")
        slip = await wait_text(pilot, "SETTLEMENT SLIP")
        assert any("现金" in ln and "25.00" in ln for ln in slip.splitlines())
        assert any("个人账户" in ln and "0.00" in ln and "25.00" not in ln
                   for ln in slip.splitlines())
    assert world.balances(FIXTURE_CARD) == (OPENING_BALANCE, 100000)


async def test_a_broken_card_image_is_reported_not_fatal(world: World) -> None:
    (world.data / "cards" / "wang-wu.json").write_text('{"format": "sscard-card", "sch',
                                                       encoding="utf-8")
    stack = world.stack("pharmacy")
    app = SscardApp(stack.services, mode="pharmacy", watch_cards=False)
    async with app.run_test(size=(100, 32)) as pilot:
        await pilot.press("f9")
        await wait_text(pilot, "insert wang-wu")
        names = list(stack.services.drawer.state().cards) if stack.services.drawer else []
        await pilot.press(str(names.index("wang-wu") + 1))
        await wait_until(pilot, lambda: any("cannot insert wang-wu" in n
                                            for n in notifications(app)), what="the error")
        assert app.is_running
        await start_sale(pilot, world, app)  # the terminal goes on with a good card
        await wait_text(pilot, "张三")


async def test_pulling_the_card_at_the_pin_pad_charges_nothing_and_keeps_the_cart(
        world: World) -> None:
    stack = world.stack("pharmacy", watch=True)
    drawer = stack.services.drawer
    assert drawer is not None
    app = SscardApp(stack.services, mode="pharmacy")
    async with app.run_test(size=(100, 32)) as pilot:
        drawer.insert(FIXTURE_CARD)
        await wait_text(pilot, "张三", "¥500.00")
        await add_amoxicillin(pilot, app)
        await pilot.press("f8")
        await wait_until(pilot, lambda: isinstance(app.screen, PinPad), what="PIN pad")
        drawer.remove()
        await wait_until(pilot, lambda: not isinstance(app.screen, PinPad), what="pad closed")
        await wait_text(pilot, "card removed before paying", "nothing was charged")
        drawer.insert(FIXTURE_CARD)
        await wait_until(pilot, lambda: app.screen.flow is not None
                         and len(app.screen.flow.cart) == 1, what="the cart back")
    assert world.settlements() == []
    assert world.balances(FIXTURE_CARD) == (OPENING_BALANCE, 100000)


@pytest.mark.slow
async def test_a_slow_host_shows_progress_and_the_screen_stays_live(
        world: World, slow_link: SlowLink) -> None:
    stack = world.stack("pharmacy", host=slow_link.url)
    app = SscardApp(stack.services, mode="pharmacy", theme="dark", watch_cards=False)
    async with app.run_test(size=(100, 32)) as pilot:
        slow_link.delay = 4.0  # every request now waits 4 s on the way to the host
        assert stack.services.drawer is not None
        stack.services.drawer.insert(FIXTURE_CARD)
        await pilot.press("f6")
        await wait_text(pilot, "the host is slow; still waiting", timeout=10)
        await pilot.press("ctrl+t")  # the terminal answers while the host is busy
        assert app.theme == "sscard-light"
        slow_link.delay = 0.0
        await wait_until(pilot, lambda: app.screen.query_one(CardPanel).balance_fen
                         == OPENING_BALANCE, timeout=20, what="the answer after all")


# ------------------------------------------------------------------ the live split


def split_shown(app: SscardApp) -> Any:
    from terminal.ui.widgets.split import SplitPanel

    return app.screen.query_one(SplitPanel)


async def wait_live(pilot: Any, app: SscardApp, total: int) -> Any:
    """Wait until the split panel shows the host's live trial of a cart of ``total`` fen."""
    await wait_until(pilot, lambda: split_shown(app).live and split_shown(app).split is not None
                     and split_shown(app).split.total == total, what=f"the live split of {total}")
    return split_shown(app).split


def host_trial(world: World, flow: Any, pay: str) -> Any:
    """The host's own trial (2101) of the flow's cart, asked by a separate client."""
    from terminal.core.adapters import LedgerHost
    from terminal.core.checkout import sale_input
    from terminal.core.model import PayChoice, Split

    choice = PayChoice.parse(pay)
    host = LedgerHost(HostClient.connect(world.url, fixmedins_code="P37080000002"))
    try:
        reply = host.call("2101", sale_input(flow.person, flow.card_info, flow.cart, choice,
                                              "P370800000022026112810000", flow.config,
                                              "2026-11-28 10:00:00"))
    finally:
        host.close()
    return Split.from_setlinfo(reply.output["setlinfo"], choice.rest)


async def test_the_split_is_live_as_the_cart_changes(world: World) -> None:
    """Once the card is identified the split panel follows the cart: the host's trial of
    the cart as it stands (account, cash, bank), before F8; nothing is booked."""
    def entries(tx: Any) -> tuple[int, int]:
        return (tx.one("SELECT COUNT(*) FROM entries")[0],
                tx.one("SELECT COUNT(*) FROM postings")[0])

    before = world.run(entries)
    stack = world.stack("pharmacy")
    app = SscardApp(stack.services, mode="pharmacy", watch_cards=False)
    async with app.run_test(size=(100, 32)) as pilot:
        await start_sale(pilot, world, app)
        await add_amoxicillin(pilot, app)
        split = await wait_live(pilot, app, 2500)
        assert split == host_trial(world, app.screen.flow, "account")
        text = await wait_text(pilot, "live trial", "¥25.00")
        account_line = next(ln for ln in text.splitlines() if "account 个人账户" in ln)
        assert "¥25.00" in account_line
        assert "¥0.00" in next(ln for ln in text.splitlines() if "cash 现金" in ln)
        assert app.screen.flow is not None and app.screen.flow.state.name == "CART"
        # more of it: the split follows
        await pilot.press("f2")
        await type_text(pilot, "tbkl")  # 头孢克洛胶囊, class 乙
        await wait_text(pilot, "头孢克洛胶囊")
        await pilot.press("enter")
        flow = app.screen.flow
        await wait_until(pilot, lambda: len(flow.cart) == 2, what="two lines")
        split = await wait_live(pilot, app, flow.cart.total_fen)
        assert split == host_trial(world, flow, "account")
        # all in cash: the account part goes to the cash line
        await pilot.press("f5")
        await wait_text(pilot, "Payment 支付方式", "全部现金")
        await pilot.press("3")
        await wait_until(pilot, lambda: split_shown(app).live
                         and split_shown(app).split.account == 0, what="the cash split")
        cash = split_shown(app).split
        assert cash == host_trial(world, flow, "cash") and cash.cash == flow.cart.total_fen
        # F8: the trial of the sale is the split that was shown
        await pilot.press("f8")
        await wait_until(pilot, lambda: isinstance(app.screen, PinPad), what="PIN pad")
        assert flow.trial == cash
        await pilot.press("escape")
        await wait_until(pilot, lambda: flow.finished, what="the sale cancelled")
    # the live trials wrote nothing: no settlement, no entry, no trial in the message log
    assert world.settlements() == []
    assert world.balances(FIXTURE_CARD) == (OPENING_BALANCE, 100000)
    assert world.run(entries) == before
    assert world.run(lambda tx: tx.all(
        "SELECT infno FROM requests WHERE infno IN ('2101', '2102')")) == []


async def test_a_dead_host_leaves_the_split_empty_with_a_note(
        world: World, host_server: HostServer) -> None:
    """The host dies after the card was identified: the cart goes on, the split shows "—"
    and a short note, no error dialog, nothing charged."""
    stack = world.stack("pharmacy", host=host_server.url)
    app = SscardApp(stack.services, mode="pharmacy", watch_cards=False)
    async with app.run_test(size=(100, 32)) as pilot:
        await start_sale(pilot, world, app)
        await add_amoxicillin(pilot, app, qty=1)
        await wait_live(pilot, app, 1250)
        host_server.stop()
        await add_amoxicillin(pilot, app, qty=1)
        await wait_until(pilot, lambda: "does not answer" in split_shown(app).note,
                         timeout=20, what="the note")
        text = screen_text(app)
        panel = split_shown(app)
        assert panel.split is None and not panel.live and panel.total_fen == 2500
        assert "account 个人账户" in text and "—" in text
        assert not any(n for n in app._notifications if n.severity == "error")
        assert app.screen.flow is not None and app.screen.flow.state.name == "CART"
        assert "Traceback" not in text
    assert world.settlements() == []


@pytest.mark.slow
async def test_a_slow_host_never_holds_up_the_cart(world: World, slow_link: SlowLink) -> None:
    """A live trial the host is slow to answer: "—" and a short note while it waits, the
    cart goes on meanwhile, and the split of the cart as it then stands follows."""
    stack = world.stack("pharmacy", host=slow_link.url)
    app = SscardApp(stack.services, mode="pharmacy", watch_cards=False)
    async with app.run_test(size=(100, 32)) as pilot:
        await start_sale(pilot, world, app)
        slow_link.delay = 3.0
        await add_amoxicillin(pilot, app, qty=1)
        await wait_until(pilot, lambda: "the host is slow" in split_shown(app).pending,
                         timeout=10, what="the slow note")
        assert split_shown(app).split is None and "—" in screen_text(app)
        slow_link.delay = 0.0
        await add_amoxicillin(pilot, app, qty=2)  # the screen is not busy: the cart goes on
        flow = app.screen.flow
        assert flow is not None and flow.cart.total_fen == 3750
        split = await wait_live(pilot, app, 3750)
        assert (split.account, split.cash) == (3750, 0)
    assert world.settlements() == []


async def test_the_carried_cart_gets_its_live_split_on_the_card_back(world: World) -> None:
    """The card is pulled before paying and put back: the new sale carries the cart and the
    split panel shows the host's trial of it again (never a split of the dropped sale)."""
    stack = world.stack("pharmacy", watch=True)
    drawer = stack.services.drawer
    assert drawer is not None
    app = SscardApp(stack.services, mode="pharmacy")
    async with app.run_test(size=(100, 32)) as pilot:
        drawer.insert(FIXTURE_CARD)
        await wait_text(pilot, "张三", "¥500.00")
        await add_amoxicillin(pilot, app)
        first = app.screen.flow
        await wait_live(pilot, app, 2500)
        drawer.remove()
        await wait_text(pilot, "No card")
        assert split_shown(app).split is None and not split_shown(app).live
        drawer.insert(FIXTURE_CARD)
        await wait_until(pilot, lambda: app.screen.flow is not first
                         and app.screen.flow is not None and len(app.screen.flow.cart) == 1,
                         what="the cart on the new sale")
        split = await wait_live(pilot, app, 2500)
        assert split == host_trial(world, app.screen.flow, "account")
    assert world.settlements() == []

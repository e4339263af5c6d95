"""Pilot tests of the service counter on the real stack: PIN unlock with the ID check (C3),
loss report (L1), the refusals (wrong ID number, wrong counter, dead host), the PIN change
on the PIN pad (C2)."""

from __future__ import annotations

from typing import Any

import pytest
from textual.widgets import Input, OptionList, Select

from terminal.ui.app import SscardApp
from terminal.ui.screens.counter import OPERATIONS, CounterScreen
from terminal.ui.widgets.pinpad import PinPad
from tests.ui.conftest import (
    FIXTURE_CARD,
    FIXTURE_PIN,
    LOCKED_CARD,
    LOCKED_PIN,
    HostServer,
    World,
    screen_text,
    type_text,
    wait_text,
    wait_until,
)

CCB = "B37080000CCB"


async def choose(pilot: Any, app: SscardApp, key: str, counter: str = CCB) -> None:
    app.screen.query_one("#counter-at", Select).value = counter
    ops = app.screen.query_one("#counter-ops", OptionList)
    ops.focus()
    ops.highlighted = [op.key for op in OPERATIONS].index(key)
    await wait_until(pilot, lambda: isinstance(app.screen, CounterScreen)
                     and app.screen.operation.key == key, what=f"the {key} form")


async def enter_pin(pilot: Any, app: SscardApp, pin: str) -> None:
    """Type ``pin`` on the next PIN pad and wait until that pad has closed."""
    await wait_until(pilot, lambda: isinstance(app.screen, PinPad) and not app.screen.locked,
                     what="PIN pad")
    pad = app.screen
    await type_text(pilot, pin)
    await pilot.press("enter")
    await wait_until(pilot, lambda: app.screen is not pad, what="the PIN pad to close")


async def enter_pins(pilot: Any, app: SscardApp, *pins: str) -> None:
    for pin in pins:
        await enter_pin(pilot, app, pin)


def fill(app: SscardApp, **values: str) -> None:
    for name, value in values.items():
        app.screen.query_one(f"#{name}", Input).value = value


async def test_pin_unlock_needs_the_id_and_unlocks_the_card(world: World) -> None:
    world.enrol(LOCKED_CARD)
    stack = world.stack("counter")
    assert stack.services.drawer is not None and stack.services.card is not None
    stack.services.drawer.insert(LOCKED_CARD)
    assert stack.services.card.pin_tries_left() == 0
    app = SscardApp(stack.services, mode="counter", watch_cards=False)
    async with app.run_test(size=(100, 32)) as pilot:
        await choose(pilot, app, "unlock_pin")
        assert "ID card required" in screen_text(app)
        fill(app, certno=world.cards[LOCKED_CARD].ssn)
        await pilot.press("f8")
        text = await wait_text(pilot, "PIN unlocked", "free of charge")
        assert "办理成功" in text
    # the card counts three tries again and the old PIN works (UNBLOCK keeps it)
    assert stack.services.card.pin_tries_left() == 3
    stack.services.card.verify_pin(LOCKED_PIN)


async def test_pin_unlock_with_another_persons_id_is_refused(world: World) -> None:
    world.enrol(LOCKED_CARD)
    stack = world.stack("counter")
    assert stack.services.drawer is not None and stack.services.card is not None
    stack.services.drawer.insert(LOCKED_CARD)
    app = SscardApp(stack.services, mode="counter", watch_cards=False)
    async with app.run_test(size=(100, 32)) as pilot:
        await choose(pilot, app, "unlock_pin")
        fill(app, certno=world.cards[FIXTURE_CARD].ssn)
        await pilot.press("f8")
        await wait_text(pilot, "does not match the card", "own ID card")
    assert stack.services.card.pin_tries_left() == 0


async def test_loss_report_blocks_the_card_at_the_host(world: World) -> None:
    card = world.cards[FIXTURE_CARD]
    stack = world.stack("counter")
    app = SscardApp(stack.services, mode="counter", watch_cards=False)
    async with app.run_test(size=(100, 32)) as pilot:
        await choose(pilot, app, "report_loss")
        fill(app, card_no=card.card_no)
        await pilot.press("f8")
        await wait_text(pilot, "missing", "ID number")  # the ID card is required (L1)
        fill(app, certno=card.ssn)
        await pilot.press("f8")
        await wait_text(pilot, "reported lost", "nobody can pay")
    assert world.card_state(FIXTURE_CARD) == "loss_temp"


async def test_pin_change_on_the_pin_pad(world: World) -> None:
    stack = world.stack("counter")
    assert stack.services.drawer is not None and stack.services.card is not None
    stack.services.drawer.insert(FIXTURE_CARD)
    app = SscardApp(stack.services, mode="counter", watch_cards=False)
    async with app.run_test(size=(100, 32)) as pilot:
        await choose(pilot, app, "change_pin")
        await pilot.press("f8")
        await enter_pins(pilot, app, FIXTURE_PIN, "135246", "135246")
        await wait_text(pilot, "PIN changed")
    stack.services.card.verify_pin("135246")


async def test_counter_with_a_dead_host_says_so(world: World, host_server: HostServer) -> None:
    card = world.cards[FIXTURE_CARD]
    stack = world.stack("counter", host=host_server.url)
    app = SscardApp(stack.services, mode="counter", watch_cards=False)
    async with app.run_test(size=(100, 32)) as pilot:
        host_server.stop()
        await choose(pilot, app, "report_loss", counter="S37080000001")
        fill(app, card_no=card.card_no, certno=card.ssn)
        await pilot.press("f8")
        await wait_until(pilot, lambda: "unreachable" in screen_text(app)
                         or "did not answer" in screen_text(app), what="the host failure")
        text = screen_text(app)
        assert "try again" in text and "Traceback" not in text
    assert world.card_state(FIXTURE_CARD) == "activated"


async def test_after_a_loss_report_the_card_cannot_pay(world: World) -> None:
    """L1: once reported lost at the counter, the card is refused at once (here: the
    pharmacy mode of the same terminal, looking the card up at the host)."""
    card = world.cards[FIXTURE_CARD]
    stack = world.stack("counter")
    assert stack.services.drawer is not None
    app = SscardApp(stack.services, mode="counter", watch_cards=False)
    async with app.run_test(size=(100, 32)) as pilot:
        await choose(pilot, app, "report_loss")
        fill(app, card_no=card.card_no, certno=card.ssn)
        await pilot.press("f8")
        await wait_text(pilot, "reported lost", "nobody can pay")
        await pilot.press("f10")
        await pilot.press("1")  # pharmacy
        await wait_text(pilot, "Pharmacy 药店收银")
        stack.services.drawer.insert(FIXTURE_CARD)
        await pilot.press("f6")
        await wait_text(pilot, "reported lost", "F7 new sale")
    assert world.balances(FIXTURE_CARD) == (50000, 100000)


async def test_activation_at_the_issuing_bank_changes_the_initial_pin(world: World) -> None:
    """A4: an ICBC card works only after activation at an ICBC counter, where the holder's
    ID is checked and the initial PIN is changed on the PIN pad."""
    li_si = world.enrol("li-si")
    assert world.card_state("li-si") == "issued"
    stack = world.stack("counter")
    assert stack.services.drawer is not None and stack.services.card is not None
    stack.services.drawer.insert("li-si")
    app = SscardApp(stack.services, mode="counter", watch_cards=False)
    async with app.run_test(size=(100, 32)) as pilot:
        await choose(pilot, app, "activate", counter="B3708000ICBC")
        fill(app, certno=li_si.ssn)
        await pilot.press("f8")
        await enter_pins(pilot, app, "123456", "808080", "808080")  # initial PIN, new twice
        await wait_text(pilot, "activated", "办理成功")
    assert world.card_state("li-si") == "activated"
    stack.services.card.verify_pin("808080")


async def test_old_card_migration_moves_the_balance_in_batches(world: World) -> None:
    """M2: after the cut-over, the office moves old medical card balances into the
    personal accounts; the books show it."""
    from ledger.client import HostClient

    card = world.cards[FIXTURE_CARD]
    with HostClient.connect(world.url, fixmedins_code="S37080000001") as office:
        office.register_old_card(card.psn_no, "OLD0000001", 12345)
        office.set_transition(False)
    stack = world.stack("counter")
    app = SscardApp(stack.services, mode="counter", watch_cards=False)
    async with app.run_test(size=(100, 32)) as pilot:
        await choose(pilot, app, "migrate", counter="S37080000001")
        fill(app, batch_size="10")
        await pilot.press("f8")
        await wait_text(pilot, "1 old cards migrated", "123.45")
    assert world.balances(FIXTURE_CARD) == (50000 + 12345, 100000)
    assert world.books_problems() == []


async def test_pin_reset_sets_a_new_pin_after_the_id_check(world: World) -> None:
    """C3: reset at the bank counter with the holder's ID card; free of charge."""
    locked = world.enrol(LOCKED_CARD)
    stack = world.stack("counter")
    assert stack.services.drawer is not None and stack.services.card is not None
    stack.services.drawer.insert(LOCKED_CARD)
    app = SscardApp(stack.services, mode="counter", watch_cards=False)
    async with app.run_test(size=(100, 32)) as pilot:
        await choose(pilot, app, "reset_pin")
        fill(app, certno=locked.ssn)
        await pilot.press("f8")
        await enter_pins(pilot, app, "424242", "424242")
        await wait_text(pilot, "PIN reset", "free of charge")
    stack.services.card.verify_pin("424242")


async def test_holder_data_change_at_the_office(world: World) -> None:
    """C7/A5: a job change is recorded; the card stays valid."""
    card = world.cards[FIXTURE_CARD]
    stack = world.stack("counter")
    app = SscardApp(stack.services, mode="counter", watch_cards=False)
    async with app.run_test(size=(100, 32)) as pilot:
        await choose(pilot, app, "data_change", counter="S37080000001")
        fill(app, psn_no=card.psn_no, certno=card.ssn, emp_name="济宁市某物流公司")
        await pilot.press("f8")
        await wait_text(pilot, "emp_name", "the card stays valid")
    assert world.card_state(FIXTURE_CARD) == "activated"


async def test_replacement_of_a_lost_card_writes_a_new_card_and_charges_the_fee(
        world: World) -> None:
    """L1: report the loss, then replace: a new card number, the old card dead at the host,
    the fee (30 yuan, policy) charged, the new card in the drawer."""
    card = world.cards[FIXTURE_CARD]
    stack = world.stack("counter")
    assert stack.services.drawer is not None
    before = set(stack.services.drawer.state().cards)
    app = SscardApp(stack.services, mode="counter", watch_cards=False)
    async with app.run_test(size=(100, 32)) as pilot:
        await choose(pilot, app, "report_loss")
        fill(app, card_no=card.card_no, certno=card.ssn)
        await pilot.press("f8")
        await wait_text(pilot, "reported lost")
        await choose(pilot, app, "replace")
        fill(app, card_no=card.card_no, certno=card.ssn)
        await pilot.press("f8")
        # a CCB card is delivered activated: its initial PIN is shown once for the envelope
        await wait_text(pilot, "PIN envelope", "Initial PIN")
        await pilot.press("escape")
        text = await wait_text(pilot, "new card", "no longer")
        assert "30.00" in text
    assert world.card_state(FIXTURE_CARD) == "replaced"
    new = set(stack.services.drawer.state().cards) - before
    assert len(new) == 1 and next(iter(new)).startswith(FIXTURE_CARD)
    assert world.books_problems() == []


async def test_balance_enquiry_at_the_bank_counter(world: World) -> None:
    """U5: a bank counter can tell the medical-account balance (F6 reads the card)."""
    stack = world.stack("counter")
    assert stack.services.drawer is not None
    stack.services.drawer.insert(FIXTURE_CARD)
    app = SscardApp(stack.services, mode="counter", watch_cards=False)
    async with app.run_test(size=(100, 32)) as pilot:
        app.screen.query_one("#counter-at", Select).value = CCB
        await pilot.press("f6")
        text = await wait_text(pilot, "medical account 500.00 yuan")
        assert "bank account 1000.00" in text
        assert app.screen.query_one("#card_no", Input).value == world.cards[FIXTURE_CARD].card_no


@pytest.mark.slow
async def test_three_wrong_old_pins_at_a_pin_change_lock_the_card(world: World) -> None:
    """C3 at the counter: the wrong old PIN three times locks the card; the pad says what
    the holder must do (ID card at the bank counter, free)."""
    stack = world.stack("counter")
    assert stack.services.drawer is not None and stack.services.card is not None
    stack.services.drawer.insert(FIXTURE_CARD)
    app = SscardApp(stack.services, mode="counter", watch_cards=False)
    async with app.run_test(size=(100, 32)) as pilot:
        await choose(pilot, app, "change_pin")
        await pilot.press("f8")
        for attempt in range(3):
            await enter_pins(pilot, app, "000000", "135246", "135246")
            if attempt < 2:
                await wait_text(pilot, f"wrong PIN: {2 - attempt}")
        await wait_text(pilot, "PIN locked", "bank counter", "free of charge")
    assert stack.services.card.pin_tries_left() == 0

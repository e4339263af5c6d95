"""Service-counter operations against fake ports (C3, A3–A5, L1, L2, M2, U5)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from terminal.core.checkout import Checkout, CheckoutState, run_checkout
from terminal.core.counter import (
    ActivateCard,
    BalanceEnquiry,
    ChangeHolderData,
    ChangePin,
    CounterState,
    LiftLoss,
    MigrateOldCards,
    ReplaceCard,
    ReportLoss,
    ResetPin,
    UnlockPin,
)
from terminal.core.machine import Awaiting, FailureKind
from terminal.core.ports import CardInfo
from tests.core.conftest import StepClock
from tests.core.fakes import PIN, FakeCard, FakeCatalogue, FakeHost, card_info

K = CounterState
ID = "370802198101011116"


def test_change_pin_with_rules_and_tries(card: FakeCard, host: FakeHost) -> None:
    flow = ChangePin(host, card)
    assert flow.run_until_input() is K.PIN and flow.awaiting is Awaiting.PIN
    flow.enter_pins(PIN, "654321", "654320")
    assert flow.state is K.PIN and "differ" in flow.message
    flow.enter_pins("000000", "654321", "654321")
    assert flow.state is K.PIN and flow.pin_tries_left == 2
    flow.enter_pins(PIN, "654321", "654321")
    assert flow.run_until_input() is K.DONE
    card.verify_pin("654321")  # the card took the new PIN
    assert host.calls == []


def test_activation_changes_the_pin_then_tells_the_host(card: FakeCard) -> None:
    host = FakeHost(card_state="issued")
    flow = ActivateCard(host, card)
    assert flow.run_until_input() is K.CHECK_ID
    flow.provide_id(ID)
    assert flow.state is K.PIN
    flow.enter_pins(PIN, PIN, PIN)
    assert flow.state is K.PIN and "differ from the old" in flow.message
    flow.enter_pins(PIN, "246810", "246810")
    assert flow.run_until_input() is K.DONE and host.card_state == "activated"
    assert host.counter_ops == [("8102", {"card_no": "X00000019", "certno": ID,
                                          "pin_changed": True})]


def test_activation_of_a_ccb_card_that_came_activated_is_refused(card: FakeCard,
                                                                 host: FakeHost) -> None:
    flow = ActivateCard(host, card)
    flow.run_until_input()
    flow.provide_id(ID)
    flow.enter_pins(PIN, "246810", "246810")
    assert flow.run_until_input() is K.FAILED
    assert flow.failure is not None and "not waiting for activation" in flow.failure.message


def test_wrong_id_stops_the_reset(card: FakeCard, host: FakeHost) -> None:
    flow = ResetPin(host, card)
    flow.run_until_input()
    flow.provide_id("110105194912310029")
    assert flow.state is K.FAILED and flow.failure is not None
    assert flow.failure.kind is FailureKind.WRONG_CARD and host.calls == []


def test_locked_card_reset_at_the_counter_then_sells_again(
        card: FakeCard, host: FakeHost, catalogue: FakeCatalogue, clock: StepClock) -> None:
    sale = run_checkout(Checkout(card, host, catalogue, clock=clock), [("A001", 1)],
                        lambda tries: "999999")
    assert sale.state is CheckoutState.FAILED and card.tries_left == 0
    flow = ResetPin(host, card)
    flow.run_until_input()
    flow.provide_id(ID.lower())
    assert flow.run_until_input() is K.PIN
    flow.enter_pins("135790", "135790")
    assert flow.state is K.DONE and "free of charge" in flow.message
    assert host.counter_ops[-1] == ("8106", {"card_no": "X00000019", "certno": ID,
                                             "op": "reset"})
    card.insert()
    again = run_checkout(Checkout(card, host, catalogue, clock=clock), [("A001", 1)],
                         lambda tries: "135790")
    assert again.state is CheckoutState.DONE


def test_unlock_keeps_the_pin(card: FakeCard, host: FakeHost) -> None:
    card.tries_left = 0
    flow = UnlockPin(host, card)
    flow.run_until_input()
    flow.provide_id(ID)
    assert flow.run_until_input() is K.DONE
    assert card.tries_left == 3 and host.counter_ops[-1][1]["op"] == "unlock"
    card.verify_pin(PIN)


def test_loss_report_blocks_payments_and_lift_restores(
        card: FakeCard, host: FakeHost, catalogue: FakeCatalogue, clock: StepClock) -> None:
    flow = ReportLoss(host, "X00000019", ID)
    assert flow.run_until_input() is K.DONE and "reported lost" in flow.message
    sale = run_checkout(Checkout(card, host, catalogue, clock=clock), [("A001", 1)],
                        lambda t: PIN)
    assert sale.failure is not None and sale.failure.kind is FailureKind.CARD_STATUS
    assert LiftLoss(host, "X00000019", ID).run_until_input() is K.DONE
    sale = run_checkout(Checkout(card, host, catalogue, clock=clock), [("A001", 1)],
                        lambda t: PIN)
    assert sale.state is CheckoutState.DONE


class Printer:
    def __init__(self) -> None:
        self.written: list[Mapping[str, Any]] = []

    def write_card(self, cardinfo: Mapping[str, Any], holder: Mapping[str, Any]) -> CardInfo:
        self.written.append(cardinfo)
        return card_info(str(cardinfo["card_no"]))


@pytest.mark.parametrize("reason,fee", [("lost", "30.00"), ("damaged_by_holder", "30.00"),
                                        ("damaged_not_holder", "free")])
def test_replacement_writes_a_new_card(host: FakeHost, reason: str, fee: str) -> None:
    printer = Printer()
    flow = ReplaceCard(host, printer, "X00000019", ID, reason=reason,
                       certificate_no="C1" if fee == "free" else "")
    assert flow.run_until_input() is K.DONE
    assert printer.written[0]["card_no"] == "B12345678"
    assert "B12345678" in flow.message and "X00000019 no longer works" in flow.message
    assert fee in flow.message
    assert host.card_state == "replaced"


def test_replacement_refused_writes_nothing(host: FakeHost) -> None:
    printer = Printer()
    host.fault("8105", "refuse")
    flow = ReplaceCard(host, printer, "X00000019", ID, reason="lost")
    assert flow.run_until_input() is K.FAILED and printer.written == []


def test_holder_data_change(host: FakeHost) -> None:
    flow = ChangeHolderData(host, "P0001", ID, {"psn_name": "张叁"})
    assert flow.run_until_input() is K.DONE and "free replacement" in flow.message
    flow = ChangeHolderData(host, "P0001", ID, {"emp_name": "新单位"})
    assert flow.run_until_input() is K.DONE and "stays valid" in flow.message


def test_migration_runs_in_batches_with_progress(host: FakeHost) -> None:
    host.old_cards = 25
    seen: list[str] = []
    flow = MigrateOldCards(host, batch_size=10)
    flow.subscribe(lambda e: seen.append(e.message))
    assert flow.run_until_input() is K.DONE
    assert flow.batches == 3 and flow.migrated == 25 and flow.amount_fen == 2500
    assert "batch 1: 10 old cards, 15 left" in seen


def test_balance_enquiry(card: FakeCard, host: FakeHost) -> None:
    flow = BalanceEnquiry(host, card)
    assert flow.run_until_input() is K.DONE
    assert flow.message == "medical account 500.00 yuan, bank account 1000.00 yuan"

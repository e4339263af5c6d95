"""The pharmacy checkout state machine against fake ports: every path of the issue."""

from __future__ import annotations

import pytest

from terminal.core.checkout import (
    CancelSale,
    CancelState,
    Checkout,
    CheckoutState,
    RecordState,
    run_checkout,
)
from terminal.core.machine import Awaiting, FailureKind, FlowStateError
from terminal.core.model import PayChoice, RestBy, TerminalConfig
from terminal.core.ports import TxKind
from terminal.core.slip import render
from tests.core.conftest import StepClock
from tests.core.fakes import PIN, FakeCard, FakeCatalogue, FakeHost

S = CheckoutState


def make(card: FakeCard, host: FakeHost, catalogue: FakeCatalogue, config: TerminalConfig,
         clock: StepClock, pay: PayChoice | None = None) -> Checkout:
    return Checkout(card, host, catalogue, config, pay=pay, clock=clock)


def to_pin(flow: Checkout, *items: tuple[str, int]) -> None:
    assert flow.run_until_input() is S.CART
    for code, qty in items or (("A001", 2), ("C003", 1)):
        flow.add_item(code, qty)
    flow.confirm_cart()
    assert flow.run_until_input() is S.PIN


@pytest.fixture
def flow(card: FakeCard, host: FakeHost, catalogue: FakeCatalogue, config: TerminalConfig,
         clock: StepClock) -> Checkout:
    return make(card, host, catalogue, config, clock)


def nothing_charged(host: FakeHost) -> None:
    assert host.sales() == []
    assert (host.balance, host.bank) == host.initial
    assert host.books_balance()


# ------------------------------------------------------------------ the happy path


def test_whole_sale_with_the_account(flow: Checkout, card: FakeCard, host: FakeHost) -> None:
    seen: list[tuple[str, str]] = []
    flow.subscribe(lambda e: seen.append((e.previous.name if e.previous else "", e.state.name)))
    to_pin(flow)
    assert flow.awaiting is Awaiting.PIN
    assert flow.trial is not None and flow.trial.total == 2 * 1250 + 560
    flow.enter_pin(PIN)
    assert flow.run_until_input() is S.DONE
    r = flow.result
    assert r is not None
    assert (r.split.total, r.split.fund, r.split.account, r.split.cash) == (3060, 0, 3060, 0)
    assert r.split.balance_after == 50000 - 3060
    assert host.balance["P0001"] == 50000 - 3060 and host.books_balance()
    assert r.recorded_on_card and len(card.log) == 1
    rec = card.log[0]
    assert (rec.kind, rec.account_fen, rec.selfpay_fen, rec.fund_fen) == (
        TxKind.SETTLEMENT, 0, 3060, 0)
    assert rec.terminal == "370800000042"
    assert [s for _, s in seen][-5:] == ["PIN", "SETTLE", "RECORD", "SLIP", "DONE"]
    text = render(r.slip)
    assert r.setl_id in text and "X00****19" in text and "469.40" in text


def test_account_short_rest_in_cash(card: FakeCard, catalogue: FakeCatalogue,
                                    config: TerminalConfig, clock: StepClock) -> None:
    host = FakeHost(balance=1000)
    flow = make(card, host, catalogue, config, clock)
    to_pin(flow)
    flow.enter_pin(PIN)
    flow.run_until_input()
    assert flow.result is not None
    s = flow.result.split
    assert (s.account, s.cash, s.bank, s.balance_after) == (1000, 2060, 0, 0)


def test_rest_from_the_bank_account_rides_in_the_2102(
        card: FakeCard, host: FakeHost, catalogue: FakeCatalogue, config: TerminalConfig,
        clock: StepClock) -> None:
    flow = make(card, host, catalogue, config, clock, pay=PayChoice(False, RestBy.BANK))
    to_pin(flow)
    flow.enter_pin(PIN)
    assert flow.step() is S.BANK_AUTH or flow.state is S.SETTLE
    flow.run_until_input()
    assert flow.state is S.DONE and flow.result is not None
    assert flow.result.split.bank == 3060 and flow.result.split.account == 0
    assert host.bank["P0001"] == 100000 - 3060 and host.balance["P0001"] == 50000
    settle_input = next(i for n, i in host.calls if n == "2102")
    assert settle_input["druginfo"]["bank_auth"]["cdol1"][:12] == "000000003060"
    assert settle_input["druginfo"]["cash_src"] == "bank"
    assert host.books_balance()


def test_payment_change_at_the_pin_reruns_the_trial(flow: Checkout, host: FakeHost) -> None:
    to_pin(flow)
    flow.set_payment(PayChoice.parse("cash"))
    assert flow.state is S.TRIAL
    assert flow.run_until_input() is S.PIN
    assert flow.trial is not None and flow.trial.cash == 3060 and flow.trial.account == 0
    assert [n for n, _ in host.calls].count("2101") == 2


# ------------------------------------------------------------------ stops before the sale


@pytest.mark.parametrize("state,reason", [
    ("lost", "reported lost"),
    ("replaced", "replaced"),
    ("blocked", "blocked"),
    ("issued", "not been activated"),
])
def test_card_status_stops_at_the_lookup(card: FakeCard, catalogue: FakeCatalogue,
                                         config: TerminalConfig, clock: StepClock,
                                         state: str, reason: str) -> None:
    host = FakeHost(card_state=state)
    flow = make(card, host, catalogue, config, clock)
    assert flow.run_until_input() is S.FAILED
    assert flow.failure is not None and flow.failure.kind is FailureKind.CARD_STATUS
    assert reason in flow.failure.message
    assert [n for n, _ in host.calls] == ["1101"]


def test_host_refusing_the_lookup_shows_its_message(flow: Checkout, host: FakeHost) -> None:
    host.card_state = "refuse"
    assert flow.run_until_input() is S.FAILED
    assert flow.failure is not None and "card not found" in flow.failure.message


def test_a_card_that_is_not_genuine_stops(catalogue: FakeCatalogue, host: FakeHost,
                                          config: TerminalConfig, clock: StepClock) -> None:
    flow = make(FakeCard(genuine=False), host, catalogue, config, clock)
    assert flow.run_until_input() is S.FAILED
    assert flow.failure is not None and flow.failure.kind is FailureKind.CARD_NOT_GENUINE
    assert flow.failure.driver_code == -21
    assert host.calls == []


def test_unknown_item_and_empty_cart(flow: Checkout) -> None:
    flow.run_until_input()
    with pytest.raises(ValueError, match="not in the catalogue"):
        flow.add_item("ZZZ")
    with pytest.raises(FlowStateError, match="empty"):
        flow.confirm_cart()
    flow.add_item("A001", 3)
    flow.set_qty("A001", 1)
    assert flow.cart.total_fen == 1250


def test_refused_trial_goes_back_to_the_cart(flow: Checkout, host: FakeHost) -> None:
    host.fault("2101", "refuse")
    flow.run_until_input()
    flow.add_item("A001")
    flow.confirm_cart()
    assert flow.run_until_input() is S.CART
    assert "refused 2101 by test" in flow.message
    flow.confirm_cart()
    assert flow.run_until_input() is S.PIN


# ------------------------------------------------------------------ PIN


def test_wrong_pins_count_down_and_the_third_locks(flow: Checkout, card: FakeCard,
                                                   host: FakeHost) -> None:
    to_pin(flow)
    flow.enter_pin("000000")
    assert flow.state is S.PIN and flow.pin_tries_left == 2 and "2 tries left" in flow.message
    flow.enter_pin("111111")
    assert flow.state is S.PIN and "1 try left" in flow.message
    flow.enter_pin("222222")
    assert flow.run_until_input() is S.FAILED and flow.failure is not None
    assert flow.failure.kind is FailureKind.PIN_LOCKED
    for words in ("bank counter", "ID card", "free of charge"):
        assert words in flow.failure.message
    assert card.tries_left == 0
    nothing_charged(host)


def test_a_locked_card_is_refused_before_the_pin(card: FakeCard, host: FakeHost,
                                                 flow: Checkout) -> None:
    card.tries_left = 0
    flow.run_until_input()
    flow.add_item("A001")
    flow.confirm_cart()
    assert flow.run_until_input() is S.FAILED
    assert flow.failure is not None and flow.failure.kind is FailureKind.PIN_LOCKED
    assert card.pins_seen == 0


@pytest.mark.parametrize("how,kind,code", [
    ("cancel_pin", FailureKind.PIN_CANCELLED, -31),
    ("pin_timeout", FailureKind.PIN_TIMEOUT, -32),
])
def test_pin_pad_cancel_and_timeout(flow: Checkout, host: FakeHost, how: str,
                                    kind: FailureKind, code: int) -> None:
    to_pin(flow)
    getattr(flow, how)()
    assert flow.state is S.FAILED and flow.failure is not None
    assert (flow.failure.kind, flow.failure.driver_code) == (kind, code)
    nothing_charged(host)


def test_the_pin_never_reaches_events_or_history(flow: Checkout) -> None:
    seen: list[object] = []
    flow.subscribe(seen.append)
    to_pin(flow)
    flow.enter_pin("987654")
    flow.enter_pin(PIN)
    flow.run_until_input()
    dump = repr(seen) + repr(flow.history) + repr(vars(flow))
    assert "987654" not in dump and PIN not in dump


# ------------------------------------------------------------------ card pulled


@pytest.mark.parametrize("op", ["read_basics", "pin_tries_left", "verify_pin"])
def test_card_pulled_before_the_settlement_charges_nothing(
        flow: Checkout, card: FakeCard, host: FakeHost, op: str) -> None:
    card.fault(op, "pull_before")
    flow.run_until_input()
    if flow.state is S.CART:
        flow.add_item("A001")
        flow.confirm_cart()
        flow.run_until_input()
    if flow.state is S.PIN:
        flow.enter_pin(PIN)
        flow.run_until_input()
    assert flow.state is S.FAILED and flow.failure is not None
    assert flow.failure.kind is FailureKind.CARD_REMOVED and not flow.failure.charged
    assert "nothing was charged" in flow.failure.message
    nothing_charged(host)


def test_card_pulled_between_pin_and_2102(flow: Checkout, card: FakeCard,
                                          host: FakeHost) -> None:
    to_pin(flow)
    flow.enter_pin(PIN)
    card.pull()
    assert flow.run_until_input() is S.FAILED
    assert "2102" not in [n for n, _ in host.calls]
    nothing_charged(host)


def test_card_pulled_after_2102_then_returned_finishes(flow: Checkout, card: FakeCard,
                                                       host: FakeHost) -> None:
    to_pin(flow)
    card.fault("append_transaction", "pull_before")
    flow.enter_pin(PIN)
    assert flow.run_until_input() is S.CARD_PULLED
    assert flow.awaiting is Awaiting.CARD_BACK and flow.can_void
    assert "settled at the host" in flow.message
    flow.card_returned()  # still out
    assert flow.state is S.CARD_PULLED
    card.insert()
    flow.card_returned()
    assert flow.run_until_input() is S.PIN and "PIN again" in flow.message
    flow.enter_pin(PIN)
    assert flow.run_until_input() is S.DONE
    assert len(card.log) == 1 and len(host.sales()) == 1 and host.books_balance()


def test_card_pulled_after_2102_then_voided(flow: Checkout, card: FakeCard,
                                            host: FakeHost) -> None:
    to_pin(flow)
    card.fault("append_transaction", "pull_before")
    flow.enter_pin(PIN)
    flow.run_until_input()
    flow.void()
    assert flow.run_until_input() is S.VOIDED
    assert flow.failure is not None and flow.failure.kind is FailureKind.VOIDED
    assert card.log == []
    nothing_charged(host)
    assert host.reversals == [flow.settle_msgid]


def test_void_falls_back_to_2103_when_the_reversal_is_refused(
        flow: Checkout, card: FakeCard, host: FakeHost) -> None:
    to_pin(flow)
    card.fault("append_transaction", "pull_before")
    host.fault("2601", "refuse")
    flow.enter_pin(PIN)
    flow.run_until_input()
    flow.void()
    assert flow.run_until_input() is S.VOIDED
    assert "2103" in [n for n, _ in host.calls]
    nothing_charged(host)


def test_card_pulled_during_the_record_write_needs_the_card(
        flow: Checkout, card: FakeCard, host: FakeHost) -> None:
    to_pin(flow)
    card.fault("append_transaction", "pull_after")  # the write landed, the answer did not
    flow.enter_pin(PIN)
    assert flow.run_until_input() is S.CARD_PULLED
    assert flow.record_state is RecordState.UNKNOWN and not flow.can_void
    with pytest.raises(FlowStateError, match="insert the card"):
        flow.void()
    card.insert()
    flow.card_returned()
    flow.enter_pin(PIN)
    assert flow.run_until_input() is S.DONE
    assert len(card.log) == 1, "the record is not written twice"
    assert flow.result is not None and flow.result.recorded_on_card


def test_another_card_is_not_accepted_as_the_returned_card(
        flow: Checkout, card: FakeCard) -> None:
    to_pin(flow)
    card.fault("append_transaction", "pull_before")
    flow.enter_pin(PIN)
    flow.run_until_input()
    card.info = FakeCard(number="A12345674").info
    card.insert()
    flow.card_returned()
    assert flow.state is S.CARD_PULLED and "another card" in flow.message


# ------------------------------------------------------------------ host failures


def test_2102_timeout_applied_is_reversed(flow: Checkout, host: FakeHost) -> None:
    to_pin(flow)
    host.fault("2102", "timeout_after")
    flow.enter_pin(PIN)
    assert flow.run_until_input() is S.FAILED
    assert flow.failure is not None and flow.failure.kind is FailureKind.HOST_TIMEOUT
    assert "reversed" in flow.failure.message and not flow.failure.charged
    assert S.REVERSE in [e.state for e in flow.history]
    nothing_charged(host)


def test_2102_timeout_never_arrived_reversal_is_a_no_op(flow: Checkout,
                                                        host: FakeHost) -> None:
    to_pin(flow)
    host.fault("2102", "timeout_before")
    flow.enter_pin(PIN)
    assert flow.run_until_input() is S.FAILED
    assert len(host.reversals) == 1
    nothing_charged(host)


def test_reversal_not_confirmed_waits_and_retries(flow: Checkout, host: FakeHost) -> None:
    to_pin(flow)
    host.fault("2102", "timeout_after")
    host.fault("2601", "unreachable", "timeout_before")
    flow.enter_pin(PIN)
    assert flow.run_until_input() is S.REVERSAL_PENDING
    assert "do not hand out the goods" in flow.message
    assert len(host.sales()) == 1  # the sale is still in force until the reversal lands
    flow.retry_reversal()
    assert flow.run_until_input() is S.REVERSAL_PENDING
    flow.retry_reversal()
    assert flow.run_until_input() is S.FAILED
    nothing_charged(host)


def test_client_already_reversed_means_no_second_reversal(flow: Checkout,
                                                          host: FakeHost) -> None:
    from terminal.core.ports import HostTimeout

    to_pin(flow)
    flow.enter_pin(PIN)

    def reversed_timeout(infno: str, input: object, **kw: object) -> object:
        raise HostTimeout("no answer", infno=infno, msgid="M" * 30, reversed=True)

    flow.host = type("H", (), {"call": staticmethod(reversed_timeout),
                               "reverse": host.reverse})()
    assert flow.run_until_input() is S.FAILED
    assert host.reversals == []


def test_2102_refused_shows_the_host_message(flow: Checkout, host: FakeHost) -> None:
    to_pin(flow)
    host.fault("2102", "refuse")
    flow.enter_pin(PIN)
    assert flow.run_until_input() is S.FAILED
    assert flow.failure is not None and flow.failure.kind is FailureKind.HOST_REFUSED
    assert "refused 2102 by test" in flow.failure.message
    nothing_charged(host)


def test_host_unreachable(flow: Checkout, host: FakeHost) -> None:
    to_pin(flow)
    host.fault("2102", "unreachable")
    flow.enter_pin(PIN)
    assert flow.run_until_input() is S.FAILED
    assert flow.failure is not None and flow.failure.kind is FailureKind.HOST_UNREACHABLE
    nothing_charged(host)


# ------------------------------------------------------------------ bank part


def bank_flow(card: FakeCard, host: FakeHost, catalogue: FakeCatalogue,
              config: TerminalConfig, clock: StepClock) -> Checkout:
    flow = make(card, host, catalogue, config, clock, pay=PayChoice(True, RestBy.BANK))
    to_pin(flow, ("B002", 4))  # 67.20 with an account of 10.00
    return flow


def test_bank_refused_then_cash(card: FakeCard, catalogue: FakeCatalogue,
                                config: TerminalConfig, clock: StepClock) -> None:
    host = FakeHost(balance=1000, bank=100)
    flow = bank_flow(card, host, catalogue, config, clock)
    flow.enter_pin(PIN)
    assert flow.run_until_input() is S.BANK_FAILED
    assert flow.awaiting is Awaiting.RECOVERY and "insufficient funds" in flow.message
    assert host.sales() == []  # the refusal moved nothing: no half-paid sale
    flow.pay_cash_instead()
    assert flow.run_until_input() is S.DONE
    assert flow.result is not None
    s = flow.result.split
    assert (s.account, s.bank, s.cash) == (1000, 0, 6720 - 1000)
    assert host.bank["P0001"] == 100 and host.books_balance()


def test_bank_refused_then_cancel(card: FakeCard, catalogue: FakeCatalogue,
                                  config: TerminalConfig, clock: StepClock) -> None:
    host = FakeHost(balance=1000, bank=100)
    flow = bank_flow(card, host, catalogue, config, clock)
    flow.enter_pin(PIN)
    flow.run_until_input()
    flow.cancel()
    assert flow.state is S.CANCELLED
    assert host.sales() == [] and host.balance["P0001"] == 1000 and host.books_balance()


def test_card_locked_mid_flow_at_the_bank_application(
        card: FakeCard, catalogue: FakeCatalogue, config: TerminalConfig,
        clock: StepClock) -> None:
    host = FakeHost(balance=1000)
    flow = bank_flow(card, host, catalogue, config, clock)
    flow.enter_pin(PIN)
    card.tries_left = 0  # locked by another application in between
    assert flow.run_until_input() is S.BANK_FAILED
    assert "bank counter" in flow.message
    assert host.sales() == []
    flow.pay_cash_instead()  # a locked card pays nothing more: the sale stops cleanly
    assert flow.run_until_input() is S.FAILED
    assert flow.failure is not None and flow.failure.kind is FailureKind.PIN_LOCKED
    nothing_charged(host)


def test_card_pulled_at_the_bank_application(card: FakeCard, catalogue: FakeCatalogue,
                                             config: TerminalConfig, clock: StepClock) -> None:
    host = FakeHost(balance=1000)
    flow = bank_flow(card, host, catalogue, config, clock)
    card.fault("bank_cryptogram", "pull_before")
    flow.enter_pin(PIN)
    assert flow.run_until_input() is S.FAILED
    nothing_charged(host)


def test_run_checkout_with_bank_fallback_cash(card: FakeCard, catalogue: FakeCatalogue,
                                              config: TerminalConfig,
                                              clock: StepClock) -> None:
    host = FakeHost(bank=0)
    flow = make(card, host, catalogue, config, clock, pay=PayChoice(False, RestBy.BANK))
    run_checkout(flow, [("A001", 1)], lambda tries: PIN, bank_fallback="cash")
    assert flow.state is S.DONE and flow.result is not None
    assert flow.result.split.cash == 1250


def test_run_checkout_bank_refused_cancels(card: FakeCard, catalogue: FakeCatalogue,
                                           config: TerminalConfig, clock: StepClock) -> None:
    host = FakeHost(bank=0)
    flow = make(card, host, catalogue, config, clock, pay=PayChoice(False, RestBy.BANK))
    run_checkout(flow, [("A001", 1)], lambda tries: PIN)
    assert flow.state is S.CANCELLED and flow.failure is not None
    assert flow.failure.kind is FailureKind.BANK_REFUSED
    assert "insufficient funds" in flow.failure.message
    nothing_charged(host)


def test_run_checkout_asks_the_pin_with_tries_left(flow: Checkout) -> None:
    asked: list[int | None] = []
    pins = iter(["000000", PIN])

    def source(tries: int | None) -> str:
        asked.append(tries)
        return next(pins)

    run_checkout(flow, [("A001", 1)], source)
    assert flow.state is S.DONE and asked == [3, 2]


def test_run_checkout_voids_when_the_card_is_pulled_after_2102(
        flow: Checkout, card: FakeCard, host: FakeHost) -> None:
    card.fault("append_transaction", "pull_before")
    run_checkout(flow, [("A001", 1)], lambda tries: PIN)
    assert flow.state is S.VOIDED
    nothing_charged(host)


# ------------------------------------------------------------------ cancel a finished sale


def test_cancel_a_finished_sale_with_the_card(flow: Checkout, card: FakeCard,
                                              host: FakeHost, clock: StepClock) -> None:
    run_checkout(flow, [("A001", 2)], lambda tries: PIN)
    assert flow.result is not None
    cancel = CancelSale(card, host, flow.result, clock=clock)
    assert cancel.run_until_input() is CancelState.PIN
    cancel.enter_pin(PIN)
    assert cancel.run_until_input() is CancelState.DONE
    assert cancel.recorded
    assert [r.kind for r in card.log] == [TxKind.CREDIT, TxKind.SETTLEMENT]
    nothing_charged(host)


def test_cancel_refuses_another_card(flow: Checkout, card: FakeCard, host: FakeHost,
                                     clock: StepClock) -> None:
    run_checkout(flow, [("A001", 2)], lambda tries: PIN)
    assert flow.result is not None
    other = FakeCard(number="A12345674")
    cancel = CancelSale(other, host, flow.result, clock=clock)
    assert cancel.run_until_input() is CancelState.FAILED
    assert cancel.failure is not None and cancel.failure.kind is FailureKind.WRONG_CARD
    assert len(host.sales()) == 1


def test_cancel_timeout_is_reversed_and_the_sale_stands(
        flow: Checkout, card: FakeCard, host: FakeHost, clock: StepClock) -> None:
    run_checkout(flow, [("A001", 2)], lambda tries: PIN)
    assert flow.result is not None
    host.fault("2103", "timeout_after")
    cancel = CancelSale(card, host, flow.result, clock=clock)
    cancel.run_until_input()
    cancel.enter_pin(PIN)
    assert cancel.run_until_input() is CancelState.FAILED
    assert len(host.sales()) == 1 and host.books_balance()
    assert [r.kind for r in card.log] == [TxKind.SETTLEMENT]


def test_steps_refuse_wrong_states(flow: Checkout) -> None:
    with pytest.raises(FlowStateError):
        flow.enter_pin(PIN)
    flow.run_until_input()
    with pytest.raises(FlowStateError, match="waits for cart"):
        flow.step()


def test_a_host_refusal_about_the_card_is_a_card_status(flow: Checkout,
                                                        host: FakeHost) -> None:
    host.card_state = "lost_refused"
    assert flow.run_until_input() is S.FAILED
    assert flow.failure is not None and flow.failure.kind is FailureKind.CARD_STATUS
    assert "reported lost" in flow.failure.message


def test_card_refusing_the_record_can_be_voided(flow: Checkout, card: FakeCard,
                                                host: FakeHost) -> None:
    to_pin(flow)
    card.fault("append_transaction", "error")
    flow.enter_pin(PIN)
    assert flow.run_until_input() is S.CARD_PULLED and "refused" in flow.message
    assert flow.can_void
    flow.void()
    assert flow.run_until_input() is S.VOIDED
    nothing_charged(host)


def test_pin_locked_on_the_returned_card_confirms_without_record(
        flow: Checkout, card: FakeCard, host: FakeHost) -> None:
    to_pin(flow)
    card.fault("append_transaction", "pull_after")
    flow.enter_pin(PIN)
    flow.run_until_input()
    card.insert()
    flow.card_returned()
    for wrong in ("1", "2", "3"):
        flow.enter_pin(wrong * 6)
    assert flow.state is S.CARD_PULLED and "confirm it without the record" in flow.message
    with pytest.raises(FlowStateError):
        flow.void()
    flow.confirm_without_record()
    assert flow.run_until_input() is S.DONE
    assert flow.result is not None and not flow.result.recorded_on_card
    assert len(host.sales()) == 1 and host.books_balance()


def test_pin_cancel_on_the_returned_card_goes_back(flow: Checkout, card: FakeCard) -> None:
    to_pin(flow)
    card.fault("append_transaction", "pull_before")
    flow.enter_pin(PIN)
    flow.run_until_input()
    card.insert()
    flow.card_returned()
    flow.cancel_pin()
    assert flow.state is S.CARD_PULLED and flow.can_void

"""The bank part of a pharmacy checkout with the real card side: issuer authentication (the
host's ARPC to the card, COMPLETE) and the separate bank PIN (BANK_PIN) of sun-li's card,
over the in-process virtual reader and the embedded SQLite host; the same rules over the
fake ports for the failure paths."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from terminal.core.adapters import PolicyCatalogue
from terminal.core.checkout import Checkout, CheckoutState, RecordState, run_checkout
from terminal.core.machine import Awaiting, FailureKind, FlowEvent
from terminal.core.model import PayChoice, TerminalConfig
from tests.core import hosting
from tests.core.conftest import StepClock
from tests.core.fakes import PIN, FakeCard, FakeCatalogue, FakeHost
from tests.core.station import PINS, ForgingHost, Station, assert_bank_refusal_undone, card_log

C = CheckoutState
AMOX = "XJ01CAA040A001010101445"     # 12.50
PHARMACY = "P37080000001"
PHARMA = TerminalConfig(institution_code=PHARMACY, institution_name="济宁市太白湖大药房")
SUN_SSSE, SUN_BANK = "202020", "123456"


@pytest.fixture
def st(tmp_path: Path) -> Iterator[Station]:
    station = Station.build(tmp_path, ("maimaiti", "sun-li"))
    yield station
    station.close()


@pytest.fixture(scope="module")
def policy() -> PolicyCatalogue:
    return PolicyCatalogue.load("370800")


def watch(flow: Checkout) -> list[CheckoutState]:
    seen: list[CheckoutState] = []

    def note(e: FlowEvent[Any]) -> None:
        seen.append(e.state)

    flow.subscribe(note)
    return seen


# --------------------------------------------------------------------------- real card side


def test_bank_paid_sale_completes_with_tc_and_is_on_the_card(
        st: Station, policy: PolicyCatalogue) -> None:
    st.insert("maimaiti")
    before = st.balances("maimaiti")
    flow = Checkout(st.reader_card(), st.host(PHARMACY), policy, PHARMA,
                    pay=PayChoice.parse("bank"))
    seen = watch(flow)
    run_checkout(flow, [(AMOX, 2)], lambda t: PINS["maimaiti"])
    assert flow.state is C.DONE, flow.message
    # a shared-PIN card is asked once; the card checked the host's ARPC before the record
    assert C.BANK_PIN not in seen and C.REVERSE not in seen
    assert seen.index(C.SETTLE) < seen.index(C.COMPLETE) < seen.index(C.RECORD)
    r = flow.result
    assert r is not None and r.split.bank == 2500 and r.recorded_on_card
    assert st.balances("maimaiti") == (before[0], before[1] - 2500)
    ((setl_id, state, *_rest, src, _card),) = hosting.settlements(st.url)
    assert (setl_id, state, src) == (r.setl_id, "settled", "bank")
    (rec,) = card_log(st, PINS["maimaiti"])
    assert rec.selfpay_fen == 2500
    assert hosting.books_problems(st.url) == []


def test_forged_arpc_is_refused_by_the_card_and_the_sale_reversed(
        st: Station, policy: PolicyCatalogue) -> None:
    st.insert("maimaiti")
    before = st.balances("maimaiti")
    flow = Checkout(st.reader_card(), ForgingHost(st.host(PHARMACY), "2102", 0x01), policy, PHARMA,
                    pay=PayChoice.parse("bank"))
    seen = watch(flow)
    run_checkout(flow, [(AMOX, 2)], lambda t: PINS["maimaiti"])
    assert flow.state is C.FAILED and flow.failure is not None
    assert C.COMPLETE in seen and C.REVERSE in seen and C.RECORD not in seen
    assert_bank_refusal_undone(st, flow.failure, "maimaiti", before)


def test_separate_pin_card_pays_by_bank_after_its_bank_pin(
        st: Station, policy: PolicyCatalogue) -> None:
    st.insert("sun-li")
    before = st.balances("sun-li")
    flow = Checkout(st.reader_card(), st.host(PHARMACY), policy, PHARMA,
                    pay=PayChoice.parse("bank"))
    events: list[FlowEvent[Any]] = []
    flow.subscribe(events.append)
    flow.run_until_input()
    flow.add_item(AMOX, 1)
    flow.confirm_cart()
    assert flow.run_until_input() is C.PIN
    flow.enter_pin(SUN_SSSE)
    assert flow.run_until_input() is C.BANK_PIN
    assert flow.awaiting is Awaiting.PIN
    assert events[-1].data.get("pin") == "bank" and events[-1].data.get("tries_left") == 6
    assert "bank PIN" in flow.message and flow.pin_tries_left == 6
    flow.enter_pin(SUN_SSSE)  # the SSSE PIN is not the bank PIN: tries left shown
    assert flow.state is C.BANK_PIN and flow.pin_tries_left == 5
    assert "5 tries left" in flow.message
    assert events[-1].data.get("tries_left") == 5
    flow.enter_pin(SUN_BANK)
    assert flow.run_until_input() is C.DONE, flow.message
    r = flow.result
    assert r is not None and r.split.bank == 1250 and r.recorded_on_card
    assert st.balances("sun-li") == (before[0], before[1] - 1250)
    # the right bank PIN restored its counter; the SSSE PIN counter was never touched
    rc = st.reader_card()
    rc.read_basics()
    assert rc.pin_tries_left() == 6
    rc.verify_pin(SUN_SSSE)
    assert rc.bank_pin_tries() == 6
    assert "123456" not in " ".join(e.message + repr(e.data) for e in events)


def test_run_checkout_takes_a_separate_bank_pin_source(
        st: Station, policy: PolicyCatalogue) -> None:
    st.insert("sun-li")
    flow = Checkout(st.reader_card(), st.host(PHARMACY), policy, PHARMA,
                    pay=PayChoice.parse("bank"))
    seen = watch(flow)
    run_checkout(flow, [(AMOX, 4)], lambda t: SUN_SSSE, bank_pin=lambda t: SUN_BANK)
    assert flow.state is C.DONE, flow.message
    assert C.BANK_PIN in seen and flow.result is not None and flow.result.split.bank == 5000
    assert hosting.books_problems(st.url) == []


# --------------------------------------------------------------------------- fake ports


def fake_sale(card: FakeCard, host: Any, pay: str = "bank") -> Checkout:
    return Checkout(card, host, FakeCatalogue(), TerminalConfig(institution_code=PHARMACY),
                    pay=PayChoice.parse(pay), clock=StepClock())


def to_complete(flow: Checkout, pin: str = PIN) -> None:
    flow.run_until_input()
    flow.add_item("A001", 2)
    flow.confirm_cart()
    flow.run_until_input()
    flow.enter_pin(pin)
    while flow.state is not C.COMPLETE:
        flow.step()


class NoArpcHost(FakeHost):
    """A host whose 2102 answer carries no ARPC for the card."""

    def _settle(self, infno: str, msgid: str, d: Mapping[str, Any], total: int,
                fund: int) -> dict[str, Any]:
        out = super()._settle(infno, msgid, d, total, fund)
        out["setlinfo"].pop("arpc", None)
        return out


def test_fake_bank_sale_completes_with_the_issuers_arpc() -> None:
    card, host = FakeCard(), FakeHost()
    flow = run_checkout(fake_sale(card, host), [("A001", 2)], lambda t: PIN)
    assert flow.state is C.DONE, flow.message
    assert [c.approved for c in card.completions] == [True]
    assert "bank_pin_tries" in card.calls and "verify_bank_pin" not in card.calls
    assert host.bank["P0001"] == 100000 - 2500 and host.books_balance()


@pytest.mark.parametrize("how", ["no_arpc", "pulled", "error"])
def test_bank_part_the_card_does_not_accept_is_reversed(how: str) -> None:
    card = FakeCard()
    host: FakeHost = NoArpcHost() if how == "no_arpc" else FakeHost()
    flow = fake_sale(card, host)
    to_complete(flow)
    if how == "pulled":
        card.pull()
    elif how == "error":
        card.fault("complete_bank", "error")
    assert flow.run_until_input() is C.FAILED
    f = flow.failure
    assert f is not None and f.kind is FailureKind.BANK_REFUSED and not f.charged
    assert "reversed" in f.message
    assert host.calls[-1][0] == "2601" and host.sales() == []
    assert host.bank["P0001"] == 100000 and host.books_balance()
    assert card.log == []


def test_unconfirmed_reversal_after_a_refused_arpc_waits_in_reversal_pending() -> None:
    card, host = FakeCard(), NoArpcHost()
    flow = fake_sale(card, host)
    to_complete(flow)
    host.fault("2601", "unreachable")
    assert flow.run_until_input() is C.REVERSAL_PENDING
    flow.retry_reversal()
    assert flow.run_until_input() is C.FAILED
    assert host.sales() == [] and host.bank["P0001"] == 100000


def test_wrong_bank_pins_lock_it_and_offer_cash() -> None:
    card, host = FakeCard(bank_pin="654321", bank_max_tries=2), FakeHost()
    flow = fake_sale(card, host, "account+bank")
    flow.run_until_input()
    flow.add_item("A001", 10)  # 125.00: the account (500.00) pays it all
    flow.confirm_cart()
    flow.run_until_input()
    flow.enter_pin(PIN)
    # the account pays everything: no bank part, no bank PIN
    assert flow.run_until_input() is C.DONE
    assert "bank_pin_tries" not in card.calls

    card, host = FakeCard(bank_pin="654321", bank_max_tries=2), FakeHost()
    flow = fake_sale(card, host)
    flow.run_until_input()
    flow.add_item("A001", 1)
    flow.confirm_cart()
    flow.run_until_input()
    flow.enter_pin(PIN)
    assert flow.run_until_input() is C.BANK_PIN and flow.pin_tries_left == 2
    flow.enter_pin("000000")
    assert flow.state is C.BANK_PIN and flow.pin_tries_left == 1
    assert "1 try left" in flow.message
    flow.enter_pin("000000")
    assert flow.run_until_input() is C.BANK_FAILED and flow.awaiting is Awaiting.RECOVERY
    assert "locked" in flow.message
    flow.pay_cash_instead()
    assert flow.run_until_input() is C.DONE, flow.message
    assert flow.result is not None and flow.result.split.bank == 0
    assert card.tries_left == 3, "the SSSE PIN counter is untouched"


@pytest.mark.parametrize("end", ["cancel_pin", "pin_timeout", "cancel"])
def test_bank_pin_entry_abandoned_charges_nothing(end: str) -> None:
    card, host = FakeCard(bank_pin="654321"), FakeHost()
    flow = fake_sale(card, host)
    flow.run_until_input()
    flow.add_item("A001", 1)
    flow.confirm_cart()
    flow.run_until_input()
    flow.enter_pin(PIN)
    assert flow.run_until_input() is C.BANK_PIN
    getattr(flow, end)()
    assert flow.finished and flow.failure is not None and not flow.failure.charged
    assert [c for c, _ in host.calls if c == "2102"] == []
    assert flow.record_state is RecordState.NOT_WRITTEN


# --------------------------------------------------------------------------- scripted CLI


def test_cli_checkout_reads_the_bank_pin_from_the_next_line(
        st: Station, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    import io
    import json

    from terminal.cli import main

    before = st.balances("sun-li")
    monkeypatch.setattr("sys.stdin", io.StringIO(f"{SUN_SSSE}\n{SUN_BANK}\n"))
    rc = main(["checkout", "--reader", f"virtual:{st.images['sun-li']}", "--host", st.url,
               "--item", f"{AMOX}:2", "--pay", "bank", "--pin-from-stdin", "--json"])
    out = capsys.readouterr().out
    assert rc == 0, out
    doc = json.loads(out)
    assert doc["result"]["split"]["bank"] == "25.00" and doc["result"]["recorded_on_card"]
    assert st.balances("sun-li") == (before[0], before[1] - 2500)

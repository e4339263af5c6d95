"""Every flow end to end: fixture card images (copies) in the in-process virtual reader with
the fixture PSAM, the embedded SQLite host with the holders enrolled."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from terminal.core.adapters import PolicyCatalogue
from terminal.core.admission import Admission, AdmissionState, run_admission
from terminal.core.checkout import Checkout, CheckoutState, RecordState, run_checkout
from terminal.core.counter import (
    ActivateCard,
    ChangeHolderData,
    ChangePin,
    CounterState,
    MigrateOldCards,
    ReportLoss,
    ResetPin,
    UnlockPin,
)
from terminal.core.discharge import Discharge, DischargeData, DischargeState, run_discharge
from terminal.core.machine import FailureKind
from terminal.core.model import CartLine, PayChoice, TerminalConfig
from terminal.core.slip import render
from tests.core import hosting
from tests.core.station import PINS, Station

AMOX = "XJ01CAA040A001010101445"     # 12.50
LOSARTAN = "XC09CAA010A001010104312"  # 24.80, 乙 20 %
PHARMACY, HOSPITAL = "P37080000001", "H37080000001"
PHARMA = TerminalConfig(institution_code=PHARMACY, institution_name="济宁市太白湖大药房")
HOSP = TerminalConfig(institution_code=HOSPITAL, institution_name="济宁市第一人民医院")


@pytest.fixture
def st(tmp_path: Path) -> Iterator[Station]:
    station = Station.build(tmp_path)
    yield station
    station.close()


@pytest.fixture(scope="module")
def catalogue() -> PolicyCatalogue:
    return PolicyCatalogue.load("370800")


def sale(st: Station, catalogue: PolicyCatalogue, who: str, pay: str = "account",
         items: list[tuple[str, int]] | None = None, pin: str | None = None) -> Checkout:
    flow = Checkout(st.reader_card(), st.host(PHARMACY), catalogue, PHARMA,
                    pay=PayChoice.parse(pay))
    return run_checkout(flow, items or [(AMOX, 2)], lambda t: pin or PINS[who])


def test_pharmacy_sale_with_the_account(st: Station, catalogue: PolicyCatalogue) -> None:
    st.insert("zhang-san")
    flow = sale(st, catalogue, "zhang-san", items=[(AMOX, 2), (LOSARTAN, 1)])
    assert flow.state is CheckoutState.DONE, flow.message
    r = flow.result
    assert r is not None and r.recorded_on_card
    assert r.split.total == 2500 + 2480 and r.split.account == r.split.total
    assert st.balances("zhang-san") == (50000 - r.split.total, 100000)
    text = render(r.slip, 32)
    assert "张三" in text and "J00****17" in text and f"{(50000 - r.split.total) / 100:.2f}" in text
    card = st.reader_card()
    card.read_basics()
    card.verify_pin(PINS["zhang-san"])
    (rec,) = card.read_transactions()
    assert (rec.account_fen, rec.selfpay_fen, rec.fund_fen) == (0, r.split.total, 0)
    assert rec.terminal == "370800000001"
    assert hosting.books_problems(st.url) == []


def test_rest_from_the_bank_account_with_the_cards_arqc(st: Station,
                                                        catalogue: PolicyCatalogue) -> None:
    st.insert("maimaiti")
    flow = sale(st, catalogue, "maimaiti", pay="bank", items=[(AMOX, 3)])
    assert flow.state is CheckoutState.DONE, flow.message
    assert st.balances("maimaiti") == (50000, 100000 - 3750)
    assert flow.result is not None and "买买提" in flow.result.slip.holder_name
    second = sale(st, catalogue, "maimaiti", pay="bank", items=[(AMOX, 1)])
    assert second.state is CheckoutState.DONE, "a new ATC for every payment"
    assert st.balances("maimaiti") == (50000, 100000 - 5000)


def test_three_wrong_pins_lock_then_a_free_reset_at_the_bank(
        st: Station, catalogue: PolicyCatalogue) -> None:
    st.insert("zhang-san")
    flow = sale(st, catalogue, "zhang-san", pin="000000")
    assert flow.state is CheckoutState.FAILED and flow.failure is not None
    assert flow.failure.kind is FailureKind.PIN_LOCKED and "bank counter" in flow.failure.message
    tries = [e.data.get("tries_left") for e in flow.history if e.state is CheckoutState.PIN]
    assert tries == [3, 2, 1]
    assert st.balances("zhang-san") == (50000, 100000)
    reset = ResetPin(st.host(hosting.BANK_COUNTERS["CCB"]), st.reader_card())
    reset.run_until_input()
    reset.provide_id("370802198001011235")
    assert reset.run_until_input() is CounterState.PIN
    reset.enter_pins("864200", "864200")
    assert reset.state is CounterState.DONE and "free of charge" in reset.message
    again = sale(st, catalogue, "zhang-san", pin="864200")
    assert again.state is CheckoutState.DONE


def test_a_card_locked_before_the_sale(st: Station, catalogue: PolicyCatalogue) -> None:
    st.insert("zhao-min")
    flow = sale(st, catalogue, "zhao-min")
    assert flow.failure is not None and flow.failure.kind is FailureKind.PIN_LOCKED
    assert [e.state for e in flow.history].count(CheckoutState.PIN) == 0


def test_not_activated_card_then_activation_at_its_bank(st: Station,
                                                        catalogue: PolicyCatalogue) -> None:
    st.insert("li-si")
    flow = sale(st, catalogue, "li-si")
    assert flow.state is CheckoutState.FAILED and flow.failure is not None
    assert flow.failure.kind is FailureKind.CARD_STATUS
    assert "not been activated" in flow.failure.message
    act = ActivateCard(st.host(hosting.BANK_COUNTERS["ICBC"]), st.reader_card())
    act.run_until_input()
    act.provide_id("370802198505050529")
    act.enter_pins("123456", "707070", "707070")
    assert act.run_until_input() is CounterState.DONE, act.message
    assert sale(st, catalogue, "li-si", pin="707070").state is CheckoutState.DONE


def test_lost_card_is_refused_at_every_terminal(st: Station, catalogue: PolicyCatalogue) -> None:
    loss = ReportLoss(st.host(hosting.BANK_COUNTERS["CCB"]), "J00000017", "370802198001011235")
    assert loss.run_until_input() is CounterState.DONE
    st.insert("zhang-san")
    flow = sale(st, catalogue, "zhang-san")
    assert flow.failure is not None and flow.failure.kind is FailureKind.CARD_STATUS
    assert "reported lost" in flow.failure.message


def test_change_pin_at_the_counter(st: Station, catalogue: PolicyCatalogue) -> None:
    st.insert("wang-wu")
    flow = ChangePin(st.host(), st.reader_card())
    flow.run_until_input()
    flow.enter_pins("135790", "135791", "135791")
    assert flow.run_until_input() is CounterState.DONE
    assert sale(st, catalogue, "wang-wu", pin="135791").state is CheckoutState.DONE


def test_card_pulled_before_the_settlement_charges_nothing(
        st: Station, catalogue: PolicyCatalogue) -> None:
    st.insert("zhang-san")
    flow = Checkout(st.reader_card(), st.host(PHARMACY), catalogue, PHARMA)
    flow.run_until_input()
    flow.add_item(AMOX)
    flow.confirm_cart()
    flow.run_until_input()
    flow.enter_pin(PINS["zhang-san"])
    st.pull()
    assert flow.run_until_input() is CheckoutState.FAILED
    assert flow.failure is not None and flow.failure.kind is FailureKind.CARD_REMOVED
    assert hosting.settlements(st.url) == []


def test_card_pulled_during_the_record_then_returned(st: Station,
                                                     catalogue: PolicyCatalogue) -> None:
    card = st.insert("zhang-san")
    flow = Checkout(st.reader_card(), st.host(PHARMACY), catalogue, PHARMA)
    flow.run_until_input()
    flow.add_item(AMOX)
    flow.confirm_cart()
    flow.run_until_input()
    flow.enter_pin(PINS["zhang-san"])
    flow.step()  # SETTLE
    assert flow.state is CheckoutState.RECORD
    # SELECT SSSE, SELECT DF04 (log check), SELECT SSSE, SELECT DF04, INITIALIZE FOR
    # PURCHASE, DEBIT FOR PURCHASE (index 5): the card writes, the answer is lost
    card.faults.pull_at(5)
    assert flow.step() is CheckoutState.CARD_PULLED
    assert flow.record_state is RecordState.UNKNOWN and not flow.can_void
    st.insert("zhang-san")
    flow.card_returned()
    flow.enter_pin(PINS["zhang-san"])
    assert flow.run_until_input() is CheckoutState.DONE
    rc = st.reader_card()
    rc.read_basics()
    rc.verify_pin(PINS["zhang-san"])
    assert len(rc.read_transactions()) == 1, "the sale is on the card once"
    assert [s[1] for s in hosting.settlements(st.url)] == ["settled"]


def test_card_pulled_after_2102_and_gone_is_voided(st: Station,
                                                  catalogue: PolicyCatalogue) -> None:
    card = st.insert("zhang-san")
    flow = Checkout(st.reader_card(), st.host(PHARMACY), catalogue, PHARMA)
    flow.run_until_input()
    flow.add_item(AMOX)
    flow.confirm_cart()
    flow.run_until_input()
    flow.enter_pin(PINS["zhang-san"])
    flow.step()
    card.faults.pull_at(2, step="command.received")  # INITIALIZE FOR PURCHASE, not executed
    flow.step()
    assert flow.state is CheckoutState.CARD_PULLED and flow.can_void
    flow.void()
    assert flow.run_until_input() is CheckoutState.VOIDED
    assert st.balances("zhang-san") == (50000, 100000)
    assert hosting.books_problems(st.url) == []
    assert [s[1] for s in hosting.settlements(st.url)] != ["settled"]


@pytest.mark.parametrize("how", ["before", "after"])
def test_settlement_without_answer_is_reversed(st: Station, catalogue: PolicyCatalogue,
                                               how: str) -> None:
    st.insert("zhang-san")
    host = st.host(PHARMACY, flaky=True)
    st.flaky[-1].lose("2102", how)
    flow = run_checkout(Checkout(st.reader_card(), host, catalogue, PHARMA), [(AMOX, 1)],
                        lambda t: PINS["zhang-san"])
    assert flow.state is CheckoutState.FAILED and flow.failure is not None
    assert flow.failure.kind is FailureKind.HOST_TIMEOUT and not flow.failure.charged
    assert "2601" in st.flaky[-1].sent
    assert st.balances("zhang-san") == (50000, 100000)
    assert hosting.books_problems(st.url) == []


def test_reversal_that_cannot_be_delivered_waits(st: Station,
                                                 catalogue: PolicyCatalogue) -> None:
    st.insert("zhang-san")
    host = st.host(PHARMACY, flaky=True)
    st.flaky[-1].lose("2102", "after")
    st.flaky[-1].lose("2601", "before", "before")
    flow = run_checkout(Checkout(st.reader_card(), host, catalogue, PHARMA), [(AMOX, 1)],
                        lambda t: PINS["zhang-san"])
    assert flow.state is CheckoutState.REVERSAL_PENDING, flow.message
    assert st.balances("zhang-san") == (50000 - 1250, 100000)  # the sale is in force for now
    flow.retry_reversal()
    assert flow.run_until_input() is CheckoutState.FAILED
    assert st.balances("zhang-san") == (50000, 100000)


def test_admission_then_discharge_paid_account_and_bank(st: Station,
                                                        catalogue: PolicyCatalogue) -> None:
    st.insert("wang-wu")
    hospital = st.host(HOSPITAL)
    adm = run_admission(Admission(st.reader_card(), hospital, HOSP))
    assert adm.state is AdmissionState.DONE, adm.message
    ident = adm.identity
    assert ident is not None and ident.name == "王五" and ident.ssn == "370826195507080016"
    assert ident.sex.value == "1" and ident.birth_date is not None
    assert ident.birth_date.isoformat() == "1955-07-08"
    assert ident.photo_kind == "jpeg" and len(ident.photo) > 500
    assert adm.result is not None
    fees = [CartLine(catalogue.lookup(AMOX), 20), CartLine(catalogue.lookup(LOSARTAN), 60)]
    dis = run_discharge(Discharge(st.reader_card(), hospital,
                                  DischargeData(adm.result.mdtrt_id), fees, HOSP),
                        PayChoice.parse("account+bank"), lambda t: PINS["wang-wu"])
    assert dis.state is DischargeState.DONE, dis.message
    assert dis.result is not None
    s = dis.result.split
    assert s.total == 20 * 1250 + 60 * 2480 and s.fund > 0
    assert s.account == 50000 and s.bank == s.total - s.fund - 50000
    assert st.balances("wang-wu") == (0, 100000 - s.bank)
    assert hosting.books_problems(st.url) == []
    assert "住院结算单" in render(dis.result.slip, 48)


def test_unlock_keeps_the_pin_of_a_locked_card(st: Station, catalogue: PolicyCatalogue) -> None:
    st.insert("zhao-min")
    flow = UnlockPin(st.host(hosting.BANK_COUNTERS["CCB"]), st.reader_card())
    flow.run_until_input()
    flow.provide_id("370811199203140028")
    assert flow.run_until_input() is CounterState.DONE, flow.message
    assert sale(st, catalogue, "zhao-min").state is CheckoutState.DONE


def test_holder_data_change_and_old_card_migration(st: Station) -> None:
    office = st.host(hosting.OFFICE)
    who = st.enrolled["wang-wu"]
    job = ChangeHolderData(office, who.psn_no, who.ssn, {"emp_name": "济宁市新单位"})
    assert job.run_until_input() is CounterState.DONE and "stays valid" in job.message
    office.call("8203", {"data": {"psn_no": who.psn_no, "old_card_no": "YB0000123",
                                  "balance": "321.00"}})
    office.call("8202", {"data": {"transition": "closed"}})
    seen: list[str] = []
    migrate = MigrateOldCards(office, batch_size=1)
    migrate.subscribe(lambda e: seen.append(e.message))
    assert migrate.run_until_input() is CounterState.DONE, migrate.message
    assert migrate.migrated == 1 and migrate.amount_fen == 32100
    assert st.balances("wang-wu") == (50000 + 32100, 100000)
    assert hosting.books_problems(st.url) == []


@pytest.mark.slow
@pytest.mark.parametrize("void_when_possible", [False, True])
def test_card_pulled_at_every_command_of_a_sale(tmp_path: Path, catalogue: PolicyCatalogue,
                                                void_when_possible: bool) -> None:
    """Pull the card at each command of a sale (answer lost, or before the card acts), put
    it back whenever asked (or void when the core allows it): never a double charge, never
    a lost sale, the card's log and the host agree."""
    from tests.core.driver import drive

    template = Station.build(tmp_path / "template", ("zhang-san",))
    template.close()
    counting = template.clone(tmp_path / "count")
    card = counting.insert("zhang-san")
    sale(counting, catalogue, "zhang-san", items=[(AMOX, 1)])
    n = card.faults.commands
    counting.close()
    assert n > 20
    for k in range(n):
        for step in (None, "command.received"):
            st = template.clone(tmp_path / f"{k}-{step}")
            try:
                card = st.insert("zhang-san")
                card.faults.pull_at(k, step)
                flow = Checkout(st.reader_card(), st.host(PHARMACY), catalogue, PHARMA)
                end = drive(flow, [(AMOX, 1)], PINS["zhang-san"],
                            iter([void_when_possible] * 5),
                            lambda st=st: st.insert("zhang-san"))  # type: ignore[misc]
                rows = [r for r in hosting.settlements(st.url) if r[1] == "settled"]
                assert hosting.books_problems(st.url) == []
                assert st.balances("zhang-san") == (50000 - 1250 * len(rows), 100000)
                st.insert("zhang-san")
                rc = st.reader_card()
                rc.read_basics()
                rc.verify_pin(PINS["zhang-san"])
                on_card = len(rc.read_transactions())
                assert on_card == len(rows) <= 1, (k, step, end, flow.message)
                assert (end is CheckoutState.DONE) == (len(rows) == 1), (k, step, end)
            finally:
                st.close()

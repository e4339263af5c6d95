"""Discharge with the real card side: fixture card copies in the in-process virtual reader,
the embedded SQLite host. Issuer authentication (the host's ARPC to the card), the separate
bank PIN (sun-li), and the settlement on the card's DF04 EF08 log."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from terminal.core.adapters import PolicyCatalogue
from terminal.core.admission import Admission, AdmissionState, run_admission
from terminal.core.cardio import BankPinRequired
from terminal.core.checkout import RecordState
from terminal.core.common import now
from terminal.core.discharge import Discharge, DischargeData, DischargeState, run_discharge
from terminal.core.model import CartLine, PayChoice, TerminalConfig
from terminal.core.ports import HostPort, PinWrong
from tests.core import hosting
from tests.core.station import PINS, ForgingHost, Station, assert_bank_refusal_undone, card_log

D = DischargeState
AMOX = "XJ01CAA040A001010101445"     # 12.50
LOSARTAN = "XC09CAA010A001010104312"  # 24.80
HOSPITAL = "H37080000001"
HOSP = TerminalConfig(institution_code=HOSPITAL, institution_name="济宁市第一人民医院")
SUN_SSSE, SUN_BANK = "202020", "123456"


@pytest.fixture
def st(tmp_path: Path) -> Iterator[Station]:
    station = Station.build(tmp_path, ("wang-wu", "maimaiti", "sun-li"))
    yield station
    station.close()


@pytest.fixture(scope="module")
def catalogue() -> PolicyCatalogue:
    return PolicyCatalogue.load("370800")


def admit(st: Station, who: str, host: HostPort) -> str:
    st.insert(who)
    adm = run_admission(Admission(st.reader_card(), host, HOSP))
    assert adm.state is AdmissionState.DONE, adm.message
    assert adm.result is not None
    return adm.result.mdtrt_id


def fees(catalogue: PolicyCatalogue, amox: int = 20, losartan: int = 60) -> list[CartLine]:
    return [CartLine(catalogue.lookup(AMOX), amox),
            CartLine(catalogue.lookup(LOSARTAN), losartan)]


def at(flow: Discharge) -> DischargeState:
    """The flow's state, read afresh (the flow moves under the test's feet)."""
    return flow.state


def test_discharge_with_bank_completes_issuer_auth_and_logs_on_the_card(
        st: Station, catalogue: PolicyCatalogue) -> None:
    hospital = st.host(HOSPITAL)
    mdtrt = admit(st, "wang-wu", hospital)
    flow = Discharge(st.reader_card(), hospital, DischargeData(mdtrt), fees(catalogue), HOSP)
    seen: list[DischargeState] = []
    flow.run_until_input()
    flow.choose_payment(PayChoice.parse("account+bank"))
    while not flow.finished:
        if flow.state is D.PIN:
            flow.enter_pin(PINS["wang-wu"])
        seen.append(flow.step() if flow.awaiting is None else flow.state)
    assert flow.state is D.DONE, flow.message
    # a shared-PIN card is asked once; the card checked the host's ARPC (COMPLETE)
    assert D.BANK_PIN not in seen and D.COMPLETE in seen and D.UNDO not in seen
    r = flow.result
    assert r is not None and r.recorded_on_card and flow.record_state is RecordState.WRITTEN
    (rec,) = card_log(st, PINS["wang-wu"])
    ((setl_id, state, acct, cash, fund, total, src, card_no),) = hosting.settlements(st.url)
    assert (setl_id, state, src) == (r.setl_id, "settled", "bank")
    assert card_no == st.enrolled["wang-wu"].card_no
    # the card's log and the host agree on the settlement
    assert rec.kind.value == "2" and rec.account_fen == 0
    assert rec.selfpay_fen == int(acct) + int(cash) == r.split.account + r.split.bank
    assert rec.fund_fen == int(fund) == r.split.fund
    assert rec.selfpay_fen + rec.fund_fen == int(total) == r.split.total
    assert rec.terminal == "370800000001"
    assert hosting.books_problems(st.url) == []


def test_forged_arpc_is_refused_by_the_card_and_the_settlement_reversed(
        st: Station, catalogue: PolicyCatalogue) -> None:
    hospital = st.host(HOSPITAL)
    mdtrt = admit(st, "wang-wu", hospital)
    before = st.balances("wang-wu")
    flow = run_discharge(Discharge(st.reader_card(), ForgingHost(hospital, "2304", 0x80),
                                   DischargeData(mdtrt), fees(catalogue), HOSP),
                         PayChoice.parse("account+bank"), lambda t: PINS["wang-wu"])
    assert flow.state is D.FAILED and flow.failure is not None
    assert_bank_refusal_undone(st, flow.failure, "wang-wu", before)


def test_separate_pin_card_asks_its_bank_pin_through_the_pin_entry(
        st: Station, catalogue: PolicyCatalogue) -> None:
    hospital = st.host(HOSPITAL)
    mdtrt = admit(st, "sun-li", hospital)
    flow = Discharge(st.reader_card(), hospital, DischargeData(mdtrt), fees(catalogue, 4, 2),
                     HOSP)
    flow.run_until_input()
    flow.choose_payment(PayChoice.parse("bank"))
    assert flow.run_until_input() is D.PIN
    flow.enter_pin(SUN_SSSE)
    assert flow.run_until_input() is D.BANK_PIN
    assert flow.pin_tries_left == 6 and "bank PIN" in flow.message
    flow.enter_pin(SUN_SSSE)  # the SSSE PIN is not the bank PIN
    assert flow.state is D.BANK_PIN and flow.pin_tries_left == 5
    flow.enter_pin(SUN_BANK)
    assert flow.run_until_input() is D.DONE, flow.message
    r = flow.result
    assert r is not None and r.split.bank > 0 and r.recorded_on_card
    (rec,) = card_log(st, SUN_SSSE)
    assert rec.selfpay_fen == r.split.bank and rec.fund_fen == r.split.fund
    # a right bank PIN restores its counter; the SSSE PIN counter was never touched
    rc = st.reader_card()
    rc.read_basics()
    assert rc.pin_tries_left() == 6
    rc.verify_pin(SUN_SSSE)
    assert rc.bank_pin_tries() == 6


def test_run_discharge_takes_a_separate_bank_pin_source(
        st: Station, catalogue: PolicyCatalogue) -> None:
    hospital = st.host(HOSPITAL)
    mdtrt = admit(st, "sun-li", hospital)
    flow = run_discharge(Discharge(st.reader_card(), hospital, DischargeData(mdtrt),
                                   fees(catalogue, 40, 40), HOSP),
                         PayChoice.parse("account+bank"), lambda t: SUN_SSSE,
                         bank_pin=lambda t: SUN_BANK)
    assert flow.state is D.DONE, flow.message
    assert hosting.books_problems(st.url) == []


def test_reader_card_bank_pin_shared_and_separate(st: Station) -> None:
    st.insert("maimaiti")
    rc = st.reader_card()
    rc.read_basics()
    rc.verify_pin(PINS["maimaiti"])
    assert rc.bank_pin_tries() is None  # shared: the SSSE PIN counts
    assert rc.bank_cryptogram(100, now()).arqc
    st.insert("sun-li")
    rc = st.reader_card()
    rc.read_basics()
    rc.verify_pin(SUN_SSSE)
    with pytest.raises(BankPinRequired) as info:
        rc.bank_cryptogram(100, now())
    assert info.value.tries_left == 6
    with pytest.raises(PinWrong):
        rc.verify_bank_pin("999999")
    rc.verify_bank_pin(SUN_BANK)
    assert rc.bank_pin_tries() is None
    assert rc.bank_cryptogram(100, now()).arqc


def test_card_pulled_during_the_discharge_record_then_returned(
        st: Station, catalogue: PolicyCatalogue) -> None:
    hospital = st.host(HOSPITAL)
    mdtrt = admit(st, "wang-wu", hospital)
    card = st.insert("wang-wu")
    flow = Discharge(st.reader_card(), hospital, DischargeData(mdtrt), fees(catalogue), HOSP)
    flow.run_until_input()
    flow.choose_payment(PayChoice.parse("account"))
    assert flow.run_until_input() is D.PIN
    flow.enter_pin(PINS["wang-wu"])
    while flow.state is not D.RECORD:
        flow.step()
    # SELECT SSSE, SELECT DF04 (log check), SELECT SSSE, SELECT DF04, INITIALIZE FOR
    # PURCHASE, DEBIT FOR PURCHASE (index 5): the card writes, the answer is lost
    card.faults.pull_at(5)
    assert flow.step() is D.CARD_PULLED
    assert flow.record_state is RecordState.UNKNOWN
    st.insert("wang-wu")
    flow.card_returned()
    assert at(flow) is D.PIN
    flow.enter_pin(PINS["wang-wu"])
    assert flow.run_until_input() is D.DONE, flow.message
    assert flow.result is not None and flow.result.recorded_on_card
    assert len(card_log(st, PINS["wang-wu"])) == 1, "the settlement is on the card once"
    assert [s[1] for s in hosting.settlements(st.url)] == ["settled"]


def test_card_pulled_before_the_record_is_written_once_returned(
        st: Station, catalogue: PolicyCatalogue) -> None:
    hospital = st.host(HOSPITAL)
    mdtrt = admit(st, "wang-wu", hospital)
    st.insert("wang-wu")
    flow = Discharge(st.reader_card(), hospital, DischargeData(mdtrt), fees(catalogue), HOSP)
    flow.run_until_input()
    flow.choose_payment(PayChoice.parse("account"))
    flow.run_until_input()
    flow.enter_pin(PINS["wang-wu"])
    while flow.state is not D.RECORD:
        flow.step()
    st.pull()
    assert flow.step() is D.CARD_PULLED
    assert flow.record_state is RecordState.NOT_WRITTEN
    st.insert("maimaiti")  # the wrong card is refused
    flow.card_returned()
    assert at(flow) is D.CARD_PULLED
    st.insert("wang-wu")
    flow.card_returned()
    flow.enter_pin(PINS["wang-wu"])
    assert flow.run_until_input() is D.DONE
    assert len(card_log(st, PINS["wang-wu"])) == 1


def test_cash_discharge_without_pin_says_it_is_not_on_the_card(
        st: Station, catalogue: PolicyCatalogue) -> None:
    hospital = st.host(HOSPITAL)
    mdtrt = admit(st, "wang-wu", hospital)
    flow = run_discharge(Discharge(st.reader_card(), hospital, DischargeData(mdtrt),
                                   fees(catalogue), HOSP),
                         PayChoice.parse("cash"), lambda t: None)
    assert flow.state is D.DONE and flow.result is not None
    assert not flow.result.recorded_on_card
    assert "not recorded on the card" in flow.result.slip.notes
    assert card_log(st, PINS["wang-wu"]) == []


def test_card_pulled_before_completing_the_bank_part_reverses(
        st: Station, catalogue: PolicyCatalogue) -> None:
    hospital = st.host(HOSPITAL)
    mdtrt = admit(st, "wang-wu", hospital)
    before = st.balances("wang-wu")
    flow = Discharge(st.reader_card(), hospital, DischargeData(mdtrt), fees(catalogue, 4, 2),
                     HOSP)
    flow.run_until_input()
    flow.choose_payment(PayChoice.parse("bank"))
    flow.run_until_input()
    flow.enter_pin(PINS["wang-wu"])
    while flow.state is not D.COMPLETE:
        flow.step()
    st.pull()
    assert flow.run_until_input() is D.FAILED
    assert flow.failure is not None and not flow.failure.charged
    assert st.balances("wang-wu") == before
    assert hosting.books_problems(st.url) == []

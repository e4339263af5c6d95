"""Admission (U2) and discharge settlement (U3) against fake ports."""

from __future__ import annotations

import pytest

from terminal.core.admission import Admission, AdmissionData, AdmissionState, run_admission
from terminal.core.discharge import Discharge, DischargeData, DischargeState, run_discharge
from terminal.core.machine import Awaiting, FailureKind
from terminal.core.model import CartLine, PayChoice, RestBy
from terminal.core.ports import CatalogueItem
from tests.core.conftest import StepClock
from tests.core.fakes import PIN, FakeCard, FakeHost

A = AdmissionState
D = DischargeState
FEES = [CartLine(CatalogueItem("F1", "床位费", 5000), 10),
        CartLine(CatalogueItem("F2", "头孢克洛胶囊", 2860), 5)]
TOTAL = 5000 * 10 + 2860 * 5


def test_admission_shows_identity_then_registers(card: FakeCard, host: FakeHost,
                                                 clock: StepClock) -> None:
    flow = Admission(card, host, clock=clock)
    assert flow.run_until_input() is A.COMPARE
    assert flow.awaiting is Awaiting.CONFIRM
    ident = flow.identity
    assert ident is not None and ident.name == "张三" and ident.photo_kind == "jpeg"
    assert ident.ssn == "370802198101011116" and ident.birth_date is not None
    flow.confirm(AdmissionData(dept_name="内科", ipt_no="ZY001"))
    assert flow.run_until_input() is A.DONE
    assert flow.result is not None and flow.result.mdtrt_id == "M00001"
    sent = next(i for n, i in host.calls if n == "2401")["mdtrtinfo"]
    assert sent["psn_no"] == "P0001" and sent["ipt_no"] == "ZY001"


def test_admission_rejected_by_the_clerk_registers_nothing(card: FakeCard, host: FakeHost,
                                                           clock: StepClock) -> None:
    flow = run_admission(Admission(card, host, clock=clock), accept=False)
    assert flow.state is A.REJECTED and host.admissions == {}


def test_admission_timeout_is_reversed(card: FakeCard, host: FakeHost,
                                       clock: StepClock) -> None:
    host.fault("2401", "timeout_after")
    flow = run_admission(Admission(card, host, clock=clock))
    assert flow.state is A.FAILED and flow.failure is not None
    assert flow.failure.kind is FailureKind.HOST_TIMEOUT
    assert ("2601", {"omsgid": host.reversals[0], "oinfno": "2401"}) in host.calls


def test_admission_card_pulled_while_reading_identity(card: FakeCard, host: FakeHost,
                                                      clock: StepClock) -> None:
    card.fault("read_identity", "pull_before")
    flow = run_admission(Admission(card, host, clock=clock))
    assert flow.state is A.FAILED and flow.failure is not None
    assert flow.failure.kind is FailureKind.CARD_REMOVED and host.calls == []


def discharge(card: FakeCard, host: FakeHost, clock: StepClock) -> Discharge:
    return Discharge(card, host, DischargeData("M00001"), FEES, clock=clock)


@pytest.mark.parametrize("pay,acct,bank,cash", [
    ("account", 5000, 0, None),
    ("bank", 0, None, 0),
    ("cash", 0, 0, None),
])
def test_discharge_pays_the_self_pay_part_as_chosen(
        card: FakeCard, clock: StepClock, pay: str, acct: int, bank: int | None,
        cash: int | None) -> None:
    host = FakeHost(balance=5000)
    flow = run_discharge(discharge(card, host, clock), PayChoice.parse(pay), lambda t: PIN)
    assert flow.state is D.DONE and flow.result is not None
    s = flow.result.split
    fund = TOTAL * 7000 // 10000
    assert s.fund == fund and s.total == TOTAL
    assert s.account == acct
    self_pay = TOTAL - fund - acct
    assert s.bank == (self_pay if bank is None else bank)
    assert s.cash == (self_pay if cash is None else cash)
    names = [n for n, _ in host.calls]
    assert names.index("2301") < names.index("2303") < names.index("2402") < names.index("2304")
    assert "M00001" in host.discharged and host.books_balance()


def test_discharge_cash_needs_no_pin(card: FakeCard, host: FakeHost,
                                     clock: StepClock) -> None:
    run_discharge(discharge(card, host, clock), PayChoice.parse("cash"), lambda t: None)
    assert card.pins_seen == 0


def test_discharge_bank_refused_then_cash(card: FakeCard, clock: StepClock) -> None:
    host = FakeHost(bank=0)
    flow = discharge(card, host, clock)
    flow.run_until_input()
    flow.choose_payment(PayChoice(False, RestBy.BANK))
    flow.run_until_input()
    flow.enter_pin(PIN)
    assert flow.run_until_input() is D.BANK_FAILED
    assert host.sales() == []
    flow.pay_cash_instead()
    assert flow.run_until_input() is D.DONE
    assert flow.result is not None and flow.result.split.bank == 0 and card.pins_seen == 1


def test_discharge_settlement_timeout_is_reversed(card: FakeCard, host: FakeHost,
                                                  clock: StepClock) -> None:
    host.fault("2304", "timeout_after")
    flow = run_discharge(discharge(card, host, clock), PayChoice.parse("account"),
                         lambda t: PIN)
    assert flow.state is D.FAILED and flow.failure is not None
    assert flow.failure.kind is FailureKind.HOST_TIMEOUT
    assert host.sales() == [] and host.books_balance()


def test_discharge_wrong_pin_three_times_locks(card: FakeCard, host: FakeHost,
                                               clock: StepClock) -> None:
    flow = run_discharge(discharge(card, host, clock), PayChoice.parse("account"),
                         lambda t: "000000")
    assert flow.state is D.FAILED and flow.failure is not None
    assert flow.failure.kind is FailureKind.PIN_LOCKED
    assert "2304" not in [n for n, _ in host.calls]

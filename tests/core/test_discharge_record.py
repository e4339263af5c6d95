"""The discharge settlement on the card's DF04 EF08 log, against fake ports (spec/card.md
§4, §6): written once, a pulled card read back, a refusal kept off the slip."""

from __future__ import annotations

from terminal.core.checkout import RecordState
from terminal.core.discharge import Discharge, DischargeData, DischargeState, run_discharge
from terminal.core.model import CartLine, PayChoice
from terminal.core.ports import CatalogueItem, TxKind
from tests.core.conftest import StepClock
from tests.core.fakes import PIN, FakeCard, FakeHost

D = DischargeState
FEES = [CartLine(CatalogueItem("F1", "床位费", 5000), 10),
        CartLine(CatalogueItem("F2", "头孢克洛胶囊", 2860), 5)]


def discharge(card: FakeCard, host: FakeHost, clock: StepClock) -> Discharge:
    return Discharge(card, host, DischargeData("M00001"), FEES, clock=clock)


def at(flow: Discharge) -> DischargeState:
    return flow.state


def test_account_discharge_is_logged_on_the_card(card: FakeCard, clock: StepClock) -> None:
    host = FakeHost(balance=5000)
    flow = run_discharge(discharge(card, host, clock), PayChoice.parse("account"),
                         lambda t: PIN)
    assert flow.state is D.DONE and flow.result is not None and flow.result.recorded_on_card
    (rec,) = card.log
    s = flow.result.split
    assert rec.kind is TxKind.SETTLEMENT and rec.account_fen == 0
    assert (rec.selfpay_fen, rec.fund_fen) == (s.account + s.rest, s.fund)
    assert rec.terminal == card.info.terminal_number.rjust(12, "0")
    assert rec.when == flow.settled_at


def test_pull_during_the_write_is_read_back_not_written_twice(card: FakeCard,
                                                             clock: StepClock) -> None:
    host = FakeHost(balance=5000)
    card.fault("append_transaction", "pull_after")
    flow = run_discharge(discharge(card, host, clock), PayChoice.parse("account"),
                         lambda t: PIN)
    assert flow.state is D.CARD_PULLED and flow.record_state is RecordState.UNKNOWN
    card.insert()
    flow.card_returned()
    assert at(flow) is D.PIN
    flow.enter_pin(PIN)
    assert flow.run_until_input() is D.DONE
    assert len(card.log) == 1 and card.calls.count("append_transaction") == 1
    assert "read_transactions" in card.calls
    assert flow.result is not None and flow.result.recorded_on_card


def test_refused_record_can_be_confirmed_without_it(card: FakeCard, clock: StepClock) -> None:
    host = FakeHost(balance=5000)
    card.fault("append_transaction", "error")
    flow = run_discharge(discharge(card, host, clock), PayChoice.parse("account"),
                         lambda t: PIN)
    assert flow.state is D.CARD_PULLED and flow.record_state is RecordState.NOT_WRITTEN
    flow.confirm_without_record()
    assert flow.run_until_input() is D.DONE
    assert flow.result is not None and not flow.result.recorded_on_card
    assert "not recorded on the card" in flow.result.slip.notes
    assert card.log == [] and len(host.sales()) == 1


def test_card_without_a_log(clock: StepClock) -> None:
    card = FakeCard(supports_log=False)
    flow = run_discharge(discharge(card, FakeHost(balance=5000), clock),
                         PayChoice.parse("account"), lambda t: PIN)
    assert flow.state is D.DONE and flow.record_state is RecordState.UNSUPPORTED
    assert flow.result is not None
    assert "this card keeps no transaction log" in flow.result.slip.notes

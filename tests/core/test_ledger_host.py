"""The flows over the real embedded host (SQLite in tmp_path, ledger.client in-process):
the HostPort adapter, the host's own rules and books; the card is an in-memory card
carrying the host's numbers and real ARQCs."""

from __future__ import annotations

import pytest

from terminal.core.adapters import LedgerHost, PolicyCatalogue
from terminal.core.admission import Admission, AdmissionState, run_admission
from terminal.core.checkout import CancelSale, CancelState, Checkout, CheckoutState, run_checkout
from terminal.core.counter import ReportLoss
from terminal.core.discharge import Discharge, DischargeData, DischargeState, run_discharge
from terminal.core.machine import FailureKind
from terminal.core.model import CartLine, PayChoice, TerminalConfig
from terminal.core.ports import HostRefused
from tests.core.conftest import HOLDER, HOSPITAL, OFFICE, PHARMACY, EmbeddedHost
from tests.core.fakes import PIN
from tests.core.hostcard import HostIssuedCard

AMOXICILLIN = "XJ01CAA040A001010101445"  # 12.50, class 甲
LOSARTAN = "XC09CAA010A001010104312"      # 24.80, class 乙, 20 % up-front self-pay
PHARMA = TerminalConfig(institution_code=PHARMACY, institution_name="济宁市太白湖大药房")
HOSP = TerminalConfig(institution_code=HOSPITAL, institution_name="济宁市第一人民医院")


@pytest.fixture
def card(embedded: EmbeddedHost) -> HostIssuedCard:
    return HostIssuedCard(embedded.cardinfo, HOLDER)


@pytest.fixture
def pharmacy(embedded: EmbeddedHost):  # type: ignore[no-untyped-def]
    host = LedgerHost(embedded.client(PHARMACY))
    yield host
    host.close()


@pytest.fixture
def catalogue() -> PolicyCatalogue:
    return PolicyCatalogue.load("370800")


def test_checkout_over_the_real_host(embedded: EmbeddedHost, card: HostIssuedCard,
                                     pharmacy: LedgerHost, catalogue: PolicyCatalogue) -> None:
    flow = run_checkout(Checkout(card, pharmacy, catalogue, PHARMA),
                        [(AMOXICILLIN, 2), (LOSARTAN, 1)], lambda t: PIN)
    assert flow.state is CheckoutState.DONE, flow.message
    r = flow.result
    assert r is not None
    assert r.split.total == 2 * 1250 + 2480 and r.split.account == r.split.total
    assert r.split.balance_after == 50000 - r.split.total
    assert embedded.balances() == (50000 - r.split.total, 100000)
    assert embedded.books_problems() == []
    assert card.log[0].selfpay_fen == r.split.total and card.log[0].account_fen == 0


def test_bank_part_with_a_real_arqc(embedded: EmbeddedHost, card: HostIssuedCard,
                                    pharmacy: LedgerHost, catalogue: PolicyCatalogue) -> None:
    flow = run_checkout(Checkout(card, pharmacy, catalogue, PHARMA, pay=PayChoice.parse("bank")),
                        [(AMOXICILLIN, 1)], lambda t: PIN)
    assert flow.state is CheckoutState.DONE, flow.message
    assert embedded.balances() == (50000, 100000 - 1250)
    assert embedded.settlements()[0][5] == "bank"


def test_replayed_or_wrong_arqc_is_refused_and_cash_offered(
        embedded: EmbeddedHost, card: HostIssuedCard, pharmacy: LedgerHost,
        catalogue: PolicyCatalogue) -> None:
    card.atc = -1  # the card's ATC went backwards: a replay for the host
    flow = Checkout(card, pharmacy, catalogue, PHARMA, pay=PayChoice.parse("bank"))
    run_checkout(flow, [(AMOXICILLIN, 1)], lambda t: PIN, bank_fallback="cash")
    assert flow.state is CheckoutState.DONE
    assert flow.result is not None and flow.result.split.cash == 1250
    assert any(e.state is CheckoutState.BANK_FAILED and "ATC" in e.message
               for e in flow.history)
    assert embedded.balances() == (50000, 100000)


def test_cancel_finished_sale_over_the_real_host(
        embedded: EmbeddedHost, card: HostIssuedCard, pharmacy: LedgerHost,
        catalogue: PolicyCatalogue) -> None:
    flow = run_checkout(Checkout(card, pharmacy, catalogue, PHARMA), [(AMOXICILLIN, 4)],
                        lambda t: PIN)
    assert flow.result is not None
    cancel = CancelSale(card, pharmacy, flow.result, PHARMA)
    assert cancel.run_until_input() is CancelState.PIN
    cancel.enter_pin(PIN)
    assert cancel.run_until_input() is CancelState.DONE
    assert embedded.balances() == (50000, 100000)
    assert [s[1] for s in embedded.settlements()] == ["cancelled"]
    assert embedded.books_problems() == []


def test_void_after_a_pull_reverses_at_the_real_host(
        embedded: EmbeddedHost, card: HostIssuedCard, pharmacy: LedgerHost,
        catalogue: PolicyCatalogue) -> None:
    card.fault("append_transaction", "pull_before")
    flow = run_checkout(Checkout(card, pharmacy, catalogue, PHARMA), [(AMOXICILLIN, 1)],
                        lambda t: PIN)
    assert flow.state is CheckoutState.VOIDED
    assert embedded.balances() == (50000, 100000) and embedded.books_problems() == []
    assert card.log == []


def test_lost_card_stops_at_the_lookup(embedded: EmbeddedHost, card: HostIssuedCard,
                                       pharmacy: LedgerHost,
                                       catalogue: PolicyCatalogue) -> None:
    office = LedgerHost(embedded.client(OFFICE))
    assert ReportLoss(office, card.info.card_number, HOLDER["certno"]).run_until_input().value \
        == "done"
    office.close()
    flow = run_checkout(Checkout(card, pharmacy, catalogue, PHARMA), [(AMOXICILLIN, 1)],
                        lambda t: PIN)
    assert flow.state is CheckoutState.FAILED and flow.failure is not None
    assert flow.failure.kind is FailureKind.CARD_STATUS
    assert "reported lost" in flow.failure.message


def test_host_refusal_message_reaches_the_clerk(pharmacy: LedgerHost) -> None:
    with pytest.raises(HostRefused, match="settlement S000 does not exist") as exc:
        pharmacy.call("2103", {"data": {"setl_id": "S000", "mdtrt_id": "M0", "psn_no": "P"}})
    assert exc.value.code == "not_found"


def test_admission_and_discharge_over_the_real_host(
        embedded: EmbeddedHost, card: HostIssuedCard, catalogue: PolicyCatalogue) -> None:
    hospital = LedgerHost(embedded.client(HOSPITAL))
    adm = run_admission(Admission(card, hospital, HOSP))
    assert adm.state is AdmissionState.DONE, adm.message
    assert adm.result is not None and adm.result.mdtrt_id
    fees = [CartLine(catalogue.lookup(AMOXICILLIN), 10), CartLine(catalogue.lookup(LOSARTAN), 40)]
    dis = run_discharge(Discharge(card, hospital, DischargeData(adm.result.mdtrt_id), fees, HOSP),
                        PayChoice.parse("account+bank"), lambda t: PIN)
    assert dis.state is DischargeState.DONE, dis.message
    s = dis.result.split if dis.result else None
    assert s is not None and s.total == 10 * 1250 + 40 * 2480
    assert s.fund > 0 and s.account == 50000 and s.bank == s.total - s.fund - 50000
    assert embedded.balances() == (0, 100000 - s.bank)
    assert embedded.books_problems() == []
    hospital.close()

"""The live split: :meth:`Checkout.preview` quotes the cart (2101) without leaving CART, equals
the trial of the sale, and writes nothing at the host (fakes and the real embedded host)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from terminal.core.adapters import LedgerHost, PolicyCatalogue
from terminal.core.checkout import Checkout, CheckoutState
from terminal.core.machine import FlowStateError
from terminal.core.model import PayChoice, Split, TerminalConfig
from terminal.core.ports import HostRefused, HostTimeout, HostUnreachable
from tests.core.conftest import (
    HOLDER,
    PHARMACY,
    EmbeddedHost,
    StepClock,
    make_embedded_host,
)
from tests.core.fakes import FakeCard, FakeCatalogue, FakeHost
from tests.core.hostcard import HostIssuedCard

S = CheckoutState
PAYMENTS = ("account", "cash", "bank", "account+bank")


def at_cart(card: FakeCard, host: Any, catalogue: Any, config: TerminalConfig,
            clock: StepClock) -> Checkout:
    flow = Checkout(card, host, catalogue, config, clock=clock)
    assert flow.run_until_input() is S.CART
    return flow


def final_trial(flow: Checkout) -> Split:
    flow.confirm_cart()
    assert flow.run_until_input() is S.PIN, flow.message
    assert flow.trial is not None
    return flow.trial


# ------------------------------------------------------------------ fakes


def test_preview_stays_in_cart_and_equals_the_trial(
        card: FakeCard, host: FakeHost, catalogue: FakeCatalogue, config: TerminalConfig,
        clock: StepClock) -> None:
    flow = at_cart(card, host, catalogue, config, clock)
    flow.add_item("A001", 2)
    flow.add_item("C003", 1)
    history, ticks, calls = len(flow.history), clock.t, len(host.calls)
    seen: list[object] = []
    flow.subscribe(seen.append)
    quote = flow.preview()
    assert flow.state is S.CART and flow.awaiting is not None
    assert seen == [] and len(flow.history) == history  # no event, no transition
    assert clock.t == ticks and flow.order_no == "" and flow.trial is None
    assert [n for n, _ in host.calls[calls:]] == ["2101"]
    assert (quote.total, quote.account, quote.cash, quote.bank) == (3060, 3060, 0, 0)
    assert quote.balance_after == 50000 - 3060
    flow.add_item("B002", 1)  # the cart goes on after a preview
    again = flow.preview()
    assert again.total == 3060 + 1680
    assert final_trial(flow) == again
    assert host.sales() == [] and host.balance["P0001"] == 50000


def test_preview_quotes_another_payment_and_a_cart_snapshot(
        card: FakeCard, host: FakeHost, catalogue: FakeCatalogue, config: TerminalConfig,
        clock: StepClock) -> None:
    flow = at_cart(card, host, catalogue, config, clock)
    flow.add_item("A001", 2)
    snapshot = flow.cart.lines
    flow.add_item("B002", 3)
    cash = flow.preview(PayChoice.parse("cash"), lines=snapshot)
    assert (cash.total, cash.account, cash.cash) == (2500, 0, 2500)
    assert flow.pay == PayChoice()  # the flow's own choice is untouched
    bank = flow.preview(PayChoice.parse("bank"))
    assert (bank.total, bank.bank, bank.cash, bank.account) == (2500 + 3 * 1680, 7540, 0, 0)
    flow.set_payment(PayChoice.parse("bank"))
    assert final_trial(flow) == bank


def test_an_empty_cart_is_quoted_without_asking_the_host(
        card: FakeCard, host: FakeHost, catalogue: FakeCatalogue, config: TerminalConfig,
        clock: StepClock) -> None:
    flow = at_cart(card, host, catalogue, config, clock)
    calls = len(host.calls)
    quote = flow.preview()
    assert (quote.total, quote.fund, quote.account, quote.rest) == (0, 0, 0, 0)
    assert quote.balance_after == 50000 and len(host.calls) == calls


@pytest.mark.parametrize("fault,error", [
    ("refuse", HostRefused), ("timeout_before", HostTimeout), ("unreachable", HostUnreachable)])
def test_host_failures_are_raised_and_leave_the_cart_as_it_was(
        card: FakeCard, host: FakeHost, catalogue: FakeCatalogue, config: TerminalConfig,
        clock: StepClock, fault: str, error: type[Exception]) -> None:
    flow = at_cart(card, host, catalogue, config, clock)
    flow.add_item("A001", 1)
    history, lines = len(flow.history), flow.cart.lines
    host.fault("2101", fault)
    with pytest.raises(error) as info:
        flow.preview()
    if fault == "refuse":
        assert "refused 2101 by test" in str(info.value)
    assert flow.state is S.CART and flow.failure is None and len(flow.history) == history
    assert flow.cart.lines == lines
    assert "2601" not in [n for n, _ in host.calls]  # a trial is never reversed
    assert flow.preview().total == 1250  # the host is back: the preview works again
    assert final_trial(flow).total == 1250


def test_preview_only_in_the_cart(card: FakeCard, host: FakeHost, catalogue: FakeCatalogue,
                                  config: TerminalConfig, clock: StepClock) -> None:
    flow = Checkout(card, host, catalogue, config, clock=clock)
    with pytest.raises(FlowStateError):
        flow.preview()  # READ_CARD: nobody identified yet
    flow.run_until_input()
    flow.add_item("A001", 1)
    final_trial(flow)
    with pytest.raises(FlowStateError):
        flow.preview()  # PIN: the trial of the sale is under way
    assert flow.state is S.PIN


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=st.lists(st.tuples(st.sampled_from(["A001", "B002", "C003"]),
                                st.integers(1, 30)), min_size=1, max_size=6),
       pay=st.sampled_from(PAYMENTS), balance=st.integers(0, 20000))
def test_any_cart_preview_equals_its_trial_and_books_nothing(
        lines: list[tuple[str, int]], pay: str, balance: int) -> None:
    host = FakeHost(balance=balance)
    flow = Checkout(FakeCard(), host, FakeCatalogue(), TerminalConfig(), clock=StepClock(),
                    pay=PayChoice.parse(pay))
    flow.run_until_input()
    quotes = []
    for code, qty in lines:
        flow.add_item(code, qty)
        quotes.append(flow.preview())
    assert [q.total for q in quotes][-1] == flow.cart.total_fen
    assert host.applied == {} and host.balance["P0001"] == balance
    assert final_trial(flow) == quotes[-1]


# ------------------------------------------------------------------ the real embedded host

AMOXICILLIN = "XJ01CAA040A001010101445"  # 12.50, class 甲
LOSARTAN = "XC09CAA010A001010104312"      # 24.80, class 乙
VITAMIN_C = "XA11GAA000A001010100071"     # class 丙: self-paid
PHARMA = TerminalConfig(institution_code=PHARMACY, institution_name="济宁市太白湖大药房")


def row_counts(url: str) -> dict[str, int]:
    """Rows in every table of the host's database."""
    from ledger.store.base import open_store

    store = open_store(url)
    try:
        def count(tx: Any) -> dict[str, int]:
            names = [r[0] for r in tx.all(
                "SELECT name FROM sqlite_master WHERE type = 'table'")]
            return {n: int(tx.one(f'SELECT COUNT(*) FROM "{n}"')[0]) for n in names}
        return dict(store.run(count))
    finally:
        store.close()


@pytest.mark.parametrize("pay,balance", [("account", 50000), ("account", 3000),
                                         ("cash", 50000), ("account+bank", 1000)])
def test_preview_over_the_real_host_writes_nothing_and_equals_the_trial(
        tmp_path: Path, pay: str, balance: int) -> None:
    embedded: EmbeddedHost = make_embedded_host(tmp_path, balance=balance)
    host = LedgerHost(embedded.client(PHARMACY))
    try:
        card = HostIssuedCard(embedded.cardinfo, HOLDER)
        flow = Checkout(card, host, PolicyCatalogue.load("370800"), PHARMA, clock=StepClock(),
                        pay=PayChoice.parse(pay))
        assert flow.run_until_input() is S.CART, flow.message
        flow.add_item(AMOXICILLIN, 2)
        flow.add_item(LOSARTAN, 1)
        flow.add_item(VITAMIN_C, 1)
        before = row_counts(embedded.url)
        assert before["requests"] > 0 and before["entries"] > 0  # the counting sees writes
        quotes = [flow.preview() for _ in range(3)]
        other = flow.preview(PayChoice.parse("cash"))
        assert row_counts(embedded.url) == before
        assert embedded.balances() == (balance, 100000)
        assert quotes[0] == quotes[1] == quotes[2]
        q = quotes[0]
        assert q.total == flow.cart.total_fen and q.total == q.fund + q.account + q.rest
        use = PayChoice.parse(pay).use_account
        assert q.account == (min(balance, q.total - q.fund) if use else 0)
        assert q.balance_after == balance - q.account
        assert (other.account, other.cash) == (0, other.total - other.fund)
        trial = final_trial(flow)
        assert trial == q
        assert row_counts(embedded.url) == before  # the trial of the sale writes nothing too
    finally:
        host.close()


def test_preview_refused_by_the_real_host_keeps_the_cart(tmp_path: Path) -> None:
    from ledger.client import HostClient

    embedded = make_embedded_host(tmp_path)
    host = LedgerHost(embedded.client(PHARMACY))
    try:
        flow = Checkout(HostIssuedCard(embedded.cardinfo, HOLDER), host,
                        PolicyCatalogue.load("370800"), PHARMA, clock=StepClock())
        assert flow.run_until_input() is S.CART
        flow.add_item(AMOXICILLIN, 1)
        with HostClient.connect(embedded.url, fixmedins_code="B37080000CCB") as bank:
            bank.call("8103", {"data": {"card_no": embedded.cardinfo["card_no"],
                                        "certno": HOLDER["certno"], "loss_type": "1"}})
        before = row_counts(embedded.url)
        with pytest.raises(HostRefused) as info:
            flow.preview()
        assert "lost" in info.value.message
        assert flow.state is S.CART and flow.failure is None
        assert row_counts(embedded.url) == before
    finally:
        host.close()

"""Property: for any sequence of pulled cards, host timeouts and retries, the books balance
and the card's EF08 log agrees with the host (fake ports; the same property runs over the
real card and host in test_e2e.py)."""

from __future__ import annotations

from collections import Counter

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from terminal.core.checkout import CancelSale, CancelState, Checkout
from terminal.core.model import PayChoice, RestBy
from tests.core.conftest import StepClock
from tests.core.driver import drive, net_card_log
from tests.core.fakes import PIN, FakeCard, FakeCatalogue, FakeHost

CARD_OPS = ["read_basics", "pin_tries_left", "verify_pin", "bank_cryptogram",
            "supports_transaction_log", "append_transaction", "read_transactions"]
CARD_ACTIONS = ["pull_before", "pull_after", "error"]
HOST_OPS = ["1101", "2101", "2102", "2103", "2601"]
HOST_ACTIONS = ["timeout_before", "timeout_after", "refuse", "unreachable"]

fault = st.one_of(
    st.tuples(st.just("card"), st.sampled_from(CARD_OPS), st.sampled_from(CARD_ACTIONS)),
    st.tuples(st.just("host"), st.sampled_from(HOST_OPS), st.sampled_from(HOST_ACTIONS)),
)
sale = st.fixed_dictionaries({
    "items": st.lists(st.tuples(st.sampled_from(["A001", "B002", "C003"]),
                                st.integers(1, 3)), min_size=1, max_size=3),
    "pay": st.sampled_from([PayChoice(True, RestBy.CASH), PayChoice(True, RestBy.BANK),
                            PayChoice(False, RestBy.BANK), PayChoice(False, RestBy.CASH)]),
    "faults": st.lists(fault, max_size=4),
    "cancel_after": st.booleans(),
})


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sales=st.lists(sale, min_size=1, max_size=5), choices=st.lists(st.booleans()),
       balance=st.integers(0, 8000))
def test_books_and_card_log_agree_after_any_faults(sales: list[dict[str, object]],
                                                   choices: list[bool], balance: int) -> None:
    card = FakeCard()
    host = FakeHost(balance=balance, bank=6000)
    catalogue = FakeCatalogue()
    clock = StepClock()
    pick = iter(choices)
    for spec in sales:
        for kind, op, action in spec["faults"]:  # type: ignore[attr-defined]
            (card if kind == "card" else host).fault(op, action)
        card.insert()
        flow = Checkout(card, host, catalogue, pay=spec["pay"], clock=clock)  # type: ignore[arg-type]
        drive(flow, spec["items"], PIN, pick, card.insert)  # type: ignore[arg-type]
        card.faults.clear()
        host.faults.clear()
        if flow.result is not None and spec["cancel_after"]:
            card.insert()
            cancel = CancelSale(card, host, flow.result, clock=clock)
            if cancel.run_until_input() is CancelState.PIN:
                cancel.enter_pin(PIN)
                cancel.run_until_input()
            assert cancel.state in (CancelState.DONE, CancelState.FAILED)
        card.faults.clear()
        host.faults.clear()
        assert host.books_balance(), "every fen that left an account is in a sale in force"
        assert card.tries_left == card.max_tries, "the right PIN never costs a try"
    in_force = Counter((0, p.account + p.bank + p.cash, p.fund) for p in host.sales())
    assert net_card_log(card.log) == +in_force, "the card's EF08 log and the host agree"

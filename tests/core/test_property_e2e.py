"""Property over the real parts: a fixture card (copy) in the in-process virtual reader with
the PSAM, the embedded SQLite host behind a transport that loses answers. For any sequence
of pulled cards, lost host answers and retries: the books balance, and the card's DF04 EF08
log holds exactly the sales the host has in force."""

from __future__ import annotations

import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from terminal.core.adapters import PolicyCatalogue
from terminal.core.checkout import Checkout, CheckoutState
from terminal.core.machine import FlowEvent
from terminal.core.model import PayChoice, TerminalConfig
from tests.core import hosting
from tests.core.driver import drive
from tests.core.station import PINS, Station

AMOX, IBU = "XJ01CAA040A001010101445", "XN02BEA010A001010101581"
PHARMA = TerminalConfig(institution_code="P37080000001")
CATALOGUE = PolicyCatalogue.load("370800")

pull = st.tuples(st.just("pull"), st.integers(0, 45),
                 st.sampled_from([None, "command.received", "commit.before", "commit.after"]))
record_pull = st.tuples(st.just("record_pull"), st.integers(0, 6),
                        st.sampled_from([None, "command.received", "commit.before",
                                         "commit.after"]))
lose = st.tuples(st.just("lose"), st.sampled_from(["1101", "2101", "2102", "2103", "2601"]),
                 st.sampled_from(["before", "after"]))
sale = st.fixed_dictionaries({
    "items": st.lists(st.tuples(st.sampled_from([AMOX, IBU]), st.integers(1, 9)),
                      min_size=1, max_size=2, unique_by=lambda t: t[0]),
    "pay": st.sampled_from(["account", "account+bank", "bank", "cash"]),
    "faults": st.lists(st.one_of(pull, record_pull, lose), max_size=3),
})


@pytest.mark.slow
@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(sales=st.lists(sale, min_size=1, max_size=3), choices=st.lists(st.booleans()))
def test_books_card_log_and_host_agree(sales: list[dict[str, Any]],
                                       choices: list[bool]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        station = Station.build(Path(tmp), ("zhang-san",), balance=8000, bank_deposit=30000)
        try:
            run_sales(station, sales, iter(choices))
            check(station)
        finally:
            station.close()


def run_sales(station: Station, sales: list[dict[str, Any]], choices: Iterator[bool]) -> None:
    card = station.insert("zhang-san")
    host = station.host("P37080000001", flaky=True)
    lossy = station.flaky[-1]
    for spec in sales:
        at_record: list[tuple[int, str | None]] = []
        for kind, a, b in spec["faults"]:
            if kind == "pull":
                card.faults.pull_at(a, b)
            elif kind == "record_pull":
                at_record.append((a, b))
            else:
                lossy.lose(a, b)
        station.insert("zhang-san")
        flow = Checkout(station.reader_card(), host, CATALOGUE, PHARMA,
                        pay=PayChoice.parse(str(spec["pay"])))

        def arm(e: FlowEvent[CheckoutState],
                at_record: list[tuple[int, str | None]] = at_record) -> None:
            # pull the card in the few commands that write the sale on the card
            if e.state is CheckoutState.RECORD and at_record:
                card.faults.pull_at(*at_record.pop(0))

        flow.subscribe(arm)
        drive(flow, list(spec["items"]), PINS["zhang-san"], choices,
              lambda: station.insert("zhang-san"))
        event(f"ended {flow.state.name}")
        for seen in {e.state.name for e in flow.history} & {"CARD_PULLED", "REVERSE",
                                                              "REVERSAL_PENDING", "BANK_FAILED"}:
            event(f"went through {seen}")
        card.faults.clear()
        lossy.plan.clear()
        # a reversal the client could not deliver goes out before its next request
        host.client.flush_reversals()


def check(station: Station) -> None:
    assert hosting.books_problems(station.url) == []
    who = station.enrolled["zhang-san"]
    rows = [r for r in hosting.settlements(station.url) if r[7] == who.card_no]
    in_force = [r for r in rows if r[1] == "settled"]
    medical, bank = station.balances("zhang-san")
    assert medical == 8000 - sum(r[2] for r in in_force)
    assert bank == 30000 - sum(r[3] for r in in_force if r[6] == "bank")
    station.insert("zhang-san")
    card = station.reader_card()
    card.read_basics()
    card.verify_pin(PINS["zhang-san"])
    on_card = Counter((r.selfpay_fen, r.fund_fen) for r in card.read_transactions())
    at_host = Counter((r[2] + r[3], r[4]) for r in in_force)
    assert on_card == at_host

"""The bank test (spec/host.md §4): terminals, a nemesis that SIGKILLs the host (and crashes
PostgreSQL), a checker of the books — and proof that the checker catches broken books."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ledger import books
from ledger.client import HostClient, drug_line
from ledger.populate import holder, populate
from ledger.service import initialize
from ledger.store import open_store
from terminal.sim import banktest
from terminal.sim.hostproc import postgres_bin
from tests.support import TIMED, require


@pytest.mark.slow
@TIMED
def test_bank_test_on_sqlite_keeps_the_books() -> None:
    result = banktest.run_bank_test("sqlite", seconds=10, workers=3, holders=30, seed=1,
                                    min_settlements=30)
    assert result.check.problems == []
    stats = result.check.stats
    assert result.host_kills >= 2
    assert stats["settlements_acknowledged"] >= 30
    assert stats["unknown"] > 0            # the nemesis really cut requests short
    assert stats["unresolved"] == 0


@pytest.mark.slow
@pytest.mark.postgres
@TIMED
def test_bank_test_on_postgresql_keeps_the_books() -> None:
    if postgres_bin() is None:
        require("postgresql", "install the PostgreSQL server (apt-get install postgresql)")
    result = banktest.run_bank_test("postgresql", seconds=10, workers=3, holders=30, seed=2,
                                    min_settlements=30)
    assert result.check.problems == []
    assert result.host_kills >= 1
    assert result.db_restarts >= 1
    assert result.check.stats["settlements_acknowledged"] >= 30


# -- the checker has teeth ---------------------------------------------------------------------


@pytest.fixture
def books_db(tmp_path: Path) -> Iterator[tuple[Any, HostClient, set[str]]]:
    url = f"sqlite:///{tmp_path / 'host.db'}"
    store = open_store(url)
    initialize(store)
    populate(store, 5)
    before = banktest.snapshot(store)
    client = HostClient.connect(url, fixmedins_code="P37080000001")
    try:
        yield store, client, before
    finally:
        client.close()
        store.close()


def _sale(client: HostClient, i: int = 0) -> tuple[dict[str, Any], dict[str, Any]]:
    h = holder(i, "370800")
    lines = [drug_line("1", "XJ01CAA040A001010101445", 2, 1250)]
    env = client.envelope("2102", client.druginfo(
        psn_no=str(h["psn_no"]), lines=lines, card_no=str(h["card_no"]),
        card_sn=str(h["card_sn"]), insutype=str(h["insutype"])))
    outcome, ans = banktest.send(client, env)
    assert outcome == "ok", ans
    ev = {"op": "sale", "infno": "2102", "msgid": env["msgid"], "outcome": "ok",
          "t0": time.time(), "out": banktest._summary("2102", ans), "w": 0}
    return env, ev


def test_checker_accepts_consistent_books(books_db: tuple[Any, HostClient, set[str]]) -> None:
    store, client, before = books_db
    _, ev = _sale(client)
    assert banktest.check(store, [ev], before).problems == []


def test_checker_catches_a_lost_acknowledged_settlement(
        books_db: tuple[Any, HostClient, set[str]]) -> None:
    store, client, before = books_db
    _, ev = _sale(client)
    ghost = dict(ev, msgid=ev["msgid"][:-3] + "999")
    problems = banktest.check(store, [ev, ghost], before).problems
    assert any("is not in the books" in p for p in problems)


def test_checker_catches_wrong_amounts_and_phantoms(
        books_db: tuple[Any, HostClient, set[str]]) -> None:
    store, client, before = books_db
    _, ev = _sale(client)
    lied = dict(ev, out=dict(ev["out"], acct_pay="0.01"))
    h = holder(1, "370800")

    def phantom(tx: Any) -> None:
        books.post(tx, books.Entry(
            entry_id="EPHANTOM", msgid="P37080000001202601010000009999", kind="credit:medical",
            day="2026-01-01", fixmedins_code="S37080000001", created_at="2026-01-01T00:00:00",
            postings=[(books.contrib("370800"), -100), (books.medical(str(h["psn_no"])), 100)]))
    store.run(phantom)
    problems = banktest.check(store, [lied], before).problems
    assert any("the answer said 0.01" in p for p in problems)
    assert any(p.startswith("phantom") for p in problems)


def test_checker_catches_refused_writes_and_unresolved_unknowns(
        books_db: tuple[Any, HostClient, set[str]]) -> None:
    store, client, before = books_db
    _, ev = _sale(client)
    refused = dict(ev, outcome="failed", out={}, err_code="insufficient_funds")
    problems = banktest.check(store, [refused], before).problems
    assert any("refused every time but wrote" in p for p in problems)
    unknown = dict(ev, msgid=ev["msgid"][:-3] + "998", outcome="unknown", out={})
    problems = banktest.check(store, [ev, unknown], before).problems
    assert any("never resolved" in p for p in problems)


def test_checker_catches_a_duplicate_with_a_different_answer(
        books_db: tuple[Any, HostClient, set[str]]) -> None:
    store, client, before = books_db
    _, ev = _sale(client)
    dup = dict(ev, op="duplicate", out=dict(ev["out"], setl_id="S-other"))
    problems = banktest.check(store, [ev, dup], before).problems
    assert any(p.startswith(f"duplicate {ev['msgid']}") for p in problems)

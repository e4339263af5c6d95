"""The PostgreSQL store's statements at the libpq level (:class:`ledger.store.postgres.Wire`):
one round trip less per transaction, the same rows as psycopg's cursor, and no state lost
when the server forgets prepared statements or a statement is cut off."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger import books
from ledger.errors import InsufficientFunds
from ledger.service import initialize
from ledger.store import postgres
from ledger.store.base import Tx
from ledger.store.postgres import PostgresStore, Wire, _numbered


def _one_conn(pg_url: str) -> Iterator[PostgresStore]:
    sep = "&" if "?" in pg_url else "?"
    store = PostgresStore(f"{pg_url}{sep}schema=t_{uuid.uuid4().hex[:12]}&pool=1")
    store.run(lambda tx: tx.execute("CREATE TABLE w (k TEXT PRIMARY KEY, n BIGINT NOT NULL)"))
    try:
        yield store
    finally:
        store.drop_schema()


@pytest.fixture(params=["wire", "cursor"])
def one_conn(request: pytest.FixtureRequest, pg_url: str,
             monkeypatch: pytest.MonkeyPatch) -> Iterator[PostgresStore]:
    """A store of one connection (so every transaction meets the same one), through the wire
    or, as where libpq has no pipeline mode, through psycopg's cursor."""
    monkeypatch.setattr(postgres, "_PIPELINE", request.param == "wire")
    yield from _one_conn(pg_url)


@pytest.fixture
def wire(pg_url: str) -> Iterator[PostgresStore]:
    """A store of one connection, through the wire."""
    assert postgres._PIPELINE, "psycopg[binary] bundles a libpq with pipeline mode"
    yield from _one_conn(pg_url)


def _round_trips(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    seen: list[str] = []
    results, command = Wire._results, postgres.PostgresTx._command

    def counted_results(self: Wire) -> Any:
        seen.append("statement")
        return results(self)

    def counted_command(self: postgres.PostgresTx, sql: bytes) -> None:
        seen.append(sql.decode().split()[0])
        command(self, sql)
    monkeypatch.setattr(Wire, "_results", counted_results)
    monkeypatch.setattr(postgres.PostgresTx, "_command", counted_command)
    return seen


@pytest.mark.postgres
def test_begin_travels_with_the_first_statement(one_conn: PostgresStore,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    seen = _round_trips(monkeypatch)

    def two(tx: Tx) -> Any:
        tx.execute("INSERT INTO w (k, n) VALUES (?, ?)", ("a", 1))
        return tx.one("SELECT n FROM w WHERE k = ?", ("a",))
    assert one_conn.run(two) == (1,)
    if postgres._PIPELINE:
        assert seen == ["statement", "statement", "COMMIT"]
    else:
        assert seen == ["BEGIN", "COMMIT"]       # the cursor's statements are not counted

    # it is one transaction: a failure after the first statement leaves nothing
    def half(tx: Tx) -> None:
        tx.execute("INSERT INTO w (k, n) VALUES (?, ?)", ("b", 2))
        raise LookupError("stop")
    with pytest.raises(LookupError):
        one_conn.run(half)
    assert one_conn.run(lambda tx: tx.one("SELECT COUNT(*) FROM w WHERE k = 'b'")) == (0,)


@pytest.mark.postgres
def test_rows_come_back_as_psycopg_loads_them(one_conn: PostgresStore) -> None:
    one_conn.run(lambda tx: tx.execute("INSERT INTO w (k, n) VALUES ('x', 7), ('y', 5)"))
    query = ("SELECT 1::int2, 2::int4, 3000000000::int8, 1.50::numeric, 'é'::text, NULL, "
             "true, (SELECT SUM(n) FROM w), ?, ?, ?")
    params = ("文字", 2**40, None)
    got = one_conn.run(lambda tx: tx.one(query, params))
    with one_conn.connect() as conn:
        want = conn.execute(query.replace("?", "%s"), params).fetchone()
    assert got == want == (1, 2, 3000000000, Decimal("1.50"), "é", None, True, Decimal(12),
                           "文字", 2**40, None)
    rows = one_conn.run(lambda tx: tx.all("SELECT k, n FROM w ORDER BY n"))
    assert rows == [("y", 5), ("x", 7)]
    first = one_conn.run(lambda tx: tx.one("SELECT k FROM w ORDER BY k DESC"))
    assert first == ("y",)


@pytest.mark.postgres
def test_each_statement_is_prepared_once_per_connection(wire: PostgresStore) -> None:
    one_conn = wire
    for i in range(5):
        one_conn.run(lambda tx, i=i: tx.execute("INSERT INTO w (k, n) VALUES (?, ?)",
                                                (f"k{i}", 100_000 + i)))
    names = one_conn.run(lambda tx: tx.all(
        "SELECT name, statement FROM pg_prepared_statements WHERE name LIKE 'sscard%%' "
        "ORDER BY name"))
    assert [s for _, s in names].count("INSERT INTO w (k, n) VALUES ($1, $2)") == 1


@pytest.mark.postgres
def test_statements_the_server_forgot_are_prepared_again(one_conn: PostgresStore) -> None:
    get = "SELECT n FROM w WHERE k = ?"
    one_conn.run(lambda tx: tx.execute("INSERT INTO w (k, n) VALUES (?, ?)", ("a", 1)))
    assert one_conn.run(lambda tx: tx.one(get, ("a",))) == (1,)
    one_conn.run(lambda tx: tx.execute("DEALLOCATE ALL"))
    assert one_conn.run(lambda tx: tx.one(get, ("a",))) == (1,)
    assert one_conn.run(lambda tx: (tx.execute("INSERT INTO w (k, n) VALUES (?, ?)",
                                               ("b", 2)), tx.one(get, ("b",)))[1]) == (2,)


@pytest.mark.postgres
def test_a_statement_cut_off_drops_its_connection(wire: PostgresStore,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    one_conn = wire
    one_conn.run(lambda tx: tx.execute("INSERT INTO w (k, n) VALUES ('a', 1)"))
    results = Wire._results
    cut = [True]

    def interrupted(self: Wire) -> Any:
        if cut.pop() if cut else False:
            raise KeyboardInterrupt
        return results(self)
    monkeypatch.setattr(Wire, "_results", interrupted)
    with pytest.raises(KeyboardInterrupt):
        one_conn.run(lambda tx: tx.execute("UPDATE w SET n = n + 1 WHERE k = 'a'"))
    # the pool's only connection was closed, a new one takes over; nothing was applied
    assert one_conn.run(lambda tx: tx.one("SELECT n FROM w WHERE k = 'a'")) == (1,)


@pytest.mark.postgres
def test_waiting_for_the_server_lets_other_threads_run(one_conn: PostgresStore) -> None:
    ticks: list[float] = []
    stop = threading.Event()

    def ticker() -> None:
        while not stop.is_set():
            ticks.append(time.monotonic())
            time.sleep(0.01)
    t = threading.Thread(target=ticker)
    t.start()
    try:
        start = time.monotonic()
        one_conn.run(lambda tx: tx.one("SELECT pg_sleep(0.5)"))
        end = time.monotonic()
    finally:
        stop.set()
        t.join()
    assert end - start >= 0.5
    assert len([x for x in ticks if start + 0.1 < x < end - 0.1]) >= 5


@given(st.lists(st.text(alphabet="SELCT ,=()'x$%\n", max_size=8), min_size=1, max_size=6),
       st.lists(st.sampled_from(["%s", "%%"]), max_size=5))
def test_placeholders_are_numbered_in_order(pieces: list[str], marks: list[str]) -> None:
    pieces = [p.replace("%", "") for p in pieces]
    marks = marks[:len(pieces) - 1]
    sql = pieces[0] + "".join(m + p for m, p in zip(marks, pieces[1:], strict=False))
    n = 0
    want = pieces[0]
    for m, p in zip(marks, pieces[1:], strict=False):
        if m == "%s":
            n += 1
            want += f"${n}{p}"
        else:
            want += "%" + p
    assert _numbered(sql) == want.encode()


def _entry(eid: str, postings: list[tuple[str, int]]) -> books.Entry:
    return books.Entry(entry_id=eid, msgid=eid, kind="test", day="2026-11-28",
                       fixmedins_code="S37080000001", created_at="t", postings=postings)


@pytest.mark.postgres
def test_the_last_writes_and_commit_share_a_round_trip(wire: PostgresStore,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    initialize(wire)
    wire.run(lambda tx: (books.open_account(tx, books.medical("P1"), "P1"),
                         books.post(tx, _entry("E1", [(books.contrib("370800"), -1000),
                                                      (books.medical("P1"), 1000)]))))
    seen = _round_trips(monkeypatch)

    def pay(eid: str, fen: int) -> Any:
        def work(tx: Tx) -> Any:
            bal = books.balance(tx, books.medical("P1"))          # a read, then the writes
            books.post(tx, _entry(eid, [(books.medical("P1"), -fen),
                                        (books.clearing("X"), fen)]))
            return bal
        return wire.run(work)
    assert pay("E2", 400) == 1000
    assert seen == ["statement", "statement"]        # BEGIN + read; writes + COMMIT
    # a guard that fails at the server commits nothing and is explained by the check
    seen.clear()
    with pytest.raises(InsufficientFunds, match=r"holds 6.00 yuan, 6.01 yuan needed"):
        pay("E3", 601)
    assert wire.run(lambda tx: books.balance(tx, books.medical("P1"))) == 600
    assert wire.run(lambda tx: tx.one("SELECT COUNT(*) FROM entries WHERE entry_id = 'E3'")
                    ) == (0,)
    assert wire.run(books.verify) == []
    assert pay("E4", 600) == 600                      # the connection goes on as before
    assert wire.run(lambda tx: books.balance(tx, books.medical("P1"))) == 0

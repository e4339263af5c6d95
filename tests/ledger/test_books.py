"""The books on both back ends: append-only journal, balanced entries, no overdraft."""

from __future__ import annotations

import pytest

from ledger import books
from ledger.errors import InsufficientFunds
from ledger.service import HostService, initialize
from ledger.store.base import Claimed, Store, Tx, available_migrations


def _entry(eid: str, postings: list[tuple[str, int]]) -> books.Entry:
    return books.Entry(entry_id=eid, msgid=eid, kind="test", day="2026-11-28",
                       fixmedins_code="S37080000001", created_at="t", postings=postings)


def _setup(store: Store) -> None:
    initialize(store)

    def w(tx: Tx) -> None:
        books.open_account(tx, books.medical("P1"), "P1")
        books.post(tx, _entry("E1", [(books.contrib("370800"), -1000),
                                     (books.medical("P1"), 1000)]))
    store.run(w)


def test_migrations_are_versioned_and_idempotent(store: Store) -> None:
    assert store.schema_version() == 0
    out = initialize(store)
    assert out["migrations"] == [v for v, _, _ in available_migrations(store.dialect)]
    assert initialize(store)["migrations"] == []
    assert store.schema_version() == max(out["migrations"])



def test_a_failure_half_way_through_init_leaves_the_database_as_it_was(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """Migrations and the policies' load are one transaction: the database fails (here:
    an error raised from the fifth account opened) after the tables were created and some
    rows written, and nothing of it stays; init run again completes."""
    real = books.open_account
    opened: list[str] = []

    def failing(tx: Tx, account_id: str, owner: str) -> None:
        real(tx, account_id, owner)
        opened.append(account_id)
        if len(opened) == 5:
            raise ConnectionError("the database went away")

    monkeypatch.setattr(books, "open_account", failing)
    with pytest.raises(ConnectionError):
        initialize(store)
    assert len(opened) == 5
    assert store.schema_version() == 0
    monkeypatch.setattr(books, "open_account", real)
    out = initialize(store)
    assert out["migrations"] == [v for v, _, _ in available_migrations(store.dialect)]
    n = store.run(lambda tx: tx.one("SELECT COUNT(*) FROM policies"))
    assert n is not None and int(n[0]) == len(out["areas"]) > 0

def test_journal_is_append_only(store: Store) -> None:
    _setup(store)
    for sql in ("UPDATE postings SET amount = 5 WHERE entry_id = 'E1'",
                "DELETE FROM postings WHERE entry_id = 'E1'",
                "UPDATE entries SET memo = 'x' WHERE entry_id = 'E1'",
                "DELETE FROM entries WHERE entry_id = 'E1'"):
        with pytest.raises(Exception, match="append-only"):
            store.run(lambda tx, sql=sql: tx.execute(sql))
    assert store.run(lambda tx: books.entry_postings(tx, "E1")) == [
        ("contrib:370800", -1000), ("medical:P1", 1000)]


def test_unbalanced_entry_is_refused(store: Store) -> None:
    _setup(store)
    with pytest.raises(AssertionError, match="does not balance"):
        store.run(lambda tx: books.post(tx, _entry("E2", [(books.medical("P1"), 5)])))


def test_overdraft_is_refused_and_nothing_written(store: Store) -> None:
    _setup(store)
    with pytest.raises(InsufficientFunds, match=r"holds 10.00 yuan, 10.01 yuan needed"):
        store.run(lambda tx: books.post(tx, _entry("E2", [(books.medical("P1"), -1001),
                                                          (books.clearing("X"), 1001)])))
    assert store.run(lambda tx: books.balance(tx, books.medical("P1"))) == 1000
    assert store.run(lambda tx: tx.one("SELECT COUNT(*) FROM entries WHERE entry_id = 'E2'")
                     )[0] == 0


def test_database_check_forbids_negative_balance(store: Store) -> None:
    """Even a caller that bypasses books.post cannot drive a guarded balance negative."""
    _setup(store)
    with pytest.raises(Exception, match=r"balance_never_negative|CHECK"):
        store.run(lambda tx: tx.execute(
            "UPDATE accounts SET balance = -1 WHERE account_id = 'medical:P1'"))


def test_verify_finds_inconsistency(store: Store) -> None:
    _setup(store)
    assert store.run(books.verify) == []
    store.run(lambda tx: tx.execute(
        "UPDATE accounts SET balance = 999 WHERE account_id = 'medical:P1'"))
    assert any("postings sum to 1000" in p for p in store.run(books.verify))


def test_unconstrained_accounts_sum_postings(host: HostService) -> None:
    _ = host
    store = host.store
    store.run(lambda tx: books.post(tx, _entry("E9", [(books.fund("370800"), -70),
                                                      (books.clearing("P37080000001"), 70)])))
    assert store.run(lambda tx: books.balance(tx, books.fund("370800"))) == -70


def test_entries_posted_together_all_take_effect(store: Store) -> None:
    """Several entries posted in one transaction, two of them on the same guarded account:
    both balance changes count (the PostgreSQL store sends deferred writes as one
    statement, which must never update the same row twice), and the second is checked
    against the balance the first left."""
    _setup(store)

    def two(tx: Tx) -> None:
        books.post(tx, _entry("E2", [(books.medical("P1"), -300), (books.clearing("X"), 300)]))
        books.post(tx, _entry("E3", [(books.medical("P1"), -200), (books.clearing("X"), 200)]))
    store.run(two)
    assert store.run(lambda tx: books.balance(tx, books.medical("P1"))) == 500
    assert store.run(books.verify) == []

    def too_much(tx: Tx) -> None:
        books.post(tx, _entry("E4", [(books.medical("P1"), -400), (books.clearing("X"), 400)]))
        books.post(tx, _entry("E5", [(books.medical("P1"), -101), (books.clearing("X"), 101)]))
    with pytest.raises(InsufficientFunds, match=r"holds 1.00 yuan, 1.01 yuan needed"):
        store.run(too_much)
    assert store.run(lambda tx: books.balance(tx, books.medical("P1"))) == 500
    assert store.run(lambda tx: tx.one("SELECT COUNT(*) FROM entries WHERE entry_id IN "
                                       "('E4', 'E5')"))[0] == 0


def _claim_table(tx: Tx) -> None:
    tx.execute("CREATE TABLE IF NOT EXISTS probe (k TEXT PRIMARY KEY, n INTEGER NOT NULL)")


def test_a_claim_travels_with_the_first_query_in_its_order(store: Store) -> None:
    """The msgid claim and the transaction's first query: the claim holds (or raises
    Claimed for a taken key, or calls ``missing`` when its condition inserted nothing) and
    the query's rows come back complete and in their order."""
    store.run(_claim_table)
    store.run(lambda tx: tx.many("INSERT INTO probe (k, n) VALUES (?, ?)",
                                 [(f"p{i}", i) for i in range(5)]))
    claim = "INSERT INTO probe (k, n) SELECT ?, ? WHERE ? = 'yes'"

    def missing(tx: Tx) -> None:
        raise LookupError("condition failed")

    def first(tx: Tx) -> list[tuple[object, ...]]:
        tx.claim(claim, ("c1", 100, "yes"), missing)
        return [tuple(r) for r in tx.all("SELECT k, n FROM probe WHERE n < ? ORDER BY n DESC",
                                         (100,))]
    assert store.run(first) == [(f"p{i}", i) for i in (4, 3, 2, 1, 0)]
    assert store.run(lambda tx: tx.one("SELECT n FROM probe WHERE k = 'c1'")) == (100,)

    def none_found(tx: Tx) -> object:
        tx.claim(claim, ("c2", 101, "yes"), missing)
        return tx.one("SELECT k FROM probe WHERE n > ?", (1000,))
    assert store.run(none_found) is None
    with pytest.raises(Claimed):
        store.run(lambda tx: (tx.claim(claim, ("c1", 102, "yes"), missing),
                              tx.one("SELECT 1 FROM probe"))[1])
    with pytest.raises(LookupError):
        store.run(lambda tx: (tx.claim(claim, ("c3", 103, "no"), missing),
                              tx.one("SELECT 1 FROM probe"))[1])
    assert store.run(lambda tx: tx.one("SELECT COUNT(*) FROM probe WHERE k IN ('c3')")) == (0,)

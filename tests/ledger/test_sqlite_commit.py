"""SQLite commits. Group commit: transactions queued while another one holds the write
lock are committed together (one ``COMMIT``, one fsync), each in its own savepoint; each
stays atomic, sees the ones before it, and its caller hears of it only after the commit.
Checkpoints: the WAL is copied back every ``CHECKPOINT_FRAMES`` pages, so it stays
bounded."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.errors import Refused
from ledger.service import HostService, initialize
from ledger.store.base import Tx
from ledger.store.sqlite import CHECKPOINT_FRAMES, PAGE_SIZE, SqliteStore
from tests.ledger.helpers import AMOXICILLIN, PHARMACY, World, balances, envelope, terminal, verify

SCHEMA = """
CREATE TABLE acct (id TEXT PRIMARY KEY, balance INTEGER NOT NULL CHECK (balance >= 0));
CREATE TABLE log (n INTEGER PRIMARY KEY, note TEXT NOT NULL);
CREATE TABLE parent (id TEXT PRIMARY KEY);
CREATE TABLE child (id TEXT PRIMARY KEY,
                    parent TEXT REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED);
INSERT INTO acct VALUES ('a', 100), ('b', 0);
"""


def group_sizes(store: SqliteStore) -> list[int]:
    """The size of every group ``store`` commits from now on (filled as they run)."""
    sizes: list[int] = []
    run_group = store._run_group

    def counted(batch: list[Any]) -> None:
        sizes.append(len(batch))
        run_group(batch)

    store._run_group = counted  # type: ignore[method-assign]
    return sizes


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    s = SqliteStore(f"sqlite:///{tmp_path}/g.db")
    s.script(SCHEMA)
    s.groups = group_sizes(s)  # type: ignore[attr-defined]
    yield s
    s.close()


class Queued:
    """Transactions started one after another while a first one holds the write lock, so
    that they queue in a known order; then the lock is let go."""

    def __init__(self, store: SqliteStore) -> None:
        self.store = store
        self.gate = threading.Event()
        self.held = threading.Event()
        self.results: dict[int, Any] = {}
        self.threads: list[threading.Thread] = []

        def blocker(tx: Tx) -> str:
            self.held.set()
            assert self.gate.wait(10)
            return "blocker"

        self._start(-1, blocker)
        assert self.held.wait(10)

    def _start(self, key: int, fn: Callable[[Tx], Any]) -> None:
        def go() -> None:
            try:
                self.results[key] = self.store.run(fn)
            except BaseException as exc:
                self.results[key] = exc
        t = threading.Thread(target=go)
        self.threads.append(t)
        t.start()

    def add(self, fn: Callable[[Tx], Any]) -> None:
        waiting = len(self.store._pending)
        self._start(len(self.threads) - 1, fn)
        deadline = time.monotonic() + 10
        while len(self.store._pending) <= waiting:
            assert time.monotonic() < deadline, "the transaction never queued"
            time.sleep(0.001)

    def release(self) -> dict[int, Any]:
        self.gate.set()
        for t in self.threads:
            t.join(20)
        return self.results


def move(src: str, dst: str, amount: int, note: str) -> Callable[[Tx], int]:
    def fn(tx: Tx) -> int:
        tx.execute("UPDATE acct SET balance = balance + ? WHERE id = ?", (amount, dst))
        tx.execute("UPDATE acct SET balance = balance - ? WHERE id = ?", (amount, src))
        tx.execute("INSERT INTO log (note) VALUES (?)", (note,))
        row = tx.one("SELECT balance FROM acct WHERE id = ?", (src,))
        assert row is not None
        return int(row[0])
    return fn


def state(store: SqliteStore) -> tuple[dict[str, int], list[str]]:
    def q(tx: Tx) -> tuple[dict[str, int], list[str]]:
        acct = {str(r[0]): int(r[1]) for r in tx.all("SELECT id, balance FROM acct")}
        return acct, [str(r[0]) for r in tx.all("SELECT note FROM log ORDER BY n")]
    return store.run(q)


def test_waiting_transactions_commit_together_each_seeing_the_ones_before(
        store: SqliteStore) -> None:
    q = Queued(store)
    for i in range(5):
        q.add(move("a", "b", 10, f"m{i}"))
    results = q.release()
    assert store.groups == [1, 5]                         # type: ignore[attr-defined]
    assert [results[i] for i in range(5)] == [90, 80, 70, 60, 50]
    assert results[-1] == "blocker"
    assert state(store) == ({"a": 50, "b": 50}, [f"m{i}" for i in range(5)])


def test_a_transaction_that_fails_in_a_group_leaves_nothing_and_spares_the_others(
        store: SqliteStore) -> None:
    def refused(tx: Tx) -> None:
        tx.execute("INSERT INTO log (note) VALUES ('refused')")
        tx.execute("UPDATE acct SET balance = 0 WHERE id = 'a'")
        raise Refused("no")

    q = Queued(store)
    q.add(move("a", "b", 30, "first"))
    q.add(refused)
    q.add(move("a", "b", 500, "overdraws"))               # CHECK balance >= 0 fails
    q.add(move("a", "b", 30, "last"))
    results = q.release()
    assert store.groups == [1, 4]                         # type: ignore[attr-defined]
    assert results[0] == 70
    assert isinstance(results[1], Refused)
    assert isinstance(results[2], sqlite3.IntegrityError)
    assert results[3] == 40                               # saw "first", not the failures
    assert state(store) == ({"a": 40, "b": 60}, ["first", "last"])


def test_a_failed_commit_fails_every_transaction_of_the_group(store: SqliteStore) -> None:
    def orphan(tx: Tx) -> None:      # a deferred foreign key: checked only at COMMIT
        tx.execute("INSERT INTO child VALUES ('c', 'nobody')")

    q = Queued(store)
    q.add(move("a", "b", 10, "innocent"))
    q.add(orphan)
    results = q.release()
    assert all(isinstance(results[i], sqlite3.IntegrityError) for i in (0, 1))
    assert state(store) == ({"a": 100, "b": 0}, [])       # nothing of the group written
    assert store.run(move("a", "b", 10, "after")) == 90   # and the store goes on


def test_an_interrupted_leader_leaves_the_others_to_run_again(store: SqliteStore) -> None:
    """A signal (Ctrl-C) reaching the thread that runs a group, while it runs one of the
    group's transactions: the whole group is rolled back, the interrupted thread stops
    (its own transaction not written), the others run again by themselves."""
    signals = [KeyboardInterrupt()]
    leader: list[threading.Thread] = []

    def interrupted(tx: Tx) -> None:
        tx.execute("INSERT INTO log (note) VALUES ('interrupted')")
        if signals:
            leader.append(threading.current_thread())
            raise signals.pop()

    q = Queued(store)
    q.add(move("a", "b", 10, "before"))
    q.add(interrupted)
    q.add(move("a", "b", 10, "after"))
    results = q.release()
    stopped = q.threads.index(leader[0]) - 1      # whichever thread ran the group
    assert isinstance(results[stopped], KeyboardInterrupt)
    notes = {0: "before", 1: "interrupted", 2: "after"}
    ran = [k for k in notes if k != stopped]
    assert all(not isinstance(results[k], BaseException) for k in ran)
    moved = [k for k in ran if k != 1]
    acct, logged = state(store)
    assert sorted(logged) == sorted(notes[k] for k in ran)
    assert acct == {"a": 100 - 10 * len(moved), "b": 10 * len(moved)}
    assert sorted(results[k] for k in moved) == [100 - 10 * n for n in range(len(moved), 0, -1)]


def test_a_transaction_inside_a_transaction_is_refused(store: SqliteStore) -> None:
    with pytest.raises(RuntimeError, match="inside another"):
        store.run(lambda tx: store.run(lambda inner: 1))
    assert store.run(move("a", "b", 1, "still works")) == 99


OPS = st.lists(st.tuples(st.sampled_from(["a", "b"]), st.integers(1, 80)),
               min_size=1, max_size=8)


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=OPS)
def test_a_group_ends_as_its_transactions_run_one_by_one(tmp_path: Path,
                                                         ops: list[tuple[str, int]]) -> None:
    """Whatever transfers queue together, the books end as the same transfers run alone
    in the same order would leave them: each overdraft refused, each other one applied."""
    s = SqliteStore(f"sqlite:///{tmp_path}/h{time.time_ns()}.db")
    try:
        s.script(SCHEMA)
        q = Queued(s)
        for i, (src, amount) in enumerate(ops):
            q.add(move(src, "b" if src == "a" else "a", amount, f"t{i}"))
        results = q.release()
        model = {"a": 100, "b": 0}
        applied = []
        for i, (src, amount) in enumerate(ops):
            dst = "b" if src == "a" else "a"
            if model[src] < amount:
                assert isinstance(results[i], sqlite3.IntegrityError)
                continue
            model[src] -= amount
            model[dst] += amount
            applied.append(f"t{i}")
            assert results[i] == model[src]
        assert state(s) == (model, applied)
    finally:
        s.close()


def test_terminals_settling_at_once_through_one_host_keep_the_books(tmp_path: Path) -> None:
    """Eight terminals of one in-process host settle at the same time: their settlements
    are committed in groups, every one answered once and booked once."""
    store = SqliteStore(f"sqlite:///{tmp_path}/host.db")
    initialize(store)
    sizes = group_sizes(store)
    host = HostService(store)
    try:
        w = World(host)
        people = [w.person(medical_fen=5_000) for _ in range(4)]
        lines = w.lines((AMOXICILLIN, 1, 1250))
        signs = [terminal(host, PHARMACY).sign_no for _ in range(8)]
        envs = [[envelope(PHARMACY, "2102", w.pharmacy.druginfo(
            psn_no=h.psn_no, card_no=h.card_no, card_sn=h.card_sn, lines=lines,
            cash_src="cash", use_account=True), sign_no=signs[t])
            for h in people * 3] for t in range(8)]
        answers: list[dict[str, Any]] = []

        def worker(t: int) -> None:
            answers.extend(host.call(e) for e in envs[t])

        threads = [threading.Thread(target=worker, args=(t,)) for t in range(8)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        assert len(answers) == 96 and all(a["infcode"] == 0 for a in answers), \
            [a["err_msg"] for a in answers if a["infcode"]][:3]
        assert max(sizes) > 1                     # settlements did share commits
        assert verify(host) == []
        # each account paid exactly what its settlements say, and never went below zero
        paid = dict(store.run(lambda tx: tx.all(
            "SELECT psn_no, SUM(acct_pay) FROM settlements GROUP BY psn_no")))
        bal = balances(host)
        for h in people:
            assert bal[f"medical:{h.psn_no}"] == 5_000 - int(paid[h.psn_no]) >= 0
        booked = store.run(lambda tx: tx.all(
            "SELECT COUNT(*), COUNT(DISTINCT msgid) FROM settlements"))[0]
        assert booked == (96, 96)
    finally:
        store.close()


def test_the_wal_is_checkpointed_in_long_runs_and_stays_bounded(store: SqliteStore) -> None:
    """Commits add to the WAL until it holds ``CHECKPOINT_FRAMES`` pages (not SQLite's
    1000), then it is copied back and reused: the file never grows past that."""
    wal = Path(store.path + "-wal")
    frame = PAGE_SIZE + 24
    seen = []
    def count(tx: Tx) -> None:                 # two pages a commit: the row and the log
        tx.execute("UPDATE acct SET balance = balance + 1 WHERE id = 'b'")
        tx.execute("INSERT INTO log (note) VALUES ('n')")

    for _ in range(2600):                     # past the limit
        store.run(count)
        seen.append(wal.stat().st_size)
    largest = max(seen)
    # SQLite's default would have reset the WAL at about 1000 pages
    assert largest > 2000 * frame
    assert largest <= (CHECKPOINT_FRAMES + 16) * frame + 32
    # it was copied back and reused: the WAL stopped growing, the data are in the file
    assert seen[-1] == largest
    conn = sqlite3.connect(store.path)
    try:
        n = conn.execute("SELECT COUNT(*) FROM log").fetchone()[0]
        log = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[1]
    finally:
        conn.close()
    assert n == 2600 and log < CHECKPOINT_FRAMES

"""The store under load: a bounded set of PostgreSQL connections that waits when the
server is full, a retry budget in seconds, and the per-key gate that lets transactions
which lost a conflict on one hot balance retry one at a time."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from ledger.client import HostClient, LocalTransport
from ledger.errors import BadRequest, StoreBusy
from ledger.service import HostService, initialize
from ledger.store import postgres
from ledger.store.base import KeyGate, Retry, Store, Tx
from ledger.store.postgres import PostgresStore, _Pool, split_params
from ledger.store.sqlite import SqliteStore
from tests.ledger.helpers import OFFICE, World, balances, verify

# -- the gate ----------------------------------------------------------------------------


def test_the_gate_locks_keys_and_forgets_them_when_released() -> None:
    gate = KeyGate()
    assert gate.acquire(["b", "a"], time.monotonic() + 1) == ["a", "b"]
    assert gate.taken("a") and gate.taken("b") and not gate.taken("c")
    # another thread meets the held key and gives up at its deadline
    got: list[list[str]] = []
    t = threading.Thread(target=lambda: got.append(gate.acquire(["a"], time.monotonic() + 0.05)))
    t.start()
    t.join()
    assert got == [[]]
    gate.release(["a", "b"])
    assert not gate.taken("a")
    assert gate._locks == {}            # nothing kept for keys nobody holds or waits for


def test_a_transaction_meeting_a_held_key_steps_back_at_once() -> None:
    gate = KeyGate()
    gate.acquire(["medical:1"], time.monotonic() + 1)
    tx = GateOnlyTx()
    tx.gate = gate
    tx.contend("medical:2")                     # free: goes on
    with pytest.raises(Retry) as exc:
        tx.contend("medical:1")
    assert exc.value.keys == {"medical:1", "medical:2"}
    tx.held = frozenset({"medical:1"})          # its own key does not stop it
    tx.contend("medical:1")
    gate.release(["medical:1"])


class GateOnlyTx(Tx):
    """A transaction that runs nothing (only the gate is under test)."""

    def execute(self, sql: str, params: Any = ()) -> int:
        raise AssertionError

    def one(self, sql: str, params: Any = ()) -> Any:
        raise AssertionError

    def all(self, sql: str, params: Any = ()) -> Any:
        raise AssertionError

    def many(self, sql: str, rows: Any) -> None:
        raise AssertionError

    def insert_new(self, sql: str, params: Any = ()) -> Any:
        raise AssertionError


# -- the retry budget --------------------------------------------------------------------


def test_a_transaction_that_keeps_conflicting_is_refused_after_its_budget(
        tmp_path: Any) -> None:
    store: Store = SqliteStore(f"sqlite:///{tmp_path}/h.db")
    store.retry_budget = 0.2
    tries = 0

    def always_conflicts(tx: Tx) -> None:
        nonlocal tries
        tries += 1
        raise Retry()

    start = time.monotonic()
    with pytest.raises(StoreBusy, match=r"busy through \d+ tries in 0.2 s; nothing was written"):
        store.run(always_conflicts)
    assert tries >= store.min_attempts
    assert time.monotonic() - start >= 0.2
    store.close()


# -- the connection pool -----------------------------------------------------------------


def test_pool_and_schema_parameters_are_the_stores_own() -> None:
    conninfo, schema, pool = split_params(
        "postgresql://u@h:5432/db?schema=s1&pool=4&application_name=x")
    assert (conninfo, schema, pool) == ("postgresql://u@h:5432/db?application_name=x", "s1", 4)
    assert split_params("postgresql://u@h/db")[2] == postgres.POOL_SIZE
    for bad in ("0", "x", "1001", "²"):
        with pytest.raises(BadRequest, match="pool="):
            split_params(f"postgresql://u@h/db?pool={bad}")
    # a URL with no host (a socket directory as a parameter) keeps its three slashes
    assert split_params("postgresql:///test?host=/run/pg&schema=s2")[:2] == \
        ("postgresql:///test?host=%2Frun%2Fpg", "s2")
    for bad in ("postgresql://u:pw@[::1:1/test", "postgresql://u:pw@h:99999/t"):
        with pytest.raises(BadRequest, match="cannot be read") as refused:
            split_params(bad)
        assert "pw" not in str(refused.value)


class FakeConn:
    """What the pool looks at in a connection."""

    def __init__(self) -> None:
        self.closed = False
        self.pgconn = type("P", (), {"transaction_status": psycopg.pq.TransactionStatus.IDLE})

    def close(self) -> None:
        self.closed = True


def test_a_full_server_makes_the_pool_wait_not_fail(monkeypatch: pytest.MonkeyPatch) -> None:
    refusals = 3

    def opener() -> Any:
        nonlocal refusals
        if refusals:
            refusals -= 1
            raise psycopg.OperationalError("connection failed: FATAL:  sorry, too many "
                                           "clients already")
        return FakeConn()

    pool = _Pool(opener, 4)
    assert isinstance(pool.get(), FakeConn)
    assert refusals == 0

    monkeypatch.setattr(postgres, "CONNECT_WAIT", 0.1)
    full = _Pool(lambda: (_ for _ in ()).throw(
        psycopg.OperationalError("FATAL:  sorry, too many clients already")), 4)
    with pytest.raises(psycopg.OperationalError, match="too many clients"):
        full.get()
    # any other refusal (server down, bad password) is not waited for
    down = _Pool(lambda: (_ for _ in ()).throw(psycopg.OperationalError("Connection refused")), 4)
    start = time.monotonic()
    with pytest.raises(psycopg.OperationalError, match="refused"):
        down.get()
    assert time.monotonic() - start < 0.05


def test_the_pool_hands_back_connections_and_drops_broken_ones(
        monkeypatch: pytest.MonkeyPatch) -> None:
    opened: list[FakeConn] = []
    pool = _Pool(lambda: opened.append(FakeConn()) or opened[-1], 1)
    a = pool.get()
    monkeypatch.setattr(postgres, "CONNECT_WAIT", 0.05)
    with pytest.raises(StoreBusy, match="no database connection came free"):
        pool.get()                                  # the only one is in use
    pool.put(a)
    assert pool.get() is a                          # reused, not reopened
    a.close()                                       # it broke while in use
    pool.put(a)
    b = pool.get()
    assert b is not a and len(opened) == 2
    pool.close()
    pool.put(b)                                     # in use at close: closed on return
    assert b.closed


# -- on the real server ------------------------------------------------------------------


@pytest.fixture
def small_pool(pg_url: str) -> Iterator[tuple[PostgresStore, str]]:
    app = "sscard_" + uuid.uuid4().hex[:10]
    sep = "&" if "?" in pg_url else "?"
    store = PostgresStore(f"{pg_url}{sep}schema=t_{app[7:]}&pool=3&application_name={app}")
    try:
        yield store, app
    finally:
        store.drop_schema()


@pytest.mark.postgres
def test_forty_terminals_share_three_connections_and_every_credit_lands(
        small_pool: tuple[PostgresStore, str], pg_url: str) -> None:
    """Forty terminals credit one person at once through a store limited to three
    connections: no more are ever open on the server, and every credit lands (the losers of
    each conflict on the balance queue behind its key instead of retrying together)."""
    store, app = small_pool
    initialize(store)
    host = HostService(store)
    world = World(host)
    h = world.person(medical_fen=0, bank_fen=0)
    clients = [HostClient(LocalTransport(host), fixmedins_code=OFFICE,
                          terminal_id=f"{10 + i:02d}") for i in range(40)]
    most = 0
    stop = threading.Event()

    def watch() -> None:
        nonlocal most
        with psycopg.connect(pg_url, autocommit=True) as conn:
            while not stop.is_set():
                row = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE "
                                   "application_name = %s", (app,)).fetchone()
                most = max(most, int(row[0]) if row else 0)
                time.sleep(0.005)

    refused: list[str] = []

    def credit(office: HostClient) -> None:
        for _ in range(5):
            answer = office.call_envelope("8109", {"data": {
                "psn_no": h.psn_no, "amount": "0.01", "target": "medical"}})
            if answer["infcode"] != 0:
                refused.append(answer["err_msg"])

    watcher = threading.Thread(target=watch)
    watcher.start()
    threads = [threading.Thread(target=credit, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stop.set()
    watcher.join()
    for c in clients:
        c.close()
    assert refused == []
    assert balances(host)[f"medical:{h.psn_no}"] == 200
    assert verify(host) == []
    assert 1 <= most <= 3

"""The storage interface the books use, and the versioned migration runner.

A :class:`Store` runs a function inside one serialisable transaction
(:meth:`Store.run`), retrying it from the start when the database reports a transient
conflict (SQLite busy, PostgreSQL serialization failure or deadlock). The function must
therefore only touch the database through the :class:`Tx` it is given and have no other
side effect: the retry is then invisible to the caller.
"""

from __future__ import annotations

import random
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

from ledger.errors import BadRequest, StoreBusy

T = TypeVar("T")
Row = tuple[Any, ...]

MIGRATIONS_PACKAGE = "ledger.store.migrations"


class Retry(Exception):
    """Raised by a back end inside a transaction when it must be run again; ``keys`` are
    the contended keys (:meth:`Tx.contend`) the attempt had named."""

    def __init__(self, keys: Iterable[str] = ()) -> None:
        super().__init__()
        self.keys = frozenset(keys)


class KeyGate:
    """Per-key locks of one process: transactions that lost a conflict on a hot row (one
    person's balance credited by forty terminals at once) retry one at a time instead of
    all together, and a fresh transaction that meets a key held that way steps back at once
    and queues. Without it every conflict wakes every waiter, all retry, one wins."""

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._locks: dict[str, tuple[threading.Lock, int]] = {}   # key -> (lock, users)

    def taken(self, key: str) -> bool:
        entry = self._locks.get(key)
        return entry is not None and entry[0].locked()

    def acquire(self, keys: Iterable[str], deadline: float) -> list[str]:
        """Lock ``keys`` in sorted order (no deadlock between two acquirers); return the
        keys locked, fewer if ``deadline`` passed first."""
        got: list[str] = []
        for key in sorted(keys):
            with self._mutex:
                lock, users = self._locks.get(key) or (threading.Lock(), 0)
                self._locks[key] = (lock, users + 1)
            if not lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
                self._drop(key)
                break
            got.append(key)
        return got

    def release(self, keys: Iterable[str]) -> None:
        for key in keys:
            self._locks[key][0].release()
            self._drop(key)

    def _drop(self, key: str) -> None:
        with self._mutex:
            lock, users = self._locks[key]
            if users > 1:
                self._locks[key] = (lock, users - 1)
            else:
                del self._locks[key]


class Claimed(Exception):
    """Raised by :meth:`Tx.claim`: the key is already taken (the transaction must end)."""


class Tx(ABC):
    """One open transaction. SQL uses ``?`` placeholders on every back end."""

    #: set by a store that gates contended keys (:class:`KeyGate`), with the keys this
    #: attempt already holds
    gate: KeyGate | None = None
    held: frozenset[str] = frozenset()
    contended: frozenset[str] = frozenset()

    def contend(self, key: str) -> None:
        """Say that this transaction updates a row that concurrent ones may update too (a
        guarded balance). Where the store gates such keys, a key another thread holds
        after losing a conflict on it makes this attempt step back now (:class:`Retry`)."""
        gate = self.gate
        if gate is None:
            return
        self.contended = self.contended | {key}
        if key not in self.held and gate.taken(key):
            raise Retry(self.contended)

    @abstractmethod
    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run a statement; return the number of rows it changed."""

    @abstractmethod
    def one(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        """Run a query; return its first row or ``None``."""

    @abstractmethod
    def all(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        """Run a query; return all rows."""

    @abstractmethod
    def many(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        """Run a statement once per parameter row (bulk insert)."""

    @abstractmethod
    def insert_new(self, sql: str, params: Sequence[Any] = ()) -> bool | None:
        """Run an INSERT; True if it inserted, None if it inserted no row (an
        ``INSERT … SELECT … WHERE`` whose condition failed), False if it violated a unique
        key. Uses no ``ON CONFLICT`` (whose uniqueness probe takes a predicate lock under
        SERIALIZABLE). After False the transaction must end: PostgreSQL has aborted it."""

    def claim(self, sql: str, params: Sequence[Any], missing: Callable[[Tx], None]) -> None:
        """Run the claiming INSERT of an idempotency key (see :meth:`insert_new`): raise
        :class:`Claimed` if the key exists, call ``missing(tx)`` (expected to raise) if the
        INSERT inserted no row. A back end may send the claim together with the
        transaction's next statement (one round trip); it is settled before that
        statement's answer is returned, so nothing the transaction reads is used before
        the claim is known to hold."""
        n = self.insert_new(sql, params)
        if n is False:
            raise Claimed()
        if n is None:
            missing(self)

    def settle_claim(self) -> None:  # noqa: B027 - a no-op where the claim ran at once
        """Send a claim still waiting for the next statement, raising what it raises."""

    def defer(self, sql: str, params: Sequence[Any] = (),
              check: Callable[[Tx], None] | None = None) -> None:
        """Run a write at the latest before the next read or at commit. Back ends may batch
        deferred writes into one round trip. With ``check``, the write must change exactly
        one row, else ``check(tx)`` is called (and is expected to raise)."""
        n = self.execute(sql, params)
        if check is not None and n != 1:
            check(self)

    def flush(self) -> None:  # noqa: B027 - a no-op unless the back end defers writes
        """Send deferred writes now (no-op where writes are never deferred)."""

    def load(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        """Bulk-insert ``rows`` (the fastest way the back end offers)."""
        marks = ", ".join("?" for _ in columns)
        self.many(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows)


class Store(ABC):
    """A database holding the books."""

    dialect: str = ""
    url: str = ""
    #: how long :meth:`run` keeps retrying a conflicting transaction: under a terminal's
    #: 10 s timeout, so a terminal hears "busy" rather than nothing
    retry_budget: float = 8.0
    #: retries made however long they take
    min_attempts: int = 10

    gate: KeyGate | None = None

    @abstractmethod
    def _attempt(self, fn: Callable[[Tx], T], held: frozenset[str]) -> T:
        """Run ``fn`` in one transaction; raise :class:`Retry` on a transient conflict.
        ``held`` are the contended keys this thread holds in :attr:`gate`."""

    @abstractmethod
    def script(self, sql: str, then: Callable[[Tx], None] | None = None) -> None:
        """Run a multi-statement DDL script in its own transaction, and ``then`` (if given)
        in the same transaction after it: both take effect, or neither."""

    @abstractmethod
    def close(self) -> None:
        """Close every connection this store opened."""

    def run(self, fn: Callable[[Tx], T]) -> T:
        """Run ``fn(tx)`` in one transaction, retrying it on transient conflicts (with a
        growing, jittered pause) for :attr:`retry_budget` seconds."""
        delay = 0.001
        deadline = time.monotonic() + self.retry_budget
        attempts = 0
        held: list[str] = []
        try:
            while True:
                try:
                    return self._attempt(fn, frozenset(held))
                except Retry as retry:
                    attempts += 1
                    if attempts >= self.min_attempts and time.monotonic() >= deadline:
                        break
                    time.sleep(delay * (0.5 + random.random()))
                    delay = min(delay * 2, 0.05)
                    if self.gate is not None and not retry.keys <= set(held):
                        # a conflict on a hot row: queue for its key(s) (holding them,
                        # nothing else of this process competes for that row)
                        self.gate.release(held)
                        want = retry.keys | set(held)
                        held = self.gate.acquire(want, deadline)
                        if len(held) < len(want):
                            break
        finally:
            if self.gate is not None:
                self.gate.release(held)
        raise StoreBusy(f"the database stayed busy through {attempts} tries in "
                        f"{self.retry_budget:g} s; nothing was written, send the same request "
                        "again")

    # -- migrations ---------------------------------------------------------------------

    @abstractmethod
    def _missing_table(self, exc: Exception) -> bool:
        """Whether ``exc`` says a table does not exist (and nothing worse)."""

    def schema_version(self) -> int:
        """The newest migration applied; 0 for a database ``sscard host init`` has not
        prepared. An unreachable or broken database is an error, not version 0."""
        def q(tx: Tx) -> int:
            try:
                row = tx.one("SELECT MAX(version) FROM schema_version")
            except Exception as exc:
                if self._missing_table(exc):
                    return 0
                raise
            return int(row[0]) if row and row[0] is not None else 0
        return self.run(q)

    def migrate(self, then: Callable[[Tx], None] | None = None) -> list[int]:
        """Apply every migration newer than the schema, all in one transaction, with
        ``then`` (if given) at its end: all of it takes effect, or nothing (``sscard host
        init`` loads the policies so). Return the versions applied."""
        have = self.schema_version()
        applied: list[int] = []
        parts: list[str] = []
        for version, name, sql in available_migrations(self.dialect):
            if version <= have:
                continue
            now = datetime.now(UTC).isoformat()
            parts.append(sql + f"\nINSERT INTO schema_version (version, name, applied_at) "
                               f"VALUES ({version}, '{name}', '{now}');\n")
            applied.append(version)
        if parts:
            self.script("\n".join(parts), then)
        elif then is not None:
            self.run(then)
        return applied

    def require_schema(self) -> None:
        """Refuse to work on a database that ``sscard host init`` has not prepared."""
        want = max(v for v, _, _ in available_migrations(self.dialect))
        have = self.schema_version()
        if have < want:
            raise BadRequest(
                f"database {self.safe_url()} has schema version {have}, this host needs {want}: "
                f"run `sscard host init --db {self.safe_url()}`")

    def safe_url(self) -> str:
        """The URL without any password."""
        return safe_url(self.url)


_SECRET_PARAMS = ("password", "sslpassword", "passfile", "sslkey")


def safe_url(url: str) -> str:
    """``url`` without its secrets, fit for messages: the password of a ``user:password@``
    part (any scheme) and the value of a ``password=`` (or similar) parameter."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    netloc, slash, tail = rest.partition("/")
    if "@" in netloc:
        cred, host = netloc.rsplit("@", 1)
        netloc = cred.split(":", 1)[0] + "@" + host
    if "?" in tail or "?" in netloc:
        head, _, query = (slash + tail).partition("?") if "?" in tail else ("", "", "")
        params = [p.split("=", 1) for p in query.split("&")]
        query = "&".join(f"{p[0]}=…" if len(p) == 2 and p[0].lower() in _SECRET_PARAMS
                         else "=".join(p) for p in params)
        return f"{scheme}://{netloc}{head}?{query}"
    return f"{scheme}://{netloc}{slash}{tail}"


def database_file(url: str) -> Path | None:
    """The file a ``sqlite:///`` URL names (None for other databases)."""
    if url.startswith("sqlite:///") and url[len("sqlite:///"):] not in ("", ":memory:"):
        return Path(url[len("sqlite:///"):])
    return None


def available_migrations(dialect: str) -> list[tuple[int, str, str]]:
    """The versioned migrations: ``NNNN_name.sql`` (portable) + ``NNNN_name.<dialect>.sql``."""
    files = {f.name: f for f in resources.files(MIGRATIONS_PACKAGE).iterdir()
             if f.name.endswith(".sql")}
    out = []
    for name in sorted(files):
        parts = name.split(".")
        if len(parts) != 2:
            continue
        stem = parts[0]
        version = int(stem.split("_", 1)[0])
        sql = files[name].read_text(encoding="utf-8")
        extra = files.get(f"{stem}.{dialect}.sql")
        if extra is not None:
            sql += "\n" + extra.read_text(encoding="utf-8")
        if dialect == "sqlite":
            sql = sql.replace("/*sqlite: WITHOUT ROWID*/", "WITHOUT ROWID")
        out.append((version, stem, sql))
    return out


def open_store(url: str, *, create: bool = True) -> Store:
    """Open the store a database URL names: ``sqlite:///path`` or ``postgresql://…``.

    With ``create=False`` a missing SQLite file is an error instead of a new empty database.
    """
    if url.startswith("sqlite://"):
        from ledger.store.sqlite import SqliteStore
        return SqliteStore(url, create=create)
    if url.startswith(("postgresql://", "postgres://")):
        from ledger.store.postgres import PostgresStore
        return PostgresStore(url)
    raise BadRequest(f"unsupported database URL {safe_url(url)!r}: use sqlite:///path/host.db or "
                     "postgresql://user@host:5432/dbname")

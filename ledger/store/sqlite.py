"""SQLite back end: one file, WAL, ``synchronous=FULL``, ``BEGIN IMMEDIATE``.

Each thread gets its own connection (``sqlite3`` connections are not shared across
threads). ``BEGIN IMMEDIATE`` takes the write lock at the start of every transaction, so
concurrent writers serialise instead of failing half way; ``busy_timeout`` waits for the
lock and :class:`~ledger.store.base.Retry` covers what is left.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from ledger.errors import BadRequest
from ledger.store.base import Retry, Row, Store, Tx

T = TypeVar("T")

PAGE_SIZE = 2048
"""Page size of a new database file (bytes)."""


class SqliteTx(Tx):
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        return self.conn.execute(sql, params).rowcount

    def one(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        row: Row | None = self.conn.execute(sql, params).fetchone()
        return row

    def insert_new(self, sql: str, params: Sequence[Any] = ()) -> bool | None:
        try:
            n = self.conn.execute(sql, params).rowcount
        except sqlite3.IntegrityError as exc:
            if "UNIQUE" in str(exc):
                return False
            raise
        return True if n else None

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return list(self.conn.execute(sql, params).fetchall())

    def many(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        self.conn.executemany(sql, rows)


def _busy(exc: sqlite3.OperationalError) -> bool:
    text = str(exc).lower()
    return "locked" in text or "busy" in text


class SqliteStore(Store):
    """The books in one SQLite file."""

    dialect = "sqlite"

    def __init__(self, url: str, *, synchronous: str = "FULL", create: bool = True) -> None:
        # SQLAlchemy's convention: sqlite:///relative/path, sqlite:////absolute/path
        path = url[len("sqlite:///"):] if url.startswith("sqlite:///") else ""
        if not path:
            raise BadRequest(f"database URL {url!r} names no file: use sqlite:///path/host.db")
        self.url = url
        self.path = path if path == ":memory:" else str(Path(path))
        self.synchronous = synchronous
        if not create and self.path != ":memory:" and not Path(self.path).exists():
            raise BadRequest(f"database file {self.path} does not exist: run "
                             f"`sscard host init --db {url}` first")
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            if self.path != ":memory:":
                parent = Path(self.path).parent
                if not parent.is_dir():
                    raise BadRequest(f"directory {parent} does not exist: create it first")
            try:
                conn = sqlite3.connect(self.path, isolation_level=None, timeout=10.0,
                                       check_same_thread=False)
            except sqlite3.Error as exc:
                raise self._broken(exc) from None
            try:
                # a new file gets small pages: a settlement changes one row in each of a
                # dozen B-trees, and every changed page goes to the WAL whole at each
                # commit (no effect on an existing file)
                conn.execute(f"PRAGMA page_size={PAGE_SIZE}")
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute(f"PRAGMA synchronous={self.synchronous}")
                conn.execute("PRAGMA busy_timeout=10000")
                # keep the B-tree interior pages of large books in memory: a settlement's
                # latency must not grow with the number of cards
                conn.execute("PRAGMA cache_size=-65536")
                conn.execute("PRAGMA mmap_size=1073741824")
                conn.execute("PRAGMA foreign_keys=ON")
            except sqlite3.Error as exc:
                conn.close()
                raise self._broken(exc) from None
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    def _attempt(self, fn: Callable[[Tx], T], held: frozenset[str]) -> T:
        conn = self._conn()
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if _busy(exc):
                raise Retry() from exc
            raise
        try:
            result = fn(SqliteTx(conn))
            conn.execute("COMMIT")
            return result
        except sqlite3.OperationalError as exc:
            conn.execute("ROLLBACK") if conn.in_transaction else None
            if _busy(exc):
                raise Retry() from exc
            raise
        except sqlite3.DatabaseError as exc:
            if conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
            if type(exc) is sqlite3.DatabaseError:   # a damaged file, not a constraint
                raise self._broken(exc) from None
            raise
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def _broken(self, exc: sqlite3.Error) -> BadRequest:
        """The file cannot be used as a database: say which file and why."""
        return BadRequest(f"database file {self.path} cannot be used ({exc}): check the URL, "
                          "or restore the file from a backup")

    def _missing_table(self, exc: Exception) -> bool:
        return isinstance(exc, sqlite3.OperationalError) and "no such table" in str(exc)

    def script(self, sql: str) -> None:
        """Run a migration in one transaction with foreign keys off, so that it may rebuild
        a table (SQLite's ALTER TABLE procedure); their integrity is checked before the
        commit."""
        conn = self._conn()
        conn.execute("PRAGMA foreign_keys=OFF")
        try:
            conn.executescript("BEGIN IMMEDIATE;\n" + sql)
            bad = conn.execute("PRAGMA foreign_key_check").fetchall()
            if bad:
                conn.execute("ROLLBACK")
                raise BadRequest(f"migration left {len(bad)} broken references, e.g. "
                                 f"{bad[0]!r}: nothing was changed")
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        finally:
            conn.execute("PRAGMA foreign_keys=ON")

    def close(self) -> None:
        with self._lock:
            for c in self._all:
                with contextlib.suppress(sqlite3.Error):
                    c.close()
            self._all.clear()
        self._local = threading.local()

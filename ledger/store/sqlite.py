"""SQLite back end: one file, WAL, ``synchronous=FULL``, ``BEGIN IMMEDIATE``.

Each thread gets its own connection (``sqlite3`` connections are not shared across
threads). ``BEGIN IMMEDIATE`` takes the write lock at the start of every transaction, so
concurrent writers serialise instead of failing half way; ``busy_timeout`` waits for the
lock and :class:`~ledger.store.base.Retry` covers what is left.

Group commit: the threads of one process (the terminals a served host answers at once)
queue their transactions while one of them holds the write lock; the next holder runs
every queued transaction in one ``BEGIN IMMEDIATE … COMMIT``, each in a savepoint, and
returns each result only after the commit, so one fsync makes the whole group durable.
Each transaction stays atomic (a failure rolls back its savepoint alone) and runs after
the previous one as if alone; if the commit fails, every transaction of the group fails
with it and nothing is written.
"""

from __future__ import annotations

import contextlib
import copy
import sqlite3
import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar, cast

from ledger.errors import BadRequest
from ledger.store.base import Retry, Row, Store, Tx

T = TypeVar("T")

PAGE_SIZE = 2048
"""Page size of a new database file (bytes)."""

CHECKPOINT_FRAMES = 4000
"""WAL frames (pages) after which a commit copies the WAL back into the database file
(SQLite's default is 1000). A settlement writes about 22 pages; checkpointing every
180 or so settlements instead of every 45 writes the pages every settlement touches (the
pooled fund's and clearing accounts', the last leaf of each journal table) back once
instead of four times, for a WAL of at most about 8 MiB."""


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


class _Job:
    """One transaction body waiting for the write lock, and what became of it."""

    __slots__ = ("done", "error", "fn", "result")

    def __init__(self, fn: Callable[[Tx], Any]) -> None:
        self.fn = fn
        self.done = False
        self.result: Any = None
        self.error: BaseException | None = None


class SqliteStore(Store):
    """The books in one SQLite file."""

    dialect = "sqlite"
    #: most transactions committed together (bounds the wait of the last one)
    max_group = 64

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
        # group commit: the waiting jobs, whether a group is running, and the condition
        # their threads wait on (notified when a group ends)
        self._turn = threading.Condition(threading.Lock())
        self._pending: list[_Job] = []
        self._running = False

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
                conn.execute(f"PRAGMA wal_autocheckpoint={CHECKPOINT_FRAMES}")
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
        """Run ``fn`` in a write transaction, committed together with those other threads
        queued meanwhile (group commit): a thread that finds no group running runs every
        waiting job, oldest first, in one ``BEGIN IMMEDIATE … COMMIT``, each in its own
        savepoint, and each thread gets its result or error only after the commit has
        returned (one fsync for the group). Each job is atomic and runs after the previous
        one as if alone; a job that fails leaves nothing behind and does not disturb the
        others."""
        if getattr(self._local, "leading", False):
            raise RuntimeError("a store transaction was started inside another one")
        job: _Job = _Job(fn)
        with self._turn:
            self._pending.append(job)
            while not job.done:
                if self._running:
                    self._turn.wait()
                    continue
                # this thread runs the next group: the oldest waiting jobs, its own among them
                batch = self._pending[:self.max_group]
                if job not in batch:
                    batch[-1:] = [job]
                taken = set(map(id, batch))
                self._pending = [j for j in self._pending if id(j) not in taken]
                self._running = True
                self._turn.release()
                self._local.leading = True
                try:
                    self._run_group(batch)
                finally:
                    self._local.leading = False
                    self._turn.acquire()
                    self._running = False
                    self._turn.notify_all()
        if job.error is not None:
            raise job.error
        return cast(T, job.result)

    def _run_group(self, batch: list[_Job]) -> None:
        """Run ``batch`` in one transaction and set each job's outcome (see :meth:`_attempt`).
        A job left without one (this thread's connection could not be opened) is run again
        by its own thread."""
        conn = self._conn()
        lost = False
        try:
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                for j in batch:
                    j.error = self._translate(exc)
                return
            alone = len(batch) == 1
            for i, j in enumerate(batch):
                if not alone:
                    conn.execute("SAVEPOINT sscard_job")
                try:
                    j.result = j.fn(SqliteTx(conn))
                except Exception as exc:
                    j.error = self._translate(exc)
                    if not conn.in_transaction:
                        # SQLite rolled the whole transaction back (a full disk, an I/O
                        # error): the jobs before this one lost their writes, and those
                        # after it never ran; they are all run again
                        for other in batch[:i] + batch[i + 1:]:
                            other.error = Retry()
                        lost = True
                        return
                    if not alone:
                        conn.execute("ROLLBACK TO sscard_job")
                if not alone:
                    conn.execute("RELEASE sscard_job")
            if all(j.error is not None for j in batch):
                conn.execute("ROLLBACK")
            else:
                conn.execute("COMMIT")
        except BaseException as exc:
            # the commit (or a savepoint) failed, or the leader was interrupted: nothing
            # of the group is written, so no job's answer stands
            if conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
            for j in batch:
                j.error = (self._translate(exc, shared=len(batch) > 1)
                           if isinstance(exc, Exception) else Retry())
            if not isinstance(exc, Exception):
                raise
        finally:
            if lost and conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
            for j in batch:
                j.done = True

    def _translate(self, exc: Exception, *, shared: bool = False) -> Exception:
        """The error a job raises for ``exc``: :class:`Retry` for a busy database, a clear
        :class:`BadRequest` for a damaged file, else ``exc`` itself (a copy of it for each
        job when a failed commit fails several)."""
        if isinstance(exc, sqlite3.OperationalError) and _busy(exc):
            return Retry()
        if type(exc) is sqlite3.DatabaseError:   # a damaged file, not a constraint
            return self._broken(exc)
        return copy.copy(exc) if shared else exc

    def _broken(self, exc: sqlite3.Error) -> BadRequest:
        """The file cannot be used as a database: say which file and why."""
        return BadRequest(f"database file {self.path} cannot be used ({exc}): check the URL, "
                          "or restore the file from a backup")

    def _missing_table(self, exc: Exception) -> bool:
        return isinstance(exc, sqlite3.OperationalError) and "no such table" in str(exc)

    def script(self, sql: str, then: Callable[[Tx], None] | None = None) -> None:
        """Run a migration (and ``then``) in one transaction with foreign keys off, so that
        it may rebuild a table (SQLite's ALTER TABLE procedure); their integrity is checked
        before the commit."""
        conn = self._conn()
        conn.execute("PRAGMA foreign_keys=OFF")
        try:
            conn.executescript("BEGIN IMMEDIATE;\n" + sql)
            if then is not None:
                then(SqliteTx(conn))
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

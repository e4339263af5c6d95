"""PostgreSQL back end through psycopg 3: SERIALIZABLE transactions with a retry loop.

Every transaction runs at ``SERIALIZABLE``; a serialization failure (SQLSTATE 40001), a
deadlock (40P01) or a unique violation caused by a concurrent insert of the same key
re-runs the whole transaction function. Keys are chosen by the client (msgid-derived), no
sequence is used, so the same SQL runs on PostgreSQL-compatible distributed engines
(CockroachDB, YugabyteDB): see the ``ledger`` package docstring.

The URL may carry ``?schema=name`` (sscard's own parameter): the store then works inside
that schema (``search_path``), which is how the tests isolate each other.
"""

from __future__ import annotations

import contextlib
import functools
import re
import select
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit

import psycopg
from psycopg import errors as pgerr
from psycopg import pq
from psycopg.adapt import PyFormat, Transformer
from psycopg.pq.abc import PGresult

from ledger.errors import BadRequest, StoreBusy
from ledger.store.base import Claimed, KeyGate, Retry, Row, Store, Tx, safe_url

T = TypeVar("T")

_RETRYABLE = (pgerr.SerializationFailure, pgerr.DeadlockDetected, pgerr.UniqueViolation,
              pgerr.InvalidSqlStatementName)
_SCHEMA_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def _pg(sql: str) -> str:
    return sql.replace("?", "%s")


_BEGIN = b"BEGIN ISOLATION LEVEL SERIALIZABLE"
_PIPELINE = psycopg.Pipeline.is_supported()
_Deferred = tuple[str, Sequence[Any], Callable[[Tx], None] | None]
_TARGET_RE = re.compile(r"^\s*(INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+(\w+)", re.IGNORECASE)


@functools.lru_cache(maxsize=256)
def _target(sql: str) -> tuple[str, str]:
    """(verb, table) of a write statement: ``("INSERT", "entries")``."""
    m = _TARGET_RE.match(sql)
    if m is None:
        raise ValueError(f"not a single-table write statement: {sql[:60]!r}")
    return m.group(1).split()[0].upper(), m.group(2).lower()


def _groups(batch: list[_Deferred]) -> list[list[_Deferred]]:
    """Split deferred writes into runs that may travel as one statement.

    All parts of one statement see the same snapshot, so a run never holds two writes to
    the same table unless both are plain INSERTs (new rows): an UPDATE after another write
    to its table (the same account posted twice in one transaction, say) starts a new run.
    """
    out: list[list[_Deferred]] = []
    seen: dict[str, bool] = {}      # table -> only INSERTs so far in this run
    for item in batch:
        verb, table = _target(item[0])
        only_inserts = seen.get(table)
        if out and (only_inserts is None or (only_inserts and verb == "INSERT")):
            out[-1].append(item)
        else:
            out.append([item])
            seen = {}
        seen[table] = seen.get(table, True) and verb == "INSERT"
    return out


class _GuardFailed(Exception):
    """A guarded write of a pipelined commit changed no row: nothing was committed."""


_GUARD = "sscard-guard-"
_GUARD_RE = re.compile(_GUARD + r"(\d+)")


def _combined(group: list[_Deferred], *, guarded: bool = False) -> tuple[str, list[Any]]:
    """One statement for a run of writes: each a data-modifying ``WITH`` part returning one
    row per row it changed; the statement answers every part's row count.

    With ``guarded``, a part that must change exactly one row (a write with a check, such
    as a guarded balance update) makes the whole statement fail when it did not: its count
    becomes the cast of ``'sscard-guard-<part>'`` to an integer, which raises (SQLSTATE
    22P02), so a ``COMMIT`` sent behind the statement never takes effect."""
    parts = [f"w{i} AS ({sql} RETURNING 1)" for i, (sql, _, _) in enumerate(group)]
    cols = []
    for i, (_, _, check) in enumerate(group):
        n = f"(SELECT count(*) FROM w{i})"
        if guarded and check is not None:
            n = f"CAST(CASE WHEN {n} = 1 THEN '1' ELSE '{_GUARD}{i}' END AS bigint)"
        cols.append(n)
    params = [v for _, p, _ in group for v in p]
    return f"WITH {', '.join(parts)} SELECT {', '.join(cols)}", params


class Wire:
    """One connection's statements at the libpq level, for the least client CPU per
    statement: parameters dumped and rows loaded by psycopg's own adapters (a
    :class:`~psycopg.adapt.Transformer`), each statement prepared once per connection (per
    parameter types, as psycopg's cursor does), and a transaction's ``BEGIN`` sent in the same
    pipeline as its first statement: one round trip less per transaction. Waits release the
    GIL (other threads of the host go on).

    Needs libpq's pipeline mode (libpq 14 or later, as bundled with ``psycopg[binary]``);
    :meth:`for_connection` answers ``None`` without it, and the transaction then goes through
    a psycopg cursor."""

    #: at most this many statements prepared per connection; later ones run unprepared
    PREPARED_MAX = 256

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn
        self.pgconn = conn.pgconn
        self.transformer = Transformer(conn)
        self.names: dict[tuple[bytes, tuple[int, ...] | None], bytes] = {}
        self.serial = 0                     # names are never reused on one connection
        self.readable = select.poll()
        self.readable.register(self.pgconn.socket, select.POLLIN)
        self.writable = select.poll()
        self.writable.register(self.pgconn.socket, select.POLLOUT)

    @classmethod
    def for_connection(cls, conn: psycopg.Connection[Any]) -> Wire | None:
        """The connection's wire (made at its first use), or ``None`` when the connection
        is not one of the store's or libpq has no pipeline mode."""
        if not _PIPELINE or not isinstance(conn, Connection):
            return None
        if conn.wire is None:
            conn.wire = cls(conn)
        return conn.wire

    def run(self, sql: str, params: Sequence[Any], *, begin: bool,
            commit: bool = False) -> PGresult:
        """Execute ``sql`` (``%s`` placeholders), after ``BEGIN`` when ``begin`` and followed
        by ``COMMIT`` in the same round trip when ``commit``; return its result or raise the
        server's error as psycopg would (a failed statement leaves the transaction aborted
        and uncommitted)."""
        tx = self.transformer
        dumped = tx.dump_sequence(params, [PyFormat.AUTO] * len(params))
        types = tx.types
        query = _numbered(sql)
        key = (query, types)
        name = self.names.get(key)
        pg = self.pgconn
        prepare = name is None and len(self.names) < self.PREPARED_MAX
        pg.enter_pipeline_mode()
        try:
            if begin:
                pg.send_query_params(_BEGIN, None)
            if prepare:
                name = b"sscard_%d" % self.serial
                pg.send_prepare(name, query, param_types=types)
            if name is not None:
                pg.send_query_prepared(name, dumped, param_formats=tx.formats)
            else:
                pg.send_query_params(query, dumped, param_types=types,
                                     param_formats=tx.formats)
            if commit:
                pg.send_query_params(b"COMMIT", None)
            pg.pipeline_sync()
            results = self._results()
            pg.exit_pipeline_mode()
        except BaseException:
            # cut off half way (the server gone, an interrupt): the connection's state is
            # unknown, so it is not used again (the pool drops closed connections)
            self.conn.close()
            raise
        if prepare and results[int(begin)].status == pq.ExecStatus.COMMAND_OK:
            assert name is not None
            self.names[key] = name          # prepared, whatever became of the execution
            self.serial += 1
        for res in results:
            if res.status == pq.ExecStatus.FATAL_ERROR:
                exc = pgerr.error_from_result(res, encoding=self.conn.info.encoding)
                if isinstance(exc, pgerr.InvalidSqlStatementName):
                    # something deallocated them (DEALLOCATE ALL, DISCARD ALL): prepare
                    # again; the store runs the transaction again (retryable)
                    self.names.clear()
                raise exc
        return results[-2] if commit else results[-1]

    def rows(self, res: PGresult, n: int) -> list[Row]:
        """The first ``n`` rows of ``res``, loaded as psycopg's cursor loads them."""
        tx = self.transformer
        tx.set_pgresult(res)
        return tx.load_rows(0, min(n, res.ntuples), tuple)

    def _results(self) -> list[PGresult]:
        """Send what is queued, then read results up to the pipeline's sync point."""
        pg = self.pgconn
        while pg.flush():
            self.writable.poll()
        out: list[PGresult] = []
        while True:
            while pg.is_busy():
                self.readable.poll()
                pg.consume_input()
            res = pg.get_result()
            if res is None:
                continue
            if res.status == pq.ExecStatus.PIPELINE_SYNC:
                return out
            out.append(res)


class Connection(psycopg.Connection[Any]):
    """A psycopg connection that carries its :class:`Wire` (its prepared statements)."""

    wire: Wire | None = None


def _rollback(conn: psycopg.Connection[Any]) -> None:
    """End a failed transaction through libpq: psycopg's ``rollback()`` would also deallocate
    every statement the connection prepared (its cautious default), and the :class:`Wire`'s
    with them."""
    pgconn = conn.pgconn
    if pgconn.transaction_status in (pq.TransactionStatus.INTRANS, pq.TransactionStatus.INERROR):
        res = pgconn.exec_(b"ROLLBACK")
        if res.status != pq.ExecStatus.COMMAND_OK:
            raise psycopg.OperationalError("the connection to the database broke: "
                                           + pgconn.get_error_message())


@functools.lru_cache(maxsize=512)
def _numbered(sql: str) -> bytes:
    """A statement with psycopg's ``%s`` placeholders (``%%`` for a literal ``%``) in the
    server's own form, ``$1, $2 …``."""
    out: list[str] = []
    n = 0
    for piece in sql.split("%%"):
        parts = piece.split("%s")
        out.append(parts[0])
        for part in parts[1:]:
            n += 1
            out.append(f"${n}{part}")
        out.append("%")
    return "".join(out[:-1]).encode()


class PostgresTx(Tx):
    """A transaction on an autocommit connection that sends its own ``BEGIN`` (with its
    first statement) and ``COMMIT``.

    Statements are few rather than many: with many terminals the host is bound by CPU, and
    each statement costs the client far more CPU than a round trip costs time. Deferred
    writes go out together as one statement (:func:`_combined`) just before the next read,
    or before ``COMMIT``; the msgid claim (whose unique violation means a duplicate) goes
    out with the transaction's first query when no write comes before it. A pharmacy
    settlement (2102) is two round trips: ``BEGIN`` with the claim and the card, holder and
    balance read; the balance update with the journal, settlement and answer inserts, and
    ``COMMIT`` (:meth:`commit`)."""

    def __init__(self, conn: psycopg.Connection[Any], *, pipelined: bool = True) -> None:
        self.conn = conn
        self.wire = Wire.for_connection(conn)
        self.pipelined = pipelined
        self._cur: psycopg.Cursor[Any] | None = None
        self.begun = False
        self.deferred: list[_Deferred] = []
        self._claim: tuple[str, Sequence[Any], Callable[[Tx], None]] | None = None

    @property
    def cur(self) -> psycopg.Cursor[Any]:
        if self._cur is None:
            self._cur = self.conn.cursor()
        return self._cur

    def _begin(self) -> None:
        if not self.begun:
            self._command(_BEGIN)
            self.begun = True

    def _command(self, sql: bytes) -> None:
        """``BEGIN``/``COMMIT`` straight through libpq: nothing to adapt or prepare, and a
        third of the client CPU of a cursor's execute."""
        pgconn = self.conn.pgconn
        res = pgconn.exec_(sql)
        if res.status != pq.ExecStatus.COMMAND_OK:
            if pgconn.status != pq.ConnStatus.OK:
                raise psycopg.OperationalError("the connection to the database broke: "
                                               + pgconn.get_error_message())
            raise pgerr.error_from_result(res, encoding=self.conn.info.encoding)

    def _run(self, sql: str, params: Sequence[Any], *,
             first: bool = False) -> tuple[int, list[Row]]:
        """Execute one statement in this transaction (beginning it if need be): its row
        count and its rows (only the first when ``first``)."""
        if self.wire is None:
            self._begin()
            cur = self.cur.execute(sql, params, prepare=True)
            if cur.description is None:
                return cur.rowcount, []
            if first:
                row = cur.fetchone()
                return cur.rowcount, [] if row is None else [row]
            return cur.rowcount, list(cur.fetchall())
        begin, self.begun = not self.begun, True
        res = self.wire.run(sql, params, begin=begin)
        if res.status == pq.ExecStatus.TUPLES_OK:
            return res.ntuples, self.wire.rows(res, 1 if first else res.ntuples)
        return int(res.command_tuples or 0), []

    def defer(self, sql: str, params: Sequence[Any] = (),
              check: Callable[[Tx], None] | None = None) -> None:
        _target(sql)                       # refuse at once what cannot be deferred
        self.deferred.append((_pg(sql), params, check))

    def claim(self, sql: str, params: Sequence[Any], missing: Callable[[Tx], None]) -> None:
        self.flush()
        self._claim = (_pg(sql), params, missing)

    def settle_claim(self) -> None:
        if self._claim is None:
            return
        sql, params, missing = self._claim
        self._claim = None
        try:
            n, _ = self._run(sql, params)
        except pgerr.UniqueViolation:
            raise Claimed() from None       # the msgid is taken
        if n == 0:
            missing(self)

    def flush(self) -> None:
        """Send the claim, then the deferred writes (a run of them as one statement)."""
        self.settle_claim()
        batch, self.deferred = self.deferred, []
        self._write(_groups(batch) if batch else [])

    def _write(self, groups: list[list[_Deferred]]) -> None:
        for group in groups:
            if len(group) == 1:
                sql, params, check = group[0]
                counts = [self._run(sql, params)[0]]
            else:
                sql, flat = _combined(group)
                counts = [int(n) for n in self._run(sql, flat, first=True)[1][0]]
            for n, (_, _, check) in zip(counts, group, strict=True):
                if check is not None and n != 1:
                    check(self)

    def commit(self) -> None:
        """Send what is left and commit. Through the wire the last run of deferred writes
        and ``COMMIT`` share one round trip: the server then makes its checks
        (:func:`_combined` with ``guarded``), and a failed one raises :class:`_GuardFailed`
        (nothing committed; the store runs the transaction again with ``pipelined`` off,
        where the check itself explains the refusal from what the transaction saw)."""
        self.settle_claim()
        batch, self.deferred = self.deferred, []
        groups = _groups(batch) if batch else []
        if self.wire is None or not groups or not self.pipelined:
            self._write(groups)
            if self.begun:
                self._command(b"COMMIT")
            return
        self._write(groups[:-1])
        last = groups[-1]
        sql, flat = _combined(last, guarded=True)
        begin, self.begun = not self.begun, True
        try:
            self.wire.run(sql, flat, begin=begin, commit=True)
        except pgerr.InvalidTextRepresentation as exc:
            if _GUARD_RE.search(str(exc)) is None:
                raise
            raise _GuardFailed() from None

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        self.flush()
        return self._run(_pg(sql), params)[0]

    def insert_new(self, sql: str, params: Sequence[Any] = ()) -> bool | None:
        self.flush()
        try:
            n, _ = self._run(_pg(sql), params)
        except pgerr.UniqueViolation:
            return False
        return True if n else None

    def _query(self, sql: str, params: Sequence[Any], *, first: bool) -> list[Row]:
        """Run a query (only its first row when ``first``); a pending msgid claim travels
        with it: one statement, the claim as a ``WITH`` part and its row count as the first
        column of every answer row, the query's rows numbered to keep their order."""
        if self._claim is None or self.deferred:
            self.flush()
            return self._run(sql, params, first=first)[1]
        claim, cparams, missing = self._claim
        self._claim = None
        both = (f"WITH claim AS ({claim} RETURNING 1) SELECT (SELECT count(*) FROM claim), "
                f"q.* FROM (SELECT 1) AS one LEFT JOIN (SELECT row_number() OVER () AS rn, "
                f"s.* FROM ({sql}) AS s) AS q ON true ORDER BY q.rn")
        try:
            _, rows = self._run(both, [*cparams, *params], first=first)
        except pgerr.UniqueViolation:
            raise Claimed() from None       # the claim's insert is the statement's only write
        if not rows or int(rows[0][0]) == 0:
            missing(self)
        return [tuple(r[2:]) for r in rows if r[1] is not None]

    def one(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        rows = self._query(_pg(sql), params, first=True)
        return rows[0] if rows else None

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return self._query(_pg(sql), params, first=False)

    def many(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        self.flush()
        self._begin()
        with self.conn.cursor() as cur:
            cur.executemany(_pg(sql), list(rows))

    def load(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        self.flush()
        self._begin()
        with self.conn.cursor() as cur, cur.copy(
                f"COPY {table} ({', '.join(columns)}) FROM STDIN") as cp:
            for r in rows:
                cp.write_row(r)


def split_params(url: str) -> tuple[str, str | None, int]:
    """Remove sscard's own query parameters from a PostgreSQL URL: ``schema`` (work inside
    that schema) and ``pool`` (at most that many connections, default :data:`POOL_SIZE`)."""
    try:
        parts = urlsplit(url)
        parts.port                           # noqa: B018 (checks the port's syntax)
    except ValueError as exc:
        raise BadRequest(f"database URL {safe_url(url)} cannot be read: {exc}") from None
    query = parse_qsl(parts.query)
    own = {k: v for k, v in query if k in ("schema", "pool")}
    rest = urlencode([(k, v) for k, v in query if k not in own])
    schema = own.get("schema")
    if schema is not None and not _SCHEMA_RE.match(schema):
        raise BadRequest(f"schema {schema!r} must be a lower-case SQL identifier")
    pool = own.get("pool", str(POOL_SIZE))
    if not re.fullmatch(r"[0-9]{1,4}", pool) or not 1 <= int(pool) <= 1000:
        raise BadRequest(f"pool={pool!r} must be a number of connections from 1 to 1000")
    # urlunsplit would drop the '//' of an empty host (postgresql:///db?host=/run/...)
    base = f"{parts.scheme}://{parts.netloc}{parts.path}"
    return base + (f"?{rest}" if rest else ""), schema, int(pool)


POOL_SIZE = 32
"""Connections a store opens at most by default: more threads than that wait their turn."""

#: how long a transaction waits for a connection before it is refused
CONNECT_WAIT = Store.retry_budget


def _server_full(exc: psycopg.OperationalError) -> bool:
    """The server refused a new connection because all its slots are taken (53300)."""
    text = str(exc)
    return "too many clients" in text or "remaining connection slots" in text


class _Pool:
    """A bounded set of connections shared by the threads of one store.

    A transaction takes a connection (the most recently returned one, whose prepared
    statements are warm) and gives it back when it ends; when ``size`` are open, or the
    server has no slot left, it waits for one to come back."""

    def __init__(self, opener: Callable[[], psycopg.Connection[Any]], size: int) -> None:
        self._opener = opener
        self.size = size
        self._idle: list[psycopg.Connection[Any]] = []
        self._open = 0
        self._cond = threading.Condition()
        self._gen = 0                        # close() starts a new generation
        self._born: dict[int, int] = {}      # id(conn) -> its generation

    def get(self) -> psycopg.Connection[Any]:
        deadline = time.monotonic() + CONNECT_WAIT
        delay = 0.01
        while True:
            with self._cond:
                while not self._idle and self._open >= self.size:
                    if not self._cond.wait(max(0.0, deadline - time.monotonic())):
                        raise StoreBusy(f"no database connection came free in {CONNECT_WAIT:.0f} s "
                                        f"({self._open} in use): nothing was written, send the "
                                        "same request again")
                if self._idle:
                    return self._idle.pop()
                self._open += 1
                gen = self._gen
            try:
                conn = self._opener()
            except psycopg.OperationalError as exc:
                with self._cond:
                    self._open -= 1
                    self._cond.notify()
                if not _server_full(exc) or time.monotonic() > deadline:
                    raise
            else:
                with self._cond:
                    self._born[id(conn)] = gen
                return conn
            # the server is full (other clients): wait for one of ours to come back, or
            # try to connect again a little later
            with self._cond:
                if not self._idle:
                    self._cond.wait(min(delay, max(0.0, deadline - time.monotonic())))
            delay = min(delay * 2, 0.5)

    def put(self, conn: psycopg.Connection[Any]) -> None:
        keep = not conn.closed and conn.pgconn.transaction_status == pq.TransactionStatus.IDLE
        with self._cond:
            if keep and self._born.get(id(conn)) == self._gen:
                self._idle.append(conn)
                self._cond.notify()
                return
            self._open -= 1
            self._born.pop(id(conn), None)
            self._cond.notify()
        with contextlib.suppress(psycopg.Error):
            conn.close()

    def close(self) -> None:
        """Close the idle connections; those in use close when they come back."""
        with self._cond:
            idle, self._idle = self._idle, []
            self._open -= len(idle)
            for c in idle:
                self._born.pop(id(c), None)
            self._gen += 1
            self._cond.notify_all()
        for c in idle:
            with contextlib.suppress(psycopg.Error):
                c.close()


class PostgresStore(Store):
    """The books in a PostgreSQL (or wire-compatible) database."""

    dialect = "postgres"

    def __init__(self, url: str) -> None:
        self.url = url
        self.conninfo, self.schema, pool = split_params(url)
        # autocommit: each transaction sends its own BEGIN ISOLATION LEVEL SERIALIZABLE and
        # COMMIT (PostgresTx)
        self._pool = _Pool(lambda: self.connect(autocommit=True, quiet=True), pool)
        self.gate = KeyGate()

    def connect(self, *, autocommit: bool = False,
                quiet: bool = False) -> psycopg.Connection[Any]:
        """A new connection (in ``schema`` when the URL names one). Refused connections
        raise :class:`BadRequest` naming the URL, or with ``quiet`` the driver's error."""
        try:
            conn = Connection.connect(self.conninfo, autocommit=autocommit,
                                      connect_timeout=10)
        except psycopg.OperationalError as exc:
            if quiet:
                raise
            raise self._refused(exc) from None
        if self.schema:
            with conn.transaction():
                conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')
            conn.execute(f'SET search_path TO "{self.schema}"')
            if not autocommit:
                conn.commit()
        return conn

    def _refused(self, exc: psycopg.OperationalError) -> BadRequest:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "no answer"
        return BadRequest(f"cannot connect to {self.safe_url()}: {first}")

    @contextlib.contextmanager
    def _conn(self) -> Iterator[psycopg.Connection[Any]]:
        try:
            conn = self._pool.get()
        except psycopg.OperationalError as exc:
            raise self._refused(exc) from None
        try:
            yield conn
        finally:
            self._pool.put(conn)

    def _attempt(self, fn: Callable[[Tx], T], held: frozenset[str]) -> T:
        with self._conn() as conn:
            try:
                return self._once(conn, fn, held, pipelined=True)
            except _GuardFailed:
                # refused at the server, at COMMIT: run it again checking each write as it
                # goes, so that the refusal states what the transaction saw
                return self._once(conn, fn, held, pipelined=False)

    def _once(self, conn: psycopg.Connection[Any], fn: Callable[[Tx], T],
              held: frozenset[str], *, pipelined: bool) -> T:
        tx = PostgresTx(conn, pipelined=pipelined)
        tx.gate, tx.held = self.gate, held
        try:
            result = fn(tx)
            tx.commit()
            return result
        except _GuardFailed:
            _rollback(conn)
            raise
        except _RETRYABLE as exc:
            _rollback(conn)
            raise Retry(tx.contended) from exc
        except psycopg.OperationalError:
            # the connection broke: drop it (the pool opens a new one)
            with contextlib.suppress(psycopg.Error):
                conn.close()
            raise Retry() from None
        except BaseException:
            if not conn.closed:
                _rollback(conn)
            raise

    def _missing_table(self, exc: Exception) -> bool:
        return isinstance(exc, pgerr.UndefinedTable)

    def script(self, sql: str, then: Callable[[Tx], None] | None = None) -> None:
        with self._conn() as conn, conn.transaction():
            conn.execute(sql.encode())
            if then is not None:
                # in the transaction psycopg opened: statements through its cursor (which
                # forgets what it prepared if the transaction rolls back)
                tx = PostgresTx(conn, pipelined=False)
                tx.wire = None
                tx.begun = True
                then(tx)
                tx.flush()

    def drop_schema(self) -> None:
        """Drop this store's schema (tests only)."""
        if not self.schema:
            raise BadRequest("no schema to drop")
        self.close()
        with psycopg.connect(self.conninfo, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE')

    def close(self) -> None:
        """Close every idle connection; one still in use closes when it comes back. The
        store stays usable (it opens new connections)."""
        self._pool.close()

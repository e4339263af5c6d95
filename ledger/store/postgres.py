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
import logging
import re
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg
from psycopg import errors as pgerr

from ledger.errors import BadRequest
from ledger.store.base import Claimed, Retry, Row, Store, Tx

T = TypeVar("T")

class _QuietRetries(logging.Filter):
    """psycopg warns when a pipeline ends in an error; here that error (a serialization
    failure) is expected and the transaction is retried, so the warning is noise."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "pipeline aborted" not in record.getMessage()


logging.getLogger("psycopg").addFilter(_QuietRetries())

_RETRYABLE = (pgerr.SerializationFailure, pgerr.DeadlockDetected, pgerr.UniqueViolation)
_SCHEMA_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def _pg(sql: str) -> str:
    return sql.replace("?", "%s")


_BEGIN = "BEGIN ISOLATION LEVEL SERIALIZABLE"
_Deferred = tuple[str, Sequence[Any], Callable[[Tx], None] | None]


class PostgresTx(Tx):
    """A transaction on an autocommit connection whose ``BEGIN``/``COMMIT`` it sends itself,
    so they travel in the same pipeline (psycopg pipeline mode) as the statements around
    them. Deferred writes, the msgid claim and ``BEGIN`` go out together with the next
    statement that needs an answer, or with ``COMMIT``. A pharmacy settlement (2102) costs
    three round trips: ``BEGIN`` + msgid claim + card/holder/balance read; the guarded
    balance update + journal, settlement and answer inserts; ``COMMIT`` (sent apart because
    the guarded update's row count must be checked before committing)."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn
        self.deferred: list[_Deferred] = [(_BEGIN, (), None)]
        self._claim_at: int | None = None

    def defer(self, sql: str, params: Sequence[Any] = (),
              check: Callable[[Tx], None] | None = None) -> None:
        self.deferred.append((_pg(sql), params, check))

    def claim(self, sql: str, params: Sequence[Any], missing: Callable[[Tx], None]) -> None:
        self._claim_at = len(self.deferred)
        self.deferred.append((_pg(sql), params, missing))

    def _send(self, sql: str | None = None, params: Sequence[Any] = (), *,
              commit: bool = False) -> psycopg.Cursor[Any] | None:
        """Send the deferred statements, then ``sql`` (whose cursor is returned), then
        ``COMMIT`` if asked, in one pipeline (one round trip). A deferred write with a
        check is verified before ``COMMIT`` is sent (a separate round trip then)."""
        batch, self.deferred = self.deferred, []
        claim_at, self._claim_at = self._claim_at, None
        if commit and sql is None and len(batch) == 1 and batch[0][0] is _BEGIN:
            return None         # the transaction sent nothing: nothing to begin or commit
        if not batch:
            if sql is not None:
                return self.conn.execute(sql, params, prepare=True)
            if commit:
                self.conn.execute("COMMIT")
            return None
        checked = any(check is not None for _, _, check in batch)
        conn = self.conn
        cur = None
        curs: list[psycopg.Cursor[Any]] = []
        try:
            with conn.pipeline():
                for q, p, _ in batch:
                    curs.append(conn.execute(q, p, prepare=q is not _BEGIN))
                if sql is not None:
                    cur = conn.execute(sql, params, prepare=True)
                if commit and not checked:
                    conn.execute("COMMIT")
        except pgerr.UniqueViolation:
            if claim_at is not None and (claim_at >= len(curs)
                                         or curs[claim_at].pgresult is None):
                raise Claimed() from None   # the claim itself failed: the msgid is taken
            raise
        if checked:
            for c, (_, _, check) in zip(curs, batch, strict=True):
                if check is not None and c.rowcount != 1:
                    check(self)
            if commit:
                conn.execute("COMMIT")
        return cur

    def flush(self) -> None:
        self._send()

    def settle_claim(self) -> None:
        if self._claim_at is None:
            return
        upto = self._claim_at + 1
        self.deferred, rest = self.deferred[:upto], self.deferred[upto:]
        self._send()
        self.deferred = rest

    def commit(self) -> None:
        self._send(commit=True)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        cur = self._send(_pg(sql), params)
        assert cur is not None
        return int(cur.rowcount)

    def insert_new(self, sql: str, params: Sequence[Any] = ()) -> bool | None:
        self.flush()
        try:
            n = self.conn.execute(_pg(sql), params, prepare=True).rowcount
        except pgerr.UniqueViolation:
            return False
        return True if n else None

    def one(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        cur = self._send(_pg(sql), params)
        assert cur is not None
        row: Row | None = cur.fetchone()
        return row

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        cur = self._send(_pg(sql), params)
        assert cur is not None
        return list(cur.fetchall())

    def many(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        self.flush()
        with self.conn.cursor() as cur:
            cur.executemany(_pg(sql), list(rows))

    def load(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        self.flush()
        with self.conn.cursor() as cur, cur.copy(
                f"COPY {table} ({', '.join(columns)}) FROM STDIN") as cp:
            for r in rows:
                cp.write_row(r)


def split_schema(url: str) -> tuple[str, str | None]:
    """Remove sscard's ``schema`` query parameter from a PostgreSQL URL."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query)
    schema = next((v for k, v in query if k == "schema"), None)
    rest = urlencode([(k, v) for k, v in query if k != "schema"])
    if schema is not None and not _SCHEMA_RE.match(schema):
        raise BadRequest(f"schema {schema!r} must be a lower-case SQL identifier")
    return urlunsplit(parts._replace(query=rest)), schema


class PostgresStore(Store):
    """The books in a PostgreSQL (or wire-compatible) database."""

    dialect = "postgres"

    def __init__(self, url: str) -> None:
        self.url = url
        self.conninfo, self.schema = split_schema(url)
        self._local = threading.local()
        self._all: list[psycopg.Connection[Any]] = []
        self._lock = threading.Lock()

    def connect(self, *, autocommit: bool = False) -> psycopg.Connection[Any]:
        try:
            conn = psycopg.connect(self.conninfo, autocommit=autocommit, connect_timeout=10)
        except psycopg.OperationalError as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else "no answer"
            raise BadRequest(f"cannot connect to {self.safe_url()}: {first}") from None
        if self.schema:
            with conn.transaction():
                conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')
            conn.execute(f'SET search_path TO "{self.schema}"')
            if not autocommit:
                conn.commit()
        return conn

    def _conn(self) -> psycopg.Connection[Any]:
        conn: psycopg.Connection[Any] | None = getattr(self._local, "conn", None)
        if conn is None or conn.closed:
            # autocommit: each transaction sends its own BEGIN ISOLATION LEVEL SERIALIZABLE
            # and COMMIT, pipelined with its statements (PostgresTx)
            conn = self.connect(autocommit=True)
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    def _attempt(self, fn: Callable[[Tx], T]) -> T:
        conn = self._conn()
        try:
            tx = PostgresTx(conn)
            result = fn(tx)
            tx.commit()
            return result
        except _RETRYABLE as exc:
            conn.rollback()
            raise Retry() from exc
        except psycopg.OperationalError:
            # the connection broke: drop it; the next attempt opens a new one
            try:
                conn.close()
            finally:
                self._local.conn = None
            raise Retry() from None
        except BaseException:
            if not conn.closed:
                conn.rollback()
            raise

    def script(self, sql: str) -> None:
        conn = self._conn()
        with conn.transaction():
            conn.execute(sql.encode())

    def drop_schema(self) -> None:
        """Drop this store's schema (tests only)."""
        if not self.schema:
            raise BadRequest("no schema to drop")
        self.close()
        with psycopg.connect(self.conninfo, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE')

    def close(self) -> None:
        with self._lock:
            for c in self._all:
                with contextlib.suppress(psycopg.Error):
                    c.close()
            self._all.clear()
        self._local = threading.local()

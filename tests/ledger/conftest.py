"""Fixtures of the ledger suite: a ``store`` on SQLite and on a real PostgreSQL server.

PostgreSQL, in this order: ``$SSCARD_PG_URL``; the local server at
``postgresql://postgres@127.0.0.1:5432/test`` if it answers; a private throwaway cluster
started from the PostgreSQL server binaries (``initdb``/``pg_ctl``) in a temporary
directory; otherwise the postgres tests skip locally and FAIL under CI
(``tests.support.require``). Each test works in its own schema, dropped afterwards.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from ledger.service import CST, HostService, initialize
from ledger.store import open_store
from ledger.store.base import Store
from ledger.store.postgres import PostgresStore
from tests.support import require

DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/test"


def _answers(url: str) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
        return True
    except psycopg.Error:
        return False


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PrivateCluster:
    """A throwaway PostgreSQL cluster (as the ``postgres`` OS user when run as root)."""

    def __init__(self) -> None:
        bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        if not bins:
            raise FileNotFoundError("initdb")
        self.bin = Path(bins[-1]).parent
        self.dir = Path(tempfile.mkdtemp(prefix="sscard-pg-"))
        self.port = _free_port()
        self.as_postgres = os.geteuid() == 0
        if self.as_postgres:
            shutil.chown(self.dir, "postgres", "postgres")

    def _run(self, *args: str) -> None:
        cmd = [str(self.bin / args[0]), *args[1:]]
        if self.as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        subprocess.run(cmd, check=True, capture_output=True, timeout=120)

    def start(self) -> str:
        data = self.dir / "data"
        self._run("initdb", "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync")
        self._run("pg_ctl", "-D", str(data), "-w", "-l", str(self.dir / "log"), "-o",
                  f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off",
                  "start")
        url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        for _ in range(50):
            if _answers(url):
                return url
            time.sleep(0.1)
        raise RuntimeError("the private PostgreSQL cluster did not start")

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.dir / "data"), "-m", "immediate", "stop")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    url = os.environ.get("SSCARD_PG_URL")
    if url:
        yield url
        return
    if _answers(DEFAULT_PG):
        yield DEFAULT_PG
        return
    try:
        cluster = PrivateCluster()
    except FileNotFoundError:
        require("postgresql", "install PostgreSQL (apt-get install postgresql) or set "
                              "SSCARD_PG_URL")
        return
    try:
        yield cluster.start()
    finally:
        cluster.stop()


def _pg_store(pg_url: str) -> Iterator[PostgresStore]:
    schema = "t_" + uuid.uuid4().hex[:12]
    sep = "&" if "?" in pg_url else "?"
    store = PostgresStore(f"{pg_url}{sep}schema={schema}")
    try:
        yield store
    finally:
        store.drop_schema()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """An empty store on each back end."""
    if request.param == "sqlite":
        s = open_store(f"sqlite:///{tmp_path}/host.db")
        try:
            yield s
        finally:
            s.close()
    else:
        yield from _pg_store(request.getfixturevalue("pg_url"))


class Clock:
    """The host's clock in tests: fixed, moved by hand."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 11, 28, 10, 0, 0, tzinfo=CST)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw: float) -> None:
        self.now += timedelta(**kw)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def host(store: Store, clock: Clock) -> HostService:
    """An initialised host (both back ends) with a hand-moved clock."""
    initialize(store)
    return HostService(store, clock=clock)

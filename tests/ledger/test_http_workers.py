"""``sscard host serve --workers N``: several server processes share the port and the
books; any of them answers any request of a terminal."""

from __future__ import annotations

import signal
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from ledger.books import verify
from ledger.client import HostClient, drug_line
from ledger.populate import holder, populate
from ledger.service import initialize
from ledger.store import open_store
from ledger.store.postgres import PostgresStore
from terminal.sim.hostproc import HostProcess
from tests.ledger.helpers import AMOXICILLIN, PHARMACY


def _children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/host.db"
    else:
        pg = request.getfixturevalue("pg_url")
        url = f"{pg}{'&' if '?' in pg else '?'}schema=t_{uuid.uuid4().hex[:12]}"
    store = open_store(url)
    initialize(store)
    populate(store, 40)
    store.close()
    yield url
    if request.param == "postgres":
        PostgresStore(url).drop_schema()


def test_two_server_processes_share_the_port_and_the_books(db_url: str,
                                                            tmp_path: Path) -> None:
    server = HostProcess(db_url, log_path=tmp_path / "host.log", workers=2)
    server.start()
    try:
        assert server.proc is not None
        workers = [p for p in _children(server.proc.pid) if "spawn_main" in _cmdline(p)]
        assert len(workers) == 2
        errors: list[BaseException] = []
        setl_ids: list[str] = []

        def terminal(tid: int) -> None:
            try:
                c = HostClient.connect(server.url, fixmedins_code=PHARMACY,
                                       terminal_id=f"{tid:02d}")
                c.sign_in()
                for i in range(tid, 40, 6):       # every terminal its own holders
                    h = holder(i, "370800")
                    out = c.settle(psn_no=str(h["psn_no"]), card_no=str(h["card_no"]),
                                   card_sn=str(h["card_sn"]), insutype=str(h["insutype"]),
                                   lines=[drug_line("1", AMOXICILLIN, 1, 1250)])
                    setl_ids.append(out["setlinfo"]["setl_id"])
                c.close()
            except BaseException as exc:
                errors.append(exc)
        threads = [threading.Thread(target=terminal, args=(t,)) for t in range(1, 7)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert errors == []
        assert len(setl_ids) == len(set(setl_ids)) == 40 - 1
    finally:
        proc = server.proc
        assert proc is not None
        proc.send_signal(signal.SIGTERM)            # the supervisor stops its workers
        assert proc.wait(30) == 0
        server.proc = None
    assert all(not Path(f"/proc/{p}").exists() for p in workers)
    store = open_store(db_url)
    try:
        assert store.run(verify) == []
        n = store.run(lambda tx: tx.one("SELECT COUNT(*) FROM settlements"))
        assert n is not None and int(n[0]) == 39
    finally:
        store.close()

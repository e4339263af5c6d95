"""``sscard host init|populate|report|terminal-key`` and the synthetic holders."""

from __future__ import annotations

from pathlib import Path

import pytest

from ledger.books import verify
from ledger.ids import card_sn_authentic, valid_card_no, valid_id_number, valid_pan
from ledger.populate import holder, populate
from ledger.service import HostService, initialize
from ledger.store.base import Store
from terminal.cli import main
from tests.ledger.helpers import AMOXICILLIN, PHARMACY, World


def test_holders_are_valid_and_distinct() -> None:
    hs = [holder(i, "370800") for i in range(0, 4_000_000, 99_991)]
    for h in hs:
        assert valid_id_number(str(h["certno"]))
        assert valid_card_no(str(h["card_no"])) and str(h["card_no"]).startswith("Y")
        assert card_sn_authentic(str(h["card_sn"]))
        assert valid_pan(str(h["pan"]))
    for key in ("certno", "card_no", "card_sn", "pan", "psn_no"):
        assert len({h[key] for h in hs}) == len(hs)
    assert holder(7, "370800") == holder(7, "370800")


def test_populate_then_pay(store: Store, clock: object) -> None:
    initialize(store)
    populate(store, 300, batch=128)
    populate(store, 50, batch=128)            # continues after the first 300
    assert store.run(lambda tx: tx.one("SELECT COUNT(*) FROM cards"))[0] == 350
    assert store.run(verify) == []
    host = HostService(store, clock=clock)    # type: ignore[arg-type]
    w = World(host)
    h = holder(349, "370800")
    info = w.pharmacy.settle(psn_no=str(h["psn_no"]), card_no=str(h["card_no"]),
                             card_sn=str(h["card_sn"]), insutype=str(h["insutype"]),
                             lines=w.lines((AMOXICILLIN, 1, 1250)))["setlinfo"]
    assert info["medfee_sumamt"] == "12.50"
    assert store.run(verify) == []


def test_cli_init_populate_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = f"sqlite:///{tmp_path}/host.db"
    assert main(["host", "init", "--db", db]) == 0
    assert "migrations applied: 1" in capsys.readouterr().out
    assert main(["host", "init", "--db", db]) == 0
    assert "none (schema up to date)" in capsys.readouterr().out
    assert main(["host", "populate", "--db", db, "--cards", "500", "--batch", "200"]) == 0
    cap = capsys.readouterr()
    assert "created 500 synthetic holders" in cap.out and "500/500 cards" in cap.err
    assert main(["host", "report", "--db", db, "--date", "2026-11-28"]) == 0
    assert "books balance" in capsys.readouterr().out
    assert main(["host", "terminal-key", "--fixmedins-code", PHARMACY]) == 0
    assert capsys.readouterr().out.startswith(f"{PHARMACY}-01 ")


@pytest.mark.parametrize("argv, message", [
    (["host", "report", "--db", "sqlite:///{tmp}/none.db"],
     "does not exist: run `sscard host init"),
    (["host", "init", "--db", "sqlite:///{tmp}/no/such/dir/h.db"], "does not exist"),
    (["host", "init", "--db", "mysql://x"], "unsupported database URL"),
    (["host", "populate", "--db", "sqlite:///{tmp}/none.db", "--cards", "5"], "host init"),
    (["host", "report", "--db", "sqlite:///{tmp}/h.db", "--date", "28/11"], "YYYY-MM-DD"),
    (["host", "serve", "--db", "sqlite:///{tmp}/h.db", "--listen", "nope"], "HOST:PORT"),
])
def test_cli_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                 argv: list[str], message: str) -> None:
    rc = main([a.replace("{tmp}", str(tmp_path)) for a in argv])
    err = capsys.readouterr().err
    assert rc != 0 and message in err and "Traceback" not in err


def _damage_page(path: Path, page: int) -> None:
    """Overwrite one page of a SQLite file with bytes no B-tree page can start with."""
    import sqlite3
    conn = sqlite3.connect(path)
    size = int(conn.execute("PRAGMA page_size").fetchone()[0])
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    with path.open("r+b") as f:
        f.seek((page - 1) * size)
        f.write(b"\xff" * size)


def _root_page(path: Path, table: str) -> int:
    import sqlite3
    conn = sqlite3.connect(path)
    row = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = ?", (table,)).fetchone()
    conn.close()
    return int(row[0])


def test_a_file_that_is_no_database_is_named_not_taken_for_a_new_one(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "host.db"
    bad.write_bytes(bytes(range(256)) * 40)
    before = bad.read_bytes()
    for argv in (["host", "report", "--db", f"sqlite:///{bad}"],
                 ["host", "init", "--db", f"sqlite:///{bad}"],
                 ["host", "populate", "--db", f"sqlite:///{bad}", "--cards", "3"]):
        rc = main(argv)
        err = capsys.readouterr().err
        assert rc != 0 and "Traceback" not in err
        assert f"database file {bad} cannot be used (file is not a database)" in err
        assert "host init" not in err          # not mistaken for an empty database
    assert bad.read_bytes() == before          # nothing written over it


def test_a_damaged_page_is_reported_and_the_store_stays_usable(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from ledger.errors import BadRequest
    from ledger.store import open_store
    path = tmp_path / "host.db"
    db = f"sqlite:///{path}"
    assert main(["host", "init", "--db", db]) == 0
    assert main(["host", "populate", "--db", db, "--cards", "300", "--batch", "300"]) == 0
    _damage_page(path, _root_page(path, "cards"))
    capsys.readouterr()
    store = open_store(db)
    store.require_schema()                     # the schema table itself is intact
    with pytest.raises(BadRequest, match=r"cannot be used \(database disk image is malformed\)"):
        store.run(lambda tx: tx.one("SELECT COUNT(*) FROM cards WHERE card_no > ''"))
    # the store stays usable for what the damage does not touch, in a new transaction
    assert store.schema_version() >= 1
    store.close()


def test_a_dead_postgresql_server_is_named_not_taken_for_an_empty_database(
        capsys: pytest.CaptureFixture[str]) -> None:
    url = "postgresql://sscard@127.0.0.1:1/none"       # nothing listens on port 1
    for argv in (["host", "report", "--db", url],
                 ["host", "serve", "--db", url, "--listen", "127.0.0.1:0"]):
        rc = main(argv)
        err = capsys.readouterr().err
        assert rc != 0 and "Traceback" not in err
        assert f"cannot connect to {url}" in err and "host init" not in err

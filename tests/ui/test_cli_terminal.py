"""``sscard terminal`` on the command line: help, and clear one-line errors (no traceback)
for an unreachable host and a missing reader."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.ui.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]


def sscard(*args: str, data: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "XDG_DATA_HOME": str(data), "SSCARD_DEBUG": "0"}
    return subprocess.run([sys.executable, "-m", "terminal", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)


def test_help_explains_modes_keys_and_gives_examples(tmp_path: Path) -> None:
    proc = sscard("terminal", "--help", data=tmp_path)
    assert proc.returncode == 0
    for word in ("--mode", "--reader", "--host", "--theme", "examples:", "F9", "sscard terminal"):
        assert word in proc.stdout


def test_an_unreachable_host_is_one_clear_line(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    proc = sscard("terminal", "--host", url, data=tmp_path)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("sscard: the host at " + url)
    assert "sscard host serve" in last


def test_a_missing_reader_is_one_clear_line(tmp_path: Path) -> None:
    proc = sscard("terminal", "--reader", "No Such Reader 99", data=tmp_path)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("sscard: reader 'No Such Reader 99'")


def test_first_run_creates_the_host_and_copies_the_cards_without_touching_fixtures(
        tmp_path: Path) -> None:
    from terminal.cli.cmd_terminal import FIXTURE_CARDS, embedded_host, prepare_data_dir

    before = {p.name: p.read_bytes() for p in FIXTURE_CARDS.glob("*.json")}
    data = tmp_path / "sscard"
    cards = prepare_data_dir(data)
    url = embedded_host(data)
    assert (data / "host.sqlite").exists() and url.endswith("host.sqlite")
    assert {p.name for p in cards.glob("*.json")} == set(before)
    # the working copies are what the terminal changes; the fixtures stay as they were
    (cards / "zhang-san.json").write_text("{}", encoding="utf-8")
    assert {p.name: p.read_bytes() for p in FIXTURE_CARDS.glob("*.json")} == before
    # the host holds the fixture policy with its catalogue (searchable by pinyin initials)
    from ledger.service import HostService

    host = HostService.open(url)
    try:
        assert [i.name for i in host.policy("370800").search("AMXL")] == ["阿莫西林胶囊"]
    finally:
        host.close()
    # a second run reuses the host and does not overwrite the working copies
    assert embedded_host(data) == url
    prepare_data_dir(data)
    assert (cards / "zhang-san.json").read_text(encoding="utf-8") == "{}"


def test_an_embedded_host_made_by_an_older_version_is_upgraded(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sqlite3

    import ledger.store.base as store_base
    from terminal.cli.cmd_terminal import embedded_host, prepare_data_dir

    def layout() -> tuple[int, str, int]:
        conn = sqlite3.connect(data / "host.sqlite")
        try:
            version = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()[0]
            sql = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'postings'"
                               ).fetchone()[0]
            rows = conn.execute("SELECT COUNT(*) FROM postings").fetchone()[0]
        finally:
            conn.close()
        return int(version), str(sql), int(rows)

    data = tmp_path / "sscard"
    prepare_data_dir(data)
    every = store_base.available_migrations
    with monkeypatch.context() as m:          # the first run, by an sscard of schema 1
        m.setattr(store_base, "available_migrations",
                  lambda dialect: [x for x in every(dialect) if x[0] == 1])
        url = embedded_host(data)
    version, sql, rows = layout()
    assert version == 1 and "WITHOUT ROWID" not in sql and rows > 0
    assert embedded_host(data) == url         # this version: upgraded in place
    version, sql, after = layout()
    assert version == max(v for v, _, _ in every("sqlite"))
    assert "WITHOUT ROWID" in sql and after == rows

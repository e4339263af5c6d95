"""Bad input to ``sscard checkout|admit|discharge|host|simulate`` gets one clear line and a
non-zero exit, never a traceback, and loses nothing; back-to-back runs of one terminal work;
the HTTP host refuses absurd bodies as bad requests."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from ledger.auth import TEST_SECRET, sign_headers, terminal_key
from ledger.books import verify
from ledger.client import HostClient, MsgidSequence
from ledger.errors import BadRequest, MsgidConflict
from ledger.http import PATH, create_app
from ledger.populate import populate
from ledger.service import HostService, initialize
from ledger.store import open_store
from terminal.cli import main
from terminal.core import adapters
from terminal.sim.hostproc import sigterm_as_interrupt
from tests.core.conftest import HOLDER, PHARMACY, EmbeddedHost
from tests.core.fakes import PIN
from tests.core.hostcard import HostIssuedCard
from tests.core.station import PINS, Station
from tests.core.test_cli import run

AMOX = "XJ01CAA040A001010101445"
ROOT = Path(__file__).resolve().parents[2]


def refused_by_parser(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    """The argparse refusal of ``argv``: exit 2, its one error line."""
    with pytest.raises(SystemExit) as exc:
        main(argv)
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "Traceback" not in err
    return err.strip().splitlines()[-1]


@pytest.fixture
def card(embedded: EmbeddedHost, monkeypatch: pytest.MonkeyPatch) -> HostIssuedCard:
    c = HostIssuedCard(embedded.cardinfo, HOLDER)

    @contextlib.contextmanager
    def open_card(name: str, psam: str | None = None) -> Iterator[HostIssuedCard]:
        yield c

    monkeypatch.setattr(adapters, "open_card", open_card, raising=False)
    return c


class Clock(datetime):
    """``ledger.client.datetime`` standing still at :attr:`at` (the terminal's clock)."""

    at = datetime(2026, 11, 28, 10, 0, 0, 100_000)

    @classmethod
    def now(cls, tz: Any = None) -> datetime:  # type: ignore[override]
        return cls.at

    @classmethod
    def install(cls, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr("ledger.client.datetime", cls)


def new_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """What a new ``sscard`` process starts with: no msgid sequence minted yet."""
    monkeypatch.setattr(MsgidSequence, "_shared", {})


# --------------------------------------------------------------------------- 1. sign-in


def test_a_new_process_in_the_same_second_mints_after_the_last_one(
        monkeypatch: pytest.MonkeyPatch) -> None:
    Clock.install(monkeypatch)
    new_process(monkeypatch)
    Clock.at = datetime(2026, 11, 28, 10, 0, 0, 100_000)
    first = [MsgidSequence.shared(PHARMACY, 1).next() for _ in range(3)]
    new_process(monkeypatch)
    Clock.at = datetime(2026, 11, 28, 10, 0, 0, 400_000)      # same second, later
    second = [MsgidSequence.shared(PHARMACY, 1).next() for _ in range(3)]
    assert not set(first) & set(second)
    assert [m[12:] for m in second] == ["202611281000000140", "202611281000000141",
                                        "202611281000000142"]


@pytest.mark.parametrize("later_us", [400_000, 100_000])   # later in the second; same instant
def test_two_sign_in_cycles_of_one_terminal_in_one_second(
        embedded: EmbeddedHost, monkeypatch: pytest.MonkeyPatch, later_us: int) -> None:
    Clock.install(monkeypatch)
    signs = []
    for us in (100_000, later_us):
        new_process(monkeypatch)
        Clock.at = datetime(2026, 11, 28, 10, 0, 0, us)
        c = HostClient.connect(embedded.url, fixmedins_code=PHARMACY, terminal_id="01")
        try:   # refused with "sign_no … was signed out" before the fix
            who = c.person_by_card(embedded.cardinfo["card_no"], embedded.cardinfo["card_sn"])
            assert who["baseinfo"]["psn_no"] == embedded.psn_no
            signs.append(c.sign_no)
        finally:
            c.close()
    assert signs[0] != signs[1]


def test_two_checkouts_in_one_second(embedded: EmbeddedHost, card: HostIssuedCard,
                                     monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    Clock.install(monkeypatch)
    for us in (100_000, 400_000):
        new_process(monkeypatch)
        Clock.at = datetime(2026, 11, 28, 10, 0, 0, us)
        rc, _, err = run(monkeypatch, capsys, [
            "checkout", "--reader", "virtual:test", "--host", embedded.url, "--item", AMOX,
            "--pin-from-stdin"], PIN + "\n")
        assert rc == 0, err
    assert embedded.balances() == (50000 - 2 * 1250, 100000)   # both sales were made


# --------------------------------------------------------------------------- 2. populate


@pytest.fixture
def hostdb(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path}/host.db"
    store = open_store(url)
    try:
        initialize(store)
    finally:
        store.close()
    return url


def _rows(url: str, sql: str) -> list[tuple[Any, ...]]:
    store = open_store(url)
    try:
        return list(store.run(lambda tx: tx.all(sql)))
    finally:
        store.close()


@pytest.mark.parametrize("argv, message", [
    (["--cards", "2", "--batch", "0"], "--batch: 0 is out of range: 1 or more"),
    (["--cards", "0"], "--cards: 0 is out of range: from 1 to 4000000"),
    (["--cards", "4000001"], "--cards: 4000001 is out of range"),
])
def test_populate_counts_are_checked(hostdb: str, capsys: pytest.CaptureFixture[str],
                                     argv: list[str], message: str) -> None:
    assert message in refused_by_parser(capsys, ["host", "populate", "--db", hostdb, *argv])
    assert _rows(hostdb, "SELECT entry_id FROM entries WHERE kind = 'opening'") == []


def test_populate_with_batch_0_writes_nothing(hostdb: str) -> None:
    store = open_store(hostdb)
    try:
        with pytest.raises(BadRequest, match="--batch must be at least 1"):
            populate(store, 2, batch=0)
    finally:
        store.close()
    assert _rows(hostdb, "SELECT entry_id FROM entries WHERE kind = 'opening'") == []


def test_populate_goes_on_after_an_old_empty_opening_entry(
        hostdb: str, capsys: pytest.CaptureFixture[str]) -> None:
    # what `--batch 0` used to commit before failing: an opening entry without holders
    store = open_store(hostdb)
    try:
        store.run(lambda tx: tx.execute(
            "INSERT INTO entries (entry_id, msgid, kind, day, fixmedins_code, created_at, "
            "ref_entry_id, memo) VALUES ('POP3708000000000000', 'POP3708000000000000', "
            "'opening', '2026-11-28', '', '2026-11-28T10:00:00+08:00', NULL, 'populate 0')"))
    finally:
        store.close()
    assert main(["host", "populate", "--db", hostdb, "--cards", "3", "--batch", "2"]) == 0
    assert main(["host", "populate", "--db", hostdb, "--cards", "2"]) == 0
    assert "created 2 synthetic holders (5 in all)" in capsys.readouterr().out
    assert _rows(hostdb, "SELECT COUNT(*) FROM cards")[0][0] == 5
    store = open_store(hostdb)
    try:
        assert store.run(verify) == []
    finally:
        store.close()


@pytest.mark.parametrize("area", ["abc", "999999"])
def test_populate_refuses_an_area_without_a_policy(hostdb: str, area: str,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["host", "populate", "--db", hostdb, "--cards", "2", "--area", area])
    err = capsys.readouterr().err
    assert rc == 1 and "Traceback" not in err
    assert err.strip() == (f"sscard: area '{area}' has no policy at this host; known areas: "
                           "370800, 371100")
    assert _rows(hostdb, "SELECT COUNT(*) FROM persons")[0][0] == 0


@pytest.mark.parametrize("code", ["", "P3708", "p37080000001", "P37080000001-9"])
def test_terminal_key_needs_an_institution_code(code: str,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["host", "terminal-key", "--fixmedins-code", code])
    out, err = capsys.readouterr()
    assert rc == 1 and out == ""                       # no key printed
    assert "an institution code is 12 capital letters or digits" in err


def test_terminal_key_needs_a_terminal_id(capsys: pytest.CaptureFixture[str]) -> None:
    line = refused_by_parser(capsys, ["host", "terminal-key", "--fixmedins-code", PHARMACY,
                                      "--terminal-id", ""])
    assert "a terminal id is two digits, 00 to 99" in line
    assert capsys.readouterr().out == ""


# --------------------------------------------------------------------------- 3. secrets


def test_the_host_password_is_never_printed(monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = run(monkeypatch, capsys, [
        "checkout", "--reader", "virtual:none.json", "--host",
        "postgresql://alice:S3cretPW@127.0.0.1:1/x", "--item", AMOX])
    assert rc == 1 and "S3cretPW" not in out + err
    assert err.startswith("sscard: cannot use the host at postgresql://alice@127.0.0.1:1/x: ")
    rc, out, err = run(monkeypatch, capsys, [
        "admit", "--reader", "virtual:none.json", "--host",
        "http://bob:S3cretPW@host:notaport", "--yes"])
    assert rc == 1 and "S3cretPW" not in out + err and "bad host URL http://bob@host" in err


# --------------------------------------------------------------------------- 4. host serve


def test_serve_refuses_a_port_out_of_range(hostdb: str, capsys: pytest.CaptureFixture[str]
                                           ) -> None:
    rc = main(["host", "serve", "--db", hostdb, "--listen", "127.0.0.1:99999"])
    err = capsys.readouterr().err
    assert rc == 1 and "serving" not in err and "Traceback" not in err
    assert "port 99999 is out of range: from 0 to 65535" in err


def test_serve_refuses_a_port_in_use_before_claiming_to_serve(
        hostdb: str, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        rc = main(["host", "serve", "--db", hostdb, "--listen", f"127.0.0.1:{port}"])
    err = capsys.readouterr().err
    assert rc == 1 and "serving" not in err and "Traceback" not in err
    assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in err


def test_serve_log_level_is_a_choice(hostdb: str, capsys: pytest.CaptureFixture[str]) -> None:
    line = refused_by_parser(capsys, ["host", "serve", "--db", hostdb, "--log-level", "bogus"])
    assert "invalid choice: 'bogus'" in line


# --------------------------------------------------------------------------- 5. arguments


@pytest.mark.parametrize("argv, message", [
    (["checkout", "--item", f"{AMOX}:"], "no quantity after the colon"),
    (["checkout", "--item", f"{AMOX}:1000000000"], "at most 999999999"),
    (["checkout", "--item", AMOX, "--timeout", "0"], "seconds must be more than 0"),
    (["checkout", "--item", AMOX, "--timeout", "nan"], "seconds must be more than 0"),
    (["checkout", "--item", AMOX, "--timeout", "inf"], "seconds must be more than 0"),
    (["checkout", "--item", AMOX, "--terminal-id", ""], "a terminal id is two digits"),
    (["checkout", "--item", AMOX, "--terminal-id", "999999999"],
     "a terminal id is two digits"),
    (["checkout", "--item", AMOX, "--terminal-id", "7"], "a terminal id is two digits"),
    (["admit", "--dept", ""], "--dept must not be empty"),
    (["admit", "--dept", "  "], "--dept must not be empty"),
    (["discharge", "--mdtrt-id", "M1", "--timeout", "-1"], "seconds must be more than 0"),
])
def test_counter_arguments_are_checked(capsys: pytest.CaptureFixture[str], argv: list[str],
                                       message: str) -> None:
    line = refused_by_parser(capsys, [argv[0], "--reader", "virtual:x.json", "--host",
                                      "sqlite:///nowhere.db", *argv[1:]])
    assert message in line


@pytest.mark.parametrize("argv, message", [
    (["--minutes", "nan"], "minutes must be more than 0 and at most"),
    (["--minutes", "inf"], "minutes must be more than 0 and at most"),
    (["--minutes", "0"], "minutes must be more than 0 and at most"),
    (["--think", "-1"], "seconds must be from 0 to"),
    (["--think", "nan"], "seconds must be from 0 to"),
    (["--terminals", "0"], "out of range"),
    (["--holders", "0"], "out of range"),
])
def test_simulate_arguments_are_checked(capsys: pytest.CaptureFixture[str], argv: list[str],
                                        message: str) -> None:
    assert message in refused_by_parser(capsys, ["simulate", *argv])


@pytest.fixture
def no_simulation(monkeypatch: pytest.MonkeyPatch) -> None:
    """The simulation must not start: the arguments are refused up front."""
    def boom(*a: object, **kw: object) -> None:
        raise AssertionError("the simulation started")
    monkeypatch.setattr("terminal.sim.city.simulate", boom)
    monkeypatch.setattr("terminal.sim.banktest.run_cli", boom)


@pytest.mark.parametrize("argv, message", [
    (["--bank-test", "--db", "postgresql://nobody@127.0.0.1:1/x"],
     "--db is for the city simulation only: --bank-test does not use it"),
    (["--bank-test", "--host", "http://127.0.0.1:9"],
     "--host is for the city simulation only"),
    (["--power-cut", "--json", "r.json"], "--json is for the city simulation only"),
    (["--db", "sqlite:///{tmp}/no/such/dir/c.db"],
     "--db: directory {tmp}/no/such/dir does not exist"),
    (["--db", "postgresql://alice:S3cretPW@127.0.0.1:1/x"],
     "--db: cannot connect to postgresql://alice@127.0.0.1:1/x"),
    (["--json", "{tmp}/no/such/dir/r.json"], "directory {tmp}/no/such/dir does not exist"),
    (["--json", "{tmp}"], "is a directory"),
    (["--host", "http://127.0.0.1:9", "--db", "sqlite:///{tmp}/c.db"],
     "give one or the other"),
])
def test_simulate_refuses_up_front(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                   no_simulation: None, argv: list[str], message: str) -> None:
    rc = main(["simulate", *[a.replace("{tmp}", str(tmp_path)) for a in argv]])
    err = capsys.readouterr().err
    assert rc == 1 and "Traceback" not in err and "S3cretPW" not in err
    assert message.replace("{tmp}", str(tmp_path)) in err and len(err.splitlines()) == 1


def test_checkout_with_a_bad_http_url(monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    for url in ("http://host:notaport", "http://"):
        rc, _, err = run(monkeypatch, capsys, ["checkout", "--reader", "virtual:x.json",
                                               "--host", url, "--item", AMOX])
        assert rc == 1 and "InvalidURL" not in err and "Traceback" not in err
        assert f"cannot use the host at {url}: bad host URL {url}" in err


@pytest.mark.parametrize("area", ["999999", "../370800", "abc"])
def test_checkout_with_an_unknown_area(area: str, monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    rc, _, err = run(monkeypatch, capsys, [
        "checkout", "--reader", "virtual:x.json", "--host", "sqlite:///nowhere.db",
        "--item", AMOX, "--area", area])
    assert rc == 1 and "Traceback" not in err and "PolicyError" not in err
    assert f"area {area!r} is unknown" in err and "known areas: 370800, 371100" in err


# --------------------------------------------------------------------------- 6. simulate


def test_sigterm_stops_like_ctrl_c_once() -> None:
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt), sigterm_as_interrupt():
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)
    assert signal.getsignal(signal.SIGTERM) is before
    with sigterm_as_interrupt():
        with contextlib.suppress(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)
        os.kill(os.getpid(), signal.SIGTERM)      # the second one does not cut the clean-up
        time.sleep(0.05)
    assert signal.getsignal(signal.SIGTERM) is before


def _processes_naming(text: str) -> list[int]:
    found = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            with contextlib.suppress(OSError):
                if text in (d / "cmdline").read_bytes().replace(b"\0", b" ").decode():
                    found.append(int(d.name))
    return found


@pytest.mark.slow
def test_simulate_cleans_up_after_sigterm(tmp_path: Path) -> None:
    """``timeout -s TERM`` signals sscard and then its whole group: the private host and
    the temporary directory must go as after Ctrl-C."""
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    proc = subprocess.Popen([sys.executable, "-m", "terminal", "simulate", "--minutes", "1",
                             "--terminals", "1", "--holders", "20"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not _processes_naming(f"{tmp_path}/sscard-simulate-"):   # the private host
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)
        time.sleep(3)                                                   # the load runs
        os.kill(proc.pid, signal.SIGTERM)
        os.killpg(proc.pid, signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert _processes_naming(f"{tmp_path}/sscard-simulate-") == []     # the host stopped
    assert list(tmp_path.glob("sscard-simulate-*")) == []              # its files removed
    assert "Traceback" not in err.decode()
    assert proc.returncode == 143 and err.decode().strip().endswith("sscard: terminated")


# --------------------------------------------------------------------------- 7. admit


@pytest.fixture
def st(tmp_path: Path) -> Iterator[Station]:
    station = Station.build(tmp_path, ("zhang-san",))
    yield station
    station.close()


def _admissions(st: Station) -> int:
    return int(_rows(st.url, "SELECT COUNT(*) FROM admissions")[0][0])


def test_admit_photo_out_never_overwrites(st: Station, capsys: pytest.CaptureFixture[str]
                                          ) -> None:
    image = st.images["zhang-san"]
    before = image.read_bytes()
    reader = f"virtual:{image}"
    rc = main(["admit", "--reader", reader, "--host", st.url, "--yes", "--photo-out",
               str(image)])
    err = capsys.readouterr().err
    assert rc == 1 and "is the command's own input file" in err
    rc = main(["admit", "--reader", reader, "--host", st.url, "--yes", "--photo-out",
               str(image), "--force"])
    assert rc == 1 and "is the command's own input file" in capsys.readouterr().err
    assert image.read_bytes() == before and _admissions(st) == 0     # nothing happened
    kept = st.root / "kept.jpg"
    kept.write_bytes(b"mine")
    rc = main(["admit", "--reader", reader, "--host", st.url, "--yes", "--photo-out",
               str(kept)])
    assert rc == 1 and "already exists; choose another --photo-out or add --force" in \
        capsys.readouterr().err
    assert kept.read_bytes() == b"mine" and _admissions(st) == 0
    rc = main(["admit", "--reader", reader, "--host", st.url, "--yes", "--json",
               "--photo-out", str(kept), "--force"])
    assert rc == 0, capsys.readouterr().err
    assert kept.read_bytes().startswith(b"\xff\xd8") and _admissions(st) == 1
    assert PINS["zhang-san"] not in capsys.readouterr().out


# --------------------------------------------------------------------------- 8. HTTP host


async def _post_signed(host: HostService, body: bytes) -> dict[str, Any]:
    app = create_app(host, secret=TEST_SECRET)
    paasid = f"{PHARMACY}-01"
    headers = {"content-type": "application/json",
               **sign_headers(terminal_key(TEST_SECRET, paasid), paasid, body)}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://host") as client:
        r = await client.post(PATH, content=body, headers=headers)
    assert r.status_code == 200
    answer: dict[str, Any] = r.json()
    return answer


def _envelope(infno: str, msgid: str, inp: Any) -> dict[str, Any]:
    return {"infno": infno, "msgid": msgid, "mdtrtarea_admvs": "370800",
            "insuplc_admdvs": "", "opter_type": "1", "opter": "0001", "opter_name": "测试",
            "inf_time": "2026-11-28 10:00:00", "fixmedins_code": PHARMACY,
            "fixmedins_name": "测试", "sign_no": "", "input": inp}


@pytest.mark.parametrize("depth", [3000, 200_000])
def test_deeply_nested_body_is_a_bad_request(embedded: EmbeddedHost, depth: int,
                                             caplog: pytest.LogCaptureFixture) -> None:
    env = _envelope("9001", f"{PHARMACY}202611281000000100",
                    {"signIn": {"opter_no": "0001", "mac": "", "ip": ""}, "x": "@"})
    body = json.dumps(env).replace('"@"', "[" * depth + "]" * depth).encode()
    host = HostService.open(embedded.url)
    try:
        with caplog.at_level(logging.ERROR):
            answer = asyncio.run(_post_signed(host, body))
    finally:
        host.close()
    assert answer["infcode"] == -1 and answer["err_code"] == "bad_request"
    assert "nests objects and arrays too deep to read" in answer["err_msg"]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]   # no traceback
    assert _rows(embedded.url, f"SELECT COUNT(*) FROM signins WHERE sign_no LIKE "
                               f"'SN{PHARMACY}2026112810%'")[0][0] == 0


def test_a_huge_quantity_is_out_of_range(embedded: EmbeddedHost) -> None:
    line = {"feedetl_sn": "1", "med_list_codg": AMOX, "cnt": "1000000000000", "pric": "12.50",
            "det_item_fee_sumamt": "12500000000000.00"}
    inp = HostClient.druginfo(psn_no=embedded.psn_no, lines=[line],
                              card_no=embedded.cardinfo["card_no"],
                              card_sn=embedded.cardinfo["card_sn"])
    host = HostService.open(embedded.url)
    try:
        answer = host.call(_envelope("2101", f"{PHARMACY}202611281000000200", inp))
    finally:
        host.close()
    assert answer["infcode"] == -1
    msg = answer["err_msg"]
    assert "input.drugdetail[0].cnt: quantity 1000000000000 is out of range (at most " \
           "999999999.9999)" in msg
    assert "det_item_fee_sumamt: 12500000000000.00 yuan is out of range" in msg
    assert "decimals" not in msg



# --------------------------------------------------------------------------- 9. audit E


def test_simulate_json_never_overwrites_its_inputs(tmp_path: Path, no_simulation: None,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "host.db"
    for argv in (["--json", str(db), "--db", f"sqlite:///{db}"],     # not created yet
                 ["--json", str(db), "--db", f"sqlite:///{db}", "--force"]):
        rc = main(["simulate", *argv])
        err = capsys.readouterr().err
        assert rc == 1 and "is the command's own input file" in err
    assert not db.exists()
    hostdb = f"sqlite:///{tmp_path}/h.db"
    store = open_store(hostdb)
    try:
        initialize(store)
    finally:
        store.close()
    before = (tmp_path / "h.db").read_bytes()
    rc = main(["simulate", "--json", str(tmp_path / "h.db"), "--db", hostdb, "--force"])
    assert rc == 1 and "is the command's own input file" in capsys.readouterr().err
    assert (tmp_path / "h.db").read_bytes() == before
    policy = ROOT / "fixtures" / "policies" / "370800.toml"
    rc = main(["simulate", "--json", str(policy), "--force"])
    assert rc == 1 and "is the command's own input file" in capsys.readouterr().err
    card = tmp_path / "zs.json"
    card.write_text("{}")
    rc = main(["simulate", "--json", str(card)])              # an existing file: --force
    assert rc == 1 and "already exists; choose another --json or add --force" in \
        capsys.readouterr().err
    assert card.read_text() == "{}"


def test_simulate_force_is_for_the_city_only(capsys: pytest.CaptureFixture[str],
                                             no_simulation: None) -> None:
    assert main(["simulate", "--bank-test", "--force"]) == 1
    assert "--force is for the city simulation only" in capsys.readouterr().err


def test_simulate_stopped_early_exits_130(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    from terminal.sim.city import CityReport, Stats

    monkeypatch.setattr("terminal.sim.city.simulate", lambda **kw: CityReport(
        1, 1.0, 20, Stats(), interrupted=True))
    out = tmp_path / "r.json"
    rc = main(["simulate", "--json", str(out)])
    captured = capsys.readouterr()
    assert rc == 130 and "sscard: interrupted" in captured.err
    assert "city simulation" in captured.out and json.loads(out.read_text())["terminals"] == 1


def test_admit_photo_out_never_overwrites_the_host_or_the_area_psam(
        st: Station, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
        ) -> None:
    reader = f"virtual:{st.images['zhang-san']}"
    area_psam = st.root / "psam-370800.json"
    own = st.root / "own-psam.json"
    own.write_bytes(area_psam.read_bytes())
    monkeypatch.setenv("SSCARD_PSAM", f"virtual:{own}")
    for target in (st.root / "host.db", area_psam, own):
        before = target.read_bytes()
        rc = main(["admit", "--reader", reader, "--host", st.url, "--yes", "--photo-out",
                   str(target), "--force"])
        err = capsys.readouterr().err
        assert rc == 1 and "is the command's own input file" in err, err
        assert target.read_bytes() == before
    assert _admissions(st) == 0


def test_serve_refuses_port_0_and_a_database_without_policies(
        hostdb: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["host", "serve", "--db", hostdb, "--listen", "127.0.0.1:0"])
    err = capsys.readouterr().err
    assert rc == 1 and "serving" not in err and "port 0" in err
    empty = f"sqlite:///{tmp_path}/empty.db"
    store = open_store(empty)
    try:
        store.migrate()                      # what a failed init used to leave
    finally:
        store.close()
    rc = main(["host", "serve", "--db", empty, "--listen", "127.0.0.1:8700"])
    err = capsys.readouterr().err
    assert rc == 1 and "serving" not in err
    assert f"has no area policies: run `sscard host init --db {empty}`" in err


def test_init_with_broken_policies_leaves_the_database_as_it_was(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pol = tmp_path / "pol"
    pol.mkdir()
    (pol / "370800.toml").write_text("this is [not toml\n")
    db = tmp_path / "host.db"
    rc = main(["host", "init", "--db", f"sqlite:///{db}", "--policies", str(pol)])
    err = capsys.readouterr().err
    assert rc == 1 and "is not valid TOML" in err and not db.exists()
    (pol / "370800.toml").write_bytes(b"\xff\xfe")
    rc = main(["host", "init", "--db", f"sqlite:///{db}", "--policies", str(pol)])
    err = capsys.readouterr().err
    assert rc == 1 and "is not UTF-8 text" in err and "UnicodeDecodeError" not in err
    store = open_store(f"sqlite:///{db}")        # the library call migrates nothing either
    try:
        with pytest.raises(Exception, match="UTF-8"):
            initialize(store, pol)
        assert store.schema_version() == 0
    finally:
        store.close()


def test_report_defaults_to_the_hosts_day(hostdb: str, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    from datetime import timedelta, timezone

    # 01:00 in China is 17:00 UTC the day before: the host books under the Chinese date
    at = datetime(2026, 11, 29, 1, 0, tzinfo=timezone(timedelta(hours=8)))
    monkeypatch.setattr("ledger.service.now_cst", lambda: at)
    assert main(["host", "report", "--db", hostdb]) == 0
    assert "sscard host report for 2026-11-29" in capsys.readouterr().out


def test_passwords_in_url_parameters_are_never_printed(
        hostdb: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
        ) -> None:
    url = "postgresql://u@127.0.0.1:1/test?password=S3cretPW"
    for argv in (["checkout", "--reader", "virtual:x.json", "--host", url, "--item", AMOX],
                 ["host", "init", "--db", url], ["host", "report", "--db", url],
                 ["host", "serve", "--db", url], ["simulate", "--db", url]):
        rc, out, err = run(monkeypatch, capsys, argv)
        assert rc == 1 and "S3cretPW" not in out + err and "Traceback" not in err, argv
    served: list[str] = []

    class Ready:                               # a PostgreSQL host that init has prepared
        def require_schema(self) -> None:
            pass

        def run(self, fn: Any) -> tuple[int]:
            return (2,)

        def close(self) -> None:
            pass

    monkeypatch.setattr("terminal.cli.cmd_host._store", lambda url: Ready())
    monkeypatch.setattr("ledger.http.serve", lambda url, *a, **kw: served.append(url))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    rc, out, err = run(monkeypatch, capsys, ["host", "serve", "--db", url, "--listen",
                                             f"127.0.0.1:{port}"])
    assert rc == 0 and served == [url] and "S3cretPW" not in out + err
    assert "serving postgresql://u@127.0.0.1:1/test?password=… on" in err


@pytest.mark.parametrize("argv, message", [
    (["checkout", "--item", AMOX, "--institution", "NOPE"],
     "an institution code is 12 capital letters or digits"),
    (["checkout", "--item", AMOX, "--institution", "PABCDEF00001"],
     "the 2nd to 7th its area code"),
    (["admit", "--dept", "内\n科"], "--dept contains a control character (U+000A)"),
    (["admit", "--diagnosis", "flu\x1b[2J"], "--diagnosis contains a control character"),
    (["admit", "--ipt-no", "\x1b]0;x\x07"], "--ipt-no contains a control character"),
    (["discharge", "--mdtrt-id", "M1", "--operator", "00\n01"],
     "--operator contains a control character"),
    (["checkout", "--item", AMOX, "--operator", " "], "--operator must not be empty"),
])
def test_counter_text_arguments_are_checked(capsys: pytest.CaptureFixture[str],
                                            argv: list[str], message: str) -> None:
    line = refused_by_parser(capsys, [argv[0], "--reader", "virtual:x.json", "--host",
                                      "sqlite:///nowhere.db", *argv[1:]])
    assert message in line and "pattern" not in line


@pytest.mark.parametrize("field, value", [("dept_name", "内\n科"), ("dise_name", "a\x1bb"),
                                          ("ipt_no", "\x1b[31m1")])
def test_the_host_refuses_control_characters(embedded: EmbeddedHost, field: str,
                                             value: str) -> None:
    inp = {"mdtrtinfo": {"psn_no": embedded.psn_no, "mdtrt_cert_type": "03",
                         "mdtrt_cert_no": embedded.cardinfo["card_no"], "insutype": "310",
                         "begntime": "2026-11-28 10:00:00", field: value}}
    host = HostService.open(embedded.url)
    try:
        answer = host.call(_envelope("2401", f"{PHARMACY}202611281000000300", inp))
        assert answer["infcode"] == -1 and answer["err_code"] == "bad_request"
        assert f"input.mdtrtinfo.{field}: contains a control character" in answer["err_msg"]
        env = _envelope("9001", f"{PHARMACY}202611281000000301",
                        {"signIn": {"opter_no": "0001", "mac": "", "ip": ""}})
        env["opter"] = "00\n01"
        answer = host.call(env)
        assert answer["infcode"] == -1 and "opter: contains a control character" in \
            answer["err_msg"]
    finally:
        host.close()
    assert _rows(embedded.url, "SELECT COUNT(*) FROM admissions")[0][0] == 0


def test_checkout_without_a_terminal_for_the_pin(embedded: EmbeddedHost, card: HostIssuedCard,
                                                 monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    rc, _, err = run(monkeypatch, capsys, ["checkout", "--reader", "virtual:test", "--host",
                                           embedded.url, "--item", AMOX], PIN + "\n")
    assert rc == 1 and "GetPassWarning" not in err and "getpass" not in err
    assert err.strip().splitlines()[-1] == ("sscard: no terminal to type the PIN on: pipe it "
                                            "with --pin-from-stdin")
    assert embedded.balances() == (50000, 100000)               # nothing charged


def test_a_msgid_clash_names_the_terminal_id(embedded: EmbeddedHost) -> None:
    from terminal.core.ports import HostRefused

    a = HostClient.connect(embedded.url, fixmedins_code=PHARMACY, terminal_id="07")
    b = HostClient.connect(embedded.url, fixmedins_code=PHARMACY, terminal_id="07")
    try:
        taken = a.new_msgid()
        a.call("9001", {"signIn": {"opter_no": "0001", "mac": "a", "ip": ""}}, taken)

        class Taken:          # another process of terminal 07 minted these msgids first
            slot = 7

            def next(self) -> str:
                return taken

        b._msgids = Taken()   # type: ignore[assignment]
        clash = ("another terminal is using terminal id 07 at this institution: give each "
                 "terminal its own --terminal-id")
        with pytest.raises(MsgidConflict) as refused:
            b.sign_in(mac="b")
        assert refused.value.message == clash
        with pytest.raises(HostRefused) as exc:
            adapters.LedgerHost(b).call("9001", {"signIn": {"opter_no": "0001", "mac": "c",
                                                            "ip": ""}})
        assert exc.value.message == clash
    finally:
        a.close()
        b.close()


def test_an_unreachable_host_reads_as_a_sentence() -> None:
    from terminal.core.common import host_failure
    from terminal.core.ports import HostUnreachable

    f = host_failure(HostUnreachable("connection refused"), doing="the person lookup (1101)")
    assert f.message.startswith("the host is unreachable during the person lookup (1101) "
                                "(connection refused)")

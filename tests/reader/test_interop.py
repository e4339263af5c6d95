"""Interoperability: programs nobody here wrote exchange APDUs with a card served by
``sscard card serve`` through pcscd + vpcd (spec/pcsc-lab.md: pcsc_scan, opensc-tool,
scriptor)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.reader.conftest import SLOT_READERS, card_present, wait_card
from tests.reader.pcsclab import PcscdLab
from tests.support import require

pytestmark = pytest.mark.pcscd

CARDS = Path(__file__).resolve().parents[2] / "fixtures" / "cards"
ZHANG_ATR = "3B 6D 00 00 00 81 4A 44 46 86 60 37 08 00 00 00 01"
SELECT_SSSE = "00A404000F7378312E73682EC9E7BBE1B1A3D5CF"
SSCARD = [sys.executable, "-m", "terminal"]


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        require(name, f"install it: apt-get install -y --no-install-recommends "
                f"{'opensc' if name == 'opensc-tool' else 'pcsc-tools'}")
    assert path is not None
    return path


Serve = Callable[..., subprocess.Popen[str]]


@pytest.fixture
def cli_serve(pcscd: PcscdLab, tmp_path: Path) -> Iterator[Serve]:
    """``sscard card serve`` as a subprocess; stopped with Ctrl-C (SIGINT) at the end."""
    procs: list[subprocess.Popen[str]] = []

    def start(*names: str, extra: tuple[str, ...] = (), wait: bool = True,
              ) -> subprocess.Popen[str]:
        files = []
        for n in names:
            shutil.copy(CARDS / f"{n}.json", tmp_path / f"{n}.json")
            files.append(str(tmp_path / f"{n}.json"))
        proc = subprocess.Popen([*SSCARD, "card", "serve", *files, *extra],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})
        procs.append(proc)
        if wait:
            for i in range(len(names)):
                wait_card(SLOT_READERS[i], True, timeout=15)
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    for r in SLOT_READERS:
        wait_card(r, False)


def run(args: list[str], timeout: float = 20, stdin: str | None = None,
        ) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, input=stdin)


def test_pcsc_scan_sees_insertion_and_atr(cli_serve: Serve) -> None:
    """pcsc_scan (line-buffered through stdbuf) reports the empty slot, then the card."""
    stdbuf = shutil.which("stdbuf")
    cmd = [tool("pcsc_scan"), "-n"]
    scan = subprocess.Popen([stdbuf, "-oL", *cmd] if stdbuf else [*cmd, "-t", "8"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    done = threading.Event()

    def read() -> None:
        assert scan.stdout is not None
        for line in scan.stdout:
            lines.append(line.rstrip())
            if line.startswith("  ATR: ") and any("Card inserted" in x for x in lines):
                done.set()
        done.set()

    reader_thread = threading.Thread(target=read, daemon=True)
    reader_thread.start()
    try:
        deadline = time.monotonic() + 10
        while not any("Virtual PCD 00 00" in x for x in lines) and time.monotonic() < deadline:
            time.sleep(0.05)
        cli_serve("zhang-san")
        assert done.wait(20), "\n".join(lines)
    finally:
        scan.terminate()
        scan.wait(5)
        reader_thread.join(5)
    out = "\n".join(lines)
    inserted_at = out.find("Card inserted")
    assert "Virtual PCD 00 00" in out and inserted_at > 0, out
    assert "Card state: Card removed" in out[:inserted_at], out  # the empty slot first
    assert f"ATR: {ZHANG_ATR}" in out[inserted_at:], out


def test_opensc_tool_exchanges_apdus(cli_serve: Serve) -> None:
    cli_serve("zhang-san")
    opensc = tool("opensc-tool")
    atr = run([opensc, "-r", "0", "-a"])
    assert atr.returncode == 0 and atr.stdout.strip() == ZHANG_ATR.lower().replace(" ", ":")
    out = run([opensc, "-r", "0", "-s", SELECT_SSSE + "00", "-s", "0084000008",
               "-s", "00A4020002EF05", "-s", "00B2070400", "-s", "00A4040002DEAD"])
    assert out.returncode == 0, out.stderr
    sws = [line for line in out.stdout.splitlines() if line.startswith("Received")]
    assert sws == [
        "Received (SW1=0x90, SW2=0x00):",  # SELECT: FCI fetched by opensc's GET RESPONSE
        "Received (SW1=0x90, SW2=0x00):",  # GET CHALLENGE: 8 bytes
        "Received (SW1=0x90, SW2=0x00)",  # SELECT EF05
        "Received (SW1=0x90, SW2=0x00):",  # READ RECORD 07 after 6C0B and the resend
        "Received (SW1=0x6A, SW2=0x82)",  # no such DF
    ], out.stdout
    assert "J00000017" in out.stdout  # the card number from record 07
    assert "6F 1C 84 0F 73 78 31 2E 73 68 2E C9 E7 BB E1 B1" in out.stdout


def test_scriptor_runs_a_script(cli_serve: Serve, tmp_path: Path) -> None:
    cli_serve("zhang-san")
    script = tmp_path / "session.apdu"
    script.write_text(f"# a scriptor script\n{SELECT_SSSE}\n00 C0 00 00 1E\n"
                      "00 20 00 00 03 00 00 00\n")
    out = run([tool("scriptor"), "-r", SLOT_READERS[0], str(script)])
    assert out.returncode == 0, out.stderr
    answers: list[str] = []  # scriptor wraps long answers over several lines
    for line in out.stdout.splitlines():
        if line.startswith("< "):
            answers.append(line[2:])
        elif answers and not line.startswith(">") and ":" not in answers[-1]:
            answers[-1] += " " + line.strip()
    assert answers[0].startswith("61 1E")  # T=0: 30 bytes of FCI waiting
    assert answers[1].startswith("6F 1C 84 0F 73 78 31 2E")
    assert "90 00 : Normal processing" in answers[1]
    assert answers[2].startswith("63 C2")  # wrong PIN, 2 tries left


def test_sscard_cli_reads_the_served_card_and_its_psam(cli_serve: Serve) -> None:
    cli_serve("wang-wu")
    psam = subprocess.Popen([*SSCARD, "card", "serve", str(CARDS / "psam-370800.json"),
                             "--slot", "1", "--quiet"], stdin=subprocess.DEVNULL, text=True)
    try:
        wait_card(SLOT_READERS[1], True, timeout=15)
        out = run([*SSCARD, "read", "-r", "PCD 00 00", "--psam", "PCD 00 01"])
        assert out.returncode == 0, out.stderr
        assert out.stdout.startswith("370800|370826195507080016|J00000033|")
        assert "|370800000001||" in out.stdout
        readers = run([*SSCARD, "readers"])
        assert "Virtual PCD 00 00" in readers.stdout and "3B 6D 00 00" in readers.stdout
        apdu = run([*SSCARD, "apdu", "-r", "PCD 00 00", SELECT_SSSE, "0084000004"])
        assert apdu.returncode == 0 and "(SELECT)" in apdu.stdout and "9000  success" in apdu.stdout
        bad = run([*SSCARD, "pin", "verify", "-r", "PCD 00 00"], stdin="000000\n")
        assert bad.returncode == 1 and "code -51" in bad.stderr
        ok = run([*SSCARD, "pin", "verify", "-r", "PCD 00 00"], stdin="135790\n")
        assert ok.returncode == 0 and "PIN verified" in ok.stdout
        doctor = run([*SSCARD, "doctor"])
        assert doctor.returncode == 0 and "[ok  ] vpcd slots visible" in doctor.stdout
    finally:
        psam.send_signal(signal.SIGINT)
        assert psam.wait(10) == 0


def test_ctrl_c_removes_the_card_cleanly(cli_serve: Serve) -> None:
    proc = cli_serve("li-si")
    assert card_present(SLOT_READERS[0]) is True
    proc.send_signal(signal.SIGINT)
    assert proc.wait(10) == 0
    assert "card removed" in (proc.stdout.read() if proc.stdout else "")
    wait_card(SLOT_READERS[0], False)


def test_remove_and_insert_on_command(cli_serve: Serve) -> None:
    proc = cli_serve("li-si")
    assert proc.stdin is not None
    proc.stdin.write("remove\n")
    proc.stdin.flush()
    wait_card(SLOT_READERS[0], False)
    proc.stdin.write("insert\n")
    proc.stdin.flush()
    wait_card(SLOT_READERS[0], True)
    proc.stdin.write("quit\n")
    proc.stdin.flush()
    assert proc.wait(10) == 0


def test_two_cards_on_two_slots_from_one_command(cli_serve: Serve, tmp_path: Path) -> None:
    trace = tmp_path / "served.trace"
    proc = cli_serve("zhang-san", "maimaiti", extra=("--trace", str(trace)))
    opensc = tool("opensc-tool")
    atrs = [run([opensc, "-r", str(i), "-a"]).stdout.strip() for i in (0, 1)]
    assert atrs[0].endswith("00:00:00:01") and atrs[1].endswith("00:00:00:04")
    run([opensc, "-r", "1", "-s", "00200000 03 123456".replace(" ", "")])
    run([opensc, "-r", "0", "-s", SELECT_SSSE + "00"])
    proc.send_signal(signal.SIGINT)
    assert proc.wait(10) == 0
    from reader.trace import load_trace

    served = load_trace(trace)
    # opensc probes its card drivers first; our commands are in the right channels
    assert "0020000003XXXXXX" in [c.hex for c, _ in served.exchanges("slot1")]
    assert SELECT_SSSE in [c.hex for c, _ in served.exchanges()]  # T=0: Le not sent
    assert "0020000003XXXXXX" not in [c.hex for c, _ in served.exchanges()]
    assert "123456" not in trace.read_text()

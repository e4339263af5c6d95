"""Reader benchmark: APDU round trip and full card read, each against a baseline of the same run.

``python -m bench.reader_bench [--quick]`` prints a table and writes
``bench/results/reader.json``.

1. **APDU round trip through pyscard → pcscd → vpcd → served card.** The social security card
   (``fixtures/cards/zhang-san.json``, T=0) on vpcd slot 1 against the minimal echo card
   (:mod:`reader.echo`) on slot 0, both served by one ``sscard card serve`` process, measured
   alternately (one sample each in turn) in the same run. The card
   answers READ RECORD 07 with the exact Le (one TPDU, 13 bytes back); the echo card answers
   a READ BINARY of 11 bytes (one TPDU, 13 bytes back). Ratio = card / echo (target ≤ 1.3).
   A short sample of the echo card *without* TCP_QUICKACK shows the delayed-ACK trap
   (spec/pcsc-lab.md).
2. **Full card read** (``CardDriver.read_card_basics``: SELECT, EF05 records, internal and
   external authentication with the PSAM, EF06 records, PSAM terminal number) in-process
   against the same read through pcscd + vpcd (card on slot 0, PSAM on slot 1).

pcscd must be running with vsmartcard-vpcd; when it is not and this process may start it
(root), the benchmark starts ``pcscd --foreground`` as a child and stops it at the end.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script too
    sys.path.insert(0, str(ROOT))

from card.cos import VirtualCard  # noqa: E402
from card.psam import VirtualPsam  # noqa: E402
from reader.base import Connection  # noqa: E402
from reader.errors import ReaderError  # noqa: E402
from reader.facade import CardDriver  # noqa: E402
from reader.pcsc import PcscTransport  # noqa: E402
from reader.virtual import VirtualTransport  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "reader.json"
CARD = ROOT / "fixtures" / "cards" / "zhang-san.json"
PSAM = ROOT / "fixtures" / "cards" / "psam-370800.json"
SLOTS = ("Virtual PCD 00 00", "Virtual PCD 00 01")
ECHO_CMD = bytes.fromhex("00B000000B")
CARD_CMD = bytes.fromhex("00B207000B")  # READ RECORD tag 07 (card number), Le = 2 + 9


def summary(samples: list[float]) -> dict[str, float]:
    """Median, p99, min in seconds."""
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return {"median": statistics.median(ordered), "p99": p99, "min": ordered[0],
            "n": float(len(ordered))}


def _pcscd_ready(timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            names = [r.name for r in PcscTransport().readers()]
            if all(s in names for s in SLOTS):
                return True
        except ReaderError:
            pass
        time.sleep(0.05)
    return False


LAB_LOCK = Path("/tmp/sscard-pcscd.lock")
"""The lock the pcscd test lab holds (tests/reader/pcsclab.py): never share the vpcd slots
with a test session running at the same time."""


@contextmanager
def pcscd_lab_lock(timeout: float = 600) -> Iterator[None]:
    with LAB_LOCK.open("a+") as fd:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise SystemExit("a test session keeps the pcscd lab busy; retry later"
                                     ) from None
                time.sleep(0.5)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)


@contextmanager
def pcscd_running() -> Iterator[str]:
    """Use the running pcscd, or start one as a child for the benchmark."""
    if _pcscd_ready(0.5):
        yield "already running"
        return
    exe = shutil.which("pcscd") or "/usr/sbin/pcscd"
    if not Path(exe).exists():
        raise SystemExit("pcscd is not installed: apt-get install -y --no-install-recommends "
                         "pcscd vsmartcard-vpcd")
    proc = subprocess.Popen([exe, "--foreground"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    try:
        if not _pcscd_ready(10):
            raise SystemExit("pcscd did not come up with the vpcd slots (`sscard doctor`)")
        yield "started by the benchmark"
    finally:
        proc.terminate()
        proc.wait(10)


def _wait_present(transport: PcscTransport, reader: str, present: bool = True) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if any(r.name == reader and r.card_present == present for r in transport.readers()):
            return
        time.sleep(0.05)
    raise SystemExit(f"pcscd did not see the card in {reader}")


@contextmanager
def served(*args: str) -> Iterator[None]:
    """``sscard card serve ARGS`` in its own process (as a deployment runs it), until done."""
    proc = subprocess.Popen([sys.executable, "-m", "terminal", "card", "serve", "--quiet",
                             *args], cwd=ROOT, stdin=subprocess.DEVNULL,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        yield
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _copy_card(tmp: Path) -> Path:
    path = tmp / f"card-{time.perf_counter_ns()}.json"
    shutil.copy(CARD, path)
    return path


def _timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _fresh_card(tmp: Path, t0: bool) -> VirtualCard:
    path = tmp / f"card-{time.perf_counter_ns()}.json"
    shutil.copy(CARD, path)
    return VirtualCard.from_image(path, t0=t0)


def _psam(t0: bool) -> VirtualPsam:
    return VirtualPsam.from_doc(json.loads(PSAM.read_text("utf-8")), t0=t0)


def apdu_round_trip(tmp: Path, n: int) -> dict[str, Any]:
    """Echo card (slot 0) and social security card (slot 1) served by one ``sscard card
    serve`` process, measured alternately, one sample each in turn."""
    transport = PcscTransport()
    with served("--echo", str(_copy_card(tmp))):
        for r in SLOTS:
            _wait_present(transport, r)
        echo = transport.connect(SLOTS[0])
        sscard = transport.connect(SLOTS[1])
        sscard.transmit(bytes.fromhex("00A404000F7378312E73682EC9E7BBE1B1A3D5CF"))
        sscard.transmit(bytes.fromhex("00A4020002EF05"))
        assert sscard.transmit_raw(CARD_CMD)[-2:] == b"\x90\x00", "card answer changed"
        assert len(echo.transmit_raw(ECHO_CMD)) == len(sscard.transmit_raw(CARD_CMD))
        for _ in range(200):  # warm-up
            echo.transmit_raw(ECHO_CMD)
            sscard.transmit_raw(CARD_CMD)
        e: list[float] = []
        c: list[float] = []
        for _ in range(n):
            e.append(_timed(lambda: echo.transmit_raw(ECHO_CMD)))
            c.append(_timed(lambda: sscard.transmit_raw(CARD_CMD)))
        echo.disconnect()
        sscard.disconnect()
    for r in SLOTS:
        _wait_present(transport, r, False)
    es, cs = summary(e), summary(c)
    return {"echo_seconds": es, "card_seconds": cs,
            "ratio": {"median": cs["median"] / es["median"], "p99": cs["p99"] / es["p99"]}}


def no_quickack_sample(n: int) -> dict[str, float]:
    transport = PcscTransport()
    with served("--echo", "--no-quickack"):
        _wait_present(transport, SLOTS[0])
        conn = transport.connect(SLOTS[0])
        conn.transmit_raw(ECHO_CMD)
        samples = [_timed(lambda: conn.transmit_raw(ECHO_CMD)) for _ in range(n)]
        conn.disconnect()
    _wait_present(transport, SLOTS[0], False)
    return summary(samples)


def _read(user: Connection, psam: Connection) -> int:
    driver = CardDriver(user, psam)
    driver.read_card_basics()
    return 0


def full_read(tmp: Path, n_inproc: int, n_pcscd: int) -> dict[str, Any]:
    # in-process: the card as the default terminal holds it (whole responses)
    card = _fresh_card(tmp, t0=False)
    vt = VirtualTransport.with_cards(card, _psam(False))
    u, p = vt.connect("Virtual Card 0"), vt.connect("Virtual PSAM 0")
    count: list[int] = []

    class Count:
        def on_command(self, reader: str, tpdu: bytes) -> None:
            count.append(1)

        def on_response(self, reader: str, tpdu: bytes, rsp: bytes, s: float) -> None: ...

        def on_event(self, reader: str, what: str, data: bytes = b"") -> None: ...

    u.add_observer(Count())  # type: ignore[arg-type]
    _read(u, p)
    inproc_tpdus = len(count)
    _read(u, p)
    inproc = [_timed(lambda: _read(u, p)) for _ in range(n_inproc)]
    u.disconnect()
    p.disconnect()
    # through pcscd + vpcd: T=0 card on slot 0, PSAM on slot 1, served by another process
    transport = PcscTransport()
    psam_copy = tmp / "psam.json"
    shutil.copy(PSAM, psam_copy)
    with served(str(_copy_card(tmp)), str(psam_copy)):
        for r in SLOTS:
            _wait_present(transport, r)
        u2, p2 = transport.connect(SLOTS[0]), transport.connect(SLOTS[1])
        count.clear()
        u2.add_observer(Count())  # type: ignore[arg-type]
        _read(u2, p2)
        pcscd_tpdus = len(count)
        pcscd = [_timed(lambda: _read(u2, p2)) for _ in range(n_pcscd)]
        u2.disconnect()
        p2.disconnect()
    for r in SLOTS:
        _wait_present(transport, r, False)
    i, q = summary(inproc), summary(pcscd)
    return {"inprocess_seconds": i, "pcscd_seconds": q,
            "tpdus_per_read": {"inprocess": inproc_tpdus, "pcscd": pcscd_tpdus},
            "ratio": {"median": q["median"] / i["median"], "p99": q["p99"] / i["p99"]}}


def run(quick: bool = False) -> dict[str, Any]:
    n_apdu = 400 if quick else 3000
    with pcscd_lab_lock(), pcscd_running() as how, tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        rt = apdu_round_trip(tmp, n_apdu)
        slow = no_quickack_sample(10 if quick else 30)
        fr = full_read(tmp, 30 if quick else 200, 15 if quick else 100)
    ms = 1000.0
    figures = [
        {"name": "apdu round trip via pcscd+vpcd (card vs echo card)", "unit": "ms",
         "median": rt["card_seconds"]["median"] * ms, "p99": rt["card_seconds"]["p99"] * ms,
         "baseline": rt["echo_seconds"]["median"] * ms, "baseline_name": "echo card",
         "ratio": rt["ratio"], "target": "<= 1.3"},
        {"name": "echo card without TCP_QUICKACK (the trap)", "unit": "ms",
         "median": slow["median"] * ms, "p99": slow["p99"] * ms,
         "baseline": rt["echo_seconds"]["median"] * ms, "baseline_name": "echo with QUICKACK",
         "ratio": slow["median"] / rt["echo_seconds"]["median"]},
        {"name": "full card read via pcscd+vpcd vs in-process", "unit": "ms",
         "median": fr["pcscd_seconds"]["median"] * ms, "p99": fr["pcscd_seconds"]["p99"] * ms,
         "baseline": fr["inprocess_seconds"]["median"] * ms, "baseline_name": "in-process",
         "ratio": fr["ratio"],
         "note": f"{fr['tpdus_per_read']['pcscd']} card TPDUs per read via pcscd (T=0), "
                 f"{fr['tpdus_per_read']['inprocess']} in-process"},
    ]
    return {"pcscd": how, "quick": quick, "apdu_round_trip": rt, "no_quickack": slow,
            "full_read": fr, "figures": figures}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.reader_bench",
                                     description=__doc__.split("\n\n")[0] if __doc__ else "")
    parser.add_argument("--quick", action="store_true", help="fewer samples (CI)")
    args = parser.parse_args(argv)
    result = run(args.quick)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=1))
    print(f"{'figure':<55} {'median':>10} {'p99':>10} {'baseline':>10} {'ratio':>7}")
    for f in result["figures"]:
        ratio = f["ratio"]["median"] if isinstance(f["ratio"], dict) else f["ratio"]
        print(f"{f['name']:<55} {f['median']:>8.3f}ms {f['p99']:>8.3f}ms "
              f"{f['baseline']:>8.3f}ms {ratio:>6.2f}x")
    print(f"(pcscd {result['pcscd']}; written to {RESULTS.relative_to(ROOT)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

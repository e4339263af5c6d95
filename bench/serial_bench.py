"""Full card read over a serial reader at 9600 baud against the wire-time floor.

The virtual card is served as an RFC 2217 serial device (``reader.serial_device``) that paces
every character at 12 etu (ISO 7816-3 §7.2: start bit, 8 data bits, parity, 2-etu guard
time); ``SerialTransport`` reads it through pyserial's ``rfc2217://`` client. For each run the
floor is the characters that actually crossed the I/O line in that run (both directions,
echoes not counted twice: the echo is the same character on the single wire) × 12 / baud —
counted by the connection itself, so floor and time come from the same run.

Two figures per run: the *read* (the command sequence of spec/card.md §5 for EF05 and EF06,
T=0 GET RESPONSE / 6Cxx resends included) and the *session* (reset + ATR + read, where the
RFC 2217 line-signal round trips are part of the cost).

Run: ``python -m bench.serial_bench [--quick] [--baud 9600] [--runs N]``; writes
``bench/results/serial.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

from apdu import codec
from apdu import commands as C
from card.cos import VirtualCard
from card.issue import Holder, issue
from reader.serial import SerialConnection, SerialTransport
from reader.serial_device import serve_in_thread

RESULTS = Path(__file__).resolve().parent / "results" / "serial.json"
FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "cards"


def _card() -> tuple[VirtualCard, str]:
    """The 2.00 fixture card wang-wu (EF06 readable without RKSSSE), in memory; else a freshly
    issued 2.00 card."""
    path = FIXTURES / "wang-wu.json"
    if path.exists():
        doc = json.loads(path.read_text("utf-8"))
        return VirtualCard.from_doc(doc, t0=True), f"fixtures/cards/{path.name}"
    body = "11010519491231002"
    ssn = body + codec.id_check_digit(body)
    issued = issue(Holder(name="张三", ssn=ssn), bank="ICBC", generation="2.00", pin="123456")
    return VirtualCard.from_doc(issued.doc, t0=True), "issued 2.00 card"


def full_read(conn: SerialConnection) -> int:
    """SELECT SSSE, EF05 records 01–07, EF06 records 08–0D and 4E; returns record bytes."""
    total = 0
    assert conn.transmit(C.select_ssse()).sw == 0x9000
    assert conn.transmit(C.select_ef(C.EF05)).sw == 0x9000
    for tag in range(0x01, 0x08):
        total += len(conn.transmit(C.read_record_by_tag(tag)).data)
    assert conn.transmit(C.select_ef(C.EF06)).sw == 0x9000
    for tag in (0x08, 0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x4E):
        total += len(conn.transmit(C.read_record_by_tag(tag)).data)
    return total


def _summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return {"median": statistics.median(ordered), "p99": p99, "min": ordered[0]}


def run(baud: int, runs: int) -> dict[str, Any]:
    card, source = _card()
    url, stop, thread = serve_in_thread(card, "rfc2217://127.0.0.1:0", baud=baud)
    transport = SerialTransport(url, baud=baud)
    conn = transport.connect(transport.name)
    rows: list[dict[str, float]] = []
    try:
        full_read(conn)  # warm-up (echo detection, imports)
        for _ in range(runs):
            s0 = conn.stats.wire_seconds
            t0 = time.perf_counter()
            conn.reset()
            s1 = conn.stats.wire_seconds
            t1 = time.perf_counter()
            record_bytes = full_read(conn)
            t2 = time.perf_counter()
            s2 = conn.stats.wire_seconds
            rows.append({
                "read_s": t2 - t1, "read_floor_s": s2 - s1,
                "session_s": t2 - t0, "session_floor_s": s2 - s0,
                "record_bytes": record_bytes,
            })
        chars = conn.stats.to_card + conn.stats.from_card
    finally:
        conn.disconnect()
        stop.set()
        thread.join(5)
    read_ratio = [r["read_s"] / r["read_floor_s"] for r in rows]
    session_ratio = [r["session_s"] / r["session_floor_s"] for r in rows]
    return {
        "benchmark": "serial full card read (rfc2217, paced 12 etu/char)",
        "card": source,
        "baud": baud,
        "runs": runs,
        "chars_on_line_total": chars,
        "read_seconds": _summary([r["read_s"] for r in rows]),
        "read_floor_seconds": _summary([r["read_floor_s"] for r in rows]),
        "read_ratio_to_floor": _summary(read_ratio),
        "session_seconds": _summary([r["session_s"] for r in rows]),
        "session_floor_seconds": _summary([r["session_floor_s"] for r in rows]),
        "session_ratio_to_floor": _summary(session_ratio),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.serial_bench",
        description="Time a full card read over a serial reader against the wire-time floor.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example:\n  python -m bench.serial_bench --quick",
    )
    parser.add_argument("--quick", action="store_true", help="3 runs instead of 15")
    parser.add_argument("--runs", type=int, default=None, help="number of timed runs")
    parser.add_argument("--baud", type=int, default=9600, help="rate at F=372, D=1")
    args = parser.parse_args(argv)
    runs = args.runs or (3 if args.quick else 15)
    result = run(args.baud, runs)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n", "utf-8")
    r, s = result["read_ratio_to_floor"], result["session_ratio_to_floor"]
    print(f"card: {result['card']}, {args.baud} baud, {runs} runs")
    print(f"read:    median {result['read_seconds']['median']:.3f} s, floor "
          f"{result['read_floor_seconds']['median']:.3f} s → ratio median {r['median']:.2f}, "
          f"p99 {r['p99']:.2f}")
    print(f"session: median {result['session_seconds']['median']:.3f} s, floor "
          f"{result['session_floor_seconds']['median']:.3f} s → ratio median {s['median']:.2f}, "
          f"p99 {s['p99']:.2f}")
    print(f"written to {RESULTS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

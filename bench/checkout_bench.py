"""Checkout benchmark: a whole pharmacy sale, against a bare host transaction of the same run.

``python -m bench.checkout_bench [--quick]`` prints a table and writes
``bench/results/checkout.json``.

One sale = card read + PSAM authentication + 1101 + 2101 + PIN + 2102 + the DF04 EF08 record
(the card's purse purchase) + the slip, driven by :func:`terminal.core.checkout.run_checkout`.

1. **In-process**: a copy of ``fixtures/cards/zhang-san.json`` in the in-process virtual reader
   with the fixture PSAM, the embedded SQLite host (ledger.client in-process). Baseline, same
   run, same host: the bare transaction — 1101, 2101 and 2102 sent straight through
   ``ledger.client.HostClient`` with the same cart, no card and no core.
2. **pcscd + vpcd + HTTP**: the card and the PSAM served through vpcd to the real pcscd,
   reached with pyscard, the host over HTTP (signed requests, uvicorn in a thread). Baseline:
   the in-process sale of step 1.

For every sale the time spent in the card port and in the host port is measured by wrapping
the ports (:class:`terminal.core.adapters.Timed`); the rest is the core (state machine,
inputs, split, slip). The report gives each part's share of the total.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script too
    sys.path.insert(0, str(ROOT))

from terminal.core.adapters import LedgerHost, PolicyCatalogue, Timed, open_card  # noqa: E402
from terminal.core.checkout import Checkout, CheckoutState, run_checkout  # noqa: E402
from terminal.core.model import TerminalConfig  # noqa: E402
from terminal.core.slip import render  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "checkout.json"
PHARMACY = "P37080000001"
CART = [("XJ01CAA040A001010101445", 2), ("XN02BEA010A001010101581", 1)]
PIN = "246810"


def summary(samples: list[float]) -> dict[str, float]:
    s = sorted(samples)
    p99 = s[min(len(s) - 1, max(0, round(0.99 * (len(s) - 1))))]
    return {"median": statistics.median(s), "p99": p99, "min": s[0], "n": float(len(s))}


def _world(tmp: Path) -> tuple[str, dict[str, Path], Any]:
    from tests.core import hosting

    tmp.mkdir(parents=True, exist_ok=True)
    images = hosting.copy_fixtures(tmp, "zhang-san")
    url = f"sqlite:///{tmp}/host.db"
    hosting.init_host(url)
    enroller = hosting.Enroller(url)
    try:
        who = enroller.enrol(images["zhang-san"], balance=100_000_000, bank_deposit=0)
    finally:
        enroller.close()
    return url, images, who


def _sales(n: int, card: Any, host: Any, catalogue: PolicyCatalogue,
           progress: Callable[[int], None] | None = None) -> dict[str, Any]:
    """``n`` timed sales; per sale the total and the card and host parts."""
    config = TerminalConfig(institution_code=PHARMACY, institution_name="济宁市太白湖大药房")
    totals: list[float] = []
    parts = {"card": [], "host": [], "core": []}  # type: dict[str, list[float]]
    for i in range(n):
        spent: dict[str, float] = {}
        timed_card = Timed(card, "card", spent)
        timed_host = Timed(host, "host", spent)
        start = time.perf_counter()
        flow = Checkout(timed_card, timed_host, catalogue, config)
        run_checkout(flow, CART, lambda tries: PIN)
        if flow.state is not CheckoutState.DONE or flow.result is None:
            raise RuntimeError(f"sale {i} did not complete: {flow.state.name} {flow.message}")
        render(flow.result.slip, 32)
        total = time.perf_counter() - start
        totals.append(total)
        parts["card"].append(spent["card"])
        parts["host"].append(spent["host"])
        parts["core"].append(total - spent["card"] - spent["host"])
        if progress:
            progress(i + 1)
    whole = sum(totals)
    return {
        "sale_seconds": summary(totals),
        "card_seconds": summary(parts["card"]),
        "host_seconds": summary(parts["host"]),
        "core_seconds": summary(parts["core"]),
        "share": {k: sum(v) / whole for k, v in parts.items()},
    }


def _bare(n: int, url: str, who: Any, catalogue: PolicyCatalogue) -> dict[str, float]:
    """The baseline: 1101 + 2101 + 2102 straight through the client, no card, no core."""
    from ledger.client import HostClient, drug_line

    client = HostClient.connect(url, fixmedins_code=PHARMACY)
    times = []
    try:
        for _ in range(n):
            start = time.perf_counter()
            client.person_by_card(who.card_no, who.card_sn)
            lines = [drug_line(f"{i + 1:04d}", code, qty, catalogue.lookup(code).price_fen)
                     for i, (code, qty) in enumerate(CART)]
            kw = {"psn_no": who.psn_no, "card_no": who.card_no, "card_sn": who.card_sn,
                  "lines": lines}
            client.trial(**kw)
            client.settle(**kw)
            times.append(time.perf_counter() - start)
    finally:
        client.close()
    return summary(times)


def inprocess(n: int, tmp: Path) -> dict[str, Any]:
    url, images, who = _world(tmp)
    catalogue = PolicyCatalogue.load()
    host = LedgerHost.connect(url, institution_code=PHARMACY)
    try:
        with open_card(f"virtual:{images['zhang-san']}",
                       psam=f"virtual:{images['psam-370800']}") as card:
            _sales(3, card, host, catalogue)  # warm-up
            result = _sales(n, card, host, catalogue)
    finally:
        host.close()
    result["bare_transaction_seconds"] = _bare(n, url, who, catalogue)
    return result


def over_pcscd(n: int, tmp: Path) -> dict[str, Any]:
    from tests.core.pcsc_lab import CARD_READER, PSAM_READER, HttpHost, PcscStack

    url, images, _ = _world(tmp)
    stack = PcscStack(tmp)
    http = None
    try:
        stack.serve(images["zhang-san"], images["psam-370800"])
        http = HttpHost(url)
        host = LedgerHost.connect(http.url, institution_code=PHARMACY)
        try:
            with open_card(CARD_READER, psam=PSAM_READER) as card:
                _sales(2, card, host, PolicyCatalogue.load())
                return _sales(n, card, host, PolicyCatalogue.load())
        finally:
            host.close()
    finally:
        if http is not None:
            http.close()
        stack.close()


def run(quick: bool = False) -> dict[str, Any]:
    n_local, n_pcsc = (30, 10) if quick else (200, 60)
    result: dict[str, Any] = {"quick": quick, "cart": CART}
    with tempfile.TemporaryDirectory() as tmp:
        local = inprocess(n_local, Path(tmp) / "local")
        result["inprocess"] = local
    figures: list[dict[str, Any]] = []
    sale, bare = local["sale_seconds"], local["bare_transaction_seconds"]
    figures.append({
        "name": "checkout, in-process (virtual card + SQLite host)", "unit": "s",
        "median": sale["median"], "p99": sale["p99"], "baseline": bare["median"],
        "baseline_name": "bare 1101+2101+2102 via HostClient",
        "ratio": {"median": sale["median"] / bare["median"], "p99": sale["p99"] / bare["p99"]},
        "note": _shares(local["share"]),
    })
    with tempfile.TemporaryDirectory() as tmp:
        try:
            remote = over_pcscd(n_pcsc, Path(tmp) / "pcsc")
        except Exception as exc:  # no pcscd here: report it, keep the in-process figures
            result["pcscd"] = {"skipped": f"{type(exc).__name__}: {exc}"}
        else:
            result["pcscd"] = remote
            rs = remote["sale_seconds"]
            figures.append({
                "name": "checkout, pcscd + vpcd + HTTP host", "unit": "s",
                "median": rs["median"], "p99": rs["p99"], "baseline": sale["median"],
                "baseline_name": "the in-process checkout",
                "ratio": {"median": rs["median"] / sale["median"],
                          "p99": rs["p99"] / sale["p99"]},
                "note": _shares(remote["share"]),
            })
    result["figures"] = figures
    return result


def _shares(share: dict[str, float]) -> str:
    return ", ".join(f"{k} {v * 100:.0f} %" for k, v in share.items())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.checkout_bench",
        description="Whole pharmacy checkout: median and p99 in-process and through pcscd + "
                    "vpcd + the HTTP host, with the share of card I/O, host and core.",
        epilog="example:\n  python -m bench.checkout_bench --quick",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer sales (a smoke run)")
    args = parser.parse_args(argv)
    result = run(args.quick)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n")
    for f in result["figures"]:
        r = f["ratio"]
        print(f"{f['name']}: median {f['median'] * 1000:.2f} ms, p99 {f['p99'] * 1000:.2f} ms; "
              f"{r['median']:.2f}× / p99 {r['p99']:.2f}× {f['baseline_name']} "
              f"({f['baseline'] * 1000:.2f} ms); {f['note']}")
    if "skipped" in result.get("pcscd", {}):
        print(f"pcscd part skipped: {result['pcscd']['skipped']}")
    print(f"written to {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

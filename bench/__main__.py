"""Run every sscard benchmark: ``python -m bench [--quick]`` (``make bench``).

Each ``bench/*_bench.py`` module is one benchmark; the built-in stage ``city`` runs the city
simulator (:func:`terminal.sim.city.bench_result`: throughput against concurrency). The
runner runs each in its own Python process (one that crashes or hangs is reported and the
others still run), collects what it returned, and writes ``bench/results/latest.json``
(machine, every module's raw result, the figure table), ``bench/results/latest.md`` (the
table) and PNG plots (:mod:`bench.plots`, when matplotlib is installed). The exit status is
non-zero when any module failed.

A module is called through the first of these it offers:

1. ``run(quick: bool) -> dict`` (any other parameters must have defaults);
2. ``main(argv) -> int`` taking ``--quick``, after which the runner reads the JSON file it
   wrote to ``bench/results/`` (``<name>.json`` for ``<name>_bench.py``, else the newest
   file written during the call).

Figures are read from the result as described in :mod:`bench.report`.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import plots, report

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
ORDER = ("reader_bench", "serial_bench", "checkout_bench", "ledger_bench")


#: Stages that are not ``bench/*_bench.py`` modules: name -> "module:function(quick)".
BUILTIN = {"city_bench": "terminal.sim.city:bench_result"}


def discover() -> list[str]:
    """Names of the bench modules, the well-known ones first, then the built-in stages."""
    found = sorted(p.stem for p in BENCH_DIR.glob("*_bench.py"))
    ordered = [n for n in ORDER if n in found] + [n for n in found if n not in ORDER]
    return ordered + [n for n in BUILTIN if n not in ordered]


def _result_file(stem: str, since: float) -> Path | None:
    own = report.RESULTS_DIR / f"{stem.removesuffix('_bench')}.json"
    if own.exists() and own.stat().st_mtime >= since:
        return own
    fresh = [p for p in report.RESULTS_DIR.glob("*.json")
             if not p.name.startswith("latest") and p.stat().st_mtime >= since]
    return max(fresh, key=lambda p: p.stat().st_mtime) if fresh else None


def call_module(stem: str, quick: bool) -> dict[str, Any]:
    """Import ``bench.<stem>`` and run it (see the module docstring for the protocol)."""
    if stem in BUILTIN and not (BENCH_DIR / f"{stem}.py").exists():
        modname, func = BUILTIN[stem].split(":")
        result = getattr(importlib.import_module(modname), func)(quick)
        if not isinstance(result, dict):
            raise TypeError(f"{BUILTIN[stem]} returned {type(result).__name__}, not a dict")
        return result
    mod = importlib.import_module(f"bench.{stem}")
    run = getattr(mod, "run", None)
    if callable(run):
        params = inspect.signature(run).parameters
        needed = [p for p in params.values() if p.default is inspect.Parameter.empty
                  and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
        if "quick" in params and all(p.name == "quick" for p in needed):
            result = run(quick=quick)
            if not isinstance(result, dict):
                raise TypeError(f"{stem}.run() returned {type(result).__name__}, not a dict")
            return result
    main = getattr(mod, "main", None)
    if callable(main):
        since = time.time() - 1
        rc = main(["--quick"] if quick else [])
        if rc not in (0, None):
            raise RuntimeError(f"{stem}.main() exited with status {rc}")
        path = _result_file(stem, since)
        if path is None:
            raise RuntimeError(f"{stem}.main() wrote no JSON file to {report.RESULTS_DIR}")
        loaded: dict[str, Any] = json.loads(path.read_text("utf-8"))
        return loaded
    raise TypeError(f"bench.{stem} has neither run(quick) nor main(argv)")


def _child(stem: str, quick: bool, out: str) -> int:
    """Child-process entry: run one module, write its result (or error) to ``out``."""
    try:
        result = call_module(stem, quick)
        doc: dict[str, Any] = {"status": "ok", "result": result}
    except BaseException as exc:  # reported to the parent, which decides the exit status
        import traceback
        doc = {"status": "failed", "error": f"{type(exc).__name__}: {exc}",
               "traceback": traceback.format_exc(limit=8)}
    Path(out).write_text(json.dumps(doc, ensure_ascii=False, default=str), "utf-8")
    return 0 if doc["status"] == "ok" else 1


def run_isolated(stem: str, quick: bool, timeout: float) -> dict[str, Any]:
    """Run one module in a child process; never raises."""
    fd, out = tempfile.mkstemp(prefix=f"sscard-bench-{stem}-", suffix=".json")
    os.close(fd)
    cmd = [sys.executable, "-m", "bench", "--child", stem, "--out", out] + \
        (["--quick"] if quick else [])
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, cwd=ROOT, timeout=timeout, capture_output=True, text=True)
        seconds = time.perf_counter() - t0
        try:
            doc: dict[str, Any] = json.loads(Path(out).read_text("utf-8"))
        except (OSError, ValueError):
            tail = (proc.stderr or proc.stdout or "").strip().splitlines()[-3:]
            doc = {"status": "failed",
                   "error": f"exited {proc.returncode} without a result: " + " | ".join(tail)}
        doc["output"] = (proc.stdout or "")[-2000:]
    except subprocess.TimeoutExpired:
        seconds = time.perf_counter() - t0
        doc = {"status": "timeout", "error": f"did not finish within {timeout:g} s"}
    finally:
        Path(out).unlink(missing_ok=True)
    doc["seconds"] = round(seconds, 2)
    return doc


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Run every sscard benchmark and write bench/results/latest.{json,md} "
                    "plus PNG plots. Every figure is a ratio to a baseline measured in the "
                    "same run.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  python -m bench --quick          all benchmarks, short runs "
               "(under two minutes)\n  python -m bench                  full runs\n"
               "  python -m bench --only serial    one module\n"
               "  python -m bench --list           the modules found",
    )
    parser.add_argument("--quick", action="store_true", help="short runs of every module")
    parser.add_argument("--only", action="append", default=[], metavar="NAME",
                        help="run only this module (serial or serial_bench); repeatable")
    parser.add_argument("--list", action="store_true", help="list the modules and exit")
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    parser.add_argument("--timeout", type=float, default=None,
                        help="seconds per module (default 100 quick, 1800 full)")
    parser.add_argument("--results", type=Path, default=report.RESULTS_DIR,
                        help="where to write latest.json / latest.md / plots")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        return _child(args.child, args.quick, args.out)

    modules = discover()
    if args.only:
        wanted = {n if n.endswith("_bench") else f"{n}_bench" for n in args.only}
        unknown = wanted - set(modules)
        if unknown:
            print(f"bench: no module {', '.join(sorted(unknown))}; found: "
                  f"{', '.join(modules) or 'none'}", file=sys.stderr)
            return 2
        modules = [m for m in modules if m in wanted]
    if args.list:
        print("\n".join(modules))
        return 0
    if not modules:
        print(f"bench: no *_bench.py module in {BENCH_DIR}", file=sys.stderr)
        return 2

    timeout = args.timeout or (100.0 if args.quick else 1800.0)
    command = "python -m bench" + (" --quick" if args.quick else "")
    doc: dict[str, Any] = {"command": command, "quick": args.quick,
                           "machine": report.machine_info(), "modules": {}, "figures": []}
    raw: dict[str, dict[str, Any]] = {}
    for i, stem in enumerate(modules, 1):
        name = stem.removesuffix("_bench")
        print(f"bench: [{i}/{len(modules)}] {name} ...", file=sys.stderr, flush=True)
        res = run_isolated(stem, args.quick, timeout)
        status = res["status"]
        entry: dict[str, Any] = {"status": status, "seconds": res["seconds"]}
        if status == "ok":
            entry["result"] = res["result"]
            raw[name] = res["result"]
            rows = report.figures(name, res["result"])
            doc["figures"].extend(r.to_dict() for r in rows)
            print(f"bench:        ok in {res['seconds']:.1f} s, {len(rows)} figures",
                  file=sys.stderr)
        else:
            entry["error"] = res.get("error", "")
            if res.get("traceback"):
                entry["traceback"] = res["traceback"]
            print(f"bench:        {status} after {res['seconds']:.1f} s: {entry['error']}",
                  file=sys.stderr)
        doc["modules"][name] = entry

    doc["plots"] = []
    if args.no_plots:
        doc["plots_skipped"] = "--no-plots"
    elif not plots.available():
        doc["plots_skipped"] = ("matplotlib is not installed "
                                "(pip install -e '.[bench]' to get the PNG plots)")
    else:
        try:
            written = plots.draw(doc, raw, args.results)
            doc["plots"] = [str(p.relative_to(ROOT)) if p.is_relative_to(ROOT) else str(p)
                            for p in written]
        except Exception as exc:  # a plot must not lose the figures
            doc["plots_skipped"] = f"plotting failed: {type(exc).__name__}: {exc}"
    if doc.get("plots_skipped"):
        print(f"bench: plots skipped: {doc['plots_skipped']}", file=sys.stderr)

    jpath, mpath = report.write(doc, args.results)
    print(report.markdown(doc))
    print(f"bench: wrote {jpath} and {mpath}", file=sys.stderr)
    failed = [n for n, m in doc["modules"].items() if m["status"] != "ok"]
    if failed:
        print(f"bench: {len(failed)} module(s) failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

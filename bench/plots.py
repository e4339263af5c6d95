"""PNG plots of a benchmark run, for people who would rather look than read.

Three kinds, each drawn only when the run holds the data for it:

* ``ratios.png``: every ratio figure (median bar, p99 whisker) on a log axis, 1 = baseline;
* ``latency_<module>.png``: the distribution (empirical CDF, log time axis) of every list of
  raw samples a module returned under a key containing ``samples`` (at least 10 numbers);
* ``throughput.png``: throughput against concurrency for every list of rows carrying a
  concurrency key (``concurrency``, ``terminals``, ``workers``, ``clients``, ``threads``)
  and a throughput key (``per_s``, ``throughput``, ``tps`` or one ending in ``_per_s``).

matplotlib is optional (``pip install -e '.[bench]'``): :func:`available` says whether it is
installed and :func:`draw` is only called when it is.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

CONCURRENCY_KEYS = ("concurrency", "terminals", "workers", "clients", "threads")
THROUGHPUT_KEYS = ("per_s", "throughput", "tps")


def available() -> bool:
    """Whether matplotlib can be imported."""
    return importlib.util.find_spec("matplotlib") is not None


def _samples(node: Any, path: tuple[str, ...], out: dict[str, list[float]]) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if "samples" in str(key) and isinstance(value, list) and len(value) >= 10 and \
                    all(isinstance(v, int | float) and not isinstance(v, bool) for v in value):
                out[".".join((*path, str(key)))] = [float(v) for v in value]
            else:
                _samples(value, (*path, str(key)), out)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            label = str(i)
            if isinstance(value, dict):
                for k in ("name", "label", *CONCURRENCY_KEYS, "backend", "cards"):
                    if k in value and isinstance(value[k], str | int | float):
                        label = str(value[k]) if k in ("name", "label") else f"{k}={value[k]}"
                        break
            _samples(value, (*path, label), out)


def _throughput_key(row: dict[str, Any]) -> str | None:
    for key, value in row.items():
        if isinstance(value, int | float) and not isinstance(value, bool) and (
                key in THROUGHPUT_KEYS or key.endswith("_per_s")):
            return str(key)
    return None


def _series(node: Any, path: tuple[str, ...],
            out: dict[str, list[tuple[float, float]]]) -> None:
    if isinstance(node, list) and node and all(isinstance(r, dict) for r in node):
        first = node[0]
        ckey = next((k for k in CONCURRENCY_KEYS if k in first), None)
        tkey = _throughput_key(first)
        if ckey is not None and tkey is not None:
            pts = [(float(r[ckey]), float(r[tkey])) for r in node
                   if isinstance(r.get(ckey), int | float) and isinstance(r.get(tkey), int | float)]
            if len(pts) >= 2:
                out[".".join((*path, tkey))] = sorted(pts)
                return
    if isinstance(node, dict):
        for key, value in node.items():
            _series(value, (*path, str(key)), out)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            _series(value, (*path, str(i)), out)


def draw(doc: dict[str, Any], raw: dict[str, dict[str, Any]], out_dir: Path) -> list[Path]:
    """Draw the plots of one run into ``out_dir``; return the files written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import ScalarFormatter

    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []

    ratios = [f for f in doc["figures"] if f.get("ratio")]
    if ratios:
        fig, ax = plt.subplots(figsize=(9, 0.45 * len(ratios) + 1.5))
        names = [f"{f['module']}: {f['name']}" for f in ratios]
        med = [f["ratio"] for f in ratios]
        err = [max(0.0, (f["ratio_p99"] or f["ratio"]) - f["ratio"]) for f in ratios]
        ax.barh(names, med, xerr=[[0] * len(err), err], color="#4C72B0", capsize=3)
        ax.axvline(1.0, color="black", linewidth=0.8)
        ax.set_xscale("log")
        ax.set_xlabel("ratio to the same-run baseline (bar: median, whisker: p99)")
        ax.invert_yaxis()
        ax.set_title("sscard: figures as ratios to their baselines")
        fig.tight_layout()
        path = out_dir / "ratios.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)

    for module, result in raw.items():
        samples: dict[str, list[float]] = {}
        _samples(result, (), samples)
        if not samples:
            continue
        fig, ax = plt.subplots(figsize=(8, 4.5))
        for label, values in samples.items():
            xs = sorted(values)
            ys = [(i + 1) / len(xs) for i in range(len(xs))]
            ax.step(xs, ys, where="post", label=f"{label} (n={len(xs)})")
        ax.set_xscale("log")
        ax.set_xlabel("latency (as recorded by the module)")
        ax.set_ylabel("fraction of requests ≤ x")
        ax.set_title(f"{module}: latency distribution")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
        fig.tight_layout()
        path = out_dir / f"latency_{module}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)

    series: dict[str, list[tuple[float, float]]] = {}
    for module, result in raw.items():
        found: dict[str, list[tuple[float, float]]] = {}
        _series(result, (), found)
        series.update({f"{module}: {k}": v for k, v in found.items()})
    if series:
        fig, ax = plt.subplots(figsize=(8, 4.5))
        for label, pts in series.items():
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=label)
        if all(p[0] > 0 for pts in series.values() for p in pts):
            ax.set_xscale("log", base=2)
            ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.set_ylim(bottom=0)
        ax.set_xlabel("concurrency (terminals / workers / clients)")
        ax.set_ylabel("throughput (per second)")
        ax.set_title("throughput vs. concurrency")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
        fig.tight_layout()
        path = out_dir / "throughput.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    """Redraw the plots of a results file: ``python -m bench.plots [latest.json]``."""
    import argparse
    import json

    parser = argparse.ArgumentParser(
        prog="python -m bench.plots", description="Redraw the PNG plots of a benchmark run.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example:\n  python -m bench.plots bench/results/latest.json")
    parser.add_argument("results", nargs="?", type=Path,
                        default=Path(__file__).resolve().parent / "results" / "latest.json")
    args = parser.parse_args(argv)
    if not available():
        print("matplotlib is not installed: pip install -e '.[bench]'")
        return 2
    doc = json.loads(args.results.read_text("utf-8"))
    raw = {name: m["result"] for name, m in doc["modules"].items() if m.get("status") == "ok"}
    for path in draw(doc, raw, args.results.parent):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

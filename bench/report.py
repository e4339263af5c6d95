"""Collect benchmark results into ``bench/results/latest.json`` and ``latest.md``.

Every figure sscard publishes is a *ratio against a baseline measured in the same run*
(DESIGN.md quality bar): the APDU round trip against the echo card, a checkout against a
bare transaction, settlements per second against pgbench's tpcb-like script, a serial read
against the wire-time floor. A bench module returns a JSON-able dict; this module reads two
shapes from it:

* **explicit figures** (preferred): ``result["figures"]`` is a list of objects with ``name``
  and any of ``unit``, ``value`` / ``median``, ``p99``, ``baseline``, ``baseline_name``,
  ``ratio`` (a number, or ``{"median", "p99"}``), ``target``, ``note``;
* **summaries**: any object with ``median`` and ``p99`` (``{"median": …, "p99": …}``) found
  anywhere in the result. A summary whose key contains ``ratio`` becomes a ratio figure; its
  siblings sharing the key's prefix supply the measured value and the baseline (for
  ``read_ratio_to_floor``: ``read_seconds`` and ``read_floor_seconds``). Targets come from
  ``result["targets"]`` (``{figure name: target}``) when present.

Nothing here measures anything: it only reads what the modules measured.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parent / "results"


@dataclass
class Figure:
    """One row of the results table."""

    module: str
    name: str
    unit: str = ""
    median: float | None = None
    p99: float | None = None
    baseline: float | None = None
    baseline_name: str = ""
    ratio: float | None = None
    ratio_p99: float | None = None
    target: str = ""
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# -- the machine ------------------------------------------------------------------------


def _read(path: str) -> str:
    try:
        return Path(path).read_text("utf-8", errors="replace")
    except OSError:
        return ""


def machine_info() -> dict[str, Any]:
    """CPU model, cores, memory, kernel, Python, time: what a figure was measured on."""
    cpu = ""
    for line in _read("/proc/cpuinfo").splitlines():
        if line.lower().startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kib = 0
    for line in _read("/proc/meminfo").splitlines():
        if line.startswith("MemTotal:"):
            mem_kib = int(line.split()[1])
            break
    commit = ""
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, timeout=5, cwd=Path(__file__).resolve().parent)
        commit = out.stdout.strip() if out.returncode == 0 else ""
    except (OSError, subprocess.SubprocessError):
        pass
    return {
        "cpu_model": cpu or platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "memory_gib": round(mem_kib / 1024 / 1024, 1),
        "kernel": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "implementation": sys.implementation.name,
        "timestamp": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "commit": commit,
    }


# -- reading module results ---------------------------------------------------------------


def _num(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    return None


def _is_summary(value: Any) -> bool:
    return isinstance(value, dict) and _num(value.get("median")) is not None and \
        "p99" in value


def _explicit(module: str, rows: list[Any]) -> list[Figure]:
    out: list[Figure] = []
    for row in rows:
        if not isinstance(row, dict) or "name" not in row:
            continue
        ratio = row.get("ratio")
        ratio_med = _num(ratio.get("median")) if isinstance(ratio, dict) else _num(ratio)
        ratio_p99 = _num(ratio.get("p99")) if isinstance(ratio, dict) else _num(
            row.get("ratio_p99"))
        median = _num(row.get("median", row.get("value")))
        baseline = row.get("baseline")
        out.append(Figure(
            module=module, name=str(row["name"]), unit=str(row.get("unit", "")),
            median=median, p99=_num(row.get("p99")),
            baseline=_num(baseline.get("median")) if isinstance(baseline, dict)
            else _num(baseline),
            baseline_name=str(row.get("baseline_name", "")),
            ratio=ratio_med, ratio_p99=ratio_p99, target=str(row.get("target", "") or ""),
            note=str(row.get("note", "") or "")))
    return out


def _walk(node: Any, path: tuple[str, ...], found: dict[tuple[str, ...], dict[str, Any]]) -> None:
    if _is_summary(node):
        found[path] = node
        return
    if isinstance(node, dict):
        for key, value in node.items():
            _walk(value, (*path, str(key)), found)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            label = f"[{i}]"
            if isinstance(value, dict):
                for k in ("name", "label", "backend", "concurrency", "cards"):
                    if k in value and not isinstance(value[k], dict | list):
                        label = f"{k}={value[k]}"
                        break
            _walk(value, (*path, label), found)


def _unit(key: str) -> str:
    for suffix, unit in (("_seconds", "s"), ("_s", "s"), ("_ms", "ms"), ("_us", "µs"),
                         ("per_s", "/s"), ("_tps", "/s")):
        if key.endswith(suffix):
            return unit
    return ""


def _summaries(module: str, result: dict[str, Any]) -> list[Figure]:
    found: dict[tuple[str, ...], dict[str, Any]] = {}
    _walk(result, (), found)
    targets = result.get("targets") if isinstance(result.get("targets"), dict) else {}
    assert isinstance(targets, dict)
    used: set[tuple[str, ...]] = set()
    rows: list[Figure] = []
    for path, summ in found.items():
        key = path[-1]
        if "ratio" not in key:
            continue
        prefix, _, rest = key.partition("_ratio")
        base_word = rest.removeprefix("_to_").removeprefix("_vs_").strip("_")
        parent = path[:-1]
        value_path = baseline_path = None
        for other in found:
            if other[:-1] != parent or other == path or "ratio" in other[-1]:
                continue
            okey = other[-1]
            if not okey.startswith(prefix):
                continue
            if base_word and base_word in okey[len(prefix):]:
                baseline_path = other
            elif value_path is None:
                value_path = other
        name = ".".join((*parent, prefix)) if prefix else ".".join(path)
        fig = Figure(module=module, name=name, ratio=_num(summ.get("median")),
                     ratio_p99=_num(summ.get("p99")), baseline_name=base_word,
                     target=str(targets.get(name, targets.get(prefix, "")) or ""))
        if value_path is not None:
            v = found[value_path]
            fig.median, fig.p99, fig.unit = _num(v.get("median")), _num(v.get("p99")), \
                _unit(value_path[-1])
            used.add(value_path)
        if baseline_path is not None:
            fig.baseline = _num(found[baseline_path].get("median"))
            used.add(baseline_path)
        used.add(path)
        rows.append(fig)
    for path, summ in found.items():
        if path in used:
            continue
        name = ".".join(path)
        rows.append(Figure(module=module, name=name, unit=_unit(path[-1]),
                           median=_num(summ.get("median")), p99=_num(summ.get("p99")),
                           target=str(targets.get(name, "") or "")))
    return rows


def figures(module: str, result: dict[str, Any]) -> list[Figure]:
    """The table rows of one module's result (see the module docstring)."""
    explicit = result.get("figures")
    if isinstance(explicit, list) and explicit:
        return _explicit(module, explicit)
    return _summaries(module, result)


# -- writing ----------------------------------------------------------------------------------


def fmt(value: float | None) -> str:
    """A compact number for the table ('' when absent).

    >>> fmt(None), fmt(12345.6), fmt(123.45), fmt(1.23456), fmt(0.000123456)
    ('', '12,346', '123.5', '1.23', '0.000123')
    """
    if value is None:
        return ""
    mag = abs(value)
    if mag >= 1000:
        return f"{value:,.0f}"
    if mag >= 100:
        return f"{value:.1f}"
    return f"{value:.3g}"


def markdown(doc: dict[str, Any]) -> str:
    """The markdown report: machine, one table of figures, failed and skipped modules."""
    m = doc["machine"]
    lines = [
        "# sscard benchmark results",
        "",
        f"Command: `{doc['command']}` ({'quick' if doc['quick'] else 'full'} mode), "
        f"{m['timestamp']}, commit {m.get('commit') or 'unknown'}.",
        "",
        f"Machine: {m['cpu_model']}, {m['cores']} cores, {m['memory_gib']} GiB, "
        f"{m['kernel']}, Python {m['python']}.",
        "",
        "Every ratio is measured against its baseline in the same run (median of the "
        "per-run ratios; p99 beside it).",
        "",
        "| module | figure | value (median) | p99 | baseline (median) | ratio | ratio p99 "
        "| target |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for f in doc["figures"]:
        unit = f" {f['unit']}" if f["unit"] and f["median"] is not None else ""
        base = fmt(f["baseline"])
        if f["baseline_name"]:
            base = f"{base} ({f['baseline_name']})" if base else f["baseline_name"]
        lines.append(
            f"| {f['module']} | {f['name']} | {fmt(f['median'])}{unit} | {fmt(f['p99'])} "
            f"| {base} | {fmt(f['ratio'])} | {fmt(f['ratio_p99'])} | {f['target']} |")
    for name, mod in doc["modules"].items():
        if mod["status"] != "ok":
            lines.append("")
            lines.append(f"- **{name}**: {mod['status']}: {mod.get('error', '')}")
    if doc.get("plots"):
        lines += ["", "Plots: " + ", ".join(f"`{p}`" for p in doc["plots"])]
    elif doc.get("plots_skipped"):
        lines += ["", f"Plots skipped: {doc['plots_skipped']}"]
    return "\n".join(lines) + "\n"


def write(doc: dict[str, Any], results_dir: Path = RESULTS_DIR) -> tuple[Path, Path]:
    """Write ``latest.json`` and ``latest.md``; return their paths."""
    results_dir.mkdir(parents=True, exist_ok=True)
    jpath, mpath = results_dir / "latest.json", results_dir / "latest.md"
    jpath.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", "utf-8")
    mpath.write_text(markdown(doc), "utf-8")
    return jpath, mpath

"""The benchmark runner (``python -m bench``): figures read from module results, failure
isolation, the JSON and markdown reports."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import bench.__main__ as runner
from bench import report
from tests.support import require

SERIAL_LIKE = {
    "read_seconds": {"median": 0.40, "p99": 0.41, "min": 0.39},
    "read_floor_seconds": {"median": 0.37, "p99": 0.37, "min": 0.37},
    "read_ratio_to_floor": {"median": 1.07, "p99": 1.10, "min": 1.05},
    "targets": {"read": "≤ 1.5"},
}


def test_summaries_pair_ratio_value_and_baseline() -> None:
    rows = report.figures("serial", SERIAL_LIKE)
    assert len(rows) == 1
    f = rows[0]
    assert (f.name, f.median, f.baseline, f.ratio, f.ratio_p99, f.target, f.unit) == (
        "read", 0.40, 0.37, 1.07, 1.10, "≤ 1.5", "s")


def test_explicit_figures_take_precedence() -> None:
    result = {**SERIAL_LIKE, "figures": [
        {"name": "apdu round trip", "unit": "µs", "median": 80, "p99": 120, "baseline": 20,
         "baseline_name": "echo card", "ratio": {"median": 4.0, "p99": 6.0}, "target": "≤ 5"}]}
    rows = report.figures("reader", result)
    assert [(r.name, r.ratio, r.ratio_p99, r.baseline_name) for r in rows] == [
        ("apdu round trip", 4.0, 6.0, "echo card")]


def test_markdown_lists_figures_machine_and_failures() -> None:
    doc: dict[str, Any] = {"command": "python -m bench --quick", "quick": True,
           "machine": report.machine_info(),
           "figures": [f.to_dict() for f in report.figures("serial", SERIAL_LIKE)],
           "modules": {"serial": {"status": "ok"},
                       "ledger": {"status": "failed", "error": "RuntimeError: boom"}},
           "plots": [], "plots_skipped": "matplotlib is not installed"}
    md = report.markdown(doc)
    assert "| serial | read | 0.4 s | 0.41 | 0.37 (floor) | 1.07 | 1.1 | ≤ 1.5 |" in md
    assert "**ledger**: failed: RuntimeError: boom" in md
    assert doc["machine"]["cores"] and doc["machine"]["kernel"] in md
    assert "Plots skipped" in md


def test_one_failing_module_does_not_stop_the_others(monkeypatch: pytest.MonkeyPatch,
                                                     tmp_path: Path) -> None:
    def fake(stem: str, quick: bool, timeout: float) -> dict[str, Any]:
        if stem == "bad_bench":
            return {"status": "failed", "error": "ZeroDivisionError: division by zero",
                    "seconds": 0.1}
        return {"status": "ok", "result": SERIAL_LIKE, "seconds": 0.2}

    monkeypatch.setattr(runner, "discover", lambda: ["bad_bench", "good_bench"])
    monkeypatch.setattr(runner, "run_isolated", fake)
    rc = runner.main(["--quick", "--no-plots", "--results", str(tmp_path)])
    assert rc == 1
    doc = json.loads((tmp_path / "latest.json").read_text("utf-8"))
    assert doc["modules"]["bad"]["status"] == "failed"
    assert doc["modules"]["good"]["status"] == "ok"
    assert [f["module"] for f in doc["figures"]] == ["good"]
    assert "ZeroDivisionError" in (tmp_path / "latest.md").read_text("utf-8")


def test_child_reports_an_exception_as_a_result(monkeypatch: pytest.MonkeyPatch,
                                                tmp_path: Path) -> None:
    monkeypatch.setitem(runner.BUILTIN, "boom_bench", "json:loads")  # loads(True) raises
    out = tmp_path / "child.json"
    assert runner._child("boom_bench", True, str(out)) == 1
    doc = json.loads(out.read_text("utf-8"))
    assert doc["status"] == "failed" and "TypeError" in doc["error"]


def test_plots_of_a_run(tmp_path: Path) -> None:
    from bench import plots

    raw = {"city": {"sweep": [
        {"terminals": 1, "settlements_per_s": 50.0, "samples_2102": [0.01 + i / 1e4
                                                                     for i in range(50)]},
        {"terminals": 4, "settlements_per_s": 70.0, "samples_2102": [0.02 + i / 1e4
                                                                     for i in range(50)]}]}}
    doc = {"figures": [f.to_dict() for f in report.figures("serial", SERIAL_LIKE)]}
    if not plots.available():
        require("matplotlib", "install the bench extra: .venv/bin/pip install -e '.[bench]'")
    written = plots.draw(doc, raw, tmp_path)
    assert sorted(p.name for p in written) == ["latency_city.png", "ratios.png",
                                               "throughput.png"]
    for p in written:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

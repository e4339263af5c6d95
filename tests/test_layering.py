"""The import layering of DESIGN.md, checked by import-linter's contracts in pyproject.toml."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_contracts_cover_design_rules() -> None:
    """Every layering rule of DESIGN.md is written down as a contract."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    rules = {c["source_modules"][0]: set(c["forbidden_modules"]) for c in config["contracts"]}
    assert rules["apdu"] >= {"card", "reader", "ledger", "terminal"}
    assert rules["card"] >= {"reader", "ledger", "terminal"}
    assert rules["reader"] >= {"card", "ledger", "terminal"}
    assert rules["ledger"] >= {"apdu", "card", "reader", "terminal"}
    assert "textual" in rules["terminal.core"]


def test_import_contracts_hold() -> None:
    exe = Path(sys.executable).with_name("lint-imports")
    proc = subprocess.run([str(exe), "--no-cache"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 broken" in proc.stdout

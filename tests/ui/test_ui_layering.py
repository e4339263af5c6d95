"""DESIGN.md: terminal/ui only calls terminal/core. Every import in terminal/ui names the
standard library, Textual/Rich/Pillow, terminal.ui itself or terminal.core, never the card,
reader, ledger or apdu packages (the CLI wires those in)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

UI = Path(__file__).resolve().parents[2] / "terminal" / "ui"
ALLOWED_THIRD_PARTY = {"textual", "rich", "PIL"}
FORBIDDEN = {"apdu", "card", "reader", "ledger"}


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module)
    return names


def test_the_ui_imports_only_the_core_and_its_toolkit() -> None:
    problems = []
    files = sorted(UI.rglob("*.py"))
    assert len(files) > 10
    for path in files:
        for name in _imports(path):
            top = name.split(".")[0]
            if top in FORBIDDEN or name.startswith("terminal.cli"):
                problems.append(f"{path.relative_to(UI)} imports {name}")
            elif top == "terminal":
                if not name.startswith(("terminal.core", "terminal.ui")):
                    problems.append(f"{path.relative_to(UI)} imports {name}")
            elif top not in sys.stdlib_module_names and top not in ALLOWED_THIRD_PARTY \
                    and top != "__future__":
                problems.append(f"{path.relative_to(UI)} imports {name}")
    assert problems == []

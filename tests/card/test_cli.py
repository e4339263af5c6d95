"""``sscard card issue|show|psam`` (terminal/cli/cmd_card.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from card.image import read_document
from terminal.cli import main

ZHANG = "370802198001011235"


def test_issue_then_show(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "z.json"
    reg = tmp_path / "issued.json"
    assert main(["card", "issue", "--name", "张三", "--id", ZHANG, "--bank", "ccb",
                 "--out", str(out), "--issuer-file", str(reg)]) == 0
    text = capsys.readouterr().out
    assert "initial PIN (shown once" in text
    pin = text.strip().rsplit(" ", 1)[-1]
    assert len(pin) == 6 and pin.isdigit()
    assert main(["card", "show", str(out)]) == 0
    shown = capsys.readouterr().out
    assert "张三" in shown and "******" in shown and pin not in shown.replace(ZHANG, "")
    assert main(["card", "show", str(out), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["identity"]["card_number"] == "J00000017"
    assert info["pins"]["ssse"]["pin"] == "******"
    assert all(v.endswith("****") for v in info["keys"].values())
    assert info["photo_bytes"] > 500


def test_issue_toml_second_generation(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "l.toml"
    assert main(["card", "issue", "--name", "李四", "--id", "370802198505050529", "--bank",
                 "ICBC", "--generation", "2.00", "--out", str(out)]) == 0
    assert "not activated" in capsys.readouterr().out
    doc = read_document(out)
    assert doc["identity"]["algorithm"] == "3DES" and doc["policy"]["activated"] is False


def test_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "x.json"
    assert main(["card", "issue", "--name", "张三", "--id", "370802198001011234", "--bank",
                 "CCB", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "not valid" in err and "Traceback" not in err and not out.exists()
    out.write_text("{}")
    assert main(["card", "issue", "--name", "张三", "--id", ZHANG, "--bank", "CCB",
                 "--out", str(out)]) == 1
    assert "already exists" in capsys.readouterr().err
    assert main(["card", "show", str(out)]) == 1
    assert "field format" in capsys.readouterr().err
    assert main(["card", "show", str(tmp_path / "nope.json")]) == 1
    assert "does not exist" in capsys.readouterr().err


def test_psam(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "p.json"
    assert main(["card", "psam", "--serial", "12", "--out", str(out)]) == 0
    assert main(["card", "show", str(out)]) == 0
    assert "370800000012" in capsys.readouterr().out

"""The scriptable commands over the real in-process virtual reader (no substitution): a
copy of a fixture card image, the embedded SQLite host."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from terminal.cli import main
from tests.core.station import PINS, Station

AMOX = "XJ01CAA040A001010101445"


@pytest.fixture
def st(tmp_path: Path) -> Iterator[Station]:
    station = Station.build(tmp_path, ("zhang-san", "wang-wu"))
    yield station
    station.close()


def test_checkout_admit_discharge(st: Station, monkeypatch: pytest.MonkeyPatch,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    import io

    zhang = f"virtual:{st.images['zhang-san']}"
    monkeypatch.setattr("sys.stdin", io.StringIO(PINS["zhang-san"] + "\n"))
    rc = main(["checkout", "--reader", zhang, "--host", st.url, "--item", f"{AMOX}:2",
               "--pin-from-stdin", "--json"])
    out = capsys.readouterr().out
    assert rc == 0, out
    doc = json.loads(out)
    assert doc["result"]["recorded_on_card"] and doc["result"]["split"]["account"] == "25.00"
    assert st.balances("zhang-san") == (50000 - 2500, 100000)

    wang = f"virtual:{st.images['wang-wu']}"
    assert main(["admit", "--reader", wang, "--host", st.url, "--yes", "--json",
                 "--photo-out", str(st.root / "photo.jpg")]) == 0
    adm = json.loads(capsys.readouterr().out)
    assert (st.root / "photo.jpg").read_bytes().startswith(b"\xff\xd8")
    monkeypatch.setattr("sys.stdin", io.StringIO(PINS["wang-wu"] + "\n"))
    rc = main(["discharge", "--reader", wang, "--host", st.url, "--mdtrt-id",
               adm["result"]["mdtrt_id"], "--item", f"{AMOX}:8", "--pay", "account",
               "--pin-from-stdin"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert "100.00" in captured.out
    assert st.balances("wang-wu") == (50000 - 10000, 100000)


def test_missing_image_is_one_clear_line(st: Station, capsys: pytest.CaptureFixture[str]
                                         ) -> None:
    rc = main(["checkout", "--reader", f"virtual:{st.root}/nope.json", "--host", st.url,
               "--item", AMOX])
    err = capsys.readouterr().err
    assert rc == 1 and "cannot open the card" in err and "Traceback" not in err

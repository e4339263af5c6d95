"""The city simulator (``sscard simulate``) and the CLI of the fault harnesses."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from ledger.policy import load_policies
from terminal.cli import main
from terminal.sim import city
from tests.support import TIMED


def test_city_has_the_twelve_service_areas_of_the_seed(tmp_path: Path) -> None:
    names = [d[1] for d in city.DISTRICTS]
    assert names == ["市直", "任城区", "兖州区", "曲阜市", "邹城市", "微山县", "鱼台县", "金乡县",
                     "嘉祥县", "汶上县", "泗水县", "梁山县"]
    sites = city.city_sites()
    codes = [s.code for s in sites]
    assert len(set(codes)) == len(codes) and all(len(c) == 12 for c in codes)
    pol = load_policies(city.write_policy_dir(tmp_path))["370800"]
    registered = {i.code: i for i in pol.institutions}
    for s in sites:
        assert registered[s.code].kind == s.kind
        assert registered[s.office].kind == "office"
        assert all(registered[c].bank == b for b, c in s.banks.items())
    # any number of terminals is spread over districts and both kinds of site
    first = [city._site_for(sites, t) for t in range(12)]
    assert len({s.district for s in first}) == 12
    assert {s.kind for s in first} == {"pharmacy", "hospital"}


@pytest.mark.slow
@TIMED
def test_a_short_city_day() -> None:
    stream = io.StringIO()
    rep = city.simulate(terminals=6, seconds=5, holders=200, seed=3, stream=stream)
    d = rep.to_dict()
    assert d["settlements"] > 10
    assert d["visits"].get("pharmacy", 0) > 0 and d["visits"].get("hospital stay", 0) > 0
    assert len(d["by_district"]) == 6
    for code in ("1101", "2101", "2102", "2401", "2301", "2402", "2303", "2304"):
        assert d["latency_seconds"][code]["count"] > 0, code
    assert not any(r.startswith(("internal", "wrong_institution", "bad_request", "auth"))
                   for r in d["errors"]), d["errors"]
    text = rep.text()
    assert "latency by transaction code" in text and "by district" in text
    assert "simulate:" in stream.getvalue()          # live progress was shown


def test_cli_power_cut_campaign(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "--power-cut", "--runs", "60", "--seed", "4"]) == 0
    out = capsys.readouterr().out
    assert "SM4: 60 runs" in out and "3DES: 60 runs" in out and "no violation" in out


def test_cli_refuses_bad_arguments_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:        # refused by the argument parser
        main(["simulate", "--minutes", "0"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "argument --minutes: '0': minutes must be more than 0" in err
    assert "Traceback" not in err
    assert main(["simulate", "--bank-test", "--terminals", "11"]) == 1
    assert "1..10" in capsys.readouterr().err
    assert main(["simulate", "--terminals", "2", "--host", "http://127.0.0.1:9"]) == 1
    err = capsys.readouterr().err
    assert "cannot use the host at http://127.0.0.1:9" in err and "Traceback" not in err

"""``sscard checkout``/``admit``/``discharge`` end to end over the embedded host; the card
comes from the reader adapter (here replaced by an in-memory card with the host's numbers;
test_e2e.py runs them over the virtual reader)."""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Iterator

import pytest

from terminal.cli import main
from terminal.core import adapters
from tests.core.conftest import HOLDER, EmbeddedHost
from tests.core.fakes import PIN
from tests.core.hostcard import HostIssuedCard

AMOX = "XJ01CAA040A001010101445"


@pytest.fixture
def card(embedded: EmbeddedHost, monkeypatch: pytest.MonkeyPatch) -> HostIssuedCard:
    c = HostIssuedCard(embedded.cardinfo, HOLDER)

    @contextlib.contextmanager
    def open_card(name: str, psam: str | None = None) -> Iterator[HostIssuedCard]:
        assert name == "virtual:test"
        yield c

    monkeypatch.setattr(adapters, "open_card", open_card, raising=False)
    return c


def run(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], argv: list[str],
        stdin: str = "") -> tuple[int, str, str]:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    rc = main(argv)
    out, err = capsys.readouterr()
    return rc, out, err


def test_checkout_prints_the_slip(embedded: EmbeddedHost, card: HostIssuedCard,
                                  monkeypatch: pytest.MonkeyPatch,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = run(monkeypatch, capsys, [
        "checkout", "--reader", "virtual:test", "--host", embedded.url, "--item", f"{AMOX}:2",
        "--pin-from-stdin"], PIN + "\n")
    assert rc == 0, err
    assert "阿莫西林胶囊" in out and "25.00" in out and "475.00" in out
    assert PIN not in out + err
    assert embedded.balances() == (50000 - 2500, 100000)


def test_checkout_json_and_wrong_pins(embedded: EmbeddedHost, card: HostIssuedCard,
                                      monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = run(monkeypatch, capsys, [
        "checkout", "--reader", "virtual:test", "--host", embedded.url, "--item", AMOX,
        "--pay", "bank", "--pin-from-stdin", "--json", "--width", "48"],
        "111111\n" + PIN + "\n")
    assert rc == 0
    doc = json.loads(out)
    assert doc["ok"] and doc["result"]["split"]["bank"] == "12.50"
    assert "Pooled fund" in doc["slip"]
    assert embedded.balances() == (50000, 100000 - 1250)


def test_checkout_locked_pin_exits_non_zero_with_the_reason(
        embedded: EmbeddedHost, card: HostIssuedCard, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = run(monkeypatch, capsys, [
        "checkout", "--reader", "virtual:test", "--host", embedded.url, "--item", AMOX,
        "--pin-from-stdin"], "000000\n000001\n000002\n")
    assert rc == 1 and out == ""
    last = err.strip().splitlines()[-1]
    assert last.startswith("sscard: checkout stopped (failed): PIN locked")
    assert "bank counter" in last and "Traceback" not in err
    assert embedded.balances() == (50000, 100000)


def test_checkout_failure_as_json(embedded: EmbeddedHost, card: HostIssuedCard,
                                  monkeypatch: pytest.MonkeyPatch,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = run(monkeypatch, capsys, [
        "checkout", "--reader", "virtual:test", "--host", embedded.url, "--item", AMOX,
        "--pin-from-stdin", "--json"], "")
    assert rc == 1
    doc = json.loads(out)
    assert not doc["ok"] and doc["failure"]["kind"] == "pin_cancelled"


def test_bad_item_and_bad_host(embedded: EmbeddedHost, card: HostIssuedCard,
                               monkeypatch: pytest.MonkeyPatch,
                               capsys: pytest.CaptureFixture[str]) -> None:
    rc, _, err = run(monkeypatch, capsys, ["checkout", "--reader", "virtual:test", "--host",
                                           embedded.url, "--item", "NOPE"])
    assert rc == 1 and "not in the catalogue" in err
    rc, _, err = run(monkeypatch, capsys, ["checkout", "--reader", "virtual:test", "--host",
                                           "http://127.0.0.1:9", "--item", AMOX,
                                           "--timeout", "1"])
    assert rc == 1 and "cannot use the host" in err and "Traceback" not in err
    with pytest.raises(SystemExit):
        main(["checkout", "--reader", "r", "--host", "h", "--item", "X:0"])


def test_admit_then_discharge(embedded: EmbeddedHost, card: HostIssuedCard,
                              monkeypatch: pytest.MonkeyPatch, tmp_path: object,
                              capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = run(monkeypatch, capsys, [
        "admit", "--reader", "virtual:test", "--host", embedded.url, "--yes", "--json"])
    assert rc == 0, err
    doc = json.loads(out)
    assert doc["identity"]["id_number"] == HOLDER["certno"]
    mdtrt_id = doc["result"]["mdtrt_id"]
    rc, out, err = run(monkeypatch, capsys, [
        "discharge", "--reader", "virtual:test", "--host", embedded.url, "--mdtrt-id", mdtrt_id,
        "--item", f"{AMOX}:40", "--pay", "cash"])
    assert rc == 0, err
    assert "住院结算单" in out and "500.00" in out


def test_admit_without_confirmation_refuses(embedded: EmbeddedHost, card: HostIssuedCard,
                                            monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    rc, _, err = run(monkeypatch, capsys, [
        "admit", "--reader", "virtual:test", "--host", embedded.url, "--json"])
    assert rc == 1 and "--yes" in err

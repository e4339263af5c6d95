"""The pharmacy flow over the real stack: the card and the PSAM served through vpcd to the
real pcscd, read with pyscard (reader.pcsc), the host over HTTP (signed requests)."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from terminal.cli import main
from terminal.core.adapters import LedgerHost, PolicyCatalogue, open_card
from terminal.core.checkout import Checkout, CheckoutState, run_checkout
from terminal.core.machine import FailureKind
from terminal.core.model import PayChoice, TerminalConfig
from tests.core import hosting
from tests.core.pcsc_lab import CARD_READER, PSAM_READER, HttpHost, PcscStack, why_unavailable
from tests.core.station import PINS
from tests.support import require

pytestmark = [pytest.mark.pcscd, pytest.mark.slow]
AMOX = "XJ01CAA040A001010101445"
PHARMACY = "P37080000001"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PcscStack]:
    reason = why_unavailable()
    if reason:
        require("pcscd", reason)
    try:
        s = PcscStack(tmp_path_factory.mktemp("pcscd"))
    except (RuntimeError, TimeoutError) as exc:
        require("pcscd", str(exc))
    yield s
    s.close()


@pytest.fixture
def world(stack: PcscStack, tmp_path: Path) -> Iterator[tuple[HttpHost, hosting.Enrolled]]:
    images = hosting.copy_fixtures(tmp_path, "zhang-san")
    url = f"sqlite:///{tmp_path}/host.db"
    hosting.init_host(url)
    enrolled = hosting.enrol(url, images["zhang-san"])
    stack.serve(images["zhang-san"], images["psam-370800"])
    http = HttpHost(url)
    yield http, enrolled
    http.close()
    for server in stack.servers:
        server.stop()
    stack.wait_cards(False)
    stack.servers.clear()


def test_pharmacy_sale_over_pcscd_and_http(world: tuple[HttpHost, hosting.Enrolled]) -> None:
    http, who = world
    host = LedgerHost.connect(http.url, institution_code=PHARMACY)
    try:
        with open_card(CARD_READER, psam=PSAM_READER) as card:
            flow = Checkout(card, host, PolicyCatalogue.load(),
                            TerminalConfig(institution_code=PHARMACY),
                            pay=PayChoice.parse("account+bank"))
            run_checkout(flow, [(AMOX, 50)], lambda t: PINS["zhang-san"])
            assert flow.state is CheckoutState.DONE, flow.message
            assert flow.result is not None and flow.result.recorded_on_card
            s = flow.result.split
            assert (s.account, s.bank) == (50000, 62500 - 50000)
            card.read_basics()
            card.verify_pin(PINS["zhang-san"])
            assert [r.selfpay_fen for r in card.read_transactions()] == [62500]
    finally:
        host.close()
    assert hosting.balances(http.db_url, who.psn_no, who.pan) == (0, 100000 - 12500)
    assert hosting.books_problems(http.db_url) == []


def test_wrong_pin_and_cli_over_pcscd(world: tuple[HttpHost, hosting.Enrolled],
                                      monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    http, _ = world
    monkeypatch.setattr("sys.stdin", io.StringIO("000000\n" + PINS["zhang-san"] + "\n"))
    rc = main(["checkout", "--reader", CARD_READER, "--psam", PSAM_READER, "--host", http.url,
               "--item", f"{AMOX}:2", "--pin-from-stdin", "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert rc == 0, doc
    assert doc["result"]["split"]["account"] == "25.00"
    assert "PIN" not in json.dumps(doc).replace("PIN correct", "")
    monkeypatch.setattr("sys.stdin", io.StringIO("000000\n000001\n000002\n"))
    rc = main(["checkout", "--reader", CARD_READER, "--psam", PSAM_READER, "--host", http.url,
               "--item", AMOX, "--pin-from-stdin", "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert rc == 1 and doc["failure"]["kind"] == FailureKind.PIN_LOCKED.value

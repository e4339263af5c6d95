"""Faults through the real pcscd: a card pulled mid-transaction, pcscd killed and restarted,
two cards on two slots (spec/pcsc-lab.md)."""

from __future__ import annotations

import json
import shutil
import threading
import time
from pathlib import Path

import pytest

from card.cos import VirtualCard
from card.faults import FaultPlan
from card.psam import VirtualPsam
from reader.base import CardEvent
from reader.echo import EchoCard
from reader.errors import CardRemoved, ReaderError, ReaderGone, ServiceUnavailable
from reader.facade import CardDriver, iReadCardBas, iVerifyPIN
from reader.monitor import ReaderMonitor
from reader.pcsc import PcscTransport
from tests.reader.cards import PullableCard
from tests.reader.conftest import SLOT_READERS, ServeFn, card_present, wait_card
from tests.reader.pcsclab import PcscdLab

pytestmark = pytest.mark.pcscd

CARDS = Path(__file__).resolve().parents[2] / "fixtures" / "cards"
R0, R1 = SLOT_READERS


def fixture_card(tmp_path: Path, name: str, **kw: object) -> VirtualCard:
    shutil.copy(CARDS / f"{name}.json", tmp_path / f"{name}.json")
    return VirtualCard.from_image(tmp_path / f"{name}.json", t0=True, **kw)


def psam() -> VirtualPsam:
    return VirtualPsam.from_doc(json.loads((CARDS / "psam-370800.json").read_text()), t0=True)


def test_card_pulled_mid_exchange(pcsc: PcscTransport, serve: ServeFn) -> None:
    card = PullableCard(pull_at=2)
    server = serve(card)
    conn = pcsc.connect(R0)
    assert conn.transmit(bytes.fromhex("00B0000004")).ok
    assert conn.transmit(bytes.fromhex("00B0000004")).ok
    with pytest.raises(CardRemoved) as info:
        conn.transmit(bytes.fromhex("00B0000004"))
    assert info.value.driver_code == -2 and "start over" in str(info.value)
    wait_card(R0, False)
    conn.disconnect()
    card.insert()  # the holder puts the card back
    server.insert()
    wait_card(R0, True)
    with pcsc.connect(R0) as again:
        assert again.transmit(bytes.fromhex("00B0000002")).data == b"\x00\x01"


def test_card_pulled_during_a_card_read(pcsc: PcscTransport, serve: ServeFn,
                                        tmp_path: Path) -> None:
    plan = FaultPlan()
    card = fixture_card(tmp_path, "zhang-san", faults=plan)
    serve(card, slot=0)
    serve(psam(), slot=1)
    driver = CardDriver(pcsc.connect(R0), pcsc.connect(R1))
    plan.pull_at(5)  # during the EF05 reads, after SELECT SSSE/EF05 and a few records
    code, text = iReadCardBas(driver)
    assert code == -2, text
    wait_card(R0, False)


def test_wrong_pin_counter_survives_a_pull_mid_verify(pcsc: PcscTransport, serve: ServeFn,
                                                      tmp_path: Path) -> None:
    """The counter is decremented durably before the answer (spec/card.md §7): pulling the
    card during a wrong VERIFY buys no extra guess."""
    plan = FaultPlan()
    card = fixture_card(tmp_path, "zhang-san", faults=plan)
    server = serve(card)
    driver = CardDriver(pcsc.connect(R0))
    driver.select_ssse()
    plan.pull_at(0, step="pin.compared")
    assert iVerifyPIN(driver, "000000")[0] == -2
    driver.user.disconnect()
    wait_card(R0, False)
    card.insert()
    server.insert()
    wait_card(R0, True)
    again = CardDriver(pcsc.connect(R0))
    assert again.pin_tries_left() == 2


def test_pcscd_killed_and_restarted(pcscd: PcscdLab, serve: ServeFn) -> None:
    events: list[CardEvent] = []
    got = threading.Condition()

    def on_event(e: CardEvent) -> None:
        with got:
            events.append(e)
            got.notify_all()

    def wait_for(kind: str, reader: str, after: int = 0, timeout: float = 15) -> int:
        deadline = time.monotonic() + timeout
        with got:
            while True:
                for i, e in enumerate(events[after:], after):
                    if e.kind == kind and e.reader == reader:
                        return i
                left = deadline - time.monotonic()
                assert left > 0, f"no {kind} for {reader}; events: {events}"
                got.wait(left)

    server = serve(EchoCard())
    transport = PcscTransport()
    conn = transport.connect(R0)
    monitor = ReaderMonitor(PcscTransport(), on_event, poll=0.2).start()
    try:
        first = wait_for("inserted", R0)
        pcscd.kill()  # SIGKILL: as a crash; the socket and pid files stay behind
        with pytest.raises(ReaderGone):
            conn.transmit(bytes.fromhex("00B0000001"))
        gone = wait_for("reader_removed", R0, first)
        assert any(e.kind == "removed" and e.reader == R0 for e in events[first:gone + 1])
        with pytest.raises(ServiceUnavailable):
            transport.readers()
        time.sleep(0.5)
        assert monitor.alive
        pcscd.start()
        back = wait_for("reader_added", R0, gone)
        wait_for("inserted", R0, back)  # the served card reconnected by itself
        assert server.connections >= 2
        assert monitor.alive
        # the same transport object works again: a new context is established
        with transport.connect(R0) as fresh:
            assert fresh.transmit(bytes.fromhex("00B0000002")).ok
    finally:
        monitor.stop()
        conn.disconnect()


def test_pcscd_stopped_gives_a_clear_error(pcscd: PcscdLab) -> None:
    transport = PcscTransport()
    pcscd.stop()
    try:
        with pytest.raises(ServiceUnavailable, match="pcscd is not running") as info:
            transport.readers()
        assert info.value.driver_code == -11
        assert transport.wait_for_event(0.1) == []
    finally:
        pcscd.start()
    assert {R0, R1} <= {r.name for r in transport.readers()}


def test_two_cards_on_two_slots(pcsc: PcscTransport, serve: ServeFn, tmp_path: Path) -> None:
    serve(fixture_card(tmp_path, "zhang-san"), slot=0)
    serve(fixture_card(tmp_path, "wang-wu"), slot=1)
    a = CardDriver(pcsc.connect(R0), require_psam_auth=False)
    b = CardDriver(pcsc.connect(R1))
    results: dict[str, str] = {}

    def read(tag: str, d: CardDriver) -> None:
        try:
            d.select_ssse()
            results[tag] = d.read_holder(photo=False).name if tag == "b" else \
                d.pin_tries_left().__str__()
        except ReaderError as exc:
            results[tag] = f"error {exc}"

    threads = [threading.Thread(target=read, args=("a", a)),
               threading.Thread(target=read, args=("b", b))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert results == {"a": "3", "b": "王五"}
    assert card_present(R0) and card_present(R1)

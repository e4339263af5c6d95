"""The PC/SC transport against the real pcscd with vpcd and a served echo card."""

from __future__ import annotations

import pytest

from reader.echo import ECHO_ATR, EchoCard
from reader.errors import NoCard, NoReader, ReaderBusy
from reader.pcsc import PcscTransport
from tests.reader.conftest import SLOT_READERS, ServeFn

pytestmark = pytest.mark.pcscd

R0, R1 = SLOT_READERS


def test_lists_vpcd_readers_and_the_served_card(pcsc: PcscTransport, serve: ServeFn) -> None:
    before = {r.name: r for r in pcsc.readers()}
    assert {R0, R1} <= set(before)
    assert not before[R0].card_present and before[R0].atr is None
    serve(EchoCard())
    after = {r.name: r for r in pcsc.readers()}
    assert after[R0].card_present and after[R0].atr == ECHO_ATR
    assert "present" in after[R0].state
    assert not after[R1].card_present


def test_round_trip_through_pcscd(pcsc: PcscTransport, serve: ServeFn) -> None:
    card = EchoCard()
    serve(card)
    with pcsc.connect(R0) as conn:
        assert conn.atr() == ECHO_ATR
        assert conn.protocol_name == "T=0"
        rsp = conn.transmit(bytes.fromhex("00B0000010"))
        assert rsp.sw == 0x9000 and rsp.data == bytes(range(16))
        rsp = conn.transmit(bytes.fromhex("00DA000003ABCDEF00"))
        assert rsp.data == bytes.fromhex("ABCDEF")
        assert conn.reset() == ECHO_ATR
        assert conn.reset(cold=True) == ECHO_ATR
    assert card.commands == 2


def test_exclusive_by_default(pcsc: PcscTransport, serve: ServeFn) -> None:
    serve(EchoCard())
    other = PcscTransport()
    try:
        with pcsc.connect(R0):
            with pytest.raises(ReaderBusy) as info:
                other.connect(R0)
            assert info.value.driver_code == -11
        with other.connect(R0, exclusive=False) as a, pcsc.connect(R0, exclusive=False) as b:
            assert a.transmit(bytes.fromhex("00B0000001")).ok
            assert b.transmit(bytes.fromhex("00B0000001")).ok
    finally:
        other.close()


def test_no_card_and_unknown_reader(pcsc: PcscTransport) -> None:
    with pytest.raises(NoCard) as info:
        pcsc.connect(R1)
    assert info.value.driver_code == -2
    with pytest.raises(NoReader, match=r"readers: .*Virtual PCD 00 00"):
        pcsc.connect("No Such Reader 00 00")


def test_events_report_insert_and_remove(pcsc: PcscTransport, serve: ServeFn) -> None:
    first = pcsc.wait_for_event(0.1)  # the initial picture: every reader
    assert {e.reader for e in first if e.kind == "reader_added"} >= {R0, R1}
    assert pcsc.wait_for_event(0.05) == []
    server = serve(EchoCard(), wait=False)
    events = []
    for _ in range(50):
        events += pcsc.wait_for_event(0.2)
        if events:
            break
    assert [(e.reader, e.kind, e.atr) for e in events] == [(R0, "inserted", ECHO_ATR)]
    server.remove()
    events = []
    for _ in range(50):
        events += pcsc.wait_for_event(0.2)
        if events:
            break
    assert [(e.reader, e.kind) for e in events] == [(R0, "removed")]

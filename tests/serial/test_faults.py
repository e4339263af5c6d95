"""Fault cases over RFC 2217: no card, stalled card, corrupted and dropped bytes, a pulled card.

Every failure must end in a clear reader error within bounded time, and the connection must
resynchronise (reset the card) so the next command works.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from apdu import atr as atr_codec
from apdu import commands as C
from reader.errors import CardRemoved, NoCard, ReaderTimeout, TransportError
from reader.serial import SerialConnection, SerialTransport
from tests.serial.conftest import Serve
from tests.serial.tinycard import FCI, TinyCard

pytestmark = pytest.mark.timeout(60)
Open = Callable[..., SerialConnection]

#: TC2 = 2: WT = 1920 etu = 0.2 s at 9600 baud, so timeouts come quickly.
FAST_ATR = atr_codec.build(bytes.fromhex("00814A44468660519900 0001AC"), (0,), tc2=2)
#: SELECT SSSE by name goes out as 5 header + 15 data bytes (with the ACK in between).
SELECT_CHARS = 20


def test_no_card_is_no_atr(serve_card: Serve) -> None:
    transport = SerialTransport(serve_card(no_atr=True), latency=0.25)
    with pytest.raises(NoCard, match="no answer to reset") as err:
        transport.connect(transport.name)
    assert err.value.driver_code == -2
    [info] = transport.readers()
    assert not info.card_present


def test_stalled_card_times_out_then_resyncs(serve_card: Serve, open_reader: Open) -> None:
    card = TinyCard(FAST_ATR)
    conn = open_reader(serve_card(card, stall_after=3), latency=0.25)
    with pytest.raises(ReaderTimeout, match="card was reset") as err:
        conn.transmit(C.select_ssse())
    assert err.value.driver_code == -4
    assert card.resets == 1
    assert conn.transmit(C.select_ssse()).data == FCI


def test_corrupted_procedure_byte_is_a_transport_error_then_resync(serve_card: Serve,
                                                                   open_reader: Open) -> None:
    card = TinyCard(FAST_ATR)
    # byte 0 after the ATR is the ACK to the SELECT header: flipped, it is no procedure byte
    conn = open_reader(serve_card(card, corrupt_byte_at=0), latency=0.25)
    with pytest.raises(TransportError, match="invalid procedure byte"):
        conn.transmit(C.select_ssse())
    assert card.resets == 1
    assert conn.transmit(C.select_ssse()).data == FCI


def test_corrupted_status_byte(serve_card: Serve, open_reader: Open) -> None:
    card = TinyCard(FAST_ATR)
    # SELECT EF05 (7 bytes): ACK, then SW1 SW2 → byte 1 is SW1
    conn = open_reader(serve_card(card, corrupt_byte_at=1), latency=0.25)
    with pytest.raises(TransportError):
        conn.transmit_raw(C.select_ef(C.EF05).to_bytes())
    assert conn.transmit(C.select_ssse()).sw == 0x9000


def test_dropped_byte_times_out_then_resyncs(serve_card: Serve, open_reader: Open) -> None:
    card = TinyCard(FAST_ATR)
    conn = open_reader(serve_card(card, drop_byte_at=2), latency=0.25)  # SW2 of the first answer
    with pytest.raises(ReaderTimeout):
        conn.transmit_raw(C.select_ef(C.EF05).to_bytes())
    assert card.resets == 1
    assert conn.transmit(C.select_ssse()).data == FCI


def test_card_removed_mid_command(serve_card: Serve, open_reader: Open) -> None:
    url = serve_card(TinyCard(FAST_ATR), remove_after=SELECT_CHARS // 2)
    conn = open_reader(url, latency=0.25)
    with pytest.raises(CardRemoved) as err:
        conn.transmit(C.select_ssse())
    assert err.value.driver_code == -2
    with pytest.raises(CardRemoved):
        conn.transmit(C.select_ssse())
    [info] = SerialTransport(url).readers()  # no connection open on this transport
    assert info.card_present  # the reader is back; the next session works
    conn.disconnect()
    again = open_reader(url)
    assert again.transmit(C.select_ssse()).data == FCI


def test_removal_is_reported_as_an_event(serve_card: Serve) -> None:
    transport = SerialTransport(serve_card(TinyCard(FAST_ATR), remove_after=3), latency=0.25)
    conn = transport.connect(transport.name)
    try:
        first = transport.wait_for_event(timeout=0)
        assert [e.kind for e in first] == ["reader_added", "inserted"]  # from the connection
        assert transport.wait_for_event(timeout=0) == []
        with pytest.raises(CardRemoved):
            conn.transmit(C.select_ssse())
        assert [e.kind for e in transport.wait_for_event(timeout=1)] == ["removed"]
    finally:
        conn.disconnect()


def test_resync_while_the_card_is_still_talking(serve_card: Serve, open_reader: Open) -> None:
    # the ACK of a 255-byte GET CHALLENGE is corrupted: the reader gives up at once and resets
    # while the card is still sending (≈ 0.3 s of data at 9600 baud); the card must fall
    # silent on reset so that the ATR that follows arrives clean
    card = TinyCard(FAST_ATR)
    conn = open_reader(serve_card(card, corrupt_byte_at=0), latency=0.25)
    with pytest.raises(TransportError, match="card was reset"):
        conn.transmit_raw(bytes.fromhex("00840000FF"))
    assert conn.atr() == FAST_ATR
    assert conn.transmit(C.select_ssse()).data == FCI


def test_endless_null_bytes_are_bounded(serve_card: Serve, open_reader: Open) -> None:
    card = TinyCard(FAST_ATR, delay=1.5)
    conn = open_reader(serve_card(card, null_after=0.05), latency=0.25, exchange_timeout=0.5)
    with pytest.raises(ReaderTimeout, match="did not finish in time"):
        conn.transmit(C.verify(None))

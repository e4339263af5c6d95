"""The served card on a pseudo-terminal: no modem lines, reset = flushing the output queue."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from apdu import commands as C
from reader.errors import CardRemoved, NoCard
from reader.serial import SerialConnection, SerialTransport
from tests.serial.conftest import Serve
from tests.serial.tinycard import FCI, TinyCard

pytestmark = pytest.mark.timeout(60)
Open = Callable[..., SerialConnection]


def test_card_on_a_pty(serve_card: Serve, open_reader: Open) -> None:
    card = TinyCard()
    path = serve_card(card, url="pty")
    assert path.startswith("/dev/")
    conn = open_reader(path + "?reset=flush")
    assert conn.atr() == card.atr()
    assert conn.transmit(C.select_ssse()).data == FCI
    assert conn.transmit(C.select_ef(C.EF05)).sw == 0x9000
    assert conn.transmit(C.read_record_by_tag(0x07)).data[2:] == b"X00000019"
    assert conn.transmit(C.verify("123456")).sw == 0x9000
    conn.reset()
    assert card.resets == 1
    assert conn.transmit(C.verify(None)).sw == 0x63C3


def test_pty_reconnects_and_sees_no_card(serve_card: Serve, open_reader: Open) -> None:
    path = serve_card(TinyCard(), url="pty")
    for _ in range(2):
        conn = open_reader(f"serial:{path}?reset=flush&echo=1")
        assert conn.transmit(C.select_ssse()).sw == 0x9000
        conn.disconnect()
    empty = serve_card(TinyCard(), url="pty", no_atr=True)
    transport = SerialTransport(empty, reset_line="flush", latency=0.1)
    with pytest.raises(NoCard):
        transport.connect(transport.name)


def test_card_pulled_on_a_pty(serve_card: Serve, open_reader: Open) -> None:
    path = serve_card(TinyCard(), url="pty", remove_after=8)
    conn = open_reader(path + "?reset=flush", latency=0.25)
    with pytest.raises(CardRemoved):
        conn.transmit(C.select_ssse())

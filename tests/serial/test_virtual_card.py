"""The project's virtual card (card.cos.VirtualCard, T=0) served and read over a serial line.

These tests need ``card`` (tests may wire any layers; ``reader`` itself never imports it).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from apdu import codec
from apdu import commands as C
from card.cos import VirtualCard
from card.faults import FaultPlan
from card.issue import Holder, issue
from reader.errors import CardRemoved, NoCard
from reader.serial import SerialConnection, SerialTransport
from tests.serial.conftest import Serve

pytestmark = pytest.mark.timeout(60)
Open = Callable[..., SerialConnection]
FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "cards"
PIN = "123456"
#: Where the line rate is not what a test is about, the card and the reader talk at 115200
#: baud (F=372, D=1) instead of the default 9600: the same characters, less wire time. The
#: 9600 8E2 line and the PPS switch are proved at their real speeds in test_rfc2217.py.
FAST = {"baud": 115200}


def _issued(generation: str) -> tuple[dict[str, Any], str]:
    body = "11010519491231002"
    ssn = body + codec.id_check_digit(body)
    done = issue(Holder(name="张三", ssn=ssn), bank="ICBC", generation=generation, pin=PIN)
    return done.doc, done.card_number


def _record(conn: SerialConnection, tag: int) -> bytes:
    rsp = conn.transmit(C.read_record_by_tag(tag))
    assert rsp.sw == 0x9000, f"tag {tag:02X}: {rsp.sw:04X}"
    assert rsp.data[0] == tag and rsp.data[1] == len(rsp.data) - 2
    return rsp.data[2:]


def test_reads_an_issued_200_card(serve_card: Serve, open_reader: Open) -> None:
    doc, card_number = _issued("2.00")
    card = VirtualCard.from_doc(doc, t0=True)
    conn = open_reader(serve_card(card, **FAST), **FAST)
    assert conn.atr() == card.atr()
    select = conn.transmit(C.select_ssse())
    assert select.sw == 0x9000 and select.data[:2] == b"\x6f\x1c"
    assert conn.transmit(C.select_ef(C.EF05)).sw == 0x9000
    assert _record(conn, 0x03) == b"2.00"
    assert _record(conn, 0x07).decode() == card_number
    assert conn.transmit(C.select_ef(C.EF06)).sw == 0x9000
    assert codec.an_decode(_record(conn, 0x09)) == "张三"
    assert conn.transmit(C.verify(None)).sw == 0x63C3
    assert conn.transmit(C.verify("000000")).sw == 0x63C2
    assert conn.transmit(C.verify(PIN)).sw == 0x9000


def test_300_card_guards_ef06(serve_card: Serve, open_reader: Open) -> None:
    doc, _ = _issued("3.00")
    conn = open_reader(serve_card(VirtualCard.from_doc(doc, t0=True), **FAST), **FAST)
    assert conn.transmit(C.select_ssse()).sw == 0x9000
    assert conn.transmit(C.select_ef(C.EF05)).sw == 0x9000
    assert _record(conn, 0x03) == b"3.00"
    assert conn.transmit(C.select_ef(C.EF06)).sw == 0x9000
    assert conn.transmit(C.read_record_by_tag(0x08)).sw == 0x6982


def test_a_t1_card_cannot_be_served_on_a_t0_line(serve_card: Serve) -> None:
    doc, _ = _issued("2.00")
    with pytest.raises(ValueError, match="T=0"):
        serve_card(VirtualCard.from_doc(doc, t0=False))


def test_card_pulled_inside_the_card(serve_card: Serve, open_reader: Open) -> None:
    doc, _ = _issued("2.00")
    card = VirtualCard.from_doc(doc, t0=True, faults=FaultPlan())
    url = serve_card(card)
    conn = open_reader(url, latency=0.1)
    assert conn.transmit(C.select_ssse()).sw == 0x9000
    card.faults.pull_at(0)
    with pytest.raises(CardRemoved):
        conn.transmit(C.select_ef(C.EF05))
    conn.disconnect()
    transport = SerialTransport(url, latency=0.1)
    with pytest.raises(NoCard):  # the card is out until it is inserted again
        transport.connect(transport.name)
    card.insert()
    again = transport.connect(transport.name)
    try:
        assert again.transmit(C.select_ssse()).sw == 0x9000
    finally:
        again.disconnect()


#: fixtures/cards/make_fixtures.py: file → (generation, SSSE PIN, tries, locked, SSN, name).
CAST = {
    "zhang-san": ("3.00", "246810", 3, False, "370802198001011235", "张三"),
    "li-si": ("3.00", "123456", 3, False, "370802198505050529", "李四"),
    "wang-wu": ("2.00", "135790", 3, False, "370826195507080016", "王五"),
    "maimaiti": ("3.00", "112233", 3, False, "37088119781122003X", None),
    "zhao-min": ("2.00", "975310", 3, True, "370811199203140028", "赵敏"),
    "sun-li": ("3.00", "202020", 6, False, "370802198808080047", "孙丽"),
}


def _fixture_cards() -> list[str]:
    return [name for name in CAST if (FIXTURES / f"{name}.json").exists()]


@pytest.mark.parametrize("name", _fixture_cards())
def test_fixture_cards_over_serial(name: str, serve_card: Serve, open_reader: Open) -> None:
    generation, pin, tries, locked, ssn, holder = CAST[name]
    doc = json.loads((FIXTURES / f"{name}.json").read_text("utf-8"))
    card = VirtualCard.from_doc(doc, t0=True)  # in memory: the fixture file is not touched
    conn = open_reader(serve_card(card, **FAST), **FAST)
    assert conn.atr() == card.atr()
    assert conn.transmit(C.select_ssse()).sw == 0x9000
    assert conn.transmit(C.select_ef(C.EF05)).sw == 0x9000
    assert _record(conn, 0x03).decode() == generation
    assert codec.card_number_valid(_record(conn, 0x07).decode())
    assert conn.transmit(C.select_ef(C.EF06)).sw == 0x9000
    if generation == "3.00":  # EF06 needs EXTERNAL AUTHENTICATE with RKSSSE first
        assert conn.transmit(C.read_record_by_tag(0x08)).sw == 0x6982
    else:
        assert _record(conn, 0x08).decode() == ssn
        assert holder is not None and codec.an_decode(_record(conn, 0x09)) == holder
    if locked:
        assert conn.transmit(C.verify(pin)).sw == 0x6983
        return
    assert conn.transmit(C.verify(None)).sw == 0x63C0 | tries
    wrong = "000000" if pin != "000000" else "111111"
    assert conn.transmit(C.verify(wrong)).sw == 0x63C0 | (tries - 1)
    assert conn.transmit(C.verify(pin)).sw == 0x9000
    conn.reset()
    assert conn.transmit(C.select_ssse()).sw == 0x9000
    assert conn.transmit(C.verify(None)).sw == 0x63C0 | tries  # reset forgets the PIN


def test_pull_mid_verify_still_costs_the_try(serve_card: Serve, open_reader: Open) -> None:
    """spec/card.md §7: the counter is decremented durably before the answer; a pull in
    between must not buy an extra guess, over a serial line as anywhere."""
    doc, _ = _issued("2.00")
    card = VirtualCard.from_doc(doc, t0=True, faults=FaultPlan())
    url = serve_card(card)
    conn = open_reader(url, latency=0.25)
    assert conn.transmit(C.select_ssse()).sw == 0x9000
    card.faults.pull_at(0, step="pin.decremented")
    with pytest.raises(CardRemoved):
        conn.transmit(C.verify("000000"))
    conn.disconnect()
    card.insert()
    again = open_reader(url)
    assert again.transmit(C.select_ssse()).sw == 0x9000
    assert again.transmit(C.verify(None)).sw == 0x63C2

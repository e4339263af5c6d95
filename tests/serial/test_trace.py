"""Traces work over a serial reader as over any transport: record, mask, replay."""

from __future__ import annotations

import io
from collections.abc import Callable

import pytest

from apdu import commands as C
from reader.errors import TransportError
from reader.serial import SerialConnection
from reader.trace import TraceWriter, parse_trace, pin_filler, replay_check
from tests.serial.conftest import Serve
from tests.serial.tinycard import TinyCard

pytestmark = pytest.mark.timeout(60)
Open = Callable[..., SerialConnection]


def test_record_and_replay_a_serial_session(serve_card: Serve, open_reader: Open) -> None:
    conn = open_reader(serve_card(TinyCard()))
    out = io.StringIO()
    conn.add_observer(TraceWriter(out, reader=conn.reader))
    assert conn.transmit(C.select_ssse()).sw == 0x9000
    assert conn.transmit(C.select_ef(C.EF05)).sw == 0x9000
    assert conn.transmit(C.read_record_by_tag(0x07)).sw == 0x9000
    assert conn.transmit(C.verify("123456")).sw == 0x9000
    text = out.getvalue()
    assert "123456" not in text  # VERIFY data is masked
    assert "00C00000" in text.replace(" ", "")  # TPDU level: the GET RESPONSE is recorded
    conn.reset()
    report = replay_check(parse_trace(text), conn, secrets=pin_filler("123456"))
    assert report.ok, str(report)
    assert report.steps == 6  # SELECT + GET RESPONSE, SELECT EF05, READ 6Cxx + resend, VERIFY


def test_resync_after_a_fault_is_traced(serve_card: Serve, open_reader: Open) -> None:
    conn = open_reader(serve_card(TinyCard(), corrupt_byte_at=0), latency=0.25)
    out = io.StringIO()
    conn.add_observer(TraceWriter(out, reader=conn.reader))
    with pytest.raises(TransportError):
        conn.transmit(C.select_ssse())
    assert "** warm-reset=" + conn.atr().hex().upper() in out.getvalue()

"""A card served over RFC 2217, read through pyserial ``rfc2217://`` by SerialTransport."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from apdu import atr as atr_codec
from apdu import commands as C
from reader.errors import NoCard, NoReader, ReaderBusy, ReaderError, TransportError
from reader.serial import SerialConnection, SerialTransport, split_options
from reader.serial_device import serve, serve_in_thread
from tests.serial.conftest import Serve
from tests.serial.tinycard import FCI, RECORDS, TinyCard

pytestmark = pytest.mark.timeout(60)
Open = Callable[..., SerialConnection]


def _read_card(conn: SerialConnection) -> dict[str, bytes]:
    """SELECT SSSE → EF05 records → GET CHALLENGE → EF06 records (spec/card.md §5)."""
    out: dict[str, bytes] = {}
    rsp = conn.transmit(C.select_ssse())
    assert rsp.sw == 0x9000
    out["fci"] = rsp.data
    assert conn.transmit(C.select_ef(C.EF05)).sw == 0x9000
    for tag in (0x01, 0x03, 0x07):
        rsp = conn.transmit(C.read_record_by_tag(tag))  # Le 00 → 6Cxx → resend
        assert rsp.sw == 0x9000
        out[f"ef05/{tag:02x}"] = rsp.data
    challenge = conn.transmit(C.get_challenge(8))
    assert challenge.sw == 0x9000 and len(challenge.data) == 8
    assert conn.transmit(C.select_ef(C.EF06)).sw == 0x9000
    for tag in (0x08, 0x09):
        out[f"ef06/{tag:02x}"] = conn.transmit(C.read_record_by_tag(tag)).data
    return out


def _expected() -> dict[str, bytes]:
    out = {"fci": FCI}
    for fid, name in ((0xEF05, "ef05"), (0xEF06, "ef06")):
        for tag, value in RECORDS[fid]:
            out[f"{name}/{tag:02x}"] = bytes([tag, len(value)]) + value
    return out


def test_reads_the_card_over_rfc2217(serve_card: Serve, open_reader: Open) -> None:
    card = TinyCard()
    conn = open_reader(serve_card(card))
    assert conn.atr() == card.atr()
    assert conn.reader.startswith("serial:rfc2217://127.0.0.1:")
    assert _read_card(conn) == _expected()
    # the card really saw T=0 TPDUs: a 6Cxx resend and a GET RESPONSE after 61xx
    assert bytes.fromhex("00B2010000") in card.commands
    assert any(c[1] == 0xC0 for c in card.commands)
    assert conn.stats.to_card > 0 and conn.stats.from_card > len(card.atr())


def test_pin_verify_and_wrong_pin(serve_card: Serve, open_reader: Open) -> None:
    conn = open_reader(serve_card())
    assert conn.transmit(C.verify(None)).sw == 0x63C3
    assert conn.transmit(C.verify("654321")).sw == 0x63C2
    assert conn.transmit(C.verify("123456")).sw == 0x9000
    assert conn.transmit(C.verify(None)).sw == 0x9000
    conn.reset()
    assert conn.transmit(C.verify(None)).sw == 0x63C3  # reset forgets the verified PIN


def test_echo_is_cancelled_or_absent(serve_card: Serve, open_reader: Open) -> None:
    for device_echo, reader_echo in ((True, "auto"), (False, "auto"), (True, True),
                                     (False, False)):
        conn = open_reader(serve_card(echo=device_echo), echo=reader_echo)
        assert conn.transmit(C.select_ssse()).data == FCI
        conn.disconnect()


def test_echo_expected_but_missing_is_a_clean_timeout(serve_card: Serve,
                                                      open_reader: Open) -> None:
    conn = open_reader(serve_card(echo=False), echo=True, latency=0.1)
    with pytest.raises(ReaderError):
        conn.transmit(C.select_ssse())


def test_single_byte_procedure_mode(serve_card: Serve, open_reader: Open) -> None:
    conn = open_reader(serve_card(byte_by_byte=True))
    assert _read_card(conn) == _expected()


def test_null_bytes_keep_a_slow_card_alive(serve_card: Serve, open_reader: Open) -> None:
    # TC2 = 1: WT = 960 etu = 0.1 s at 9600 baud; the card needs 0.4 s per command
    atr = atr_codec.build(bytes(13), (0,), tc2=1)
    conn = open_reader(serve_card(TinyCard(atr, delay=0.4), null_after=0.05), latency=0.1)
    assert conn.transmit(C.select_ssse()).data == FCI


def test_slow_card_without_null_bytes_times_out(serve_card: Serve, open_reader: Open) -> None:
    atr = atr_codec.build(bytes(13), (0,), tc2=1)
    card = TinyCard(atr, delay=0.5)
    conn = open_reader(serve_card(card, null_after=0), latency=0.1)
    with pytest.raises(ReaderError, match="no character from the card"):
        conn.transmit(C.verify(None))


def test_a_served_card_asks_for_time_by_default(serve_card: Serve, open_reader: Open) -> None:
    # a command slower than WT + the link latency (a durable write on a slow disk): the
    # card sends NULL bytes every half WT of its own accord, as a real T=0 card does
    atr = atr_codec.build(bytes(13), (0,), tc2=1)
    conn = open_reader(serve_card(TinyCard(atr, delay=0.5)), latency=0.1)
    assert conn.transmit(C.select_ssse()).data == FCI


def test_inverse_convention_card(serve_card: Serve, open_reader: Open) -> None:
    atr = atr_codec.build(bytes.fromhex("00814A44468660519900 0001AC"), convention="inverse")
    assert atr[0] == 0x3F
    conn = open_reader(serve_card(TinyCard(atr)))
    assert conn.atr() == atr
    assert conn._port.parity == "O"
    assert _read_card(conn) == _expected()


def test_wrong_parity_garbles_the_line(serve_card: Serve, open_reader: Open) -> None:
    conn = open_reader(serve_card(), parity="O", latency=0.1)  # a direct card wants 8E2
    with pytest.raises(ReaderError):
        conn.transmit(C.select_ssse())


def test_pps_switches_to_the_cards_rate(serve_card: Serve, open_reader: Open) -> None:
    atr = atr_codec.build(bytes(13), (0,), ta1=0x13)  # F=372, D=4 → 38400 baud
    conn = open_reader(serve_card(TinyCard(atr)), pps=True)
    assert conn.rate == 38400
    assert conn._port.baudrate == 38400
    assert _read_card(conn) == _expected()


def test_card_refusing_pps_is_reset_and_used_at_the_default_rate(serve_card: Serve,
                                                                 open_reader: Open) -> None:
    atr = atr_codec.build(bytes(13), (0,), ta1=0x13)
    card = TinyCard(atr)
    conn = open_reader(serve_card(card, pps=False), pps=True, latency=0.1)
    assert conn.rate == 9600
    assert card.resets >= 1
    assert conn.transmit(C.select_ssse()).data == FCI


def test_without_pps_the_default_rate_is_kept(serve_card: Serve, open_reader: Open) -> None:
    atr = atr_codec.build(bytes(13), (0,), ta1=0x13)
    conn = open_reader(serve_card(TinyCard(atr)))
    assert conn.rate == 9600
    assert conn.transmit(C.select_ssse()).sw == 0x9000


def test_dtr_reset_line_active_low(serve_card: Serve, open_reader: Open) -> None:
    url = serve_card(reset_line="dtr", reset_active_high=False)
    conn = open_reader(url + "?reset=dtr&reset_active=low")
    assert conn.transmit(C.select_ssse()).sw == 0x9000


def test_wrong_reset_polarity_sees_no_card(serve_card: Serve) -> None:
    url = serve_card()
    transport = SerialTransport(url, reset_active_high=False, latency=0.1)
    with pytest.raises(NoCard):
        transport.connect(transport.name)


def test_readers_lists_the_one_reader_with_its_card(serve_card: Serve) -> None:
    card = TinyCard()
    transport = SerialTransport(serve_card(card))
    [info] = transport.readers()
    assert info.name == transport.name and info.card_present and info.atr == card.atr()
    conn = transport.connect(transport.name)
    try:
        [info] = transport.readers()
        assert info.state == "connected"
        with pytest.raises(ReaderBusy, match="already connected"):
            transport.connect(transport.name)
    finally:
        conn.disconnect()


def test_wait_for_event_reports_the_card(serve_card: Serve) -> None:
    transport = SerialTransport(serve_card(), poll_interval=0.1)
    events = transport.wait_for_event(timeout=5)
    assert [e.kind for e in events] == ["reader_added", "inserted"]
    assert events[1].atr == TinyCard().atr()
    assert transport.wait_for_event(timeout=0.1) == []


def test_unknown_reader_and_closed_port() -> None:
    transport = SerialTransport("rfc2217://127.0.0.1:1")
    assert transport.readers() == []
    with pytest.raises(NoReader):
        transport.connect(transport.name)
    with pytest.raises(NoReader):
        transport.connect("serial:/dev/other")


def test_url_options_are_split_from_pyserials() -> None:
    url, options = split_options(
        "serial:rfc2217://h:1?reset=dtr&reset_active=low&baud=19200&parity=o&stopbits=1"
        "&pps=1&echo=0&latency=0.5&atr_timeout=2&exchange_timeout=9&logging=debug"
    )
    assert url == "rfc2217://h:1?logging=debug"
    assert options == {
        "reset_line": "dtr", "reset_active_high": False, "baud": 19200, "parity": "O",
        "stopbits": 1, "pps": True, "echo": False, "latency": 0.5, "atr_timeout": 2.0,
        "exchange_timeout": 9.0,
    }
    transport = SerialTransport("serial:loop://?baud=19200")
    assert transport.name == "serial:loop://" and transport.baud == 19200
    with pytest.raises(ValueError, match="pps"):
        split_options("loop://?pps=maybe")
    with pytest.raises(NoReader, match="reset must be"):
        SerialTransport("loop://?reset=break")
    with pytest.raises(NoReader, match="baud"):
        SerialTransport.from_name("serial:loop://?baud=fast")
    with pytest.raises(NoReader):
        SerialTransport.from_name("pcsc:Virtual PCD 00 00")


def test_malformed_tpdu_is_a_transport_error(serve_card: Serve, open_reader: Open) -> None:
    conn = open_reader(serve_card())
    with pytest.raises(TransportError):
        conn.transmit_raw(b"\x00\xb2")


def test_events_when_the_device_goes_away_and_comes_back() -> None:
    url, stop, thread = serve_in_thread(TinyCard(), "rfc2217://127.0.0.1:0")
    transport = SerialTransport(url, poll_interval=0.05, latency=0.1)
    try:
        assert [e.kind for e in transport.wait_for_event(5)] == ["reader_added", "inserted"]
    finally:
        stop.set()
        thread.join(5)
    assert [e.kind for e in transport.wait_for_event(5)] == ["removed", "reader_removed"]
    assert transport.readers() == []
    other = atr_codec.build(bytes(13), (0,), tc2=3)
    _, stop, thread = serve_in_thread(TinyCard(other), url)  # same port, another card
    try:
        events = transport.wait_for_event(5)
        assert [e.kind for e in events] == ["reader_added", "inserted"]
        assert events[1].atr == other
    finally:
        stop.set()
        thread.join(5)


def test_serve_rejects_bad_arguments() -> None:
    stop = threading.Event()
    stop.set()
    cases: list[tuple[str, dict[str, Any]]] = [
        ("tcp://127.0.0.1:1", {}), ("rfc2217://127.0.0.1", {}),
        ("pty", {"reset_line": "cts"}), ("pty", {"parity": "M"}),
    ]
    for url, options in cases:
        with pytest.raises(ValueError):
            serve(TinyCard(), url, stop, **options)


def test_pty_path_is_printed_when_nobody_asks(capsys: pytest.CaptureFixture[str]) -> None:
    stop = threading.Event()
    thread = threading.Thread(target=serve, args=(TinyCard(), "pty", stop), daemon=True)
    thread.start()
    try:
        for _ in range(100):
            if capsys.readouterr().out.startswith("/dev/"):
                break
            stop.wait(0.02)
        else:
            raise AssertionError("the pty path was not printed")
    finally:
        stop.set()
        thread.join(5)

"""APDU traces: the documented format, masking, replay as a card and as a test fixture."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apdu.codec import pin_encode
from apdu.commands import verify
from reader.echo import ECHO_ATR, EchoCard
from reader.trace import (
    ReplayError,
    TraceFormatError,
    TraceReplayCard,
    TraceWriter,
    load_trace,
    masked_hex,
    parse_trace,
    pin_filler,
    replay_check,
)
from reader.virtual import VirtualTransport
from tests.reader.cards import PinCard

USER = "Virtual Card 0"

SESSION = [
    bytes.fromhex("00A404000F7378312E73682EC9E7BBE1B1A3D5CF"),  # SELECT SSSE (case 3)
    bytes.fromhex("00B0000008"),
    bytes.fromhex("0084000008"),  # GET CHALLENGE: random answer
    bytes.fromhex("00DA000002ABCD00"),  # case 4: 61xx + GET RESPONSE on the wire
]


def record(card: EchoCard, pin: str | None = None) -> str:
    t = VirtualTransport.with_cards(card)
    buf = io.StringIO()
    with t.connect(USER) as conn:
        writer = TraceWriter(buf, reader=USER)
        conn.add_observer(writer)
        for cmd in SESSION:
            conn.transmit(cmd)
        if pin is not None:
            conn.transmit(verify(pin))
        conn.reset()
        conn.transmit(bytes.fromhex("00B0000002"))
    return buf.getvalue()


def test_recorded_trace_has_the_documented_shape() -> None:
    text = record(PinCard(), pin="123456")
    lines = text.splitlines()
    assert lines[0] == "# sscard-trace 1" and lines[1] == f"# reader: {USER}"
    trace = parse_trace(text)
    assert trace.headers["reader"] == USER
    first_cmd, first_rsp = trace.exchanges()[0]
    assert first_cmd.data == SESSION[0] and first_rsp.data == b"\x61\x0f"
    select_line = next(ln for ln in lines if " >> 00A40400" in ln)
    assert select_line.endswith("; SELECT")
    assert any("<< 9000 ; 9000 success ; " in ln and ln.endswith(" ms") for ln in lines)
    assert any(" ** warm-reset=" + ECHO_ATR.hex().upper() in ln for ln in lines)
    times = [r.seconds for r in trace.records]
    assert times == sorted(times)


@settings(max_examples=60, deadline=None)
@given(st.from_regex(r"[0-9]{4,12}", fullmatch=True))
def test_pin_never_reaches_the_trace(pin: str) -> None:
    text = record(PinCard(pin=pin), pin=pin)
    verify_line = next(ln for ln in text.splitlines() if "; VERIFY" in ln)
    encoded = pin_encode(pin)
    header, body = verify_line.split(";")[0].split(">>")[1].split()
    assert header == "00200000"
    assert body == f"{len(encoded):02X}" + "XX" * len(encoded)  # nothing of the PIN is left


def test_masking_covers_change_and_reload() -> None:
    from apdu.commands import change_pin

    line = masked_hex(change_pin("123456", "654321").to_bytes())
    assert line.startswith("805E0100 ") and set(line[11:]) == {"X"}
    assert masked_hex(bytes.fromhex("00200000")) == "00200000"


def test_replay_card_reproduces_the_session(tmp_path: Path) -> None:
    original = PinCard()
    path = tmp_path / "session.trace"
    path.write_text(record(original, pin="123456"))
    replayed = TraceReplayCard.from_file(path)
    assert replayed.atr() == ECHO_ATR
    t = VirtualTransport.with_cards(replayed)
    with t.connect(USER) as conn:
        answers = [conn.transmit(c) for c in SESSION]
        assert answers[0].sw == 0x9000  # GET RESPONSE of 15 bytes replayed through T=0
        assert answers[3].data == bytes.fromhex("ABCD")
        assert conn.transmit(verify("123456")).sw == 0x9000
        conn.reset()
        assert conn.transmit(bytes.fromhex("00B0000002")).data == b"\x00\x01"
    assert replayed.mismatches == [] and replayed.done


def test_replay_card_answers_6f00_to_an_unexpected_command() -> None:
    card = TraceReplayCard(parse_trace(record(EchoCard())))
    assert card.transmit(bytes.fromhex("00B2010400")) == b"\x6f\x00"
    assert "expected 00A40400" in card.mismatches[0]
    assert not card.done


def test_replay_check_against_the_card_passes_and_catches_changes() -> None:
    trace = parse_trace(record(PinCard(), pin="123456"))
    t = VirtualTransport.with_cards(PinCard())
    with t.connect(USER) as conn, pytest.raises(ReplayError, match="VERIFY is masked"):
        replay_check(trace, conn)
    with t.connect(USER) as conn:
        report = replay_check(trace, conn, secrets=pin_filler("123456"))
    # everything matches but the random challenge
    assert report.steps == 8 and len(report.failures) == 1, str(report)
    assert "GET CHALLENGE answered" in report.failures[0]
    text = record(PinCard(), pin="123456")
    lines = text.splitlines()
    idx = next(i for i, ln in enumerate(lines) if "; GET CHALLENGE" in ln) + 1
    lines[idx] = lines[idx].replace(lines[idx].split()[2], ".." * 8 + "9000")
    report = replay_check(parse_trace("\n".join(lines)),
                          VirtualTransport.with_cards(PinCard()).connect(USER),
                          secrets=pin_filler("123456"))
    assert report.ok and report.steps == 8, str(report)
    wrong_pin = replay_check(parse_trace("\n".join(lines)),
                             VirtualTransport.with_cards(PinCard(pin="999999")).connect(USER),
                             secrets=pin_filler("123456"))
    assert len(wrong_pin.failures) == 1 and "VERIFY answered 63C2" in wrong_pin.failures[0]


def test_replay_check_directly_on_a_card_object() -> None:
    text = "# atr: 3B6800004543484F43415244\n0 >> 00B0000002\n0 << 00019000\n"
    assert replay_check(parse_trace(text), EchoCard()).ok
    assert not replay_check(parse_trace(text.replace("0001", "0002")), EchoCard()).ok


@pytest.mark.parametrize("text, where", [
    ("0.1 >> 00A4", "line 1: a command needs at least 4 bytes"),
    ("# c\n0.1 >> 00A4040G", "line 2: not hex"),
    ("x >> 00A40400", "line 1: bad time"),
    ("0.1 == 00A40400", "line 1: expected >>, <<, <~ or **"),
    ("0.1 ** Power On", "line 1: bad event"),
    ("0.1 << 90", "line 1: a response needs at least SW1 SW2"),
])
def test_format_errors_name_the_line(text: str, where: str) -> None:
    with pytest.raises(TraceFormatError, match=re.escape(where)):
        parse_trace(text)


def test_missing_trace_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(TraceFormatError, match="cannot read trace"):
        load_trace(tmp_path / "nope.trace")
    with pytest.raises(TraceFormatError, match="no ATR"):
        TraceReplayCard(parse_trace("0 >> 00B0000002\n0 << 9000"))


def test_channels_separate_two_cards_in_one_trace() -> None:
    t = VirtualTransport.with_cards(EchoCard(), EchoCard())
    buf = io.StringIO()
    writer = TraceWriter(buf, channels={"Virtual PSAM 0": "psam"})
    with t.connect(USER) as user, t.connect("Virtual PSAM 0") as psam:
        user.add_observer(writer)
        psam.add_observer(writer)
        user.transmit(bytes.fromhex("00B0000001"))
        psam.transmit(bytes.fromhex("00B0000003"))
    trace = parse_trace(buf.getvalue())
    assert [c.data.hex() for c, _ in trace.exchanges()] == ["00b0000001"]
    assert [r.data.hex() for _, r in trace.exchanges("psam")] == ["0001029000"]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.binary(min_size=4, max_size=40), st.binary(min_size=2, max_size=40)),
                max_size=8))
def test_any_exchange_round_trips_through_the_format(pairs: list[tuple[bytes, bytes]]) -> None:
    buf = io.StringIO()
    w = TraceWriter(buf)
    for cmd, rsp in pairs:
        w.on_command("r", cmd)
        w.on_response("r", cmd, rsp, 0.001)
    got = [(c.data, r.data) for c, r in parse_trace(buf.getvalue()).exchanges()]
    from reader.trace import is_secret as is_secret_bearing

    assert [(c, r) for (c, r), (gc, _) in zip(pairs, got, strict=True)
            if not is_secret_bearing(c)] == [(gc, gr) for (c, _), (gc, gr) in
                                              zip(pairs, got, strict=True)
                                              if not is_secret_bearing(c)]
    assert [r for _, r in got] == [r for _, r in pairs]


def test_traced_card_records_the_card_side() -> None:
    from reader.trace import TracedCard

    buf = io.StringIO()
    card = TracedCard(PinCard(), [TraceWriter(buf)], name="served")
    t = VirtualTransport.with_cards(card)
    with t.connect(USER) as conn:
        conn.transmit(verify("123456"))
        conn.transmit(bytes.fromhex("00B0000002"))
    trace = parse_trace(buf.getvalue())
    assert [r.event for r in trace.records if r.kind == "event"] == ["power-on", "warm-reset"]
    assert [c.hex for c, _ in trace.exchanges()] == ["0020000003XXXXXX", "00B0000002"]
    assert "123456" not in buf.getvalue()

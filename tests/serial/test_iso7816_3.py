"""Character-level pieces of ISO 7816-3: ATR framing, conventions, PPS, T=0 procedure bytes."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apdu import atr as atr_codec
from reader.iso7816_3 import (
    AtrAssembler,
    CharProtocolError,
    Convention,
    T0Transfer,
    atr_length,
    convention_of_ts,
    inverse,
    other_parity,
    pps_accepted,
    pps_check,
    pps_length,
    pps_request,
    rate_for,
    work_waiting_seconds,
)

SPEC_ATR = bytes.fromhex("3B6D000000814A444686605199000001AC")

_VALID_TA1 = [
    (fi << 4) | di
    for fi in (0, 1, 2, 3, 4, 5, 6, 9, 10, 11, 12, 13)
    for di in (1, 2, 3, 4, 5, 6, 7, 8, 9)
]


@st.composite
def atrs(draw: st.DrawFn) -> bytes:
    """Random valid ATRs built by apdu.atr (both conventions, T=0/T=1, optional globals)."""
    historical = draw(st.binary(max_size=15))
    protocols = draw(st.sampled_from([(0,), (1,), (0, 1), (1, 0), (0, 14)]))
    maybe_byte = st.none() | st.integers(0, 255)
    return atr_codec.build(
        historical,
        protocols,
        ta1=draw(st.none() | st.sampled_from(_VALID_TA1)),
        tb1=draw(maybe_byte),
        tc1=draw(maybe_byte),
        tc2=draw(st.none() | st.integers(1, 255)),
        convention=draw(st.sampled_from(["direct", "inverse"])),
    )


def _line_bytes(logical: bytes) -> bytes:
    """What a direct-convention UART receives for this (logical) ATR."""
    return inverse(logical) if logical[0] == 0x3F else logical


def _chunks(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    out, start = [], 0
    for p in [*points, len(data)]:
        out.append(data[start:p])
        start = p
    return out


# -- ATR framing -------------------------------------------------------------------------


def test_spec_atr_length_known_from_t0() -> None:
    assert atr_length(SPEC_ATR[:2]) == 17
    assert atr_length(SPEC_ATR[:1]) is None


def test_inverse_ts_reads_03_and_maps_back() -> None:
    assert inverse(b"\x3f") == b"\x03"
    assert convention_of_ts(0x03) is Convention.INVERSE
    assert convention_of_ts(0x3B) is Convention.DIRECT
    with pytest.raises(CharProtocolError):
        convention_of_ts(0x3C)


@given(st.binary(max_size=64))
def test_inverse_is_an_involution_and_matches_apdu(data: bytes) -> None:
    assert inverse(inverse(data)) == data
    assert inverse(data) == atr_codec.inverse_bytes(data)


@settings(max_examples=200)
@given(atrs(), st.lists(st.integers(0, 64), max_size=6))
def test_assembler_finds_the_end_of_any_atr_in_any_chunking(atr: bytes, cuts: list[int]) -> None:
    trailing = b"\x90\x00"
    assembler = AtrAssembler()
    left = b""
    for chunk in _chunks(_line_bytes(atr) + trailing, cuts):
        if assembler.complete:
            left += chunk
            continue
        left += assembler.feed(chunk)
    assert assembler.complete
    assert assembler.atr == atr
    assert left == trailing
    assert assembler.convention is (Convention.INVERSE if atr[0] == 0x3F else Convention.DIRECT)
    parsed = atr_codec.parse(assembler.atr)
    assert parsed.raw == atr


@given(atrs())
def test_atr_length_is_unknown_until_the_last_td(atr: bytes) -> None:
    total = atr_length(atr)
    assert total == len(atr)
    for cut in range(len(atr)):
        known = atr_length(atr[:cut])
        assert known is None or known == len(atr)


def test_assembler_rejects_a_bad_ts() -> None:
    with pytest.raises(CharProtocolError):
        AtrAssembler().feed(b"\x3a\x00")


# -- timing ----------------------------------------------------------------------------


def test_rates_and_waiting_time_from_the_standard() -> None:
    assert rate_for(9600, 372, 1) == 9600
    assert rate_for(9600, 372, 4) == 38400
    assert rate_for(9600, 512, 8) == 55800
    # WT = 960 * WI etu at F=372: 9600 etu = 1 s at 9600 baud with the default WI 10
    assert work_waiting_seconds(9600, 372, 10) == pytest.approx(1.0)
    assert work_waiting_seconds(9600, 744, 1) == pytest.approx(0.2)


def test_inverse_card_needs_the_other_parity() -> None:
    assert other_parity("E") == "O"
    assert other_parity("O") == "E"
    assert other_parity("N") == "N"


# -- PPS -------------------------------------------------------------------------------


def test_pps_request_known_answer_and_acceptance() -> None:
    request = pps_request(0, 0x13)
    assert request == bytes.fromhex("FF1013FC")
    assert pps_length(request[:2]) == 4
    pps_check(request)
    assert pps_accepted(request, request)
    # the card keeps the default rate: PPS1 absent in its answer
    assert not pps_accepted(request, bytes.fromhex("FF00FF"))
    with pytest.raises(CharProtocolError):
        pps_check(bytes.fromhex("FF1013FD"))


@given(st.integers(0, 15), st.sampled_from(_VALID_TA1))
def test_pps_round_trip(protocol: int, ta1: int) -> None:
    request = pps_request(protocol, ta1)
    assert pps_length(request) == len(request)
    pps_check(request)
    assert pps_accepted(request, request)


# -- T=0 procedure bytes -----------------------------------------------------------------


def _run_card(transfer: T0Transfer, card_bytes: list[int]) -> bytes:
    sent = bytearray()
    for b in card_bytes:
        sent += transfer.feed(b)
    return bytes(sent)


@st.composite
def outgoing_dialogues(draw: st.DrawFn) -> tuple[bytes, bytes, list[int]]:
    """A case-2 TPDU and a card that sends its data in random ACK / ~INS pieces with NULLs."""
    ins = draw(st.sampled_from([0xB0, 0xB2, 0xC0, 0x84, 0xCA]))
    data = draw(st.binary(min_size=1, max_size=40))
    sw = draw(st.sampled_from([b"\x90\x00", b"\x62\x81", b"\x63\xc2"]))
    tpdu = bytes([0x00, ins, 0x01, 0x04, len(data)])
    stream: list[int] = []
    i = 0
    while i < len(data):
        stream += [0x60] * draw(st.integers(0, 2))
        if draw(st.booleans()):
            stream += [ins ^ 0xFF, data[i]]
            i += 1
        else:
            stream += [ins, *data[i:]]
            i = len(data)
    stream += [0x60] * draw(st.integers(0, 2)) + list(sw)
    return tpdu, data + sw, stream


@settings(max_examples=150)
@given(outgoing_dialogues())
def test_outgoing_data_in_any_procedure_pattern(case: tuple[bytes, bytes, list[int]]) -> None:
    tpdu, expected, stream = case
    transfer = T0Transfer(tpdu)
    assert transfer.header == tpdu
    assert _run_card(transfer, stream) == b""
    assert transfer.done
    assert transfer.response == expected


@settings(max_examples=150)
@given(st.binary(min_size=1, max_size=40), st.lists(st.booleans(), min_size=40, max_size=40),
       st.integers(0, 3))
def test_incoming_data_in_any_procedure_pattern(data: bytes, singles: list[bool],
                                                nulls: int) -> None:
    ins = 0xDC
    tpdu = bytes([0x00, ins, 0x01, 0x04, len(data)]) + data
    transfer = T0Transfer(tpdu)
    received = bytearray()
    step = 0
    while len(received) < len(data):
        for _ in range(nulls):
            assert transfer.feed(0x60) == b""
        proc = ins ^ 0xFF if singles[step] else ins
        step += 1
        received += transfer.feed(proc)
    assert bytes(received) == data
    transfer.feed(0x90)
    transfer.feed(0x00)
    assert transfer.response == b"\x90\x00"


def test_case_1_gets_its_status_without_data() -> None:
    transfer = T0Transfer(bytes.fromhex("00200000"))
    assert transfer.header == bytes.fromhex("0020000000")
    _run_card(transfer, [0x63, 0xC3])
    assert transfer.response == bytes.fromhex("63C3")


def test_p3_zero_lets_the_card_send_256_bytes() -> None:
    transfer = T0Transfer(bytes.fromhex("00B0000000"))
    _run_card(transfer, [0xB0, *range(256), 0x90, 0x00])
    assert transfer.response is not None and len(transfer.response) == 258


@pytest.mark.parametrize(
    ("tpdu", "stream"),
    [
        (bytes.fromhex("00B2010405"), [0x12]),  # neither ACK, NULL nor SW1
        (bytes.fromhex("00B2010401"), [0xB2, 0x01, 0xB2]),  # ACK after all data
        (bytes.fromhex("00DC010401AA"), [0xDC, 0xDC]),  # ACK with nothing left to send
    ],
)
def test_garbled_procedure_bytes_are_errors(tpdu: bytes, stream: list[int]) -> None:
    transfer = T0Transfer(tpdu)
    with pytest.raises(CharProtocolError):
        _run_card(transfer, stream)


def test_invalid_tpdus() -> None:
    with pytest.raises(CharProtocolError):
        T0Transfer(b"\x00\xb2")
    with pytest.raises(CharProtocolError):
        T0Transfer(bytes.fromhex("0060000000"))  # INS 6X is not allowed under T=0
    with pytest.raises(CharProtocolError):
        T0Transfer(bytes.fromhex("00DC010403AA"))  # P3 says 3 data bytes, 1 given

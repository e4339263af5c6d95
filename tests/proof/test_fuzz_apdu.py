"""Fuzzing the APDU, TLV and ATR parsers with mutated *valid* input (ISO 7816-3 §8,
ISO 7816-4 §5.1, §5.2): a parser either raises :class:`apdu.ApduError` or returns a value
that re-encodes to bytes it parses back to the same value (crash-free and stable)."""

from __future__ import annotations

from hypothesis import example, given, settings
from hypothesis import strategies as st

from apdu import ApduError, CommandApdu, ResponseApdu, atr, tlv

commands = st.builds(
    CommandApdu, st.integers(0, 0xFE), st.integers(0, 0xFF), st.integers(0, 0xFF),
    st.integers(0, 0xFF), st.binary(max_size=300), st.none() | st.integers(1, 256))


@st.composite
def mutated(draw: st.DrawFn, base: st.SearchStrategy[bytes]) -> bytes:
    """``base`` bytes with a few byte flips, insertions, deletions or a truncation."""
    raw = bytearray(draw(base))
    for _ in range(draw(st.integers(0, 4))):
        kind = draw(st.sampled_from(("flip", "insert", "delete", "truncate", "set")))
        pos = draw(st.integers(0, max(0, len(raw))))
        if kind == "flip" and raw:
            raw[pos % len(raw)] ^= 1 << draw(st.integers(0, 7))
        elif kind == "set" and raw:
            raw[pos % len(raw)] = draw(st.sampled_from((0x00, 0x7F, 0x80, 0x81, 0x82, 0xFF)))
        elif kind == "insert":
            raw[pos:pos] = draw(st.binary(min_size=1, max_size=3))
        elif kind == "delete" and raw:
            del raw[pos % len(raw)]
        elif kind == "truncate":
            del raw[pos:]
    return bytes(raw)


@given(commands)
@settings(max_examples=200, deadline=None)
def test_command_round_trip(cmd: CommandApdu) -> None:
    assert CommandApdu.from_bytes(cmd.to_bytes()) == cmd


@given(mutated(commands.map(CommandApdu.to_bytes)))
@settings(max_examples=400, deadline=None)
@example(b"\x00\xa4\x04\x00\x00\x00\x01")          # extended marker with a truncated length
@example(b"\x00\xb0\x00\x00\x00\x00\x00\x00")      # extended Le with trailing byte
@example(b"")
def test_mutated_command_is_rejected_or_stable(raw: bytes) -> None:
    try:
        cmd = CommandApdu.from_bytes(raw)
    except ApduError as exc:
        assert 0x6000 <= exc.sw <= 0x6FFF
        return
    assert CommandApdu.from_bytes(cmd.to_bytes()) == cmd


@given(mutated(st.binary(max_size=40).map(lambda d: d + b"\x90\x00")))
@settings(max_examples=200, deadline=None)
def test_mutated_response_is_rejected_or_stable(raw: bytes) -> None:
    try:
        resp = ResponseApdu.from_bytes(raw)
    except ApduError:
        assert len(raw) < 2
        return
    assert resp.to_bytes() == raw


tlvs = st.recursive(
    st.builds(lambda tag, v: tlv.Tlv(tag, v),
              st.sampled_from([0x5A, 0x84, 0x88, 0x9F0C, 0x9F36, 0x57, 0x50, 0x87]),
              st.binary(max_size=140)),
    lambda kids: st.builds(lambda tag, cs: tlv.Tlv.of(tag, *cs),
                           st.sampled_from([0x6F, 0xA5, 0x70, 0x77, 0xBF0C]),
                           st.lists(kids, max_size=4)),
    max_leaves=10)


@given(st.lists(tlvs, max_size=4))
@settings(max_examples=200, deadline=None)
def test_tlv_round_trip(items: list[tlv.Tlv]) -> None:
    assert tlv.encode(tlv.decode(tlv.encode(items))) == tlv.encode(items)


@given(mutated(st.lists(tlvs, min_size=1, max_size=3).map(tlv.encode)))
@settings(max_examples=400, deadline=None)
@example(b"\x6f\x84\xff\xff\xff\xff")   # a length that claims 4 GiB
@example(b"\x9f")                       # a two-byte tag cut after its first byte
@example(b"\x6f\x03\x84\x05\x00")       # child longer than its parent
def test_mutated_tlv_is_rejected_or_stable(raw: bytes) -> None:
    try:
        items = tlv.decode(raw)
        for item in items:
            if item.constructed:
                item.children()
    except ApduError:
        return
    again = tlv.encode(items)
    assert tlv.decode(again) == items


@given(mutated(st.lists(st.tuples(st.integers(1, 0xFE), st.binary(max_size=30)), max_size=5)
               .map(lambda recs: b"".join(tlv.encode_simple(t, v) for t, v in recs))))
@settings(max_examples=300, deadline=None)
def test_mutated_simple_records_are_rejected_or_stable(raw: bytes) -> None:
    try:
        recs = tlv.decode_simple(raw)
    except ApduError:
        return
    assert tlv.decode_simple(b"".join(tlv.encode_simple(t, v) for t, v in recs)) == recs


atrs = st.builds(lambda hist, protos: atr.build(hist, protocols=protos),
                 st.binary(max_size=15), st.sampled_from([(0,), (1,), (0, 1)]))


@given(mutated(atrs))
@settings(max_examples=400, deadline=None)
@example(bytes.fromhex("3B6D00000081 4A444686605199 00000001AC".replace(" ", "")))
@example(bytes.fromhex("3BFF"))          # every interface byte announced, none present
def test_mutated_atr_is_rejected_or_parsed(raw: bytes) -> None:
    try:
        parsed = atr.parse(raw)
    except ApduError:
        return
    assert parsed.ts in (0x3B, 0x3F)
    assert isinstance(parsed.protocols, tuple)

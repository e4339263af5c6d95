"""BER-TLV (ISO 7816-4 §5.2) and the card's simple-TLV records (spec/card.md §4)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apdu import ApduError, tlv
from apdu.commands import SSSE_DF_NAME
from apdu.tlv import SimpleTlv, Tlv


@st.composite
def tags(draw: st.DrawFn, constructed: bool | None = None) -> int:
    cls = draw(st.integers(0, 3)) << 6
    cons = (draw(st.booleans()) if constructed is None else constructed) << 5
    if draw(st.booleans()):
        low = draw(st.integers(0, 30))
        first = cls | cons | low
        if first in (0x00, 0xFF):
            first = cls | cons | 1
        return first
    first = cls | cons | 0x1F
    if first == 0xFF:  # FF is never a first tag byte (ISO 7816-4 §5.2.2)
        first = 0xBF if cons else 0xDF
    n_more = draw(st.integers(1, 3))
    rest = [draw(st.integers(0x80, 0xFF)) for _ in range(n_more - 1)]
    rest.append(draw(st.integers(0x01, 0x7F)))
    return int.from_bytes(bytes([first, *rest]), "big")


primitive = st.builds(Tlv, tags(constructed=False), st.binary(max_size=300))


def _constructed(children: st.SearchStrategy[list[Tlv]]) -> st.SearchStrategy[Tlv]:
    return st.builds(lambda t, cs: Tlv.of(t, *cs), tags(constructed=True), children)


trees = st.recursive(primitive, lambda inner: _constructed(st.lists(inner, max_size=4)),
                     max_leaves=12)


@settings(max_examples=200, deadline=None)
@given(st.lists(trees, max_size=5))
def test_nested_round_trip(items: list[Tlv]) -> None:
    raw = tlv.encode(items)
    assert tlv.decode(raw) == items
    for item in items:
        if item.constructed:
            assert tlv.encode(item.children()) == item.value


@settings(max_examples=100, deadline=None)
@given(st.lists(trees, min_size=1, max_size=4),
       st.lists(st.binary(max_size=3).map(lambda b: bytes(x | 0xFF if x & 1 else 0
                                                          for x in b)), min_size=6, max_size=6))
def test_padding_between_objects_is_skipped(items: list[Tlv], pads: list[bytes]) -> None:
    raw = pads[0] + b"".join(t.to_bytes() + pads[i % 5 + 1] for i, t in enumerate(items))
    assert tlv.decode(raw) == items


@given(trees)
def test_walk_visits_every_object(item: Tlv) -> None:
    def count(t: Tlv) -> int:
        return 1 + sum(count(c) for c in t.children())

    assert len(list(tlv.walk(item.to_bytes()))) == count(item)
    for _, t in tlv.walk(item):
        assert tlv.find(item, t.tag) is not None


@given(st.integers(0, 0xFFFFFFFF))
def test_length_encoding_round_trip(n: int) -> None:
    enc = tlv.encode_length(n)
    assert len(enc) == (1 if n < 0x80 else 1 + (n.bit_length() + 7) // 8)
    raw = b"\x5a" + enc
    # decode reports the announced length exceeding the data, proving it read the length
    if n:
        with pytest.raises(ApduError, match=f"length {n} exceeds"):
            tlv.decode(raw)


def test_long_length_forms() -> None:
    for form in ("8105", "820005", "83000005", "8400000005"):
        assert tlv.decode(bytes.fromhex("5A" + form + "0102030405")) == [
            Tlv(0x5A, bytes.fromhex("0102030405"))
        ]


def test_indefinite_length_rejected_clearly() -> None:
    with pytest.raises(ApduError, match="indefinite"):
        tlv.decode(bytes.fromhex("6F800000"))


@pytest.mark.parametrize("hexstr", ["5A", "5A05AA", "9F", "9F8080", "5A85000000000001",
                                     "1F80808001 00"])
def test_malformed(hexstr: str) -> None:
    with pytest.raises(ApduError):
        tlv.decode(bytes.fromhex(hexstr))


def test_ssse_fci_known_answer() -> None:
    """spec/card.md §3: the FCI of SELECT SSSE."""
    for alg in (0x01, 0x03):
        fci = bytes.fromhex("6F1C840F") + SSSE_DF_NAME + bytes.fromhex(
            "A50988011E9F0C03860" + f"1{alg:02X}")
        top = tlv.decode(fci)
        assert len(top) == 1 and top[0].tag == 0x6F and len(top[0].value) == 0x1C
        name = tlv.find(fci, 0x6F, 0x84)
        assert name is not None and name.value == SSSE_DF_NAME
        assert name.value.decode("gbk") == "sx1.sh.社会保障"
        algorithm = tlv.find(fci, 0x6F, 0xA5, 0x9F0C, 0x86)
        assert algorithm is not None and algorithm.value == bytes([alg])
        sfi = tlv.find(fci, 0x88)
        assert sfi is not None and sfi.value == b"\x1e"
        assert tlv.find(fci, 0x6F, 0x9F0C).value == bytes.fromhex("860" + f"1{alg:02X}")  # type: ignore[union-attr]
        assert tlv.find(fci, 0x5A) is None
        dump = tlv.dump(fci)
        assert dump.splitlines()[0] == "6F (28)"
        assert f"    9F0C (3) 8601{alg:02X}" in dump.splitlines()


def test_tag_properties() -> None:
    assert Tlv(0x6F, b"").constructed
    assert not Tlv(0x84, b"").constructed
    assert Tlv(0x9F0C, b"").tag_hex == "9F0C"
    assert Tlv(0x84, b"\x01").children() == []
    for bad in (0x1F, 0x9F8C, 0x5F, 0, 0x1F8080808001, 0xFF01, 0xFF):
        with pytest.raises(ApduError):
            Tlv(bad, b"")


def test_find_path_and_find_all() -> None:
    raw = tlv.encode([Tlv.of(0x70, Tlv(0x5A, b"\x01"), Tlv(0x5A, b"\x02")),
                      Tlv.of(0x77, Tlv(0x5A, b"\x03"))])
    assert tlv.find(raw, 0x77, 0x5A) == Tlv(0x5A, b"\x03")
    assert tlv.find(raw, 0x5A) == Tlv(0x5A, b"\x01")
    assert [t.value for t in tlv.find_all(raw, 0x5A)] == [b"\x01", b"\x02", b"\x03"]
    assert tlv.find(raw, 0x70, 0x77) is None
    with pytest.raises(ApduError):
        tlv.find(raw)


def test_find_tolerates_unparsable_constructed_value() -> None:
    raw = tlv.encode([Tlv(0x70, b"\x5a\x09"), Tlv(0x5A, b"\x01")])
    assert tlv.find(raw, 0x5A) == Tlv(0x5A, b"\x01")


# --- simple-TLV -----------------------------------------------------------------------

records = st.lists(st.tuples(st.integers(1, 0xFE), st.binary(max_size=300)), max_size=6)


@settings(max_examples=200, deadline=None)
@given(records)
def test_simple_round_trip(recs: list[tuple[int, bytes]]) -> None:
    raw = b"".join(tlv.encode_simple(t, v) for t, v in recs)
    assert tlv.decode_simple(raw) == recs
    assert [SimpleTlv(t, v).to_bytes() for t, v in recs] == [tlv.encode_simple(t, v)
                                                             for t, v in recs]
    assert tlv.decode_simple_records(raw) == [SimpleTlv(t, v) for t, v in recs]


def test_simple_known_answers() -> None:
    assert tlv.encode_simple(0x07, b"X00000019") == bytes.fromhex("0709") + b"X00000019"
    assert tlv.encode_simple(0x30, bytes(255))[:4] == bytes.fromhex("30FF00FF")
    assert tlv.decode_simple(bytes.fromhex("0101AA FFFF 0200 0000")) == [(1, b"\xaa"), (2, b"")]


@pytest.mark.parametrize("hexstr", ["01", "0102AA", "01FF00", "01FF0003AA"])
def test_simple_malformed(hexstr: str) -> None:
    with pytest.raises(ApduError):
        tlv.decode_simple(bytes.fromhex(hexstr))


def test_simple_bad_tags() -> None:
    for tag in (0, 0xFF, 0x100):
        with pytest.raises(ApduError):
            tlv.encode_simple(tag, b"")
        with pytest.raises(ApduError):
            SimpleTlv(tag, b"")

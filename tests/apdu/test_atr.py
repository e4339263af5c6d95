"""ATR (ISO 7816-3 §8) and its social security historical bytes (spec/card.md §2)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apdu import ApduError, atr
from apdu.atr import InterfaceGroup

REAL_300 = bytes.fromhex("3B6D000000814A444686605199000001AC")

VALID_TA1 = [hi << 4 | lo for hi in (0, 1, 2, 3, 4, 5, 6, 9, 10, 11, 12, 13)
             for lo in (1, 2, 3, 4, 5, 6, 7, 8, 9)]
opt_byte = st.none() | st.integers(0, 0xFF)


@st.composite
def interface_chains(draw: st.DrawFn) -> list[InterfaceGroup]:
    n = draw(st.integers(1, 5))
    groups: list[InterfaceGroup] = []
    for i in range(n):
        last = i == n - 1
        ta = draw(st.none() | st.sampled_from(VALID_TA1)) if i == 0 else draw(opt_byte)
        t = draw(st.none() | st.integers(0, 15)) if last else draw(st.integers(0, 15))
        g = InterfaceGroup(ta, draw(opt_byte), draw(opt_byte), t)
        if i > 0 and g.empty:
            g = InterfaceGroup(0x00, None, None, None)
        groups.append(g)
    return groups


@settings(max_examples=300, deadline=None)
@given(interface_chains(), st.binary(max_size=15), st.sampled_from(["direct", "inverse"]))
def test_assemble_parse_round_trip(groups: list[InterfaceGroup], hist: bytes,
                                   convention: str) -> None:
    raw = atr.assemble(groups, hist, convention)
    parsed = atr.parse(raw)
    assert parsed.groups == tuple(groups)
    assert parsed.historical == hist
    assert parsed.convention == convention
    assert parsed.raw == raw
    offered = [g.t for g in groups if g.t is not None and g.t != 15]
    assert parsed.protocols == (tuple(dict.fromkeys(offered)) or (0,))
    needs_tck = any(g.t not in (None, 0) for g in groups)
    assert (parsed.tck is not None) == needs_tck
    for i, g in enumerate(groups, 1):
        assert (parsed.ta(i), parsed.tb(i), parsed.tc(i)) == (g.ta, g.tb, g.tc)
        assert (parsed.td(i) is None) == (g.t is None)
    # the same ATR as a direct-convention UART receives an inverse one off the line
    if convention == "inverse":
        line = atr.inverse_bytes(raw)
        assert line[0] == atr.TS_INVERSE_ON_LINE
        assert atr.parse(line) == parsed


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=15), st.lists(st.integers(0, 14), min_size=1, max_size=3),
       st.none() | st.sampled_from(VALID_TA1), opt_byte, opt_byte, opt_byte)
def test_build_parse(hist: bytes, protocols: list[int], ta1: int | None, tb1: int | None,
                     tc1: int | None, tc2: int | None) -> None:
    protocols = list(dict.fromkeys(protocols))
    parsed = atr.parse(atr.build(hist, protocols, ta1=ta1, tb1=tb1, tc1=tc1, tc2=tc2))
    assert parsed.protocols == tuple(protocols)
    assert parsed.historical == hist
    assert (parsed.ta(1), parsed.tb(1), parsed.tc(1)) == (ta1, tb1, tc1)
    if tc2 is not None:
        assert parsed.wi == tc2
    if ta1 is not None:
        assert parsed.fi == atr.FI_TABLE[ta1 >> 4]
        assert parsed.di == atr.DI_TABLE[ta1 & 0xF]


@given(st.integers(0, 0xFF))
def test_inverse_byte_is_an_involution(b: int) -> None:
    assert atr.inverse_byte(atr.inverse_byte(b)) == b


def test_inverse_byte_known_values() -> None:
    assert atr.inverse_byte(0x03) == 0x3F
    assert atr.inverse_byte(0x00) == 0xFF
    assert atr.inverse_byte(0x01) == 0x7F


def test_real_300_atr() -> None:
    parsed = atr.parse(REAL_300)
    assert parsed.convention == "direct"
    assert len(parsed.historical) == 13
    assert parsed.historical == bytes.fromhex("00814A444686605199000001AC")
    assert parsed.tb(1) == 0 and parsed.tc(1) == 0 and parsed.ta(1) is None
    assert parsed.protocols == (0,)
    assert parsed.tck is None
    assert (parsed.fi, parsed.di, parsed.wi) == (372, 1, 10)
    assert atr.area_code_prefix(parsed) == "5199"
    assert atr.area_code_prefix(REAL_300) == "5199"
    assert atr.card_serial(parsed) == bytes.fromhex("000001AC")
    assert atr.diversification_factor(parsed) == bytes.fromhex("86605199000001AC")
    assert atr.chip_supplier(parsed) == bytes.fromhex("0081")
    assert atr.card_maker(parsed) == bytes.fromhex("8660")
    assert atr.build(parsed.historical, tb1=0, tc1=0) == REAL_300


def test_t1_atr_with_tck() -> None:
    raw = bytes.fromhex("3B FE 91 00 FF 91 81 71 FE 40 00"
                        "41 28 00 01 11 00 00 00 00 00 00 00 00 00")
    # any real T=1 ATR has a TCK: append ours and parse
    x = 0
    for b in raw[1:]:
        x ^= b
    parsed = atr.parse(raw + bytes([x]))
    assert parsed.protocols == (1,)
    assert parsed.ta(1) == 0x91 and parsed.fi == 512 and parsed.di == 1
    assert parsed.tck == x
    with pytest.raises(ApduError, match="TCK"):
        atr.parse(raw + bytes([x ^ 1]))
    with pytest.raises(ApduError, match="TCK"):
        atr.parse(raw)


@pytest.mark.parametrize("hexstr", [
    "",
    "3A",  # bad TS
    "3B",  # no T0
    "3B6D0000",  # truncated historical bytes
    "3B10",  # TA1 missing
    "3B00FF",  # extra byte
    "3B1071",  # TA1 reserved Fi (index 7)
    "3B1010",  # TA1 reserved Di (index 0)
])
def test_malformed_atr(hexstr: str) -> None:
    with pytest.raises(ApduError):
        atr.parse(bytes.fromhex(hexstr))


def test_social_helpers_need_13_historical_bytes() -> None:
    short = atr.build(b"\x00\x81")
    with pytest.raises(ApduError):
        atr.card_serial(short)
    with pytest.raises(ApduError):
        atr.area_code_prefix(short)
    non_bcd = atr.build(bytes.fromhex("00814A4446866051A9000001AC"))
    with pytest.raises(ApduError):
        atr.area_code_prefix(non_bcd)


def test_assemble_rejects_bad_chains() -> None:
    with pytest.raises(ApduError):
        atr.assemble([InterfaceGroup(1, None, None, None), InterfaceGroup(2)])
    with pytest.raises(ApduError):
        atr.assemble([InterfaceGroup(t=1), InterfaceGroup()])
    with pytest.raises(ApduError):
        atr.assemble([InterfaceGroup()], bytes(16))
    with pytest.raises(ApduError):
        atr.build(b"", ())

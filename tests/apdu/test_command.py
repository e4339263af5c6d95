"""Command and response APDUs: ISO 7816-4 §5.1, the four cases in short and extended form."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apdu import ApduError, CommandApdu, ResponseApdu

header = st.tuples(
    st.integers(0, 0xFE), st.integers(0, 0xFF), st.integers(0, 0xFF), st.integers(0, 0xFF)
)


@st.composite
def commands(draw: st.DrawFn) -> CommandApdu:
    cla, ins, p1, p2 = draw(header)
    extended = draw(st.booleans())
    max_data = 300 if extended else 255
    data = draw(st.binary(min_size=0, max_size=max_data))
    le = draw(st.none() | st.integers(1, 65536 if extended else 256))
    return CommandApdu(cla, ins, p1, p2, data, le, extended)


@settings(max_examples=300, deadline=None)
@given(commands())
def test_round_trip(cmd: CommandApdu) -> None:
    raw = cmd.to_bytes()
    back = CommandApdu.from_bytes(raw)
    assert back == cmd
    assert back.to_bytes() == raw


@settings(max_examples=200, deadline=None)
@given(commands())
def test_encoding_length_follows_case(cmd: CommandApdu) -> None:
    raw = cmd.to_bytes()
    n = len(cmd.data)
    if cmd.extended:
        expected = {1: 4, 2: 7, 3: 7 + n, 4: 9 + n}[cmd.case]
    else:
        expected = {1: 4, 2: 5, 3: 5 + n, 4: 6 + n}[cmd.case]
    assert len(raw) == expected


@pytest.mark.parametrize(
    ("hexstr", "case", "data", "le", "extended"),
    [
        ("00A40000", 1, "", None, False),
        ("00B0000000", 2, "", 256, False),
        ("00B2070C0B", 2, "", 11, False),
        ("00A4020002EF05", 3, "EF05", None, False),
        ("0088000010" + "11" * 16 + "00", 4, "11" * 16, 256, False),
        ("00B0000000FFFF", 2, "", 0xFFFF, True),
        ("00B0000000 0000", 2, "", 65536, True),
        ("00D60000 000003 AABBCC", 3, "AABBCC", None, True),
        ("00D60000 000002 AABB 0100", 4, "AABB", 256, True),
        ("00D60000 000002 AABB 0000", 4, "AABB", 65536, True),
    ],
)
def test_known_encodings(hexstr: str, case: int, data: str, le: int | None,
                         extended: bool) -> None:
    raw = bytes.fromhex(hexstr)
    cmd = CommandApdu.from_bytes(raw)
    assert (cmd.case, cmd.data, cmd.le, cmd.extended) == (case, bytes.fromhex(data), le,
                                                          extended)
    assert cmd.to_bytes() == raw


@pytest.mark.parametrize(
    "hexstr",
    [
        "",
        "00A400",  # shorter than the header
        "FFA40000",  # CLA FF is invalid
        "00A4000003AABB",  # Lc 3, two bytes
        "00A4000002AABBCCDD",  # Lc 2, three bytes after
        "00A4000000AA",  # extended marker, truncated length
        "00A40000000000AA",  # extended Lc 0
        "00A40000000002AABBCC",  # extended Lc 2 with one stray byte
        "00A40000000002AABB01",  # extended Le needs two bytes
    ],
)
def test_malformed_commands_raise_apdu_error(hexstr: str) -> None:
    with pytest.raises(ApduError) as err:
        CommandApdu.from_bytes(bytes.fromhex(hexstr))
    assert err.value.sw in (0x6700, 0x6E00)


def test_large_data_switches_to_extended() -> None:
    cmd = CommandApdu(0x00, 0xD6, 0, 0, bytes(300))
    assert cmd.extended
    assert cmd.to_bytes()[4:7] == b"\x00\x01\x2c"
    big_le = CommandApdu(0x00, 0xB0, 0, 0, le=1000)
    assert big_le.extended and big_le.to_bytes()[4:] == b"\x00\x03\xe8"


def test_le_zero_means_maximum() -> None:
    assert CommandApdu(0, 0xB0, 0, 0, le=0).le == 256
    assert CommandApdu(0, 0xB0, 0, 0, le=0, extended=True).le == 65536


def test_case_one_never_extended() -> None:
    cmd = CommandApdu(0, 0x20, 0, 0, extended=True)
    assert not cmd.extended
    assert CommandApdu.from_bytes(cmd.to_bytes()) == cmd


@pytest.mark.parametrize(
    "kwargs",
    [
        {"cla": 0x100},
        {"p1": -1},
        {"le": 65537},
        {"le": 70000, "extended": True},
        {"le": -5},
        {"data": bytes(65536)},
    ],
)
def test_invalid_fields_raise(kwargs: dict[str, object]) -> None:
    base: dict[str, object] = {"cla": 0, "ins": 0xB0, "p1": 0, "p2": 0}
    base.update(kwargs)
    with pytest.raises(ApduError):
        CommandApdu(**base)  # type: ignore[arg-type]


def test_with_le_and_hex() -> None:
    cmd = CommandApdu(0x00, 0xB2, 0x07, 0x04, le=256)
    assert cmd.with_le(11).hex() == "00B207040B"
    assert cmd.header == bytes.fromhex("00B20704")
    assert bytes(cmd) == cmd.to_bytes()


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300), st.integers(0, 0xFFFF))
def test_response_round_trip(data: bytes, sw: int) -> None:
    rsp = ResponseApdu(data, sw)
    raw = rsp.to_bytes()
    assert ResponseApdu.from_bytes(raw) == rsp
    assert (rsp.sw1 << 8 | rsp.sw2) == sw
    assert rsp.ok == (sw == 0x9000)


def test_response_errors() -> None:
    with pytest.raises(ApduError):
        ResponseApdu.from_bytes(b"\x90")
    with pytest.raises(ApduError):
        ResponseApdu(b"", 0x10000)
    assert ResponseApdu.status(0x6A82).to_bytes() == b"\x6a\x82"

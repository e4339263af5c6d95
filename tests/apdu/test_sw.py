"""Status words (spec/card.md §7) and driver codes (spec/card.md §10)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from apdu import ApduError, sw

SPEC_7_CODES = [
    0x9000, 0x6581, 0x6700, 0x6901, 0x6981, 0x6982, 0x6983, 0x6984, 0x6985, 0x6986, 0x6988,
    0x6A80, 0x6A81, 0x6A82, 0x6A83, 0x6A84, 0x6A86, 0x6A88, 0x6B00, 0x6D00, 0x6E00, 0x6F00,
    0x9302, 0x9303, 0x9401, 0x9403,
]


@pytest.mark.parametrize("code", SPEC_7_CODES)
def test_every_spec_code_has_a_specific_description(code: int) -> None:
    d = sw.describe(code)
    assert d.sw == code
    assert d.name not in ("UNKNOWN_SW",)
    assert d.en and d.zh
    assert str(d).startswith(f"{code:04X} ")


def test_named_constants_match_spec() -> None:
    assert sw.SW_AUTH_BLOCKED == 0x6983
    assert sw.describe(sw.SW_AUTH_BLOCKED).name == "AUTH_BLOCKED"
    assert sw.describe(sw.SW_FILE_NOT_FOUND).name == "FILE_NOT_FOUND"
    assert sw.describe(sw.SW_INSUFFICIENT_FUNDS).en == "insufficient funds"
    assert sw.describe(sw.SW_OK).ok


@given(st.integers(1, 256))
def test_more_data_pattern(n: int) -> None:
    code = sw.sw_more_data(n)
    assert code >> 8 == 0x61
    assert sw.describe(code).name == "MORE_DATA"
    assert f"{n} bytes" in sw.describe(code).en


@given(st.integers(1, 256))
def test_wrong_le_pattern(n: int) -> None:
    code = sw.sw_wrong_le(n)
    assert code >> 8 == 0x6C
    assert sw.describe(code).name == "WRONG_LE"
    assert f"{n} bytes expected" in sw.describe(code).en


@given(st.integers(0, 15))
def test_pin_tries_pattern(x: int) -> None:
    code = sw.sw_pin_tries(x)
    assert code == 0x63C0 | x
    assert sw.pin_tries_left(code) == x
    assert sw.describe(code).name == "WRONG_PIN"
    assert f"{x} tries left" in sw.describe(code).en


def test_pin_tries_left_others() -> None:
    assert sw.pin_tries_left(0x6983) == 0
    assert sw.pin_tries_left(0x9000) is None
    assert sw.pin_tries_left(0x6300) is None


@pytest.mark.parametrize("bad", [0, 257])
def test_helpers_reject_out_of_range(bad: int) -> None:
    with pytest.raises(ApduError):
        sw.sw_more_data(bad)
    with pytest.raises(ApduError):
        sw.sw_wrong_le(bad)


def test_unknown_and_class_fallbacks() -> None:
    assert sw.describe(0x6A99).name == "WRONG_PARAMETERS"
    assert sw.describe(0x1234).name == "UNKNOWN_SW"
    assert "1234" in sw.describe(0x1234).en
    with pytest.raises(ApduError):
        sw.describe(0x10000)


@given(st.integers(0, 0xFFFF))
def test_describe_is_total(code: int) -> None:
    d = sw.describe(code)
    assert d.sw == code and d.name and d.en and d.zh


def test_driver_code_known_answers() -> None:
    assert sw.driver_code(0x6983) == -27011
    assert sw.driver_code(0x63C2) == -25538
    assert sw.driver_code(0x9000) == 0


def test_driver_code_enum_covers_spec_10() -> None:
    expected = {-1, -2, -3, -4, -11, -21, -22, -31, -32, -33, -34, -35, -36, -51, -52,
                -2201, -2202, -2203}
    assert expected <= {int(c) for c in sw.DriverCode}
    for code in expected:
        msg = sw.driver_message(code)
        en, zh = msg.split(" / ")
        assert en and zh


def test_driver_message_decodes_status_codes() -> None:
    assert "6983" in sw.driver_message(-27011)
    assert "2 tries left" in sw.driver_message(-25538)
    assert sw.sw_from_driver_code(-25538) == 0x63C2
    assert sw.sw_from_driver_code(-52) is None
    assert "unknown" in sw.driver_message(-99)


@given(st.integers(0x1000, 0xFFFF).filter(lambda v: v != 0x9000))
def test_driver_code_round_trip(code: int) -> None:
    assert sw.sw_from_driver_code(sw.driver_code(code)) == code


@given(st.integers(0, 15))
def test_a_counter_after_external_authenticate_speaks_of_the_key(x: int) -> None:
    code = sw.sw_pin_tries(x)
    key = sw.describe(code, ins=0x82)
    assert key.name == "AUTH_FAILED" and "PIN" not in key.en
    assert f"external authentication failed, {x} tries left" == key.en
    assert sw.describe(code, ins=0x20).name == "WRONG_PIN"      # VERIFY keeps the PIN text


def test_6983_after_external_authenticate_is_a_blocked_key() -> None:
    assert "key blocked" in sw.describe(0x6983, ins=0x82).en
    assert "PIN" in sw.describe(0x6983).en
    assert sw.describe(0x9000, ins=0x82) == sw.describe(0x9000)

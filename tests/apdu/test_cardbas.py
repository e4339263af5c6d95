"""The iReadCardBas line (spec/card.md §10)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apdu import ApduError, CardBasics

EXAMPLE = ("639900|111111198101011110|X00000019|639900D15600000500BF7C7A48FB4966|张三|"
           "00814E43238697159900BF7C7A|1.00|20101001|20201001|410100813475|终端设备号|")


def test_spec_example_round_trips() -> None:
    cb = CardBasics.parse_line(EXAMPLE)
    assert cb.area_code == "639900"
    assert cb.ssn == "111111198101011110"
    assert cb.card_number == "X00000019"
    assert cb.card_id_code == "639900D15600000500BF7C7A48FB4966"
    assert cb.name == "张三"
    assert cb.atr_historical_hex == "00814E43238697159900BF7C7A"
    assert cb.spec_version == "1.00"
    assert (cb.issue_date, cb.expiry_date) == ("20101001", "20201001")
    assert cb.terminal_number == "410100813475"
    assert cb.terminal_device == "终端设备号"
    assert cb.to_line() == EXAMPLE
    assert CardBasics.parse_line(EXAMPLE + "\x00\x00\r\n") == cb


def test_dict_and_json() -> None:
    cb = CardBasics.parse_line(EXAMPLE)
    assert CardBasics.from_dict(cb.to_dict()) == cb
    js = cb.to_json()
    assert "张三" in js
    assert CardBasics.from_json(js) == cb
    with pytest.raises(ApduError):
        CardBasics.from_json("[1]")
    with pytest.raises(ApduError):
        CardBasics.from_json("{")
    with pytest.raises(ApduError):
        CardBasics.from_dict({"area_code": "639900"})


@pytest.mark.parametrize("line", [
    EXAMPLE[:-1],  # no final separator
    EXAMPLE + "x|",  # twelve fields
    EXAMPLE.replace("639900|", "63990|", 1),  # short area code
    EXAMPLE.replace("|20101001|", "|2010-10-01|"),
    EXAMPLE.replace("|410100813475|", "|4101008134|"),
    EXAMPLE.replace("639900D156", "639900X156"),
    EXAMPLE.replace("|00814E43", "|0814E43"),
    "",
    "|",
])
def test_bad_lines(line: str) -> None:
    with pytest.raises(ApduError):
        CardBasics.parse_line(line)


def test_field_may_not_hold_separator() -> None:
    cb = CardBasics.parse_line(EXAMPLE)
    d = cb.to_dict()
    d["name"] = "张|三"
    with pytest.raises(ApduError):
        CardBasics.from_dict(d)


safe_text = st.text(st.characters(blacklist_characters="|", min_codepoint=0x20,
                                  max_codepoint=0x9FFF), max_size=20)
nd = st.text(alphabet="0123456789")


@settings(max_examples=150, deadline=None)
@given(
    area=nd.filter(lambda s: len(s) == 6) | st.just("639900"),
    ssn=safe_text, number=safe_text, name=safe_text, version=safe_text, device=safe_text,
    cid=st.binary(min_size=16, max_size=16).map(lambda b: b.hex().upper()),
    hist=st.binary(max_size=15).map(lambda b: b.hex().upper()),
    dates=st.tuples(st.dates(), st.dates()),
    terminal=st.integers(0, 10**12 - 1).map(lambda n: f"{n:012d}"),
)
def test_random_round_trip(area: str, ssn: str, number: str, name: str, version: str,
                           device: str, cid: str, hist: str, dates: tuple[object, object],
                           terminal: str) -> None:
    issue, expiry = (f"{d:%Y%m%d}".rjust(8, "0") for d in dates)
    cb = CardBasics(area, ssn, number, cid, name, hist, version, issue, expiry, terminal, device)
    line = cb.to_line()
    assert line.count("|") == 11 and line.endswith("|")
    assert CardBasics.parse_line(line) == cb

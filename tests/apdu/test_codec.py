"""Field codecs of spec/card.md §4: cn, an, money, dates, check characters, card id code."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apdu import ApduError, codec
from apdu.codec import CardIdCode

digits = st.text(alphabet="0123456789", max_size=20)
# characters GBK can encode: CJK unified ideographs and printable ASCII
gbk_chars = st.one_of(
    st.characters(min_codepoint=0x4E00, max_codepoint=0x9FA5),
    st.characters(min_codepoint=0x20, max_codepoint=0x7E),
)
gbk_text = st.text(alphabet=gbk_chars, max_size=25)


@given(digits, st.integers(0, 12))
def test_cn_round_trip(ds: str, extra: int) -> None:
    length = (len(ds) + 1) // 2 + extra
    enc = codec.cn_encode(ds, length)
    assert len(enc) == length
    assert enc.hex().upper() == ds.ljust(2 * length, "F")
    assert codec.cn_decode(enc) == ds


def test_cn_known_and_errors() -> None:
    assert codec.cn_encode("20101001", 4) == bytes.fromhex("20101001")
    assert codec.cn_encode("123", 3) == bytes.fromhex("123FFF")
    assert codec.cn_decode(bytes.fromhex("12F345")) == "12"
    with pytest.raises(ApduError):
        codec.cn_encode("1234567", 3)
    with pytest.raises(ApduError):
        codec.cn_encode("12a4", 3)
    with pytest.raises(ApduError):
        codec.cn_encode("١٢", 3)  # non-ASCII digits
    with pytest.raises(ApduError):
        codec.cn_decode(bytes.fromhex("12A4"))


@given(st.text(alphabet="0123456789", min_size=1, max_size=16))
def test_pin_round_trip(pin: str) -> None:
    enc = codec.pin_encode(pin)
    assert len(enc) == (len(pin) + 1) // 2
    assert codec.pin_decode(enc) == pin


def test_pin_errors() -> None:
    assert codec.pin_encode("123456") == bytes.fromhex("123456")
    assert codec.pin_encode("12345") == bytes.fromhex("12345F")
    for bad in ("", "12a4", "1" * 17):
        with pytest.raises(ApduError):
            codec.pin_encode(bad)
    with pytest.raises(ApduError):
        codec.pin_decode(bytes.fromhex("12FF"))


@settings(max_examples=200, deadline=None)
@given(gbk_text, st.integers(0, 10))
def test_an_round_trip(text: str, extra: int) -> None:
    n = len(text.encode("gbk")) + extra
    enc = codec.an_encode(text, n)
    assert len(enc) == n
    assert enc[len(text.encode("gbk")):] == bytes(extra)
    assert codec.an_decode(enc) == text


def test_an_known_and_errors() -> None:
    assert codec.an_encode("张三", 6) == "张三".encode("gbk") + b"\x00\x00"
    assert codec.an_encode("张三", 6).hex().upper() == "D5C5C8FD0000"
    assert codec.an_decode(bytes.fromhex("D5C5C8FD0000")) == "张三"
    assert codec.an_decode(b"1.00\xff\xff") == "1.00"
    with pytest.raises(ApduError):
        codec.an_encode("张三", 3)
    with pytest.raises(ApduError):
        codec.an_encode("😀", 8)
    with pytest.raises(ApduError):
        codec.an_decode(b"\x81")


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=gbk_chars, max_size=25).filter(lambda s: len(s.encode("gbk")) <= 50))
def test_split_join_name(name: str) -> None:
    main, ext = codec.split_name(name)
    assert len(main) == 30 and len(ext) == 20
    assert codec.join_name(main, ext) == name
    used = len(main.rstrip(b"\x00"))
    if ext.strip(b"\x00"):
        # the split is as late as possible: the next character would not fit
        assert used + len(codec.an_decode(ext)[0].encode("gbk")) > 30


def test_split_name_too_long() -> None:
    with pytest.raises(ApduError):
        codec.split_name("张" * 26)
    main, ext = codec.split_name("a" + "张" * 15)  # 31 bytes: the 15th 张 moves
    assert codec.an_decode(main) == "a" + "张" * 14 and codec.an_decode(ext) == "张"


@given(st.integers(0, 2**32 - 1))
def test_money_round_trip(fen: int) -> None:
    enc = codec.money_encode(fen)
    assert len(enc) == 4
    assert codec.money_decode(enc) == fen


def test_money_errors() -> None:
    assert codec.money_encode(1, 2) == b"\x00\x01"
    for bad in (-1, 2**32):
        with pytest.raises(ApduError):
            codec.money_encode(bad)
    with pytest.raises(ApduError):
        codec.money_decode(b"")


@given(st.dates(min_value=dt.date(1, 1, 1)))
def test_date_round_trip(d: dt.date) -> None:
    enc = codec.date_encode(d)
    assert len(enc) == 4
    assert codec.date_decode(enc) == d


@given(st.datetimes(min_value=dt.datetime(1000, 1, 2), max_value=dt.datetime(9999, 12, 30),
                    timezones=st.just(dt.UTC) | st.just(codec.CHINA_TZ)))
def test_datetime_round_trip(moment: dt.datetime) -> None:
    moment = moment.replace(microsecond=0)
    enc = codec.datetime_encode(moment)
    assert len(enc) == 7
    back = codec.datetime_decode(enc)
    assert back == moment and back.tzinfo is codec.CHINA_TZ


def test_date_known_and_errors() -> None:
    assert codec.date_encode(dt.date(2010, 10, 1)) == bytes.fromhex("20101001")
    naive = dt.datetime(2026, 11, 28, 13, 5, 9)
    assert codec.datetime_encode(naive) == bytes.fromhex("20261128130509")
    for bad in ("20101301", "20100230", "2010100F", "201010", "2010100101"):
        with pytest.raises(ApduError):
            codec.date_decode(bytes.fromhex(bad))
    with pytest.raises(ApduError):
        codec.datetime_decode(bytes.fromhex("20261128250000"))


def test_card_number_known_answers() -> None:
    assert codec.card_number_check_char("D2143569") == "X"
    assert codec.card_number_valid("X00000019")
    assert not codec.card_number_valid("X00000018")
    assert not codec.card_number_valid("X0000001")
    assert not codec.card_number_valid("X0000001!")
    with pytest.raises(ApduError):
        codec.card_number_check_char("D21435")


@given(st.text(alphabet="0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=8, max_size=8))
def test_card_number_check_detects_single_changes(body: str) -> None:
    full = body + codec.card_number_check_char(body)
    assert codec.card_number_valid(full)
    # any single substitution in the body changes the weighted sum mod 11 unless the
    # difference times the weight is a multiple of 11; digits differ by < 11
    i = 0
    c = full[i]
    other = "1" if c == "0" else "0"
    if abs(int(c, 36) - int(other, 36)) % 11:
        assert not codec.card_number_valid(other + full[1:])


def test_id_number_known_answers() -> None:
    assert codec.id_check_digit("11010519491231002") == "X"
    assert codec.id_number_valid("11010519491231002X")
    assert codec.id_number_valid("11010519491231002x")
    assert not codec.id_number_valid("110105194912310021")
    # by hand: Σ = 195, 195 mod 11 = 8 → "4"
    assert codec.id_check_digit("44052418800101001") == "4"
    assert not codec.id_number_valid("440524188001010015")
    assert codec.id_number_valid("440524188001010014")
    assert not codec.id_number_valid("4405241880010100")
    with pytest.raises(ApduError):
        codec.id_check_digit("1101051949123100")


@given(st.text(alphabet="0123456789", min_size=17, max_size=17))
def test_id_number_valid_round_trip(body: str) -> None:
    assert codec.id_number_valid(body + codec.id_check_digit(body))


hex8 = st.binary(min_size=4, max_size=4).map(lambda b: b.hex().upper())


@given(st.text(alphabet="0123456789", min_size=6, max_size=6), hex8, hex8)
def test_card_id_code_round_trip(city: str, serial: str, auth: str) -> None:
    c = CardIdCode(city, serial, auth)
    raw = c.to_bytes()
    assert len(raw) == 16 and raw[3:8] == bytes.fromhex("D156000005")
    assert CardIdCode.from_bytes(raw) == c
    assert CardIdCode.from_hex(c.to_hex()) == c


def test_card_id_code_known_answer() -> None:
    text = "639900D15600000500BF7C7A48FB4966"
    c = CardIdCode.from_hex(text)
    assert (c.city, c.serial, c.auth, c.area_code) == ("639900", "00BF7C7A", "48FB4966",
                                                       "639900")
    assert c.to_hex() == text
    assert bytes(c) == bytes.fromhex(text)


@pytest.mark.parametrize("text", [
    "639900D15600000600BF7C7A48FB4966",  # not D156000005
    "639900D15600000500BF7C7A48FB49",  # 15 bytes
    "zz",
    "6399F0D15600000500BF7C7A48FB4966",  # city code not BCD digits
])
def test_card_id_code_errors(text: str) -> None:
    with pytest.raises(ApduError):
        CardIdCode.from_hex(text)


def test_card_id_code_field_validation() -> None:
    with pytest.raises(ApduError):
        CardIdCode("63990", "00BF7C7A", "48FB4966")
    with pytest.raises(ApduError):
        CardIdCode("639900", "00BF7C7G", "48FB4966")
    assert CardIdCode("639900", "00bf7c7a", "48fb4966").serial == "00BF7C7A"

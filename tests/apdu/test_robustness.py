"""Every parser either parses arbitrary input or raises ApduError, never anything else."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apdu import ApduError, CardBasics, CommandApdu, ResponseApdu, atr, codec, commands, tlv
from apdu.t0 import T0CardAdapter, T0Exchange

PARSERS: dict[str, Callable[[bytes], object]] = {
    "command": CommandApdu.from_bytes,
    "response": ResponseApdu.from_bytes,
    "tlv": tlv.decode,
    "tlv.find": lambda b: tlv.find(b, 0x6F, 0x84),
    "tlv.dump": tlv.dump,
    "simple": tlv.decode_simple,
    "atr": atr.parse,
    "atr.serial": atr.card_serial,
    "cn": codec.cn_decode,
    "an": codec.an_decode,
    "date": codec.date_decode,
    "datetime": codec.datetime_decode,
    "card_id": codec.CardIdCode.from_bytes,
    "pin": codec.pin_decode,
    "money": codec.money_decode,
}


def _atr_like() -> st.SearchStrategy[bytes]:
    return st.tuples(st.sampled_from([b"\x3b", b"\x3f", b"\x03"]),
                     st.binary(max_size=40)).map(lambda t: t[0] + t[1])


@pytest.mark.parametrize("name", sorted(PARSERS))
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.one_of(st.binary(max_size=80), _atr_like(),
                      st.binary(max_size=6).map(lambda b: b"\x6f" + b)))
def test_parser_total(name: str, data: bytes) -> None:
    with contextlib.suppress(ApduError):
        PARSERS[name](data)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200) | st.lists(st.text(max_size=12), min_size=9, max_size=13).map(
    lambda parts: "|".join(parts) + "|"))
def test_cardbas_parse_total(line: str) -> None:
    with contextlib.suppress(ApduError):
        CardBasics.parse_line(line)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=20), st.lists(st.binary(min_size=0, max_size=20), max_size=30))
def test_t0_exchange_total(command: bytes, answers: list[bytes]) -> None:
    try:
        ex = T0Exchange(command, max_rounds=10)
        for answer in answers:
            if ex.next_tpdu() is None:
                break
            ex.feed(answer)
    except ApduError:
        pass


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=12), max_size=10), st.binary(max_size=300),
       st.integers(0, 0xFFFF))
def test_card_adapter_total(tpdus: list[bytes], data: bytes, sw: int) -> None:
    adapter = T0CardAdapter()
    full = ResponseApdu(data, sw)
    for tpdu in tpdus:
        served = adapter.intercept(tpdu)
        if served is None:
            try:
                cmd = CommandApdu.from_bytes(tpdu)
            except ApduError:
                continue
            served = adapter.respond(cmd, full)
        assert len(served) >= 2


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=30))
def test_naming_and_masking_total(raw: bytes) -> None:
    assert commands.command_name(raw)
    masked = commands.mask_secrets(raw)
    assert len(masked) == len(raw)

"""The T=0 rules (ISO 7816-3 §12.2, spec/card.md §2): terminal and card side."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apdu import ApduError, CommandApdu, ResponseApdu, T0CardAdapter, T0Exchange, transceive
from apdu import commands as cmds


class SimT0Card:
    """A minimal T=0 card written from ISO 7816-3 §12.2 independently of ``apdu.t0``.

    It answers every command with ``full``; data goes out in random 61xx chunks, a wrong P3
    gets 6Cxx, and a case-4 warning is reported before the data.
    """

    def __init__(self, full: ResponseApdu, rng: random.Random) -> None:
        self.full = full
        self.rng = rng
        self.left = b""
        self.final = 0x9000
        self.announced = 0
        self.log: list[bytes] = []

    def _chunk(self) -> int:
        return self.rng.randint(1, min(len(self.left), 256))

    def send(self, tpdu: bytes) -> bytes:
        self.log.append(tpdu)
        assert len(tpdu) >= 5, "T=0 TPDUs always carry P3"
        ins, p3 = tpdu[1], tpdu[4] or 256
        if ins == 0xC0:
            if not self.left:
                return b"\x69\x85"
            if p3 > len(self.left):
                return bytes([0x6C, len(self.left) & 0xFF])
            out, self.left = self.left[:p3], self.left[p3:]
            if self.left:
                self.announced = self._chunk()
                return out + bytes([0x61, self.announced & 0xFF])
            return out + self.final.to_bytes(2, "big")
        data = self.full.data
        has_data = len(tpdu) > 5
        if has_data:
            assert len(tpdu) == 5 + tpdu[4], "case 3/4 TPDU carries exactly Lc bytes"
        if not data:
            return self.full.to_bytes()
        if not has_data:
            if p3 != len(data):
                return bytes([0x6C, len(data) & 0xFF])
            return self.full.to_bytes()
        self.left = data
        if self.full.sw >> 8 in (0x62, 0x63):
            self.final = 0x9000
            return self.full.sw.to_bytes(2, "big")
        self.final = self.full.sw
        self.announced = self._chunk()
        return bytes([0x61, self.announced & 0xFF])


statuses = st.sampled_from([0x9000, 0x9000, 0x6283, 0x63C1, 0x6A82])


@settings(max_examples=300, deadline=None)
@given(
    cla=st.sampled_from([0x00, 0x80, 0x84, 0xB0, 0x04]),
    data=st.binary(max_size=40),
    resp=st.binary(max_size=256),
    le=st.none() | st.integers(1, 256),
    sw=statuses,
    seed=st.integers(0, 2**32),
)
def test_transceive_against_simulated_card(cla: int, data: bytes, resp: bytes, le: int | None,
                                           sw: int, seed: int) -> None:
    if resp:
        le = le or 256  # a command that returns data is case 2 or 4
    cmd = CommandApdu(cla, 0xB2, 0x01, 0x04, data, le)
    full = ResponseApdu(resp, sw)
    card = SimT0Card(full, random.Random(seed))
    result = transceive(cmd, card.send)
    assert result == full.to_bytes()
    first = card.log[0]
    assert first[:4] == cmd.header
    if data:
        assert first[4:] == bytes([len(data)]) + data  # Le is never sent with data
    else:
        assert first[4] == (le or 0) & 0xFF
    for tpdu in card.log[1:]:
        if tpdu[1] == 0xC0:
            assert tpdu[0] == cla  # GET RESPONSE uses the command's CLA
            assert tpdu[2:4] == b"\x00\x00"


@settings(max_examples=200, deadline=None)
@given(
    data=st.binary(max_size=40),
    resp=st.binary(max_size=700),
    le=st.none() | st.integers(1, 256),
    sw=statuses,
)
def test_transceive_against_card_adapter(data: bytes, resp: bytes, le: int | None,
                                         sw: int) -> None:
    if resp and not data:
        le = le or 256
    if data and resp:
        le = le or 256
    if not data and len(resp) > 256:
        le = 256
    full = ResponseApdu(resp, sw)
    adapter = T0CardAdapter()
    seen: list[bytes] = []

    def send(tpdu: bytes) -> bytes:
        seen.append(tpdu)
        served = adapter.intercept(tpdu)
        if served is not None:
            return served
        return adapter.respond(CommandApdu.from_bytes(tpdu), full)

    cmd = CommandApdu(0x00, 0x88, 0x00, 0x00, data, le)
    assert transceive(cmd, send) == full.to_bytes()
    assert adapter.pending == 0
    assert len(seen) < 12


def test_case2_wrong_le_resend_once() -> None:
    log: list[bytes] = []

    def card(tpdu: bytes) -> bytes:
        log.append(tpdu)
        return b"\x6c\x05" if tpdu[4] != 5 else b"ABCDE\x90\x00"

    assert transceive(cmds.read_record_by_tag(0x07), card) == b"ABCDE\x90\x00"
    assert [t.hex() for t in log] == ["00b2070000", "00b2070005"]


def test_second_6c_is_returned_not_looped() -> None:
    log: list[bytes] = []

    def stubborn(tpdu: bytes) -> bytes:
        log.append(tpdu)
        return b"\x6c\x07"

    assert transceive(cmds.read_record_by_tag(0x07), stubborn) == b"\x6c\x07"
    assert len(log) == 2


def test_case4_61xx_chain_accumulates() -> None:
    answers = iter([b"\x61\x02", b"AB\x61\x03", b"CDE\x90\x00"])
    log: list[bytes] = []

    def card(tpdu: bytes) -> bytes:
        log.append(tpdu)
        return next(answers)

    cmd = cmds.cipher_data(cmds.CIPHER_ENCRYPT, b"12345678")
    assert transceive(cmd, card) == b"ABCDE\x90\x00"
    assert log[0].hex() == "80fa0000083132333435363738"
    assert [t.hex() for t in log[1:]] == ["80c0000002", "80c0000003"]


def test_get_response_cla_override() -> None:
    answers = iter([b"\x61\x01", b"Z\x90\x00"])
    log: list[bytes] = []

    def card(tpdu: bytes) -> bytes:
        log.append(tpdu)
        return next(answers)

    out = transceive(cmds.init_sam_for_purchase(b"\x01" * 20), card, get_response_cla=0x00)
    assert out == b"Z\x90\x00"
    assert log[1].hex() == "00c0000001"


def test_case4_warning_then_fetch() -> None:
    answers = iter([b"\x62\x83", b"\x6c\x03", b"FCI\x90\x00"])
    log: list[bytes] = []

    def card(tpdu: bytes) -> bytes:
        log.append(tpdu)
        return next(answers)

    assert transceive(cmds.select_ssse(), card) == b"FCI\x62\x83"
    assert [t.hex() for t in log[1:]] == ["00c0000000", "00c0000003"]


def test_case4_warning_without_data() -> None:
    answers = iter([b"\x63\xc1", b"\x69\x85"])
    assert transceive(cmds.select_ssse(), lambda _t: next(answers)) == b"\x63\xc1"


def test_case3_warning_is_final() -> None:
    log: list[bytes] = []

    def card(tpdu: bytes) -> bytes:
        log.append(tpdu)
        return b"\x63\xc2"

    assert transceive(cmds.verify("1234"), card) == b"\x63\xc2"
    assert log == [bytes.fromhex("00200000021234")]


def test_case1_sends_p3_zero() -> None:
    log: list[bytes] = []

    def card(tpdu: bytes) -> bytes:
        log.append(tpdu)
        return b"\x63\xc3"

    assert transceive(cmds.verify(None), card) == b"\x63\xc3"
    assert log == [bytes.fromhex("0020000000")]


def test_max_rounds_guard() -> None:
    def endless(tpdu: bytes) -> bytes:
        return b"\x00\x61\x01"

    with pytest.raises(ApduError, match="gave up"):
        transceive(cmds.select_ssse(), endless, max_rounds=20)


def test_state_machine_interface() -> None:
    ex = T0Exchange(cmds.get_challenge(8))
    assert ex.next_tpdu() == bytes.fromhex("0084000008")
    assert ex.result is None and not ex.done
    ex.feed(bytes(8) + b"\x90\x00")
    assert ex.done and ex.next_tpdu() is None
    assert ex.result == ResponseApdu(bytes(8), 0x9000)
    with pytest.raises(ApduError):
        ex.feed(b"\x90\x00")
    with pytest.raises(ApduError):
        T0Exchange(CommandApdu(0, 0xD6, 0, 0, bytes(300)))
    with pytest.raises(ApduError):
        T0Exchange(cmds.get_challenge(8)).feed(b"\x90")


def test_adapter_protocol() -> None:
    adapter = T0CardAdapter()
    full = ResponseApdu(bytes(range(10)), 0x9000)
    # case 2 with the wrong P3: 6Cxx and nothing buffered
    assert adapter.respond(CommandApdu(0, 0xB2, 7, 4, le=256), full) == b"\x6c\x0a"
    assert adapter.pending == 0
    # case 4: 61xx, then GET RESPONSE in pieces
    assert adapter.respond(CommandApdu(0, 0x88, 0, 0, b"x", 256), full) == b"\x61\x0a"
    assert adapter.pending == 10
    assert adapter.intercept(bytes.fromhex("00C0000004")) == bytes(range(4)) + b"\x61\x06"
    assert adapter.intercept(bytes.fromhex("00C0000009")) == b"\x6c\x06"
    assert adapter.intercept(bytes.fromhex("00C0000006")) == bytes(range(4, 10)) + b"\x90\x00"
    assert adapter.intercept(bytes.fromhex("00C0000006")) == b"\x69\x85"
    # a new command discards buffered data
    adapter.respond(CommandApdu(0, 0x88, 0, 0, b"x", 256), full)
    assert adapter.intercept(bytes.fromhex("00A4000002EF05")) is None
    assert adapter.pending == 0
    assert adapter.intercept(bytes.fromhex("00C000")) == b"\x67\x00"

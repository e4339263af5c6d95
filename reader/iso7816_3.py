"""ISO 7816-3 character-level pieces for a card whose I/O line is a UART.

Pure, sans-I/O building blocks shared by the serial reader (``reader.serial``) and the card
served as a serial device (``reader.serial_device``):

* convention coding (ISO 7816-3 §8.1: TS ``3B`` direct, ``3F`` inverse — a UART set for the
  direct convention reads an inverse-convention TS as ``03``), with :mod:`apdu.atr`'s helper;
* ATR framing: how long an ATR is, known from the bytes received so far (§8.2.2–§8.2.5), so the
  reader stops at the last character instead of waiting for a timeout (the complete ATR is
  then checked and parsed by :func:`apdu.atr.parse`);
* timing: F/D tables (§8.3, tables 7 and 8), the etu, the work waiting time
  WT = 960·D·WI etu (§10.2) and the character frame of 12 etu (start bit, 8 data bits, parity,
  guard time of 2 etu — §7.1, §7.2);
* PPS request/response (§9);
* the reader side of one T=0 TPDU exchange with its procedure bytes (§10.3.3).
"""

from __future__ import annotations

from enum import Enum

from apdu.atr import DI_TABLE, FI_TABLE, TS_DIRECT, TS_INVERSE_ON_LINE, inverse_byte

DEFAULT_F = 372
DEFAULT_D = 1
DEFAULT_WI = 10
#: One character frame: start bit, 8 data bits, parity bit and a 2-etu guard time (§7.2).
CHAR_ETU = 12
#: §8.2: at most 9600 etu between the leading edges of two ATR characters …
ATR_CHAR_WAIT_ETU = 9600
#: … and at most 19200 etu for the whole ATR.
ATR_TOTAL_ETU = 19200
#: §8.2: TS arrives 400 to 40000 clock cycles after RST is released (= 108 etu at F=372).
ATR_FIRST_CHAR_ETU = 40000 // 372 + 1

NULL_BYTE = 0x60
PPSS = 0xFF


class CharProtocolError(Exception):
    """A character sequence that the standard does not allow (bad TS, TCK, procedure byte)."""


class Convention(Enum):
    """ISO 7816-3 §8.1 coding conventions."""

    DIRECT = "direct"
    INVERSE = "inverse"


_INVERSE_TABLE = bytes(inverse_byte(b) for b in range(256))


def inverse(data: bytes) -> bytes:
    """Recode bytes between the inverse convention and a direct-convention UART (§8.1).

    The mapping (:func:`apdu.atr.inverse_byte`: complement every bit, most significant bit
    first) is its own inverse.

    >>> inverse(bytes([0x03])).hex()
    '3f'
    >>> inverse(inverse(b"\\x12\\x34")) == b"\\x12\\x34"
    True
    """
    return data.translate(_INVERSE_TABLE)


def convention_of_ts(raw_ts: int) -> Convention:
    """The convention announced by TS as read by a direct-convention UART (§8.1)."""
    if raw_ts == TS_DIRECT:
        return Convention.DIRECT
    if raw_ts == TS_INVERSE_ON_LINE:
        return Convention.INVERSE
    raise CharProtocolError(f"invalid TS {raw_ts:02X} (expected 3B or inverse 3F)")


def other_parity(parity: str) -> str:
    """The UART parity that reads an inverse-convention card: the complement of 9 bits with an
    even number of ones has an odd number, so ``E`` becomes ``O`` (and back)."""
    return {"E": "O", "O": "E"}.get(parity, parity)


# -- ATR framing -------------------------------------------------------------------------


def atr_length(prefix: bytes) -> int | None:
    """Total length of the ATR that starts with ``prefix`` (logical bytes), or ``None`` while
    more bytes are needed to know it (ISO 7816-3 §8.2.2–§8.2.5).

    TCK is present unless T=0 is the only protocol indicated.

    >>> atr_length(bytes.fromhex("3B6D"))
    17
    >>> atr_length(bytes.fromhex("3B")) is None
    True
    >>> atr_length(bytes.fromhex("3B8080")) is None
    True
    >>> atr_length(bytes.fromhex("3B808001"))
    5
    """
    if len(prefix) < 2:
        return None
    t0 = prefix[1]
    y = t0 >> 4
    k = t0 & 0x0F
    index = 2
    tck = False
    while True:
        count = bin(y).count("1")
        if y & 0x8:
            td_index = index + count - 1
            if len(prefix) <= td_index:
                return None
            td = prefix[td_index]
            if td & 0x0F:
                tck = True
            index += count
            y = td >> 4
        else:
            index += count
            break
    return index + k + (1 if tck else 0)


class AtrAssembler:
    """Collects ATR characters as they arrive and says when the ATR is complete.

    Feed raw UART bytes; the first one (TS) fixes the convention and every byte is decoded
    accordingly. ``atr`` is the logical ATR (TS = 3B or 3F).
    """

    def __init__(self) -> None:
        self.convention: Convention | None = None
        self._buf = bytearray()
        self._total: int | None = None

    @property
    def atr(self) -> bytes:
        return bytes(self._buf)

    @property
    def complete(self) -> bool:
        return self._total is not None and len(self._buf) >= self._total

    @property
    def missing(self) -> int:
        """Bytes still needed (at least 1 while the length is unknown)."""
        if self._total is None:
            return 1
        return max(0, self._total - len(self._buf))

    def feed(self, raw: bytes) -> bytes:
        """Take raw bytes; return those beyond the end of the ATR (not consumed)."""
        for i, byte in enumerate(raw):
            if self.complete:
                return raw[i:]
            if self.convention is None:
                self.convention = convention_of_ts(byte)
            logical = byte if self.convention is Convention.DIRECT else inverse(bytes([byte]))[0]
            self._buf.append(logical)
            if self._total is None:
                self._total = atr_length(bytes(self._buf))
        return b""


def fi_of(ta1: int | None) -> int:
    if ta1 is None:
        return DEFAULT_F
    value = FI_TABLE[ta1 >> 4]
    if value is None:
        raise CharProtocolError(f"TA1 {ta1:02X}: Fi index is reserved")
    return value


def di_of(ta1: int | None) -> int:
    if ta1 is None:
        return DEFAULT_D
    value = DI_TABLE[ta1 & 0x0F]
    if value is None:
        raise CharProtocolError(f"TA1 {ta1:02X}: Di index is reserved")
    return value


def rate_for(initial_baud: int, fi: int, di: int) -> int:
    """UART rate once F/D are in force, for a reader whose clock gives ``initial_baud`` at the
    default F=372, D=1 (etu = F / (D·f), §7.1)."""
    return round(initial_baud * DEFAULT_F * di / fi)


def char_seconds(baud: int) -> float:
    """Duration of one character frame (12 etu) at ``baud``."""
    return CHAR_ETU / baud


def work_waiting_seconds(initial_baud: int, fi: int, wi: int) -> float:
    """WT = WI·960·Fi/f (§10.2) in seconds — 960·D·WI etu at the negotiated rate — for a
    reader whose clock gives ``initial_baud`` at F=372."""
    return 960 * wi * fi / (DEFAULT_F * initial_baud)


# -- PPS -----------------------------------------------------------------------------------


def pps_request(protocol: int, ta1: int) -> bytes:
    """PPSS PPS0 PPS1 PCK proposing ``ta1`` (Fi/Di) for ``protocol`` (§9.2).

    >>> pps_request(0, 0x13).hex()
    'ff1013fc'
    """
    body = bytes([PPSS, 0x10 | (protocol & 0x0F), ta1])
    return body + bytes([_xor(body)])


def pps_length(prefix: bytes) -> int | None:
    """Total length of a PPS message from its first bytes (§9.2), ``None`` if unknown yet."""
    if len(prefix) < 2:
        return None
    pps0 = prefix[1]
    return 3 + bin(pps0 & 0x70).count("1")


def pps_check(message: bytes) -> None:
    """Raise when a PPS message is malformed (PPSS, length, PCK)."""
    if not message or message[0] != PPSS:
        raise CharProtocolError("PPS does not start with PPSS FF")
    if pps_length(message) != len(message):
        raise CharProtocolError("PPS length does not match PPS0")
    if _xor(message):
        raise CharProtocolError("PPS check byte PCK wrong")


def pps_accepted(request: bytes, response: bytes) -> bool:
    """§9.3: a successful exchange echoes PPS0's protocol and PPS1 (if the card keeps it)."""
    pps_check(response)
    if (response[1] & 0x0F) != (request[1] & 0x0F):
        return False
    if response[1] & 0x10:
        return response[2] == request[2]
    return False


def _xor(data: bytes) -> int:
    value = 0
    for b in data:
        value ^= b
    return value


# -- T=0 reader side -----------------------------------------------------------------------


class T0Phase(Enum):
    PROCEDURE = "procedure"
    DATA = "data"
    SW2 = "sw2"
    DONE = "done"


class T0Transfer:
    """The reader side of one T=0 TPDU (ISO 7816-3 §10.3.3), driven byte by byte.

    ``header`` is sent first; every byte received from the card goes to :meth:`feed`, which
    returns the bytes to send next (data after an ACK). Procedure bytes: ``60`` NULL (keep
    waiting), ``INS`` (all remaining data), ``INS ⊕ FF`` (one data byte), ``6X``/``9X`` SW1.
    A 5-byte TPDU lets the card send up to P3 bytes (P3 = 0 meaning 256); a longer one carries
    Lc data bytes to the card.
    """

    def __init__(self, tpdu: bytes) -> None:
        if len(tpdu) == 4:
            tpdu = tpdu + b"\x00"
        if len(tpdu) < 5:
            raise CharProtocolError(f"TPDU of {len(tpdu)} bytes is shorter than a header")
        self.header = bytes(tpdu[:5])
        self.ins = tpdu[1]
        if self.ins & 0xF0 in (0x60, 0x90):
            raise CharProtocolError(f"INS {self.ins:02X} is not valid under T=0")
        self._to_card = bytes(tpdu[5:])
        if self._to_card and len(self._to_card) != tpdu[4]:
            raise CharProtocolError(f"P3 {tpdu[4]} does not match {len(self._to_card)} data bytes")
        self.outgoing = not self._to_card
        self._from_card_len = (tpdu[4] or 256) if self.outgoing else 0
        self._sent = 0
        self._data = bytearray()
        self._sw1: int | None = None
        self._expect_data = 0
        self.phase = T0Phase.PROCEDURE
        self.response: bytes | None = None
        self.nulls = 0

    @property
    def done(self) -> bool:
        return self.phase is T0Phase.DONE

    def expected(self) -> int:
        """How many bytes the card should send next (for bulk reads)."""
        if self.phase is T0Phase.DATA:
            return self._expect_data
        if self.phase is T0Phase.DONE:
            return 0
        return 1

    def feed(self, byte: int) -> bytes:
        """Take one byte from the card; return what the reader must send now."""
        if self.phase is T0Phase.DONE:
            raise CharProtocolError(f"unexpected byte {byte:02X} after SW2")
        if self.phase is T0Phase.SW2:
            assert self._sw1 is not None
            self.response = bytes(self._data) + bytes([self._sw1, byte])
            self.phase = T0Phase.DONE
            return b""
        if self.phase is T0Phase.DATA:
            self._data.append(byte)
            self._expect_data -= 1
            if self._expect_data == 0:
                self.phase = T0Phase.PROCEDURE
            return b""
        return self._procedure(byte)

    def _procedure(self, byte: int) -> bytes:
        if byte == NULL_BYTE:
            self.nulls += 1
            return b""
        if byte & 0xF0 in (0x60, 0x90):
            self._sw1 = byte
            self.phase = T0Phase.SW2
            return b""
        if byte in (self.ins, self.ins ^ 0xFF):
            single = byte != self.ins
            if self.outgoing:
                left = self._from_card_len - len(self._data)
                if left <= 0:
                    raise CharProtocolError(f"procedure byte {byte:02X} after all data")
                self._expect_data = 1 if single else left
                self.phase = T0Phase.DATA
                return b""
            left_bytes = self._to_card[self._sent :]
            if not left_bytes:
                raise CharProtocolError(f"procedure byte {byte:02X} after all data")
            chunk = left_bytes[:1] if single else left_bytes
            self._sent += len(chunk)
            return chunk
        raise CharProtocolError(
            f"invalid procedure byte {byte:02X} for INS {self.ins:02X} (garbled line?)"
        )


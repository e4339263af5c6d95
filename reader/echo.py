"""A minimal echo card: the baseline for reader latency measurements.

It answers every command at once with no file system and no cryptography, so a round trip
through a transport measures the transport alone. It implements ``apdu.iface.CardLike``.

Answers (ISO 7816-4 §5.1 cases, raw bytes, no T=0 procedure needed):

- case 1 (header only) → ``90 00``
- case 2 (``Le``) → ``Le`` bytes counting up from 0, then ``90 00``
- case 4 (data + Le) → the data echoed back, then ``90 00``
- a T=0 TPDU with data (case 3 shape; the terminal drops Le of a case-4 command under T=0,
  ISO 7816-3 §12.2.5) → ``61 Lc``; GET RESPONSE then returns the data with ``90 00``
- fewer than 4 bytes → ``67 00``

>>> card = EchoCard()
>>> card.transmit(bytes.fromhex("00B0000004")).hex()
'000102039000'
>>> card.transmit(bytes.fromhex("00DA000002ABCD00")).hex()
'abcd9000'
>>> card.transmit(bytes.fromhex("00DA000002ABCD")).hex()
'6102'
>>> card.transmit(bytes.fromhex("00C0000002")).hex()
'abcd9000'
"""

from __future__ import annotations

ECHO_ATR = bytes.fromhex("3B6800004543484F43415244")
"""ATR announcing T=0 only (like the social security card, spec/card.md §2), with TB1 = TC1 = 0
and the eight historical bytes ``ECHOCARD``; no TCK since only T=0 is indicated."""


class EchoCard:
    """A card that echoes; counts the commands it answered (``commands``)."""

    def __init__(self, atr: bytes | None = None) -> None:
        self._atr = atr if atr is not None else ECHO_ATR
        self.powered = False
        self.commands = 0
        self._pending = b""

    def atr(self) -> bytes:
        return self._atr

    def power_on(self) -> bytes:
        self.powered = True
        return self._atr

    def power_off(self) -> None:
        self.powered = False

    def reset(self) -> bytes:
        self.powered = True
        return self._atr

    def transmit(self, command: bytes) -> bytes:
        if len(command) < 4:
            return b"\x67\x00"
        if command[1] == 0xC0 and self._pending:  # GET RESPONSE (T=0)
            data, self._pending = self._pending, b""
            return data + b"\x90\x00"
        self.commands += 1
        self._pending = b""
        if len(command) == 4:
            return b"\x90\x00"
        body = command[4:]
        if len(body) == 1:  # case 2 short: Le only
            le = body[0] or 256
            return bytes(i & 0xFF for i in range(le)) + b"\x90\x00"
        lc = body[0]
        data = body[1 : 1 + lc]
        if len(body) == 1 + lc:  # T=0 TPDU with data: announce the echo
            self._pending = data
            return bytes((0x61, lc & 0xFF))
        if len(body) == 2 + lc:  # case 4
            return data + b"\x90\x00"
        return b"\x67\x00"

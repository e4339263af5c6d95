"""A small T=0 card for the serial tests: fixed files, a PIN, random challenges."""

from __future__ import annotations

import os
import threading
import time

from apdu.command import CommandApdu
from apdu.errors import ApduError
from apdu.response import ResponseApdu
from apdu.t0 import T0CardAdapter

#: spec/card.md §2: the ATR of a 3.00 card (T=0 only, no TCK).
SPEC_ATR = bytes.fromhex("3B 6D 00 00 00 81 4A 44 46 86 60 51 99 00 00 01 AC")
SSSE_NAME = b"sx1.sh." + "社会保障".encode("gbk")
FCI = bytes.fromhex("6F1C840F") + SSSE_NAME + bytes.fromhex("A50988011E9F0C03860101")
RECORDS = {
    0xEF05: [(0x01, bytes(range(16))), (0x03, b"3.00"), (0x07, b"X00000019")],
    0xEF06: [(0x08, b"111111198101011110"), (0x09, "张三".encode("gbk").ljust(30, b"\0"))],
}
PIN = bytes.fromhex("123456")


class TinyCard:
    """Answers SELECT (SSSE name, EF05/EF06), READ RECORD by tag, GET CHALLENGE, VERIFY.

    Speaks T=0 itself through :class:`apdu.t0.T0CardAdapter` (61xx, 6Cxx, GET RESPONSE).
    ``delay`` makes every command slow (to see NULL procedure bytes).
    """

    def __init__(self, atr: bytes = SPEC_ATR, delay: float = 0.0) -> None:
        self._atr = atr
        self.delay = delay
        self.adapter = T0CardAdapter()
        self.tries = 3
        self.verified = False
        self.selected: int | None = None
        self.in_app = False
        self.commands: list[bytes] = []
        self.resets = 0
        self._lock = threading.Lock()

    def atr(self) -> bytes:
        return self._atr

    def _clear(self) -> None:
        self.adapter.reset()
        self.verified = False
        self.selected = None
        self.in_app = False

    def power_on(self) -> bytes:
        self._clear()
        return self._atr

    def power_off(self) -> None:
        self._clear()

    def reset(self) -> bytes:
        self.resets += 1
        self._clear()
        return self._atr

    def transmit(self, command: bytes) -> bytes:
        with self._lock:
            self.commands.append(bytes(command))
            if self.delay:
                time.sleep(self.delay)
            served = self.adapter.intercept(command)
            if served is not None:
                return served
            try:
                cmd = CommandApdu.from_bytes(command)
            except ApduError as exc:
                return exc.sw.to_bytes(2, "big")
            return self.adapter.respond(cmd, self._process(cmd))

    def _process(self, cmd: CommandApdu) -> ResponseApdu:
        if cmd.ins == 0xA4:
            if cmd.p1 == 0x04 and cmd.data == SSSE_NAME:
                self.in_app, self.selected = True, None
                return ResponseApdu(FCI, 0x9000)
            fid = int.from_bytes(cmd.data, "big") if len(cmd.data) == 2 else -1
            if self.in_app and fid in RECORDS:
                self.selected = fid
                return ResponseApdu(b"", 0x9000)
            return ResponseApdu(b"", 0x6A82)
        if cmd.ins == 0xB2:
            if self.selected is None:
                return ResponseApdu(b"", 0x6986)
            for tag, value in RECORDS[self.selected]:
                if tag == cmd.p1:
                    return ResponseApdu(bytes([tag, len(value)]) + value, 0x9000)
            return ResponseApdu(b"", 0x6A83)
        if cmd.ins == 0x84:
            return ResponseApdu(os.urandom(cmd.le or 8), 0x9000)
        if cmd.ins == 0x20:
            if self.tries == 0:
                return ResponseApdu(b"", 0x6983)
            if not cmd.data:
                return ResponseApdu(b"", 0x9000 if self.verified else 0x63C0 | self.tries)
            if cmd.data == PIN:
                self.tries, self.verified = 3, True
                return ResponseApdu(b"", 0x9000)
            self.tries -= 1
            return ResponseApdu(b"", 0x63C0 | self.tries if self.tries else 0x6983)
        return ResponseApdu(b"", 0x6D00)

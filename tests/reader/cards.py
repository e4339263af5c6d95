"""Small card objects for reader tests (``apdu.iface.CardLike``)."""

from __future__ import annotations

import os

from apdu.codec import pin_encode
from reader.echo import EchoCard


class PinCard(EchoCard):
    """An echo card that also checks VERIFY against a PIN (63Cx on a wrong one) and answers
    GET CHALLENGE with random bytes."""

    def __init__(self, pin: str = "123456", tries: int = 3) -> None:
        super().__init__()
        self.pin = pin
        self.tries = tries
        self.verified = False
        self.seen: list[bytes] = []

    def reset(self) -> bytes:
        self.verified = False
        return super().reset()

    def transmit(self, command: bytes) -> bytes:
        self.seen.append(command)
        if command[1:2] == b"\x20":
            if len(command) == 5:
                return b"\x90\x00" if self.verified else bytes((0x63, 0xC0 | self.tries))
            if self.tries == 0:
                return b"\x69\x83"
            if command[5:] == pin_encode(self.pin):
                self.verified = True
                self.tries = 3
                return b"\x90\x00"
            self.tries -= 1
            return bytes((0x63, 0xC0 | self.tries)) if self.tries else b"\x69\x83"
        if command[1:2] == b"\x84":
            return os.urandom(command[4] or 256) + b"\x90\x00"
        return super().transmit(command)


class PullableCard(EchoCard):
    """An echo card that leaves the contacts (raises ConnectionError) on command number n."""

    def __init__(self, pull_at: int | None) -> None:
        super().__init__()
        self.pull_at = pull_at
        self.present = True

    def transmit(self, command: bytes) -> bytes:
        if not self.present:
            raise ConnectionError("no card in the reader")
        if self.commands == self.pull_at:
            self.present = False
            self.pull_at = None
            raise ConnectionError("card pulled out")
        return super().transmit(command)

    def power_on(self) -> bytes:
        if not self.present:
            raise ConnectionError("no card in the reader")
        return super().power_on()

    def insert(self) -> None:
        self.present = True

"""Response APDUs, ISO/IEC 7816-4 section 5.1: response data followed by SW1 SW2."""

from __future__ import annotations

from dataclasses import dataclass

from apdu.errors import ApduError


@dataclass(frozen=True, slots=True)
class ResponseApdu:
    """A response APDU.

    >>> ResponseApdu.from_bytes(bytes.fromhex("01029000"))
    ResponseApdu(data=b'\\x01\\x02', sw=36864)
    """

    data: bytes
    sw: int

    def __post_init__(self) -> None:
        if not 0 <= self.sw <= 0xFFFF:
            raise ApduError(f"status word out of range: {self.sw!r}")
        object.__setattr__(self, "data", bytes(self.data))

    @property
    def sw1(self) -> int:
        return self.sw >> 8

    @property
    def sw2(self) -> int:
        return self.sw & 0xFF

    @property
    def ok(self) -> bool:
        """True for 9000 (normal processing)."""
        return self.sw == 0x9000

    def to_bytes(self) -> bytes:
        return self.data + self.sw.to_bytes(2, "big")

    def __bytes__(self) -> bytes:
        return self.to_bytes()

    @classmethod
    def from_bytes(cls, raw: bytes) -> ResponseApdu:
        raw = bytes(raw)
        if len(raw) < 2:
            raise ApduError(f"response of {len(raw)} bytes has no status word", 0x6700)
        return cls(raw[:-2], int.from_bytes(raw[-2:], "big"))

    @classmethod
    def status(cls, sw: int) -> ResponseApdu:
        """A response carrying only a status word."""
        return cls(b"", sw)

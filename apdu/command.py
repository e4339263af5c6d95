"""Command APDUs, ISO/IEC 7816-4:2020 section 5.1 (the four cases, short and extended)."""

from __future__ import annotations

from dataclasses import dataclass

from apdu.errors import ApduError

SW_WRONG_LENGTH = 0x6700


@dataclass(frozen=True, slots=True)
class CommandApdu:
    """A command APDU.

    ``le`` is ``None`` when absent, else the number of bytes expected: 1..256 short
    (256 is encoded ``00``), 1..65536 extended (65536 is encoded ``00 00``). ``le=0`` is
    accepted as the wire value ``00`` and normalised to 256 (short) or 65536 (extended).
    ``extended`` forces the extended-length encoding (ISO 7816-4 section 5.1); it is set
    automatically when data exceeds 255 bytes or Le exceeds 256, and cleared for case 1,
    which has no length field to extend.

    CLA ``FF`` is invalid in an interindustry command (ISO 7816-4 §5.4.1; ISO 7816-3 uses
    it for PPS): :meth:`from_bytes` rejects it with ``6E00``, while the constructor accepts
    it for reader pseudo-APDUs that never reach a card.

    >>> CommandApdu(0x00, 0xA4, 0x02, 0x00, bytes.fromhex("EF05")).to_bytes().hex().upper()
    '00A4020002EF05'
    """

    cla: int
    ins: int
    p1: int
    p2: int
    data: bytes = b""
    le: int | None = None
    extended: bool = False

    def __post_init__(self) -> None:
        for name in ("cla", "ins", "p1", "p2"):
            value = getattr(self, name)
            if not 0 <= value <= 0xFF:
                raise ApduError(f"{name} must be one byte, got {value!r}", 0x6A86)
        object.__setattr__(self, "data", bytes(self.data))
        if self.le is not None and not isinstance(self.le, int):
            raise ApduError(f"Le must be an int or None, got {self.le!r}", SW_WRONG_LENGTH)
        if not self.data and self.le is None:
            object.__setattr__(self, "extended", False)
        limit = 65535 if self.extended else 255
        if len(self.data) > 65535:
            raise ApduError("command data longer than 65535 bytes", SW_WRONG_LENGTH)
        if len(self.data) > limit or (self.le is not None and self.le > 256 and not self.extended):
            object.__setattr__(self, "extended", True)
        if self.le == 0:
            object.__setattr__(self, "le", 65536 if self.extended else 256)
        if self.le is not None and not 1 <= self.le <= (65536 if self.extended else 256):
            raise ApduError(f"Le out of range: {self.le}", SW_WRONG_LENGTH)

    @property
    def case(self) -> int:
        """ISO 7816-4 case: 1 no data no Le, 2 Le only, 3 data only, 4 data and Le."""
        if self.data:
            return 4 if self.le is not None else 3
        return 2 if self.le is not None else 1

    @property
    def header(self) -> bytes:
        """CLA INS P1 P2."""
        return bytes((self.cla, self.ins, self.p1, self.p2))

    def to_bytes(self) -> bytes:
        """Encode per ISO 7816-4 §5.1: short ``Lc``/``Le`` of one byte; extended ``00 Lc1 Lc2``
        and a two-byte Le (three bytes ``00 Le1 Le2`` when there is no data)."""
        out = bytearray(self.header)
        if self.extended:
            if self.data:
                out += b"\x00" + len(self.data).to_bytes(2, "big") + self.data
            if self.le is not None:
                le = (self.le % 65536).to_bytes(2, "big")
                out += le if self.data else b"\x00" + le
        else:
            if self.data:
                out.append(len(self.data))
                out += self.data
            if self.le is not None:
                out.append(self.le % 256)
        return bytes(out)

    def __bytes__(self) -> bytes:
        return self.to_bytes()

    def with_le(self, le: int | None) -> CommandApdu:
        """The same command with another Le (T=0 6Cxx resend)."""
        return CommandApdu(self.cla, self.ins, self.p1, self.p2, self.data, le, self.extended)

    @classmethod
    def from_bytes(cls, raw: bytes) -> CommandApdu:
        """Parse a command APDU (ISO 7816-4 section 5.1); :class:`ApduError` when malformed."""
        raw = bytes(raw)
        n = len(raw)
        if n < 4:
            raise ApduError(f"command APDU of {n} bytes is shorter than its 4-byte header",
                            SW_WRONG_LENGTH)
        cla, ins, p1, p2 = raw[0], raw[1], raw[2], raw[3]
        if cla == 0xFF:
            raise ApduError("CLA FF is invalid (ISO 7816-4 5.4.1)", 0x6E00)
        body = raw[4:]
        b = len(body)
        if b == 0:
            return cls(cla, ins, p1, p2)
        if b == 1:
            return cls(cla, ins, p1, p2, b"", body[0] or 256)
        if body[0] != 0:
            lc = body[0]
            if b == 1 + lc:
                return cls(cla, ins, p1, p2, body[1:])
            if b == 2 + lc:
                return cls(cla, ins, p1, p2, body[1 : 1 + lc], body[-1] or 256)
            raise ApduError(f"Lc={lc} does not match {b - 1} bytes of body", SW_WRONG_LENGTH)
        # body[0] == 0 and b >= 2: extended length
        if b == 3:
            le = int.from_bytes(body[1:3], "big") or 65536
            return cls(cla, ins, p1, p2, b"", le, True)
        if b < 3:
            raise ApduError("truncated extended length field", SW_WRONG_LENGTH)
        lc = int.from_bytes(body[1:3], "big")
        if lc == 0:
            raise ApduError("extended Lc of zero", SW_WRONG_LENGTH)
        if b == 3 + lc:
            return cls(cla, ins, p1, p2, body[3:], None, True)
        if b == 5 + lc:
            le = int.from_bytes(body[3 + lc :], "big") or 65536
            return cls(cla, ins, p1, p2, body[3 : 3 + lc], le, True)
        raise ApduError(f"extended Lc={lc} does not match {b - 3} bytes of body", SW_WRONG_LENGTH)

    def hex(self) -> str:
        return self.to_bytes().hex().upper()

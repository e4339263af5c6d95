"""Answer-to-reset (ISO 7816-3 §8) and the social security meaning of its historical bytes
(spec/card.md §2).

Input form. :func:`parse` takes the ATR as a sequence of byte values:

* ``TS = 3B`` — direct convention;
* ``TS = 3F`` — inverse convention with every byte already in its logical value, the form
  PC/SC readers report and ATR tables list;
* ``TS = 03`` — inverse convention exactly as a direct-convention UART receives it off the
  line (a serial reader): every byte, TS included, is bit-reversed and inverted; the
  parser decodes them with :func:`inverse_byte` first.

``Atr.raw`` always holds the logical bytes (TS 3B or 3F).

>>> atr = parse(bytes.fromhex("3B6D00000081 4A4446866051990000 01AC"))
>>> len(atr.historical), atr.protocols, area_code_prefix(atr)
(13, (0,), '5199')
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from apdu.errors import ApduError

TS_DIRECT = 0x3B
TS_INVERSE = 0x3F
TS_INVERSE_ON_LINE = 0x03

#: Fi by the high nibble of TA1 (ISO 7816-3 Table 7); None = RFU.
FI_TABLE: tuple[int | None, ...] = (372, 372, 558, 744, 1116, 1488, 1860, None,
                                    None, 512, 768, 1024, 1536, 2048, None, None)
#: fmax in kHz by the high nibble of TA1.
FMAX_TABLE: tuple[int | None, ...] = (4000, 5000, 6000, 8000, 12000, 16000, 20000, None,
                                      None, 5000, 7500, 10000, 15000, 20000, None, None)
#: Di by the low nibble of TA1 (ISO 7816-3 Table 8); None = RFU.
DI_TABLE: tuple[int | None, ...] = (None, 1, 2, 4, 8, 16, 32, 64, 12, 20, None, None, None,
                                    None, None, None)


def inverse_byte(b: int) -> int:
    """Convert a byte between inverse and direct convention: bit-reverse and invert.

    >>> hex(inverse_byte(0x03))
    '0x3f'
    """
    if not 0 <= b <= 0xFF:
        raise ApduError(f"not a byte: {b!r}")
    r = 0
    for k in range(8):
        if b >> k & 1:
            r |= 1 << (7 - k)
    return r ^ 0xFF


def inverse_bytes(data: bytes) -> bytes:
    """:func:`inverse_byte` over a byte string."""
    return bytes(inverse_byte(b) for b in data)


@dataclass(frozen=True, slots=True)
class InterfaceGroup:
    """Interface bytes of one group: TAi, TBi, TCi and the protocol ``t`` of TDi.

    ``t`` is None when TDi is absent (the group is the last one). Group 1 is announced by
    T0, group i+1 by TDi (ISO 7816-3 §8.2.3).
    """

    ta: int | None = None
    tb: int | None = None
    tc: int | None = None
    t: int | None = None

    def __post_init__(self) -> None:
        for name in ("ta", "tb", "tc"):
            v = getattr(self, name)
            if v is not None and not 0 <= v <= 0xFF:
                raise ApduError(f"{name} must be a byte, got {v!r}")
        if self.t is not None and not 0 <= self.t <= 15:
            raise ApduError(f"protocol must be 0..15, got {self.t!r}")

    @property
    def empty(self) -> bool:
        return self.ta is None and self.tb is None and self.tc is None and self.t is None

    def y(self) -> int:
        """The presence nibble announcing this group."""
        return ((self.ta is not None) | (self.tb is not None) << 1
                | (self.tc is not None) << 2 | (self.t is not None) << 3)


@dataclass(frozen=True, slots=True)
class Atr:
    """A parsed answer-to-reset (ISO 7816-3 §8.2)."""

    raw: bytes
    convention: str
    t0: int
    groups: tuple[InterfaceGroup, ...]
    historical: bytes
    tck: int | None

    @property
    def ts(self) -> int:
        return self.raw[0]

    @property
    def protocols(self) -> tuple[int, ...]:
        """Protocols offered in TD bytes, in order, without T=15; (0,) when none."""
        out: list[int] = []
        for g in self.groups:
            if g.t is not None and g.t != 15 and g.t not in out:
                out.append(g.t)
        return tuple(out) or (0,)

    def _group(self, i: int) -> InterfaceGroup | None:
        return self.groups[i - 1] if 1 <= i <= len(self.groups) else None

    def ta(self, i: int) -> int | None:
        g = self._group(i)
        return g.ta if g else None

    def tb(self, i: int) -> int | None:
        g = self._group(i)
        return g.tb if g else None

    def tc(self, i: int) -> int | None:
        g = self._group(i)
        return g.tc if g else None

    def td(self, i: int) -> int | None:
        """The TDi byte as transmitted (Y nibble of the next group ‖ protocol), or None."""
        g = self._group(i)
        if g is None or g.t is None:
            return None
        nxt = self._group(i + 1)
        return (nxt.y() if nxt else 0) << 4 | g.t

    @property
    def fi(self) -> int:
        """Clock rate conversion factor Fi from TA1 (default 372, ISO 7816-3 §8.3)."""
        ta1 = self.ta(1)
        return 372 if ta1 is None else _fi(ta1)

    @property
    def di(self) -> int:
        """Baud rate adjustment factor Di from TA1 (default 1)."""
        ta1 = self.ta(1)
        return 1 if ta1 is None else _di(ta1)

    @property
    def extra_guard_time(self) -> int:
        """N from TC1 (default 0)."""
        return self.tc(1) or 0

    @property
    def wi(self) -> int:
        """T=0 waiting time integer from TC2 (default 10, ISO 7816-3 §10.2)."""
        tc2 = self.tc(2)
        return 10 if tc2 is None else tc2

    @property
    def specific_mode(self) -> int | None:
        """The protocol TA2 fixes (specific mode), or None (negotiable mode)."""
        ta2 = self.ta(2)
        return None if ta2 is None else ta2 & 0x0F

    def hex(self) -> str:
        return self.raw.hex().upper()


def _fi(ta1: int) -> int:
    fi = FI_TABLE[ta1 >> 4]
    if fi is None:
        raise ApduError(f"TA1 {ta1:02X}: Fi index {ta1 >> 4} is reserved")
    return fi


def _di(ta1: int) -> int:
    di = DI_TABLE[ta1 & 0x0F]
    if di is None:
        raise ApduError(f"TA1 {ta1:02X}: Di index {ta1 & 0x0F} is reserved")
    return di


def _needs_tck(groups: Sequence[InterfaceGroup]) -> bool:
    """TCK is absent when only T=0 is indicated, present otherwise (ISO 7816-3 §8.2.5)."""
    return any(g.t is not None and g.t != 0 for g in groups)


def parse(raw: bytes) -> Atr:
    """Parse an ATR (see the module docstring for the accepted forms).

    Raises :class:`ApduError` on a bad TS, a truncated or over-long ATR, reserved TA1
    values, or a TCK that does not make the XOR of T0..TCK zero.
    """
    raw = bytes(raw)
    if not raw:
        raise ApduError("empty ATR")
    if raw[0] == TS_INVERSE_ON_LINE:
        raw = inverse_bytes(raw)
    ts = raw[0]
    if ts == TS_DIRECT:
        convention = "direct"
    elif ts == TS_INVERSE:
        convention = "inverse"
    else:
        raise ApduError(f"TS {ts:02X} is neither 3B (direct) nor 3F (inverse)")
    if len(raw) < 2:
        raise ApduError("ATR ends before T0")
    t0 = raw[1]
    k = t0 & 0x0F
    y = t0 >> 4
    i = 2
    groups: list[InterfaceGroup] = []
    while True:
        vals: list[int | None] = []
        for bit in range(3):
            if y >> bit & 1:
                if i >= len(raw):
                    raise ApduError("ATR truncated in the interface bytes")
                vals.append(raw[i])
                i += 1
            else:
                vals.append(None)
        t: int | None = None
        next_y = 0
        if y & 0x8:
            if i >= len(raw):
                raise ApduError("ATR truncated in the interface bytes")
            td = raw[i]
            i += 1
            t, next_y = td & 0x0F, td >> 4
        groups.append(InterfaceGroup(vals[0], vals[1], vals[2], t))
        if t is None or next_y == 0:
            break
        y = next_y
    if i + k > len(raw):
        raise ApduError(f"ATR truncated: {k} historical bytes announced, "
                        f"{len(raw) - i} bytes left")
    historical = raw[i : i + k]
    i += k
    tck: int | None = None
    if _needs_tck(groups):
        if i >= len(raw):
            raise ApduError("ATR lacks TCK although a protocol other than T=0 is offered")
        tck = raw[i]
        i += 1
        x = 0
        for b in raw[1:i]:
            x ^= b
        if x != 0:
            raise ApduError(f"ATR check byte TCK {tck:02X} is wrong (XOR T0..TCK = {x:02X})")
    if i != len(raw):
        raise ApduError(f"{len(raw) - i} unexpected bytes after the ATR")
    ta1 = groups[0].ta
    if ta1 is not None:
        _fi(ta1)
        _di(ta1)
    return Atr(raw, convention, t0, tuple(groups), historical, tck)


def assemble(groups: Sequence[InterfaceGroup], historical: bytes = b"",
             convention: str = "direct") -> bytes:
    """Encode an ATR from its interface groups (group 1 first) and historical bytes.

    Every group but the last must end with a protocol (TDi); groups after the first must
    not be empty. TCK is appended when required (ISO 7816-3 §8.2.5).
    """
    if not groups:
        groups = [InterfaceGroup()]
    if len(historical) > 15:
        raise ApduError(f"at most 15 historical bytes, got {len(historical)}")
    for n, g in enumerate(groups):
        if n < len(groups) - 1 and g.t is None:
            raise ApduError(f"interface group {n + 1} is not the last but has no TD")
        if n > 0 and g.empty:
            raise ApduError(f"interface group {n + 1} is empty")
    if convention not in ("direct", "inverse"):
        raise ApduError(f"convention must be 'direct' or 'inverse', got {convention!r}")
    out = bytearray((TS_DIRECT if convention == "direct" else TS_INVERSE,))
    out.append(groups[0].y() << 4 | len(historical))
    for n, g in enumerate(groups):
        out += bytes(v for v in (g.ta, g.tb, g.tc) if v is not None)
        if g.t is not None:
            nxt = groups[n + 1].y() if n + 1 < len(groups) else 0
            out.append(nxt << 4 | g.t)
    out += historical
    if _needs_tck(groups):
        x = 0
        for b in out[1:]:
            x ^= b
        out.append(x)
    return bytes(out)


def build(historical: bytes = b"", protocols: Sequence[int] = (0,), *, ta1: int | None = None,
          tb1: int | None = None, tc1: int | None = None, tc2: int | None = None,
          convention: str = "direct") -> bytes:
    """Build a typical ATR: global bytes TA1/TB1/TC1, TC2 (T=0 WI), the offered protocols.

    ``protocols=(0,)`` without TC2 needs no TD at all (T=0 is implicit).

    >>> build(bytes.fromhex("00814A44468660519900 0001AC"), tb1=0, tc1=0).hex().upper()
    '3B6D000000814A444686605199000001AC'
    """
    protos = list(protocols)
    if not protos:
        raise ApduError("at least one protocol")
    if any(not 0 <= p <= 14 for p in protos):
        raise ApduError(f"protocols must be 0..14, got {protos}")
    if ta1 is not None:
        _fi(ta1)
        _di(ta1)
    first = InterfaceGroup(ta1, tb1, tc1)
    if protos == [0] and tc2 is None:
        return assemble([first], historical, convention)
    groups = [InterfaceGroup(ta1, tb1, tc1, protos[0]), InterfaceGroup(None, None, tc2, None)]
    for p in protos[1:]:
        groups[-1] = InterfaceGroup(groups[-1].ta, groups[-1].tb, groups[-1].tc, p)
        groups.append(InterfaceGroup())
    if groups[-1].empty:
        groups.pop()
    return assemble(groups, historical, convention)


# --- social security meaning (spec/card.md §2) --------------------------------------------


def _hist(atr: Atr | bytes, need: int) -> bytes:
    parsed = atr if isinstance(atr, Atr) else parse(atr)
    if len(parsed.historical) < need:
        raise ApduError(f"a social security card ATR has 13 historical bytes, "
                        f"this one has {len(parsed.historical)}")
    return parsed.historical


def area_code_prefix(atr: Atr | bytes) -> str:
    """T8–T9 in BCD: the first four digits of the issuing area code."""
    h = _hist(atr, 9)
    digits = h[7:9].hex().upper()
    if not digits.isdigit():
        raise ApduError(f"historical bytes T8-T9 {digits} are not BCD")
    return digits


def card_serial(atr: Atr | bytes) -> bytes:
    """TA–TD, i.e. historical bytes T10–T13 (4 bytes): the card serial within the area."""
    return _hist(atr, 13)[9:13]


def diversification_factor(atr: Atr | bytes) -> bytes:
    """Historical bytes T6–T13 (8 bytes): the level-3 key diversification factor (§8)."""
    return _hist(atr, 13)[5:13]


def chip_supplier(atr: Atr | bytes) -> bytes:
    """T1–T2: the chip supplier identifier."""
    return _hist(atr, 2)[0:2]


def card_maker(atr: Atr | bytes) -> bytes:
    """T6–T7: the card maker identifier."""
    return _hist(atr, 7)[5:7]

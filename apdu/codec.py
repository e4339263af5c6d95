"""Field encodings of the card's data items (spec/card.md §4).

``cn`` is BCD, left-aligned, padded with ``F``; ``an`` is GBK text, left-aligned, padded with
``00``; ``b`` is big-endian binary; money is binary fen.

>>> cn_encode("639900", 3).hex().upper()
'639900'
>>> cn_decode(bytes.fromhex("12345F"))
'12345'
>>> an_decode(an_encode("张三", 6))
'张三'
>>> card_number_check_char("D2143569")
'X'
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass

from apdu.errors import ApduError

SW_WRONG_DATA = 0x6A80
SW_WRONG_LENGTH = 0x6700

#: The card holds local time of the issuing region (UTC+8).
CHINA_TZ = _dt.timezone(_dt.timedelta(hours=8), "CST")

_HEX = "0123456789ABCDEF"


# --- cn (BCD) ---------------------------------------------------------------------------


def cn_encode(digits: str, length: int) -> bytes:
    """``digits`` as BCD in ``length`` bytes, left-aligned, padded with ``F``.

    >>> cn_encode("123", 3).hex().upper()
    '123FFF'
    """
    if any(c not in "0123456789" for c in digits):
        raise ApduError(f"cn field takes decimal digits only, got {digits!r}", SW_WRONG_DATA)
    if len(digits) > 2 * length:
        raise ApduError(f"{len(digits)} digits do not fit cn{length}", SW_WRONG_LENGTH)
    return bytes.fromhex(digits.ljust(2 * length, "F"))


def cn_decode(data: bytes) -> str:
    """Digits of a cn field up to the first ``F`` nibble; other non-digit nibbles are errors."""
    out = []
    for ch in bytes(data).hex().upper():
        if ch == "F":
            break
        if ch not in "0123456789":
            raise ApduError(f"cn field {bytes(data).hex().upper()} holds nibble {ch}",
                            SW_WRONG_DATA)
        out.append(ch)
    return "".join(out)


def pin_encode(pin: str) -> bytes:
    """A PIN as BCD, an odd digit count padded with ``F`` (spec/card.md §5 VERIFY).

    >>> pin_encode("12345").hex().upper()
    '12345F'
    """
    if not pin or not pin.isascii() or not pin.isdigit():
        raise ApduError("a PIN is one or more decimal digits", SW_WRONG_DATA)
    if len(pin) > 16:
        raise ApduError(f"a PIN of {len(pin)} digits is too long (at most 16)", SW_WRONG_LENGTH)
    return cn_encode(pin, (len(pin) + 1) // 2)


def pin_decode(data: bytes) -> str:
    """Inverse of :func:`pin_encode`."""
    pin = cn_decode(data)
    if not pin or len(pin) < 2 * len(data) - 1:
        raise ApduError("malformed PIN block", SW_WRONG_DATA)
    return pin


# --- an (GBK text) ----------------------------------------------------------------------


def an_encode(text: str, length: int) -> bytes:
    """``text`` in GBK, left-aligned in ``length`` bytes, padded with ``00``."""
    try:
        raw = text.encode("gbk")
    except UnicodeEncodeError as exc:
        raise ApduError(f"{text!r} cannot be written in GBK", SW_WRONG_DATA) from exc
    if b"\x00" in raw:
        raise ApduError("an field text may not contain NUL", SW_WRONG_DATA)
    if len(raw) > length:
        raise ApduError(f"{text!r} takes {len(raw)} bytes in GBK, more than an{length}",
                        SW_WRONG_LENGTH)
    return raw.ljust(length, b"\x00")


def an_decode(data: bytes) -> str:
    """Text of an an field: GBK up to the ``00`` padding (``FF`` filler is ignored too)."""
    raw = bytes(data).split(b"\x00", 1)[0].rstrip(b"\xff")
    try:
        return raw.decode("gbk")
    except UnicodeDecodeError as exc:
        raise ApduError(f"an field {raw.hex().upper()} is not GBK text", SW_WRONG_DATA) from exc


def split_name(name: str, main_len: int = 30, ext_len: int = 20) -> tuple[bytes, bytes]:
    """Encode a name into tag 09 (an30) and the name extension tag 4E (an20).

    The split falls on a character boundary, so :func:`join_name` restores the name.
    Both fields come back padded to full length (spec/card.md §4, EF06).

    >>> a, b = split_name("张" * 16)
    >>> len(a), len(b), join_name(a, b) == "张" * 16
    (30, 20, True)
    """
    main = bytearray()
    rest = ""
    for k, ch in enumerate(name):
        try:
            enc = ch.encode("gbk")
        except UnicodeEncodeError as exc:
            raise ApduError(f"{ch!r} cannot be written in GBK", SW_WRONG_DATA) from exc
        if len(main) + len(enc) > main_len:
            rest = name[k:]
            break
        main += enc
    return an_encode(main.decode("gbk"), main_len), an_encode(rest, ext_len)


def join_name(b09: bytes, b4e: bytes = b"") -> str:
    """The full name from tag 09 and its extension tag 4E."""
    return an_decode(b09) + an_decode(b4e)


# --- b (binary) money -------------------------------------------------------------------


def money_encode(fen: int, length: int = 4) -> bytes:
    """An amount in fen as unsigned big-endian binary (spec/card.md §4).

    >>> money_encode(12345).hex()
    '00003039'
    """
    if fen < 0:
        raise ApduError(f"negative amount {fen} fen cannot be stored", SW_WRONG_DATA)
    if fen >= 1 << (8 * length):
        raise ApduError(f"{fen} fen does not fit {length} bytes", SW_WRONG_DATA)
    return fen.to_bytes(length, "big")


def money_decode(data: bytes) -> int:
    """Inverse of :func:`money_encode`."""
    if not data:
        raise ApduError("empty money field", SW_WRONG_LENGTH)
    return int.from_bytes(data, "big")


# --- dates ------------------------------------------------------------------------------


def date_encode(date: _dt.date) -> bytes:
    """cn4 ``YYYYMMDD`` (spec/card.md §4, EF05 tags 05/06, EF06 tag 0D).

    >>> date_encode(_dt.date(2020, 10, 1)).hex()
    '20201001'
    """
    if isinstance(date, _dt.datetime):
        date = date.date()
    return cn_encode(f"{date.year:04d}{date.month:02d}{date.day:02d}", 4)


def date_decode(data: bytes) -> _dt.date:
    """Inverse of :func:`date_encode`; ApduError for anything but a valid calendar date."""
    s = cn_decode(data)
    if len(data) != 4 or len(s) != 8:
        raise ApduError(f"date field {bytes(data).hex().upper()} is not cn4 YYYYMMDD",
                        SW_WRONG_DATA)
    try:
        return _dt.date(int(s[:4]), int(s[4:6]), int(s[6:]))
    except ValueError as exc:
        raise ApduError(f"{s} is not a calendar date", SW_WRONG_DATA) from exc


def datetime_encode(moment: _dt.datetime, tz: _dt.tzinfo = CHINA_TZ) -> bytes:
    """cn7 ``YYYYMMDDhhmmss`` in local time of ``tz`` (an aware moment is converted first).

    >>> datetime_encode(_dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=_dt.timezone.utc)).hex()
    '20260102110405'
    """
    if moment.tzinfo is not None:
        moment = moment.astimezone(tz)
    m = moment
    return cn_encode(f"{m.year:04d}{m.month:02d}{m.day:02d}{m.hour:02d}{m.minute:02d}"
                     f"{m.second:02d}", 7)


def datetime_decode(data: bytes, tz: _dt.tzinfo = CHINA_TZ) -> _dt.datetime:
    """Inverse of :func:`datetime_encode`: an aware datetime in ``tz``."""
    s = cn_decode(data)
    if len(data) != 7 or len(s) != 14:
        raise ApduError(f"time field {bytes(data).hex().upper()} is not cn7 YYYYMMDDhhmmss",
                        SW_WRONG_DATA)
    try:
        return _dt.datetime(int(s[:4]), int(s[4:6]), int(s[6:8]), int(s[8:10]),
                            int(s[10:12]), int(s[12:]), tzinfo=tz)
    except ValueError as exc:
        raise ApduError(f"{s} is not a valid time", SW_WRONG_DATA) from exc


# --- check characters -------------------------------------------------------------------

_CARD_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
_ALNUM = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def card_number_check_char(body8: str) -> str:
    """Check character of a card number body (spec/card.md §4).

    Weights 3 7 9 10 5 8 4 2; digits count as themselves, A=10 … Z=35;
    r = 11 − (Σ mod 11); r=10 → ``X``, r=11 → ``0``.
    """
    body = body8.upper()
    if len(body) != 8 or any(c not in _ALNUM for c in body):
        raise ApduError(f"card number body must be 8 characters 0-9/A-Z, got {body8!r}",
                        SW_WRONG_DATA)
    total = sum(_ALNUM.index(c) * w for c, w in zip(body, _CARD_WEIGHTS, strict=True))
    r = 11 - total % 11
    return "X" if r == 10 else "0" if r == 11 else str(r)


def card_number_valid(cn9: str) -> bool:
    """True when ``cn9`` is 8 body characters followed by the right check character.

    >>> card_number_valid("X00000019"), card_number_valid("X00000018")
    (True, False)
    """
    if len(cn9) != 9:
        return False
    try:
        return card_number_check_char(cn9[:8]) == cn9[8].upper()
    except ApduError:
        return False


def id_check_digit(body17: str) -> str:
    """Resident ID check character (GB 11643-1999)."""
    if len(body17) != 17 or not body17.isascii() or not body17.isdigit():
        raise ApduError(f"ID number body must be 17 digits, got {body17!r}", SW_WRONG_DATA)
    total = sum(int(c) * w for c, w in zip(body17, _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11]


def id_number_valid(id18: str) -> bool:
    """True for an 18-character resident ID number with a correct check character.

    >>> id_number_valid("11010519491231002X")
    True
    """
    if len(id18) != 18:
        return False
    try:
        return id_check_digit(id18[:17]) == id18[17].upper()
    except ApduError:
        return False


# --- card identification code -----------------------------------------------------------

RID_MOHRSS = bytes.fromhex("D156000005")


@dataclass(frozen=True, slots=True)
class CardIdCode:
    """EF05 tag 01, the card identification code, 16 bytes (spec/card.md §4):
    city code cn3 ‖ ``D1 56 00 00 05`` ‖ card serial (4 bytes) ‖ authentication code (4 bytes).

    ``city`` is the 6-digit area code; ``serial`` and ``auth`` are the raw 4-byte values
    written as 8 upper-case hex characters (cards in the field store arbitrary bytes there).

    >>> c = CardIdCode.from_hex("639900D15600000500BF7C7A48FB4966")
    >>> c.city, c.serial, c.auth
    ('639900', '00BF7C7A', '48FB4966')
    >>> c.to_hex()
    '639900D15600000500BF7C7A48FB4966'
    """

    city: str
    serial: str
    auth: str

    def __post_init__(self) -> None:
        if len(self.city) != 6 or not self.city.isascii() or not self.city.isdigit():
            raise ApduError(f"city code must be 6 digits, got {self.city!r}", SW_WRONG_DATA)
        for name in ("serial", "auth"):
            value = getattr(self, name)
            if len(value) != 8 or any(c not in _HEX for c in value.upper()):
                raise ApduError(f"{name} must be 8 hex characters, got {value!r}", SW_WRONG_DATA)
            object.__setattr__(self, name, value.upper())

    def to_bytes(self) -> bytes:
        return (cn_encode(self.city, 3) + RID_MOHRSS + bytes.fromhex(self.serial)
                + bytes.fromhex(self.auth))

    def __bytes__(self) -> bytes:
        return self.to_bytes()

    def to_hex(self) -> str:
        return self.to_bytes().hex().upper()

    @property
    def area_code(self) -> str:
        return self.city

    @classmethod
    def from_bytes(cls, raw: bytes) -> CardIdCode:
        raw = bytes(raw)
        if len(raw) != 16:
            raise ApduError(f"card identification code is 16 bytes, got {len(raw)}",
                            SW_WRONG_LENGTH)
        if raw[3:8] != RID_MOHRSS:
            raise ApduError(f"card identification code lacks D156000005: {raw.hex().upper()}",
                            SW_WRONG_DATA)
        city = cn_decode(raw[:3])
        return cls(city, raw[8:12].hex().upper(), raw[12:16].hex().upper())

    @classmethod
    def from_hex(cls, text: str) -> CardIdCode:
        try:
            raw = bytes.fromhex(text)
        except ValueError as exc:
            raise ApduError(f"card identification code {text!r} is not hex",
                            SW_WRONG_DATA) from exc
        return cls.from_bytes(raw)

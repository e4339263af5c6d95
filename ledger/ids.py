"""Identifiers the host checks and mints: ID numbers, card numbers, card identification
codes, PANs, msgids.

- Resident ID number (社会保障号码 = 公民身份号码): GB 11643-1999, 18 characters, check character
  from weights 7 9 10 5 8 4 2 1 6 3 7 9 10 5 8 4 2, Σ mod 11 indexing ``"10X98765432"``.
- Social security card number (社会保障卡卡号, spec/card.md §4, ``cn9``): 8 body characters
  (digits or capital letters, A=10 … Z=35) and a check character: weights 3 7 9 10 5 8 4 2,
  r = 11 − (Σ mod 11), 10 → ``X``, 11 → ``0``.
- Card identification code (卡识别码): 32 hex characters, the first six being the area code.
- PAN: 19 digits with a Luhn check digit (ISO/IEC 7812-1).
- msgid: 30 characters = institution code 12 ‖ yyyyMMddHHmmss ‖ sequence 4 (spec/host.md §1).
"""

from __future__ import annotations

import hashlib
import re

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
_CN_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)
_ALNUM = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_ALNUM_VALUE = {c: i for i, c in enumerate(_ALNUM)}


def id_check_char(body17: str) -> str:
    """GB 11643 check character of the first 17 digits.

    >>> id_check_char("11010519491231002")
    'X'
    """
    if len(body17) != 17 or not body17.isdigit():
        raise ValueError("an ID number body is 17 digits")
    return _ID_CHECK[sum(int(c) * w for c, w in zip(body17, _ID_WEIGHTS, strict=True)) % 11]


def valid_id_number(certno: str) -> bool:
    """True for an 18-character resident ID number whose check character is right."""
    if len(certno) != 18 or not certno[:17].isdigit():
        return False
    return id_check_char(certno[:17]) == certno[17].upper()


def card_check_char(body8: str) -> str:
    """Check character of a social security card number body (spec/card.md §4).

    >>> card_check_char("X0000001")
    '9'
    """
    if len(body8) != 8:
        raise ValueError("a card number body is 8 digits or capital letters")
    try:
        total = sum(_ALNUM_VALUE[c] * w for c, w in zip(body8, _CN_WEIGHTS, strict=True))
    except KeyError:
        raise ValueError("a card number body is 8 digits or capital letters") from None
    r = 11 - total % 11
    return "X" if r == 10 else "0" if r == 11 else str(r)


def valid_card_no(card_no: str) -> bool:
    """True for a 9-character card number with the right check character."""
    if len(card_no) != 9:
        return False
    try:
        return card_check_char(card_no[:8]) == card_no[8]
    except ValueError:
        return False


def make_card_no(seed: str, salt: int = 0) -> str:
    """A well-formed card number derived from ``seed`` (letter ‖ 7 digits ‖ check)."""
    h = int.from_bytes(hashlib.sha256(f"{seed}/{salt}".encode()).digest()[:8], "big")
    body = _ALNUM[10 + h % 24] + f"{(h // 24) % 10_000_000:07d}"  # A..X; Y, Z: bulk loads
    return body + card_check_char(body)


_CARD_SN_RE = re.compile(r"^[0-9A-F]{32}$")


def valid_card_sn(card_sn: str) -> bool:
    """True for a 32-hex-character card identification code (upper case)."""
    return bool(_CARD_SN_RE.match(card_sn))


RID_MOHRSS = bytes.fromhex("D156000005")


def card_sn_auth(area: str, serial_hex: str) -> str:
    """The 4-byte authentication part of a card identification code: the first four bytes
    of SHA-256 over ``area(ASCII) ‖ D1 56 00 00 05 ‖ serial`` (sscard's issuer choice; the
    card image checks the same)."""
    digest = hashlib.sha256(area.encode() + RID_MOHRSS + bytes.fromhex(serial_hex)).digest()
    return digest[:4].hex().upper()


def make_card_sn(area: str, seed: str) -> str:
    """Card identification code (spec/card.md §4, EF05 tag 01): area(6) ‖ ``D156000005`` ‖
    serial (8 hex) ‖ authentication code (8 hex)."""
    serial = hashlib.sha256(seed.encode()).hexdigest()[:8].upper()
    if serial[0] == "F":  # serials F……… are left to bulk loads
        serial = "E" + serial[1:]
    return f"{area}D156000005{serial}{card_sn_auth(area, serial)}"


def card_sn_authentic(card_sn: str) -> bool:
    """True when the code's authentication part matches its area and serial."""
    return (valid_card_sn(card_sn) and card_sn[6:16] == "D156000005"
            and card_sn_auth(card_sn[:6], card_sn[16:24]) == card_sn[24:32])


def luhn_digit(body: str) -> str:
    """Luhn check digit for ``body`` (ISO/IEC 7812-1 annex B).

    >>> luhn_digit("7992739871")
    '3'
    """
    total = 0
    for i, c in enumerate(reversed(body)):
        d = int(c)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return str((10 - total % 10) % 10)


def valid_pan(pan: str) -> bool:
    """True for a 16–19 digit PAN with a correct Luhn digit."""
    return pan.isdigit() and 16 <= len(pan) <= 19 and luhn_digit(pan[:-1]) == pan[-1]


def make_pan(bin6: str, serial: int) -> str:
    """A 19-digit PAN: issuer BIN ‖ 12-digit serial ‖ Luhn digit (serials from 9×10¹¹ up
    are left to bulk loads)."""
    body = f"{bin6}{serial % (9 * 10**11):012d}"
    return body + luhn_digit(body)


_MSGID_RE = re.compile(r"^[0-9A-Z]{12}\d{14}\d{4}$")


def valid_msgid(msgid: str) -> bool:
    """True for a 30-character msgid: institution 12 ‖ yyyyMMddHHmmss ‖ sequence 4."""
    return bool(_MSGID_RE.match(msgid))

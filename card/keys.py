"""TEST key material and the key naming shared by cards and PSAMs (spec/card.md §8).

**Every key here is a TEST key**: deterministic, published in this source file, good for
development and nothing else. Card and PSAM images built from them carry
``"test_keys": true``.

Key hierarchy (three diversification levels, spec/card.md §8)::

    TEST root(name, alg) = SHA-256("sscard TEST root key|name|alg")[:16]
      └─ level 1: factor ASCII(city[:2]) ‖ "0000sh"   province key
          └─ level 2: factor ASCII(city) ‖ "sx"       city key  ← what a PSAM of that city holds
              └─ level 3: ATR historical bytes 6–13    card key  ← what the card holds

The bank application's application-cryptogram master key ``AC`` uses the same first two
levels and, at level 3, the EMV "option A" factor of the PAN (:func:`pan_factor`) so the
host can derive it from the PAN it sees in the transaction (see :mod:`card.pboc`).

Key names (card side) and their PSAM addressing in DELIVERY SESSION KEY
(``BF DE P1 P2``: P1 = algorithm id << 4 | usage, P2 = kid):

======== ===== ===== ==============================================================
name     usage kid   role
======== ===== ===== ==============================================================
IRK      01    01    internal authentication (the card proves it is genuine)
RKSSSE   02    0A    read key of the SSSE holder/photo files (EXTERNAL AUTHENTICATE 0A)
PUK      03    01    PIN UNBLOCK / PIN RELOAD of the SSSE PIN (the shared PIN)
BPUK     03    02    PIN UNBLOCK / PIN RELOAD of the bank PIN (policy ``separate``)
UKSSSE   04    01    update key of SSSE EF05/EF06
UK1DF04  04    04    update key of DF04 EF05/EF06
BK       05    01    APPLICATION BLOCK
LK       06    01    CARD BLOCK
AC       07    01    bank application cryptogram master key (level 3 = PAN factor)
DPK      08    01    offline purse purchase key (INIT SAM FOR PURCHASE)
DTK      09    01    offline purse transaction authentication code (TAC) key
DLK      0A    01    offline purse load key (held by the host)
======== ===== ===== ==============================================================
"""

from __future__ import annotations

import hashlib

from card import crypto

#: Key name → (usage, kid) for DELIVERY SESSION KEY and the card's key table.
KEY_IDS: dict[str, tuple[int, int]] = {
    "IRK": (0x01, 0x01),
    "RKSSSE": (0x02, 0x0A),
    "PUK": (0x03, 0x01),
    "BPUK": (0x03, 0x02),
    "UKSSSE": (0x04, 0x01),
    "UK1DF04": (0x04, 0x04),
    "BK": (0x05, 0x01),
    "LK": (0x06, 0x01),
    "AC": (0x07, 0x01),
    "DPK": (0x08, 0x01),
    "DTK": (0x09, 0x01),
    "DLK": (0x0A, 0x01),
}
KEY_BY_ID: dict[tuple[int, int], str] = {v: k for k, v in KEY_IDS.items()}

#: The usage of read keys: the keys a terminal proves it holds with EXTERNAL AUTHENTICATE
#: ``00 82 00 kid`` (spec/card.md §5; the card looks the key up as ``(USAGE_READ, kid)``).
USAGE_READ = 0x02

#: Keys with an error counter in the card image (card.image, card.keyauth): every key that
#: EXTERNAL AUTHENTICATE can name.
EXTERNAL_AUTH_KEYS = tuple(name for name, (usage, _) in KEY_IDS.items() if usage == USAGE_READ)

#: Keys a card holds, diversified to level 3 with the ATR factor.
CARD_KEYS = ("IRK", "RKSSSE", "PUK", "BPUK", "UKSSSE", "UK1DF04", "BK", "LK", "DPK", "DTK",
             "DLK")

ALG_NAMES = {"3DES": crypto.ALG_3DES, "SM4": crypto.ALG_SM4}


def alg_id(name: str) -> int:
    """``"3DES"`` → 01, ``"SM4"`` → 03."""
    try:
        return ALG_NAMES[name.upper()]
    except KeyError:
        raise ValueError(f"unknown algorithm {name!r}; use 3DES or SM4") from None


def alg_name(alg: int) -> str:
    return crypto.ALGORITHMS[alg]


def test_root_key(name: str, alg: int) -> bytes:
    """The TEST root key ``name`` for algorithm ``alg`` (16 bytes, deterministic, public)."""
    if name not in KEY_IDS:
        raise ValueError(f"unknown key name {name!r}")
    seed = f"sscard TEST root key|{name}|{alg_name(alg)}".encode()
    return hashlib.sha256(seed).digest()[:16]


def city_key(name: str, alg: int, city: str) -> bytes:
    """Level-2 key of ``city`` (what that city's PSAM holds)."""
    factors = [crypto.level1_factor(city), crypto.level2_factor(city)]
    return crypto.diversify_levels(test_root_key(name, alg), factors, alg)


def card_key(name: str, alg: int, city: str, historical: bytes) -> bytes:
    """Level-3 key of one card: the city key diversified with ATR historical bytes 6–13."""
    return crypto.diversify(city_key(name, alg, city), crypto.level3_factor(historical), alg)


def pan_factor(pan: str, psn: int = 0) -> bytes:
    """EMV option A factor: rightmost 16 digits of ``PAN ‖ PSN(2 digits)``, BCD, 8 bytes.

    >>> pan_factor("6217000000000000011", 1).hex().upper()
    '0000000000001101'
    """
    digits = (pan + f"{psn:02d}")[-16:].rjust(16, "0")
    return bytes.fromhex(digits)


def ac_master_key(alg: int, city: str, pan: str, psn: int = 0) -> bytes:
    """The card's application-cryptogram key (see :mod:`card.pboc` for the ARQC recipe)."""
    return crypto.diversify(city_key("AC", alg, city), pan_factor(pan, psn), alg)

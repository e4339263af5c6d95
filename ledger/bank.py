"""Bank-account debits authorised by the card's ARQC (spec/card.md §11, §8).

The card's PBOC debit application signs each online transaction with an application
cryptogram (ARQC, GENERATE AC); the host re-computes it with the card's key and refuses a
cryptogram that is forged, made for another amount, or replayed. The recipe is the one the
card implements (``card/pboc.py``), re-implemented here because the host shares no code
with the card:

1. card key ``MK``: diversify (spec/card.md §8: 3DES ``E(K, f) ‖ E(K, ~f)``, SM4
   ``E(K, f ‖ ~f)``) the issuer's root key ``AC`` with, in order, the level-1 factor
   ``ASCII(area[:2]) ‖ "0000sh"``, the level-2 factor ``ASCII(area) ‖ "sx"`` and the PAN
   factor = the rightmost 16 digits of ``PAN ‖ PSN`` (PSN 2 digits) as 8 BCD bytes (EMV
   option A). ``area`` is the card's 6-digit area code (the first six characters of its
   card identification code). Root keys are per bank in the area policy
   (``banks.<code>.test_root_ac_3des`` / ``test_root_ac_sm4``): TEST keys only.
2. session key: 3DES ``SK = 3DES-EDE(MK, ATC ‖ 00×6)`` (an 8-byte single-DES key);
   SM4 ``SK = SM4(MK, ATC ‖ 00×14)``.
3. data ``D`` = the 29 bytes of CDOL1 data exactly as the terminal sent them in GENERATE AC
   (9F02 amount n12 ‖ 9F03 other amount ‖ 9F1A country ‖ 95 TVR ‖ 5F2A currency ‖ 9A date
   YYMMDD ‖ 9C type ‖ 9F37 unpredictable number) ‖ AIP ``1C 00`` ‖ ATC (2 bytes).
4. ``D`` padded ``80 00…`` to the block size (ISO/IEC 9797-1 method 2), CBC with IV 0
   under ``SK`` (single DES / SM4).
5. ARQC = the last block (3DES) or its left 8 bytes XOR its right 8 bytes (SM4).

The ATC must be strictly greater than the last one the host accepted for the card; the
host stores the new ATC in the same transaction as the debit, so a replayed cryptogram is
refused. The ARPC returned (method 1) is ``E(SK, ARQC ⊕ (ARC ‖ 00×6))`` with ARC ``3030``.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

ALG_3DES = 0x01
ALG_SM4 = 0x03
ALG_NAMES = {ALG_3DES: "3DES", ALG_SM4: "SM4"}
AIP = bytes.fromhex("1C00")
CDOL1_LEN = 29
ARC_APPROVED = b"\x30\x30"


def _des_key(key: bytes) -> bytes:
    """An 8- or 16-byte DES key as the equivalent 24-byte three-key form."""
    return key * 3 if len(key) == 8 else key + key[:8] if len(key) == 16 else key


def _ecb(key: bytes, data: bytes, alg: int) -> bytes:
    if alg == ALG_3DES:
        c = Cipher(TripleDES(_des_key(key)), modes.ECB())
    else:
        c = Cipher(algorithms.SM4(key), modes.ECB())
    enc = c.encryptor()
    return enc.update(data) + enc.finalize()


def _cbc_last(key: bytes, data: bytes, alg: int) -> bytes:
    if alg == ALG_3DES:
        c = Cipher(TripleDES(_des_key(key)), modes.CBC(bytes(8)))
    else:
        c = Cipher(algorithms.SM4(key), modes.CBC(bytes(16)))
    enc = c.encryptor()
    out = enc.update(data) + enc.finalize()
    return out[-block_size(alg):]


def block_size(alg: int) -> int:
    return 8 if alg == ALG_3DES else 16


def encrypt(key: bytes, data: bytes, alg: int) -> bytes:
    """ECB encryption (3DES-EDE or SM4).

    >>> encrypt(bytes.fromhex("0123456789ABCDEF"), b"Now is t", ALG_3DES).hex().upper()
    '3FA40E8A984D4815'
    >>> encrypt(bytes.fromhex("0123456789ABCDEFFEDCBA9876543210"),
    ...         bytes.fromhex("0123456789ABCDEFFEDCBA9876543210"), ALG_SM4).hex().upper()
    '681EDF34D206965E86B3E94F536E4246'
    """
    return _ecb(key, data, alg)


def _not(b: bytes) -> bytes:
    return bytes(x ^ 0xFF for x in b)


def _xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b, strict=True))


def diversify(key: bytes, factor: bytes, alg: int) -> bytes:
    """One diversification level (spec/card.md §8)."""
    if alg == ALG_3DES:
        return _ecb(key, factor, alg) + _ecb(key, _not(factor), alg)
    return _ecb(key, factor + _not(factor), alg)


def pan_factor(pan: str, psn: int) -> bytes:
    """Rightmost 16 digits of ``PAN ‖ PSN(2)`` as 8 BCD bytes (EMV option A).

    >>> pan_factor("6217000000000000011", 1).hex().upper()
    '0000000000001101'
    """
    return bytes.fromhex((pan + f"{psn:02d}")[-16:].rjust(16, "0"))


def card_key(root: bytes, alg: int, area: str, pan: str, psn: int) -> bytes:
    """The card's application-cryptogram key ``MK`` (recipe step 1)."""
    k = diversify(root, area[:2].encode("ascii") + b"0000sh", alg)
    k = diversify(k, area.encode("ascii") + b"sx", alg)
    return diversify(k, pan_factor(pan, psn), alg)


def session_key(mk: bytes, atc: int, alg: int) -> bytes:
    """Recipe step 2."""
    a = atc.to_bytes(2, "big")
    return _ecb(mk, a + bytes(6), alg) if alg == ALG_3DES else _ecb(mk, a + bytes(14), alg)


def cryptogram(mk: bytes, atc: int, cdol1: bytes, alg: int) -> bytes:
    """The application cryptogram over CDOL1 data (recipe steps 2–5)."""
    sk = session_key(mk, atc, alg)
    data = cdol1 + AIP + atc.to_bytes(2, "big")
    padded = data + b"\x80"
    padded += b"\x00" * (-len(padded) % block_size(alg))
    last = _cbc_last(sk, padded, alg)
    return last if alg == ALG_3DES else _xor(last[:8], last[8:])


def verify_arqc(mk: bytes, atc: int, cdol1: bytes, alg: int, arqc: bytes) -> bool:
    """Constant-time comparison of the card's ARQC with the host's."""
    return hmac.compare_digest(cryptogram(mk, atc, cdol1, alg), arqc)


def arpc(mk: bytes, atc: int, arqc: bytes, alg: int, arc: bytes = ARC_APPROVED) -> bytes:
    """The issuer's answer to an approved ARQC (method 1)."""
    sk = session_key(mk, atc, alg)
    block = _xor(arqc, arc + bytes(6))
    if alg == ALG_3DES:
        return _ecb(sk, block, alg)
    out = _ecb(sk, block + bytes(8), alg)
    return _xor(out[:8], out[8:])


@dataclass(frozen=True)
class Cdol1:
    """The CDOL1 data the card signed (spec/card.md §11), decoded."""

    amount: int
    other_amount: int
    country: str
    tvr: str
    currency: str
    date: str
    txn_type: str
    un: str

    @classmethod
    def parse(cls, raw: bytes) -> Cdol1:
        if len(raw) != CDOL1_LEN:
            raise ValueError(f"CDOL1 data is {CDOL1_LEN} bytes, got {len(raw)}")
        h = raw.hex().upper()
        for name, lo, hi in (("amount", 0, 12), ("other amount", 12, 24), ("date", 42, 48)):
            if not h[lo:hi].isdigit():
                raise ValueError(f"CDOL1 {name} is not BCD: {h[lo:hi]}")
        return cls(amount=int(h[0:12]), other_amount=int(h[12:24]), country=h[24:28],
                   tvr=h[28:38], currency=h[38:42], date=h[42:48], txn_type=h[48:50],
                   un=h[50:58])


def build_cdol1(*, amount: int, txn_date: str, un: str, other_amount: int = 0,
                country: str = "0156", tvr: str = "0000000000", currency: str = "0156",
                txn_type: str = "00") -> bytes:
    """CDOL1 data as a terminal builds it (amounts in fen, date YYMMDD)."""
    return bytes.fromhex(f"{amount:012d}{other_amount:012d}{country}{tvr}{currency}"
                         f"{txn_date}{txn_type}{un}")

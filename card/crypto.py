"""The card's cryptographic steps, as small pure functions (spec/card.md §8).

Two algorithm families, named by the algorithm id the card announces in FCI tag 86
(spec/card.md §3):

* ``ALG_3DES`` (01), the *8-byte algorithm*: DES/3DES with 8-byte blocks. A 16-byte key is
  two-key triple DES (encrypt-decrypt-encrypt); an 8-byte key (a session key) is single DES.
* ``ALG_SM4`` (03), the *16-byte algorithm*: SM4 (GB/T 32907) with 16-byte keys and blocks.

Constructions (spec/card.md §8):

* diversification: 3DES ``E(K, f) ‖ E(K, ~f)``; SM4 ``E(K, f ‖ ~f)``; ``f`` is 8 bytes.
  The three factors: level 1 ``ASCII(city[:2]) ‖ 30 30 30 30 73 68``, level 2
  ``ASCII(city) ‖ 73 78``, level 3 = ATR historical bytes 6–13.
* session key: 3DES ``E(K, input8)`` (an 8-byte single-DES key); SM4
  ``E(K, input padded with 00 to 16)``. An input shorter than 8 bytes (a 4-byte challenge)
  is first padded with 00 to 8 bytes (sscard choice).
* MAC: IV 0, always pad ``80 00…``, CBC; 8-byte algorithm: left 4 bytes of the last block;
  16-byte algorithm: XOR of the four 4-byte pieces of the last block.
* authentication data: 3DES ``E(session, original8)``; SM4 ``E(session, original8 ‖ 00×8)``
  then left half XOR right half.
* enciphered PIN block: ``len ‖ PIN(BCD, odd length padded F) ‖ 80 00…`` to the block size,
  ECB under the session key.

Every function raises :class:`CryptoError` (a ``ValueError``) on wrong lengths.
"""

from __future__ import annotations

from typing import Any

from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import (
    Cipher,
    CipherContext,
    algorithms,
    modes,
)

ALG_3DES = 0x01
ALG_SM4 = 0x03
ALGORITHMS = {ALG_3DES: "3DES", ALG_SM4: "SM4"}


class CryptoError(ValueError):
    """Wrong key, block or factor length, or an unknown algorithm id."""


def block_size(alg: int) -> int:
    """8 for the 8-byte algorithm (3DES), 16 for the 16-byte algorithm (SM4)."""
    if alg == ALG_3DES:
        return 8
    if alg == ALG_SM4:
        return 16
    raise CryptoError(f"unknown algorithm id {alg:#04x}")


def _context(key: bytes, alg: int, mode: modes.ECB | modes.CBC, encrypt: bool) -> CipherContext:
    cipher = _cipher(key, alg, mode)
    return cipher.encryptor() if encrypt else cipher.decryptor()


def _cipher(key: bytes, alg: int, mode: modes.ECB | modes.CBC) -> Cipher[Any]:
    if alg == ALG_3DES:
        if len(key) not in (8, 16, 24):
            raise CryptoError(f"3DES key must be 8, 16 or 24 bytes, got {len(key)}")
        # single DES = K‖K‖K, two-key 3DES = K1‖K2‖K1 (NIST SP 800-67 keying options)
        full = key * 3 if len(key) == 8 else key + key[:8] if len(key) == 16 else key
        return Cipher(TripleDES(full), mode)
    if alg == ALG_SM4:
        if len(key) != 16:
            raise CryptoError(f"SM4 key must be 16 bytes, got {len(key)}")
        return Cipher(algorithms.SM4(key), mode)
    raise CryptoError(f"unknown algorithm id {alg:#04x}")


def encrypt(key: bytes, data: bytes, alg: int) -> bytes:
    """ECB encryption of whole blocks.

    >>> encrypt(bytes.fromhex("0123456789ABCDEFFEDCBA9876543210"),
    ...         bytes.fromhex("0123456789ABCDEFFEDCBA9876543210"), ALG_SM4).hex().upper()
    '681EDF34D206965E86B3E94F536E4246'
    """
    if len(data) % block_size(alg):
        raise CryptoError(f"data of {len(data)} bytes is not whole {block_size(alg)}-byte blocks")
    enc = _context(key, alg, modes.ECB(), True)
    return enc.update(data) + enc.finalize()


def decrypt(key: bytes, data: bytes, alg: int) -> bytes:
    """ECB decryption of whole blocks."""
    if len(data) % block_size(alg):
        raise CryptoError(f"data of {len(data)} bytes is not whole {block_size(alg)}-byte blocks")
    dec = _context(key, alg, modes.ECB(), False)
    return dec.update(data) + dec.finalize()


def _not(data: bytes) -> bytes:
    return bytes(b ^ 0xFF for b in data)


def _xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b, strict=True))


def diversify(key: bytes, factor: bytes, alg: int) -> bytes:
    """One level of key diversification (spec/card.md §8): a 16-byte child key."""
    if len(factor) != 8:
        raise CryptoError(f"diversification factor must be 8 bytes, got {len(factor)}")
    if len(key) != 16:
        raise CryptoError(f"a diversified key needs a 16-byte parent key, got {len(key)}")
    if alg == ALG_3DES:
        return encrypt(key, factor, alg) + encrypt(key, _not(factor), alg)
    return encrypt(key, factor + _not(factor), alg)


def level1_factor(city: str) -> bytes:
    """``ASCII(first two digits of city code) ‖ 30 30 30 30 73 68`` (spec/card.md §8).

    >>> level1_factor("370800").hex().upper()
    '3337303030307368'
    """
    _check_city(city)
    return city[:2].encode("ascii") + b"0000sh"


def level2_factor(city: str) -> bytes:
    """``ASCII(6-digit city code) ‖ 73 78`` (spec/card.md §8).

    >>> level2_factor("370800").hex().upper()
    '3337303830307378'
    """
    _check_city(city)
    return city.encode("ascii") + b"sx"


def level3_factor(historical: bytes) -> bytes:
    """ATR historical bytes 6–13 (1-based; spec/card.md §2, §8)."""
    if len(historical) < 13:
        raise CryptoError(f"need 13 historical bytes for level 3, got {len(historical)}")
    return bytes(historical[5:13])


def _check_city(city: str) -> None:
    if len(city) != 6 or not city.isdigit():
        raise CryptoError(f"city code must be 6 digits, got {city!r}")


def diversify_levels(root: bytes, factors: list[bytes], alg: int) -> bytes:
    """Apply the diversification levels in order (root → level 1 → level 2 → level 3)."""
    key = root
    for factor in factors:
        key = diversify(key, factor, alg)
    return key


def session_key(key: bytes, data: bytes, alg: int) -> bytes:
    """Session key from a card key and a session factor (spec/card.md §8)."""
    if not 1 <= len(data) <= block_size(alg):
        raise CryptoError(f"session input of {len(data)} bytes")
    if alg == ALG_3DES:
        return encrypt(key, data.ljust(8, b"\x00"), alg)
    return encrypt(key, data.ljust(16, b"\x00"), alg)


def pad80(data: bytes, size: int) -> bytes:
    """ISO 9797-1 method 2: append ``80`` then ``00`` up to a multiple of ``size``."""
    out = data + b"\x80"
    return out + b"\x00" * (-len(out) % size)


def cbc_last_block(key: bytes, data: bytes, alg: int, iv: bytes | None = None) -> bytes:
    """The last CBC block of already padded ``data``."""
    bs = block_size(alg)
    if len(data) % bs or not data:
        raise CryptoError("CBC-MAC input must be whole blocks")
    enc = _context(key, alg, modes.CBC(iv or b"\x00" * bs), True)
    out = enc.update(data) + enc.finalize()
    return out[-bs:]


def mac(key: bytes, data: bytes, alg: int) -> bytes:
    """4-byte MAC over ``data`` (spec/card.md §8): pad 80, CBC with IV 0, then reduce."""
    bs = block_size(alg)
    last = cbc_last_block(key, pad80(data, bs), alg)
    return fold4(last)


def fold4(last: bytes) -> bytes:
    """Reduce a last CBC block to 4 bytes: left 4 (8-byte block) or XOR of four pieces."""
    if len(last) == 8:
        return last[:4]
    out = last[:4]
    for i in range(4, len(last), 4):
        out = _xor(out, last[i : i + 4])
    return out


def auth_data(session: bytes, original: bytes, alg: int) -> bytes:
    """Authentication data for INTERNAL/EXTERNAL AUTHENTICATE (spec/card.md §8)."""
    if len(original) != 8:
        raise CryptoError(f"original data must be 8 bytes, got {len(original)}")
    if alg == ALG_3DES:
        return encrypt(session, original, alg)
    full = encrypt(session, original + b"\x00" * 8, alg)
    return _xor(full[:8], full[8:])


def pin_to_bcd(pin: str) -> bytes:
    """PIN digits in BCD, an odd length padded with ``F`` (spec/card.md §5 VERIFY).

    >>> pin_to_bcd("12345").hex().upper()
    '12345F'
    """
    if not pin.isdigit() or not 1 <= len(pin) <= 12:
        raise CryptoError("a PIN is 1 to 12 decimal digits")
    digits = pin + ("F" if len(pin) % 2 else "")
    return bytes.fromhex(digits)


def bcd_to_pin(data: bytes) -> str:
    """Inverse of :func:`pin_to_bcd`; :class:`CryptoError` unless digits then at most one F."""
    text = data.hex().upper()
    if text.endswith("F"):
        text = text[:-1]
    if not text or not text.isdigit():
        raise CryptoError("PIN is not BCD digits")
    return text


def pin_block_plain(pin: str, alg: int) -> bytes:
    """``len ‖ PIN(BCD) ‖ 80 00…`` to the block size (spec/card.md §8)."""
    body = bytes([len(pin)]) + pin_to_bcd(pin)
    return pad80(body, block_size(alg))


def pin_block_encipher(session: bytes, pin: str, alg: int) -> bytes:
    """The enciphered PIN block of PIN RELOAD (spec/card.md §8)."""
    return encrypt(session, pin_block_plain(pin, alg), alg)


def pin_block_decipher(session: bytes, block: bytes, alg: int) -> str:
    """Decipher and check a PIN block; :class:`CryptoError` when its format is wrong."""
    plain = decrypt(session, block, alg)
    n = plain[0]
    if not 1 <= n <= 12:
        raise CryptoError("PIN block length out of range")
    nbytes = (n + 1) // 2
    body, rest = plain[1 : 1 + nbytes], plain[1 + nbytes :]
    if not rest or rest[0] != 0x80 or any(rest[1:]):
        raise CryptoError("PIN block padding wrong")
    pin = bcd_to_pin(body)
    if len(pin) != n:
        raise CryptoError("PIN block length does not match its digits")
    return pin

"""The virtual PSAM: the terminal's security module card (spec/card.md §9).

A PSAM holds, for its city, the level-2 keys of every key in :data:`card.keys.KEY_IDS` and
both algorithms (TEST keys, see :mod:`card.keys`), a terminal number (EF16, cn6 = 12 digits
whose first six are the city code) and a 4-byte terminal transaction counter. It performs
the level-3 diversification itself from the card factor (ATR historical bytes 6–13) the
terminal passes, so the terminal never holds a key. It speaks APDUs only and implements
:class:`apdu.iface.CardLike`; like the card it never raises from ``transmit`` (an image
that cannot be written answers 6581, a bug 6F00, each logged in one line).

Commands
--------
* ``00 A4 00|02 00 02 FID``: SELECT 3F00 (MF), 1001 (PSAM application DF) or EF16 (also
  addressed as 0016).
* ``00 B0 96 00 06``: READ BINARY of EF16 by SFI 16h (the terminal number); after SELECT
  of 0016 also ``00 B0 00 00 06``.
* ``00 84 00 00 04|08|10``: GET CHALLENGE.
* ``BF DE P1 kid Lc factor8 ‖ input``: DELIVERY SESSION KEY. ``P1 = alg << 4 | usage``
  (alg 1 = 3DES, 3 = SM4; usage and kid from the table in :mod:`card.keys`), ``factor8`` =
  the card's ATR historical bytes 6–13, ``input`` 1..16 bytes (the session factor). The PSAM
  derives ``card key = diversify(city key, factor8)`` and ``session = session_key(card key,
  input)`` (spec/card.md §8) and keeps it for CIPHER DATA. The factor's area digits
  (bytes 3–4) must be this PSAM's city, else 6A88; an algorithm the PSAM lacks answers 6A81.
* ``80 FA P1 00 Lc data``: CIPHER DATA under the session key. P1 ``00`` encrypt (ECB of
  ``data ‖ 80 00…``); ``05`` MAC of the whole data (spec/card.md §8 MAC); ``07``/``03``/``01``
  first/next/last part of a long MAC (first and next parts are whole blocks); ``08``
  authentication data of an 8-byte original (spec/card.md §8), sscard extension; ``09``
  check an internal authentication: data ``original8 ‖ card answer8`` → 9000 genuine,
  6300 not genuine, sscard extension. Without a session key: 6985.
* ``80 70 01 00 1C``: INIT SAM FOR PURCHASE, data ``card random 4 ‖ card offline sequence 2
  ‖ amount 4 ‖ type 1 ‖ date-time 7 ‖ key version 1 ‖ alg id 1 ‖ factor8`` → ``terminal
  sequence 4 ‖ MAC1 4``. The terminal counter is incremented and committed first. Process key
  ``SK = session_key(card DPK, random ‖ offline seq ‖ terminal seq[2:4])`` (PBOC purse
  style); ``MAC1 = mac(SK, amount ‖ type ‖ terminal number 6 ‖ date-time 7)``.
* ``80 72 00 00 04 MAC2``: CREDIT SAM FOR PURCHASE: ``MAC2 = mac(SK, amount)`` → 9000, else
  63CF.

APDU sequences a terminal uses
------------------------------
``F3`` = card ATR historical bytes 6–13; ``A`` = card algorithm (FCI tag 86 of SSSE: 01 or
03); ``P1(u) = A << 4 | u``.

Internal authentication (is the card genuine?)::

    card  00 84 00 00 08                      -> R1
    card  00 84 00 00 08                      -> R2
    card  00 88 00 00 10 R1 R2                -> S (8 bytes)
    PSAM  BF DE P1(01) 01 10 F3 R1            -> 9000
    PSAM  80 FA 09 00 10 R2 S                 -> 9000 genuine | 6300 not genuine

External authentication with RKSSSE (unlocks EF06/EF07/EF08 of a 3.00 card)::

    card  00 84 00 00 08                      -> C1
    card  00 84 00 00 08                      -> C2
    PSAM  BF DE P1(02) 0A 10 F3 C1            -> 9000
    PSAM  80 FA 08 00 08 C2                   -> X (8 bytes)
    card  00 82 00 0A 10 X C2                 -> 9000

PIN reload at the counter (kid 01 = SSSE/shared PIN, 02 = bank PIN under ``separate``)::

    card  00 84 00 00 08                      -> C
    PSAM  BF DE P1(03) 01 10 F3 C             -> 9000
    PSAM  80 FA 00 00 Ln len(PIN) PIN-BCD     -> E (8 bytes 3DES, 16 SM4)
    PSAM  80 FA 05 00 Lm 84 24 00 01 L E      -> M (4 bytes), L = |E| + 4
    card  84 24 00 01 L E M                   -> 9000

PIN unblock is the same without ``E``: MAC over ``84 24 00 00 04`` then
``84 24 00 00 04 M``. APPLICATION BLOCK (usage 05, ``84 1E 00 01 04``), CARD BLOCK (usage
06, ``84 16 00 00 04``) and UPDATE with MAC (usage 04, ``04 DC``/``04 D6``) follow the same
pattern: challenge from the card, session from the PSAM, MAC over the command header, Lc
(counting the MAC) and data.
"""

from __future__ import annotations

import copy
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeGuard

from apdu import atr as atrmod
from apdu.command import CommandApdu
from apdu.errors import ApduError
from apdu.response import ResponseApdu
from apdu.t0 import T0CardAdapter
from card import crypto, keys
from card.errors import CardError, CardNotPowered, ImageError, IssueError
from card.image import FileStore, MemoryStore, Store, check_area, check_seal, read_document, seal

log = logging.getLogger(__name__)

PSAM_FORMAT = "sscard-psam"
EF16_FIDS = (b"\x00\x16", b"\xef\x16")
Answer = tuple[bytes, int]


def _st(code: int) -> Answer:
    return b"", code


class PsamImage:
    """Validated PSAM image: terminal number, counter, city keys per algorithm."""

    def __init__(self, doc: dict[str, Any], verify_seal: bool = True) -> None:
        if doc.get("format") != PSAM_FORMAT:
            raise ImageError("format", f"expected {PSAM_FORMAT!r}, got {doc.get('format')!r}")
        if doc.get("schema") != 1:
            raise ImageError("schema", f"unsupported schema {doc.get('schema')!r}")
        if verify_seal:
            check_seal(doc)
        if not isinstance(doc.get("test_keys"), bool):
            raise ImageError("test_keys", "must be true or false")
        area = doc.get("area_code")
        if not _digits(area, 6):
            raise ImageError("area_code", "must be 6 digits")
        tn = doc.get("terminal_number")
        if not _digits(tn, 12):
            raise ImageError("terminal_number", "must be 12 digits (cn6)")
        if tn[:6] != area:
            raise ImageError("terminal_number", "its first six digits must be the area code")
        counter = doc.get("counter")
        if not isinstance(counter, int) or isinstance(counter, bool) or not (
                0 <= counter <= 0xFFFFFFFF):
            raise ImageError("counter", "must be an integer 0..4294967295")
        keys_doc = doc.get("keys")
        if not isinstance(keys_doc, dict) or not keys_doc:
            raise ImageError("keys", "missing or empty")
        self.keys: dict[int, dict[str, bytes]] = {}
        for alg_name, table in keys_doc.items():
            if alg_name not in keys.ALG_NAMES:
                raise ImageError(f"keys.{alg_name}", "algorithm must be 3DES or SM4")
            if not isinstance(table, dict):
                raise ImageError(f"keys.{alg_name}", "must be an object")
            parsed: dict[str, bytes] = {}
            for name, value in table.items():
                if name not in keys.KEY_IDS:
                    raise ImageError(f"keys.{alg_name}.{name}", "unknown key name")
                try:
                    key = bytes.fromhex(value)
                except (TypeError, ValueError):
                    raise ImageError(f"keys.{alg_name}.{name}", "is not valid hex") from None
                if len(key) != 16:
                    raise ImageError(f"keys.{alg_name}.{name}", "a key is 16 bytes")
                parsed[name] = key
            self.keys[keys.alg_id(alg_name)] = parsed
        self.area: str = area
        self.terminal_number: str = tn
        self.counter: int = counter
        self.test_keys: bool = doc["test_keys"]

    def to_doc(self) -> dict[str, Any]:
        return {
            "format": PSAM_FORMAT,
            "schema": 1,
            "test_keys": self.test_keys,
            "area_code": self.area,
            "terminal_number": self.terminal_number,
            "counter": self.counter,
            "keys": {keys.alg_name(a): {n: k.hex().upper() for n, k in sorted(t.items())}
                     for a, t in sorted(self.keys.items())},
        }


def _digits(value: Any, n: int) -> TypeGuard[str]:
    return isinstance(value, str) and len(value) == n and value.isascii() and value.isdigit()


def load_psam_doc(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a PSAM image file (JSON, or TOML by suffix) and check it as ``card show`` does:
    format, fields and integrity seal; :class:`ImageError` says what is wrong."""
    doc = read_document(path)
    PsamImage(doc)
    return doc


def make_psam_doc(area: str = "370800", terminal_serial: int = 1,
                  algorithms: tuple[str, ...] = ("3DES", "SM4")) -> dict[str, Any]:
    """A sealed PSAM image for ``area`` with the TEST city keys of ``algorithms``."""
    check_area(area)
    if not 0 <= terminal_serial <= 999_999:
        raise IssueError(f"terminal serial must be 0..999999, got {terminal_serial}")
    doc = {
        "format": PSAM_FORMAT,
        "schema": 1,
        "test_keys": True,
        "area_code": area,
        "terminal_number": f"{area}{terminal_serial:06d}",
        "counter": 0,
        "keys": {
            name: {k: keys.city_key(k, keys.alg_id(name), area).hex().upper()
                   for k in keys.KEY_IDS}
            for name in algorithms
        },
    }
    PsamImage(doc, verify_seal=False)
    return seal(doc)


class VirtualPsam:
    """A PSAM card. ``store`` holds its image; ``t0`` as for :class:`card.cos.VirtualCard`."""

    def __init__(self, store: Store, *, t0: bool = False,
                 rng: Callable[[int], bytes] = os.urandom) -> None:
        self.store = store
        self.t0 = t0
        self.rng = rng
        self.image = PsamImage(store.load())
        self._t0 = T0CardAdapter()
        self.powered = True
        self._reset_volatile()

    @classmethod
    def from_image(cls, path: str | os.PathLike[str], **kwargs: Any) -> VirtualPsam:
        if not Path(path).exists():
            raise ImageError("file", f"{path} does not exist")
        return cls(FileStore(path), **kwargs)

    @classmethod
    def from_doc(cls, doc: dict[str, Any], **kwargs: Any) -> VirtualPsam:
        PsamImage(doc, verify_seal=False)
        return cls(MemoryStore(copy.deepcopy(doc)), **kwargs)

    # -- CardLike -------------------------------------------------------------------------------
    def atr(self) -> bytes:
        hist = b"PSAM" + bytes.fromhex(self.image.area) + bytes.fromhex(
            self.image.terminal_number[6:])
        if self.t0:
            return atrmod.build(hist, tb1=0, tc1=0)
        return atrmod.build(hist, protocols=(1,), tb1=0, tc1=0)

    def power_on(self) -> bytes:
        self.powered = True
        self._reset_volatile()
        return self.atr()

    def power_off(self) -> None:
        self.powered = False
        self._reset_volatile()

    def reset(self) -> bytes:
        return self.power_on()

    def transmit(self, command: bytes) -> bytes:
        if not self.powered:
            raise CardNotPowered("the PSAM is not powered; call power_on() first")
        raw = bytes(command)
        if self.t0:
            served = self._t0.intercept(raw)
            if served is not None:
                return served
        try:
            cmd = CommandApdu.from_bytes(raw)
        except ApduError as exc:
            return exc.sw.to_bytes(2, "big")
        try:
            data, code = self._dispatch(cmd)
        except OSError as exc:  # the image could not be written: memory failure, as a card
            log.warning("PSAM memory failure (6581) on %s: the PSAM image %s cannot be "
                        "written: %s", cmd.header.hex().upper(),
                        getattr(self.store, "path", "in memory"), exc.strerror or exc)
            log.debug("PSAM memory failure", exc_info=True)
            self._reload()
            data, code = b"", 0x6581
        except Exception as exc:  # a bug must not kill the PSAM
            log.error("PSAM internal error (6F00) on %s: %s: %s (a bug in sscard: please "
                      "report it; the traceback is logged at debug level)",
                      cmd.header.hex().upper(), type(exc).__name__, exc)
            log.debug("PSAM internal error", exc_info=True)
            self._reload()
            data, code = b"", 0x6F00
        if self.t0:
            return self._t0.respond(cmd, ResponseApdu(data, code))
        return data + code.to_bytes(2, "big")

    # -- internals ------------------------------------------------------------------------------
    def _reload(self) -> None:
        """Back to the last durable image (an unsaved counter step is dropped), volatile reset."""
        try:
            self.image = PsamImage(self.store.load())
        except (OSError, CardError) as exc:
            log.warning("the PSAM image cannot be reloaded (%s); keeping its working state",
                        exc.strerror if isinstance(exc, OSError) else exc)
        self._reset_volatile()

    def _reset_volatile(self) -> None:
        self.session: bytes | None = None
        self.session_alg: int = crypto.ALG_3DES
        self.selected_ef16 = False
        self._mac_chain: bytes | None = None
        self._purchase_key: bytes | None = None
        self._purchase_amount: bytes = b""
        self._t0.reset()

    def _dispatch(self, cmd: CommandApdu) -> Answer:
        table: dict[tuple[int, int], Callable[[CommandApdu], Answer]] = {
            (0x00, 0xA4): self._select,
            (0x00, 0xB0): self._read_binary,
            (0x00, 0x84): self._get_challenge,
            (0xBF, 0xDE): self._delivery_session_key,
            (0x80, 0xFA): self._cipher_data,
            (0x80, 0x70): self._init_sam_for_purchase,
            (0x80, 0x72): self._credit_sam_for_purchase,
            (0x00, 0xC0): lambda c: _st(0x6985),
        }
        handler = table.get((cmd.cla, cmd.ins))
        if handler is None:
            if any(ins == cmd.ins for _, ins in table):
                return _st(0x6E00)
            return _st(0x6D00 if cmd.cla in (0x00, 0x80, 0xBF) else 0x6E00)
        return handler(cmd)

    def _select(self, cmd: CommandApdu) -> Answer:
        if cmd.p1 not in (0x00, 0x02) or cmd.p2 not in (0x00, 0x0C):
            return _st(0x6A86)
        if cmd.data not in (b"", b"\x3f\x00", b"\x10\x01", *EF16_FIDS):
            return _st(0x6A82 if len(cmd.data) == 2 else 0x6700)
        self.selected_ef16 = cmd.data in EF16_FIDS
        return _st(0x9000)

    def _ef16(self) -> bytes:
        return bytes.fromhex(self.image.terminal_number)

    def _read_binary(self, cmd: CommandApdu) -> Answer:
        if cmd.data:
            return _st(0x6700)
        if cmd.p1 & 0x80:
            if cmd.p1 & 0x1F != 0x16 or cmd.p1 & 0x60:
                return _st(0x6A82)
            offset = cmd.p2
        else:
            if not self.selected_ef16:
                return _st(0x6986)
            offset = (cmd.p1 << 8) | cmd.p2
        data = self._ef16()
        if offset >= len(data):
            return _st(0x6B00)
        avail = len(data) - offset
        le = cmd.le if cmd.le is not None else 256
        if le != 256 and le > avail:
            return _st(0x6C00 | avail)
        return data[offset : offset + min(le, avail)], 0x9000

    def _get_challenge(self, cmd: CommandApdu) -> Answer:
        if cmd.p1 or cmd.p2:
            return _st(0x6A86)
        if cmd.data or cmd.le not in (4, 8, 16):
            return _st(0x6700)
        return self.rng(cmd.le), 0x9000

    def _card_key(self, alg: int, name: str, factor: bytes) -> bytes | Answer:
        table = self.image.keys.get(alg)
        if table is None:
            return _st(0x6A81)
        city_key = table.get(name)
        if city_key is None:
            return _st(0x6A88)
        if factor[2:4] != bytes.fromhex(self.image.area[:4]):
            return _st(0x6A88)
        return crypto.diversify(city_key, factor, alg)

    def _delivery_session_key(self, cmd: CommandApdu) -> Answer:
        self.session = None
        alg, usage = cmd.p1 >> 4, cmd.p1 & 0x0F
        if alg not in crypto.ALGORITHMS:
            return _st(0x6A86)
        name = keys.KEY_BY_ID.get((usage, cmd.p2))
        if name is None:
            return _st(0x6A88)
        if not 9 <= len(cmd.data) <= 8 + crypto.block_size(alg):
            return _st(0x6700)
        card_key = self._card_key(alg, name, cmd.data[:8])
        if isinstance(card_key, tuple):
            return card_key
        self.session = crypto.session_key(card_key, cmd.data[8:], alg)
        self.session_alg = alg
        self._mac_chain = None
        return _st(0x9000)

    def _cipher_data(self, cmd: CommandApdu) -> Answer:
        if cmd.p2 != 0x00 or cmd.p1 not in (0x00, 0x01, 0x03, 0x05, 0x07, 0x08, 0x09):
            return _st(0x6A86)
        if self.session is None:
            return _st(0x6985)
        alg, key, data = self.session_alg, self.session, cmd.data
        bs = crypto.block_size(alg)
        if cmd.p1 == 0x00:
            if not data:
                return _st(0x6700)
            return crypto.encrypt(key, crypto.pad80(data, bs), alg), 0x9000
        if cmd.p1 == 0x05:
            if not data:
                return _st(0x6700)
            return crypto.mac(key, data, alg), 0x9000
        if cmd.p1 == 0x08:
            if len(data) != 8:
                return _st(0x6700)
            return crypto.auth_data(key, data, alg), 0x9000
        if cmd.p1 == 0x09:
            if len(data) != 16:
                return _st(0x6700)
            ok = crypto.auth_data(key, data[:8], alg) == data[8:]
            return _st(0x9000 if ok else 0x6300)
        # chained MAC: 07 first, 03 next, 01 last
        if cmd.p1 in (0x07, 0x03):
            if not data or len(data) % bs:
                return _st(0x6700)
            if cmd.p1 == 0x03 and self._mac_chain is None:
                return _st(0x6985)
            iv = b"\x00" * bs if cmd.p1 == 0x07 else self._mac_chain
            self._mac_chain = crypto.cbc_last_block(key, data, alg, iv)
            return _st(0x9000)
        if self._mac_chain is None:
            return _st(0x6985)
        last = crypto.cbc_last_block(key, crypto.pad80(data, bs), alg, self._mac_chain)
        self._mac_chain = None
        return crypto.fold4(last), 0x9000

    def _init_sam_for_purchase(self, cmd: CommandApdu) -> Answer:
        if cmd.p1 != 0x01 or cmd.p2 != 0x00:
            return _st(0x6A86)
        if len(cmd.data) != 28:
            return _st(0x6700)
        d = cmd.data
        random4, seq2, amount, kind, when = d[0:4], d[4:6], d[6:10], d[10:11], d[11:18]
        alg, factor = d[19], d[20:28]
        if alg not in crypto.ALGORITHMS:
            return _st(0x9403)
        card_key = self._card_key(alg, "DPK", factor)
        if isinstance(card_key, tuple):
            return card_key
        if self.image.counter >= 0xFFFFFFFF:
            return _st(0x6985)
        self.image.counter += 1
        self.store.save(self.image.to_doc())
        tsn = self.image.counter.to_bytes(4, "big")
        sk = crypto.session_key(card_key, random4 + seq2 + tsn[2:], alg)
        mac1 = crypto.mac(sk, amount + kind + self._ef16() + when, alg)
        self._purchase_key, self._purchase_amount = sk, amount
        self.session_alg = alg
        return tsn + mac1, 0x9000

    def _credit_sam_for_purchase(self, cmd: CommandApdu) -> Answer:
        if cmd.p1 or cmd.p2:
            return _st(0x6A86)
        if len(cmd.data) != 4:
            return _st(0x6700)
        if self._purchase_key is None:
            return _st(0x6985)
        expected = crypto.mac(self._purchase_key, self._purchase_amount, self.session_alg)
        self._purchase_key = None
        return _st(0x9000 if expected == cmd.data else 0x63CF)

"""The virtual social security card: an ISO 7816-4 card operating system (spec/card.md §2–8).

:class:`VirtualCard` implements :class:`apdu.iface.CardLike`. Construct it from an image
file (:meth:`VirtualCard.from_image`) or an in-memory document (:meth:`VirtualCard.from_doc`);
it starts powered (as if just inserted and reset).

Behaviour:

* ``transmit`` never raises for any byte string: a malformed, unknown or out-of-state
  command gets the status word of spec/card.md §7 / ISO 7816-4; an internal error gets 6F00,
  the card reloads its last durable state and stays usable; a failed image write answers
  6581 (memory failure) and nothing of the command is kept. The one exception is a
  physical event (:class:`card.errors.CardEvent`, a ``ConnectionError``): a power cut or a
  pull injected by :mod:`card.faults`, or a command sent to an unpowered or removed card.
* Durability: every durable change (PIN counter, key error counters, ATC, blocks, file
  updates, PIN changes) is committed to the image store (atomic write) before the answer
  is released. After a power cut the card reloads the store on the next ``power_on``.
* Transport: with ``t0=True`` the card speaks T=0 (its ATR announces T=0 only, the real
  one of spec/card.md §2) and answers case-2/4 commands through
  :class:`apdu.t0.T0CardAdapter` (61xx then GET RESPONSE; wrong Le → 6Cxx). With
  ``t0=False`` (default, for in-process readers) the ATR announces T=1 only and whole
  responses are returned. Even under T=1 the social security READ RECORD by tag keeps the
  rule of spec/card.md §4: Le must be exactly ``2 + len`` else 6Cxx.
* Security state (volatile): PINs verified (until power-off/reset), keys externally
  authenticated (until reset or a change of application), the last two GET CHALLENGE
  numbers (an EXTERNAL AUTHENTICATE or a MAC check consumes them).

Secure messaging (CLA 04/84, spec/card.md §8): the MAC key is the session key
``session_key(K, challenge)`` where ``challenge`` is the last GET CHALLENGE answer and ``K``
the card key named by the file's write condition or the command (PUK, BK, LK ...); the MAC
covers ``CLA INS P1 P2 Lc ‖ data`` with Lc counting the 4 MAC bytes. Without a challenge the
card answers 6984; a wrong MAC answers 9302; each challenge serves one command.

EXTERNAL AUTHENTICATE ``00 82 00 kid`` (kid 0A = RKSSSE): data ``auth8 ‖ original8`` where
``original8`` must be the last challenge (padded with 00 to 8 bytes) and ``auth8 =
auth_data(session_key(K, previous challenge), original8)``: the terminal fetches two
challenges, the first is the session factor. As ISO 7816-4 allows ("the card may record
unsuccessful authentications"), each key has a durable error counter (:mod:`card.keyauth`;
``policy.key_max_tries``, default 3), decremented and committed before the cryptogram is
compared: a wrong one answers 63Cx (x tries left; 63C0 when this try blocks the key), a
right one 9000 and restores the counter. A blocked key answers 6983 (spec/card.md §7) to
every EXTERNAL AUTHENTICATE, right cryptogram or not, so the files it guards (EF06 of a
3.00 card, EF07, EF08) stay unreadable (6982); nothing on the card unblocks it
(spec/card.md §5 defines no such command). Checked in this order: P1 ≠ 00 6A86, data not
16 bytes 6700, unknown key 6A88, blocked 6983, fewer than two challenges 6984 (a blocked
key or an evaluation consumes the challenges).
"""

from __future__ import annotations

import hmac
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

from apdu import atr as atrmod
from apdu.command import CommandApdu
from apdu.errors import ApduError
from apdu.response import ResponseApdu
from apdu.t0 import T0CardAdapter
from card import crypto, keyauth, pboc, pin, purse
from card.errors import (
    CardError,
    CardEvent,
    CardNotPowered,
    CardRemoved,
    ImageError,
    os_reason,
)
from card.faults import FaultPlan
from card.fs import DedicatedFile, ElementaryFile
from card.image import CardImage, FileStore, MemoryStore, Store
from card.keys import KEY_BY_ID, USAGE_READ

log = logging.getLogger(__name__)

Answer = tuple[bytes, int]


class _BinaryTarget(NamedTuple):
    """A transparent EF and the offset a binary command addresses in it."""

    ef: ElementaryFile
    offset: int

SW_OK = 0x9000
APP_SSSE = "SSSE"
APP_PBOC = "PBOC"


def sw(code: int) -> Answer:
    return b"", code


class VirtualCard:
    """A social security card in memory, backed by a durable image store.

    ``store``: where the image lives (:class:`card.image.FileStore`/``MemoryStore``);
    ``t0``: speak T=0 (see module docstring); ``faults``: a :class:`card.faults.FaultPlan`;
    ``rng``: source of challenge bytes (``os.urandom``).
    """

    def __init__(self, store: Store, *, t0: bool = False, faults: FaultPlan | None = None,
                 rng: Callable[[int], bytes] = os.urandom) -> None:
        self.store = store
        self.t0 = t0
        self.faults = faults if faults is not None else FaultPlan()
        self.rng = rng
        self.image: CardImage = CardImage.from_doc(store.load())
        self._t0 = T0CardAdapter()
        self.powered = True
        self.present = True
        self._stale = False
        self._reset_volatile()

    # -- construction -----------------------------------------------------------------------
    @classmethod
    def from_image(cls, path: str | os.PathLike[str], **kwargs: Any) -> VirtualCard:
        """The card stored in an image file; changes are written back atomically."""
        if not Path(path).exists():
            raise ImageError("file", f"{path} does not exist")
        return cls(FileStore(path), **kwargs)

    @classmethod
    def from_doc(cls, doc: dict[str, Any], **kwargs: Any) -> VirtualCard:
        """A card on an in-memory copy of ``doc`` (sealed on load; nothing touches disk)."""
        CardImage.from_doc(doc, verify_seal=False)
        return cls(MemoryStore(doc), **kwargs)

    # -- CardLike -----------------------------------------------------------------------------
    def atr(self) -> bytes:
        if self.t0:
            return self.image.atr
        return atrmod.build(self.image.historical, protocols=(1,), tb1=0, tc1=0)

    def power_on(self) -> bytes:
        """Cold reset. Raises :class:`CardRemoved` if the card was pulled out."""
        if not self.present:
            raise CardRemoved("no card in the reader")
        if self._stale:
            self.image = CardImage.from_doc(self.store.load())
            self._stale = False
        self.powered = True
        self._reset_volatile()
        return self.atr()

    def power_off(self) -> None:
        """Remove power: only what was committed to the store survives to the next power_on."""
        self.powered = False
        self._stale = True
        self._reset_volatile()

    def reset(self) -> bytes:
        """Warm reset: volatile state (PIN verified, selection, challenges) is lost."""
        return self.power_on()

    def insert(self) -> None:
        """Put a pulled card back into the reader (it stays unpowered until power_on)."""
        self.present = True

    def transmit(self, command: bytes) -> bytes:
        """Process one command APDU (or T=0 TPDU). See the module docstring for what raises."""
        if not self.present:
            raise CardRemoved("no card in the reader")
        if not self.powered:
            raise CardNotPowered("the card is not powered; call power_on() first")
        raw = bytes(command)
        try:
            forced = self.faults.begin_command(raw[1] if len(raw) >= 2 else None)
            out = forced.to_bytes(2, "big") if forced is not None else self._transmit(raw)
            self.faults.end_command()
            return out
        except CardEvent as event:
            self._lose_power(removed=isinstance(event, CardRemoved))
            raise

    # -- internals ------------------------------------------------------------------------------
    def _reset_volatile(self) -> None:
        self.current_df: DedicatedFile = self.image.mf
        self.current_ef: ElementaryFile | None = None
        self.verified: set[str] = set()
        self.authenticated: set[str] = set()
        self.challenges: list[bytes] = []
        self.pboc_state = pboc.PbocState()
        self.purse_state = purse.PurseState()
        self._t0.reset()

    def _lose_power(self, removed: bool) -> None:
        self.powered = False
        self._stale = True
        if removed:
            self.present = False
        self._reset_volatile_safely()

    def _reset_volatile_safely(self) -> None:
        self.verified = set()
        self.authenticated = set()
        self.challenges = []
        self._t0.reset()

    def _transmit(self, raw: bytes) -> bytes:
        if self.t0:
            served = self._t0.intercept(raw)
            if served is not None:
                return served
        try:
            cmd = CommandApdu.from_bytes(raw)
        except ApduError as exc:
            return exc.sw.to_bytes(2, "big")
        data, code = self._process(cmd)
        if self.t0:
            return self._t0.respond(cmd, ResponseApdu(data, code))
        return data + code.to_bytes(2, "big")

    def _process(self, cmd: CommandApdu) -> Answer:
        self.step("command.received")
        try:
            answer = self.dispatch(cmd)
        except CardEvent:
            raise
        except OSError as exc:  # the image could not be written: the card's EEPROM failed
            header = cmd.header.hex().upper()
            log.warning("memory failure (6581) on %s: the card image %s cannot be written: %s",
                        header, self._where(), exc.strerror or exc)
            log.debug("memory failure on %s", header, exc_info=True)
            self._reload()
            return sw(0x6581)
        except Exception as exc:  # a bug must not kill the card: 6F00, reload the durable state
            header = cmd.header.hex().upper()
            log.error("internal error (6F00) on %s: %s: %s (a bug in sscard: please report "
                      "it; the traceback is logged at debug level)", header, type(exc).__name__,
                      exc)
            log.debug("internal error on %s", header, exc_info=True)
            self._reload()
            return sw(0x6F00)
        self.step("command.done")
        return answer

    def _where(self) -> str:
        return str(getattr(self.store, "path", "in memory"))

    def _reload(self) -> None:
        """Drop uncommitted changes: back to the last durable image, volatile state reset."""
        try:
            self.image = CardImage.from_doc(self.store.load())
        except (OSError, CardError) as exc:  # the store is unreadable: keep the working copy
            reason = os_reason(exc) if isinstance(exc, OSError) else str(exc)
            log.warning("the card image %s cannot be reloaded (%s); keeping the card's "
                        "working state", self._where(), reason)
            log.debug("reloading the card image failed", exc_info=True)
        except Exception as exc:
            log.error("internal error reloading the card image %s: %s: %s", self._where(),
                      type(exc).__name__, exc)
            log.debug("reloading the card image failed", exc_info=True)
        self._reset_volatile()

    def step(self, name: str) -> None:
        """A fault-injection checkpoint."""
        self.faults.checkpoint(name)

    def commit(self) -> None:
        """Make the current image durable (atomic write) before any answer is released."""
        self.step("commit.before")
        self.store.save(self.image.to_doc(), lambda: self.step("commit.write"))
        self.step("commit.after")

    @property
    def application(self) -> str:
        return self.current_df.application

    # -- dispatch -------------------------------------------------------------------------------
    def dispatch(self, cmd: CommandApdu) -> Answer:
        """Route a parsed command to its handler (spec/card.md §5, §11)."""
        if self.image.card_blocked:
            return sw(0x6A81)
        key = (cmd.cla, cmd.ins)
        handler = _HANDLERS.get(key)
        if handler is None:
            if cmd.ins in _KNOWN_INS:
                return sw(0x6E00)
            if cmd.cla not in (0x00, 0x04, 0x80, 0x84, 0xB0):
                return sw(0x6E00)
            return sw(0x6D00)
        app = self.application
        if app and app in self.image.blocked_apps and cmd.ins not in (0xA4, 0x84):
            return sw(0x9303)
        if (cmd.cla, cmd.ins) not in ((0xB0, 0x2A), (0xB0, 0x2C)):
            self.purse_state = purse.PurseState()  # any other command ends a purse exchange
        return handler(self, cmd)

    # -- SELECT (ISO 7816-4 §11.2.2, spec/card.md §3) -------------------------------------------
    def cmd_select(self, cmd: CommandApdu) -> Answer:
        p1, p2, data = cmd.p1, cmd.p2, cmd.data
        if p2 not in (0x00, 0x02, 0x04, 0x0C):
            return sw(0x6A86)
        target: DedicatedFile | ElementaryFile | None
        if p1 == 0x00:
            if not data or data == b"\x3f\x00":
                target = self.image.mf
            elif len(data) != 2:
                return sw(0x6700)
            else:
                fid = int.from_bytes(data, "big")
                target = self.current_df.child_by_fid(fid)
                if target is None and self.current_df.parent is not None:
                    target = self.current_df.parent.child_by_fid(fid)
        elif p1 in (0x01, 0x02):
            if len(data) != 2:
                return sw(0x6700)
            target = self.current_df.child_by_fid(int.from_bytes(data, "big"))
            want = DedicatedFile if p1 == 0x01 else ElementaryFile
            if target is not None and not isinstance(target, want):
                target = None
        elif p1 == 0x03:
            if data:
                return sw(0x6700)
            target = self.current_df.parent
        elif p1 == 0x04:
            if not 1 <= len(data) <= 16:
                return sw(0x6700)
            target = None if p2 & 0x02 else self.image.mf.df_by_name(data)
        else:
            return sw(0x6A86)
        if target is None:
            return sw(0x6A82)
        app = self.application if isinstance(target, ElementaryFile) else target.application
        if app and app in self.image.blocked_apps:
            return sw(0x9303)
        if isinstance(target, ElementaryFile):
            self.current_ef = target
            return sw(SW_OK)
        if app != self.application:
            self.authenticated.clear()
            self.pboc_state = pboc.PbocState()
        self.current_df = target
        self.current_ef = None
        if p2 & 0x0C == 0x0C:
            return sw(SW_OK)
        return self.fci(target), SW_OK

    def fci(self, df: DedicatedFile) -> bytes:
        """The FCI of a DF: stored in the image, or ``6F [84 name] [A5 [9F0C [86 alg]]]``."""
        if df.fci is not None:
            return df.fci
        if df.fid == 0x3F00 and not df.name:
            return bytes.fromhex("6F0483023F00")
        prop = bytes([0x9F, 0x0C, 0x03, 0x86, 0x01, self.image.algorithm])
        body = bytes([0x84, len(df.name)]) + df.name + bytes([0xA5, len(prop)]) + prop
        return bytes([0x6F, len(body)]) + body

    # -- access conditions -------------------------------------------------------------------
    def pin_name(self, app: str | None = None) -> str:
        app = self.application if app is None else app
        return "bank" if self.image.pin_policy == "separate" and app == APP_PBOC else "ssse"

    def may(self, condition: str) -> bool:
        """Whether a read condition is satisfied now (spec/card.md §3)."""
        if condition == "free":
            return True
        if condition == "pin":
            return self.pin_name() in self.verified
        if condition.startswith("key:"):
            name = condition[4:]
            return name in self.authenticated and self.image.key_tries_left(name) > 0
        return False

    def _ef_for(self, sfi: int) -> ElementaryFile | Answer:
        if sfi == 0:
            if self.current_ef is None:
                return sw(0x6986)
            return self.current_ef
        ef = self.current_df.ef_by_sfi(sfi)
        if ef is None:
            return sw(0x6A82)
        self.current_ef = ef
        return ef

    # -- READ BINARY / READ RECORD (ISO 7816-4 §11.3, spec/card.md §4) ---------------------------
    def _binary_target(self, cmd: CommandApdu) -> _BinaryTarget | Answer:
        """The transparent EF and offset of a READ/UPDATE BINARY (ISO 7816-4 §11.3.3):
        P1 b8=1 names the EF by SFI (b5..b1) with P2 the offset, else P1‖P2 is the offset
        in the current EF."""
        if cmd.p1 & 0x80:
            if cmd.p1 & 0x60:
                return sw(0x6A86)
            found = self._ef_for(cmd.p1 & 0x1F)
            offset = cmd.p2
        else:
            found = self._ef_for(0)
            offset = (cmd.p1 << 8) | cmd.p2
        if not isinstance(found, ElementaryFile):
            return found
        if found.structure != "transparent":
            return sw(0x6981)
        return _BinaryTarget(found, offset)

    def cmd_read_binary(self, cmd: CommandApdu) -> Answer:
        if cmd.data:
            return sw(0x6700)
        target = self._binary_target(cmd)
        if not isinstance(target, _BinaryTarget):
            return target
        ef, offset = target
        if not self.may(ef.read):
            return sw(0x6982)
        if offset >= ef.size:
            return sw(0x6B00)
        avail = ef.size - offset
        le = cmd.le if cmd.le is not None else 256
        if le == 256 or (cmd.extended and le >= avail):
            n = min(avail, le)
        elif le > avail:
            return sw(0x6C00 | (avail & 0xFF))
        else:
            n = le
        return bytes(ef.data[offset : offset + n]), SW_OK

    def cmd_read_record(self, cmd: CommandApdu) -> Answer:
        if cmd.data:
            return sw(0x6700)
        mode = cmd.p2 & 0x07
        if mode not in (0x00, 0x04):
            return sw(0x6A86)
        found = self._ef_for(cmd.p2 >> 3)
        if not isinstance(found, ElementaryFile):
            return found
        ef = found
        if ef.structure == "transparent":
            return sw(0x6981)
        if not self.may(ef.read):
            return sw(0x6982)
        if mode == 0x00:
            hit = ef.record_by_tag(cmd.p1) if ef.structure == "records" else None
            if hit is None:
                return sw(0x6A83)
            record = hit[1]
            if cmd.le != len(record):
                return sw(0x6C00 | (len(record) & 0xFF))
            return record, SW_OK
        rec = ef.record_by_number(cmd.p1)
        if rec is None:
            return sw(0x6A83)
        if cmd.le is not None and cmd.le != 256 and cmd.le != len(rec):
            return sw(0x6C00 | (len(rec) & 0xFF))
        return rec, SW_OK

    # -- UPDATE (ISO 7816-4 §11.3.5, §11.4.4) --------------------------------------------------
    def _write_allowed(self, cmd: CommandApdu, ef: ElementaryFile) -> bytes | Answer:
        """The update data (MAC stripped) or a status answer."""
        cond = ef.write
        secure = cmd.cla in (0x04, 0x84)
        if cond.startswith("mac:"):
            if not secure:
                return sw(0x6982)
            bad = self.check_mac(cmd, cond[4:])
            if bad is not None:
                return bad
            return cmd.data[:-4]
        if secure:
            return sw(0x6988)
        if cond == "free" or (cond == "pin" and self.may("pin")):
            return cmd.data
        return sw(0x6982)

    def cmd_update_binary(self, cmd: CommandApdu) -> Answer:
        target = self._binary_target(cmd)
        if not isinstance(target, _BinaryTarget):
            return target
        ef, offset = target
        if not cmd.data:
            return sw(0x6700)
        allowed = self._write_allowed(cmd, ef)
        if isinstance(allowed, tuple):
            return allowed
        if offset >= ef.size:
            return sw(0x6B00)
        if offset + len(allowed) > ef.size:
            return sw(0x6700)
        ef.data[offset : offset + len(allowed)] = allowed
        self.commit()
        return sw(SW_OK)

    def cmd_update_record(self, cmd: CommandApdu) -> Answer:
        mode = cmd.p2 & 0x07
        if mode not in (0x00, 0x04):
            return sw(0x6A86)
        found = self._ef_for(cmd.p2 >> 3)
        if not isinstance(found, ElementaryFile):
            return found
        ef = found
        if ef.structure != "records":
            return sw(0x6981)
        if not cmd.data:
            return sw(0x6700)
        allowed = self._write_allowed(cmd, ef)
        if isinstance(allowed, tuple):
            return allowed
        if mode == 0x00:
            hit = ef.record_by_tag(cmd.p1)
            if hit is None:
                return sw(0x6A83)
            index, old = hit
        else:
            if not 1 <= cmd.p1 <= len(ef.records):
                return sw(0x6A83)
            index, old = cmd.p1 - 1, ef.records[cmd.p1 - 1]
        if len(allowed) != len(old):
            return sw(0x6700)
        if allowed[0] != old[0] or allowed[1] != old[1]:
            return sw(0x6A80)
        ef.records[index] = bytes(allowed)
        self.commit()
        return sw(SW_OK)

    # -- PIN (spec/card.md §5, §7) -----------------------------------------------------------
    def cmd_verify(self, cmd: CommandApdu) -> Answer:
        if cmd.p1 != 0x00 or cmd.p2 not in (0x00, 0x80):
            return sw(0x6A86)
        name = self.pin_name()
        record = self.image.pins[name]
        if not cmd.data:
            if name in self.verified:
                return sw(SW_OK)
            return sw(0x6983 if record.tries_left == 0 else pin.tries_sw(record.tries_left))
        try:
            candidate = (pin.parse_plain(cmd.data) if cmd.p2 == 0x00
                         else pin.parse_emv_block(cmd.data))
        except pin.PinFormatError:
            return sw(0x6A80)
        if record.tries_left == 0:
            return sw(0x6983)
        self.verified.discard(name)
        if pin.evaluate(record, candidate, self.image.pin_max_tries, self.commit, self.step):
            self.verified.add(name)
            return sw(SW_OK)
        return sw(pin.tries_sw(record.tries_left))

    def cmd_change_pin(self, cmd: CommandApdu) -> Answer:
        if cmd.p1 != 0x01 or cmd.p2 != 0x00:
            return sw(0x6A86)
        try:
            old, new = pin.parse_change(cmd.data)
        except pin.PinFormatError:
            return sw(0x6A80)
        name = self.pin_name()
        record = self.image.pins[name]
        if record.tries_left == 0:
            return sw(0x6983)
        self.verified.discard(name)
        if not pin.evaluate(record, old, self.image.pin_max_tries, self.commit, self.step):
            return sw(pin.tries_sw(record.tries_left))
        record.set(new)
        record.initial = False
        record.tries_left = self.image.pin_max_tries
        self.image.activated = True
        self.commit()
        self.verified.add(name)
        return sw(SW_OK)

    def cmd_pin_unblock_reload(self, cmd: CommandApdu) -> Answer:
        """PIN UNBLOCK (P2 00) and PIN RELOAD (P2 01), spec/card.md §5, §8."""
        if cmd.p1 != 0x00 or cmd.p2 not in (0x00, 0x01):
            return sw(0x6A86)
        bs = crypto.block_size(self.image.algorithm)
        want = 4 if cmd.p2 == 0x00 else bs + 4
        if len(cmd.data) != want:
            return sw(0x6700)
        name = self.pin_name()
        key_name = "BPUK" if name == "bank" else "PUK"
        session = self._session_for_mac(key_name)
        if isinstance(session, tuple):
            return session
        bad = self._verify_mac_with(cmd, session)
        if bad is not None:
            return bad
        record = self.image.pins[name]
        if cmd.p2 == 0x01:
            try:
                new = crypto.pin_block_decipher(session, cmd.data[:bs], self.image.algorithm)
            except crypto.CryptoError:
                return sw(0x6A80)
            if not pin.MIN_PIN <= len(new) <= pin.MAX_PIN:
                return sw(0x6A80)
            record.set(new)
            record.initial = False
            self.image.activated = True
        record.tries_left = self.image.pin_max_tries
        self.commit()
        return sw(SW_OK)

    # -- challenges, authentication, MAC (spec/card.md §5, §8) --------------------------------
    def cmd_get_challenge(self, cmd: CommandApdu) -> Answer:
        if cmd.p1 or cmd.p2:
            return sw(0x6A86)
        if cmd.data or cmd.le not in (4, 8, 16):
            return sw(0x6700)
        challenge = self.rng(cmd.le)
        self.challenges = [*self.challenges[-1:], challenge]
        return challenge, SW_OK

    def card_key(self, name: str) -> bytes | None:
        return self.image.keys.get(name)

    def cmd_internal_authenticate(self, cmd: CommandApdu) -> Answer:
        if cmd.p1 or cmd.p2:
            return sw(0x6A86)
        if len(cmd.data) not in (16, 17):
            return sw(0x6700)
        if len(cmd.data) == 17 and cmd.data[16] not in (0x00, 0x01):
            return sw(0x6A88)
        key = self.card_key("IRK")
        if key is None:
            return sw(0x6A88)
        alg = self.image.algorithm
        session = crypto.session_key(key, cmd.data[:8], alg)
        return crypto.auth_data(session, cmd.data[8:16], alg), SW_OK

    def cmd_external_authenticate(self, cmd: CommandApdu) -> Answer:
        """EXTERNAL AUTHENTICATE with a key error counter (module docstring, card.keyauth)."""
        if cmd.p1:
            return sw(0x6A86)
        if len(cmd.data) != 16:
            return sw(0x6700)
        name = KEY_BY_ID.get((USAGE_READ, cmd.p2))
        key = self.card_key(name) if name else None
        if name is None or key is None:
            return sw(0x6A88)
        if self.image.key_tries_left(name) == 0:
            self.challenges = []
            self.authenticated.discard(name)
            return sw(keyauth.SW_BLOCKED)
        if len(self.challenges) < 2:
            return sw(0x6984)
        factor, last = self.challenges
        self.challenges = []
        self.authenticated.discard(name)
        alg = self.image.algorithm
        auth, original = cmd.data[:8], cmd.data[8:]

        def matches() -> bool:
            expected = crypto.auth_data(crypto.session_key(key, factor, alg), original, alg)
            return (original == last.ljust(8, b"\x00")[:8]
                    and hmac.compare_digest(expected, auth))

        if keyauth.evaluate(self.image, name, matches, self.commit, self.step):
            self.authenticated.add(name)
            return sw(SW_OK)
        return sw(keyauth.tries_sw(self.image.key_tries_left(name)))

    def _session_for_mac(self, key_name: str) -> bytes | Answer:
        key = self.card_key(key_name)
        if key is None:
            return sw(0x6A88)
        if not self.challenges:
            return sw(0x6984)
        challenge = self.challenges[-1]
        self.challenges = []
        return crypto.session_key(key, challenge[:8], self.image.algorithm)

    def _verify_mac_with(self, cmd: CommandApdu, session: bytes) -> Answer | None:
        if not 4 <= len(cmd.data) <= 255:
            return sw(0x6700)
        body = cmd.header + bytes([len(cmd.data)]) + cmd.data[:-4]
        if crypto.mac(session, body, self.image.algorithm) != cmd.data[-4:]:
            return sw(0x9302)
        return None

    def check_mac(self, cmd: CommandApdu, key_name: str) -> Answer | None:
        """None when the command's trailing MAC is right under ``key_name``; else the answer."""
        if not 4 <= len(cmd.data) <= 255:
            return sw(0x6700)
        session = self._session_for_mac(key_name)
        if isinstance(session, tuple):
            return session
        return self._verify_mac_with(cmd, session)

    def cmd_get_response(self, cmd: CommandApdu) -> Answer:
        return sw(0x6985)

    # -- blocks (spec/card.md §5) -------------------------------------------------------------
    def cmd_application_block(self, cmd: CommandApdu) -> Answer:
        if cmd.p1 != 0x00 or cmd.p2 != 0x01:
            return sw(0x6A86)
        app = self.application
        if not app:
            return sw(0x6985)
        if len(cmd.data) != 4:
            return sw(0x6700)
        bad = self.check_mac(cmd, "BK")
        if bad is not None:
            return bad
        self.image.blocked_apps.append(app)
        self.commit()
        return sw(SW_OK)

    def cmd_card_block(self, cmd: CommandApdu) -> Answer:
        if cmd.p1 or cmd.p2:
            return sw(0x6A86)
        if len(cmd.data) != 4:
            return sw(0x6700)
        bad = self.check_mac(cmd, "LK")
        if bad is not None:
            return bad
        self.image.card_blocked = True
        self.commit()
        return sw(SW_OK)

    # -- bank application (card.pboc) ----------------------------------------------------------
    def cmd_gpo(self, cmd: CommandApdu) -> Answer:
        return pboc.get_processing_options(self, cmd)

    def cmd_generate_ac(self, cmd: CommandApdu) -> Answer:
        return pboc.generate_ac(self, cmd)

    def cmd_get_data(self, cmd: CommandApdu) -> Answer:
        return pboc.get_data(self, cmd)


_HANDLERS: dict[tuple[int, int], Callable[[VirtualCard, CommandApdu], Answer]] = {
    (0x00, 0xA4): VirtualCard.cmd_select,
    (0x00, 0xB0): VirtualCard.cmd_read_binary,
    (0x00, 0xB2): VirtualCard.cmd_read_record,
    (0x00, 0xD6): VirtualCard.cmd_update_binary,
    (0x04, 0xD6): VirtualCard.cmd_update_binary,
    (0x00, 0xDC): VirtualCard.cmd_update_record,
    (0x04, 0xDC): VirtualCard.cmd_update_record,
    (0x00, 0x20): VirtualCard.cmd_verify,
    (0x80, 0x5E): VirtualCard.cmd_change_pin,
    (0x84, 0x24): VirtualCard.cmd_pin_unblock_reload,
    (0x00, 0x84): VirtualCard.cmd_get_challenge,
    (0x00, 0x88): VirtualCard.cmd_internal_authenticate,
    (0x00, 0x82): VirtualCard.cmd_external_authenticate,
    (0x00, 0xC0): VirtualCard.cmd_get_response,
    (0x84, 0x1E): VirtualCard.cmd_application_block,
    (0x84, 0x16): VirtualCard.cmd_card_block,
    (0x80, 0xA8): VirtualCard.cmd_gpo,
    (0x80, 0xAE): VirtualCard.cmd_generate_ac,
    (0x80, 0xCA): VirtualCard.cmd_get_data,
    (0x00, 0xCA): VirtualCard.cmd_get_data,
    (0xB0, 0x26): purse.get_balance,
    (0xB0, 0x28): purse.initialize,
    (0xB0, 0x2A): purse.credit_for_load,
    (0xB0, 0x2C): purse.debit_for_purchase,
    (0xB0, 0x2E): purse.get_transaction_proof,
}
_KNOWN_INS = {ins for _, ins in _HANDLERS}

"""PC/SC readers through pyscard: real readers and every reader pcscd knows (vpcd included).

Uses pyscard's low-level ``smartcard.scard`` API, so each PC/SC return code maps to one
:mod:`reader.errors` class a caller can act on. Facts this module relies on (checked with
pcsc-lite 1.9.9, spec/pcsc-lab.md):

- When pcscd stops, every call on an existing context answers ``SCARD_E_NO_SERVICE`` and the
  context stays dead after pcscd comes back: it must be released and established again.
- A card pulled during an exchange first answers ``SCARD_E_NOT_TRANSACTED`` and then
  ``SCARD_W_REMOVED_CARD``; the reader's state tells the two apart.
- Right after a card arrives pcscd may briefly answer ``SCARD_W_UNPOWERED_CARD`` to a
  connect; a short retry absorbs it.
- ``SCardGetStatusChange`` states carry an event counter in the high 16 bits: the state it
  returns must be passed back unchanged, or the call returns at once.
"""

from __future__ import annotations

import contextlib
import threading
import time
from typing import Any

from reader.base import CardEvent, Connection, ReaderInfo, Transport
from reader.errors import (
    CardRemoved,
    CardReset,
    NoCard,
    NoReader,
    NotPowered,
    ReaderBusy,
    ReaderError,
    ReaderGone,
    ReaderTimeout,
    ServiceUnavailable,
    TransportError,
)

try:  # pyscard is an optional dependency (extra "pcsc")
    from smartcard import scard as _scard
except ImportError:  # pragma: no cover - exercised only where pyscard is missing
    _scard = None

PNP_READER = "\\\\?PnP?\\Notification"

# PC/SC return codes (pcsc-lite pcsclite.h), unsigned
SCARD_S_SUCCESS = 0x00000000
SCARD_E_CANCELLED = 0x80100002
SCARD_E_INVALID_HANDLE = 0x80100003
SCARD_E_UNKNOWN_READER = 0x80100009
SCARD_E_TIMEOUT = 0x8010000A
SCARD_E_SHARING_VIOLATION = 0x8010000B
SCARD_E_NO_SMARTCARD = 0x8010000C
SCARD_E_PROTO_MISMATCH = 0x8010000F
SCARD_E_NOT_READY = 0x80100010
SCARD_F_COMM_ERROR = 0x80100013
SCARD_E_NOT_TRANSACTED = 0x80100016
SCARD_E_READER_UNAVAILABLE = 0x80100017
SCARD_E_NO_SERVICE = 0x8010001D
SCARD_E_SERVICE_STOPPED = 0x8010001E
SCARD_E_NO_READERS_AVAILABLE = 0x8010002E
SCARD_W_UNRESPONSIVE_CARD = 0x80100066
SCARD_W_UNPOWERED_CARD = 0x80100067
SCARD_W_RESET_CARD = 0x80100068
SCARD_W_REMOVED_CARD = 0x80100069

SCARD_STATE_UNAWARE = 0x0000
SCARD_STATE_CHANGED = 0x0002
SCARD_STATE_UNKNOWN = 0x0004
SCARD_STATE_UNAVAILABLE = 0x0008
SCARD_STATE_EMPTY = 0x0010
SCARD_STATE_PRESENT = 0x0020
SCARD_STATE_EXCLUSIVE = 0x0080
SCARD_STATE_INUSE = 0x0100
SCARD_STATE_MUTE = 0x0200

_SERVICE_DOWN = {SCARD_E_NO_SERVICE, SCARD_E_SERVICE_STOPPED}

_STATE_NAMES = (
    (SCARD_STATE_UNAVAILABLE, "unavailable"),
    (SCARD_STATE_EMPTY, "empty"),
    (SCARD_STATE_PRESENT, "present"),
    (SCARD_STATE_EXCLUSIVE, "exclusive"),
    (SCARD_STATE_INUSE, "in use"),
    (SCARD_STATE_MUTE, "mute"),
)

SERVICE_HINT = (
    "pcscd is not running; start it (`pcscd` as root, or `systemctl start pcscd.socket`); "
    "`sscard doctor` checks the whole setup"
)


def pyscard_available() -> bool:
    return _scard is not None


def _u32(code: int) -> int:
    return code & 0xFFFFFFFF


def state_text(state: int) -> str:
    """Readable PC/SC reader state, e.g. ``present, exclusive``."""
    names = [name for bit, name in _STATE_NAMES if state & bit]
    return ", ".join(names) or "unknown"


def error_message(code: int) -> str:
    code = _u32(code)
    if _scard is not None:
        with contextlib.suppress(Exception):
            return f"{_scard.SCardGetErrorMessage(code)} (0x{code:08X})"
    return f"PC/SC error 0x{code:08X}"


def error_for(code: int, reader: str = "", action: str = "") -> ReaderError:
    """The :mod:`reader.errors` class for a PC/SC return code."""
    code = _u32(code)
    where = f"{reader}: " if reader else ""
    what = f"{action}: " if action else ""
    text = f"{where}{what}{error_message(code)}"
    if code in _SERVICE_DOWN:
        return ServiceUnavailable(f"{text}; {SERVICE_HINT}")
    if code == SCARD_E_NO_READERS_AVAILABLE:
        return NoReader(f"{text}; attach a reader or serve a card to vpcd "
                        "(`sscard card serve FILE --vpcd`)")
    if code == SCARD_E_UNKNOWN_READER:
        return NoReader(f"{text}; `sscard readers` lists the readers")
    if code == SCARD_E_READER_UNAVAILABLE:
        return ReaderGone(f"{text}; the reader was unplugged or pcscd restarted")
    if code == SCARD_E_NO_SMARTCARD:
        return NoCard(f"{text}; insert a card")
    if code == SCARD_W_REMOVED_CARD:
        return CardRemoved(f"{text}; the card was removed; insert it and start over")
    if code == SCARD_W_RESET_CARD:
        return CardReset(f"{text}; another program reset the card; start over")
    if code == SCARD_W_UNPOWERED_CARD:
        return NotPowered(f"{text}; remove and re-insert the card")
    if code in (SCARD_W_UNRESPONSIVE_CARD, SCARD_E_TIMEOUT):
        return ReaderTimeout(f"{text}; the card does not answer")
    if code == SCARD_E_SHARING_VIOLATION:
        return ReaderBusy(f"{text}; another program uses the card; close it and retry")
    return TransportError(text)


def _require_pyscard() -> Any:
    if _scard is None:
        raise ServiceUnavailable(
            "pyscard is not installed; install the PC/SC extra: pip install 'sscard[pcsc]' "
            "(needs libpcsclite-dev and a C compiler)")
    return _scard


class PcscConnection(Connection):
    """A card connection through PC/SC (``SCardConnect`` handle)."""

    def __init__(self, transport: PcscTransport, reader: str, handle: int, protocol: int,
                 share: int, disposition: int) -> None:
        super().__init__(reader)
        self._transport = transport
        self._handle: int | None = handle
        self.protocol = protocol
        self._share = share
        self._disposition = disposition
        self._atr = b""

    @property
    def protocol_name(self) -> str:
        return {1: "T=0", 2: "T=1"}.get(self.protocol, f"0x{self.protocol:X}")

    def _h(self) -> int:
        if self._handle is None:
            raise NotPowered(f"{self.reader}: connection closed")
        return self._handle

    def _fail(self, code: int, action: str) -> ReaderError:
        code = _u32(code)
        if code in (SCARD_E_NOT_TRANSACTED, SCARD_F_COMM_ERROR, SCARD_E_INVALID_HANDLE):
            # refine: was the card pulled, or did pcscd go away?
            refined = self._transport.card_state(self.reader)
            if refined == "absent":
                return CardRemoved(f"{self.reader}: {action}: the card was removed during the "
                                   "exchange; insert it and start over")
            if refined == "no service":
                return ReaderGone(f"{self.reader}: {action}: pcscd went away; {SERVICE_HINT}")
            if refined == "no reader":
                return ReaderGone(f"{self.reader}: {action}: the reader disappeared")
        if code in _SERVICE_DOWN:
            self._transport.drop_context()
            return ReaderGone(f"{self.reader}: {action}: pcscd went away; {SERVICE_HINT}")
        return error_for(code, self.reader, action)

    def atr(self) -> bytes:
        sc = _require_pyscard()
        with self._lock:
            hr, _name, _state, _proto, atr = sc.SCardStatus(self._h())
            if _u32(hr) != SCARD_S_SUCCESS:
                raise self._fail(hr, "status")
            self._atr = bytes(atr)
            return self._atr

    def _transmit_raw(self, tpdu: bytes) -> bytes:
        sc = _require_pyscard()
        hr, response = sc.SCardTransmit(self._h(), self.protocol, list(tpdu))
        if _u32(hr) != SCARD_S_SUCCESS:
            raise self._fail(hr, "transmit")
        if len(response) < 2:
            raise self._no_status()
        return bytes(response)

    def _no_status(self, wait: float = 1.5) -> ReaderError:
        """An answer without SW1 SW2 (vpcd's answer when the card's link drops): find out
        whether the card left before pcscd's next presence poll reports it."""
        deadline = time.monotonic() + wait
        while True:
            state = self._transport.card_state(self.reader)
            if state == "absent":
                return CardRemoved(f"{self.reader}: the card was removed during the exchange; "
                                   "insert it and start over")
            if state in ("no service", "no reader"):
                return ReaderGone(f"{self.reader}: the reader went away during the exchange")
            if time.monotonic() >= deadline:
                return TransportError(f"{self.reader}: the card answered without a status "
                                      "word; remove and re-insert it")
            time.sleep(0.05)

    def _reset(self, cold: bool) -> bytes:
        sc = _require_pyscard()
        init = sc.SCARD_UNPOWER_CARD if cold else sc.SCARD_RESET_CARD
        hr, protocol = sc.SCardReconnect(self._h(), self._share,
                                         sc.SCARD_PROTOCOL_T0 | sc.SCARD_PROTOCOL_T1, init)
        if _u32(hr) != SCARD_S_SUCCESS:
            raise self._fail(hr, "reset")
        self.protocol = protocol
        return self.atr()

    def _disconnect(self) -> None:
        if self._handle is None:
            return
        sc = _require_pyscard()
        handle, self._handle = self._handle, None
        with contextlib.suppress(Exception):
            sc.SCardDisconnect(handle, self._disposition)


class PcscTransport(Transport):
    """Every reader pcscd knows. The PC/SC context is established lazily and re-established
    after pcscd restarts; :meth:`wait_for_event` reports readers and cards coming and going,
    including all readers leaving when pcscd stops and coming back when it restarts."""

    name = "pcsc"

    def __init__(self, *, connect_retry: float = 1.0, disposition: str = "reset") -> None:
        self._ctx: int | None = None
        self._lock = threading.RLock()
        self._connect_retry = connect_retry
        self._disposition = disposition
        self._known: dict[str, int] | None = None  # reader → last event state
        self._pnp_state = SCARD_STATE_UNAWARE
        self._down_since: float | None = None

    # -- context -------------------------------------------------------------------------
    def _context(self) -> int:
        sc = _require_pyscard()
        with self._lock:
            if self._ctx is None:
                hr, ctx = sc.SCardEstablishContext(sc.SCARD_SCOPE_USER)
                if _u32(hr) != SCARD_S_SUCCESS:
                    raise error_for(hr, action="connect to pcscd")
                self._ctx = ctx
            return self._ctx

    def drop_context(self) -> None:
        """Forget the context (pcscd went away); the next call establishes a new one."""
        with self._lock:
            ctx, self._ctx = self._ctx, None
        if ctx is not None and _scard is not None:
            with contextlib.suppress(Exception):
                _scard.SCardReleaseContext(ctx)

    def close(self) -> None:
        self.drop_context()

    def _call(self, fn: Any, *args: Any, action: str = "", reader: str = "") -> Any:
        """Call an SCard function on the context; re-establish it once if pcscd restarted."""
        for attempt in (0, 1):
            ctx = self._context()
            result = fn(ctx, *args)
            hr = result[0] if isinstance(result, tuple | list) else result
            code = _u32(hr)
            if code in _SERVICE_DOWN | {SCARD_E_INVALID_HANDLE} and attempt == 0:
                self.drop_context()
                continue
            if code != SCARD_S_SUCCESS:
                if code == SCARD_E_INVALID_HANDLE:
                    code = SCARD_E_NO_SERVICE
                raise error_for(code, reader, action)
            return result
        raise AssertionError("unreachable")  # pragma: no cover

    # -- Transport -----------------------------------------------------------------------
    def reader_names(self) -> list[str]:
        sc = _require_pyscard()
        try:
            _hr, names = self._call(sc.SCardListReaders, [], action="list readers")
        except NoReader:
            return []
        return list(names)

    def readers(self) -> list[ReaderInfo]:
        sc = _require_pyscard()
        names = self.reader_names()
        if not names:
            return []
        _hr, states = self._call(sc.SCardGetStatusChange, 0,
                                 [(n, SCARD_STATE_UNAWARE) for n in names],
                                 action="reader states")
        out = []
        for name, state, atr in states:
            present = bool(state & SCARD_STATE_PRESENT)
            out.append(ReaderInfo(name, present, bytes(atr) if present and atr else None,
                                  state_text(state)))
        return out

    def card_state(self, reader: str) -> str:
        """``present`` | ``absent`` | ``no reader`` | ``no service`` (never raises)."""
        try:
            for info in self.readers():
                if info.name == reader:
                    return "present" if info.card_present else "absent"
            return "no reader"
        except ServiceUnavailable:
            return "no service"
        except ReaderError:
            return "no reader"

    def connect(self, reader: str, exclusive: bool = True) -> PcscConnection:
        sc = _require_pyscard()
        share = sc.SCARD_SHARE_EXCLUSIVE if exclusive else sc.SCARD_SHARE_SHARED
        protocols = sc.SCARD_PROTOCOL_T0 | sc.SCARD_PROTOCOL_T1
        disposition = {"reset": sc.SCARD_RESET_CARD, "leave": sc.SCARD_LEAVE_CARD,
                       "unpower": sc.SCARD_UNPOWER_CARD}[self._disposition]
        deadline = time.monotonic() + self._connect_retry
        while True:
            hr, handle, protocol = self._call_connect(sc, reader, share, protocols)
            code = _u32(hr)
            if code == SCARD_S_SUCCESS:
                conn = PcscConnection(self, reader, handle, protocol, share, disposition)
                conn.atr()
                return conn
            transient = code in (SCARD_W_UNPOWERED_CARD, SCARD_W_RESET_CARD,
                                 SCARD_W_REMOVED_CARD, SCARD_E_NOT_READY)
            if transient and time.monotonic() < deadline:
                time.sleep(0.05)
                continue
            if code == SCARD_E_UNKNOWN_READER:
                known = ", ".join(repr(n) for n in self.reader_names()) or "none"
                raise NoReader(f"no PC/SC reader named {reader!r}; readers: {known}")
            raise error_for(code, reader, "connect")

    def _call_connect(self, sc: Any, reader: str, share: int, protocols: int) -> Any:
        for attempt in (0, 1):
            ctx = self._context()
            hr, handle, protocol = sc.SCardConnect(ctx, reader, share, protocols)
            if _u32(hr) in _SERVICE_DOWN | {SCARD_E_INVALID_HANDLE} and attempt == 0:
                self.drop_context()
                continue
            return hr, handle, protocol
        raise AssertionError("unreachable")  # pragma: no cover

    def wait_for_event(self, timeout: float | None = None) -> list[CardEvent]:
        """Changes since the previous call (the first call reports every reader and card).

        When pcscd is down, every known reader is reported removed once; the context is
        retried on every later call, and when pcscd is back its readers (and cards) are
        reported added again. Never raises for pcscd being away.
        """
        if timeout is None:
            while True:
                found = self.wait_for_event(1.0)
                if found:
                    return found
        sc = _require_pyscard()
        deadline = time.monotonic() + max(timeout, 0.0)
        try:
            ctx = self._context()
        except ServiceUnavailable:
            gone = self._all_gone()
            if not gone:
                time.sleep(max(0.0, min(0.2, deadline - time.monotonic())))
            return gone
        if self._known is None:
            return self._resync()
        states = [(n, s) for n, s in self._known.items()] + [(PNP_READER, self._pnp_state)]
        ms = max(0, int((deadline - time.monotonic()) * 1000))
        hr, new_states = sc.SCardGetStatusChange(ctx, ms, states)
        code = _u32(hr)
        if code in (SCARD_E_TIMEOUT, SCARD_E_CANCELLED):
            return []
        if code in _SERVICE_DOWN | {SCARD_E_INVALID_HANDLE}:
            self.drop_context()
            return self._all_gone()
        if code in (SCARD_E_UNKNOWN_READER, SCARD_E_READER_UNAVAILABLE):
            return self._resync()
        if code != SCARD_S_SUCCESS:
            raise error_for(code, action="wait for card events")
        events: list[CardEvent] = []
        pnp_changed = False
        for name, state, atr in new_states:
            if name == PNP_READER:
                pnp_changed = bool(state & SCARD_STATE_CHANGED)
                self._pnp_state = state & ~SCARD_STATE_CHANGED
                continue
            old = self._known.get(name, SCARD_STATE_UNAWARE)
            if state & SCARD_STATE_UNKNOWN or state & SCARD_STATE_UNAVAILABLE:
                pnp_changed = True
            was = bool(old & SCARD_STATE_PRESENT)
            now = bool(state & SCARD_STATE_PRESENT)
            if now and not was:
                events.append(CardEvent(name, "inserted", bytes(atr) or None))
            elif was and not now:
                events.append(CardEvent(name, "removed"))
            elif now and was and (state >> 16) != (old >> 16):
                # pcsc-lite counts card events in the high word: a card swapped between
                # two polls shows as present both times with a new count
                events.append(CardEvent(name, "removed"))
                events.append(CardEvent(name, "inserted", bytes(atr) or None))
            self._known[name] = state & ~SCARD_STATE_CHANGED
        if pnp_changed:
            events += self._resync()
        return events

    def _all_gone(self) -> list[CardEvent]:
        """pcscd went away: every known reader (and its card) is gone."""
        known = self._known or {}
        events = [CardEvent(n, "removed") for n, s in known.items() if s & SCARD_STATE_PRESENT]
        events += [CardEvent(n, "reader_removed") for n in known]
        self._known = None
        self._pnp_state = SCARD_STATE_UNAWARE
        return events

    def _resync(self) -> list[CardEvent]:
        """Re-list readers and diff them against what was known."""
        sc = _require_pyscard()
        known = dict(self._known or {})
        names = self.reader_names()
        events: list[CardEvent] = []
        for gone in [n for n in known if n not in names]:
            if known[gone] & SCARD_STATE_PRESENT:
                events.append(CardEvent(gone, "removed"))
            events.append(CardEvent(gone, "reader_removed"))
            del known[gone]
        fresh = [n for n in names if n not in known]
        if fresh:
            _hr, states = self._call(sc.SCardGetStatusChange, 0,
                                     [(n, SCARD_STATE_UNAWARE) for n in fresh],
                                     action="reader states")
            for name, state, atr in states:
                events.append(CardEvent(name, "reader_added"))
                if state & SCARD_STATE_PRESENT:
                    events.append(CardEvent(name, "inserted", bytes(atr) or None))
                known[name] = state & ~SCARD_STATE_CHANGED
        self._known = known
        return events

"""In-process readers holding card objects (``apdu.iface.CardLike``) in named slots.

Used by the tests and by the default terminal: the CLI loads a card image through ``card``
and puts it in a slot, so this module never imports ``card`` (DESIGN.md layering). A
:class:`VirtualTransport` behaves like PC/SC: connecting powers the card, exclusive
connections exclude others, removing the card makes open connections fail with
:class:`reader.errors.CardRemoved`, and :meth:`VirtualTransport.wait_for_event` reports
insertions and removals.

The usual pair of readers (spec/card.md §9: reader slots for the user card and the PSAM):
``Virtual Card 0`` for the user card and ``Virtual PSAM 0`` for the PSAM.
"""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass

from apdu.iface import CardLike
from reader.base import CardEvent, Connection, ReaderInfo, Transport
from reader.errors import CardRemoved, NoCard, NoReader, NotPowered, ReaderBusy

USER_READER = "Virtual Card {n}"
PSAM_READER = "Virtual PSAM {n}"


def _announces_t0_only(card: CardLike | None) -> bool:
    """Whether an ATR offers no protocol but T=0 (ISO 7816-3 §8.2.3: no TD1 means T=0)."""
    if card is None:
        return True
    try:
        from apdu.atr import parse

        return tuple(parse(card.atr()).protocols) in ((), (0,))
    except Exception:
        return True


@dataclass
class _Slot:
    card: CardLike | None = None
    powered: bool = False
    generation: int = 0
    holders: int = 0
    exclusive: bool = False


class VirtualConnection(Connection):
    """A connection to the card in one virtual slot."""

    @property
    def protocol_name(self) -> str:
        return "T=0" if _announces_t0_only(self._slot.card) else "T=1"

    def __init__(self, transport: VirtualTransport, reader: str, slot: _Slot, exclusive: bool,
                 disposition: str) -> None:
        super().__init__(reader)
        self._transport = transport
        self._slot = slot
        self._generation = slot.generation
        self._exclusive = exclusive
        self._disposition = disposition
        self._open = True

    def _card(self) -> CardLike:
        if not self._open:
            raise NotPowered(f"{self.reader}: connection closed")
        card = self._slot.card
        if card is None or self._slot.generation != self._generation:
            raise CardRemoved(f"{self.reader}: the card was removed; insert it and start over")
        return card

    def atr(self) -> bytes:
        return self._card().atr()

    def _transmit_raw(self, tpdu: bytes) -> bytes:
        card = self._card()
        with self._transport.lock:
            try:
                return card.transmit(tpdu)
            except ConnectionError as exc:  # the card left the contacts (pulled, power cut)
                self._slot.powered = False
                raise CardRemoved(f"{self.reader}: the card was removed or lost power during "
                                  f"the exchange ({exc}); insert it and start over") from exc
            except Exception:  # a card never raises to its reader; answer like a card
                return b"\x6f\x00"

    def _reset(self, cold: bool) -> bytes:
        card = self._card()
        with self._transport.lock:
            try:
                if cold:
                    card.power_off()
                    atr = card.power_on()
                else:
                    atr = card.reset()
            except ConnectionError as exc:
                self._slot.powered = False
                raise CardRemoved(f"{self.reader}: the card does not answer the reset ({exc}); "
                                  "insert it and start over") from exc
            self._slot.powered = True
        return atr

    def _disconnect(self) -> None:
        if not self._open:
            return
        self._open = False
        with self._transport.lock:
            self._slot.holders = max(0, self._slot.holders - 1)
            if self._exclusive:
                self._slot.exclusive = False
            card = self._slot.card
            if card is not None and self._slot.generation == self._generation:
                try:
                    if self._disposition == "reset":
                        card.reset()
                    elif self._disposition == "unpower":
                        card.power_off()
                        self._slot.powered = False
                except ConnectionError:
                    self._slot.powered = False


class VirtualTransport(Transport):
    """Named in-process reader slots, each holding a card object or empty."""

    name = "virtual"

    def __init__(self, *, disposition: str = "reset") -> None:
        self.lock = threading.RLock()
        self._cond = threading.Condition(self.lock)
        self._slots: dict[str, _Slot] = {}
        self._version = 0
        self._seen: dict[str, int] | None = None  # reader → generation with card, -1 empty
        self._disposition = disposition

    @classmethod
    def with_cards(cls, user: CardLike | None = None, psam: CardLike | None = None,
                   index: int = 0) -> VirtualTransport:
        """The usual pair of readers ``Virtual Card N`` / ``Virtual PSAM N``."""
        transport = cls()
        transport.add_reader(USER_READER.format(n=index), user)
        transport.add_reader(PSAM_READER.format(n=index), psam)
        return transport

    # -- slots -------------------------------------------------------------------------------
    def add_reader(self, name: str, card: CardLike | None = None) -> None:
        with self._cond:
            if name in self._slots:
                raise ValueError(f"reader {name!r} exists already")
            self._slots[name] = _Slot()
            self._bump()
        if card is not None:
            self.insert(card, name)

    def remove_reader(self, name: str) -> None:
        with self._cond:
            slot = self._slot(name)
            slot.card = None
            slot.generation += 1
            del self._slots[name]
            self._bump()

    def _slot(self, name: str) -> _Slot:
        try:
            return self._slots[name]
        except KeyError:
            known = ", ".join(repr(n) for n in self._slots) or "none"
            raise NoReader(f"no virtual reader named {name!r}; readers: {known}") from None

    def _default(self, reader: str | None) -> str:
        if reader is not None:
            return reader
        if not self._slots:
            raise NoReader("no virtual reader")
        return next(iter(self._slots))

    def _bump(self) -> None:
        self._version += 1
        self._cond.notify_all()

    def insert(self, card: CardLike, reader: str | None = None) -> None:
        """Put ``card`` in ``reader`` (default: the first reader); replaces any card there."""
        with self._cond:
            slot = self._slot(self._default(reader))
            slot.card = card
            slot.powered = False
            slot.generation += 1
            slot.exclusive = False
            slot.holders = 0
            self._bump()

    def remove(self, reader: str | None = None) -> CardLike | None:
        """Take the card out of ``reader``; open connections fail with CardRemoved."""
        with self._cond:
            slot = self._slot(self._default(reader))
            card, slot.card = slot.card, None
            if card is not None:
                with contextlib.suppress(ConnectionError):
                    card.power_off()
            slot.powered = False
            slot.generation += 1
            slot.exclusive = False
            slot.holders = 0
            self._bump()
            return card

    def card(self, reader: str | None = None) -> CardLike | None:
        with self.lock:
            return self._slot(self._default(reader)).card

    # -- Transport ---------------------------------------------------------------------------
    def readers(self) -> list[ReaderInfo]:
        with self.lock:
            out = []
            for name, slot in self._slots.items():
                if slot.card is None:
                    out.append(ReaderInfo(name, False, None, "empty"))
                else:
                    state = "present, exclusive" if slot.exclusive else (
                        "present, in use" if slot.holders else "present")
                    out.append(ReaderInfo(name, True, slot.card.atr(), state))
            return out

    def connect(self, reader: str, exclusive: bool = True) -> VirtualConnection:
        with self.lock:
            slot = self._slot(reader)
            if slot.card is None:
                raise NoCard(f"{reader}: no card; insert a card")
            if slot.exclusive or (exclusive and slot.holders):
                raise ReaderBusy(f"{reader}: another connection holds the card; close it and "
                                 "retry")
            if not slot.powered:
                try:
                    slot.card.power_on()
                except ConnectionError as exc:
                    raise NoCard(f"{reader}: the card does not answer ({exc}); insert it") from exc
                slot.powered = True
            slot.holders += 1
            slot.exclusive = exclusive
            return VirtualConnection(self, reader, slot, exclusive, self._disposition)

    def _snapshot(self) -> dict[str, int]:
        return {n: (s.generation if s.card is not None else -1) for n, s in self._slots.items()}

    def wait_for_event(self, timeout: float | None = None) -> list[CardEvent]:
        """Changes since the previous call; the first call reports every reader and card."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._seen is not None and self._snapshot() == self._seen:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return []
                self._cond.wait(left)
            old = self._seen or {}
            now = self._snapshot()
            events: list[CardEvent] = []
            for name in old:
                if name not in now:
                    if old[name] >= 0:
                        events.append(CardEvent(name, "removed"))
                    events.append(CardEvent(name, "reader_removed"))
            for name, gen in now.items():
                if name not in old:
                    events.append(CardEvent(name, "reader_added"))
                    before = -1
                else:
                    before = old[name]
                if before == gen:
                    continue
                if before >= 0:
                    events.append(CardEvent(name, "removed"))
                if gen >= 0:
                    card = self._slots[name].card
                    events.append(CardEvent(name, "inserted", card.atr() if card else None))
            self._seen = now
            return events

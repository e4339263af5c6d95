"""The reader interface every transport implements (DESIGN.md; pyscard's template method).

A :class:`Transport` lists readers, reports card insert/remove events and opens a
:class:`Connection` to the card in a reader. ``Connection.transmit`` is a template method:
it applies the T=0 rules (``apdu.t0.transceive``: 61xx → GET RESPONSE with the same CLA,
6Cxx → resend with the corrected Le; ISO 7816-3 §10.3.5, ISO 7816-4 §5.3) over the
transport's raw ``_transmit_raw`` and notifies observers (traces) of every TPDU, so a caller
always receives whole responses and tracing comes for free.
"""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from apdu.command import CommandApdu
from apdu.errors import ApduError
from apdu.response import ResponseApdu
from apdu.t0 import transceive
from reader.errors import TransportError

EventKind = Literal["inserted", "removed", "reader_added", "reader_removed"]


@dataclass(frozen=True)
class ReaderInfo:
    """A reader as a transport lists it."""

    name: str
    card_present: bool
    atr: bytes | None = None
    state: str = ""


@dataclass(frozen=True)
class CardEvent:
    """A change seen by a reader monitor."""

    reader: str
    kind: EventKind
    atr: bytes | None = None
    at: float = field(default_factory=time.time)


class ExchangeObserver:
    """Receives every raw exchange of a connection (used by traces)."""

    def on_command(self, reader: str, tpdu: bytes) -> None:  # pragma: no cover - interface
        """Called before ``tpdu`` is sent."""

    def on_response(self, reader: str, tpdu: bytes, response: bytes, seconds: float) -> None:
        """Called after the card answered ``response`` to ``tpdu``."""

    def on_event(self, reader: str, what: str, data: bytes = b"") -> None:
        """Called on power/reset/disconnect (``what``) with e.g. the ATR as ``data``."""


class Connection(ABC):
    """An open connection to the card in one reader."""

    def __init__(self, reader: str) -> None:
        self.reader = reader
        self.observers: list[ExchangeObserver] = []
        self._lock = threading.RLock()

    @property
    def protocol_name(self) -> str:
        """The transmission protocol in use (``T=0``, ``T=1``), when the transport knows it."""
        return ""

    # -- what a transport implements -------------------------------------------------
    @abstractmethod
    def atr(self) -> bytes:
        """The ATR of the connected card."""

    @abstractmethod
    def _transmit_raw(self, tpdu: bytes) -> bytes:
        """Carry one TPDU to the card and return its raw response (data ‖ SW1 SW2)."""

    @abstractmethod
    def _reset(self, cold: bool) -> bytes:
        """Reset the card (cold = power cycle) and return the ATR."""

    @abstractmethod
    def _disconnect(self) -> None:
        """Release the card (leave it powered or not as the transport decides)."""

    # -- the template methods callers use ----------------------------------------------
    def transmit(self, command: bytes | CommandApdu) -> ResponseApdu:
        """Send one command APDU and return the whole response, T=0 rules applied."""
        raw = command.to_bytes() if isinstance(command, CommandApdu) else bytes(command)
        with self._lock:
            try:
                answer = transceive(raw, self._send_observed)
            except ApduError as exc:
                raise TransportError(f"{self.reader}: {exc}") from exc
        try:
            return ResponseApdu.from_bytes(answer)
        except ApduError as exc:
            raise TransportError(f"{self.reader}: malformed response: {exc}") from exc

    def transmit_raw(self, tpdu: bytes) -> bytes:
        """Send one TPDU exactly as given (no T=0 rules) and return the raw answer.

        For trace replay and diagnostics (``sscard apdu --raw``); observers are notified.
        """
        with self._lock:
            return self._send_observed(bytes(tpdu))

    def _send_observed(self, tpdu: bytes) -> bytes:
        for obs in self.observers:
            obs.on_command(self.reader, tpdu)
        start = time.perf_counter()
        response = self._transmit_raw(tpdu)
        elapsed = time.perf_counter() - start
        for obs in self.observers:
            obs.on_response(self.reader, tpdu, response, elapsed)
        return response

    def reset(self, cold: bool = False) -> bytes:
        """Reset the card; volatile card state (verified PIN, selection) is lost."""
        with self._lock:
            atr = self._reset(cold)
        for obs in self.observers:
            obs.on_event(self.reader, "cold reset" if cold else "warm reset", atr)
        return atr

    def disconnect(self) -> None:
        with self._lock:
            self._disconnect()
        for obs in self.observers:
            obs.on_event(self.reader, "disconnect")

    def add_observer(self, observer: ExchangeObserver) -> None:
        self.observers.append(observer)

    def remove_observer(self, observer: ExchangeObserver) -> None:
        if observer in self.observers:
            self.observers.remove(observer)

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.disconnect()


class Transport(ABC):
    """A family of readers reachable the same way (PC/SC, serial, in-process)."""

    @abstractmethod
    def readers(self) -> list[ReaderInfo]:
        """Every reader of this transport with its card state."""

    @abstractmethod
    def connect(self, reader: str, exclusive: bool = True) -> Connection:
        """Open the card in ``reader`` (exclusive by default); raises NoCard, NoReader…"""

    @abstractmethod
    def wait_for_event(self, timeout: float | None = None) -> list[CardEvent]:
        """Block until readers or cards change (or ``timeout``); return the changes."""


EventCallback = Callable[[CardEvent], None]

"""Messages the terminal's workers and widgets post (dataclasses, one module).

Workers run card and host I/O off the event loop and report back with these; screens
handle them with ``on_<name>`` methods, and tests assert on them.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.message import Message


@dataclass
class CardInserted(Message):
    """The reader monitor saw a card arrive."""

    reader: str
    atr: bytes | None = None


@dataclass
class CardRemoved(Message):
    """The reader monitor saw the card leave."""

    reader: str


@dataclass
class ReaderProblem(Message):
    """The reader monitor failed (reader gone, service down)."""

    message: str


@dataclass
class HostBusy(Message):
    """A host call is under way for ``seconds`` so far (progress for a slow host)."""

    what: str
    seconds: float


@dataclass
class HostDone(Message):
    """The host call that was under way has finished (well or not)."""

    what: str


@dataclass
class CartQtyDelta(Message):
    """The clerk pressed + or − on the cart line of ``code``."""

    code: str
    delta: int

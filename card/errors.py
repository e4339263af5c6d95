"""Errors of the ``card`` package.

Two families:

* :class:`CardError` and its subclass :class:`ImageError`: software errors raised to the
  *caller* of this package (loading a broken card image, bad issuing input). They never
  come out of :meth:`card.os.VirtualCard.transmit`.
* :class:`CardEvent`: a *physical* event at the contacts (power cut, card pulled out,
  card not powered). This is the one kind of exception ``transmit`` may raise: a real card
  cannot answer a status word when its power is gone. It subclasses the built-in
  :class:`ConnectionError`, so a transport that must not import ``card`` (``reader``)
  catches it as ``ConnectionError``.
"""

from __future__ import annotations


class CardError(Exception):
    """Root of the software errors of ``card``."""


class ImageError(CardError):
    """A card or PSAM image that cannot be used; ``field`` names the offending field.

    >>> str(ImageError("pin.tries_left", "must be between 0 and 3"))
    'card image field pin.tries_left: must be between 0 and 3'
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"card image field {field}: {message}")
        self.field = field
        self.reason = message


class IssueError(CardError):
    """Issuing a card was refused (invalid ID number, unknown bank, ...)."""


class CardEvent(ConnectionError):
    """A physical event at the card contacts; the only exception ``transmit`` raises."""


class PowerCut(CardEvent):
    """Power was cut while the card was working (fault injection); volatile state is lost.

    Whatever the card had durably written before the cut stays; nothing else does.
    """


class CardRemoved(CardEvent):
    """The card was pulled out of the reader (mid-command when injected)."""


class CardNotPowered(CardEvent):
    """A command was sent to a card that is not powered (call ``power_on`` first)."""


def os_reason(exc: OSError) -> str:
    """One line for a failed file operation: ``file: reason`` (no errno, no traceback).

    >>> os_reason(FileNotFoundError(2, "No such file or directory", "/gone/x.json"))
    '/gone/x.json: No such file or directory'
    """
    if not exc.strerror:
        return str(exc)
    return f"{exc.filename}: {exc.strerror}" if exc.filename is not None else exc.strerror

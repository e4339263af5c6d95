"""One exception root for the reader layer, with subclasses a caller can act on.

Each carries the national reader-interface driver code (spec/card.md §10) that the
driver façade returns for it.
"""

from __future__ import annotations


class ReaderError(Exception):
    """Root of every reader-layer failure."""

    driver_code = -11

    def __init__(self, message: str) -> None:
        super().__init__(message)


class ServiceUnavailable(ReaderError):
    """The reader service (pcscd) is not running or not reachable."""

    driver_code = -11


class NoReader(ReaderError):
    """The named reader does not exist (or none is attached)."""

    driver_code = -11


class ReaderGone(ReaderError):
    """The reader disappeared (unplugged, service restarted) during use."""

    driver_code = -11


class NoCard(ReaderError):
    """No card is present in the reader."""

    driver_code = -2


class CardRemoved(ReaderError):
    """The card was removed (or lost power) during an exchange."""

    driver_code = -2


class NotPowered(ReaderError):
    """The card is present but not powered/connected."""

    driver_code = -3


class ReaderTimeout(ReaderError):
    """The card or reader did not answer in time."""

    driver_code = -4


class TransportError(ReaderError):
    """Bytes could not be carried: a protocol or link failure."""

    driver_code = -11

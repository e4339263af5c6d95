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


class ReaderBusy(ReaderError):
    """Another program holds the card exclusively (PC/SC sharing violation)."""

    driver_code = -11


class CardReset(CardRemoved):
    """Another program reset the card: volatile state (verified PIN) is gone; start over."""

    driver_code = -3


class CardRefused(ReaderError):
    """The card answered, but the driver refuses it (not genuine, wrong type, bad data).

    ``driver_code`` is set per instance: −21 internal authentication failed, −1 wrong card
    type, −22 data does not match (spec/card.md §10).
    """

    def __init__(self, message: str, driver_code: int = -21) -> None:
        super().__init__(message)
        self.driver_code = driver_code


class CardStatusError(ReaderError):
    """A command answered a status word the caller cannot go on with.

    ``driver_code`` is the negative of SW1SW2 read as a decimal number (spec/card.md §10:
    6983 → −27011, i.e. ``-sw``), unless a more specific driver code applies.
    """

    def __init__(self, message: str, sw: int, driver_code: int | None = None) -> None:
        super().__init__(message)
        self.sw = sw
        self.driver_code = driver_code if driver_code is not None else -sw

"""The one exception type of the ``apdu`` package."""

from __future__ import annotations


class ApduError(ValueError):
    """Bytes that do not form a valid structure (APDU, TLV, ATR, encoded field).

    ``sw`` is the status word a card would answer to such input (ISO 7816-4 section 5.1.3):
    ``0x6700`` wrong length, ``0x6A80`` bad data, ``0x6E00`` class not supported and so on.
    Every parser in ``apdu`` raises this and nothing else on malformed input.
    """

    def __init__(self, message: str, sw: int = 0x6F00) -> None:
        super().__init__(message)
        self.sw = sw

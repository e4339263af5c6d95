"""The small protocol between a transport and a card (DESIGN.md).

A virtual card (``card``), a served card and a physical card behind a reader all look like
this to the layer above; readers therefore never need to import ``card``.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable


@runtime_checkable
class CardLike(Protocol):
    """What a transport needs of a card: answer-to-reset, power and APDU exchange.

    ``transmit`` takes one command APDU (or T=0 TPDU) as bytes and returns the response
    APDU as bytes (data ‖ SW1 SW2). A card never raises from ``transmit``: every malformed
    command gets a status word.
    """

    def atr(self) -> bytes: ...

    def power_on(self) -> bytes:
        """Cold reset: power the card and return its ATR."""
        ...

    def power_off(self) -> None: ...

    def reset(self) -> bytes:
        """Warm reset: return the ATR; volatile state (PIN verified, selections) is lost."""
        ...

    def transmit(self, command: bytes) -> bytes: ...

"""PIN handling: formats and the tearing-safe try counter (spec/card.md §5, §7).

The order of a PIN evaluation (VERIFY, the old PIN of CHANGE PIN) is fixed:

1. a blocked PIN (``tries_left == 0``) answers 6983 and nothing is evaluated;
2. the counter is decremented and **durably committed** (atomic image write);
3. only then is the candidate compared;
4. a correct PIN restores the counter to ``pin_max_tries`` with a second commit.

A power cut anywhere therefore leaves the counter either untouched (the candidate was never
compared) or decremented (it may have been compared): never a free guess. The worst case
for the holder is a correct PIN cut between steps 3 and 4, which costs one try, as on real
cards.
"""

from __future__ import annotations

from collections.abc import Callable

from card.crypto import CryptoError, bcd_to_pin
from card.image import PinRecord

SW_OK = 0x9000
SW_BLOCKED = 0x6983
MIN_PIN, MAX_PIN = 4, 12


class PinFormatError(ValueError):
    """PIN data that is not a PIN (not BCD, wrong EMV block); answers 6A80, costs no try."""


def parse_plain(data: bytes) -> str:
    """VERIFY P2=00 data: the PIN in BCD, odd length padded with F."""
    if not 1 <= len(data) <= 6:
        raise PinFormatError("PIN field length")
    try:
        return bcd_to_pin(data)
    except CryptoError as exc:
        raise PinFormatError(str(exc)) from None


def parse_emv_block(data: bytes) -> str:
    """VERIFY P2=80 data: EMV plaintext PIN block ``2N PP..PP FF..`` (EMV Book 3 §6.5.12)."""
    if len(data) != 8 or data[0] >> 4 != 2:
        raise PinFormatError("not an EMV format-2 PIN block")
    n = data[0] & 0x0F
    if not MIN_PIN <= n <= MAX_PIN:
        raise PinFormatError("PIN length in block")
    digits = data[1:].hex().upper()
    pin, fill = digits[:n], digits[n:]
    if not pin.isdigit() or set(fill) - {"F"}:
        raise PinFormatError("PIN block digits")
    return pin


def parse_change(data: bytes) -> tuple[str, str]:
    """CHANGE PIN data ``old ‖ FF ‖ new`` (spec/card.md §5)."""
    if data.count(0xFF) != 1:
        raise PinFormatError("CHANGE PIN needs exactly one FF separator")
    old, new = data.split(b"\xff")
    pin_new = parse_plain(new)
    if not MIN_PIN <= len(pin_new) <= MAX_PIN:
        raise PinFormatError("new PIN length")
    return parse_plain(old), pin_new


def tries_sw(tries_left: int) -> int:
    """63Cx with x tries left (x ≤ 15)."""
    return 0x63C0 | min(tries_left, 15)


def evaluate(
    record: PinRecord,
    candidate: str,
    max_tries: int,
    commit: Callable[[], None],
    step: Callable[[str], None],
) -> bool:
    """Evaluate ``candidate`` against ``record`` in the tearing-safe order above.

    ``commit`` makes the record durable; ``step`` is a fault-injection checkpoint. Returns
    whether the PIN matched. The caller must have checked ``tries_left > 0``.
    """
    step("pin.before_decrement")
    record.tries_left -= 1
    commit()
    step("pin.decremented")
    ok = record.matches(candidate)
    step("pin.compared")
    if ok:
        record.tries_left = max_tries
        commit()
        step("pin.restored")
    return ok

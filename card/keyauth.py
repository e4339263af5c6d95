"""The error counter of an EXTERNAL AUTHENTICATE key (ISO 7816-4, spec/card.md §5, §7).

Each key a terminal authenticates with (:data:`card.keys.EXTERNAL_AUTH_KEYS`, today RKSSSE,
kid 0A) has a counter in the card image (``counters.key_tries_left``, limit
``policy.key_max_tries``, default 3; see :mod:`card.image`). The card evaluates a
cryptogram in the order the PIN follows (:mod:`card.pin`, spec/card.md §7):

1. a blocked key (``tries_left == 0``) answers 6983 and nothing is evaluated;
2. the counter is decremented and **durably committed** (atomic image write);
3. only then is the cryptogram compared;
4. a right cryptogram restores the counter to ``key_max_tries`` with a second commit; a
   wrong one answers 63Cx, x = tries left (63C0 on the attempt that blocks the key).

A power cut anywhere therefore leaves the counter untouched (nothing was compared) or
decremented (it may have been): never a free guess. The write comes before the answer is
known, so up to the moment the try is paid for a right and a wrong cryptogram look alike
(both start an image write); the price is a second write, the restore, after a right one.

Nothing resets a blocked key: the standard defines no unblock command for keys (PIN
UNBLOCK with PUK resets the PIN only), so the card goes back to the issuer for a new one.
"""

from __future__ import annotations

from collections.abc import Callable

from card.image import CardImage
from card.pin import SW_BLOCKED, tries_sw

__all__ = ["SW_BLOCKED", "evaluate", "tries_sw"]


def evaluate(
    image: CardImage,
    name: str,
    matches: Callable[[], bool],
    commit: Callable[[], None],
    step: Callable[[str], None],
) -> bool:
    """Evaluate a cryptogram for key ``name`` in the tearing-safe order above.

    ``matches`` compares the cryptogram (called once, after the decrement is durable);
    ``commit`` makes the image durable; ``step`` is a fault-injection checkpoint. Returns
    whether the cryptogram was right. The caller must have checked the key is not blocked.
    """
    step("key.before_decrement")
    image.key_tries[name] = image.key_tries_left(name) - 1
    commit()
    step("key.decremented")
    ok = matches()
    step("key.compared")
    if ok:
        image.key_tries[name] = image.key_max_tries
        commit()
        step("key.restored")
    return ok

"""Drive a checkout through any sequence of faults to its end, as a clerk would (tests).

The clerk's choices in each waiting state come from ``choices`` (an iterator of booleans,
drawn by hypothesis): put the card back or void the sale, retry a reversal, take cash or
cancel when the bank part fails.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator

from terminal.core.checkout import Checkout, CheckoutState
from terminal.core.ports import TxKind, TxRecord

S = CheckoutState


def drive(flow: Checkout, items: list[tuple[str, int]], pin: str, choices: Iterator[bool],
          reinsert: Callable[[], object], max_rounds: int = 60) -> CheckoutState:
    """Run ``flow`` to a terminal state; ``reinsert`` puts the card back in the reader."""
    for _ in range(max_rounds):
        state = flow.run_until_input()
        if flow.finished:
            return state
        if state is S.CART:
            if not flow.cart:
                for code, qty in items:
                    flow.add_item(code, qty)
            flow.confirm_cart()
        elif state is S.PIN:
            flow.enter_pin(pin)
        elif state is S.CARD_PULLED:
            if flow.can_void and next(choices, True):
                flow.void()
            else:
                reinsert()
                flow.card_returned()
        elif state is S.REVERSAL_PENDING:
            flow.retry_reversal()
        elif state is S.BANK_FAILED:
            if next(choices, False):
                flow.pay_cash_instead()
            else:
                flow.cancel()
    raise AssertionError(f"the flow did not finish: {flow.state} {flow.message}")


def net_card_log(log: list[TxRecord]) -> Counter[tuple[int, int, int]]:
    """Settlements on the card minus the refunds (credit records) recorded after them."""
    net: Counter[tuple[int, int, int]] = Counter()
    for rec in log:
        key = (rec.account_fen, rec.selfpay_fen, rec.fund_fen)
        net[key] += 1 if rec.kind is TxKind.SETTLEMENT else -1
    return +net

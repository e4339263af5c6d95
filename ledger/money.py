"""Money at the host: integer fen inside, yuan with two decimals only at the edges.

spec/host.md §3 and §4: every amount is an ``int`` number of fen (分, 1/100 yuan). The wire
carries yuan with two decimals; :func:`parse_yuan` reads them without ever going through a
binary float, :func:`yuan` writes them.

Ratios come from policy files as integer basis points (1 bp = 1/10000). Applying a ratio
rounds **half up to the fen** (:func:`apply_bp`): the exact product ``amount × bp / 10000``
is rounded to the nearest fen, ties away from zero, so 0.5 fen becomes 1 fen. No Decimal, no
float: only integer arithmetic.

>>> parse_yuan("12.34"), parse_yuan(5), parse_yuan("0.1")
(1234, 500, 10)
>>> yuan(1234), yuan(-5), yuan(0)
('12.34', '-0.05', '0.00')
>>> apply_bp(1005, 5000)   # 10.05 yuan × 50 % = 5.025 → 5.03
503
"""

from __future__ import annotations

import re

from ledger.errors import BadRequest

BP_ONE = 10_000
"""100 % in basis points."""

_YUAN_RE = re.compile(r"^(-?)(\d{1,13})(?:\.(\d{1,2}))?$")
MAX_YUAN = "9999999999999.99"
"""The largest amount the wire carries (13 digits before the point)."""
MAX_QTY = "999999999.9999"
"""The largest quantity the wire carries (9 digits before the point)."""


def parse_yuan(value: object, field: str = "amount") -> int:
    """Read a yuan amount (``"12.34"``, ``12.34``, ``12``) as integer fen.

    More than two decimals, exponents, NaN, booleans and non-numbers are refused with
    :class:`~ledger.errors.BadRequest` naming ``field``.
    """
    if isinstance(value, bool):
        raise BadRequest(f"{field}: expected yuan with at most 2 decimals, got {value!r}")
    if isinstance(value, int):
        text = str(value)
    elif isinstance(value, float):
        text = repr(value)  # shortest round-trip form: 12.34 -> "12.34"
        if text.endswith(".0"):
            text = text[:-2]
    elif isinstance(value, str):
        text = value.strip()
    else:
        raise BadRequest(f"{field}: expected yuan with at most 2 decimals, got {value!r}")
    m = _YUAN_RE.match(text)
    if m is None:
        if re.match(r"^-?\d+(?:\.\d{1,2})?$", text):
            raise BadRequest(f"{field}: {text} yuan is out of range (at most {MAX_YUAN} "
                             "in absolute value)")
        raise BadRequest(f"{field}: expected yuan with at most 2 decimals, got {value!r}")
    sign, whole, frac = m.groups()
    fen = int(whole) * 100 + int((frac or "0").ljust(2, "0"))
    return -fen if sign else fen


def yuan(fen: int) -> str:
    """Format integer fen as yuan with exactly two decimals (``-5`` → ``"-0.05"``)."""
    if fen >= 0:
        return f"{fen // 100}.{fen % 100:02d}"
    fen = -fen
    return f"-{fen // 100}.{fen % 100:02d}"


def apply_bp(amount: int, bp: int) -> int:
    """``amount × bp / 10000`` rounded half up (away from zero) to the fen.

    >>> apply_bp(1, 5000), apply_bp(3, 5000), apply_bp(-3, 5000), apply_bp(333, 3333)
    (1, 2, -2, 111)
    """
    if bp < 0:
        raise ValueError("a ratio is never negative")
    num = abs(amount) * bp
    q, r = divmod(num, BP_ONE)
    if 2 * r >= BP_ONE:
        q += 1
    return -q if amount < 0 else q


def parse_qty(value: object, field: str = "cnt") -> int:
    """Read a quantity with up to 4 decimals as an integer number of 1/10000 units.

    >>> parse_qty("2"), parse_qty(1.5), parse_qty("0.0001")
    (20000, 15000, 1)
    """
    if isinstance(value, bool):
        raise BadRequest(f"{field}: expected a quantity, got {value!r}")
    if isinstance(value, float):
        text = repr(value)
    elif isinstance(value, int | str):
        text = str(value).strip()
    else:
        raise BadRequest(f"{field}: expected a quantity, got {value!r}")
    m = re.match(r"^(\d{1,9})(?:\.(\d{1,4}))?$", text)
    if m is None and re.match(r"^\d+(?:\.\d{1,4})?$", text):
        raise BadRequest(f"{field}: quantity {text} is out of range (at most {MAX_QTY})")
    if m is None:
        raise BadRequest(f"{field}: expected a positive quantity with at most 4 decimals, "
                         f"got {value!r}")
    whole, frac = m.groups()
    return int(whole) * 10_000 + int((frac or "0").ljust(4, "0"))


def qty_text(q: int) -> str:
    """Format a quantity held in 1/10000 units (``15000`` → ``"1.5"``)."""
    whole, frac = divmod(q, 10_000)
    return str(whole) if frac == 0 else f"{whole}.{frac:04d}".rstrip("0")


def line_amount(price_fen: int, qty: int) -> int:
    """Price × quantity (quantity in 1/10000 units) rounded half up to the fen."""
    return apply_bp(price_fen, qty)

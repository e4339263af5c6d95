"""Domain types of the counter: money, the cart, the payment split, the sale result.

Money is integer fen (分) everywhere; yuan with two decimals appear only on the wire
(spec/host.md §3) and on the slip. :func:`fen` reads host amounts without binary floats.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from terminal.core.ports import CatalogueItem

_YUAN = re.compile(r"^(-?)(\d+)(?:\.(\d{1,2}))?$")


def fen(value: object) -> int:
    """Yuan as sent by the host (``"12.34"``, ``12.34``, ``12``) → integer fen.

    >>> fen("12.34"), fen(12.3), fen(5), fen("-0.05")
    (1234, 1230, 500, -5)
    """
    if isinstance(value, bool) or value is None:
        raise ValueError(f"not an amount: {value!r}")
    text = repr(value) if isinstance(value, float) else str(value).strip()
    if text.endswith(".0"):
        text = text[:-2]
    m = _YUAN.match(text)
    if m is None:
        raise ValueError(f"not a yuan amount with at most two decimals: {value!r}")
    sign, whole, frac = m.groups()
    amount = int(whole) * 100 + int((frac or "0").ljust(2, "0"))
    return -amount if sign else amount


def yuan(amount_fen: int) -> str:
    """Integer fen → ``"12.34"`` (wire and slip format).

    >>> yuan(1234), yuan(-5), yuan(0)
    ('12.34', '-0.05', '0.00')
    """
    sign = "-" if amount_fen < 0 else ""
    a = abs(amount_fen)
    return f"{sign}{a // 100}.{a % 100:02d}"


@dataclass(frozen=True)
class CartLine:
    """One catalogue item and a quantity."""

    item: CatalogueItem
    qty: int

    @property
    def amount_fen(self) -> int:
        return self.item.price_fen * self.qty


class Cart:
    """The items of one sale, in the order they were added (one line per code)."""

    def __init__(self) -> None:
        self._lines: dict[str, CartLine] = {}

    def add(self, item: CatalogueItem, qty: int = 1) -> CartLine:
        """Add ``qty`` of ``item`` (quantities of the same code are merged)."""
        if qty <= 0:
            raise ValueError("quantity must be a positive whole number")
        old = self._lines.get(item.code)
        line = CartLine(item, qty + (old.qty if old else 0))
        self._lines[item.code] = line
        return line

    def set_qty(self, code: str, qty: int) -> None:
        """Set the quantity of ``code``; 0 removes the line."""
        if code not in self._lines:
            raise KeyError(code)
        if qty < 0:
            raise ValueError("quantity must not be negative")
        if qty == 0:
            del self._lines[code]
        else:
            self._lines[code] = CartLine(self._lines[code].item, qty)

    def remove(self, code: str) -> None:
        self.set_qty(code, 0)

    @property
    def lines(self) -> tuple[CartLine, ...]:
        return tuple(self._lines.values())

    @property
    def total_fen(self) -> int:
        return sum(line.amount_fen for line in self._lines.values())

    def __len__(self) -> int:
        return len(self._lines)

    def __bool__(self) -> bool:
        return bool(self._lines)


class RestBy(StrEnum):
    """How the part not paid by the funds or the personal account is paid (U3)."""

    CASH = "cash"
    BANK = "bank"


@dataclass(frozen=True)
class PayChoice:
    """The patient's choice: use the personal medical account, and pay the rest by…

    ``account`` = account first, rest in cash; ``bank`` = all from the card's bank account;
    ``cash`` = all in cash; ``account+bank`` = account first, rest from the bank account.
    """

    use_account: bool = True
    rest: RestBy = RestBy.CASH

    @classmethod
    def parse(cls, text: str) -> PayChoice:
        choices = {
            "account": cls(True, RestBy.CASH),
            "bank": cls(False, RestBy.BANK),
            "cash": cls(False, RestBy.CASH),
            "account+bank": cls(True, RestBy.BANK),
        }
        try:
            return choices[text.strip().lower()]
        except KeyError:
            raise ValueError(
                f"unknown payment {text!r}: use account, bank, cash or account+bank"
            ) from None

    @property
    def label(self) -> str:
        base = "account" if self.use_account else ""
        if self.use_account:
            return base if self.rest is RestBy.CASH else "account+bank"
        return self.rest.value


@dataclass(frozen=True)
class Split:
    """Who pays what (spec/host.md §3); ``total = fund + account + bank + cash`` to the fen."""

    total: int
    fund: int
    account: int
    bank: int
    cash: int
    balance_after: int | None = None
    fulamt_ownpay: int = 0
    overlmt_selfpay: int = 0
    preselfpay: int = 0
    inscp: int = 0
    deductible: int = 0

    def __post_init__(self) -> None:
        if self.fund + self.account + self.bank + self.cash != self.total:
            raise ValueError(
                f"split does not add up: {self.fund}+{self.account}+{self.bank}+{self.cash}"
                f" != {self.total}"
            )

    @property
    def rest(self) -> int:
        """The part paid by the person outside the account (bank + cash)."""
        return self.bank + self.cash

    @classmethod
    def from_setlinfo(cls, setl: Mapping[str, Any], rest_by: RestBy) -> Split:
        """Build the split from a host ``setlinfo`` (yuan on the wire → fen)."""

        def amt(name: str) -> int:
            v = setl.get(name)
            return 0 if v in (None, "") else fen(v)

        total = amt("medfee_sumamt")
        fund = amt("fund_pay_sumamt") or amt("hifp_pay")
        account = amt("acct_pay")
        rest = amt("psn_cash_pay")
        if fund + account + rest != total:
            # hosts may omit fund_pay_sumamt; derive it from the person's part
            fund = total - account - rest
        balc = setl.get("balc")
        return cls(
            total=total,
            fund=fund,
            account=account,
            bank=rest if rest_by is RestBy.BANK else 0,
            cash=rest if rest_by is RestBy.CASH else 0,
            balance_after=None if balc in (None, "") else fen(balc),
            fulamt_ownpay=amt("fulamt_ownpay_amt"),
            overlmt_selfpay=amt("overlmt_selfpay"),
            preselfpay=amt("preselfpay_amt"),
            inscp=amt("inscp_scp_amt"),
            deductible=amt("act_pay_dedc"),
        )

    def with_rest_by(self, rest_by: RestBy) -> Split:
        """The same split with the rest moved to cash or the bank account."""
        rest = self.rest
        return Split(
            self.total, self.fund, self.account,
            rest if rest_by is RestBy.BANK else 0,
            rest if rest_by is RestBy.CASH else 0,
            self.balance_after, self.fulamt_ownpay, self.overlmt_selfpay, self.preselfpay,
            self.inscp, self.deductible,
        )


@dataclass(frozen=True)
class TerminalConfig:
    """Who and where the terminal is (envelope fields of spec/host.md §1 and the slip)."""

    institution_code: str = "H37080200001"
    institution_name: str = "济宁市示例大药房"
    terminal_number: str = ""
    """Printed on the slip; the PSAM's terminal number (card basics) is used when empty."""
    area_code: str = "370800"
    operator: str = "0001"
    operator_name: str = "clerk"
    slip_width: int = 32
    insutype: str = "310"


@dataclass(frozen=True)
class SlipLine:
    """One item line of a slip."""

    name: str
    qty: int
    amount_fen: int


@dataclass(frozen=True)
class SlipData:
    """Everything printed on a slip (the issue's list); rendered by :mod:`terminal.core.slip`."""

    title: str
    institution: str
    terminal: str
    when: datetime
    card_number_masked: str
    holder_name: str
    lines: tuple[SlipLine, ...]
    split: Split
    settlement_id: str
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class SaleResult:
    """A finished sale or settlement: what the UI shows and the CLI prints (``--json``)."""

    setl_id: str
    mdtrt_id: str
    psn_no: str
    card_number: str
    split: Split
    slip: SlipData
    msgid: str = ""
    recorded_on_card: bool = False
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        s = self.split
        return {
            "setl_id": self.setl_id,
            "mdtrt_id": self.mdtrt_id,
            "psn_no": self.psn_no,
            "card_number": self.card_number,
            "msgid": self.msgid,
            "recorded_on_card": self.recorded_on_card,
            "split": {
                "total": yuan(s.total),
                "fund": yuan(s.fund),
                "account": yuan(s.account),
                "bank": yuan(s.bank),
                "cash": yuan(s.cash),
                "balance_after": None if s.balance_after is None else yuan(s.balance_after),
            },
            "lines": [
                {"name": ln.name, "qty": ln.qty, "amount": yuan(ln.amount_fen)}
                for ln in self.slip.lines
            ],
            **dict(self.extra),
        }

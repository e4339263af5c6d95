"""Settlement policy per area and the money split (spec/host.md §3).

A policy file (TOML, one per area, e.g. ``fixtures/policies/370800.toml``) holds every ratio
and limit; the code holds none. :func:`split` is a pure function of the policy, the cart and
the person's year-to-date figures; the service calls it for trial (2101/2303) and settlement
(2102/2304) alike, so the trial always equals the settlement for the same state.

Arithmetic (spec/host.md §3), integer fen, ratios in basis points rounded half up::

    inscp     = total − fulamt_ownpay − overlmt − preselfpay
    fund      = min(apply(max(0, inscp − deductible_left), ratio), ceiling_left)
    psn_part  = total − fund
    acct_pay  = min(balance, psn_part) if the visit type and the payer allow the account
    rest      = psn_part − acct_pay        (cash, or the card's bank account)

so ``total == fund + acct_pay + rest`` holds for every input, no part is negative and the
account is never overdrawn.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ledger.errors import PolicyError
from ledger.money import BP_ONE, apply_bp, line_amount

CLASSES = {"甲": "01", "乙": "02", "丙": "03"}
"""Catalogue classes (甲/乙/丙) and their wire code ``chrgitm_lv``."""


@dataclass(frozen=True)
class Item:
    """One catalogue entry: a drug or a service."""

    code: str
    name: str
    py: str
    cls: str
    kind: str = "drug"
    spec: str = ""
    unit: str = ""
    price: int = 0
    cap: int | None = None
    preselfpay_bp: int = 0


@dataclass(frozen=True)
class InsuRule:
    """Pooled-fund parameters for one insurance type within one visit type."""

    deductible: int
    ratio_bp: int
    ceiling: int


@dataclass(frozen=True)
class Visit:
    """A visit type (med_type): whether it has pooling and whether the account may pay."""

    med_type: str
    name: str
    pooling: bool
    account_allowed: bool
    deductible_scope: str = "year"
    rules: Mapping[str, InsuRule] = field(default_factory=dict)


@dataclass(frozen=True)
class Bank:
    """A card-issuing bank: activation rule (seed A3/A4), BIN and its TEST issuer key."""

    code: str
    name: str
    bin: str
    activation: str
    root_ac: Mapping[int, bytes]


@dataclass(frozen=True)
class Institution:
    """A designated (or not) medical institution, pharmacy or bank counter."""

    code: str
    name: str
    kind: str
    designated: bool
    bank: str = ""


@dataclass(frozen=True)
class Policy:
    """The settlement policy of one area (admdvs)."""

    admdvs: str
    name: str
    version: str
    items: Mapping[str, Item]
    visits: Mapping[str, Visit]
    banks: Mapping[str, Bank]
    institutions: Sequence[Institution]
    replacement_fee: int
    temp_loss_days: int
    annual_ceiling: Mapping[str, int]
    raw: str = ""

    def visit(self, med_type: str) -> Visit:
        try:
            return self.visits[med_type]
        except KeyError:
            known = ", ".join(sorted(self.visits))
            raise PolicyError(
                f"med_type {med_type} is not settled in area {self.admdvs} "
                f"(policy {self.version} knows {known})") from None

    def search(self, text: str) -> list[Item]:
        """Catalogue search by pinyin initials, code or name fragment."""
        t = text.strip().upper()
        return [i for i in self.items.values()
                if t and (i.py.startswith(t) or i.code.startswith(t) or text in i.name)]


def _int(d: Mapping[str, Any], key: str, where: str, *, lo: int = 0,
         hi: int | None = None, default: int | None = None) -> int:
    v = d.get(key, default)
    if not isinstance(v, int) or isinstance(v, bool):
        raise PolicyError(f"{where}.{key}: expected an integer, got {v!r}")
    if v < lo or (hi is not None and v > hi):
        raise PolicyError(f"{where}.{key}: {v} is outside {lo}..{hi if hi is not None else '∞'}")
    return v


def _str(d: Mapping[str, Any], key: str, where: str, default: str | None = None) -> str:
    v = d.get(key, default)
    if not isinstance(v, str) or not v:
        raise PolicyError(f"{where}.{key}: expected a non-empty string, got {v!r}")
    return v


def parse_policy(data: Mapping[str, Any], raw: str = "") -> Policy:
    """Validate a policy mapping (as read from TOML/JSON) and build a :class:`Policy`."""
    admdvs = _str(data, "admdvs", "policy")
    if len(admdvs) != 6 or not admdvs.isdigit():
        raise PolicyError(f"policy.admdvs: expected a 6-digit area code, got {admdvs!r}")
    items: dict[str, Item] = {}
    for n, it in enumerate(data.get("catalogue", [])):
        where = f"catalogue[{n}]"
        cls = _str(it, "cls", where)
        if cls not in CLASSES:
            raise PolicyError(f"{where}.cls: expected 甲, 乙 or 丙, got {cls!r}")
        code = _str(it, "code", where)
        if code in items:
            raise PolicyError(f"{where}.code: {code} appears twice in the catalogue")
        cap = it.get("cap")
        items[code] = Item(
            code=code, name=_str(it, "name", where), py=_str(it, "py", where).upper(),
            cls=cls, kind=it.get("kind", "drug"), spec=it.get("spec", ""),
            unit=it.get("unit", ""), price=_int(it, "price", where, default=0),
            cap=None if cap is None else _int(it, "cap", where, lo=1),
            preselfpay_bp=_int(it, "preselfpay_bp", where, hi=BP_ONE,
                               default=(data.get("classes", {}).get(cls, 0))))
    visits: dict[str, Visit] = {}
    for med_type, v in data.get("visit", {}).items():
        where = f"visit.{med_type}"
        rules = {
            insutype: InsuRule(
                deductible=_int(r, "deductible", f"{where}.insutype.{insutype}"),
                ratio_bp=_int(r, "ratio_bp", f"{where}.insutype.{insutype}", hi=BP_ONE),
                ceiling=_int(r, "ceiling", f"{where}.insutype.{insutype}"))
            for insutype, r in v.get("insutype", {}).items()}
        pooling = bool(v.get("pooling", False))
        if pooling and not rules:
            raise PolicyError(f"{where}: pooling is on but no insutype has a ratio")
        scope = v.get("deductible_scope", "year")
        if scope not in ("year", "stay"):
            raise PolicyError(f"{where}.deductible_scope: expected year or stay, got {scope!r}")
        visits[str(med_type)] = Visit(
            med_type=str(med_type), name=_str(v, "name", where), pooling=pooling,
            account_allowed=bool(v.get("account_allowed", False)),
            deductible_scope=scope, rules=rules)
    banks: dict[str, Bank] = {}
    for code, b in data.get("banks", {}).items():
        where = f"banks.{code}"
        act = _str(b, "activation", where)
        if act not in ("delivered", "counter"):
            raise PolicyError(f"{where}.activation: expected delivered or counter, got {act!r}")
        roots: dict[int, bytes] = {}
        for alg, key_name in ((0x01, "test_root_ac_3des"), (0x03, "test_root_ac_sm4")):
            try:
                key = bytes.fromhex(_str(b, key_name, where))
            except ValueError:
                raise PolicyError(f"{where}.{key_name}: not hex") from None
            if len(key) != 16:
                raise PolicyError(f"{where}.{key_name}: a root key is 16 bytes")
            roots[alg] = key
        bin6 = _str(b, "bin", where)
        banks[code] = Bank(code=code, name=_str(b, "name", where), bin=bin6,
                           activation=act, root_ac=roots)
    insts = [Institution(code=_str(i, "code", "institutions"), name=_str(i, "name", "institutions"),
                         kind=_str(i, "kind", "institutions"),
                         designated=bool(i.get("designated", True)), bank=i.get("bank", ""))
             for i in data.get("institutions", [])]
    for inst in insts:
        if len(inst.code) != 12:
            raise PolicyError(f"institutions: code {inst.code!r} is not 12 characters")
        if inst.bank and inst.bank not in banks:
            raise PolicyError(f"institutions: {inst.code} names unknown bank {inst.bank}")
    fees = data.get("fees", {})
    loss = data.get("loss", {})
    ceilings = {k: int(v) for k, v in data.get("annual_ceiling", {}).items()}
    return Policy(
        admdvs=admdvs, name=_str(data, "name", "policy"),
        version=str(data.get("version", "0")), items=items, visits=visits, banks=banks,
        institutions=insts,
        replacement_fee=_int(fees, "replacement", "fees"),
        temp_loss_days=_int(loss, "temp_expiry_days", "loss", lo=1),
        annual_ceiling=ceilings, raw=raw)


def load_policy(path: str | Path) -> Policy:
    """Read and validate one policy file (``.toml`` or ``.json``)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
        data = json.loads(text) if p.suffix == ".json" else tomllib.loads(text)
    except OSError as exc:
        raise PolicyError(f"cannot read policy {p}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise PolicyError(f"policy {p} is not UTF-8 text") from None
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        kind = "JSON" if p.suffix == ".json" else "TOML"
        raise PolicyError(f"policy {p} is not valid {kind}: {exc}") from None
    return parse_policy(data, raw=text)


def policy_from_text(text: str) -> Policy:
    """Rebuild a policy from the TOML text stored by ``sscard host init``."""
    return parse_policy(tomllib.loads(text), raw=text)


def load_policies(directory: str | Path) -> dict[str, Policy]:
    """Every ``*.toml`` policy in ``directory``, keyed by area code."""
    d = Path(directory)
    if not d.is_dir():
        raise PolicyError(f"policy directory {d} does not exist")
    out: dict[str, Policy] = {}
    for f in sorted(d.glob("*.toml")):
        pol = load_policy(f)
        out[pol.admdvs] = pol
    if not out:
        raise PolicyError(f"no *.toml policy in {d}")
    return out


# ---------------------------------------------------------------------------------------
# The split


@dataclass(frozen=True)
class CartLine:
    """One fee line as sent by the terminal (``drugdetail`` / ``feedetail``)."""

    feedetl_sn: str
    code: str
    qty: int          # 1/10000 units
    price: int        # fen per unit
    amount: int       # fen, = price × qty rounded half up


@dataclass(frozen=True)
class LineCut:
    """How one line was cut (``detlcutinfo``)."""

    feedetl_sn: str
    code: str
    cls: str
    amount: int
    cap: int | None
    fulamt_ownpay: int
    overlmt: int
    preselfpay: int
    inscp: int
    selfpay_bp: int


@dataclass(frozen=True)
class Split:
    """The split of one settlement, every field in fen (spec/host.md §3)."""

    total: int
    fulamt_ownpay: int
    overlmt: int
    preselfpay: int
    inscp: int
    deductible: int
    fund: int
    psn_part: int
    acct_pay: int
    rest: int
    lines: tuple[LineCut, ...]

    def check(self) -> None:
        """Assert the invariants; a violation is a bug, never a caller error."""
        parts = (self.fulamt_ownpay, self.overlmt, self.preselfpay, self.inscp,
                 self.deductible, self.fund, self.psn_part, self.acct_pay, self.rest)
        if not (all(p >= 0 for p in parts)
                and self.total == self.fund + self.acct_pay + self.rest
                and self.total == self.inscp + self.fulamt_ownpay + self.overlmt + self.preselfpay
                and self.psn_part == self.total - self.fund):
            raise AssertionError(f"split invariant broken: {self}")


def cut_line(policy: Policy, line: CartLine) -> LineCut:
    """Cut one line into self-paid / over-cap / up-front self-pay / in-scope parts."""
    item = policy.items.get(line.code)
    if item is None or item.cls == "丙":
        return LineCut(line.feedetl_sn, line.code, "丙", line.amount,
                       item.cap if item else None, line.amount, 0, 0, 0, BP_ONE)
    overlmt = 0
    if item.cap is not None and line.price > item.cap:
        overlmt = line.amount - line_amount(item.cap, line.qty)
        overlmt = max(0, min(overlmt, line.amount))
    allowed = line.amount - overlmt
    pre = apply_bp(allowed, item.preselfpay_bp) if item.cls == "乙" else 0
    return LineCut(line.feedetl_sn, line.code, item.cls, line.amount, item.cap, 0, overlmt,
                   pre, allowed - pre, item.preselfpay_bp if item.cls == "乙" else 0)


def split(policy: Policy, med_type: str, insutype: str, lines: Iterable[CartLine], *,
          deductible_used: int = 0, fund_used: int = 0, balance: int = 0,
          use_account: bool = True) -> Split:
    """The money split of spec/host.md §3 for one settlement; a pure function.

    ``deductible_used`` and ``fund_used`` are the person's year-to-date figures (the
    deductible already applied this year, the pooled fund already paid this year for this
    insurance type); ``balance`` is the personal account balance.
    """
    visit = policy.visit(med_type)
    cuts = tuple(cut_line(policy, ln) for ln in lines)
    total = sum(c.amount for c in cuts)
    ful = sum(c.fulamt_ownpay for c in cuts)
    over = sum(c.overlmt for c in cuts)
    pre = sum(c.preselfpay for c in cuts)
    inscp = total - ful - over - pre
    deductible = fund = 0
    if visit.pooling:
        rule = visit.rules.get(insutype)
        if rule is None:
            raise PolicyError(f"insutype {insutype} has no pooled-fund rule for med_type "
                              f"{med_type} in area {policy.admdvs}")
        ded_left = rule.deductible if visit.deductible_scope == "stay" else max(
            0, rule.deductible - deductible_used)
        ceiling = min(rule.ceiling, policy.annual_ceiling.get(insutype, rule.ceiling))
        ceiling_left = max(0, ceiling - fund_used)
        deductible = min(inscp, ded_left)
        fund = min(apply_bp(max(0, inscp - ded_left), rule.ratio_bp), ceiling_left)
    psn_part = total - fund
    acct = min(max(0, balance), psn_part) if (visit.account_allowed and use_account) else 0
    s = Split(total=total, fulamt_ownpay=ful, overlmt=over, preselfpay=pre, inscp=inscp,
              deductible=deductible, fund=fund, psn_part=psn_part, acct_pay=acct,
              rest=psn_part - acct, lines=cuts)
    s.check()
    return s

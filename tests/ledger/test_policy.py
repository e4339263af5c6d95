"""Area policies and the split of spec/host.md §3, under hypothesis."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.errors import PolicyError
from ledger.money import line_amount
from ledger.policy import (
    CartLine,
    InsuRule,
    Item,
    Policy,
    Visit,
    load_policies,
    load_policy,
    parse_policy,
    split,
)

POLICIES = Path(__file__).resolve().parents[2] / "fixtures" / "policies"
JINING = load_policy(POLICIES / "370800.toml")


def test_fixture_policies_load() -> None:
    ps = load_policies(POLICIES)
    assert set(ps) == {"370800", "371100"}
    assert JINING.replacement_fee == 3000
    assert len(JINING.items) >= 30
    assert {i.cls for i in JINING.items.values()} == {"甲", "乙", "丙"}
    assert JINING.items["XJ01CAA040A001010101445"].py == "AMXLJN"
    assert [i.name for i in JINING.search("AMXL")] == ["阿莫西林胶囊"]
    assert not JINING.visits["41"].pooling and JINING.visits["41"].account_allowed
    assert JINING.visits["21"].rules["390"].ratio_bp == 7000
    assert JINING.banks["CCB"].activation == "delivered"
    assert JINING.banks["ICBC"].activation == "counter"
    assert ps["371100"].visits["21"].rules["310"].ratio_bp != JINING.visits["21"].rules[
        "310"].ratio_bp


@pytest.mark.parametrize("patch, message", [
    ({"admdvs": "37080"}, "6-digit"),
    ({"visit": {"21": {"name": "x", "pooling": True}}}, "no insutype"),
    ({"catalogue": [{"code": "A", "name": "n", "py": "N", "cls": "丁"}]}, "甲, 乙 or 丙"),
    ({"visit": {"21": {"name": "x", "pooling": True,
                       "insutype": {"310": {"deductible": 0, "ratio_bp": 12000,
                                            "ceiling": 1}}}}}, "outside"),
    ({"fees": {"replacement": -1}}, "outside"),
])
def test_bad_policies_are_refused(patch: dict[str, object], message: str) -> None:
    import tomllib
    data = tomllib.loads((POLICIES / "370800.toml").read_text(encoding="utf-8"))
    data.update(patch)
    with pytest.raises(PolicyError, match=message):
        parse_policy(data)


def _line(sn: str, code: str, qty: int, price: int) -> CartLine:
    return CartLine(sn, code, qty, price, line_amount(price, qty))


def test_pharmacy_split_example() -> None:
    lines = [_line("1", "XJ01CAA040A001010101445", 20_000, 1250),   # 甲 25.00
             _line("2", "XJ01DCA070A001010102349", 10_000, 3200),   # 乙, cap 30.00 → 2.00 over
             _line("3", "XA11CCA000A001010300178", 10_000, 3600)]   # 丙 36.00
    s = split(JINING, "41", "310", lines, balance=5000)
    assert s.total == 2500 + 3200 + 3600
    assert s.fulamt_ownpay == 3600
    assert s.overlmt == 200
    assert s.preselfpay == 300           # 10 % of 30.00
    assert s.inscp == 2500 + 2700
    assert s.fund == 0 and s.deductible == 0
    assert s.acct_pay == 5000 and s.rest == s.total - 5000


def test_inpatient_split_example() -> None:
    # 10 days in a ward (35.00 capped to 30.00) + surgery 1200.00 capped to 1100.00
    lines = [_line("1", "001103000010000", 100_000, 3500),
             _line("2", "003306010010000", 10_000, 120_000)]
    s = split(JINING, "21", "310", lines, balance=0)
    assert s.overlmt == 5000 + 10000
    assert s.inscp == 30000 + 110000
    assert s.deductible == 80000
    assert s.fund == (140000 - 80000) * 9 // 10
    assert s.total == s.fund + s.acct_pay + s.rest


def test_ceiling_limits_the_fund() -> None:
    lines = [_line("1", "003306010010000", 10_000, 110_000)]
    s = split(JINING, "21", "310", lines, fund_used=40_000_000 - 1000)
    assert s.fund == 1000


codes = st.sampled_from([*sorted(JINING.items), "NOT-IN-CATALOGUE"])
lines_st = st.lists(st.tuples(codes, st.integers(1, 200_000), st.integers(0, 2_000_000)),
                    min_size=1, max_size=12)


@st.composite
def policies(draw: st.DrawFn) -> Policy:
    items = {}
    for code, it in JINING.items.items():
        items[code] = Item(code=code, name=it.name, py=it.py,
                           cls=draw(st.sampled_from(["甲", "乙", "丙"])),
                           cap=draw(st.one_of(st.none(), st.integers(1, 500_000))),
                           preselfpay_bp=draw(st.integers(0, 10_000)))
    rules = {t: InsuRule(deductible=draw(st.integers(0, 200_000)),
                         ratio_bp=draw(st.integers(0, 10_000)),
                         ceiling=draw(st.integers(0, 50_000_000))) for t in ("310", "390")}
    visits = {"41": Visit("41", "药店", pooling=False, account_allowed=draw(st.booleans())),
              "21": Visit("21", "住院", pooling=True, account_allowed=draw(st.booleans()),
                          deductible_scope=draw(st.sampled_from(["year", "stay"])),
                          rules=rules)}
    return Policy(admdvs="370800", name="t", version="h", items=items, visits=visits, banks={},
                  institutions=[], replacement_fee=3000, temp_loss_days=5,
                  annual_ceiling={})


@settings(max_examples=300, deadline=None)
@given(policy=policies(), raw=lines_st, med_type=st.sampled_from(["41", "21"]),
       insutype=st.sampled_from(["310", "390"]), balance=st.integers(0, 10**8),
       ded_used=st.integers(0, 300_000), fund_used=st.integers(0, 60_000_000),
       use_account=st.booleans())
def test_split_invariants(policy: Policy, raw: list[tuple[str, int, int]], med_type: str,
                          insutype: str, balance: int, ded_used: int, fund_used: int,
                          use_account: bool) -> None:
    lines = [_line(str(i), c, q, p) for i, (c, q, p) in enumerate(raw)]
    s = split(policy, med_type, insutype, lines, deductible_used=ded_used,
              fund_used=fund_used, balance=balance, use_account=use_account)
    total = sum(ln.amount for ln in lines)
    assert s.total == total
    assert s.fund + s.acct_pay + s.rest == total                      # to the fen, always
    assert s.inscp + s.fulamt_ownpay + s.overlmt + s.preselfpay == total
    assert min(s.fund, s.acct_pay, s.rest, s.inscp, s.fulamt_ownpay, s.overlmt,
               s.preselfpay, s.deductible) >= 0                      # no part negative
    assert s.acct_pay <= balance                                     # never overdrawn
    assert s.fund <= max(0, s.inscp - s.deductible)
    if med_type == "41":
        assert s.fund == 0
    visit = policy.visits[med_type]
    if not (visit.account_allowed and use_account):
        assert s.acct_pay == 0
    else:
        assert s.acct_pay == min(balance, s.psn_part)
    rule = visit.rules.get(insutype)
    if rule is not None:
        assert s.fund <= max(0, rule.ceiling - fund_used)
    for c in s.lines:
        assert c.fulamt_ownpay + c.overlmt + c.preselfpay + c.inscp == c.amount

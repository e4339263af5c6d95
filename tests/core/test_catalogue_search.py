"""The cart's catalogue search (:meth:`PolicyCatalogue.search`): code, name and pinyin
initials, best first; the items carry their class 甲/乙/丙 and eligibility."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from terminal.core.adapters import PolicyCatalogue, PolicyItem

AMOX = "XJ01CAA040A001010101445"       # 阿莫西林胶囊 AMXLJN 甲
CEFACLOR = "XJ01DCA070A001010102349"   # 头孢克洛胶囊 TBKLJN 乙
VITAMIN_C = "XA11GAA000A001010100071"  # 维生素C片 WSSCP 丙
VITAMIN_D = "XA11CCA000A001010300178"  # 维生素D滴剂 WSSDDJ 丙


@pytest.fixture(scope="module")
def cat() -> PolicyCatalogue:
    return PolicyCatalogue.load("370800")


def test_items_carry_class_pinyin_and_eligibility(cat: PolicyCatalogue) -> None:
    amox, cefaclor, vit = cat.lookup(AMOX), cat.lookup(CEFACLOR), cat.lookup(VITAMIN_C)
    assert isinstance(amox, PolicyItem) and isinstance(vit, PolicyItem)
    assert (amox.name, amox.cls, amox.py, amox.price_fen) == ("阿莫西林胶囊", "甲", "AMXLJN", 1250)
    assert isinstance(cefaclor, PolicyItem) and cefaclor.cls == "乙" and cefaclor.eligible
    assert amox.eligible and not vit.eligible and vit.cls == "丙"


@pytest.mark.parametrize("typed", ["AMXL", "amxl", " amxljn ", "阿莫西林", "XJ01CAA040"])
def test_found_by_initials_name_or_code_in_any_case(cat: PolicyCatalogue, typed: str) -> None:
    assert AMOX in [i.code for i in cat.search(typed)]


def test_nothing_for_blank_or_unknown_text(cat: PolicyCatalogue) -> None:
    assert cat.search("") == [] and cat.search("   ") == [] and cat.search("QQQZZZ") == []
    assert cat.search("AMXL", limit=0) == []


def test_best_match_first() -> None:
    items = {
        "C1": PolicyItem("C1", "维生素C片", 100, cls="丙", py="WSSCP"),
        "C2": PolicyItem("C2", "复合维生素", 100, cls="乙", py="FHWSS"),
        "WSS": PolicyItem("WSS", "维生素D滴剂", 100, cls="丙", py="WSSDDJ"),
        "C4": PolicyItem("C4", "维生素B1片", 100, cls="甲", py="WSS"),
    }
    cat = PolicyCatalogue(items)
    # exact code or initials, then code / initials prefixes, then name prefix, then fragment
    assert [i.code for i in cat.search("wss")] == ["WSS", "C4", "C1"]
    assert [i.code for i in cat.search("维生素")] == ["C1", "WSS", "C4", "C2"]
    assert [i.code for i in cat.search("维生素", limit=2)] == ["C1", "WSS"]


def test_filter_by_class_and_eligibility(cat: PolicyCatalogue) -> None:
    vitamins = [i.code for i in cat.search("维生素")]
    assert VITAMIN_C in vitamins and VITAMIN_D in vitamins
    assert cat.search("维生素", eligible=True) == [
        i for i in cat.search("维生素") if getattr(i, "eligible", False)]
    assert {getattr(i, "cls", "") for i in cat.search("X", limit=100, classes={"丙"})} == {"丙"}
    assert all(getattr(i, "eligible", True) for i in cat.search("X", limit=100, eligible=True))
    assert all(not getattr(i, "eligible", True)
               for i in cat.search("X", limit=100, eligible=False))
    assert [i.code for i in cat.search("TBKL", classes=("甲",))] == []
    assert [i.code for i in cat.search("TBKL", classes=("乙",))] == [CEFACLOR]


def test_plain_catalogue_items_with_a_pinyin_map() -> None:
    from terminal.core.ports import CatalogueItem

    cat = PolicyCatalogue({"A1": CatalogueItem("A1", "阿司匹林", 500)}, {"A1": "aspl"})
    assert [i.code for i in cat.search("ASP")] == ["A1"]
    assert cat.search("ASP", eligible=True) == []  # no class: not known to be eligible


@settings(max_examples=60, deadline=None)
@given(text=st.text(alphabet="AMXLJNTBKWSCP阿莫西林维生素片 ", max_size=6),
       limit=st.integers(0, 30))
def test_every_result_matches_and_nothing_matching_is_missed(text: str, limit: int) -> None:
    cat = PolicyCatalogue.load("370800")
    found = cat.search(text, limit=limit)
    t = text.strip()
    expected = [] if not t else [
        i for c, i in cat.items.items()
        if c.upper().startswith(t.upper()) or getattr(i, "py", "").startswith(t.upper())
        or t.casefold() in i.name.casefold()]
    assert len(found) == min(len(expected), max(limit, 0))
    assert len({i.code for i in found}) == len(found)
    assert {i.code for i in found} <= {i.code for i in expected}

"""The slip: width-aware for 58 mm (32 columns) and 80 mm (48 columns), CJK = 2 columns."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from terminal.core.model import SlipData, SlipLine, Split
from terminal.core.slip import WIDTH_58MM, WIDTH_80MM, display_width, render, wrap

WHEN = datetime(2026, 11, 28, 14, 3, 5, tzinfo=timezone(timedelta(hours=8)))


def slip(name: str = "张三", items: tuple[SlipLine, ...] | None = None) -> SlipData:
    return SlipData(
        title="医保结算单 SETTLEMENT SLIP", institution="济宁市太白湖大药房",
        terminal="370800000042", when=WHEN, card_number_masked="X00****19",
        holder_name=name,
        lines=items or (SlipLine("阿莫西林胶囊", 2, 2500), SlipLine("对乙酰氨基酚片", 1, 560)),
        split=Split(total=3060, fund=0, account=2000, bank=0, cash=1060, balance_after=0),
        settlement_id="SP37080000001202611281403050001")


def test_widths_count_cjk_as_two_columns() -> None:
    assert display_width("张三") == 4
    assert display_width("ＡＢ") == 4  # fullwidth
    assert display_width("e\u0301") == 1  # combining accent takes no column
    assert wrap("阿莫西林胶囊", 5) == ["阿莫", "西林", "胶囊"]


@pytest.mark.parametrize("width", [WIDTH_58MM, WIDTH_80MM])
def test_every_line_fits_and_the_issue_fields_are_there(width: int) -> None:
    text = render(slip(), width)
    lines = text.splitlines()
    assert all(display_width(ln) <= width for ln in lines)
    for needed in ("济宁市太白湖大药房", "370800000042", "2026-11-28 14:03:05", "X00****19",
                   "张三", "阿莫西林胶囊", "25.00", "30.60", "20.00", "10.60",
                   "SP37080000001202611281403050001"):
        assert needed in text
    assert "X00000019" not in text
    balance = next(ln for ln in lines if ln.startswith("账户余额"))
    assert balance.endswith("0.00") and display_width(balance) == width


def test_80mm_has_english_labels_and_58mm_does_not() -> None:
    assert "Pooled fund" in render(slip(), WIDTH_80MM)
    assert "Pooled fund" not in render(slip(), WIDTH_58MM)


def test_amounts_are_right_aligned() -> None:
    lines = render(slip(), WIDTH_58MM).splitlines()
    total = next(ln for ln in lines if ln.startswith("合计"))
    assert total.endswith("30.60") and display_width(total) == WIDTH_58MM


def test_too_narrow_is_refused() -> None:
    with pytest.raises(ValueError, match="at least"):
        render(slip(), 16)


@settings(max_examples=60, deadline=None)
@given(name=st.text(alphabet=st.sampled_from("张三李四王五abcXYZ阿莫西林胶囊ＡＢ"),
                    min_size=1, max_size=40),
       item=st.text(alphabet=st.sampled_from("阿莫西林胶囊片0123 mg*ｍｇ"), min_size=1,
                    max_size=60),
       width=st.sampled_from([WIDTH_58MM, WIDTH_80MM, 40]))
def test_any_text_fits_the_paper(name: str, item: str, width: int) -> None:
    text = render(slip(name, (SlipLine(item, 3, 99999),)), width)
    assert all(display_width(ln) <= width for ln in text.splitlines())
    assert "999.99" in text

"""Money (integer fen, half-up ratios) and identifiers (GB 11643, card number, Luhn)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.errors import BadRequest
from ledger.ids import (
    card_check_char,
    card_sn_authentic,
    id_check_char,
    luhn_digit,
    make_card_no,
    make_card_sn,
    make_pan,
    valid_card_no,
    valid_id_number,
    valid_msgid,
    valid_pan,
)
from ledger.money import apply_bp, line_amount, parse_qty, parse_yuan, qty_text, yuan


@given(st.integers(min_value=-10**13, max_value=10**13))
def test_yuan_round_trips(fen: int) -> None:
    assert parse_yuan(yuan(fen)) == fen


@pytest.mark.parametrize("bad", ["1.234", "1e3", "", "abc", "1.", ".5", "NaN", True, None,
                                 [1], "1,00", "12.3.4"])
def test_parse_yuan_refuses(bad: object) -> None:
    with pytest.raises(BadRequest):
        parse_yuan(bad)


def test_parse_yuan_accepts_numbers_and_strings() -> None:
    assert parse_yuan(12.34) == 1234
    assert parse_yuan(0.1) == 10
    assert parse_yuan(" 7.5 ") == 750
    assert parse_yuan(3) == 300


@given(st.integers(min_value=-10**12, max_value=10**12), st.integers(0, 10_000))
def test_apply_bp_is_nearest_fen_half_up(amount: int, bp: int) -> None:
    got = apply_bp(amount, bp)
    exact2 = 2 * amount * bp  # 2 × exact value × 10000
    # |got − exact| ≤ 0.5 fen, ties away from zero
    assert abs(2 * got * 10_000 - exact2) <= 10_000
    if abs(2 * got * 10_000 - exact2) == 10_000:
        assert abs(got) * 10_000 > abs(amount * bp)


def test_apply_bp_known_values() -> None:
    assert apply_bp(1005, 5000) == 503       # 5.025 → 5.03
    assert apply_bp(1, 5000) == 1            # 0.5 fen → 1
    assert apply_bp(99_999, 9000) == 89_999  # 899.991 → 899.99
    assert apply_bp(100, 10_000) == 100


def test_quantities() -> None:
    assert parse_qty("1.5") == 15_000
    assert qty_text(15_000) == "1.5"
    assert line_amount(1250, parse_qty("3")) == 3750
    assert line_amount(333, parse_qty("0.5")) == 167   # 1.665 → 1.67
    with pytest.raises(BadRequest):
        parse_qty("1.00001")


def test_gb11643_known_answer() -> None:
    # GB 11643-1999 appendix example
    assert id_check_char("11010519491231002") == "X"
    assert valid_id_number("11010519491231002X")
    assert not valid_id_number("110105194912310021")


def test_card_number_known_answer() -> None:
    # spec/card.md §10 example card number X00000019
    assert card_check_char("X0000001") == "9"
    assert valid_card_no("X00000019")
    assert not valid_card_no("X00000018")


@given(st.text(min_size=1, max_size=20), st.integers(0, 50))
def test_minted_card_numbers_are_valid(seed: str, salt: int) -> None:
    no = make_card_no(seed, salt)
    assert valid_card_no(no) and no[0] not in "YZ"


def test_card_sn_and_pan() -> None:
    sn = make_card_sn("370800", "seed")
    assert sn.startswith("370800D156000005") and card_sn_authentic(sn)
    assert not card_sn_authentic(sn[:-1] + ("0" if sn[-1] != "0" else "1"))
    assert luhn_digit("7992739871") == "3"
    pan = make_pan("621700", 123)
    assert len(pan) == 19 and valid_pan(pan)
    assert valid_msgid("P37080000001202611281000000001")
    assert not valid_msgid("P3708000000120261128100000001")


@pytest.mark.parametrize("url, shown", [
    ("postgresql://alice:S3cret@db.example:5432/books?pool=4",
     "postgresql://alice@db.example:5432/books?pool=4"),
    ("postgresql://alice@db:5432/x", "postgresql://alice@db:5432/x"),
    ("http://paas:k%40y@127.0.0.1:8700", "http://paas@127.0.0.1:8700"),
    ("sqlite:///var/h.db", "sqlite:///var/h.db"),
    ("postgresql://:pw@h/x", "postgresql://@h/x"),
    ("postgresql://u@127.0.0.1:1/test?password=S3cret&sslmode=require",
     "postgresql://u@127.0.0.1:1/test?password=…&sslmode=require"),
    ("postgresql:///test?host=/run/pg&PASSWORD=x", "postgresql:///test?host=/run/pg&PASSWORD=…"),
    ("mysql://u:S3cret@db/x", "mysql://u@db/x"),
    ("postgresql://u:pw@[::1:1/test", "postgresql://u@[::1:1/test"),
    ("not a url", "not a url"),
])
def test_a_url_is_shown_without_its_password(url: str, shown: str) -> None:
    from ledger.store.base import safe_url
    assert safe_url(url) == shown

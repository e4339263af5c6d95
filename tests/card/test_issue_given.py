"""Issuing with numbers assigned elsewhere (a replacement card: the host's 8105 answer).

card/issue.py ``issue(card_number=, card_id_code=, pan=, pan_seq=, photo=)``; spec/card.md §4
(card number check character, card identification code structure), ISO/IEC 7812-1 (Luhn).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apdu import atr as atrmod
from apdu import codec
from card.cos import VirtualCard
from card.errors import IssueError
from card.image import card_id_auth
from card.issue import (
    Holder,
    IssuerRegistry,
    check_card_id_code,
    check_card_number,
    check_pan,
    luhn_digit,
)
from card.photo import make_photo, photo_from_file
from terminal.cli import main
from tests.card.helpers import ZHANG_SSN, Terminal, make_issued, make_psam, tx

AREA = "370800"
SERIAL = "00C0FFEE"
CARD_NO = "B12345671"  # body B1234567, check character 1 (weights 3 7 9 10 5 8 4 2)
CARD_ID = f"{AREA}D156000005{SERIAL}{card_id_auth(AREA, SERIAL)}"
PAN = "6217003708000000041"
ALNUM = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _cid(serial: str, area: str = AREA) -> str:
    return f"{area}D156000005{serial}{card_id_auth(area, serial)}"


def test_known_answers_of_the_given_numbers() -> None:
    # spec/card.md §4 known answers, and the Luhn example of ISO/IEC 7812-1
    assert check_card_number("x00000019") == "X00000019"
    assert check_card_number("D2143569X") == "D2143569X"
    assert luhn_digit("7992739871") == "3"
    assert check_pan("4111111111111111") == "4111111111111111"
    assert check_pan(PAN) == PAN
    cid = check_card_id_code(CARD_ID.lower(), AREA)
    assert (cid.city, cid.serial) == (AREA, SERIAL)


def test_given_numbers_round_trip_through_the_virtual_card() -> None:
    issued = make_issued("CCB", card_number=CARD_NO, card_id_code=CARD_ID, pan=PAN, pan_seq=2)
    assert issued.card_number == CARD_NO
    ident = issued.doc["identity"]
    assert (ident["card_number"], ident["card_id_code"], ident["pan"], ident["psn"]) == (
        CARD_NO, CARD_ID, PAN, 2)
    card = VirtualCard.from_doc(issued.doc)
    # the ATR historical bytes carry the serial of the card identification code
    assert atrmod.card_serial(card.atr()).hex().upper() == SERIAL
    assert ident["historical"].endswith(SERIAL)
    assert tx(card, b"\x00\xa4\x04\x00\x0f" + bytes.fromhex(
        "7378312E73682EC9E7BBE1B1A3D5CF"))[1] == 0x9000
    assert tx(card, "00A4020002EF05") == (b"", 0x9000)
    rec01, sw = tx(card, "00B2010012")
    assert sw == 0x9000 and rec01[:2] == b"\x01\x10"
    assert codec.CardIdCode.from_bytes(rec01[2:]).to_hex() == CARD_ID
    rec07, sw = tx(card, "00B207000B")
    assert sw == 0x9000 and rec07[2:].decode() == CARD_NO
    # the card keys follow the serial: the area PSAM still proves the card genuine
    assert Terminal(card, make_psam()).internal_auth() == 0x9000


def test_numbers_not_given_are_allocated_as_before() -> None:
    issued = make_issued("ICBC", card_number=CARD_NO)
    ident = issued.doc["identity"]
    assert ident["card_number"] == CARD_NO
    cid = codec.CardIdCode.from_hex(ident["card_id_code"])
    assert cid.auth == card_id_auth(AREA, cid.serial)
    assert ident["historical"].endswith(cid.serial)
    assert ident["pan"].startswith("621226") and check_pan(ident["pan"])


@pytest.mark.parametrize("number,words", [
    ("B12345672", ["wrong check character '2'", "expected '1'"]),
    ("B1234567", ["must be 9 characters"]),
    ("B1234567*", ["must be 9 characters"]),
])
def test_a_wrong_card_number_is_refused_clearly(number: str, words: list[str]) -> None:
    with pytest.raises(IssueError) as info:
        make_issued("CCB", card_number=number, card_id_code=CARD_ID, pan=PAN)
    assert all(w in str(info.value) for w in words), str(info.value)


@given(body=st.text(ALNUM, min_size=8, max_size=8), bad=st.sampled_from("0123456789X"))
@settings(max_examples=60, deadline=None)
def test_card_number_check_character_property(body: str, bad: str) -> None:
    good = body + codec.card_number_check_char(body)
    assert check_card_number(good) == good
    if bad != good[-1]:
        with pytest.raises(IssueError, match="wrong check character"):
            check_card_number(body + bad)


@pytest.mark.parametrize("cid,words", [
    (CARD_ID[:-1] + ("0" if CARD_ID[-1] != "0" else "1"), "authentication code"),
    (_cid(SERIAL, "370100"), "belongs to area 370100"),
    (CARD_ID.replace("D156000005", "D156000006"), "D156000005"),
    (CARD_ID[:30], "32 hex"),
    ("G" + CARD_ID[1:], "32 hex"),
])
def test_a_wrong_card_identification_code_is_refused(cid: str, words: str) -> None:
    with pytest.raises(IssueError, match=words):
        make_issued("CCB", card_number=CARD_NO, card_id_code=cid)


@pytest.mark.parametrize("pan,words", [
    (PAN[:-1] + str((int(PAN[-1]) + 1) % 10), "Luhn"),
    ("62170037080000", "16 to 19 digits"),
    ("621700370800000004A", "16 to 19 digits"),
])
def test_a_wrong_pan_is_refused(pan: str, words: str) -> None:
    with pytest.raises(IssueError, match=words):
        make_issued("CCB", card_number=CARD_NO, pan=pan)


def test_duplicates_in_the_registry_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "issued.json"
    make_issued("CCB", card_number=CARD_NO, card_id_code=CARD_ID, pan=PAN,
                registry=IssuerRegistry(path))
    before = path.read_text()
    with pytest.raises(IssueError, match=f"card number {CARD_NO} was already issued"):
        make_issued("CCB", card_number=CARD_NO, card_id_code=_cid("00000BAD"),
                    registry=IssuerRegistry(path))
    with pytest.raises(IssueError, match=r"card identification code .* already issued"):
        make_issued("CCB", card_number="X00000019", card_id_code=CARD_ID,
                    registry=IssuerRegistry(path))
    assert path.read_text() == before  # a refused issue records nothing


def test_allocation_skips_a_number_given_earlier(tmp_path: Path) -> None:
    path = tmp_path / "issued.json"
    first = "J0000001" + codec.card_number_check_char("J0000001")  # the registry's 1st number
    make_issued("ABC", card_number=first, card_id_code=_cid("0000BEEF"),
                registry=IssuerRegistry(path))
    nxt = make_issued("ABC", registry=IssuerRegistry(path))
    assert nxt.card_number != first and codec.card_number_valid(nxt.card_number)
    doc = json.loads(path.read_text())["areas"][AREA]
    assert doc["card_numbers"] == [first, nxt.card_number]
    assert len(set(doc["card_id_codes"])) == 2


def test_the_holder_photo_is_kept_and_checked() -> None:
    photo = make_photo("another seed")
    issued = make_issued("CCB", card_number=CARD_NO, photo=photo)
    ef08 = issued.image.mf.find("SSSE/EF08")
    assert photo_from_file(bytes(getattr(ef08, "data", b""))) == photo
    with pytest.raises(IssueError, match="JPEG"):
        make_issued("CCB", photo=b"BM" + bytes(100))


def test_cli_issue_with_given_numbers(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "new.json"
    base = ["card", "issue", "--name", "张三", "--id", ZHANG_SSN, "--bank", "CCB"]
    assert main([*base, "--card-number", CARD_NO, "--card-id", CARD_ID, "--pan", PAN,
                 "--out", str(out)]) == 0
    assert f"issued {CARD_NO}" in capsys.readouterr().out
    assert main(["card", "show", str(out), "--json"]) == 0
    ident = json.loads(capsys.readouterr().out)["identity"]
    assert (ident["card_number"], ident["card_id_code"], ident["pan"]) == (CARD_NO, CARD_ID,
                                                                           PAN)
    bad = tmp_path / "bad.json"
    assert main([*base, "--card-number", "B12345672", "--out", str(bad)]) != 0
    err = capsys.readouterr().err
    assert "wrong check character" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1 and not bad.exists()


def test_cli_help_documents_the_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["card", "issue", "--help"])
    text = capsys.readouterr().out
    for opt in ("--card-number", "--card-id", "--pan"):
        assert opt in text
    assert f"--card-id {CARD_ID}" in text  # the example is a valid code


def test_given_holder_from_the_replacement_keeps_identity() -> None:
    holder = Holder("张三", ZHANG_SSN, ethnicity="02", birthplace="370811", category="4")
    issued = make_issued("BOC", holder=holder, card_number=CARD_NO, card_id_code=CARD_ID)
    ident = issued.doc["identity"]
    assert (ident["ethnicity"], ident["birthplace"], ident["category"]) == ("02", "370811",
                                                                            "4")
    assert not issued.image.activated

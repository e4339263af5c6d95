"""8110: registering a card personalised elsewhere under its own numbers (spec/host.md §5;
seed rules C4, A3, A4), on both back ends."""

from __future__ import annotations

from typing import Any

import pytest

from ledger.client import HostClient
from ledger.errors import BadRequest, MsgidConflict, NotFound, Refused
from ledger.ids import card_check_char, card_sn_auth, luhn_digit
from ledger.service import HostService
from tests.ledger.helpers import (
    AMOXICILLIN,
    PHARMACY,
    REGISTRY,
    Holder,
    World,
    balances,
    count_rows,
    msgid,
    verify,
)

BINS = {"CCB": "621700", "ICBC": "621226", "ABC": "622848", "BOC": "621661"}


def numbers(n: int, bank: str = "CCB", area: str = "370800") -> dict[str, str]:
    """The numbers of bureau card ``n``: card number, identification code, PAN."""
    body = f"J{n:07d}"
    serial = f"{n:08X}"
    pan_body = f"{BINS[bank]}{area}{n:06d}"
    return {"card_no": body + card_check_char(body),
            "card_sn": f"{area}D156000005{serial}{card_sn_auth(area, serial)}",
            "pan": pan_body + luhn_digit(pan_body)}


def person(i: int) -> dict[str, str]:
    p = REGISTRY[i]
    return {"certno": p["certno"], "psn_name": p["name"], "gend": p["sex"], "brdy": p["brdy"]}


@pytest.fixture
def world(host: HostService) -> World:
    return World(host)


def _register(c: HostClient, i: int, n: int, bank: str = "CCB", stas: str = "activated",
              **kw: Any) -> dict[str, Any]:
    args: dict[str, Any] = {**person(i), **numbers(n, bank), "bank": bank, "card_stas": stas,
                            **kw}
    out: dict[str, Any] = c.register_card(**args)["cardinfo"]
    return out


def test_a_bureau_card_pays_under_its_own_numbers(world: World, host: HostService) -> None:
    nums = numbers(17)
    out = _register(world.office, 3, 17, algorithm="SM4", generation="2.00")
    assert {k: out[k] for k in ("card_no", "card_sn", "pan")} == nums
    assert out["card_stas"] == "activated" and out["algorithm"] == "SM4"
    assert out["generation"] == "2.00" and out["initial_pin_envelope"] is False
    assert out["psn_no"] == "370800" + REGISTRY[3]["certno"]
    who = world.pharmacy.person_by_card(nums["card_no"], nums["card_sn"])
    assert who["baseinfo"]["psn_name"] == REGISTRY[3]["name"]
    world.office.credit(out["psn_no"], 10_000)
    world.banks["CCB"].credit(out["psn_no"], 20_000, "bank", card_no=nums["card_no"])
    h = Holder(out["psn_no"], REGISTRY[3]["certno"], REGISTRY[3]["name"], nums["card_no"],
               nums["card_sn"], nums["pan"], "CCB", 3)
    lines = world.lines((AMOXICILLIN, 10, 1250))
    trial = world.pharmacy.trial(psn_no=h.psn_no, card_no=h.card_no, card_sn=h.card_sn,
                                 lines=lines, cash_src="bank")["setlinfo"]
    cash = int(trial["psn_cash_pay"].replace(".", ""))
    done = world.pharmacy.settle(psn_no=h.psn_no, card_no=h.card_no, card_sn=h.card_sn,
                                 lines=lines, cash_src="bank",
                                 bank_auth=h.bank_auth(host, cash))["setlinfo"]
    assert done["acct_pay"] == "100.00" and cash == 2500
    assert balances(host)[f"bank:{nums['pan']}"] == 20_000 - 2500
    assert verify(host) == []


def test_states_follow_the_bank_rules(world: World) -> None:
    with pytest.raises(Refused, match=r"rule A3"):
        _register(world.office, 4, 20, "CCB", "issued")
    out = _register(world.office, 4, 21, "ICBC", "issued")
    assert out["card_stas"] == "issued"
    act = world.banks["ICBC"].activate(out["card_no"], REGISTRY[4]["certno"])
    assert act["cardinfo"]["card_stas"] == "activated"
    boc = _register(world.banks["BOC"], 5, 22, "BOC", "activated")   # activated at the bank
    assert boc["card_stas"] == "activated"
    with pytest.raises(Refused, match="not waiting for activation"):
        world.banks["BOC"].activate(boc["card_no"], REGISTRY[5]["certno"])


def test_C4_id_check_applies(world: World, host: HostService) -> None:
    before = count_rows(host)
    with pytest.raises(Refused, match=r"ID check failed.*rule C4"):
        _register(world.office, 6, 30, psn_name="冒名顶替")
    with pytest.raises(BadRequest, match="birth date"):
        _register(world.office, 6, 30, brdy="1900-01-01")
    with pytest.raises(BadRequest, match="needs psn_no or the person's"):
        world.office.register_card(**numbers(30), bank="CCB", card_stas="activated")
    assert count_rows(host) == before                       # nothing written


def test_duplicates_and_bad_numbers_are_refused(world: World, host: HostService) -> None:
    _register(world.office, 7, 40)
    first = numbers(40)
    before = count_rows(host)
    for field in ("card_no", "card_sn", "pan"):
        nums = {**numbers(41), field: first[field]}
        what = {"card_no": "card number", "card_sn": "card identification code",
                "pan": "PAN"}[field]
        with pytest.raises(Refused, match=rf"{what} {first[field]} is already registered"):
            world.office.register_card(**person(8), **nums, bank="CCB", card_stas="activated")
    with pytest.raises(Refused, match="already holds card"):
        _register(world.office, 7, 42)                     # one live card per person
    bad = numbers(43)
    with pytest.raises(BadRequest, match="check character"):
        world.office.register_card(**person(8), **{**bad, "card_no": bad["card_no"][:8] + (
            "1" if bad["card_no"][8] != "1" else "2")}, bank="CCB", card_stas="activated")
    with pytest.raises(BadRequest, match="identification code"):
        world.office.register_card(**person(8), **{**bad, "card_sn": bad["card_sn"][:24] +
                                                   "00000000"}, bank="CCB",
                                   card_stas="activated")
    with pytest.raises(BadRequest, match="Luhn"):
        world.office.register_card(**person(8), **{**bad, "pan": bad["pan"][:-1] + str(
            (int(bad["pan"][-1]) + 1) % 10)}, bank="CCB", card_stas="activated")
    with pytest.raises(Refused, match="go to a CCB"):
        _register(world.banks["ICBC"], 8, 43)              # a bank registers its own cards
    assert count_rows(host) == before


def test_an_existing_person_by_psn_no(world: World, host: HostService) -> None:
    h = world.person("CCB")
    with pytest.raises(Refused, match="already holds card"):
        world.office.register_card(psn_no=h.psn_no, **numbers(50), bank="CCB",
                                   card_stas="activated")
    with pytest.raises(Refused, match="is not that of person"):
        world.office.register_card(psn_no=h.psn_no, certno=REGISTRY[20]["certno"],
                                   **numbers(50), bank="CCB", card_stas="activated")
    with pytest.raises(NotFound):
        world.office.register_card(psn_no="370800" + REGISTRY[21]["certno"], **numbers(50),
                                   bank="CCB", card_stas="activated")
    # a card reported lost is still the person's card: its successor is a replacement (8105)
    world.banks["CCB"].report_loss(h.card_no, h.certno, formal=True)
    with pytest.raises(Refused, match="already holds card"):
        world.office.register_card(psn_no=h.psn_no, **numbers(50), bank="CCB",
                                   card_stas="activated")


def test_idempotent_per_msgid(world: World, host: HostService) -> None:
    mid = msgid(world.office.fixmedins_code)
    inp = {"data": {**person(9), **numbers(60), "bank": "CCB", "card_stas": "activated"}}
    first = world.office.call_envelope("8110", inp, mid)
    rows = count_rows(host)
    again = world.office.call_envelope("8110", inp, mid)
    assert first["infcode"] == 0 and again == first
    assert count_rows(host) == rows and rows["cards"] >= 1
    other = {"data": {**inp["data"], **numbers(61)}}
    with pytest.raises(MsgidConflict):
        world.office.call("8110", other, mid)


def test_pharmacy_cannot_register(world: World) -> None:
    c = world.pharmacy
    assert c.fixmedins_code == PHARMACY
    with pytest.raises(Refused, match="office or bank counter"):
        _register(c, 10, 70)

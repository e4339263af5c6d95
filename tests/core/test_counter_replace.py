"""Card replacement end to end (seed rules L1, L2, A3, A4, A5; spec/host.md §5).

Fixture card images (copies) in the in-process virtual reader with the fixture PSAM, the
embedded SQLite host with the holders enrolled (tests/core/station.py), the counter's
:class:`~terminal.core.counter.ReplaceCard` flow and the real personaliser
:class:`~terminal.core.adapters.ImageCardIssuer` writing the new card image.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from card.image import load_card_image, read_document
from card.photo import photo_from_file
from terminal.core.adapters import ImageCardIssuer, PolicyCatalogue
from terminal.core.checkout import Checkout, CheckoutState, run_checkout
from terminal.core.counter import ActivateCard, CounterState, ReplaceCard, ReportLoss
from terminal.core.machine import FailureKind
from terminal.core.model import PayChoice, TerminalConfig
from terminal.core.ports import CardFault
from tests.core import hosting
from tests.core.station import PINS, Station

K = CounterState
AMOX = "XJ01CAA040A001010101445"  # 12.50
PHARMACY = "P37080000001"
PHARMA = TerminalConfig(institution_code=PHARMACY, institution_name="济宁市太白湖大药房")
ZHANG = ("zhang-san", "370802198001011235")
MAIMAITI = "maimaiti"


@pytest.fixture
def st(tmp_path: Path) -> Iterator[Station]:
    station = Station.build(tmp_path, cast=("zhang-san", MAIMAITI))
    yield station
    station.close()


@pytest.fixture(scope="module")
def catalogue() -> PolicyCatalogue:
    return PolicyCatalogue.load("370800")


def sale(st: Station, catalogue: PolicyCatalogue, pin: str, pay: str = "account") -> Checkout:
    flow = Checkout(st.reader_card(), st.host(PHARMACY), catalogue, PHARMA,
                    pay=PayChoice.parse(pay))
    return run_checkout(flow, [(AMOX, 2)], lambda tries: pin)


def insert_image(st: Station, label: str, path: Path) -> None:
    """Put the card of image ``path`` in the station's reader (the previous one is pulled)."""
    st.pull()
    st.images[label] = path
    st.cards.pop(label, None)
    st.insert(label)


def ledger(st: Station, fn: Any) -> Any:
    from ledger.store.base import open_store

    store = open_store(st.url)
    try:
        return store.run(fn)
    finally:
        store.close()


def account(st: Station, name: str) -> int:
    from ledger import books

    return int(ledger(st, lambda tx: books.balance(tx, name)))


def test_lost_card_replaced_new_card_pays_old_card_refused(
        st: Station, catalogue: PolicyCatalogue) -> None:
    from ledger import books

    who, ssn = ZHANG
    old = st.enrolled[who]
    st.insert(who)
    first = sale(st, catalogue, PINS[who])
    assert first.state is CheckoutState.DONE, first.message
    paid = first.result.split.total if first.result else 0
    assert st.balances(who) == (50000 - paid, 100000)

    counter = hosting.BANK_COUNTERS["CCB"]
    assert ReportLoss(st.host(counter), old.card_no, ssn).run_until_input() is K.DONE
    refused = sale(st, catalogue, PINS[who])
    assert refused.failure is not None and "reported lost" in refused.failure.message

    issuer = ImageCardIssuer([st.root])
    events: list[Any] = []
    flow = ReplaceCard(st.host(counter), issuer, old.card_no, ssn, reason="lost",
                       fee_src="cash")
    flow.subscribe(events.append)
    assert flow.run_until_input() is K.DONE, flow.message
    new = flow.new_card
    assert new is not None and new.card_number != old.card_no
    assert flow.fee_fen == 3000 and "fee 30.00 yuan (cash)" in flow.message
    assert f"old card {old.card_no} no longer works" in flow.message
    # CCB (rule A3): activated, a new initial PIN handed out once, never in an event
    pin = flow.take_initial_pin()
    assert pin is not None and len(pin) == 6 and pin.isdigit()
    assert flow.take_initial_pin() is None and issuer.take_initial_pin() is None
    assert all(pin not in e.message and pin not in json.dumps(dict(e.data), default=str)
               for e in events)

    # the new image: next to the old one, the host's numbers, the holder's identity
    path = issuer.last_path
    assert path is not None and path.parent == st.images[who].parent
    assert pin not in path.read_text(encoding="utf-8")
    img, was = load_card_image(path), load_card_image(st.images[who])
    for key in ("name", "ssn", "sex", "birth_date", "ethnicity", "bank"):
        assert img.identity[key] == was.identity[key], key
    assert photo_from_file(bytes(getattr(img.mf.find("SSSE/EF08"), "data", b""))) == \
        photo_from_file(bytes(getattr(was.mf.find("SSSE/EF08"), "data", b"")))
    row = ledger(st, lambda tx: tx.one(
        "SELECT card_sn, pan, state, replaces FROM cards WHERE card_no = ?",
        (new.card_number,)))
    assert row is not None and tuple(row) == (img.identity["card_id_code"],
                                              img.identity["pan"], "activated", old.card_no)
    assert img.activated

    # the money (spec/host.md §5): fee from cash, the bank balance moved, medical stays
    new_pan = img.identity["pan"]
    assert account(st, books.bank(old.pan)) == 0
    assert account(st, books.bank(new_pan)) == 100000
    assert account(st, books.medical(old.psn_no)) == 50000 - paid
    assert account(st, books.fee("370800")) == 3000
    assert hosting.books_problems(st.url) == []

    # the new card: read, authenticated by the PSAM, found at the host, pays
    insert_image(st, "zhang-new", path)
    basics = st.reader_card().read_basics()
    assert (basics.card_number, basics.card_id_code, basics.ssn) == (
        new.card_number, new.card_id_code, ssn)
    paid_new = sale(st, catalogue, pin)
    assert paid_new.state is CheckoutState.DONE, paid_new.message
    assert paid_new.result is not None and paid_new.result.slip.holder_name == old.name
    by_bank = sale(st, catalogue, pin, pay="bank")  # the ARQC under the host's PAN
    assert by_bank.state is CheckoutState.DONE and by_bank.result is not None
    assert account(st, books.bank(new_pan)) == 100000 - by_bank.result.split.total > 0

    # the old card is refused with the reason
    insert_image(st, who, st.images[who])
    dead = sale(st, catalogue, PINS[who])
    assert dead.state is CheckoutState.FAILED and dead.failure is not None
    assert dead.failure.kind is FailureKind.CARD_STATUS
    assert f"replaced by card {new.card_number}" in dead.failure.message
    assert hosting.books_problems(st.url) == []


def test_damage_not_the_holders_fault_is_free_and_the_new_card_needs_activation(
        st: Station, catalogue: PolicyCatalogue) -> None:
    from ledger import books

    e = st.enrolled[MAIMAITI]
    counter = hosting.BANK_COUNTERS["BOC"]
    issuer = ImageCardIssuer([st.root])
    flow = ReplaceCard(st.host(counter), issuer, e.card_no, e.ssn, reason="damaged_not_holder",
                       certificate_no="L2-370800-0001")
    assert flow.run_until_input() is K.DONE, flow.message
    assert flow.fee_fen == 0 and "free of charge" in flow.message
    assert "not activated" in flow.message and flow.take_initial_pin() is None
    path = issuer.last_path
    assert path is not None
    img = load_card_image(path)
    assert not img.activated and img.identity["bank"] == "BOC"
    assert account(st, books.fee("370800")) == 0
    assert account(st, books.bank(img.identity["pan"])) == 100000
    assert account(st, books.medical(e.psn_no)) == 50000

    # rule A4: the new BOC card is activated at the BOC counter by changing the PIN
    insert_image(st, "maimaiti-new", path)
    early = sale(st, catalogue, "123456")
    assert early.failure is not None and early.failure.kind is FailureKind.CARD_STATUS
    act = ActivateCard(st.host(counter), st.reader_card())
    act.run_until_input()
    act.provide_id(e.ssn)
    act.enter_pins("123456", "393939", "393939")
    assert act.run_until_input() is K.DONE, act.message
    assert sale(st, catalogue, "393939").state is CheckoutState.DONE
    assert hosting.books_problems(st.url) == []


def test_free_replacement_without_certificate_writes_nothing(st: Station) -> None:
    e = st.enrolled[MAIMAITI]
    issuer = ImageCardIssuer([st.root])
    before = sorted(p.name for p in st.root.glob("*.json"))
    flow = ReplaceCard(st.host(hosting.BANK_COUNTERS["BOC"]), issuer, e.card_no, e.ssn,
                       reason="damaged_not_holder")
    assert flow.run_until_input() is K.FAILED
    assert flow.failure is not None and "certificate" in flow.failure.message
    assert issuer.last_path is None and sorted(p.name for p in st.root.glob("*.json")) == before


# ------------------------------------------------------------------ the personaliser alone


def host_answer(**over: Any) -> dict[str, Any]:
    """A well-formed 8105 ``cardinfo`` for zhang-san's replacement."""
    from card.image import card_id_auth

    serial = "0A0B0C0D"
    out = {"card_no": "B12345671", "card_sn": f"370800D156000005{serial}"
           f"{card_id_auth('370800', serial)}", "pan": "6217003708000000041", "pan_seq": "01",
           "bank": "CCB", "card_stas": "activated", "generation": "3.00", "algorithm": "SM4",
           "old_card_no": "J00000017", "area_code": "370800"}
    out.update(over)
    return out


@pytest.fixture
def images(tmp_path: Path) -> Path:
    hosting.copy_fixtures(tmp_path, "zhang-san", "li-si")
    return tmp_path


def test_data_corrected_at_the_office_wins_over_the_old_card(images: Path) -> None:
    issuer = ImageCardIssuer([images])
    info = issuer.write_card(host_answer(), {"certno": ZHANG[1], "psn_name": "张叁"})
    doc = read_document(images / "zhang-san-B12345671.json")
    assert info.name == "张叁" and doc["identity"]["name"] == "张叁"
    assert doc["identity"]["ssn"] == ZHANG[1]


def test_personaliser_refusals(images: Path) -> None:
    issuer = ImageCardIssuer([images])
    with pytest.raises(CardFault, match="another person"):
        issuer.write_card(host_answer(), {"certno": "370802198505050529"})
    with pytest.raises(CardFault, match="lacks card_sn"):
        issuer.write_card(host_answer(card_sn=""), {"certno": ZHANG[1]})
    with pytest.raises(CardFault, match="check character"):
        issuer.write_card(host_answer(card_no="B12345672"), {"certno": ZHANG[1]})
    with pytest.raises(CardFault, match="no holder data"):
        ImageCardIssuer().write_card(host_answer(old_card_no="X00000019"), {})
    issuer.write_card(host_answer(), {"certno": ZHANG[1]})
    with pytest.raises(CardFault, match="already exists"):
        issuer.write_card(host_answer(), {"certno": ZHANG[1]})
    assert issuer.take_initial_pin() is not None  # the first card's envelope, once
    assert issuer.take_initial_pin() is None


def test_without_the_old_image_the_holder_comes_from_the_host(tmp_path: Path) -> None:
    issuer = ImageCardIssuer(out_dir=tmp_path)
    info = issuer.write_card(host_answer(bank="ICBC", card_stas="issued"),
                             {"certno": "370802198505050529", "psn_name": "李四"})
    assert issuer.last_path == tmp_path / "B12345671.json"
    img = load_card_image(tmp_path / "B12345671.json")
    assert info.ssn == "370802198505050529" and img.identity["sex"] == "2"
    assert not img.activated and issuer.take_initial_pin() is None

"""Card images: validation naming the field, the integrity seal, TOML, atomic writes, issuing."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from apdu import codec
from card.cos import VirtualCard
from card.errors import ImageError, IssueError
from card.fs import DedicatedFile, ElementaryFile, node_from_doc
from card.image import CardImage, FileStore, dumps, read_document, seal
from card.issue import Holder, IssuerRegistry, issue
from card.psam import VirtualPsam, make_psam_doc
from tests.card.helpers import ZHANG_SSN, make_issued, ssn, tx


def _resealed(mutate: Any) -> dict[str, Any]:
    doc = copy.deepcopy(make_issued().doc)
    mutate(doc)
    return seal(doc)


@pytest.mark.parametrize("mutate,field", [
    (lambda d: d["identity"].update(card_number="J00000011"), "identity.card_number"),
    (lambda d: d["identity"].update(ssn="370802198001011230"), "identity.ssn"),
    (lambda d: d["identity"].update(bank="HSBC"), "identity.bank"),
    (lambda d: d["identity"].update(issue_date="20240230"), "identity.issue_date"),
    (lambda d: d["pins"]["ssse"].update(tries_left=7), "pins.ssse.tries_left"),
    (lambda d: d["policy"].update(pin_policy="both"), "policy.pin_policy"),
    (lambda d: d["keys"].update(IRK="00"), "keys.IRK"),
    (lambda d: d["keys"].pop("PUK"), "keys.PUK"),
    (lambda d: d["counters"].update(atc=-1), "counters.atc"),
    (lambda d: d.update(schema=9), "schema"),
    (lambda d: d["files"]["children"][1]["children"][0].update(structure="tree"),
     "files.children[1].children[0].structure"),
    (lambda d: d["files"]["children"][1]["children"][0]["records"].__setitem__(0, "0105AA"),
     "files.children[1].children[0].records[0]"),
    (lambda d: d["files"]["children"][1]["children"][1].update(read="anyone"),
     "files.children[1].children[1].read"),
])
def test_broken_images_name_the_field(mutate: Any, field: str) -> None:
    with pytest.raises(ImageError) as info:
        CardImage.from_doc(_resealed(mutate))
    assert info.value.field == field
    assert field in str(info.value)


def test_hand_edited_image_is_refused_naming_the_section(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_text(dumps(make_issued().doc))
    doc = json.loads(path.read_text())
    doc["pins"]["ssse"]["tries_left"] = 3
    doc["counters"]["atc"] = 5
    path.write_text(json.dumps(doc))
    with pytest.raises(ImageError) as info:
        VirtualCard.from_image(path)
    assert info.value.field == "counters"
    assert "edited by hand" in str(info.value)


def test_unreadable_files_give_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match="does not exist"):
        VirtualCard.from_image(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ImageError, match="not a valid JSON"):
        read_document(bad)
    arr = tmp_path / "arr.json"
    arr.write_text("[]")
    with pytest.raises(ImageError, match="top level"):
        read_document(arr)


def test_toml_image_round_trip_and_persistence(tmp_path: Path) -> None:
    path = tmp_path / "card.toml"
    doc = make_issued().doc
    path.write_text(dumps(doc, toml=True))
    card = VirtualCard.from_image(path)
    assert tx(card, "0020000003111111")[1] == 0x63C2
    again = VirtualCard.from_image(path)
    assert again.image.pins["ssse"].tries_left == 2
    assert again.image.identity == card.image.identity
    assert "[" in path.read_text() and path.read_text().startswith("format = ")


def test_atomic_write_leaves_no_temp_files(tmp_path: Path) -> None:
    path = tmp_path / "card.json"
    store = FileStore(path)
    doc = make_issued().doc
    store.save(doc)
    for _ in range(3):
        store.save(store.load())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["card.json"]
    CardImage.from_doc(store.load())


def test_secrets_are_not_in_the_image_in_the_clear() -> None:
    issued = make_issued(pin="864209")
    text = dumps(issued.doc)
    assert "864209" not in text
    assert codec.pin_encode("864209").hex().upper() not in text


# -- issuing --------------------------------------------------------------------------------

def test_issue_validates_the_id_number_and_holder() -> None:
    with pytest.raises(IssueError, match="not valid"):
        issue(Holder("张三", "370802198001011230"), bank="ICBC")
    with pytest.raises(IssueError, match="sex"):
        issue(Holder("张三", ZHANG_SSN, sex="2"), bank="ICBC")
    with pytest.raises(IssueError, match="birth date"):
        issue(Holder("张三", ZHANG_SSN, birth_date="19800102"), bank="ICBC")
    with pytest.raises(IssueError, match="unknown bank"):
        issue(Holder("张三", ZHANG_SSN), bank="HSBC")
    with pytest.raises(IssueError, match="name"):
        issue(Holder("张" * 40, ZHANG_SSN), bank="ICBC")


def test_ccb_is_activated_with_a_random_pin_others_are_not() -> None:
    ccb = issue(Holder("李四", ssn("37080219850505052")), bank="CCB")
    assert ccb.image.activated and len(ccb.initial_pin) == 6 and ccb.initial_pin.isdigit()
    card = VirtualCard.from_doc(ccb.doc)
    assert tx(card, "0020000003" + ccb.initial_pin)[1] == 0x9000
    icbc = issue(Holder("李四", ssn("37080219850505052")), bank="ICBC")
    assert not icbc.image.activated and icbc.initial_pin == "123456"


def test_issuer_registry_makes_numbers_unique_and_valid(tmp_path: Path) -> None:
    reg_path = tmp_path / "issuer.json"
    numbers, ids = set(), set()
    for i in range(5):
        reg = IssuerRegistry(reg_path)
        out = issue(Holder("王五", ssn(f"3708021990010100{i}")), bank="BOC", registry=reg)
        ident = out.doc["identity"]
        assert codec.card_number_valid(ident["card_number"])
        numbers.add(ident["card_number"])
        ids.add(ident["card_id_code"])
        assert ident["card_id_code"][16:24] == f"{i + 1:08X}"
    assert len(numbers) == 5 and len(ids) == 5
    assert len(json.loads(reg_path.read_text())["areas"]["370800"]["card_numbers"]) == 5


def test_psam_image_validation(tmp_path: Path) -> None:
    doc = make_psam_doc("370800", 3)
    bad = copy.deepcopy(doc)
    bad["terminal_number"] = "370100000003"
    with pytest.raises(ImageError) as info:
        VirtualPsam.from_doc(seal(bad))
    assert info.value.field == "terminal_number"
    path = tmp_path / "psam.json"
    edited = copy.deepcopy(doc)
    edited["counter"] = 99
    path.write_text(json.dumps(edited))
    with pytest.raises(ImageError) as info:
        VirtualPsam.from_image(path)
    assert info.value.field == "counter"


# -- round trips ----------------------------------------------------------------------------

records = st.lists(st.tuples(st.integers(1, 0xFE), st.binary(max_size=40)).map(
    lambda tv: bytes([tv[0], len(tv[1])]) + tv[1]), max_size=6)
efs = st.one_of(
    st.builds(lambda fid, data, size: ElementaryFile(
        fid, "transparent", size=size, data=bytearray(data.ljust(size, b"\x00"))),
        st.integers(1, 0xFFFE), st.binary(max_size=64), st.integers(64, 300)),
    st.builds(lambda fid, recs: ElementaryFile(fid, "records", records=recs),
              st.integers(1, 0xFFFE), records),
    st.builds(lambda fid, recs: ElementaryFile(fid, "cyclic", records=recs, record_size=4,
                                               max_records=8),
              st.integers(1, 0xFFFE), st.lists(st.binary(min_size=4, max_size=4), max_size=8)),
)


@given(st.lists(efs, max_size=5, unique_by=lambda e: e.fid),
       st.binary(min_size=1, max_size=16))
def test_file_tree_round_trips_through_the_image_form(children: list[ElementaryFile],
                                                       name: bytes) -> None:
    df = DedicatedFile(0x3F00, children=[DedicatedFile(0x1001, name=name, children=[*children])])
    back = node_from_doc(json.loads(json.dumps(df.to_doc())))
    assert isinstance(back, DedicatedFile)
    assert back.to_doc() == df.to_doc()
    inner = back.children[0]
    assert isinstance(inner, DedicatedFile) and inner.parent is back
    for a, b in zip(inner.children, children, strict=True):
        assert isinstance(a, ElementaryFile)
        assert (a.fid, a.structure, bytes(a.data), a.records) == (
            b.fid, b.structure, bytes(b.data), b.records)


def test_card_image_round_trips() -> None:
    doc = make_issued().doc
    img = CardImage.from_doc(doc)
    again = CardImage.from_doc(seal(img.to_doc()))
    assert again.to_doc() == img.to_doc()
    assert seal(img.to_doc())["integrity"] == doc["integrity"]

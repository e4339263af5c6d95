"""The fixture cast of fixtures/cards/ (see make_fixtures.py): every card behaves as listed.

Cards are loaded into memory so the committed files are never modified by the tests.
"""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import pytest
from PIL import Image

from apdu import codec
from card.cos import VirtualCard
from card.image import read_document
from card.photo import photo_from_file
from card.psam import VirtualPsam
from tests.card.helpers import SSSE_NAME, Terminal, tx

DIR = Path(__file__).resolve().parents[2] / "fixtures" / "cards"

CAST = {
    # file: (bank, generation, algorithm, pin, activated, locked)
    "zhang-san": ("CCB", "3.00", "SM4", "246810", True, False),
    "li-si": ("ICBC", "3.00", "3DES", "123456", False, False),
    "wang-wu": ("ABC", "2.00", "3DES", "135790", True, False),
    "maimaiti": ("BOC", "3.00", "SM4", "112233", True, False),
    "zhao-min": ("CCB", "2.00", "SM4", "975310", True, True),
    "sun-li": ("ICBC", "3.00", "SM4", "202020", True, False),
}


def load(name: str) -> VirtualCard:
    return VirtualCard.from_doc(read_document(DIR / f"{name}.json"))


def psam() -> VirtualPsam:
    return VirtualPsam.from_doc(read_document(DIR / "psam-370800.json"))


def test_the_cast_covers_banks_generations_algorithms() -> None:
    assert {c[0] for c in CAST.values()} == {"ICBC", "ABC", "BOC", "CCB"}
    assert {c[1] for c in CAST.values()} == {"2.00", "3.00"}
    assert {c[2] for c in CAST.values()} == {"3DES", "SM4"}
    assert sorted(p.stem for p in DIR.glob("*.json")) == sorted([*CAST, "psam-370800"])


@pytest.mark.parametrize("name", sorted(CAST))
def test_fixture_card(name: str) -> None:
    bank, gen, alg, pin, activated, locked = CAST[name]
    card = load(name)
    ident = card.image.identity
    assert (ident["bank"], ident["generation"], ident["algorithm"]) == (bank, gen, alg)
    assert card.image.activated is activated
    assert card.image.test_keys is True
    assert codec.card_number_valid(ident["card_number"])
    term = Terminal(card, psam())
    assert term.internal_auth() == 0x9000
    assert term.external_auth() == 0x9000
    photo = b""
    for off in range(0, 0x1000, 0x100):
        chunk, sw = tx(card, bytes([0x00, 0xB0, off >> 8 | (0x88 if off == 0 else 0),
                                    off & 0xFF, 0x00]))
        assert sw == 0x9000
        photo += chunk
    assert Image.open(io.BytesIO(photo_from_file(photo))).format == "JPEG"
    tx(card, b"\x00\xa4\x04\x00\x0f" + SSSE_NAME)
    sw = tx(card, b"\x00\x20\x00\x00\x03" + bytes.fromhex(pin))[1]
    assert sw == (0x6983 if locked else 0x9000)


def test_the_long_name_needs_tag_4e() -> None:
    card = load("maimaiti")
    Terminal(card, psam()).external_auth()
    tx(card, "00A4020002EF06")
    r09, _ = tx(card, "00B2090020")
    r4e, _ = tx(card, "00B24E0016")
    assert r4e[2:].strip(b"\x00")
    assert codec.join_name(r09[2:], r4e[2:]) == "买买提·阿不都热合曼·艾合麦提江"


def test_locked_card_is_reset_at_the_counter() -> None:
    card = load("zhao-min")
    term = Terminal(card, psam())
    assert term.reload_pin("864200") == 0x9000
    assert tx(card, "0020000003864200")[1] == 0x9000


def test_separate_pins_of_sun_li() -> None:
    card = load("sun-li")
    assert card.image.pin_policy == "separate" and card.image.pin_max_tries == 6
    assert tx(card, "00A4040008A000000333010101")[1] == 0x9000
    assert tx(card, "0020000003123456")[1] == 0x9000


def test_from_image_on_a_copy_persists_across_restarts(tmp_path: Path) -> None:
    path = tmp_path / "li-si.json"
    shutil.copy(DIR / "li-si.json", path)
    card = VirtualCard.from_image(path, t0=True)
    assert card.atr().startswith(bytes.fromhex("3B6D0000"))
    assert card.transmit(bytes.fromhex("0020000003000000")) == bytes.fromhex("63C2")
    card.power_off()
    again = VirtualCard.from_image(path)
    assert tx(again, "00200000")[1] == 0x63C2
    assert tx(again, "805E010007123456FF864200")[1] == 0x9000
    assert VirtualCard.from_image(path).image.activated is True

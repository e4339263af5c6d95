"""Authentication, secure messaging, blocks and the PSAM (spec/card.md §5, §8, §9)."""

from __future__ import annotations

import pytest

from apdu import codec
from card import crypto
from card.cos import VirtualCard
from card.fs import ElementaryFile
from card.image import CardImage
from card.psam import VirtualPsam, make_psam_doc
from tests.card.helpers import SSSE_NAME, Terminal, make_card, make_psam, tx


def select_ssse(card: VirtualCard) -> None:
    assert tx(card, b"\x00\xa4\x04\x00\x0f" + SSSE_NAME)[1] == 0x9000


@pytest.mark.parametrize("algorithm", ["SM4", "3DES"])
def test_a_forged_card_fails_internal_authentication(algorithm: str) -> None:
    genuine = make_card(algorithm=algorithm)
    forged = make_card(algorithm=algorithm)
    forged.image.keys["IRK"] = bytes(16)
    psam = make_psam()
    assert Terminal(genuine, psam).internal_auth() == 0x9000
    assert Terminal(forged, psam).internal_auth() == 0x6300


def test_external_authenticate_rules() -> None:
    card = make_card()
    term = Terminal(card, make_psam())
    select_ssse(card)
    assert tx(card, "008200 0A10".replace(" ", "") + "00" * 16)[1] == 0x6984  # no challenges
    tx(card, "0084000008")
    tx(card, "0084000008")
    assert tx(card, "0082000A10" + "00" * 16)[1] == 0x63C2  # a try spent (card/keyauth.py)
    assert tx(card, "0082000B10" + "00" * 16)[1] == 0x6A88
    assert tx(card, "0082000A08" + "00" * 8)[1] == 0x6700
    assert term.external_auth() == 0x9000
    # authentication does not survive a reset
    card.reset()
    select_ssse(card)
    tx(card, "00A4020002EF06")
    assert tx(card, "00B2080014")[1] == 0x6982


def test_get_challenge_lengths() -> None:
    card = make_card()
    for le in (4, 8, 16):
        data, sw = tx(card, bytes([0, 0x84, 0, 0, le]))
        assert sw == 0x9000 and len(data) == le
    assert tx(card, "0084000005")[1] == 0x6700
    assert tx(card, "0084010008")[1] == 0x6A86


def test_update_record_needs_the_update_key_mac() -> None:
    card = make_card()
    term = Terminal(card, make_psam())
    select_ssse(card)
    tx(card, "00A4020002EF05")
    new = b"\x02\x01" + b"4"
    assert tx(card, b"\x00\xdc\x02\x28\x03" + new)[1] == 0x6982  # plain CLA refused
    header = bytes.fromhex("04DC0228")  # tag 02 of SFI 5
    assert term.secure(0x04, 0x01, header, new) == 0x9000
    tx(card, "00A4020002EF05")
    assert tx(card, "00B2020003") == (new, 0x9000)
    ef05 = CardImage.from_doc(card.store.load()).mf.find("SSSE/EF05")
    assert isinstance(ef05, ElementaryFile) and ef05.record_by_tag(2) == (1, new)
    # a wrong tag or length is refused even with a good MAC
    assert term.secure(0x04, 0x01, header, b"\x03\x01" + b"4") == 0x6A80
    assert term.secure(0x04, 0x01, header, b"\x02\x02" + b"44") == 0x6700
    # the DF04 key does not open SSSE EF05
    assert term.secure(0x04, 0x04, header, new) == 0x9302


def test_application_block_then_select_answers_9303_and_it_persists() -> None:
    card = make_card()
    term = Terminal(card, make_psam())
    assert term.secure(0x05, 0x01, bytes.fromhex("841E0001")) == 0x9000
    assert tx(card, "00A4020002EF05")[1] == 0x9303
    assert tx(card, b"\x00\xa4\x04\x00\x0f" + SSSE_NAME)[1] == 0x9303
    assert tx(card, "00A4040008A000000333010101")[1] == 0x9000  # the bank app still works
    again = VirtualCard(card.store)
    assert tx(again, b"\x00\xa4\x04\x00\x0f" + SSSE_NAME)[1] == 0x9303


def test_card_block_makes_every_command_answer_6a81() -> None:
    card = make_card()
    term = Terminal(card, make_psam())
    assert term.secure(0x06, 0x01, bytes.fromhex("84160000")) == 0x9000
    for cmd in ("00A4000000", "0084000008", "00200000", "00A4040008A000000333010101"):
        assert tx(card, cmd)[1] == 0x6A81
    card.power_off()
    card.power_on()
    assert tx(card, "0084000008")[1] == 0x6A81


def test_card_block_with_a_bad_mac_does_nothing() -> None:
    card = make_card()
    tx(card, "0084000008")
    assert tx(card, "841600000400000000")[1] == 0x9302
    assert tx(card, "0084000008")[1] == 0x9000


def test_status_words_for_unknown_class_and_instruction() -> None:
    card = make_card()
    assert tx(card, "00FE0000")[1] == 0x6D00
    assert tx(card, "90A40000")[1] == 0x6E00
    assert tx(card, "80A4000000")[1] == 0x6E00
    assert tx(card, "FFA40000")[1] == 0x6E00
    assert tx(card, "00A4")[1] == 0x6700
    assert tx(card, "00A40500")[1] == 0x6A86
    assert tx(card, "00C0000010")[1] == 0x6985
    assert tx(card, "00B0000010")[1] == 0x6986  # no current EF


# -- PSAM -----------------------------------------------------------------------------------

def test_psam_terminal_number() -> None:
    psam = make_psam()
    data, sw = tx(psam, "00B0960006")
    assert sw == 0x9000 and codec.cn_decode(data) == "370800000007"
    assert tx(psam, "00A4000002EF16")[1] == 0x9000
    assert tx(psam, "00B0000006") == (data, 0x9000)
    assert tx(psam, "00B0000008")[1] == 0x6C06


def test_psam_refuses_other_areas_and_missing_algorithms() -> None:
    card = make_card(area="370100", algorithm="SM4")
    assert Terminal(card, make_psam()).p1(0x01) == 0x31
    factor = Terminal(card, make_psam()).factor
    psam = make_psam()
    assert tx(psam, b"\xbf\xde\x31\x01\x10" + factor + bytes(8))[1] == 0x6A88
    only3des = VirtualPsam.from_doc(make_psam_doc("370100", 1, ("3DES",)))
    assert tx(only3des, b"\xbf\xde\x31\x01\x10" + factor + bytes(8))[1] == 0x6A81
    assert tx(only3des, b"\xbf\xde\x11\x01\x10" + factor + bytes(8))[1] == 0x9000
    assert tx(psam, b"\xbf\xde\x31\x09\x10" + factor + bytes(8))[1] == 0x6A88
    assert tx(psam, "80FA050004 11223344".replace(" ", ""))[1] == 0x6985


@pytest.mark.parametrize("alg_nibble,bs", [(1, 8), (3, 16)])
def test_psam_chained_mac_equals_one_block_mac(alg_nibble: int, bs: int) -> None:
    card = make_card(algorithm="3DES" if bs == 8 else "SM4")
    factor = Terminal(card, make_psam()).factor
    psam = make_psam()
    assert tx(psam, bytes([0xBF, 0xDE, alg_nibble << 4 | 4, 1, 0x10]) + factor + bytes(8))[1] == (
        0x9000)
    data = bytes(range(3 * bs + 5))
    one, sw = tx(psam, b"\x80\xfa\x05\x00" + bytes([len(data)]) + data)
    assert sw == 0x9000
    assert tx(psam, b"\x80\xfa\x07\x00" + bytes([bs]) + data[:bs])[1] == 0x9000
    assert tx(psam, b"\x80\xfa\x03\x00" + bytes([2 * bs]) + data[bs:3 * bs])[1] == 0x9000
    last, sw = tx(psam, b"\x80\xfa\x01\x00" + bytes([5]) + data[3 * bs:])
    assert sw == 0x9000 and last == one
    assert tx(psam, b"\x80\xfa\x03\x00" + bytes([bs]) + data[:bs])[1] == 0x6985


def test_psam_purchase_mac1_mac2_and_counter() -> None:
    card = make_card(algorithm="SM4")
    factor = Terminal(card, make_psam()).factor
    psam = make_psam()
    rnd, seq, amount = bytes.fromhex("01020304"), b"\x00\x05", (1234).to_bytes(4, "big")
    when = bytes.fromhex("20240506123000")
    data = rnd + seq + amount + b"\x06" + when + b"\x01" + b"\x03" + factor
    out, sw = tx(psam, b"\x80\x70\x01\x00\x1c" + data + b"\x08")
    assert sw == 0x9000
    tsn, mac1 = out[:4], out[4:]
    assert int.from_bytes(tsn, "big") == 1
    dpk = crypto.diversify(psam.image.keys[3]["DPK"], factor, 3)
    sk = crypto.session_key(dpk, rnd + seq + tsn[2:], 3)
    assert mac1 == crypto.mac(sk, amount + b"\x06" + bytes.fromhex("370800000007") + when, 3)
    assert tx(psam, b"\x80\x72\x00\x00\x04" + crypto.mac(sk, amount, 3))[1] == 0x9000
    tx(psam, b"\x80\x70\x01\x00\x1c" + data)
    assert tx(psam, "807200000400000000")[1] == 0x63CF
    assert psam.image.counter == 2
    assert VirtualPsam(psam.store).image.counter == 2  # durable


def test_update_binary_of_the_fingerprint_file_with_mac() -> None:
    card = make_card()
    term = Terminal(card, make_psam())
    header = bytes.fromhex("04D68710")  # SFI 7, offset 0x10
    template = bytes(range(1, 33))
    assert term.secure(0x04, 0x01, header, template) == 0x9000
    assert term.external_auth() == 0x9000
    data, sw = tx(card, "00B0871020")
    assert (data, sw) == (template, 0x9000)
    assert term.secure(0x04, 0x01, bytes.fromhex("04D787FF"), b"\x01") == 0x6D00
    # writing past the end of the 0x300-byte file (EF07 is the current EF now)
    assert term.secure(0x04, 0x01, bytes.fromhex("04D602FF"), b"\x01\x02") == 0x6700
    assert term.secure(0x04, 0x01, bytes.fromhex("04D60300"), b"\x01") == 0x6B00

"""The bank application (spec/card.md §11): what an EMV reading tool does, and the ARQC."""

from __future__ import annotations

import hashlib

import pytest

from apdu import tlv
from card import crypto
from card.cos import VirtualCard
from card.image import CardImage
from tests.card.helpers import make_card, make_issued, tx

AID = bytes.fromhex("A000000333010101")
CDOL1_DATA = bytes.fromhex(
    "000000001234" "000000000000" "0156" "0000000000" "0156" "240506" "00" "CAFEBABE")


def emv_read(card: VirtualCard) -> dict[int, bytes]:
    """List the applications through the PSE and read every record the AFL names."""
    fci, sw = tx(card, b"\x00\xa4\x04\x00\x0e1PAY.SYS.DDF01\x00")
    assert sw == 0x9000
    sfi = tlv.find(fci, 0x6F, 0xA5, 0x88)
    assert sfi is not None and sfi.value == b"\x01"
    aids = []
    n = 1
    while True:
        rec, sw = tx(card, bytes([0x00, 0xB2, n, (1 << 3) | 4, 0x00]))
        if sw == 0x6A83:
            break
        assert sw == 0x9000
        aids.append(tlv.find(rec, 0x70, 0x61, 0x4F).value)  # type: ignore[union-attr]
        n += 1
    assert aids == [AID]
    fci, sw = tx(card, b"\x00\xa4\x04\x00\x08" + AID + b"\x00")
    assert sw == 0x9000
    pdol = tlv.find(fci, 0x6F, 0xA5, 0x9F38)
    assert pdol is not None and pdol.value == bytes.fromhex("9F1A02")
    gpo, sw = tx(card, "80A80000048302015600")
    assert sw == 0x9000
    afl = tlv.find(gpo, 0x77, 0x94).value  # type: ignore[union-attr]
    found: dict[int, bytes] = {}
    for i in range(0, len(afl), 4):
        sfi_b, first, last = afl[i] >> 3, afl[i + 1], afl[i + 2]
        for rn in range(first, last + 1):
            rec, sw = tx(card, bytes([0x00, 0xB2, rn, (sfi_b << 3) | 4, 0x00]))
            assert sw == 0x9000
            for t in tlv.decode(rec)[0].children():
                found[t.tag] = t.value
    return found


def test_an_emv_tool_can_list_and_read_the_card() -> None:
    card = make_card("CCB")
    ident = card.image.identity
    found = emv_read(card)
    assert found[0x5A].hex().rstrip("f") == ident["pan"]
    assert found[0x5F24] == bytes.fromhex(ident["expiry_date"][2:])
    assert found[0x5F20].decode("gbk") == "张三"
    assert found[0x8C] == bytes.fromhex("9F02069F03069F1A0295055F2A029A039C019F3704")
    assert found[0x57][:len(ident["pan"]) // 2] == bytes.fromhex(ident["pan"][:18])


def _arqc_by_the_recipe(ident: dict[str, str], atc: int, data: bytes, alg: int) -> bytes:
    """The documented recipe (card/pboc.py), from raw primitives."""
    name = "3DES" if alg == 1 else "SM4"
    root = hashlib.sha256(f"sscard TEST root key|AC|{name}".encode()).digest()[:16]
    city = ident["area_code"]
    panf = bytes.fromhex((ident["pan"] + "01")[-16:])
    mk = root
    for f in (city[:2].encode() + b"0000sh", city.encode() + b"sx", panf):
        mk = crypto.diversify(mk, f, alg)
    bs = 8 if alg == 1 else 16
    sk = crypto.encrypt(mk, (atc.to_bytes(2, "big") + bytes(6)).ljust(bs, b"\x00"), alg)
    d = data + bytes.fromhex("1C00") + atc.to_bytes(2, "big")
    d += b"\x80" + b"\x00" * (-(len(d) + 1) % bs)
    last = crypto.cbc_last_block(sk, d, alg)
    return last if bs == 8 else bytes(a ^ b for a, b in zip(last[:8], last[8:], strict=True))


@pytest.mark.parametrize("algorithm", ["SM4", "3DES"])
def test_generate_ac_arqc_checks_with_the_documented_recipe(algorithm: str) -> None:
    card = make_card("CCB", algorithm=algorithm)
    ident = card.image.identity
    atcs = []
    for _ in range(3):
        emv_read(card)
        resp, sw = tx(card, b"\x80\xae\x80\x00\x1d" + CDOL1_DATA + b"\x00")
        assert sw == 0x9000
        cid = tlv.find(resp, 0x77, 0x9F27).value  # type: ignore[union-attr]
        atc = int.from_bytes(tlv.find(resp, 0x77, 0x9F36).value, "big")  # type: ignore[union-attr]
        ac = tlv.find(resp, 0x77, 0x9F26).value  # type: ignore[union-attr]
        assert cid == b"\x80"
        assert ac == _arqc_by_the_recipe(ident, atc, CDOL1_DATA, card.image.algorithm)
        atcs.append(atc)
        card.reset()
    assert atcs == sorted(set(atcs)) and atcs[0] >= 1
    assert CardImage.from_doc(card.store.load()).atc == atcs[-1]


def test_tc_and_aac_as_asked_and_no_second_generate_ac_after_them() -> None:
    card = make_card("CCB")
    emv_read(card)
    resp, sw = tx(card, b"\x80\xae\x40\x00\x1d" + CDOL1_DATA)
    assert sw == 0x9000 and tlv.find(resp, 0x77, 0x9F27).value == b"\x40"  # type: ignore[union-attr]
    # a TC ends the transaction (EMV Book 3 §6.5.5.4): no completion follows
    second = b"00" + CDOL1_DATA + bytes(8) + b"00"
    assert tx(card, b"\x80\xae\x00\x00\x29" + second)[1] == 0x6985
    card.reset()
    emv_read(card)
    resp, sw = tx(card, b"\x80\xae\x00\x00\x1d" + CDOL1_DATA)
    assert sw == 0x9000 and tlv.find(resp, 0x77, 0x9F27).value == b"\x00"  # type: ignore[union-attr]
    assert tx(card, b"\x80\xae\xc0\x00\x1d" + CDOL1_DATA)[1] == 0x6A86


def test_generate_ac_needs_gpo_and_right_lengths() -> None:
    card = make_card("CCB")
    tx(card, b"\x00\xa4\x04\x00\x08" + AID)
    assert tx(card, b"\x80\xae\x80\x00\x1d" + CDOL1_DATA)[1] == 0x6985
    assert tx(card, "80A80000028300")[1] == 0x6700
    tx(card, "80A800000483020156")
    assert tx(card, b"\x80\xae\x80\x00\x05" + CDOL1_DATA[:5])[1] == 0x6700


def test_not_activated_bank_card_refuses_transactions_until_pin_change() -> None:
    issued = make_issued("ICBC")
    card = VirtualCard.from_doc(issued.doc)
    assert card.image.activated is False
    tx(card, b"\x00\xa4\x04\x00\x08" + AID)
    assert tx(card, "80A800000483020156")[1] == 0x6985
    assert tx(card, "805E010007123456FF864200")[1] == 0x9000
    assert tx(card, "80A800000483020156")[1] == 0x9000


def test_get_data() -> None:
    card = make_card("CCB")
    emv_read(card)
    assert tx(card, "80CA9F3600") == (bytes.fromhex("9F360200") + b"\x01", 0x9000)
    assert tx(card, "80CA9F1700") == (bytes.fromhex("9F170103"), 0x9000)
    assert tx(card, "80CA9F4F00")[1] == 0x6A88

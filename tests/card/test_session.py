"""The real terminal session of spec/card.md §5, command by command, plus the FCI and T=0."""

from __future__ import annotations

import pytest

from apdu import atr as atrmod
from apdu import codec
from apdu.command import CommandApdu
from apdu.iface import CardLike
from apdu.t0 import transceive
from card.cos import VirtualCard
from card.issue import Holder
from tests.card.helpers import (
    SSSE_NAME,
    ZHANG_SSN,
    Terminal,
    make_card,
    make_issued,
    make_psam,
    ssn,
    tx,
)


@pytest.mark.parametrize("algorithm,alg_id", [("SM4", 0x03), ("3DES", 0x01)])
def test_section5_session_on_a_300_card(algorithm: str, alg_id: int) -> None:
    issued = make_issued("CCB", "3.00", algorithm=algorithm)
    card = VirtualCard.from_doc(issued.doc)
    psam = make_psam()
    term = Terminal(card, psam)
    ident = card.image.identity

    # SELECT SSSE: the FCI of spec/card.md §3, byte for byte
    fci, sw = tx(card, b"\x00\xa4\x04\x00\x0f" + SSSE_NAME + b"\x00")
    assert sw == 0x9000
    assert fci == (bytes.fromhex("6F1C840F") + SSSE_NAME
                   + bytes.fromhex("A50988011E9F0C038601") + bytes([alg_id]))
    # SELECT EF05
    assert tx(card, "00A4020002EF05") == (b"", 0x9000)
    # READ RECORD tags 01, 03, 07 (Le = 2 + len)
    rec01, sw = tx(card, "00B2010012")
    assert sw == 0x9000 and rec01[:2] == b"\x01\x10"
    assert codec.CardIdCode.from_bytes(rec01[2:]).to_hex() == ident["card_id_code"]
    assert tx(card, "00B2030006") == (b"\x03\x04" + b"3.00", 0x9000)
    rec07, sw = tx(card, "00B207000B")
    assert sw == 0x9000 and rec07[2:].decode() == ident["card_number"]
    assert codec.card_number_valid(rec07[2:].decode())
    # GET CHALLENGE x2 -> INTERNAL AUTHENTICATE, checked by the PSAM
    assert term.internal_auth() == 0x9000
    # EF06 is key-protected on a 3.00 card
    assert tx(card, "00A4020002EF06") == (b"", 0x9000)
    assert tx(card, "00B2080014")[1] == 0x6982
    # GET CHALLENGE x2 -> EXTERNAL AUTHENTICATE kid 0A (auth data from the PSAM)
    assert term.external_auth() == 0x9000
    # SELECT EF06, READ RECORD 08, 09, 4E
    assert tx(card, "00A4020002EF06") == (b"", 0x9000)
    r08, sw = tx(card, "00B2080014")
    assert sw == 0x9000 and r08[2:].decode() == ZHANG_SSN
    r09, sw = tx(card, "00B2090020")
    assert sw == 0x9000
    r4e, sw = tx(card, "00B24E0016")
    assert sw == 0x9000
    assert codec.join_name(r09[2:], r4e[2:]) == "张三"
    # VERIFY
    assert tx(card, "00200000")[1] == 0x63C3
    assert tx(card, "0020000003" + issued.initial_pin) == (b"", 0x9000)
    assert tx(card, "00200000") == (b"", 0x9000)


def test_wrong_le_answers_6cxx_with_the_exact_length() -> None:
    card = make_card()
    tx(card, b"\x00\xa4\x04\x00\x0f" + SSSE_NAME)
    tx(card, "00A4020002EF05")
    assert tx(card, "00B2010000")[1] == 0x6C12
    assert tx(card, "00B2010010")[1] == 0x6C12
    assert tx(card, "00B20100")[1] == 0x6C12
    assert tx(card, "00B2500012")[1] == 0x6A83


def test_generation_200_reads_ef06_freely_but_not_the_photo() -> None:
    card = make_card("ICBC", "2.00")
    assert card.image.algorithm == 0x01
    tx(card, b"\x00\xa4\x04\x00\x0f" + SSSE_NAME)
    tx(card, "00A4020002EF06")
    assert tx(card, "00B2080014")[0][2:].decode() == ZHANG_SSN
    assert tx(card, "00B0880000")[1] == 0x6982


def test_photo_readable_after_external_auth_is_a_jpeg() -> None:
    from PIL import Image

    card, psam = make_card(), make_psam()
    term = Terminal(card, psam)
    tx(card, b"\x00\xa4\x04\x00\x0f" + SSSE_NAME)
    assert term.external_auth() == 0x9000
    photo = b""
    for offset in range(0, 0x1000, 0x100):
        p1, p2 = offset >> 8, offset & 0xFF
        if offset == 0:
            chunk, sw = tx(card, bytes([0x00, 0xB0, 0x88, 0x00, 0x00]))
        else:
            chunk, sw = tx(card, bytes([0x00, 0xB0, p1, p2, 0x00]))
        assert sw == 0x9000 and len(chunk) == 0x100
        photo += chunk
    import io

    from card.photo import photo_from_file

    img = Image.open(io.BytesIO(photo_from_file(photo)))
    assert img.format == "JPEG" and img.size[0] > 40
    # beyond the end of the file
    assert tx(card, "00B0100001")[1] == 0x6B00


def test_long_name_uses_the_extension_tag_4e() -> None:
    long_name = "欧阳" + "娜" * 18  # 40 GBK bytes
    card = make_card("BOC", "2.00", holder=Holder(long_name, ssn("37080219900202002")))
    tx(card, b"\x00\xa4\x04\x00\x0f" + SSSE_NAME)
    tx(card, "00A4020002EF06")
    r09, _ = tx(card, "00B2090020")
    r4e, _ = tx(card, "00B24E0016")
    assert r4e[2:].rstrip(b"\x00")
    assert codec.join_name(r09[2:], r4e[2:]) == long_name


def test_t0_card_answers_61xx_and_serves_get_response() -> None:
    card = make_card(t0=True)
    atr = atrmod.parse(card.atr())
    assert atr.protocols == (0,)
    hist = bytes.fromhex(card.image.identity["historical"])
    assert card.atr() == bytes.fromhex("3B6D0000") + hist
    first = card.transmit(b"\x00\xa4\x04\x00\x0f" + SSSE_NAME)
    assert first == bytes.fromhex("611E")
    rest = card.transmit(bytes.fromhex("00C000001E"))
    assert rest[-2:] == b"\x90\x00" and rest[:2] == b"\x6f\x1c"
    # whole exchange through the reader-side T=0 helper
    out = transceive(bytes.fromhex("00A4020002EF05"), card.transmit)
    assert out == b"\x90\x00"
    out = transceive(bytes.fromhex("00B2010000"), card.transmit)
    assert out[-2:] == b"\x90\x00" and len(out) == 0x12 + 2


def test_t1_card_announces_t1_in_its_atr() -> None:
    card = make_card()
    parsed = atrmod.parse(card.atr())
    assert parsed.protocols == (1,)
    assert parsed.historical == bytes.fromhex(card.image.identity["historical"])
    assert atrmod.area_code_prefix(card.atr()) == "3708"


def test_dfs_of_the_ssse_tree_are_selectable_by_aid_and_fid() -> None:
    card = make_card()
    for aid in ("D15600000500", "D15600000501", "D15600000502", "D15600000503",
                "D15600000504"):
        fci, sw = tx(card, "00A4040006" + aid)
        assert sw == 0x9000 and bytes.fromhex(aid) in fci
    tx(card, b"\x00\xa4\x04\x00\x0f" + SSSE_NAME)
    assert tx(card, "00A4000002DF04")[1] == 0x9000
    assert tx(card, "00A4020002EF08")[1] == 0x9000
    assert tx(card, "00A4020002EF99")[1] == 0x6A82
    assert tx(card, "00A4000000")[1] == 0x9000  # MF


def test_section5_session_with_apdu_builders_over_t0() -> None:
    """What a reader does: apdu.commands builders, apdu.t0.transceive, card and PSAM on T=0."""
    from apdu import commands as C

    issued = make_issued("CCB", "3.00", algorithm="SM4")
    card = VirtualCard.from_doc(issued.doc, t0=True)
    psam = make_psam()
    psam.t0 = True

    def run(dev: CardLike, cmd: CommandApdu) -> tuple[bytes, int]:
        out = transceive(cmd.to_bytes(), dev.transmit)
        return out[:-2], int.from_bytes(out[-2:], "big")

    factor = atrmod.diversification_factor(card.atr())
    fci, sw = run(card, C.select_ssse())
    assert sw == 0x9000 and fci[-1] == 0x03
    assert run(card, C.select_ef(C.EF05))[1] == 0x9000
    for tag in (0x01, 0x03, 0x07):
        rec, sw = run(card, C.read_record_by_tag(tag))
        assert sw == 0x9000 and rec[0] == tag
    r1 = run(card, C.get_challenge(8))[0]
    r2 = run(card, C.get_challenge(8))[0]
    s, sw = run(card, C.internal_authenticate(r1, r2))
    assert sw == 0x9000
    assert run(psam, C.delivery_session_key(0x31, 0x01, factor, r1))[1] == 0x9000
    assert transceive(b"\x80\xfa\x09\x00\x10" + r2 + s, psam.transmit) == b"\x90\x00"
    c1 = run(card, C.get_challenge(8))[0]
    c2 = run(card, C.get_challenge(8))[0]
    assert run(psam, C.delivery_session_key(0x32, C.KID_RKSSSE, factor, c1))[1] == 0x9000
    x = transceive(b"\x80\xfa\x08\x00\x08" + c2 + b"\x08", psam.transmit)[:-2]
    assert run(card, C.external_authenticate(C.KID_RKSSSE, x, c2))[1] == 0x9000
    assert run(card, C.select_ef(C.EF06))[1] == 0x9000
    names = {}
    for tag in (0x08, 0x09, 0x4E):
        rec, sw = run(card, C.read_record_by_tag(tag))
        assert sw == 0x9000
        names[tag] = rec[2:]
    assert names[0x08].decode() == ZHANG_SSN
    assert codec.join_name(names[0x09], names[0x4E]) == "张三"
    assert run(card, C.verify(None))[1] == 0x63C3
    assert run(card, C.verify(issued.initial_pin))[1] == 0x9000
    tn, sw = run(psam, C.psam_select_terminal_file())
    assert sw == 0x9000
    tn, sw = run(psam, C.psam_read_terminal_number())
    assert sw == 0x9000 and codec.cn_decode(tn) == "370800000007"

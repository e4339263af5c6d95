"""Issuer authentication in the second GENERATE AC (card/pboc.py, EMV Book 2 §8.2): the
card's ARPC check agrees with the host's ARPC (ledger/bank.py), a forged ARPC declines."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apdu import tlv
from card import crypto, pboc
from card import keys as card_keys
from card.cos import VirtualCard
from ledger import bank
from tests.card.helpers import make_card, tx

AID = bytes.fromhex("A000000333010101")
CDOL1_DATA = bytes.fromhex(
    "000000001234" "000000000000" "0156" "0000000000" "0156" "240506" "00" "CAFEBABE")
ALGS = {"3DES": crypto.ALG_3DES, "SM4": crypto.ALG_SM4}


def test_arpc_known_answer_3des() -> None:
    """ARPC method 1 from the DES known answer of FIPS 81 (key 0123456789ABCDEF,
    "Now is t" → 3FA40E8A984D4815): with ATC 0 the session key is E(MK, 00×8), so the
    ARPC is the DES of ARQC ⊕ (ARC ‖ 00×6) under that key."""
    mk = bytes.fromhex("0123456789ABCDEF0123456789ABCDEF")
    sk = crypto.encrypt(mk, bytes(8), crypto.ALG_3DES)
    # choose the ARQC so that ARQC ⊕ (ARC ‖ 00×6) is "Now is t"
    arc = b"00"
    arqc = bytes(a ^ b for a, b in zip(b"Now is t", arc + bytes(6), strict=True))
    expected = crypto.encrypt(sk, b"Now is t", crypto.ALG_3DES)
    assert pboc.arpc(mk, 0, arqc, arc, crypto.ALG_3DES) == expected
    assert bank.arpc(mk, 0, arqc, bank.ALG_3DES, arc) == expected
    assert crypto.encrypt(bytes.fromhex("0123456789ABCDEF"), b"Now is t",
                          crypto.ALG_3DES).hex().upper() == "3FA40E8A984D4815"


@settings(max_examples=60, deadline=None)
@given(alg=st.sampled_from([crypto.ALG_3DES, crypto.ALG_SM4]), mk=st.binary(min_size=16,
       max_size=16), atc=st.integers(0, 0xFFFF), arqc=st.binary(min_size=8, max_size=8),
       arc=st.sampled_from([b"00", b"05", b"51", b"\x00\x00"]))
def test_card_arpc_agrees_with_the_host(alg: int, mk: bytes, atc: int, arqc: bytes,
                                        arc: bytes) -> None:
    assert pboc.arpc(mk, atc, arqc, arc, alg) == bank.arpc(mk, atc, arqc, alg, arc)


def _arqc(card: VirtualCard) -> tuple[int, bytes]:
    tx(card, b"\x00\xa4\x04\x00\x08" + AID + b"\x00")
    assert tx(card, "80A800000483020156")[1] == 0x9000
    resp, sw = tx(card, b"\x80\xae\x80\x00\x1d" + CDOL1_DATA)
    assert sw == 0x9000
    cid = tlv.find(resp, 0x77, 0x9F27)
    assert cid is not None and cid.value == b"\x80"
    atc = int.from_bytes(tlv.find(resp, 0x77, 0x9F36).value, "big")  # type: ignore[union-attr]
    return atc, tlv.find(resp, 0x77, 0x9F26).value  # type: ignore[union-attr]


def _host_arpc(card: VirtualCard, atc: int, arqc: bytes) -> bytes:
    """The host's side, from the issuer root key only (ledger/bank.py recipe)."""
    ident = card.image.identity
    alg = card.image.algorithm
    mk = bank.card_key(card_keys.test_root_key("AC", alg), alg, ident["area_code"], ident["pan"], 1)
    assert bank.verify_arqc(mk, atc, CDOL1_DATA, alg, arqc)
    return bank.arpc(mk, atc, arqc, alg)


def _complete(card: VirtualCard, p1: int, arc: bytes, issuer: bytes) -> tuple[int, bytes]:
    data = arc + CDOL1_DATA + issuer
    assert len(data) == pboc.CDOL2_LEN
    resp, sw = tx(card, bytes([0x80, 0xAE, p1, 0x00, len(data)]) + data)
    assert sw == 0x9000
    cid = tlv.find(resp, 0x77, 0x9F27).value[0]  # type: ignore[union-attr]
    iad = tlv.find(resp, 0x77, 0x9F10).value  # type: ignore[union-attr]
    return cid, iad[4:7]


@pytest.mark.parametrize("algorithm", ["SM4", "3DES"])
def test_host_arpc_gives_tc(algorithm: str) -> None:
    card = make_card("CCB", algorithm=algorithm)
    atc, arqc = _arqc(card)
    good = _host_arpc(card, atc, arqc)
    cid, cvr = _complete(card, 0x40, b"00", good + b"00")
    assert cid == pboc.TC
    assert cvr[0] & pboc.CVR_ISSUER_AUTH_FAILED == 0 and cvr[0] & 0xF0 == 0x60  # TC after ARQC
    # the transaction is over: no third GENERATE AC
    assert tx(card, b"\x80\xae\x40\x00\x29" + b"00" + CDOL1_DATA + good + b"00")[1] == 0x6985


@pytest.mark.parametrize("algorithm", ["SM4", "3DES"])
def test_forged_arpc_gives_aac_and_marks_the_cvr(algorithm: str) -> None:
    card = make_card("CCB", algorithm=algorithm)
    atc, arqc = _arqc(card)
    good = _host_arpc(card, atc, arqc)
    forged = bytes([good[0] ^ 0x01]) + good[1:]
    cid, cvr = _complete(card, 0x40, b"00", forged + b"00")
    assert cid == pboc.AAC
    assert cvr[0] & pboc.CVR_ISSUER_AUTH_FAILED and cvr[0] & 0xF0 == 0x20  # AAC after ARQC


def test_arpc_of_another_transaction_or_arc_is_refused() -> None:
    card = make_card("CCB")
    atc, arqc = _arqc(card)
    good = _host_arpc(card, atc, arqc)
    # an ARPC bound to another ARC does not verify; a declined ARC never gives TC
    assert _complete(card, 0x40, b"05", good + b"05")[0] == pboc.AAC
    card.reset()
    atc2, _ = _arqc(card)
    assert atc2 == atc + 1
    # the previous transaction's ARPC (replay) does not verify for the new ARQC
    assert _complete(card, 0x40, b"00", good + b"00") == (pboc.AAC, bytes([0x28, 0, 0]))


def test_aac_when_the_terminal_asks_aac_even_with_a_good_arpc() -> None:
    card = make_card("CCB")
    atc, arqc = _arqc(card)
    cid, cvr = _complete(card, 0x00, b"00", _host_arpc(card, atc, arqc) + b"00")
    assert cid == pboc.AAC and cvr[0] & pboc.CVR_ISSUER_AUTH_FAILED == 0


def test_second_generate_ac_shape() -> None:
    card = make_card("CCB")
    _arqc(card)
    # CDOL2 data without the Issuer Authentication Data is the wrong length
    assert tx(card, b"\x80\xae\x40\x00\x1f" + b"00" + CDOL1_DATA)[1] == 0x6700
    # a second ARQC is not a completion
    data = b"00" + CDOL1_DATA + bytes(10)
    assert tx(card, b"\x80\xae\x80\x00\x29" + data)[1] == 0x6A86
    assert bytes.fromhex("8A02") + pboc.CDOL1 + bytes.fromhex("910A") == pboc.CDOL2

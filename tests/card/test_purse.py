"""The DF04 offline purse (spec/card.md §6) with the PSAM computing MAC1 and checking MAC2."""

from __future__ import annotations

import pytest

from apdu import commands as C
from card import crypto, keys
from card.cos import VirtualCard
from card.errors import CardRemoved
from card.image import CardImage
from tests.card.helpers import Terminal, make_card, make_psam, tx

TERMINAL = bytes.fromhex("370800000007")
WHEN = bytes.fromhex("20240506103000")


def open_df04(card: VirtualCard) -> None:
    assert tx(card, "0020000003123456")[1] == 0x9000
    assert tx(card, C.select_df("DF04").to_bytes())[1] == 0x9000


def load(card: VirtualCard, fen: int) -> bytes:
    """INITIALIZE/CREDIT FOR LOAD, with MAC2 computed as the host would (DLK)."""
    out, sw = tx(card, C.initialize_for_load(1, fen, TERMINAL).to_bytes())
    assert sw == 0x9000
    balance, seq, alg, rnd, mac1 = out[:4], out[4:6], out[7], out[8:12], out[12:16]
    ident = card.image.identity
    dlk = keys.card_key("DLK", alg, ident["area_code"], bytes.fromhex(ident["historical"]))
    sk = crypto.session_key(dlk, rnd + seq, alg)
    assert mac1 == crypto.mac(sk, balance + fen.to_bytes(4, "big") + b"\x02" + TERMINAL, alg)
    mac2 = crypto.mac(sk, fen.to_bytes(4, "big") + b"\x02" + TERMINAL + WHEN, alg)
    tac, sw = tx(card, C.credit_for_load(WHEN, mac2).to_bytes())
    assert sw == 0x9000
    return tac


def balance(card: VirtualCard, which: int = 1) -> int:
    out, sw = tx(card, C.get_balance(which).to_bytes())
    assert sw == 0x9000
    return int.from_bytes(out, "big")


def purchase(card: VirtualCard, term: Terminal, account: int, self_pay: int, pooled: int,
             pull: bool = False) -> tuple[bytes, int]:
    out, sw = tx(card, C.initialize_for_purchase(1, account, self_pay, pooled,
                                                 TERMINAL).to_bytes())
    assert sw == 0x9000, hex(sw)
    seq, alg, rnd = out[4:6], out[10], out[11:15]
    data = rnd + seq + account.to_bytes(4, "big") + b"\x06" + WHEN + b"\x01" + bytes([alg])
    got, sw = tx(term.psam, b"\x80\x70\x01\x00\x1c" + data + term.factor)
    assert sw == 0x9000
    tsn, mac1 = got[:4], got[4:]
    if pull:
        card.faults.pull_at(0)
        with pytest.raises(CardRemoved):
            card.transmit(C.debit_for_purchase(tsn, WHEN, mac1).to_bytes())
        return b"", int.from_bytes(seq, "big")
    res, sw = tx(card, C.debit_for_purchase(tsn, WHEN, mac1).to_bytes())
    assert sw == 0x9000, hex(sw)
    tac, mac2 = res[:4], res[4:]
    assert tx(term.psam, C.credit_sam_for_purchase(mac2).to_bytes())[1] == 0x9000
    return tac, int.from_bytes(seq, "big")


@pytest.mark.parametrize("algorithm", ["SM4", "3DES"])
def test_load_purchase_and_the_transaction_log(algorithm: str) -> None:
    card = make_card(algorithm=algorithm)
    term = Terminal(card, make_psam())
    open_df04(card)
    load(card, 10_000)
    assert balance(card) == 10_000
    purchase(card, term, 2_500, 800, 1_700)
    assert (balance(card, 1), balance(card, 2), balance(card, 3)) == (7_500, 800, 1_700)
    rec, sw = tx(card, "00B2014400")  # SFI 8, record 1 = most recent
    assert sw == 0x9000 and len(rec) == 28
    assert rec[:2] == b"\x00\x00" and rec[2:3] == b"2" and rec[3:9] == TERMINAL
    assert int.from_bytes(rec[16:20], "big") == 2_500
    rec2, _ = tx(card, "00B2024400")
    assert rec2[2:3] == b"1" and int.from_bytes(rec2[16:20], "big") == 10_000
    durable = CardImage.from_doc(card.store.load())
    assert durable.purse["offline_seq"] == 1


def test_insufficient_funds_and_order() -> None:
    card = make_card()
    term = Terminal(card, make_psam())
    open_df04(card)
    assert tx(card, C.initialize_for_purchase(1, 1, 0, 0, TERMINAL).to_bytes())[1] == 0x9401
    assert tx(card, C.debit_for_purchase(bytes(4), WHEN, bytes(4)).to_bytes())[1] == 0x6901
    load(card, 100)
    tx(card, C.initialize_for_purchase(1, 50, 0, 0, TERMINAL).to_bytes())
    tx(card, C.get_balance().to_bytes())  # any other command returns the purse to idle
    assert tx(card, C.debit_for_purchase(bytes(4), WHEN, bytes(4)).to_bytes())[1] == 0x6901
    tx(card, C.initialize_for_purchase(1, 50, 0, 0, TERMINAL).to_bytes())
    assert tx(card, C.debit_for_purchase(bytes(4), WHEN, bytes(4)).to_bytes())[1] == 0x9302
    assert balance(card) == 100
    assert tx(card, C.initialize_for_purchase(2, 50, 0, 0, TERMINAL).to_bytes())[1] == 0x9403
    del term


def test_purse_needs_df04_and_the_pin() -> None:
    card = make_card()
    assert tx(card, C.get_balance().to_bytes())[1] == 0x6985
    tx(card, C.select_df("DF04").to_bytes())
    assert tx(card, C.get_balance().to_bytes())[1] == 0x6982


def test_transaction_proof_after_the_card_was_pulled() -> None:
    card = make_card()
    term = Terminal(card, make_psam())
    open_df04(card)
    load(card, 1_000)
    _, seq = purchase(card, term, 300, 100, 200, pull=True)
    card.insert()
    card.power_on()
    open_df04(card)
    assert balance(card) == 700  # the debit was committed before the answer was lost
    proof, sw = tx(card, C.get_transaction_proof(0x06, seq).to_bytes())
    assert sw == 0x9000 and len(proof) == 8
    assert tx(term.psam, C.credit_sam_for_purchase(proof[:4]).to_bytes())[1] == 0x9000
    assert tx(card, C.get_transaction_proof(0x06, seq + 1).to_bytes())[1] == 0x9403

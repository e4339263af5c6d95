"""The offline purse of DF04 (spec/card.md §6; PBOC electronic purse style).

Balances live in DF04 EF06 (offline settlement info, sscard layout): record ``90`` balance,
``91`` annual self-pay, ``92`` annual pooled fund, each b4 fen. Counters and the last
transaction proof live in the image section ``purse``. Every purse command needs DF04 as the
current DF (else 6985) and the PIN verified (else 6982). Commands out of order answer 6901
and return the purse to idle.

Purchase (key index 01, card key ``DPK``; the PSAM computes MAC1 and checks MAC2, see
:mod:`card.psam`):

* INITIALIZE FOR PURCHASE ``B0 28 01 01``: key index 1 ‖ account pay 4 ‖ self pay 4 ‖ pooled
  pay 4 ‖ terminal number 6 → balance 4 ‖ offline sequence 2 ‖ overdraft limit 3 ‖ key
  version 1 ‖ algorithm id 1 ‖ random 4. Balance below the account pay: 9401.
* DEBIT FOR PURCHASE ``B0 2C 01 00``: terminal sequence 4 ‖ time cn7 ‖ MAC1 4 → TAC 4 ‖ MAC2 4.
  ``SK = session_key(DPK, random ‖ offline seq ‖ terminal seq[2:4])``;
  ``MAC1 = mac(SK, account pay ‖ 06 ‖ terminal 6 ‖ time 7)`` (wrong: 9302);
  ``MAC2 = mac(SK, account pay)``; ``TAC = mac(DTK, account pay ‖ 06 ‖ terminal 6 ‖
  terminal seq 4 ‖ time 7)``. In one atomic commit the card debits the balance, adds the
  self-pay and pooled amounts to the annual totals, increments the offline sequence, writes
  the 28-byte record into the cyclic transaction log DF04 EF08 (spec/card.md §4 layout:
  sequence b2 ‖ type "2" ‖ terminal cn6 ‖ time cn7 ‖ account b4 ‖ self-pay b4 ‖ pooled b4) and
  keeps the proof.
* GET TRANSACTION PROOF ``B0 2E 00 type`` with the card sequence (2 bytes) → MAC2 ‖ TAC of
  that transaction (after the card was pulled before the terminal got them); unknown: 9403.

Load (key index 01, card key ``DLK``; the host holds the key):

* INITIALIZE FOR LOAD ``B0 28 00 01``: key index 1 ‖ amount 4 ‖ terminal 6 → balance 4 ‖
  online sequence 2 ‖ key version 1 ‖ algorithm id 1 ‖ random 4 ‖ MAC1 4, with
  ``SK = session_key(DLK, random ‖ online seq)`` and ``MAC1 = mac(SK, balance ‖ amount ‖ 02 ‖
  terminal 6)``.
* CREDIT FOR LOAD ``B0 2A 00 00``: time 7 ‖ MAC2 4 with ``MAC2 = mac(SK, amount ‖ 02 ‖
  terminal 6 ‖ time 7)`` (wrong: 9302) → TAC 4 = ``mac(DTK, balance after ‖ online seq ‖
  amount ‖ 02 ‖ terminal 6 ‖ time 7)``; the credit is written to DF04 EF08 with type "1".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from apdu import codec
from apdu.command import CommandApdu
from card import crypto
from card.fs import DedicatedFile, ElementaryFile

if TYPE_CHECKING:
    from card.cos import VirtualCard

Answer = tuple[bytes, int]
DF04_AID = bytes.fromhex("D15600000503")
TYPE_PURCHASE = 0x06
TYPE_LOAD = 0x02
MAX_BALANCE = 0x7FFFFFFF


@dataclass
class PurseState:
    """Volatile: what INITIALIZE started (``kind`` 'purchase' or 'load')."""

    kind: str = ""
    random: bytes = b""
    amount: int = 0
    self_pay: int = 0
    pooled: int = 0
    terminal: bytes = b""
    session: bytes = b""


def _df04(card: VirtualCard) -> DedicatedFile | None:
    df = card.current_df
    return df if df.name == DF04_AID else None


def _ef(df: DedicatedFile, fid: int) -> ElementaryFile | None:
    f = df.child_by_fid(fid)
    return f if isinstance(f, ElementaryFile) else None


def _get(ef06: ElementaryFile, tag: int) -> int:
    hit = ef06.record_by_tag(tag)
    return int.from_bytes(hit[1][2:6], "big") if hit else 0


def _set(ef06: ElementaryFile, tag: int, value: int) -> None:
    hit = ef06.record_by_tag(tag)
    if hit is not None:
        ef06.records[hit[0]] = bytes([tag, 4]) + value.to_bytes(4, "big")


def _guard(card: VirtualCard) -> tuple[DedicatedFile, ElementaryFile] | int:
    """DF04 and its EF06 when the purse may be used now, else the status word."""
    df = _df04(card)
    if df is None:
        return 0x6985
    ef06 = _ef(df, 0xEF06)
    if ef06 is None:
        return 0x6A82
    if not card.may("pin"):
        return 0x6982
    return df, ef06


def _idle(card: VirtualCard, code: int) -> Answer:
    card.purse_state = PurseState()
    return b"", code


def get_balance(card: VirtualCard, cmd: CommandApdu) -> Answer:
    if cmd.p1 != 0x00 or cmd.p2 not in (0x01, 0x02, 0x03):
        return b"", 0x6A86
    g = _guard(card)
    if isinstance(g, int):
        return b"", g
    ef06 = g[1]
    return _get(ef06, 0x8F + cmd.p2).to_bytes(4, "big"), 0x9000


def initialize(card: VirtualCard, cmd: CommandApdu) -> Answer:
    card.purse_state = PurseState()
    if (cmd.p1, cmd.p2) not in ((0x01, 0x01), (0x00, 0x01)):
        return b"", 0x6A86
    g = _guard(card)
    if isinstance(g, int):
        return b"", g
    ef06 = g[1]
    purchase = cmd.p1 == 0x01
    if len(cmd.data) != (19 if purchase else 11):
        return b"", 0x6700
    if cmd.data[0] != 0x01:
        return b"", 0x9403
    alg = card.image.algorithm
    balance = _get(ef06, 0x90)
    random = card.rng(4)
    purse = card.image.purse
    if purchase:
        amount = int.from_bytes(cmd.data[1:5], "big")
        self_pay = int.from_bytes(cmd.data[5:9], "big")
        pooled = int.from_bytes(cmd.data[9:13], "big")
        terminal = cmd.data[13:19]
        if amount > balance:
            return b"", 0x9401
        card.purse_state = PurseState("purchase", random, amount, self_pay, pooled, terminal)
        seq = purse["offline_seq"].to_bytes(2, "big")
        return (balance.to_bytes(4, "big") + seq + b"\x00\x00\x00" + b"\x01" + bytes([alg])
                + random), 0x9000
    amount = int.from_bytes(cmd.data[1:5], "big")
    terminal = cmd.data[5:11]
    if balance + amount > MAX_BALANCE:
        return b"", 0x6A80
    key = card.image.keys.get("DLK")
    if key is None:
        return b"", 0x6A88
    seq = purse["online_seq"].to_bytes(2, "big")
    session = crypto.session_key(key, random + seq, alg)
    mac1 = crypto.mac(session, balance.to_bytes(4, "big") + amount.to_bytes(4, "big")
                      + bytes([TYPE_LOAD]) + terminal, alg)
    card.purse_state = PurseState("load", random, amount, 0, 0, terminal, session)
    return balance.to_bytes(4, "big") + seq + b"\x01" + bytes([alg]) + random + mac1, 0x9000


def _log(df: DedicatedFile, seq: int, kind: str, terminal: bytes, when: bytes, account: int,
         self_pay: int, pooled: int) -> None:
    log = _ef(df, 0xEF08)
    if log is None or log.structure != "cyclic":
        return
    record = (seq.to_bytes(2, "big") + kind.encode("ascii") + terminal + when
              + account.to_bytes(4, "big") + self_pay.to_bytes(4, "big")
              + pooled.to_bytes(4, "big"))
    log.append_cyclic(record)


def _valid_time(when: bytes) -> bool:
    try:
        codec.datetime_decode(when)
    except Exception:
        return False
    return True


def debit_for_purchase(card: VirtualCard, cmd: CommandApdu) -> Answer:
    state = card.purse_state
    if cmd.p1 != 0x01 or cmd.p2 != 0x00:
        return _idle(card, 0x6A86)
    if state.kind != "purchase":
        return _idle(card, 0x6901)
    g = _guard(card)
    if isinstance(g, int):
        return _idle(card, g)
    df, ef06 = g
    if len(cmd.data) != 15:
        return _idle(card, 0x6700)
    tsn, when, mac1 = cmd.data[:4], cmd.data[4:11], cmd.data[11:15]
    if not _valid_time(when):
        return _idle(card, 0x6A80)
    alg = card.image.algorithm
    dpk, dtk = card.image.keys.get("DPK"), card.image.keys.get("DTK")
    if dpk is None or dtk is None:
        return _idle(card, 0x6A88)
    purse = card.image.purse
    seq = purse["offline_seq"]
    session = crypto.session_key(dpk, state.random + seq.to_bytes(2, "big") + tsn[2:], alg)
    amount4 = state.amount.to_bytes(4, "big")
    if crypto.mac(session, amount4 + bytes([TYPE_PURCHASE]) + state.terminal + when,
                  alg) != mac1:
        return _idle(card, 0x9302)
    mac2 = crypto.mac(session, amount4, alg)
    tac = crypto.mac(dtk, amount4 + bytes([TYPE_PURCHASE]) + state.terminal + tsn + when, alg)
    _set(ef06, 0x90, _get(ef06, 0x90) - state.amount)
    _set(ef06, 0x91, min(_get(ef06, 0x91) + state.self_pay, MAX_BALANCE))
    _set(ef06, 0x92, min(_get(ef06, 0x92) + state.pooled, MAX_BALANCE))
    _log(df, seq, "2", state.terminal, when, state.amount, state.self_pay, state.pooled)
    purse["offline_seq"] = (seq + 1) & 0xFFFF
    purse["last"] = {"seq": seq, "type": TYPE_PURCHASE,
                     "proof": (mac2 + tac).hex().upper()}
    card.purse_state = PurseState()
    card.commit()
    return tac + mac2, 0x9000


def credit_for_load(card: VirtualCard, cmd: CommandApdu) -> Answer:
    state = card.purse_state
    if cmd.p1 or cmd.p2:
        return _idle(card, 0x6A86)
    if state.kind != "load":
        return _idle(card, 0x6901)
    g = _guard(card)
    if isinstance(g, int):
        return _idle(card, g)
    df, ef06 = g
    if len(cmd.data) != 11:
        return _idle(card, 0x6700)
    when, mac2 = cmd.data[:7], cmd.data[7:]
    if not _valid_time(when):
        return _idle(card, 0x6A80)
    alg = card.image.algorithm
    amount4 = state.amount.to_bytes(4, "big")
    body = amount4 + bytes([TYPE_LOAD]) + state.terminal + when
    if crypto.mac(state.session, body, alg) != mac2:
        return _idle(card, 0x9302)
    dtk = card.image.keys.get("DTK")
    if dtk is None:
        return _idle(card, 0x6A88)
    purse = card.image.purse
    seq = purse["online_seq"]
    balance = _get(ef06, 0x90) + state.amount
    tac = crypto.mac(dtk, balance.to_bytes(4, "big") + seq.to_bytes(2, "big") + body, alg)
    _set(ef06, 0x90, balance)
    _log(df, seq, "1", state.terminal, when, state.amount, 0, 0)
    purse["online_seq"] = (seq + 1) & 0xFFFF
    purse["last"] = {"seq": seq, "type": TYPE_LOAD, "proof": tac.hex().upper()}
    card.purse_state = PurseState()
    card.commit()
    return tac, 0x9000


def get_transaction_proof(card: VirtualCard, cmd: CommandApdu) -> Answer:
    card.purse_state = PurseState()
    if cmd.p1 != 0x00 or cmd.p2 not in (TYPE_PURCHASE, TYPE_LOAD):
        return b"", 0x6A86
    if len(cmd.data) != 2:
        return b"", 0x6700
    if isinstance(g := _guard(card), int):
        return b"", g
    last = card.image.purse.get("last")
    if (not last or last["type"] != cmd.p2
            or last["seq"] != int.from_bytes(cmd.data, "big")):
        return b"", 0x9403
    return bytes.fromhex(last["proof"]), 0x9000

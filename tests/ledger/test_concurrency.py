"""Many terminals settling, cancelling and reversing against one person and one pharmacy
at once, with duplicate msgids — on both back ends (spec/host.md §4)."""

from __future__ import annotations

import json
import random
import threading
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ledger.service import HostService
from tests.ledger.helpers import (
    AMOXICILLIN,
    PHARMACY,
    World,
    balances,
    envelope,
    msgid,
    terminal,
    verify,
)

THREADS = 6
PER_THREAD = 10


def test_concurrent_terminals_conserve_money(host: HostService) -> None:
    w = World(host)
    h = w.person(medical_fen=10_000, bank_fen=100_000)
    signs = [terminal(host, PHARMACY).sign_no for _ in range(THREADS)]
    lines = w.lines((AMOXICILLIN, 1, 1250))
    # pre-built settlements: cash/account ones and bank ones with their own cryptograms
    settles: list[dict[str, Any]] = []
    for i in range(THREADS * PER_THREAD):
        bank = i % 3 == 0
        inp = w.pharmacy.druginfo(psn_no=h.psn_no, card_no=h.card_no, card_sn=h.card_sn,
                                  lines=lines, cash_src="bank" if bank else "cash",
                                  use_account=not bank,
                                  bank_auth=h.bank_auth(host, 1250) if bank else None)
        settles.append(envelope(PHARMACY, "2102", inp, sign_no=signs[i % THREADS]))
    answers: dict[str, list[dict[str, Any]]] = defaultdict(list)
    lock = threading.Lock()

    def send(env: dict[str, Any]) -> dict[str, Any]:
        r = host.call(env)
        with lock:
            answers[env["msgid"]].append(r)
        return r

    def worker(t: int) -> None:
        rnd = random.Random(t)
        mine = settles[t * PER_THREAD:(t + 1) * PER_THREAD]
        for env in mine:
            r = send(env)
            if rnd.random() < 0.3:                       # a duplicate from this terminal
                send(env)
            other = settles[rnd.randrange(len(settles))]
            if rnd.random() < 0.3:                       # the same msgid from elsewhere
                send(other)
            if rnd.random() < 0.2:                       # reverse someone's message
                send(envelope(PHARMACY, "2601", {"data": {
                    "psn_no": h.psn_no, "omsgid": other["msgid"], "oinfno": "2102"}},
                    sign_no=signs[t]))
            if r["infcode"] == 0 and rnd.random() < 0.3:  # cancel, sometimes twice
                info = r["output"]["setlinfo"]
                c = envelope(PHARMACY, "2103", {"data": {
                    "setl_id": info["setl_id"], "mdtrt_id": info["mdtrt_id"],
                    "psn_no": h.psn_no}}, sign_no=signs[t])
                send(c)
                if rnd.random() < 0.5:
                    send(c)
            if rnd.random() < 0.1:                       # reversal of an unknown message
                send(envelope(PHARMACY, "2601", {"data": {
                    "psn_no": h.psn_no, "omsgid": msgid(PHARMACY), "oinfno": "2102"}},
                    sign_no=signs[t]))

    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(worker, range(THREADS)))

    # the books balance, balances equal their postings, nothing negative
    assert verify(host) == []
    # exactly one effect per msgid, and every success answer for a msgid is the same
    for mid, rs in answers.items():
        oks = [json.dumps(r, sort_keys=True) for r in rs if r["infcode"] == 0]
        if mid.startswith(PHARMACY) and rs[0]["inf_refmsgid"] == mid:
            kinds = {r["err_code"] for r in rs if r["infcode"] != 0}
            assert kinds <= {"reversed", "already_cancelled", "card_lost",
                             "arqc_replay", "insufficient_funds", ""}, kinds
        assert len(set(oks)) <= 1, mid
    dup = host.store.run(lambda tx: tx.all(
        "SELECT msgid, COUNT(*) FROM entries GROUP BY msgid HAVING COUNT(*) > 1"))
    assert dup == []
    rows = host.store.run(lambda tx: tx.all(
        "SELECT msgid, state, acct_pay, psn_cash_pay, cash_src FROM settlements"))
    assert len({r[0] for r in rows}) == len(rows)
    live = [r for r in rows if r[1] == "settled"]
    bal = balances(host)
    assert bal[f"medical:{h.psn_no}"] == 10_000 - sum(int(r[2]) for r in live)
    assert bal[f"bank:{h.pan}"] == 100_000 - sum(int(r[3]) for r in live if r[4] == "bank")
    assert min(bal.values()) >= 0
    # every settlement that took effect has a success answer for its msgid, or was reversed
    ok_ids = {m for m, rs in answers.items() if any(r["infcode"] == 0 for r in rs)}
    reversed_ids = {str(r[0]) for r in host.store.run(
        lambda tx: tx.all("SELECT omsgid FROM reversals"))}
    for r in rows:
        assert r[0] in ok_ids or r[0] in reversed_ids
    # a bank cryptogram (ATC) never paid twice
    atc_last = host.store.run(lambda tx: tx.one(
        "SELECT atc_last FROM cards WHERE card_no = ?", (h.card_no,)))[0]
    assert sum(1 for r in rows if r[4] == "bank") <= int(atc_last)

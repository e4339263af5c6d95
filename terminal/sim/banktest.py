"""The bank test: Jepsen-style proof that the host's books survive crashes (spec/host.md §4).

N terminal *processes* run random pharmacy sales (2102; a quarter of them paid from the
card's bank account with an ARQC computed by the card's own recipe, :mod:`card.pboc`),
cancels (2103), reversals (2601), top-ups (8109: personal-account credits at the office,
bank deposits at the bank counter), inpatient stays (2401, 2301, 2402, 2304), loss reports
(8103) and card replacements (8105, then 8102 activation for ICBC/ABC/BOC cards) against
``sscard host serve`` over HTTP, for a set time. Each records a history (JSON lines, one per
request): what was asked, its msgid, and its outcome — ``ok``, ``failed`` (the host answered
``infcode -1``) or ``unknown`` (no answer: timeout, connection reset). Some requests are
sent twice with the same msgid (``duplicate``). A terminal that got no answer to a
reversible request sends a 2601 reversal for it, resending the same reversal until the host
answers; a non-reversible request is resent with the same msgid. Before a terminal stops it
resolves whatever is still pending.

The **nemesis** kills the host with SIGKILL every 0.8–2.5 s, at a moment when some terminal
has a request under way (so that each kill cuts a request short), and restarts it; on
PostgreSQL it also crash-stops (``pg_ctl -m immediate``) and restarts the database server
about every other time — only ever a private cluster this test started itself.

The **checker** then reads every history and the database:

1. the books are sound (:func:`ledger.books.verify`): every entry balances, every guarded
   balance equals the sum of its postings; all postings sum to zero — money neither created
   nor destroyed; no personal medical or bank account is negative;
2. no phantom: every journal entry written during the run carries a msgid some terminal sent,
   and no msgid has more than one entry (a duplicate had one effect);
3. every acknowledged settlement, cancel and credit is in the books exactly once, with the
   amounts its answer told the terminal (personal account, bank account, total);
4. every unknown outcome was resolved: a reversed message has no net effect (its settlement
   is cancelled, or it never arrived and has no entry); a resent one is present once;
5. a request that only ever got ``failed`` answers wrote nothing;
6. a duplicate msgid got the first answer again (or a refusal saying it was reversed).

Run: ``python -m terminal.sim.banktest --backend sqlite --seconds 60`` or
``sscard simulate --bank-test --minutes 5 [--backend postgresql]``.
"""

from __future__ import annotations

import argparse
import collections
import json
import multiprocessing as mp
import random
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from card import keys as card_keys
from card import pboc
from card.crypto import ALG_SM4
from ledger import books
from ledger.client import HostClient, HttpTransport, LocalTransport, drug_line
from ledger.errors import HostError, Unavailable
from ledger.money import parse_yuan
from ledger.policy import load_policies
from ledger.populate import holder
from ledger.service import DEFAULT_POLICY_DIR, initialize
from ledger.store import open_store
from terminal.sim.hostproc import HostProcess, PrivateCluster

AREA = "370800"
PHARMACIES = ("P37080000001", "P37080000002")
OFFICE = "S37080000001"
BANK_COUNTERS = {"CCB": "B37080000CCB", "ICBC": "B3708000ICBC", "ABC": "B37080000ABC",
                 "BOC": "B37080000BOC"}
REVERSIBLE = frozenset({"2102", "2103", "2304", "2401"})
HOSPITALS = ("H37080000001", "H37080000002")
MAX_WORKERS = 10
CARD_CODES = frozenset({"card_state", "card_mismatch", "not_found", "card_blocked",
                        "card_lost", "card_replaced"})


# -- the terminal's client ------------------------------------------------------------------


class SimClient(HostClient):
    """A :class:`~ledger.client.HostClient` whose msgids embed the terminal's slot.

    ``msgid = institution(12) ‖ yyyyMMddHHmmss ‖ slot(1) ‖ counter(3)`` (spec/host.md §1):
    terminals of one institution in different processes never mint the same msgid.
    """

    def __init__(self, transport: Any, *, slot: int, **kw: Any) -> None:
        if not 0 <= slot < MAX_WORKERS:
            raise ValueError(f"slot must be 0..{MAX_WORKERS - 1}")
        self.slot = slot
        self._n = 0
        super().__init__(transport, **kw)

    def new_msgid(self) -> str:
        with self._lock:
            self._n = (self._n + 1) % 1000
            ts = datetime.now().strftime("%Y%m%d%H%M%S")
            return f"{self.fixmedins_code}{ts}{self.slot}{self._n:03d}"


def connect(url: str, code: str, slot: int, *, timeout: float = 3.0,
            sign_in_within: float = 30.0) -> SimClient:
    """A signed-in client of institution ``code`` for terminal ``slot`` (retries the sign-in
    while the host is down, up to ``sign_in_within`` seconds)."""
    if url.startswith(("http://", "https://")):
        from ledger.auth import TEST_SECRET, terminal_key
        paasid = f"{code}-{slot + 1:02d}"
        transport: Any = HttpTransport(url, paasid=paasid, key=terminal_key(TEST_SECRET, paasid))
    else:
        from ledger.service import HostService
        transport = LocalTransport(HostService.open(url), own=True)
    client = SimClient(transport, slot=slot, fixmedins_code=code, timeout=timeout, retries=0,
                       sign_in=False, opter=f"{slot + 1:04d}")
    deadline = time.monotonic() + sign_in_within
    while True:
        try:
            client.sign_in()
            return client
        except Unavailable:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def psn_of(input: dict[str, Any]) -> str:
    """The ``psn_no`` of a request's input (``druginfo``, ``data``, ``mdtrtinfo`` …)."""
    for v in input.values():
        if isinstance(v, dict) and "psn_no" in v:
            return str(v["psn_no"])
    return ""


# -- history --------------------------------------------------------------------------------


IN_FLIGHT: Any = None
"""A terminal process's share of the requests under way (a ``multiprocessing.Value`` shared
with the nemesis, which aims its kills at them); ``None`` outside the bank test."""


def send(client: HostClient, env: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """Send one envelope; ``("ok" | "failed" | "unknown", answer or {"error": …})``."""
    counter = IN_FLIGHT
    if counter is not None:
        with counter.get_lock():
            counter.value += 1
    try:
        ans = client.transport.send(env, client.timeout)
    except Unavailable as exc:
        return "unknown", {"error": str(exc)}
    finally:
        if counter is not None:
            with counter.get_lock():
                counter.value -= 1
    return ("ok" if ans.get("infcode") == 0 else "failed"), ans


def _summary(infno: str, ans: dict[str, Any]) -> dict[str, Any]:
    out = ans.get("output") or {}
    if infno in ("2102", "2304"):
        s = out.get("setlinfo", {})
        return {k: s.get(k) for k in ("setl_id", "mdtrt_id", "medfee_sumamt", "acct_pay",
                                      "psn_cash_pay", "fund_pay_sumamt", "balc")}
    if infno == "2103":
        s = out.get("setlinfo", {})
        return {k: s.get(k) for k in ("setl_id", "orig_setl_id")}
    if infno == "2601":
        return {k: out.get(k) for k in ("omsgid", "rvs_result")}
    if infno == "8109":
        return {k: out.get(k) for k in ("target", "amount")}
    if infno in ("8105", "8103"):
        ci = out.get("cardinfo", out)
        return {k: ci.get(k) for k in ("card_no", "old_card_no", "card_stas", "fee")
                if isinstance(ci, dict)}
    return {}


class Terminal:
    """One bank-test terminal process: random operations, a history, resolution of unknowns."""

    def __init__(self, cfg: dict[str, Any]) -> None:
        self.cfg = cfg
        self.slot: int = cfg["slot"]
        self.rng = random.Random(cfg["seed"])
        self.url: str = cfg["url"]
        self.holders: list[dict[str, Any]] = cfg["holders"]
        self.items: list[tuple[str, int]] = [(str(c), int(p)) for c, p in cfg["items"]]
        self.hist = open(cfg["history"], "a", encoding="utf-8")  # noqa: SIM115
        self.clients: dict[str, SimClient] = {}
        self.cards: dict[str, tuple[str, str, str]] = {
            h["psn_no"]: (h["card_no"], h["card_sn"], h["bank"]) for h in self.holders}
        self.pans: dict[str, str] = {}
        self.settled: list[tuple[str, dict[str, Any], str]] = []  # (inst, setlinfo, psn)
        self.sent: list[tuple[str, dict[str, Any]]] = []           # (inst, envelope) to resend
        self.pending: list[tuple[str, dict[str, Any], str]] = []  # (inst, env, why)
        self.acknowledged = 0                                      # settlements answered ok

    # -- plumbing --------------------------------------------------------------------------
    def client(self, code: str) -> SimClient:
        if code not in self.clients:
            self.clients[code] = connect(self.url, code, self.slot,
                                         timeout=self.cfg.get("timeout", 3.0))
        return self.clients[code]

    def record(self, **event: Any) -> None:
        event["w"] = self.slot
        self.hist.write(json.dumps(event, ensure_ascii=False) + "\n")
        self.hist.flush()

    def request(self, op: str, inst: str, env: dict[str, Any], **extra: Any) -> tuple[
            str, dict[str, Any]]:
        t0 = time.time()
        outcome, ans = send(self.client(inst), env)
        self.record(op=op, infno=env["infno"], msgid=env["msgid"], inst=inst, t0=t0,
                    t1=time.time(), outcome=outcome, err_code=ans.get("err_code", ""),
                    err=ans.get("err_msg", ans.get("error", ""))[:200],
                    out=_summary(env["infno"], ans) if outcome == "ok" else {}, **extra)
        if outcome == "ok" and env["infno"] in ("2102", "2304") and op != "duplicate":
            self.acknowledged += 1
        return outcome, ans

    def resolve(self, inst: str, env: dict[str, Any], within: float,
                reverse: bool = True) -> bool:
        """Settle an unknown outcome: reverse it (2102/2103) or resend it (others, and a
        duplicate of a request whose first copy was answered)."""
        client = self.client(inst)
        if reverse and env["infno"] in REVERSIBLE:
            psn = psn_of(env["input"])
            renv = client.envelope("2601", {"data": {"psn_no": psn, "omsgid": env["msgid"],
                                                     "oinfno": env["infno"]}})
            op, target = "reversal", renv
        else:
            op, target = "resend", env
        deadline = time.monotonic() + within
        while True:
            outcome, _ = self.request(op, inst, target, omsgid=env["msgid"],
                                        oinfno=env["infno"], auto=True)
            if outcome != "unknown":
                if op == "resend" and outcome == "ok" and env["infno"] == "8105":
                    self.refresh(env["input"]["data"].get("certno", ""))
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.2)

    def after_unknown(self, inst: str, env: dict[str, Any], reverse: bool = True) -> None:
        if not self.resolve(inst, env, within=self.cfg.get("resolve_now", 3.0),
                            reverse=reverse):
            self.pending.append((inst, env, "reverse" if reverse else "resend"))

    def refresh(self, certno: str) -> None:
        """Look the holder's live card up again (after a replacement)."""
        c = self.client(OFFICE)
        outcome, ans = send(c, c.envelope("1101", {"data": {"mdtrt_cert_type": "02",
                                                            "mdtrt_cert_no": certno}}))
        if outcome == "ok":
            out = ans["output"]
            ci = out.get("cardinfo") or {}
            psn = out.get("baseinfo", {}).get("psn_no", "")
            if psn and ci.get("card_no"):
                self.cards[psn] = (ci["card_no"], ci["card_sn"], ci.get("bank", ""))
                if ci.get("pan"):
                    self.pans[psn] = ci["pan"]

    # -- operations ------------------------------------------------------------------------
    def sale(self) -> None:
        h = self.rng.choice(self.holders)
        card_no, card_sn, _ = self.cards[h["psn_no"]]
        inst = self.rng.choice(PHARMACIES)
        c = self.client(inst)
        lines = []
        for i in range(self.rng.choice((1, 1, 1, 2, 2, 3))):
            code, price = self.rng.choice(self.items)
            lines.append(drug_line(str(i + 1), code, self.rng.choice((1, 1, 2)), price))
        kw: dict[str, Any] = {"psn_no": h["psn_no"], "lines": lines, "card_no": card_no,
                              "card_sn": card_sn, "insutype": h["insutype"]}
        cash_src = "bank" if self.rng.random() < 0.25 else "cash"
        if cash_src == "bank":
            kw["use_account"] = self.rng.random() < 0.3   # mostly: all from the bank account
            auth = self.bank_auth(c, h, kw)
            if auth is None:
                return
            kw.update(cash_src="bank", bank_auth=auth or None)
        env = c.envelope("2102", c.druginfo(**kw))
        outcome, ans = self.request("sale", inst, env, psn_no=h["psn_no"], cash_src=cash_src)
        if outcome == "ok":
            self.settled.append((inst, ans["output"]["setlinfo"], h["psn_no"]))
            self.sent.append((inst, env))
        elif outcome == "unknown":
            self.sent.append((inst, env))
            self.after_unknown(inst, env)
        elif ans.get("err_code") in CARD_CODES:
            self.refresh(h["certno"])
            if "not activated" in str(ans.get("err_msg", "")):
                self.activate(h)

    def bank_auth(self, c: SimClient, h: dict[str, Any],
                  kw: dict[str, Any]) -> dict[str, Any] | None:
        """The card's ARQC for the part the bank account pays (spec/card.md §11), computed
        with the card's own recipe (:func:`card.pboc.application_cryptogram`) and the
        card's TEST key; ``{}`` when nothing is due from the bank account, None when the
        trial was refused."""
        outcome, ans = send(c, c.envelope("2101", c.druginfo(**kw, cash_src="bank")))
        if outcome != "ok":
            return None
        rest = parse_yuan(ans["output"]["setlinfo"]["psn_cash_pay"])
        if rest == 0:
            return {}
        pan = self.pans.get(h["psn_no"], h["pan"])
        atc = max(1, int(time.time() * 10) - self.cfg["atc_base"])
        cdol1 = bytes.fromhex(f"{rest:012d}{0:012d}0156{'0' * 10}0156"
                              f"{datetime.now():%y%m%d}00{self.rng.randbytes(4).hex()}")
        mk = card_keys.ac_master_key(ALG_SM4, AREA, pan, 1)
        arqc = pboc.application_cryptogram(mk, atc, cdol1, ALG_SM4)
        return {"pan": pan, "pan_seq": "01", "cdol1": cdol1.hex().upper(),
                "atc": f"{atc:04X}", "arqc": arqc.hex().upper()}

    def stay(self) -> None:
        """An inpatient stay: 2401 admit, 2301 fees, 2402 discharge, 2304 settle (seed U2,
        U3). Reversible steps without an answer are reversed; the stay then stops."""
        h = self.rng.choice(self.holders)
        card_no, card_sn, _ = self.cards[h["psn_no"]]
        inst = self.rng.choice(HOSPITALS)
        c = self.client(inst)
        psn = h["psn_no"]
        env = c.envelope("2401", {"mdtrtinfo": {
            "psn_no": psn, "mdtrt_cert_type": "03", "mdtrt_cert_no": card_no,
            "card_sn": card_sn, "insutype": h["insutype"], "med_type": "21",
            "begntime": datetime.now().strftime("%Y-%m-%d %H:%M:%S")}})
        outcome, ans = self.request("admit", inst, env, psn_no=psn)
        if outcome != "ok":
            if outcome == "unknown":
                self.after_unknown(inst, env)
            elif ans.get("err_code") in CARD_CODES:
                self.refresh(h["certno"])
            return
        mdtrt_id = ans["output"]["result"]["mdtrt_id"]
        lines = []
        for i in range(self.rng.randint(1, 4)):
            code, price = self.rng.choice(self.items)
            lines.append({**drug_line(str(i + 1), code, self.rng.randint(1, 3), price),
                          "mdtrt_id": mdtrt_id, "psn_no": psn})
        total = sum(parse_yuan(ln["det_item_fee_sumamt"]) for ln in lines)
        for infno, op, body in (
                ("2301", "fees", {"feedetail": lines}),
                ("2402", "discharge", {"dscginfo": {
                    "mdtrt_id": mdtrt_id, "psn_no": psn,
                    "endtime": datetime.now().strftime("%Y-%m-%d %H:%M:%S")}})):
            env = c.envelope(infno, body)
            outcome, _ = self.request(op, inst, env, psn_no=psn)
            if outcome == "unknown":
                self.after_unknown(inst, env, reverse=False)
                return
            if outcome != "ok":
                return
        env = c.envelope("2304", {"data": {
            "mdtrt_id": mdtrt_id, "psn_no": psn, "medfee_sumamt": f"{total / 100:.2f}",
            "acct_used_flag": "1", "cash_src": "cash"}})
        outcome, _ = self.request("inpatient", inst, env, psn_no=psn)
        if outcome == "unknown":
            self.after_unknown(inst, env)
        return None

    def cancel(self) -> None:
        if not self.settled:
            return self.sale()
        inst, s, psn = self.settled.pop(self.rng.randrange(len(self.settled)))
        c = self.client(inst)
        env = c.envelope("2103", {"data": {"setl_id": s["setl_id"], "mdtrt_id": s["mdtrt_id"],
                                           "psn_no": psn}})
        outcome, _ = self.request("cancel", inst, env, psn_no=psn, setl_id=s["setl_id"])
        if outcome == "unknown":
            self.after_unknown(inst, env)
        return None

    def reverse(self) -> None:
        if not self.settled:
            return self.sale()
        inst, s, psn = self.settled.pop(self.rng.randrange(len(self.settled)))
        c = self.client(inst)
        omsgid = s["setl_id"][1:]
        env = c.envelope("2601", {"data": {"psn_no": psn, "omsgid": omsgid, "oinfno": "2102"}})
        outcome, _ = self.request("reversal", inst, env, psn_no=psn, omsgid=omsgid,
                                  oinfno="2102")
        if outcome == "unknown":
            self.after_unknown(inst, env)
        return None

    def topup(self) -> None:
        h = self.rng.choice(self.holders)
        amount = self.rng.randrange(1000, 20001)
        if self.rng.random() < 0.5:
            inst, data = OFFICE, {"psn_no": h["psn_no"], "amount": f"{amount / 100:.2f}",
                                  "target": "medical"}
        else:
            card_no, _, bank = self.cards[h["psn_no"]]
            inst = BANK_COUNTERS[bank or h["bank"]]
            data = {"psn_no": h["psn_no"], "amount": f"{amount / 100:.2f}", "target": "bank",
                    "card_no": card_no}
        c = self.client(inst)
        env = c.envelope("8109", {"data": data})
        outcome, ans = self.request("topup", inst, env, psn_no=h["psn_no"], amount=amount,
                                    target=data["target"])
        if outcome == "ok":
            self.sent.append((inst, env))
        elif outcome == "unknown":
            self.after_unknown(inst, env)
        elif ans.get("err_code") in CARD_CODES:
            self.refresh(h["certno"])

    def replace(self) -> None:
        h = self.rng.choice(self.holders)
        card_no, _, bank = self.cards[h["psn_no"]]
        inst = BANK_COUNTERS[bank or h["bank"]]
        c = self.client(inst)
        lost = self.rng.random() < 0.5
        if lost:
            env = c.envelope("8103", {"data": {"card_no": card_no, "certno": h["certno"],
                                               "loss_type": "2"}})
            outcome, _ = self.request("loss", inst, env, psn_no=h["psn_no"])
            if outcome == "unknown":
                self.after_unknown(inst, env)
        env = c.envelope("8105", {"data": {
            "card_no": card_no, "certno": h["certno"],
            "reason": "lost" if lost else "damaged_by_holder",
            "fee_src": self.rng.choice(("cash", "bank")), "certificate_no": ""}})
        outcome, _ = self.request("replace", inst, env, psn_no=h["psn_no"])
        if outcome == "unknown":
            self.after_unknown(inst, env)
        self.refresh(h["certno"])
        self.activate(h)

    def activate(self, h: dict[str, Any]) -> None:
        """A4: a new ICBC/ABC/BOC card works only after activation at the bank counter."""
        card_no, _, bank = self.cards[h["psn_no"]]
        if card_no == h["card_no"] or (bank or h["bank"]) == "CCB":
            return
        inst = BANK_COUNTERS[bank or h["bank"]]
        c = self.client(inst)
        env = c.envelope("8102", {"data": {"card_no": card_no, "certno": h["certno"],
                                           "pin_changed": True}})
        outcome, _ = self.request("activate", inst, env, psn_no=h["psn_no"])
        if outcome == "unknown":
            self.after_unknown(inst, env)

    def duplicate(self) -> None:
        if not self.sent:
            return self.sale()
        inst, env = self.rng.choice(self.sent)
        outcome, _ = self.request("duplicate", inst, env)
        if outcome == "unknown":  # the first copy's fate is known or being resolved: resend
            self.after_unknown(inst, env, reverse=False)
        return None

    def run(self) -> None:
        ops = (self.sale, self.cancel, self.reverse, self.topup, self.replace, self.duplicate,
               self.stay)
        weights = (45, 12, 8, 15, 3, 8, 5)
        deadline = self.cfg["deadline"]
        # past the deadline, go on until this terminal's share of settlements was answered
        # (a slow machine must not turn the test into one that checks nothing), within
        # ``overtime`` seconds
        least, overtime = self.cfg.get("min_settlements", 0), self.cfg.get("overtime", 60.0)
        while time.time() < deadline or (self.acknowledged < least
                                         and time.time() < deadline + overtime):
            try:
                self.rng.choices(ops, weights)[0]()
            except (Unavailable, HostError) as exc:  # sign-in failed while the host was away
                self.record(op="error", outcome="unknown", err=str(exc)[:200], t0=time.time(),
                            t1=time.time())
                time.sleep(0.2)
        resolve_by = max(self.cfg["resolve_deadline"], time.time() + 30)
        for inst, env, how in self.pending:
            self.resolve(inst, env, within=max(1.0, resolve_by - time.time()),
                         reverse=how == "reverse")
        self.hist.close()


def terminal_main(cfg: dict[str, Any], in_flight: Any = None) -> None:
    """Entry point of a terminal process."""
    global IN_FLIGHT
    IN_FLIGHT = in_flight
    Terminal(cfg).run()


def _await_request(in_flight: Any, within: float) -> None:
    """Wait (at most ``within`` seconds) until some terminal has a request under way: a kill
    then cuts one short (an unknown outcome to resolve) rather than falling between two."""
    end = time.monotonic() + within
    while in_flight.value == 0 and time.monotonic() < end:
        time.sleep(0.001)


# -- the checker ----------------------------------------------------------------------------


@dataclass
class CheckResult:
    """What the checker found: ``problems`` empty means the books held."""

    problems: list[str] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems


def read_history(paths: list[Path]) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    for p in paths:
        if p.exists():
            for line in p.read_text("utf-8").splitlines():
                if line.strip():
                    events.append(json.loads(line))
    events.sort(key=lambda e: e.get("t0", 0))
    return events


def snapshot(store: Any) -> set[str]:
    """The journal entries present before the run (opening balances)."""
    rows = store.run(lambda tx: tx.all("SELECT entry_id FROM entries"))
    return {str(r[0]) for r in rows}


def check(store: Any, events: list[dict[str, Any]], before: set[str]) -> CheckResult:
    """Check the books against the history (see the module docstring)."""
    res = CheckResult()
    bad = res.problems.append

    def load(tx: Any) -> dict[str, Any]:
        return {
            "verify": books.verify(tx),
            "total": tx.one("SELECT COALESCE(SUM(amount), 0) FROM postings")[0],
            "negative": tx.all("SELECT account_id, balance FROM accounts WHERE kind IN "
                               "('medical', 'bank', 'oldmed') AND balance < 0"),
            "entries": tx.all("SELECT entry_id, msgid, kind, ref_entry_id FROM entries"),
            "postings": tx.all("SELECT entry_id, account_id, amount FROM postings"),
            "settlements": tx.all("SELECT setl_id, state FROM settlements"),
            "requests": tx.all("SELECT msgid, status FROM requests"),
        }

    db = store.run(load)
    for p in db["verify"]:
        bad(f"books: {p}")
    if int(db["total"]) != 0:
        bad(f"money created or destroyed: all postings sum to {db['total']} fen, not 0")
    for acct, bal in db["negative"]:
        bad(f"account {acct} is negative: {bal}")

    entries = {str(e): (str(m), str(k), r) for e, m, k, r in db["entries"] if str(e) not in before}
    postings: dict[str, list[tuple[str, int]]] = collections.defaultdict(list)
    for e, a, amt in db["postings"]:
        postings[str(e)].append((str(a), int(amt)))
    settle_state = {str(s): str(st) for s, st in db["settlements"]}
    requests = {str(m): str(s) for m, s in db["requests"]}
    per_msgid: dict[str, list[str]] = collections.defaultdict(list)
    for eid, (msgid, _kind, _ref) in entries.items():
        per_msgid[msgid].append(eid)

    by_msgid: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
    resolutions: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
    reversed_ok: set[str] = set()   # msgids some acknowledged 2601 reversed
    for ev in events:
        if ev.get("msgid"):
            by_msgid[ev["msgid"]].append(ev)
        if ev.get("omsgid"):
            if ev.get("auto"):
                resolutions[ev["omsgid"]].append(ev)
            if ev.get("infno") == "2601" and ev["outcome"] == "ok":
                reversed_ok.add(ev["omsgid"])
    sent = set(by_msgid)

    # 2. no phantom entries, one effect per msgid
    for msgid, eids in per_msgid.items():
        if msgid not in sent:
            bad(f"phantom: entries {eids} carry msgid {msgid}, which no terminal sent")
        if len(eids) > 1:
            bad(f"msgid {msgid} has {len(eids)} entries {sorted(eids)}: more than one effect")

    outcomes = collections.Counter(f"{e.get('op')}:{e.get('outcome')}" for e in events)
    unresolved = 0
    for msgid, evs in by_msgid.items():
        first = evs[0]
        infno = first["infno"]
        oks = [e for e in evs if e["outcome"] == "ok" and e["op"] != "duplicate"]
        ok_any = [e for e in evs if e["outcome"] == "ok"]
        unknown = any(e["outcome"] == "unknown" for e in evs)
        eids = per_msgid.get(msgid, [])
        # 3. acknowledged writes are in the books, with the amounts answered
        if infno in ("2102", "2304") and ok_any:
            out = (oks or ok_any)[0]["out"]
            eid = "E" + msgid
            if eid not in entries:
                bad(f"acknowledged settlement {msgid} is not in the books")
            else:
                ps = postings[eid]
                med = sum(a for acct, a in ps if acct.startswith("medical:"))
                if med != -parse_yuan(out["acct_pay"]):
                    bad(f"settlement {msgid}: the books took {-med} fen from the personal "
                        f"account, the answer said {out['acct_pay']} yuan")
                bank = sum(a for acct, a in ps if acct.startswith("bank:"))
                if first.get("cash_src") == "bank" and bank != -parse_yuan(out["psn_cash_pay"]):
                    bad(f"settlement {msgid}: the books took {-bank} fen from the bank "
                        f"account, the answer said {out['psn_cash_pay']} yuan")
                if sum(a for _, a in ps if a > 0) != parse_yuan(out["medfee_sumamt"]):
                    bad(f"settlement {msgid}: postings do not add up to the total "
                        f"{out['medfee_sumamt']} yuan")
        if infno == "2103" and ok_any:
            if not [e for e in eids if e.startswith("C")]:
                bad(f"acknowledged cancel {msgid} is not in the books")
            st = settle_state.get(str(first.get("setl_id")))
            if st != "cancelled":
                bad(f"acknowledged cancel {msgid} of {first.get('setl_id')}: settlement is {st}")
        if infno == "2601" and ok_any and first["op"] == "reversal" and not first.get("auto"):
            out = ok_any[0]["out"]
            st = settle_state.get("S" + str(first.get("omsgid")))
            if out.get("rvs_result") in ("reversed", "already_cancelled") and st != "cancelled":
                bad(f"acknowledged reversal {msgid} ({out.get('rvs_result')}) of "
                    f"{first.get('omsgid')}: settlement is {st}")
        if infno == "8109" and ok_any:
            amount = first.get("amount")
            cps = postings.get("E" + msgid)
            if cps is None:
                bad(f"acknowledged credit {msgid} is not in the books")
            elif amount is not None and max(a for _, a in cps) != amount:
                bad(f"credit {msgid}: the books credited {max(a for _, a in cps)} fen, "
                    f"the terminal asked {amount}")
        # 4. unknown outcomes resolved
        if unknown and not ok_any and first["op"] != "reversal":
            res_evs = [e for e in resolutions[msgid] if e["outcome"] != "unknown"]
            if not res_evs:
                unresolved += 1
                bad(f"unknown outcome of {infno} {msgid} was never resolved")
            elif infno in ("2102", "2304"):
                rv = [e for e in res_evs if e["op"] == "reversal" and e["outcome"] == "ok"]
                if rv:
                    st = settle_state.get("S" + msgid)
                    if st is not None and st != "cancelled":
                        bad(f"settlement {msgid} was reversed ({rv[0]['out']}) but is {st}")
                    if st is None and eids:
                        bad(f"settlement {msgid} was reversed as never received, but has "
                            f"entries {eids}")
            elif infno == "2103":
                rv = [e for e in res_evs if e["op"] == "reversal" and e["outcome"] == "ok"]
                setl = str(first.get("setl_id"))
                st = settle_state.get(setl)
                if rv and st != "settled" and setl[1:] not in reversed_ok:
                    bad(f"cancel {msgid} was reversed ({rv[0]['out']}) but settlement "
                        f"{first.get('setl_id')} is {st}")
        # 5. refused requests wrote nothing
        if evs and all(e["outcome"] == "failed" for e in evs) and infno not in ("2601",):
            if eids:
                bad(f"{infno} {msgid} was refused every time but wrote entries {eids}")
            if requests.get(msgid) == "done":
                bad(f"{infno} {msgid} was refused every time but is recorded as applied")
        # 6. duplicates answered with the first answer
        if ok_any:
            ref_out = ok_any[0]["out"]
            for e in evs:
                if e["op"] == "duplicate" and e["outcome"] == "ok" and e["out"] != ref_out:
                    bad(f"duplicate {msgid} answered {e['out']}, first answer {ref_out}")
                if e["op"] == "duplicate" and e["outcome"] == "failed" and \
                        e.get("err_code") not in ("reversed",):
                    bad(f"duplicate {msgid} refused ({e.get('err_code')}: {e.get('err')}) "
                        "although it was applied")
    res.stats = {
        "requests": len(events), "msgids": len(sent), "entries_written": len(entries),
        "outcomes": dict(sorted(outcomes.items())), "unresolved": unresolved,
        "settlements_acknowledged": sum(1 for evs in by_msgid.values()
                                        if evs[0]["infno"] in ("2102", "2304")
                                        and any(e["outcome"] == "ok" for e in evs)),
        "unknown": sum(1 for e in events if e["outcome"] == "unknown"),
    }
    return res


# -- the run --------------------------------------------------------------------------------


@dataclass
class BankTestResult:
    backend: str
    seconds: float
    workers: int
    seed: int
    host_kills: int = 0
    db_restarts: int = 0
    check: CheckResult = field(default_factory=CheckResult)
    workdir: str = ""

    @property
    def ok(self) -> bool:
        return self.check.ok

    def to_dict(self) -> dict[str, Any]:
        return {"backend": self.backend, "seconds": self.seconds, "workers": self.workers,
                "seed": self.seed, "host_kills": self.host_kills,
                "db_restarts": self.db_restarts, "ok": self.ok,
                "problems": self.check.problems[:50], "stats": self.check.stats,
                "workdir": self.workdir}


def _items() -> list[tuple[str, int]]:
    pol = load_policies(DEFAULT_POLICY_DIR)[AREA]
    return [(it.code, it.price) for it in pol.items.values()
            if it.kind == "drug" and 0 < it.price <= 20000]


#: how much longer than asked a run may go on to reach its ``min_settlements``
OVERTIME = 60.0


def run_bank_test(backend: str = "sqlite", *, seconds: float = 20.0, workers: int = 3,
                  holders: int = 30, seed: int | None = None, nemesis: bool = True,
                  db_restarts: bool = True, workdir: Path | None = None, keep: bool = False,
                  progress: bool = False, min_settlements: int = 0) -> BankTestResult:
    """Run the bank test on ``backend`` (``sqlite`` or ``postgresql``) for ``seconds``; the
    terminals go on (at most a minute longer, the nemesis done) until ``min_settlements``
    settlements between them were acknowledged."""
    if not 1 <= workers <= MAX_WORKERS:
        raise ValueError(f"workers must be 1..{MAX_WORKERS}")
    seed = seed if seed is not None else random.SystemRandom().randrange(2 ** 32)
    rng = random.Random(seed)
    tmp = Path(tempfile.mkdtemp(prefix=f"sscard-banktest-{backend}-", dir=workdir))
    cluster: PrivateCluster | None = None
    host: HostProcess | None = None
    procs: list[Any] = []
    result = BankTestResult(backend, seconds, workers, seed, workdir=str(tmp))

    def say(msg: str) -> None:
        if progress:
            print(f"bank test [{backend}]: {msg}", file=sys.stderr, flush=True)
    try:
        if backend == "postgresql":
            cluster = PrivateCluster()
            url = cluster.start()
        elif backend == "sqlite":
            url = f"sqlite:///{tmp / 'host.db'}"
        else:
            raise ValueError("backend must be sqlite or postgresql")
        store = open_store(url)
        try:
            initialize(store)
            from ledger.populate import populate
            populate(store, holders)
            before = snapshot(store)
        finally:
            store.close()
        people = [holder(i, AREA) for i in range(holders)]
        host = HostProcess(url, log_path=tmp / "host.log")
        host.start()
        say(f"host up at {host.url}, {holders} holders, {workers} terminals, {seconds:g} s")
        ctx = mp.get_context("spawn")
        in_flight = ctx.Value("i", 0)
        deadline = time.time() + seconds
        items = _items()
        for w in range(workers):
            cfg = {"slot": w, "seed": rng.randrange(2 ** 32), "url": host.url,
                   "holders": people, "items": items, "history": str(tmp / f"history-{w}.jsonl"),
                   "deadline": deadline, "resolve_deadline": deadline + 30, "timeout": 3.0,
                   "min_settlements": -(-min_settlements // workers), "overtime": OVERTIME,
                   "atc_base": int(time.time() * 10)}
            p = ctx.Process(target=terminal_main, args=(cfg, in_flight), daemon=True)
            p.start()
            procs.append(p)
        nem_log = (tmp / "nemesis.jsonl").open("a", encoding="utf-8")
        while nemesis and time.time() < deadline - 1.0:
            time.sleep(rng.uniform(0.8, 2.5))
            if time.time() >= deadline - 0.5:
                break
            _await_request(in_flight, 0.5)
            host.kill()
            result.host_kills += 1
            ev: dict[str, Any] = {"t": time.time(), "event": "kill host"}
            if cluster is not None and db_restarts and (result.db_restarts == 0
                                                        or rng.random() < 0.5):
                cluster.restart()
                result.db_restarts += 1
                ev["db"] = "restarted"
            time.sleep(rng.uniform(0.0, 0.3))
            host.start()
            nem_log.write(json.dumps(ev) + "\n")
            nem_log.flush()
            say(f"nemesis: host killed and restarted ({result.host_kills})"
                + (", database restarted" if "db" in ev else ""))
        nem_log.close()
        if not host.alive():
            host.start()
        for p in procs:
            p.join(max(1.0, deadline + (OVERTIME if min_settlements else 0) + 45 - time.time()))
            if p.is_alive():
                p.kill()
                p.join(5)
        host.stop()
        events = read_history(sorted(tmp.glob("history-*.jsonl")))
        store = open_store(url)
        try:
            result.check = check(store, events, before)
        finally:
            store.close()
        say(f"{len(events)} requests checked: "
            + ("books OK" if result.ok else f"{len(result.check.problems)} problems"))
        return result
    finally:
        for p in procs:
            if p.is_alive():
                p.kill()
        if host is not None:
            host.kill()
        if cluster is not None:
            cluster.stop(remove=result.ok and not keep)
            if not (result.ok and not keep):
                result.workdir += f" (database cluster kept in {cluster.dir})"
        if not keep and result.ok:
            shutil.rmtree(tmp, ignore_errors=True)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--workers", type=int, default=4, help="terminal processes (1..10)")
    parser.add_argument("--holders", type=int, default=40, help="card holders in the books")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--no-nemesis", action="store_true", help="no host kills")
    parser.add_argument("--keep", action="store_true",
                        help="keep the work directory (history, host log) even when it passes")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def run_cli(args: argparse.Namespace, seconds: float) -> int:
    backends = ("sqlite", "postgresql") if args.backend == "both" else (args.backend,)
    results = []
    for b in backends:
        results.append(run_bank_test(b, seconds=seconds, workers=args.workers,
                                     holders=args.holders, seed=args.seed,
                                     nemesis=not args.no_nemesis, keep=args.keep,
                                     progress=not args.json))
    if args.json:
        print(json.dumps([r.to_dict() for r in results], indent=2, ensure_ascii=False))
    for r in results:
        if not args.json:
            s = r.check.stats
            print(f"{r.backend}: {s.get('requests', 0)} requests in {r.seconds:g} s by "
                  f"{r.workers} terminals, {r.host_kills} host kills, {r.db_restarts} "
                  f"database restarts, {s.get('unknown', 0)} unknown outcomes, "
                  f"{s.get('settlements_acknowledged', 0)} settlements acknowledged: "
                  + ("books OK" if r.ok else "PROBLEMS"))
            for p in r.check.problems[:30]:
                print(f"  {p}")
            if not r.ok:
                print(f"  history and host log kept in {r.workdir} (seed {r.seed})")
    return 0 if all(r.ok for r in results) else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m terminal.sim.banktest",
        description="Jepsen-style bank test: terminals, a nemesis that SIGKILLs the host, a "
                    "checker of the books (spec/host.md §4).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  python -m terminal.sim.banktest --seconds 60\n"
               "  python -m terminal.sim.banktest --backend postgresql --seconds 300 "
               "--workers 8")
    parser.add_argument("--seconds", type=float, default=60.0, help="how long to run")
    add_arguments(parser)
    args = parser.parse_args(argv)
    return run_cli(args, args.seconds)


if __name__ == "__main__":
    raise SystemExit(main())

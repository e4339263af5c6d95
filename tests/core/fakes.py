"""In-memory fakes of the core's ports, with fault injection (tests only).

``FakeCard`` keeps a PIN counter (spec/card.md §7), an EF08 log and the bank application;
``FakeHost`` keeps per-person books with msgid idempotency and 2601 reversal
(spec/host.md §4). Faults are queued per operation and consumed one call at a time:

- card: ``"pull_before"`` (card gone, nothing done), ``"pull_after"`` (the operation took
  effect, then the card was gone before the answer), ``"error"`` (a card error);
- host: ``"timeout_before"`` (lost on the way: nothing applied), ``"timeout_after"``
  (applied, answer lost), ``"refuse"``, ``"unreachable"``.
"""

from __future__ import annotations

import hashlib
import itertools
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, ClassVar

from terminal.core.cardio import BankCompletion, BankPinRequired
from terminal.core.model import fen, yuan
from terminal.core.ports import (
    ARC_APPROVED,
    BankCryptogram,
    CardFault,
    CardInfo,
    CardNotGenuine,
    CardRemovedError,
    CatalogueItem,
    HolderIdentity,
    HostRefused,
    HostReply,
    HostTimeout,
    HostUnreachable,
    PinLocked,
    PinWrong,
    Sex,
    TxRecord,
    UnknownItem,
    build_cdol1,
)

CARD_NUMBER = "X00000019"
PIN = "123456"


def fake_arpc(arqc: str, arc: str = ARC_APPROVED) -> str:
    """The fake issuer's ARPC for ``arqc`` (stands in for the issuer key of
    ledger/bank.py: only :class:`FakeHost` and :class:`FakeCard` know it)."""
    return hashlib.sha256(f"fake-issuer:{arqc.upper()}:{arc}".encode()).hexdigest()[:16].upper()


def card_info(number: str = CARD_NUMBER) -> CardInfo:
    return CardInfo(
        area_code="370800", ssn="370802198101011116", card_number=number,
        card_id_code="370800D156000005BF7C7A48FB4966AA", name="张三",
        spec_version="3.00", issue_date="20200101", expiry_date="20300101",
        terminal_number="370800000042", atr_historical="0081")


class FakeCard:
    """A card in a reader, as the flows see it through :class:`CardPort`."""

    def __init__(self, *, number: str = CARD_NUMBER, pin: str = PIN, max_tries: int = 3,
                 genuine: bool = True, supports_log: bool = True,
                 bank_pin: str | None = None, bank_max_tries: int = 6) -> None:
        self.info = card_info(number)
        self._pin = pin
        self.max_tries = max_tries
        self.tries_left = max_tries
        self.genuine = genuine
        self.supports_log = supports_log
        self.inserted = True
        self.verified = False
        self.log: list[TxRecord] = []
        self.faults: dict[str, list[str]] = defaultdict(list)
        self.calls: list[str] = []
        self.pins_seen = 0
        self.atc = 0
        self.photo = b"\xff\xd8\xff\xe0fakejpeg"
        # the bank application (spec/card.md §1, §11): None = shares the SSSE PIN
        self._bank_pin = bank_pin
        self.bank_max_tries = bank_max_tries
        self.bank_tries_left = bank_max_tries
        self.bank_verified = False
        self._open_arqc: str | None = None  # the ARQC awaiting the issuer's answer
        self.completions: list[BankCompletion] = []

    # -- test control
    def fault(self, op: str, *actions: str) -> None:
        self.faults[op].extend(actions)

    def pull(self) -> None:
        self.inserted = False
        self.verified = False
        self.bank_verified = False
        self._open_arqc = None

    def insert(self) -> None:
        self.inserted = True
        self.verified = False
        self.bank_verified = False
        self._open_arqc = None

    def _enter(self, op: str) -> str | None:
        self.calls.append(op)
        if not self.inserted:
            raise CardRemovedError("no card in the reader")
        action = self.faults[op].pop(0) if self.faults.get(op) else None
        if action == "pull_before":
            self.pull()
            raise CardRemovedError("the card was removed")
        if action == "error":
            raise CardFault("6F00 no precise diagnosis", -28416)
        return action

    def _leave(self, action: str | None) -> None:
        if action == "pull_after":
            self.pull()
            raise CardRemovedError("the card was removed mid-command", maybe_done=True)

    # -- CardPort
    def present(self) -> bool:
        self.calls.append("present")
        return self.inserted

    def read_basics(self) -> CardInfo:
        a = self._enter("read_basics")
        self.verified = False
        self.bank_verified = False
        self._open_arqc = None
        if not self.genuine:
            raise CardNotGenuine("internal authentication failed")
        self._leave(a)
        return self.info

    def read_identity(self, with_photo: bool = True) -> HolderIdentity:
        a = self._enter("read_identity")
        self._leave(a)
        return HolderIdentity(ssn=self.info.ssn, name=self.info.name, sex=Sex.MALE,
                              birth_date=date(1981, 1, 1), ethnicity="01",
                              photo=self.photo if with_photo else b"")

    def pin_tries_left(self) -> int | None:
        a = self._enter("pin_tries_left")
        self._leave(a)
        return self.tries_left

    def verify_pin(self, pin: str) -> None:
        a = self._enter("verify_pin")
        self.pins_seen += 1
        if self.tries_left == 0:
            raise PinLocked()
        if pin != self._pin:
            self.tries_left -= 1
            self._leave(a)
            if self.tries_left == 0:
                raise PinLocked()
            raise PinWrong(self.tries_left)
        self.tries_left = self.max_tries
        self.verified = True
        self._leave(a)

    def change_pin(self, old: str, new: str) -> None:
        a = self._enter("change_pin")
        self.verify_pin(old)
        self._pin = new
        self._leave(a)

    def reload_pin(self, new: str) -> None:
        a = self._enter("reload_pin")
        self._pin = new
        self.tries_left = self.max_tries
        self._leave(a)

    def unblock_pin(self) -> None:
        a = self._enter("unblock_pin")
        self.tries_left = self.max_tries
        self._leave(a)

    def bank_cryptogram(self, amount_fen: int, when: datetime) -> BankCryptogram:
        a = self._enter("bank_cryptogram")
        if self.tries_left == 0:
            raise PinLocked()
        if not self.verified:
            raise CardFault("6982 security status not satisfied", -27010)
        if self._bank_pin is not None and not self.bank_verified:
            if self.bank_tries_left == 0:
                raise PinLocked()
            raise BankPinRequired(self.bank_tries_left)
        self.atc += 1
        answer = self._cryptogram(amount_fen, when)
        self._open_arqc = answer.arqc
        self._leave(a)
        return answer

    def bank_pin_tries(self) -> int | None:
        """None for a shared-PIN card once its PIN was verified (spec/card.md §1)."""
        a = self._enter("bank_pin_tries")
        self._leave(a)
        if self._bank_pin is None:
            if self.tries_left == 0:
                raise PinLocked()
            return None if self.verified else self.tries_left
        if self.bank_tries_left == 0:
            raise PinLocked()
        return None if self.bank_verified else self.bank_tries_left

    def verify_bank_pin(self, pin: str) -> None:
        a = self._enter("verify_bank_pin")
        self.pins_seen += 1
        if self._bank_pin is None:  # the shared PIN
            self.verify_pin(pin)
            self._leave(a)
            return
        if self.bank_tries_left == 0:
            raise PinLocked()
        if pin != self._bank_pin:
            self.bank_tries_left -= 1
            self._leave(a)
            if self.bank_tries_left == 0:
                raise PinLocked()
            raise PinWrong(self.bank_tries_left)
        self.bank_tries_left = self.bank_max_tries
        self.bank_verified = True
        self._leave(a)

    def complete_bank(self, arpc: str, arc: str = ARC_APPROVED) -> BankCompletion:
        """Second GENERATE AC: TC only for the issuer's ARPC of an approval over the open
        ARQC; a forged or absent ARPC gets AAC (issuer authentication failed)."""
        a = self._enter("complete_bank")
        if self._open_arqc is None:
            raise CardFault("6985 conditions of use not satisfied (no ARQC open)", -27003)
        arqc, self._open_arqc = self._open_arqc, None
        authentic = bool(arpc) and arpc.upper() == self._issuer_arpc(arqc, arc)
        self.atc += 1
        done = BankCompletion(approved=authentic and arc == ARC_APPROVED,
                              issuer_authentication_failed=not authentic,
                              atc=f"{self.atc:04X}",
                              cryptogram=hashlib.sha256(f"{arqc}{arpc}".encode())
                              .hexdigest()[:16].upper())
        self.completions.append(done)
        self._leave(a)
        return done

    def _issuer_arpc(self, arqc: str, arc: str) -> str:
        """The ARPC this card's issuer would answer for ``arqc``: the fake issuer, or the
        real one (ledger/bank.py) for a card with host-issued numbers and keys."""
        cardinfo = getattr(self, "cardinfo", None)
        if not isinstance(cardinfo, Mapping) or "algorithm" not in cardinfo:
            return fake_arpc(arqc, arc)
        from ledger import bank
        from ledger.policy import load_policy
        from terminal.core.adapters import POLICY_DIR

        alg = 3 if cardinfo["algorithm"] == "SM4" else 1
        area = str(cardinfo["card_sn"])[:6]
        root = load_policy(POLICY_DIR / f"{area}.toml").banks[cardinfo["bank"]].root_ac[alg]
        mk = bank.card_key(root, alg, area, cardinfo["pan"], int(cardinfo["pan_seq"]))
        atc = self.atc
        return bank.arpc(mk, atc, bytes.fromhex(arqc), alg, bytes.fromhex(arc)).hex().upper()

    def _cryptogram(self, amount_fen: int, when: datetime) -> BankCryptogram:
        """The bank application's answer once the PIN gate passed (ATC already counted)."""
        return BankCryptogram(pan="6217000000000000017", amount_fen=amount_fen,
                              cdol1=build_cdol1(amount_fen, when.strftime("%y%m%d"), "12345678"),
                              arqc=f"{amount_fen:016X}", atc=f"{self.atc:04X}")

    def supports_transaction_log(self) -> bool:
        a = self._enter("supports_transaction_log")
        self._leave(a)
        return self.supports_log

    def append_transaction(self, record: TxRecord) -> None:
        a = self._enter("append_transaction")
        if not self.verified:  # DF04 needs the PIN (spec/card.md §3)
            raise CardFault("6982 security status not satisfied", -27010)
        seq = len(self.log) + 1
        self.log.insert(0, TxRecord(record.kind, record.terminal, record.when,
                                    record.account_fen, record.selfpay_fen, record.fund_fen,
                                    sequence=seq))
        if a == "pull_after":
            self.pull()
            raise CardRemovedError("the card was removed mid-command", maybe_done=True,
                                   record_sequence=seq)

    def read_transactions(self) -> list[TxRecord]:
        a = self._enter("read_transactions")
        if not self.verified:
            raise CardFault("6982 security status not satisfied", -27010)
        self._leave(a)
        return list(self.log)


class FakeCatalogue:
    ITEMS: ClassVar[dict[str, CatalogueItem]] = {
        "A001": CatalogueItem("A001", "阿莫西林胶囊", 1250, "盒"),
        "B002": CatalogueItem("B002", "布洛芬缓释胶囊", 1680, "盒"),
        "C003": CatalogueItem("C003", "对乙酰氨基酚片", 560, "瓶"),
    }

    def lookup(self, code: str) -> CatalogueItem:
        try:
            return self.ITEMS[code]
        except KeyError:
            raise UnknownItem(code) from None


@dataclass
class Posting:
    """One applied host message and its effect on the books (fen)."""

    msgid: str
    infno: str
    psn_no: str
    account: int = 0
    bank: int = 0
    cash: int = 0
    fund: int = 0
    setl_id: str = ""
    reversed: bool = False
    output: dict[str, Any] = field(default_factory=dict)


class FakeHost:
    """Books per person with msgid idempotency and 2601 reversal (spec/host.md §4)."""

    REVERSIBLE = frozenset({"2102", "2103", "2304", "2305", "2401"})

    def __init__(self, *, balance: int = 50000, bank: int = 100000,
                 card_state: str = "activated", fund_bp: int = 7000) -> None:
        self.balance = {"P0001": balance}
        self.bank = {"P0001": bank}
        self.card_state = card_state
        self.fund_bp = fund_bp
        self.faults: dict[str, list[str]] = defaultdict(list)
        self.applied: dict[str, Posting] = {}
        self.calls: list[tuple[str, Mapping[str, Any]]] = []
        self.reversals: list[str] = []
        self.cancelled: set[str] = set()
        self.fees: dict[str, int] = {}
        self.admissions: dict[str, str] = {}
        self.discharged: set[str] = set()
        self._seq = itertools.count(1)
        self.counter_ops: list[tuple[str, dict[str, Any]]] = []
        self.old_cards = 0
        self.initial = (dict(self.balance), dict(self.bank))
        self.initial_total = sum(self.balance.values()) + sum(self.bank.values())

    def fault(self, infno: str, *actions: str) -> None:
        self.faults[infno].extend(actions)

    # -- books
    def sales(self) -> list[Posting]:
        """Settlements in force: applied, not reversed, not cancelled."""
        return [p for p in self.applied.values()
                if p.infno in ("2102", "2304") and not p.reversed
                and p.setl_id not in self.cancelled]

    def books_balance(self) -> bool:
        """Every fen that left an account is in a settlement in force (double entry)."""
        spent_acct = sum(p.account for p in self.sales())
        spent_bank = sum(p.bank for p in self.sales())
        return (self.balance["P0001"] + spent_acct + self.bank["P0001"] + spent_bank
                == self.initial_total)

    # -- HostPort
    def call(self, infno: str, input: Mapping[str, Any], *,
             insuplc_admdvs: str = "") -> HostReply:
        self.calls.append((infno, input))
        msgid = f"H37080200001{20261128120000 + next(self._seq):014d}0001"[:30]
        action = self.faults[infno].pop(0) if self.faults.get(infno) else None
        if action == "unreachable":
            raise HostUnreachable("connection refused")
        if action == "timeout_before":
            raise HostTimeout("no answer", infno=infno, msgid=msgid)
        if action == "refuse":
            raise HostRefused(f"refused {infno} by test", infno=infno, msgid=msgid)
        output = self._apply(infno, input, msgid)
        if action == "timeout_after":
            raise HostTimeout("no answer", infno=infno, msgid=msgid)
        return HostReply(output=output, msgid=msgid)

    def reverse(self, *, psn_no: str, omsgid: str, oinfno: str) -> HostReply:
        self.calls.append(("2601", {"omsgid": omsgid, "oinfno": oinfno}))
        action = self.faults["2601"].pop(0) if self.faults.get("2601") else None
        if action == "unreachable":
            raise HostUnreachable("connection refused")
        if action == "timeout_before":
            raise HostTimeout("no answer", infno="2601", msgid="R" + omsgid[1:])
        if action == "refuse":
            raise HostRefused("reversal refused by test", infno="2601")
        self.reversals.append(omsgid)
        p = self.applied.get(omsgid)
        if p is not None and not p.reversed and oinfno in self.REVERSIBLE:
            p.reversed = True
            self.balance[p.psn_no] += p.account
            self.bank[p.psn_no] += p.bank
            if p.infno in ("2103", "2305"):
                orig = p.output["setl_id"]
                self.cancelled.discard(orig)
                src = next(q for q in self.applied.values() if q.setl_id == orig)
                self.balance[p.psn_no] -= src.account
                self.bank[p.psn_no] -= src.bank
        return HostReply(output={}, msgid="R" + omsgid[1:])

    # -- the transactions
    def _apply(self, infno: str, inp: Mapping[str, Any], msgid: str) -> dict[str, Any]:
        if infno == "1101":
            assert inp["data"]["mdtrt_cert_type"] == "03"
            if self.card_state == "refuse":
                raise HostRefused("card not found", infno=infno)
            if self.card_state == "lost_refused":
                raise HostRefused("card X00000019 was reported lost (formal): payments with it "
                                  "are blocked", infno=infno, code="card_lost")
            return {"baseinfo": {"psn_no": "P0001", "certno": "370802198101011116",
                                 "psn_name": "张三", "gend": "1", "brdy": "1981-01-01"},
                    "insuinfo": [{"balc": yuan(self.balance["P0001"]), "insutype": "310",
                                  "insuplc_admdvs": "370800", "psn_insu_stas": "1"}],
                    "cardinfo": {"card_stas": self.card_state}}
        if infno in ("2101", "2102"):
            d = inp["druginfo"]
            total = fen(d["medfee_sumamt"])
            return self._settle(infno, msgid, d, total, 0)
        if infno in ("2303", "2304"):
            d = inp["data"]
            total = fen(d["medfee_sumamt"])
            fund = total * self.fund_bp // 10000
            return self._settle(infno, msgid, d, total, fund)
        if infno in ("2103", "2305"):
            setl_id = inp["data"]["setl_id"]
            src = next((p for p in self.sales() if p.setl_id == setl_id), None)
            if src is None:
                raise HostRefused(f"settlement {setl_id} is not in force", infno=infno)
            self.cancelled.add(setl_id)
            self.balance[src.psn_no] += src.account
            self.bank[src.psn_no] += src.bank
            out = {"setl_id": setl_id}
            self.applied[msgid] = Posting(msgid, infno, src.psn_no, output=out)
            return {"setlinfo": {"setl_id": setl_id, "balc": yuan(self.balance["P0001"])}}
        if infno == "2401":
            mdtrt_id = f"M{len(self.admissions) + 1:05d}"
            self.admissions[mdtrt_id] = inp["mdtrtinfo"]["psn_no"]
            self.applied[msgid] = Posting(msgid, infno, "P0001")
            return {"result": {"mdtrt_id": mdtrt_id}}
        if infno == "2301":
            for ln in inp["feedetail"]:
                self.fees[ln["feedetl_sn"]] = fen(ln["det_item_fee_sumamt"])
            return {"result": [{"feedetl_sn": ln["feedetl_sn"]} for ln in inp["feedetail"]]}
        if infno == "2402":
            self.discharged.add(inp["dscginfo"]["mdtrt_id"])
            return {}
        if infno.startswith("8"):
            return self._counter(infno, inp.get("data", {}))
        raise HostRefused(f"unknown infno {infno}", infno=infno)

    def _counter(self, infno: str, d: Mapping[str, Any]) -> dict[str, Any]:
        if "certno" in d and d["certno"] != "370802198101011116":
            raise HostRefused("the ID number does not match the holder", infno=infno)
        self.counter_ops.append((infno, dict(d)))
        if infno == "8102":
            if self.card_state != "issued":
                raise HostRefused(f"card is {self.card_state}, not waiting for activation",
                                  infno=infno, code="card_state")
            assert d["pin_changed"] is True
            self.card_state = "activated"
            return {"cardinfo": {"card_no": d["card_no"], "card_stas": "activated"}}
        if infno == "8103":
            self.card_state = "loss_formal" if d["loss_type"] == "2" else "loss_temp"
            return {"cardinfo": {"card_stas": self.card_state,
                                 "loss_lapses_at": "2026-12-03 10:00:00"}}
        if infno == "8104":
            self.card_state = "activated"
            return {"cardinfo": {"card_stas": "activated"}}
        if infno == "8105":
            free = d["reason"] in ("damaged_not_holder", "data_error")
            self.card_state = "replaced"
            return {"cardinfo": {"card_no": "B12345678",
                                 "card_sn": "370800D1560000050000000000000001",
                                 "pan": "6217000000000000025", "card_stas": "activated",
                                 "fee": "0.00" if free else "30.00",
                                 "old_card_no": d["card_no"]}}
        if infno == "8106":
            return {"card_no": d["card_no"], "op": d["op"], "fee": "0.00"}
        if infno == "8107":
            return {"changed": sorted(k for k in d if k not in ("psn_no", "certno")),
                    "card_replacement_needed": "psn_name" in d, "certificate_no": "A5X"}
        if infno == "8108":
            return {"balc": yuan(self.balance["P0001"]), "bank_balc": yuan(self.bank["P0001"])}
        if infno == "8201":
            n = min(d["batch_size"], self.old_cards)
            self.old_cards -= n
            self.balance["P0001"] += 100 * n
            return {"migrated": n, "amount": yuan(100 * n), "remaining": self.old_cards,
                    "without_new_card": 0}
        raise HostRefused(f"unknown infno {infno}", infno=infno)

    def _settle(self, infno: str, msgid: str, d: Mapping[str, Any], total: int,
                fund: int) -> dict[str, Any]:
        psn = d["psn_no"]
        if msgid in self.applied:
            return self.applied[msgid].output
        psn_part = total - fund
        account = min(self.balance[psn], psn_part) if d.get("acct_used_flag") == "1" else 0
        rest = psn_part - account
        bank = 0
        final = infno in ("2102", "2304")
        if final and d.get("cash_src") == "bank" and rest > 0:
            auth = d.get("bank_auth")
            if auth is None:
                raise HostRefused("bank_auth missing", infno=infno)
            if int(auth["cdol1"][:12]) != rest:
                raise HostRefused("the ARQC amount differs from the rest", infno=infno)
            if self.bank[psn] < rest:
                raise HostRefused("insufficient funds in the bank account", infno=infno,
                                  code="insufficient_funds")
            bank = rest
        setl_id = ""
        if final:
            setl_id = f"S{next(self._seq):06d}"
            self.balance[psn] -= account
            self.bank[psn] -= bank
        out: dict[str, Any] = {"setlinfo": {
            "setl_id": setl_id, "mdtrt_id": d.get("mdtrt_id", f"MD{setl_id}"),
            "medfee_sumamt": yuan(total), "fund_pay_sumamt": yuan(fund),
            "hifp_pay": yuan(fund), "psn_part_amt": yuan(psn_part),
            "acct_pay": yuan(account), "psn_cash_pay": yuan(rest),
            "balc": yuan(self.balance[psn] - (0 if final else account)),
        }}
        if bank:  # the issuer's answer for the card (spec/card.md §11)
            arqc = str(d["bank_auth"]["arqc"])
            out["setlinfo"].update(arpc=fake_arpc(arqc), arc=ARC_APPROVED)
        if final:
            self.applied[msgid] = Posting(msgid, infno, psn, account=account, bank=bank,
                                          cash=rest - bank, fund=fund, setl_id=setl_id,
                                          output=out)
        return out

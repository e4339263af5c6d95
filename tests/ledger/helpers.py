"""Shared helpers of the ledger tests: terminals, envelopes, people with cards."""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ledger import bank as bankmod
from ledger.client import HostClient, LocalTransport, drug_line
from ledger.service import HostService

REGISTRY = json.loads((Path(__file__).resolve().parents[2] / "fixtures" / "host" /
                       "id_registry.json").read_text(encoding="utf-8"))["persons"]
OFFICE = "S37080000001"
PHARMACY = "P37080000001"
PHARMACY2 = "P37080000002"
NOT_DESIGNATED = "P37080000099"
HOSPITAL = "H37080000001"
BANKS = {"CCB": "B37080000CCB", "ICBC": "B3708000ICBC", "ABC": "B37080000ABC",
         "BOC": "B37080000BOC"}
AMOXICILLIN = "XJ01CAA040A001010101445"   # 甲, 12.50, cap 15.00
CEFACLOR = "XJ01DCA070A001010102349"      # 乙, cap 30.00, 10 % up-front
VITAMIN_D = "XA11CCA000A001010300178"     # 丙
BED = "001103000010000"                   # 甲, 35.00 with cap 30.00
APPENDIX = "003306010010000"              # 甲, 1200.00 with cap 1100.00

_seq = itertools.count(1)


def msgid(inst: str) -> str:
    """A unique, well-formed msgid for ``inst``."""
    n = next(_seq)
    return f"{inst}2026112810{n // 10000 % 100:02d}00{n % 10000:04d}"


def terminal(host: HostService, inst: str) -> HostClient:
    """A signed-in in-process terminal of ``inst`` with deterministic msgids."""
    c = HostClient(LocalTransport(host), fixmedins_code=inst, sign_in=False)
    c.new_msgid = lambda: msgid(inst)  # type: ignore[method-assign]
    c.sign_in()
    return c


def envelope(inst: str, infno: str, inp: Any, *, sign_no: str = "",
             mid: str | None = None) -> dict[str, Any]:
    return {"infno": infno, "msgid": mid or msgid(inst), "mdtrtarea_admvs": "370800",
            "insuplc_admdvs": "", "opter_type": "1", "opter": "0001", "opter_name": "测试",
            "inf_time": "2026-11-28 10:00:00", "fixmedins_code": inst,
            "fixmedins_name": "测试机构", "sign_no": sign_no, "input": inp}


@dataclass
class Holder:
    psn_no: str
    certno: str
    name: str
    card_no: str
    card_sn: str
    pan: str
    bank: str
    alg: int
    atc: int = 0

    def bank_auth(self, host: HostService, amount_fen: int, *, atc: int | None = None,
                  txn_date: str | None = None) -> dict[str, Any]:
        """What the card's GENERATE AC gives for ``amount_fen`` (the card's recipe)."""
        if atc is None:
            self.atc += 1
            atc = self.atc
        policy = host.policy(self.card_sn[:6])
        root = policy.banks[self.bank].root_ac[self.alg]
        mk = bankmod.card_key(root, self.alg, self.card_sn[:6], self.pan, 1)
        date = txn_date or host.clock().strftime("%y%m%d")
        cdol1 = bankmod.build_cdol1(amount=amount_fen, txn_date=date, un="1A2B3C4D")
        return {"pan": self.pan, "pan_seq": "01", "cdol1": cdol1.hex().upper(),
                "atc": f"{atc:04X}",
                "arqc": bankmod.cryptogram(mk, atc, cdol1, self.alg).hex().upper()}


class World:
    """Terminals of the fixture institutions on one host, and people with cards."""

    def __init__(self, host: HostService) -> None:
        self.host = host
        self.office = terminal(host, OFFICE)
        self.pharmacy = terminal(host, PHARMACY)
        self.hospital = terminal(host, HOSPITAL)
        self.banks = {b: terminal(host, code) for b, code in BANKS.items()}
        self._next = 0

    def person(self, bank: str = "CCB", *, medical_fen: int = 50_000, bank_fen: int = 100_000,
               insutype: str = "310", activate: bool = True, generation: str = "3.00",
               index: int | None = None) -> Holder:
        i = self._next if index is None else index
        self._next += 1
        p = REGISTRY[i]
        out = self.office.issue_card(certno=p["certno"], psn_name=p["name"], gend=p["sex"],
                                     brdy=p["brdy"], bank=bank, insuplc_admdvs="370800",
                                     insutype=insutype, generation=generation)["cardinfo"]
        h = Holder(out["psn_no"], p["certno"], p["name"], out["card_no"], out["card_sn"],
                   out["pan"], bank, 3 if out["algorithm"] == "SM4" else 1)
        if activate and out["card_stas"] == "issued":
            self.banks[bank].activate(h.card_no, h.certno)
        if medical_fen:
            self.office.credit(h.psn_no, medical_fen)
        if bank_fen:
            self.banks[bank].credit(h.psn_no, bank_fen, "bank", card_no=h.card_no)
        return h

    def lines(self, *items: tuple[str, str | int, int]) -> list[dict[str, Any]]:
        return [drug_line(str(i + 1), code, cnt, price)
                for i, (code, cnt, price) in enumerate(items)]


def count_rows(host: HostService) -> dict[str, int]:
    """Row counts of every table that records effects."""
    tables = ("entries", "postings", "requests", "answers", "settlements", "cards", "persons",
              "card_events", "admissions", "fee_details", "reversals", "old_cards")

    def q(tx: Any) -> dict[str, int]:
        return {t: int(tx.one(f"SELECT COUNT(*) FROM {t}")[0]) for t in tables}
    return host.store.run(q)


def balances(host: HostService) -> dict[str, int]:
    rows = host.store.run(lambda tx: tx.all("SELECT account_id, balance FROM accounts "
                                            "WHERE kind IN ('medical', 'bank', 'oldmed')"))
    return {str(a): int(b) for a, b in rows}


def verify(host: HostService) -> list[str]:
    from ledger.books import verify as v
    return host.store.run(v)

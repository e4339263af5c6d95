"""Put a fixture card image on an embedded host (tests only).

The fixture cards of ``fixtures/cards`` were personalised by the card side
(card/issue.py) under their own numbers. To run the flows over a real virtual card and a
real host, each card is registered at the host under those numbers with the public 8110
("register a personalised card", ledger/lifecycle.py; the C4 ID check answered from the
card images), in the state the image records, and its accounts are credited (8109).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ledger.client import HostClient, LocalTransport
from ledger.service import HostService, initialize
from ledger.store.base import open_store

REPO = Path(__file__).resolve().parents[2]
CARDS = REPO / "fixtures" / "cards"
OFFICE = "S37080000001"
BANK_COUNTERS = {"CCB": "B37080000CCB", "ICBC": "B3708000ICBC", "ABC": "B37080000ABC",
                 "BOC": "B37080000BOC"}


class _CardImageVerifier:
    """The C4 ID check answered by the card images being enrolled."""

    def __init__(self, people: dict[str, str]) -> None:
        self.people = people

    def check(self, certno: str, name: str) -> str | None:
        return None if self.people.get(certno.upper()) == name else "not in the test registry"


@dataclass
class Enrolled:
    image: Path
    card_no: str
    card_sn: str
    pan: str
    psn_no: str
    name: str
    ssn: str


def copy_fixtures(dest: Path, *names: str) -> dict[str, Path]:
    """Copies of fixture images (cards change as they are used)."""
    out = {}
    dest.mkdir(parents=True, exist_ok=True)
    for n in (*names, "psam-370800"):
        target = dest / f"{n}.json"
        shutil.copy(CARDS / f"{n}.json", target)
        out[n] = target
    return out


def init_host(url: str) -> None:
    store = open_store(url)
    try:
        initialize(store)
    finally:
        store.close()


class Enroller:
    """Registers fixture cards at the host through one client per counter."""

    def __init__(self, url: str) -> None:
        self.verifier = _CardImageVerifier({})
        self.service = HostService.open(url, verifier=self.verifier)
        self.clients: dict[str, HostClient] = {}

    def client(self, code: str) -> HostClient:
        if code not in self.clients:
            self.clients[code] = HostClient(LocalTransport(self.service), fixmedins_code=code)
        return self.clients[code]

    def close(self) -> None:
        for c in self.clients.values():
            c.close()
        self.service.close()

    def enrol(self, image: Path, *, balance: int = 50000, bank_deposit: int = 100000
              ) -> Enrolled:
        """Register the card of ``image`` at the host under its own numbers (8110) in the
        state the image records (activated or not), credit the accounts."""
        doc = json.loads(image.read_text(encoding="utf-8"))
        ident: dict[str, Any] = doc["identity"]
        ssn, name, bank = ident["ssn"], ident["name"], ident["bank"]
        self.verifier.people[ssn] = name
        office = self.client(OFFICE)
        birth = ident["birth_date"]
        registered = office.register_card(
            certno=ssn, psn_name=name, gend=ident["sex"],
            brdy=f"{birth[:4]}-{birth[4:6]}-{birth[6:]}", naty=ident.get("ethnicity") or "01",
            insuplc_admdvs=ident["area_code"], card_no=ident["card_number"],
            card_sn=ident["card_id_code"], pan=ident["pan"], pan_seq=f"{int(ident['psn']):02d}",
            bank=bank, generation=ident["generation"], algorithm=ident["algorithm"],
            card_stas="activated" if doc["policy"].get("activated") else "issued")["cardinfo"]
        psn_no = registered["psn_no"]
        if balance:
            office.credit(psn_no, balance)
        counter = self.client(BANK_COUNTERS[bank])
        if bank_deposit:
            counter.credit(psn_no, bank_deposit, "bank", card_no=ident["card_number"])
        return Enrolled(image, ident["card_number"], ident["card_id_code"], ident["pan"],
                        psn_no, name, ssn)


def enrol(url: str, image: Path, *, balance: int = 50000, bank_deposit: int = 100000
          ) -> Enrolled:
    """Enrol one fixture card (see :class:`Enroller`)."""
    enroller = Enroller(url)
    try:
        return enroller.enrol(image, balance=balance, bank_deposit=bank_deposit)
    finally:
        enroller.close()


def balances(url: str, psn_no: str, pan: str) -> tuple[int, int]:
    from ledger import books

    store = open_store(url)
    try:
        return store.run(lambda tx: (books.balance(tx, books.medical(psn_no)),
                                     books.balance(tx, books.bank(pan))))
    finally:
        store.close()


def books_problems(url: str) -> list[str]:
    from ledger import books

    store = open_store(url)
    try:
        return list(store.run(books.verify))
    finally:
        store.close()


def settlements(url: str) -> list[tuple[Any, ...]]:
    store = open_store(url)
    try:
        return list(store.run(lambda tx: tx.all(
            "SELECT setl_id, state, acct_pay, psn_cash_pay, hifp_pay, medfee_sumamt, "
            "cash_src, card_no FROM settlements ORDER BY created_at")))
    finally:
        store.close()

"""Put a fixture card image on an embedded host (tests only).

The host mints card numbers when it issues a card (8101, ledger/lifecycle.py) and the card
side mints its own (card/issue.py); the fixture cards of ``fixtures/cards`` were issued by
the card side. To run the flows over a real virtual card and a real host, the holder is
issued at the host through the public 8101 (with the ID check answered from the card
image) and the host's card row is then re-keyed to the image's card number, card
identification code and PAN — before any money touches the card's bank account. The
host exposes no "register an existing card" transaction; this helper stands in for it.
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
    """Issues fixture holders at the host through one client per counter (one msgid
    sequence each: two clients of one institution could reuse a msgid in the same second)."""

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
        """Issue the holder of ``image`` at the host under the image's own numbers, mark it
        activated when the card is, credit the accounts."""
        doc = json.loads(image.read_text(encoding="utf-8"))
        ident: dict[str, Any] = doc["identity"]
        ssn, name, bank = ident["ssn"], ident["name"], ident["bank"]
        self.verifier.people[ssn] = name
        office = self.client(OFFICE)
        birth = ident["birth_date"]
        issued = office.issue_card(certno=ssn, psn_name=name, gend=ident["sex"],
                                   brdy=f"{birth[:4]}-{birth[4:6]}-{birth[6:]}", bank=bank,
                                   generation=ident["generation"])["cardinfo"]
        alg = 3 if ident["algorithm"] == "SM4" else 1

        def rekey(tx: Any) -> None:
            tx.execute("UPDATE cards SET card_no = ?, card_sn = ?, pan = ?, pan_seq = ?, "
                       "generation = ?, alg = ? WHERE card_no = ?",
                       (ident["card_number"], ident["card_id_code"], ident["pan"],
                        int(ident["psn"]), ident["generation"], alg, issued["card_no"]))
            tx.execute("UPDATE accounts SET account_id = ?, owner = ? WHERE account_id = ?",
                       (f"bank:{ident['pan']}", ident["card_number"], f"bank:{issued['pan']}"))
            tx.execute("UPDATE card_events SET card_no = ? WHERE card_no = ?",
                       (ident["card_number"], issued["card_no"]))

        self.service.store.run(rekey)
        psn_no = issued["psn_no"]
        if balance:
            office.credit(psn_no, balance)
        counter = self.client(BANK_COUNTERS[bank])
        if doc["policy"].get("activated") and issued["card_stas"] == "issued":
            counter.activate(ident["card_number"], ssn, pin_changed=True)
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

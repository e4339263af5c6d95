"""Persons, cards and old medical cards as the host sees them (spec/host.md §5).

Card states: ``issued`` → ``activated`` → ``loss_temp`` / ``loss_formal`` → ``replaced``
or ``cancelled``. A temporary loss report lapses by itself after the policy's number of
days (the card is usable again) unless it was made formal. PIN lock lives on the card.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from ledger.errors import BadRequest, NotFound, Refused
from ledger.ids import valid_card_no, valid_card_sn, valid_id_number
from ledger.store.base import Tx

if TYPE_CHECKING:
    from ledger.registry import Ctx

BANK_NAMES = {"CCB": "CCB (建设银行)", "ICBC": "ICBC (工商银行)", "ABC": "ABC (农业银行)",
              "BOC": "BOC (中国银行)"}
LIVE = ("issued", "activated", "loss_temp", "loss_formal")
STATE_NAMES = {"issued": "issued, not yet activated", "activated": "activated",
               "loss_temp": "reported lost (temporary)", "loss_formal": "reported lost (formal)",
               "replaced": "replaced", "cancelled": "cancelled"}
STATE_CODES = {"issued": "0", "activated": "1", "loss_temp": "2", "loss_formal": "3",
               "replaced": "4", "cancelled": "9"}

PERSON_COLS = ("psn_no, certno, psn_name, gend, naty, brdy, insutype, psn_type, psn_insu_stas, "
               "insuplc_admdvs, emp_name")
CARD_COLS = ("card_no, card_sn, psn_no, pan, pan_seq, bank, state, generation, alg, "
             "issued_at, state_at, atc_last, activated_at, replaces")


@dataclass
class Person:
    psn_no: str
    certno: str
    psn_name: str
    gend: str
    naty: str
    brdy: str
    insutype: str
    psn_type: str
    psn_insu_stas: str
    insuplc_admdvs: str
    emp_name: str

    def age(self, on: datetime) -> int:
        y, m, d = (int(x) for x in self.brdy.split("-"))
        return on.year - y - ((on.month, on.day) < (m, d))

    def baseinfo(self, on: datetime) -> dict[str, Any]:
        return {"psn_no": self.psn_no, "psn_cert_type": "01", "certno": self.certno,
                "psn_name": self.psn_name, "gend": self.gend, "naty": self.naty,
                "brdy": self.brdy, "age": self.age(on)}


@dataclass
class Card:
    card_no: str
    card_sn: str
    psn_no: str
    pan: str
    pan_seq: int
    bank: str
    state: str
    generation: str
    alg: int
    issued_at: str
    state_at: str
    atc_last: int
    activated_at: str
    replaces: str

    def info(self, ctx: Ctx) -> dict[str, Any]:
        st = effective_state(ctx, self)
        return {"card_no": self.card_no, "card_sn": self.card_sn, "pan": self.pan,
                "pan_seq": f"{self.pan_seq:02d}", "bank": self.bank, "card_stas": st,
                "card_stas_code": STATE_CODES[st], "generation": self.generation,
                "algorithm": "SM4" if self.alg == 3 else "3DES",
                "issued_at": self.issued_at}


def get_person(tx: Tx, psn_no: str) -> Person:
    row = tx.one(f"SELECT {PERSON_COLS} FROM persons WHERE psn_no = ?", (psn_no,))
    if row is None:
        raise NotFound(f"person {psn_no} is unknown at this host")
    return Person(*row)


def person_by_certno(tx: Tx, certno: str) -> Person:
    if not valid_id_number(certno):
        raise BadRequest(f"ID number {certno} fails its GB 11643 check character")
    row = tx.one(f"SELECT {PERSON_COLS} FROM persons WHERE certno = ?", (certno.upper(),))
    if row is None:
        raise NotFound(f"no insured person with ID number {certno} at this host")
    return Person(*row)


def get_card(tx: Tx, card_no: str) -> Card:
    if not valid_card_no(card_no):
        raise BadRequest(f"card number {card_no!r} is not a valid social security card number "
                         "(9 characters with a check character)")
    row = tx.one(f"SELECT {CARD_COLS} FROM cards WHERE card_no = ?", (card_no,))
    if row is None:
        raise NotFound(f"card {card_no} is unknown at this host")
    return Card(*row)


def live_card(tx: Tx, psn_no: str) -> Card | None:
    row = tx.one(f"SELECT {CARD_COLS} FROM cards WHERE psn_no = ? AND state IN "
                 "('issued', 'activated', 'loss_temp', 'loss_formal') ORDER BY issued_at DESC",
                 (psn_no,))
    return Card(*row) if row else None


def holder_check(tx: Tx, card: Card, certno: str) -> Person:
    """The counter's identity check: the holder's ID number must match the card's."""
    person = get_person(tx, card.psn_no)
    if certno.upper() != person.certno:
        raise Refused(f"the ID number does not match the holder of card {card.card_no}: "
                      "the holder must come with their own ID card")
    return person


def temp_loss_lapses(ctx: Ctx, card: Card) -> datetime:
    """When a temporary loss report of ``card`` lapses (the card's area policy)."""
    days = ctx.service.policy(card.card_sn[:6]).temp_loss_days
    return datetime.fromisoformat(card.state_at) + timedelta(days=days)


def effective_state(ctx: Ctx, card: Card) -> str:
    """The card's state now: a temporary loss report past its expiry has lapsed."""
    if card.state == "loss_temp" and ctx.now >= temp_loss_lapses(ctx, card):
        return "activated" if card.activated_at else "issued"
    return card.state


def require_usable(ctx: Ctx, tx: Tx, card: Card) -> None:
    """Refuse every payment with a card that is not activated, reported lost or replaced
    (spec/host.md §5; seed rules A4, L1)."""
    st = effective_state(ctx, card)
    if st == "activated":
        return
    bank = BANK_NAMES.get(card.bank, card.bank)
    if st == "issued":
        raise Refused(f"card {card.card_no} is not activated: the holder activates it at a "
                      f"{bank} counter, where the PIN is changed (rule A4)", code="card_state")
    if st == "loss_temp":
        until = temp_loss_lapses(ctx, card).strftime("%Y-%m-%d %H:%M")
        raise Refused(f"card {card.card_no} was reported lost (temporary, until {until}): "
                      "payments with it are blocked; the holder lifts the report or replaces "
                      "the card (rule L1)", code="card_lost")
    if st == "loss_formal":
        raise Refused(f"card {card.card_no} was reported lost (formal) on {card.state_at[:10]}:"
                      " payments with it are blocked; the holder replaces it at the bank "
                      "(rule L1)", code="card_lost")
    if st == "replaced":
        row = tx.one("SELECT card_no FROM cards WHERE replaces = ?", (card.card_no,))
        new = row[0] if row else "a new card"
        raise Refused(f"card {card.card_no} was replaced by card {new}: use the new card",
                      code="card_state")
    raise Refused(f"card {card.card_no} is {STATE_NAMES.get(st, st)}: it cannot pay",
                  code="card_state")


@dataclass
class Payer:
    """Who pays: the person, the card presented (if any), and the medical account used."""

    person: Person
    card: Card | None
    account: str
    old_card_no: str = ""
    balance: int | None = None
    """The account balance, when it was read together with the card."""
    ytd: tuple[int, int, int] | None = None
    """(year, deductible applied, pooled fund paid) of the holder's insutype that year,
    when read together with the card (``resolve(..., ytd_year=…)``)."""


_CARD_PERSON_COLS = ", ".join(f"c.{c.strip()}" for c in CARD_COLS.split(",")) + ", " + \
    ", ".join(f"p.{c.strip()}" for c in PERSON_COLS.split(","))
_N_CARD_COLS = len(CARD_COLS.split(","))
YTD_SQL = ("(SELECT COALESCE(SUM(s.{col}), 0) FROM settlements s WHERE s.psn_no = p.psn_no "
           "AND s.setl_year = ? AND s.insutype = p.insutype AND s.state = 'settled')")


def resolve(ctx: Ctx, tx: Tx, cert_type: str, cert_no: str, card_sn: str, psn_no: str | None,
            *, payment: bool, ytd_year: int | None = None) -> Payer:
    """Identify the person from the medical certificate (spec/host.md §2, 1101).

    ``03`` card number + card identification code; ``02`` ID number; ``04`` old medical card
    (sscard, seed rule M2); ``01`` (e-voucher) is not offered by this host. With
    ``ytd_year``, a card's read also fetches the holder's year-to-date deductible and fund
    payments (:attr:`Payer.ytd`), saving the settlement a round trip.
    """
    from ledger import books
    card: Card | None = None
    old = ""
    balance: int | None = None
    ytd: tuple[int, int, int] | None = None
    if cert_type == "03":
        if not valid_card_no(cert_no):
            raise BadRequest(f"card number {cert_no!r} is not a valid social security card "
                             "number (9 characters with a check character)")
        # one round trip: card, holder and the holder's medical balance
        cols = _CARD_PERSON_COLS
        extra = ""
        args: list[Any] = [cert_no]
        if ytd_year is not None:
            extra = ", " + YTD_SQL.format(col="act_pay_dedc") + ", " + \
                YTD_SQL.format(col="hifp_pay")
            args = [ytd_year, ytd_year, cert_no]
        row = tx.one(f"SELECT {cols}, a.balance{extra} FROM cards c JOIN persons p ON "
                     "p.psn_no = c.psn_no LEFT JOIN accounts a ON "
                     "a.account_id = 'medical:' || p.psn_no WHERE c.card_no = ?", args)
        if row is None:
            raise NotFound(f"card {cert_no} is unknown at this host")
        if ytd_year is not None:
            ytd = (ytd_year, int(row[-2]), int(row[-1]))
            row = row[:-2]
        nc = _N_CARD_COLS
        card = Card(*row[:nc])
        person = Person(*row[nc:-1])
        balance = None if row[-1] is None else int(row[-1])
        if not card_sn:
            raise BadRequest("card_sn (the card identification code) is required with "
                             "mdtrt_cert_type 03")
        if not valid_card_sn(card_sn.upper()) or card_sn.upper() != card.card_sn:
            raise Refused(f"the card identification code does not match card {cert_no}: the "
                          "card is not the one the host issued", code="card_mismatch")
        if payment or card.state in ("loss_temp", "loss_formal", "replaced", "cancelled"):
            require_usable(ctx, tx, card)
        account = books.medical(person.psn_no)
    elif cert_type == "02":
        person = person_by_certno(tx, cert_no)
        card = live_card(tx, person.psn_no)
        account = books.medical(person.psn_no)
    elif cert_type == "04":
        row = tx.one("SELECT psn_no, state FROM old_cards WHERE old_card_no = ?", (cert_no,))
        if row is None:
            raise NotFound(f"old medical card {cert_no} is unknown at this host")
        person = get_person(tx, str(row[0]))
        if row[1] != "active":
            raise Refused(f"old medical card {cert_no} was migrated into the personal account "
                          "and stopped working (rule M2): pay with the social security card",
                          code="card_state")
        trans = tx.one("SELECT value FROM settings WHERE key = 'old_card_transition'")
        if payment and (trans is None or trans[0] != "open"):
            raise Refused(f"old medical card {cert_no} stopped working at the cut-over "
                          "(rule M2): pay with the social security card", code="card_state")
        account = books.oldmed(cert_no)
        old = cert_no
    else:
        raise BadRequest(f"mdtrt_cert_type {cert_type} (electronic voucher) is not offered by "
                         "this host: use 03 (card) or 02 (ID number)")
    if psn_no is not None and psn_no != person.psn_no:
        raise Refused(f"psn_no {psn_no} is not the holder of the certificate presented",
                      code="card_mismatch")
    return Payer(person=person, card=card, account=account, old_card_no=old, balance=balance,
                 ytd=ytd)

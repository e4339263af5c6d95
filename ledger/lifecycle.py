"""Card lifecycle and counter operations (spec/host.md §5; seed rules C3, C4, C7, A3–A5,
L1, L2, M1, M2). They are not in the national list; sscard names them in the same style:

====  ==========================================  =======================================
code  operation                                    where
====  ==========================================  =======================================
8101  issue a card for a person (发卡, C4 check)     social security office or bank counter
8102  activate a card (激活, A3/A4)                  the issuing bank's counter
8103  report loss, temporary / formal (挂失, L1)     the issuing bank or the office
8104  lift a loss report (解挂)                      the issuing bank or the office
8105  replace a card (补换卡, L1/L2/A5)              the issuing bank's counter
8106  record a PIN unlock / reset (密码重置, C3)      the issuing bank's counter; free
8107  change holder data (信息变更, A5/C7)            the office
8108  balance enquiry (余额查询, U5)                  any (see ledger.queries)
8109  credit an account (个人账户划入 / 存款)          office (medical, old card) / bank
8110  register a personalised card (制卡登记, C4)     office or the issuing bank's counter
8201  migrate old medical cards, one batch (M2)     the office
8202  open / close the old-card transition (M2)     the office
8203  register an old medical card and its balance  the office
====  ==========================================  =======================================
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from ledger import books
from ledger.errors import BadRequest, NotFound, Refused
from ledger.holders import (
    BANK_NAMES,
    LIVE,
    Card,
    effective_state,
    get_card,
    get_person,
    holder_check,
    live_card,
    temp_loss_lapses,
)
from ledger.ids import (
    card_sn_authentic,
    make_card_no,
    make_card_sn,
    make_pan,
    valid_card_no,
    valid_id_number,
    valid_pan,
)
from ledger.money import yuan
from ledger.registry import Ctx, op
from ledger.schemas import (
    In8101,
    In8102,
    In8103,
    In8104,
    In8105,
    In8106,
    In8107,
    In8109,
    In8110,
    In8201,
    In8202,
    In8203,
)
from ledger.store.base import Tx


def _event(ctx: Ctx, tx: Tx, card_no: str, kind: str, **detail: Any) -> None:
    tx.execute("INSERT INTO card_events (event_id, card_no, msgid, kind, at, detail) "
               "VALUES (?, ?, ?, ?, ?, ?)",
               (f"{ctx.msgid}:{card_no}:{kind}", card_no, ctx.msgid, kind, ctx.iso,
                json.dumps(detail, ensure_ascii=False)))


def _require_kind(ctx: Ctx, *kinds: str, bank: str = "") -> None:
    inst = ctx.inst
    if inst["kind"] not in kinds:
        raise Refused(f"{ctx.infno} is done at a {' or '.join(kinds)} counter; "
                      f"{inst['name']} is a {inst['kind']}", code="wrong_institution")
    if bank and inst["kind"] == "bank" and inst["bank"] != bank:
        raise Refused(f"this card was issued by {BANK_NAMES.get(bank, bank)}: go to a "
                      f"{BANK_NAMES.get(bank, bank)} counter ({inst['name']} is "
                      f"{BANK_NAMES.get(inst['bank'], inst['bank'])})", code="wrong_bank")


def _set_state(tx: Tx, card: Card, to: str, ctx: Ctx, *, frm: tuple[str, ...],
               activated: bool = False) -> None:
    sets = "state = ?, state_at = ?" + (", activated_at = ?" if activated else "")
    params: tuple[Any, ...] = (to, ctx.iso) + ((ctx.iso,) if activated else ())
    marks = ", ".join("?" for _ in frm)
    n = tx.execute(f"UPDATE cards SET {sets} WHERE card_no = ? AND state IN ({marks})",
                   (*params, card.card_no, *frm))
    if n != 1:
        raise Refused(f"card {card.card_no} changed state meanwhile; try again",
                      code="card_state")


def _mint_card(ctx: Ctx, tx: Tx, *, psn_no: str, area: str, bank_code: str, generation: str,
               alg: int, replaces: str) -> Card:
    bank = ctx.service.policy(area).banks.get(bank_code)
    if bank is None:
        raise Refused(f"bank {bank_code} does not issue cards in area {area}", code="bank")
    for salt in range(100):
        card_no = make_card_no(ctx.msgid + psn_no, salt)
        if tx.one("SELECT 1 FROM cards WHERE card_no = ?", (card_no,)) is None:
            break
    else:  # pragma: no cover - 24 × 10^7 numbers
        raise Refused("no free card number found; try again", code="busy")
    for salt in range(100):
        seed = f"{ctx.msgid}/{psn_no}/{salt}"
        card_sn = make_card_sn(area, seed)
        serial = int.from_bytes(hashlib.sha256(seed.encode()).digest()[:8], "big")
        pan = make_pan(bank.bin, serial)
        if tx.one("SELECT 1 FROM cards WHERE card_sn = ? OR pan = ?", (card_sn, pan)) is None:
            break
    else:  # pragma: no cover - 2^32 serials per area
        raise Refused("no free card identification code found; try again", code="busy")
    state = "activated" if bank.activation == "delivered" else "issued"
    act = ctx.iso if state == "activated" else ""
    tx.execute("INSERT INTO cards (card_no, card_sn, psn_no, pan, pan_seq, bank, state, "
               "generation, alg, issued_at, state_at, atc_last, activated_at, replaces) "
               "VALUES (?, ?, ?, ?, 1, ?, ?, ?, ?, ?, ?, 0, ?, ?)",
               (card_no, card_sn, psn_no, pan, bank_code, state, generation, alg, ctx.iso,
                ctx.iso, act, replaces))
    books.open_account(tx, books.bank(pan), card_no)
    return get_card(tx, card_no)


def _card_out(ctx: Ctx, card: Card) -> dict[str, Any]:
    out = card.info(ctx)
    out["psn_no"] = card.psn_no
    out["area_code"] = card.card_sn[:6]
    out["initial_pin_envelope"] = card.state == "activated" and not card.replaces
    return out


def _id_check(ctx: Ctx, certno: str, name: str, brdy: str) -> None:
    """Rule C4: the ID number is well formed, agrees with the birth date and passes the
    national ID check with the name; otherwise no card is issued or registered."""
    if not valid_id_number(certno):
        raise BadRequest(f"input.data.certno {certno} fails its GB 11643 check character")
    if certno[6:14] != brdy.replace("-", ""):
        raise BadRequest(f"input.data.brdy {brdy} is not the birth date in the ID number")
    reason = ctx.service.verifier.check(certno.upper(), name)
    if reason is not None:
        raise Refused(f"ID check failed: {reason}; no card is issued (rule C4)",
                      code="id_check")


def _person_for_card(ctx: Ctx, tx: Tx, d: Any) -> str:
    """The ``psn_no`` of the person of an 8101/8110 request (created when new), who must
    not hold a live card already."""
    certno = d.certno.upper()
    row = tx.one("SELECT psn_no FROM persons WHERE certno = ?", (certno,))
    if row is None:
        psn_no = str(d.insuplc_admdvs + certno)
        tx.execute("INSERT INTO persons (psn_no, certno, psn_name, gend, naty, brdy, insutype, "
                   "psn_type, psn_insu_stas, insuplc_admdvs, emp_name, created_at) VALUES "
                   "(?, ?, ?, ?, ?, ?, ?, ?, '1', ?, ?, ?)",
                   (psn_no, certno, d.psn_name, d.gend, d.naty, d.brdy, d.insutype,
                    d.psn_type, d.insuplc_admdvs, d.emp_name, ctx.iso))
        books.open_account(tx, books.medical(psn_no), psn_no)
        return psn_no
    psn_no = str(row[0])
    person = get_person(tx, psn_no)
    if person.psn_name != d.psn_name:
        raise Refused(f"ID number {certno} is registered to another name at this host: "
                      "correct the holder data (8107) first", code="id_check")
    _no_live_card(tx, psn_no)
    return psn_no


def _no_live_card(tx: Tx, psn_no: str) -> None:
    held = live_card(tx, psn_no)
    if held is not None:
        raise Refused(f"person {psn_no} already holds card {held.card_no} "
                      f"({held.state}): use a replacement (8105), not a new issue",
                      code="already_issued")


@op("8101", "issue a card (发卡)", In8101)
def issue(ctx: Ctx, tx: Tx, data: In8101) -> dict[str, Any]:
    """Real-name issuance (C4): the ID check must pass or no card is issued."""
    _require_kind(ctx, "office", "bank")
    d = data.data
    _id_check(ctx, d.certno, d.psn_name, d.brdy)
    policy = ctx.service.policy(d.insuplc_admdvs)
    if d.bank not in policy.banks:
        raise Refused(f"{BANK_NAMES.get(d.bank, d.bank)} does not issue cards in area "
                      f"{d.insuplc_admdvs}", code="bank")
    psn_no = _person_for_card(ctx, tx, d)
    alg = 3 if d.generation == "3.00" else 1
    card = _mint_card(ctx, tx, psn_no=psn_no, area=d.insuplc_admdvs, bank_code=d.bank,
                      generation=d.generation, alg=alg, replaces="")
    _event(ctx, tx, card.card_no, "issue", bank=d.bank, at=ctx.fixmedins_code)
    return {"cardinfo": _card_out(ctx, card)}


@op("8102", "activate a card (激活)", In8102)
def activate(ctx: Ctx, tx: Tx, data: In8102) -> dict[str, Any]:
    """A3: CCB cards arrive activated; A4: ICBC, ABC, BOC cards are activated at that bank's
    counter (or its mobile POS), where the PIN is changed."""
    d = data.data
    card = get_card(tx, d.card_no)
    _require_kind(ctx, "bank", bank=card.bank)
    holder_check(tx, card, d.certno)
    st = effective_state(ctx, card)
    if st != "issued":
        why = (" (rule A3: CCB cards arrive activated)" if card.bank == "CCB" and
               st == "activated" else "")
        raise Refused(f"card {card.card_no} is {st}, not waiting for activation{why}",
                      code="card_state")
    if not d.pin_changed:
        raise Refused("activation needs the holder to change the initial PIN at the counter "
                      "(rule A4): set pin_changed once the card has accepted the new PIN",
                      code="pin_change")
    _set_state(tx, card, "activated", ctx, frm=("issued",), activated=True)
    # opter_type 3 = mobile: the bank's staff with a mobile POS at the workplace or home (A4)
    _event(ctx, tx, card.card_no, "activate",
           channel="mobile" if ctx.opter_type == "3" else "counter")
    return {"cardinfo": _card_out(ctx, get_card(tx, card.card_no))}


@op("8103", "report a loss (挂失)", In8103)
def report_loss(ctx: Ctx, tx: Tx, data: In8103) -> dict[str, Any]:
    """L1: after the report nobody can spend the balances with the card."""
    d = data.data
    card = get_card(tx, d.card_no)
    _require_kind(ctx, "bank", "office", bank=card.bank)
    holder_check(tx, card, d.certno)
    st = effective_state(ctx, card)
    if st in ("replaced", "cancelled"):
        raise Refused(f"card {card.card_no} is already {st}", code="card_state")
    if st == "loss_formal":
        raise Refused(f"card {card.card_no} is already reported lost (formal)",
                      code="card_state")
    if st == "loss_temp" and d.loss_type == "1":
        raise Refused(f"card {card.card_no} is already reported lost (temporary)",
                      code="card_state")
    to = "loss_temp" if d.loss_type == "1" else "loss_formal"
    _set_state(tx, card, to, ctx, frm=(card.state,))
    _event(ctx, tx, card.card_no, to, previous=st)
    out = _card_out(ctx, get_card(tx, card.card_no))
    if to == "loss_temp":
        out["loss_lapses_at"] = temp_loss_lapses(ctx, get_card(tx, card.card_no)).strftime(
            "%Y-%m-%d %H:%M:%S")
    return {"cardinfo": out}


@op("8104", "lift a loss report (解挂)", In8104)
def lift_loss(ctx: Ctx, tx: Tx, data: In8104) -> dict[str, Any]:
    d = data.data
    card = get_card(tx, d.card_no)
    _require_kind(ctx, "bank", "office", bank=card.bank)
    holder_check(tx, card, d.certno)
    if card.state not in ("loss_temp", "loss_formal"):
        raise Refused(f"card {card.card_no} is not reported lost", code="card_state")
    to = "activated" if card.activated_at else "issued"
    _set_state(tx, card, to, ctx, frm=(card.state,))
    _event(ctx, tx, card.card_no, "lift_loss", previous=card.state)
    return {"cardinfo": _card_out(ctx, get_card(tx, card.card_no))}


FREE_REASONS = ("damaged_not_holder", "data_error")


@op("8105", "replace a card (补换卡)", In8105)
def replace(ctx: Ctx, tx: Tx, data: In8105) -> dict[str, Any]:
    """L1/L2/A5: a new card number and identification code for the same person; the bank
    balance moves to the new card's account; the medical account stays; the fee is charged
    unless the damage is not the holder's fault (certificate from the office) or the card
    data was wrong."""
    d = data.data
    card = get_card(tx, d.card_no)
    _require_kind(ctx, "bank", bank=card.bank)
    person = holder_check(tx, card, d.certno)
    st = effective_state(ctx, card)
    if st not in LIVE:
        raise Refused(f"card {card.card_no} is {st}: only a live card can be replaced",
                      code="card_state")
    if d.reason == "lost" and st not in ("loss_temp", "loss_formal"):
        raise Refused(f"card {card.card_no} is not reported lost: report the loss (8103) "
                      "before replacing a lost card (rule L1)", code="card_state")
    if d.reason in FREE_REASONS and not d.certificate_no:
        raise Refused("a free replacement needs the certificate from the social security card "
                      "office (certificate_no) (rules L2, A5)", code="certificate")
    area = card.card_sn[:6]
    policy = ctx.service.policy(area)
    fee = 0 if d.reason in FREE_REASONS else policy.replacement_fee
    new = _mint_card(ctx, tx, psn_no=card.psn_no, area=area, bank_code=card.bank,
                     generation="3.00" if card.generation < "3.00" else card.generation,
                     alg=card.alg if card.generation >= "3.00" else 3, replaces=card.card_no)
    _set_state(tx, card, "replaced", ctx, frm=(card.state,))
    moved = books.balance(tx, books.bank(card.pan))
    postings: list[tuple[str, int]] = [(books.bank(card.pan), -moved),
                                       (books.bank(new.pan), moved)]
    if fee:
        src = books.bank(new.pan) if d.fee_src == "bank" else books.EXTERNAL_CASH
        postings += [(src, -fee), (books.fee(area), fee)]
    if any(amt for _, amt in postings):
        books.post(tx, books.Entry(
            entry_id="E" + ctx.msgid, msgid=ctx.msgid, kind="replace", day=ctx.day,
            fixmedins_code=ctx.fixmedins_code, created_at=ctx.iso,
            memo=f"{card.card_no}->{new.card_no}", postings=postings))
    _event(ctx, tx, card.card_no, "replaced", by=new.card_no, reason=d.reason, fee=fee)
    _event(ctx, tx, new.card_no, "issue", replaces=card.card_no, reason=d.reason)
    out = _card_out(ctx, new)
    out.update({"old_card_no": card.card_no, "fee": yuan(fee), "fee_src": d.fee_src,
                "bank_balance_moved": yuan(moved), "psn_no": person.psn_no,
                "bank_balc": yuan(books.balance(tx, books.bank(new.pan))),
                "balc": yuan(books.balance(tx, books.medical(person.psn_no)))})
    return {"cardinfo": out}


@op("8106", "record a PIN unlock / reset (密码重置)", In8106)
def pin_reset(ctx: Ctx, tx: Tx, data: In8106) -> dict[str, Any]:
    """C3: the holder brings their own ID card to a bank counter; the PIN is reset on the
    card there, free of charge. The host records it and never sees a PIN."""
    d = data.data
    card = get_card(tx, d.card_no)
    _require_kind(ctx, "bank", bank=card.bank)
    holder_check(tx, card, d.certno)
    st = effective_state(ctx, card)
    if st not in LIVE:
        raise Refused(f"card {card.card_no} is {st}: use the current card", code="card_state")
    _event(ctx, tx, card.card_no, f"pin_{d.op}", fee=0)
    return {"card_no": card.card_no, "op": d.op, "fee": "0.00", "recorded_at": ctx.ts}


@op("8107", "change holder data (信息变更)", In8107)
def change_holder(ctx: Ctx, tx: Tx, data: In8107) -> dict[str, Any]:
    """A5 (data corrected at the office; the bank then replaces the card free of charge) and
    C7 (a job change needs no new card: only emp_name changes)."""
    _require_kind(ctx, "office")
    d = data.data
    p = get_person(tx, d.psn_no)
    if d.certno.upper() != p.certno:
        raise Refused(f"the ID number does not match person {d.psn_no}", code="id_check")
    new = {"psn_name": d.psn_name or p.psn_name, "gend": d.gend or p.gend,
           "naty": d.naty or p.naty, "brdy": d.brdy or p.brdy,
           "emp_name": p.emp_name if d.emp_name is None else d.emp_name,
           "certno": (d.new_certno or p.certno).upper()}
    if new["certno"] != p.certno or new["psn_name"] != p.psn_name:
        if not valid_id_number(new["certno"]):
            raise BadRequest(f"input.data.new_certno {new['certno']} fails its GB 11643 check")
        reason = ctx.service.verifier.check(new["certno"], new["psn_name"])
        if reason is not None:
            raise Refused(f"ID check failed for the new data: {reason} (rule C4)",
                          code="id_check")
        if new["certno"] != p.certno and tx.one(
                "SELECT 1 FROM persons WHERE certno = ?", (new["certno"],)) is not None:
            raise Refused(f"ID number {new['certno']} already belongs to another person",
                          code="id_check")
    tx.execute("UPDATE persons SET psn_name = ?, gend = ?, naty = ?, brdy = ?, emp_name = ?, "
               "certno = ? WHERE psn_no = ?",
               (new["psn_name"], new["gend"], new["naty"], new["brdy"], new["emp_name"],
                new["certno"], p.psn_no))
    card = live_card(tx, p.psn_no)
    changed = sorted(k for k in new if new[k] != getattr(p, k))
    card_data = [k for k in changed if k != "emp_name"]
    if card is not None:
        _event(ctx, tx, card.card_no, "holder_change", fields=changed)
    return {"baseinfo": get_person(tx, p.psn_no).baseinfo(ctx.now), "changed": changed,
            "card_no": card.card_no if card else "",
            "card_replacement_needed": bool(card_data and card is not None),
            "certificate_no": ("A5" + ctx.msgid) if card_data else ""}


@op("8109", "credit an account (个人账户划入 / 存款)", In8109)
def credit(ctx: Ctx, tx: Tx, data: In8109) -> dict[str, Any]:
    """Money in: monthly personal-account credits, old-card credits (refused once the
    person holds a social security card: rule M1), bank deposits."""
    d = data.data
    if d.amount <= 0:
        raise BadRequest("input.data.amount must be positive")
    p = get_person(tx, d.psn_no)
    if d.target == "medical":
        _require_kind(ctx, "office")
        src, dst = books.contrib(p.insuplc_admdvs), books.medical(p.psn_no)
    elif d.target == "old":
        _require_kind(ctx, "office")
        row = tx.one("SELECT psn_no, state FROM old_cards WHERE old_card_no = ?",
                     (d.old_card_no,))
        if row is None or row[0] != p.psn_no:
            raise NotFound(f"old medical card {d.old_card_no!r} of person {p.psn_no} is "
                           "unknown")
        if tx.one("SELECT 1 FROM cards WHERE psn_no = ?", (p.psn_no,)) is not None:
            raise Refused(f"person {p.psn_no} holds a social security card: no more money is "
                          "credited to the old medical card (rule M1); credit the personal "
                          "account instead", code="old_card_closed")
        if row[1] != "active":
            raise Refused(f"old medical card {d.old_card_no} is {row[1]}", code="card_state")
        src, dst = books.contrib(p.insuplc_admdvs), books.oldmed(d.old_card_no)
    else:
        card = get_card(tx, d.card_no) if d.card_no else live_card(tx, p.psn_no)
        if card is None or card.psn_no != p.psn_no:
            raise NotFound(f"person {p.psn_no} has no such card")
        _require_kind(ctx, "bank", bank=card.bank)
        src, dst = books.deposits(card.bank), books.bank(card.pan)
    books.post(tx, books.Entry(
        entry_id="E" + ctx.msgid, msgid=ctx.msgid, kind=f"credit:{d.target}", day=ctx.day,
        fixmedins_code=ctx.fixmedins_code, created_at=ctx.iso, memo=dst,
        postings=[(src, -d.amount), (dst, d.amount)]))
    return {"psn_no": p.psn_no, "target": d.target, "amount": yuan(d.amount),
            "balc": yuan(books.balance(tx, dst))}


@op("8110", "register a personalised card (制卡登记)", In8110)
def register_card(ctx: Ctx, tx: Tx, data: In8110) -> dict[str, Any]:
    """A card personalised elsewhere (a card bureau, a prepared card image) enters the host
    under its own numbers: card number (spec/card.md §4, check character), card
    identification code (its authentication part must match), PAN (Luhn; a bank issues
    under several BINs, so the policy's BIN is not required).

    The holder is ``psn_no`` of a known person or the person's data, and the ID check of
    rule C4 applies as for 8101. The state is the card's: ``activated`` or ``issued``; CCB
    cards arrive activated (rule A3), the other banks' cards are registered ``issued``
    until activated at their counter (8102) unless that already happened (A4). A card
    number, identification code or PAN the host already knows is refused.
    """
    d = data.data
    _require_kind(ctx, "office", "bank", bank=d.bank)
    if not valid_card_no(d.card_no):
        raise BadRequest(f"input.data.card_no {d.card_no} has a wrong check character "
                         "(spec/card.md §4)")
    if not card_sn_authentic(d.card_sn):
        raise BadRequest(f"input.data.card_sn {d.card_sn} is not a card identification code "
                         "of this scheme (area ‖ D156000005 ‖ serial ‖ authentication code)")
    if not valid_pan(d.pan):
        raise BadRequest(f"input.data.pan {d.pan} fails its Luhn check digit")
    area = d.card_sn[:6]
    bank = ctx.service.policy(area).banks.get(d.bank)
    if bank is None:
        raise Refused(f"{BANK_NAMES.get(d.bank, d.bank)} does not issue cards in area {area}",
                      code="bank")
    if bank.activation == "delivered" and d.card_stas != "activated":
        raise Refused(f"{BANK_NAMES.get(d.bank, d.bank)} cards arrive activated (rule A3): "
                      "register the card as activated", code="card_state")
    for col, value, what in (("card_no", d.card_no, "card number"),
                             ("card_sn", d.card_sn, "card identification code"),
                             ("pan", d.pan, "PAN")):
        row = tx.one(f"SELECT card_no FROM cards WHERE {col} = ?", (value,))
        if row is not None:
            raise Refused(f"{what} {value} is already registered at this host (card "
                          f"{row[0]}): a card is registered once", code="duplicate")
    if d.psn_no:
        person = get_person(tx, d.psn_no)
        if d.certno and d.certno.upper() != person.certno:
            raise Refused(f"ID number {d.certno} is not that of person {d.psn_no}",
                          code="id_check")
        if d.psn_name and d.psn_name != person.psn_name:
            raise Refused(f"person {d.psn_no} is registered under another name: correct the "
                          "holder data (8107) first", code="id_check")
        _id_check(ctx, person.certno, person.psn_name, person.brdy)
        _no_live_card(tx, person.psn_no)
        psn_no = person.psn_no
    else:
        missing = [f for f in ("certno", "psn_name", "gend", "brdy") if not getattr(d, f)]
        if missing:
            raise BadRequest(f"input.data needs psn_no or the person's {', '.join(missing)}")
        _id_check(ctx, d.certno, d.psn_name, d.brdy)
        if not d.insuplc_admdvs:
            d = d.model_copy(update={"insuplc_admdvs": area})
        ctx.service.policy(d.insuplc_admdvs)
        psn_no = _person_for_card(ctx, tx, d)
    alg = {"SM4": 3, "3DES": 1}.get(d.algorithm, 3 if d.generation == "3.00" else 1)
    act = ctx.iso if d.card_stas == "activated" else ""
    tx.execute("INSERT INTO cards (card_no, card_sn, psn_no, pan, pan_seq, bank, state, "
               "generation, alg, issued_at, state_at, atc_last, activated_at, replaces) "
               "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, '')",
               (d.card_no, d.card_sn, psn_no, d.pan, int(d.pan_seq), d.bank, d.card_stas,
                d.generation, alg, ctx.iso, ctx.iso, act))
    books.open_account(tx, books.bank(d.pan), d.card_no)
    _event(ctx, tx, d.card_no, "register", bank=d.bank, state=d.card_stas,
           at=ctx.fixmedins_code)
    out = _card_out(ctx, get_card(tx, d.card_no))
    out["initial_pin_envelope"] = False   # the PIN was set where the card was personalised
    return {"cardinfo": out}


@op("8203", "register an old medical card (旧医保卡登记)", In8203)
def register_old_card(ctx: Ctx, tx: Tx, data: In8203) -> dict[str, Any]:
    """Bring an old medical card and its balance from the old system into the books."""
    _require_kind(ctx, "office")
    d = data.data
    p = get_person(tx, d.psn_no)
    if d.balance < 0:
        raise BadRequest("input.data.balance must not be negative")
    if tx.one("SELECT 1 FROM old_cards WHERE old_card_no = ?", (d.old_card_no,)):
        raise Refused(f"old medical card {d.old_card_no} is already registered",
                      code="duplicate")
    tx.execute("INSERT INTO old_cards (old_card_no, psn_no, state, state_at) "
               "VALUES (?, ?, 'active', ?)", (d.old_card_no, p.psn_no, ctx.iso))
    books.open_account(tx, books.oldmed(d.old_card_no), p.psn_no)
    if d.balance:
        books.post(tx, books.Entry(
            entry_id="E" + ctx.msgid, msgid=ctx.msgid, kind="old_card_opening", day=ctx.day,
            fixmedins_code=ctx.fixmedins_code, created_at=ctx.iso, memo=d.old_card_no,
            postings=[(books.contrib(p.insuplc_admdvs), -d.balance),
                      (books.oldmed(d.old_card_no), d.balance)]))
    return {"old_card_no": d.old_card_no, "psn_no": p.psn_no, "balc": yuan(d.balance)}


@op("8202", "old-card transition switch (过渡期)", In8202)
def transition(ctx: Ctx, tx: Tx, data: In8202) -> dict[str, Any]:
    """M2: during the transition both cards pay; closing it stops every old card at once."""
    _require_kind(ctx, "office")
    tx.execute("INSERT INTO settings (key, value) VALUES ('old_card_transition', ?) "
               "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
               (data.data.transition,))
    return {"old_card_transition": data.data.transition, "at": ctx.ts}


@op("8201", "migrate old medical cards, one batch (旧卡余额迁移)", In8201)
def migrate_batch(ctx: Ctx, tx: Tx, data: In8201) -> dict[str, Any]:
    """M2: after the cut-over, move old-card balances into the personal accounts in
    batches; each migrated old card stops working. Only holders of a new card migrate."""
    _require_kind(ctx, "office")
    row = tx.one("SELECT value FROM settings WHERE key = 'old_card_transition'")
    if row is None or row[0] != "closed":
        raise Refused("the transition period is still open: close it (8202) before migrating "
                      "old medical cards (rule M2)", code="transition_open")
    rows = tx.all("SELECT o.old_card_no, o.psn_no, a.balance FROM old_cards o "
                  "JOIN accounts a ON a.account_id = 'oldmed:' || o.old_card_no "
                  "WHERE o.state = 'active' AND EXISTS (SELECT 1 FROM cards c "
                  "WHERE c.psn_no = o.psn_no) ORDER BY o.old_card_no LIMIT ?",
                  (data.data.batch_size,))
    postings: list[tuple[str, int]] = []
    total = 0
    for old_no, psn_no, bal in rows:
        bal = int(bal)
        if bal:
            postings += [(books.oldmed(str(old_no)), -bal), (books.medical(str(psn_no)), bal)]
            total += bal
        tx.execute("UPDATE old_cards SET state = 'migrated', state_at = ? "
                   "WHERE old_card_no = ? AND state = 'active'", (ctx.iso, old_no))
    if postings:
        books.post(tx, books.Entry(
            entry_id="E" + ctx.msgid, msgid=ctx.msgid, kind="migrate", day=ctx.day,
            fixmedins_code=ctx.fixmedins_code, created_at=ctx.iso,
            memo=f"{len(rows)} old cards", postings=postings))
    left = tx.one("SELECT COUNT(*) FROM old_cards o WHERE o.state = 'active' AND EXISTS "
                  "(SELECT 1 FROM cards c WHERE c.psn_no = o.psn_no)")
    waiting = tx.one("SELECT COUNT(*) FROM old_cards o WHERE o.state = 'active' AND NOT "
                     "EXISTS (SELECT 1 FROM cards c WHERE c.psn_no = o.psn_no)")
    return {"migrated": len(rows), "amount": yuan(total),
            "remaining": int(left[0]) if left else 0,
            "without_new_card": int(waiting[0]) if waiting else 0}

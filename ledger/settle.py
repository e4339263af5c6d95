"""Settlement transactions (spec/host.md §2–§4): pharmacy 2101/2102/2103, inpatient
2401/2402/2404/2405, fee details 2301/2302, inpatient settlement 2303/2304/2305 and the
reversal 2601.

Every settlement is one journal entry::

    fund:<area>        −hifp_pay            pooled fund pays its share
    medical:<psn_no>   −acct_pay            personal account (or oldmed:<card> in transition)
    bank:<pan>         −psn_cash_pay        when the rest is paid from the card's bank account
    external:cash      −psn_cash_pay        when the rest is paid in cash …
    cash:<institution> +psn_cash_pay        … into the institution's cash drawer
    clearing:<inst.>   +everything else     what the fund, the account and the bank owe it

A cancel (2103/2305) or a reversal (2601) appends the opposite entry.
"""

from __future__ import annotations

import json
from typing import Any

from ledger import books
from ledger.bank import Cdol1, arpc, card_key, verify_arqc
from ledger.errors import BadRequest, NotFound, Refused
from ledger.holders import Payer, get_person, resolve
from ledger.money import line_amount, qty_text, yuan
from ledger.policy import CLASSES, CartLine, Policy, Split, cut_line, split
from ledger.registry import Ctx, op
from ledger.schemas import (
    BankAuth,
    FeeLine,
    In2101,
    In2103,
    In2301,
    In2302,
    In2303,
    In2305,
    In2401,
    In2402,
    In2404,
    In2601,
)
from ledger.store.base import Tx

REVERSIBLE = ("2102", "2103", "2304", "2305", "2401")
FUND_NAMES = {"310": "职工基本医疗保险统筹基金", "390": "城乡居民基本医疗保险基金"}


def require_inst(ctx: Ctx, kind: str) -> None:
    """The transaction must come from a designated institution of the right kind (U4)."""
    inst = ctx.inst
    if inst["kind"] != kind:
        raise Refused(f"{ctx.infno} is a {kind} transaction but institution {inst['code']} "
                      f"is a {inst['kind']}", code="wrong_institution")
    if not inst["designated"]:
        raise Refused(f"{inst['name']} ({inst['code']}) is not a designated institution: the "
                      "social security card's medical account cannot pay here (rule U4)",
                      code="not_designated")


def cart(detail: list[FeeLine], where: str) -> list[CartLine]:
    """Check the fee lines (serials unique, amount = cnt × pric) and convert them."""
    seen: set[str] = set()
    out = []
    for i, d in enumerate(detail):
        if d.feedetl_sn in seen:
            raise BadRequest(f"{where}[{i}].feedetl_sn {d.feedetl_sn} appears twice")
        seen.add(d.feedetl_sn)
        if d.cnt <= 0 or d.pric < 0:
            raise BadRequest(f"{where}[{i}]: cnt must be positive and pric not negative")
        amt = line_amount(d.pric, d.cnt)
        if amt != d.det_item_fee_sumamt:
            raise BadRequest(f"{where}[{i}].det_item_fee_sumamt {yuan(d.det_item_fee_sumamt)} "
                             f"is not cnt × pric = {qty_text(d.cnt)} × {yuan(d.pric)} = "
                             f"{yuan(amt)}")
        out.append(CartLine(d.feedetl_sn, d.med_list_codg, d.cnt, d.pric, amt))
    return out


def check_total(lines: list[CartLine], medfee_sumamt: int, field: str) -> None:
    total = sum(ln.amount for ln in lines)
    if total != medfee_sumamt:
        raise BadRequest(f"{field} {yuan(medfee_sumamt)} is not the sum of the fee lines "
                         f"{yuan(total)}")


def year_to_date(tx: Tx, psn_no: str, year: int, insutype: str) -> tuple[int, int]:
    """Deductible applied and pooled fund paid this year (settled, not cancelled)."""
    row = tx.one("SELECT COALESCE(SUM(act_pay_dedc), 0), COALESCE(SUM(hifp_pay), 0) "
                 "FROM settlements WHERE psn_no = ? AND setl_year = ? AND insutype = ? "
                 "AND state = 'settled'", (psn_no, year, insutype))
    return (int(row[0]), int(row[1])) if row else (0, 0)


def _ytd_year(ctx: Ctx, med_type: str) -> int | None:
    """The year whose totals to read with the card: only where some area pools the visit
    type (otherwise the split needs no year-to-date figures)."""
    return ctx.now.year if ctx.service.pooled_somewhere(med_type) else None


def compute(ctx: Ctx, tx: Tx, payer: Payer, med_type: str, insutype: str,
            lines: list[CartLine], acct_used_flag: str) -> tuple[Split, Policy, int]:
    """The split for this person now (spec/host.md §3)."""
    person = payer.person
    if insutype != person.insutype:
        raise Refused(f"person {person.psn_no} is insured under insutype {person.insutype}, "
                      f"not {insutype}", code="insutype")
    policy = ctx.service.policy(person.insuplc_admdvs)
    pooled = policy.visit(med_type).pooling
    if not pooled:
        ded, fund = 0, 0
    elif payer.ytd is not None and payer.ytd[0] == ctx.now.year:
        ded, fund = payer.ytd[1], payer.ytd[2]   # read with the card (same insutype)
    else:
        ded, fund = year_to_date(tx, person.psn_no, ctx.now.year, insutype)
    bal = payer.balance if payer.balance is not None else books.balance(tx, payer.account)
    s = split(policy, med_type, insutype, lines, deductible_used=ded, fund_used=fund,
              balance=bal, use_account=acct_used_flag == "1")
    return s, policy, bal


def bank_debit(ctx: Ctx, tx: Tx, payer: Payer, auth: BankAuth | None, amount: int,
               cert_type: str) -> dict[str, Any]:
    """Check the card's ARQC for ``amount`` and advance its ATC (spec/card.md §11)."""
    if amount == 0:
        return {}
    card = payer.card
    if cert_type != "03" or card is None:
        raise Refused("paying from the bank account needs the card itself "
                      "(mdtrt_cert_type 03)", code="bank_needs_card")
    if auth is None:
        raise BadRequest("cash_src bank needs bank_auth: the card's ARQC (GENERATE AC) for "
                         f"the amount {yuan(amount)}")
    if auth.pan != card.pan or int(auth.pan_seq) != card.pan_seq:
        raise Refused(f"bank_auth.pan/pan_seq are not those of card {card.card_no}",
                      code="arqc_bad")
    try:
        cd = Cdol1.parse(bytes.fromhex(auth.cdol1))
    except ValueError as exc:
        raise BadRequest(f"bank_auth.cdol1: {exc}") from None
    if cd.amount != amount:
        raise Refused(f"the card authorised {yuan(cd.amount)} yuan but the amount due from "
                      f"the bank account is {yuan(amount)}: run the trial again and ask the "
                      "card for that amount", code="arqc_amount")
    if cd.currency != "0156":
        raise Refused(f"the card authorised currency {cd.currency}, not 0156 (CNY)",
                      code="arqc_bad")
    atc = int(auth.atc, 16)
    if atc <= card.atc_last:
        raise Refused(f"replayed cryptogram: ATC {atc} of card {card.card_no} is not above the "
                      f"last accepted ATC {card.atc_last}; nothing was charged",
                      code="arqc_replay")
    bank_pol = ctx.service.policy(card.card_sn[:6]).banks.get(card.bank)
    if bank_pol is None or card.alg not in bank_pol.root_ac:
        raise Refused(f"no issuer key for {card.bank} cards of area {card.card_sn[:6]}",
                      code="arqc_bad")
    mk = card_key(bank_pol.root_ac[card.alg], card.alg, card.card_sn[:6], card.pan,
                  card.pan_seq)
    cryptogram = bytes.fromhex(auth.arqc)
    if not verify_arqc(mk, atc, bytes.fromhex(auth.cdol1), card.alg, cryptogram):
        raise Refused(f"the ARQC does not verify for card {card.card_no}: the cryptogram is "
                      "forged or was made for other data; nothing was charged",
                      code="arqc_bad")
    n = tx.execute("UPDATE cards SET atc_last = ? WHERE card_no = ? AND atc_last < ?",
                   (atc, card.card_no, atc))
    if n != 1:
        raise Refused(f"replayed cryptogram: ATC {atc} of card {card.card_no} was already used",
                      code="arqc_replay")
    return {"arpc": arpc(mk, atc, cryptogram, card.alg).hex().upper(), "arc": "3030",
            "bank_atc": atc}


def settlement_postings(s: Split, payer: Payer, fund_area: str, inst: str,
                        cash_src: str) -> list[tuple[str, int]]:
    p = [(books.fund(fund_area), -s.fund), (payer.account, -s.acct_pay)]
    if cash_src == "bank":
        assert payer.card is not None or s.rest == 0
        pan = payer.card.pan if payer.card else ""
        p += [(books.bank(pan), -s.rest), (books.clearing(inst), s.fund + s.acct_pay + s.rest)]
    else:
        p += [(books.EXTERNAL_CASH, -s.rest), (books.cash(inst), s.rest),
              (books.clearing(inst), s.fund + s.acct_pay)]
    return p


def setlinfo(ctx: Ctx, s: Split, payer: Payer, *, setl_id: str, mdtrt_id: str,
             med_type: str, insutype: str, cert_type: str, balc: int, cash_src: str,
             area: str) -> dict[str, Any]:
    p = payer.person
    ded_base = max(0, s.inscp - s.deductible)
    out: dict[str, Any] = {
        "setl_id": setl_id, "mdtrt_id": mdtrt_id, "psn_no": p.psn_no, "psn_name": p.psn_name,
        "psn_cert_type": "01", "certno": p.certno, "gend": p.gend, "naty": p.naty,
        "brdy": p.brdy, "age": p.age(ctx.now), "insutype": insutype, "psn_type": p.psn_type,
        "cvlserv_flag": "0", "setl_time": ctx.ts, "mdtrt_cert_type": cert_type,
        "med_type": med_type, "medfee_sumamt": yuan(s.total),
        "fulamt_ownpay_amt": yuan(s.fulamt_ownpay), "overlmt_selfpay": yuan(s.overlmt),
        "preselfpay_amt": yuan(s.preselfpay), "inscp_scp_amt": yuan(s.inscp),
        "act_pay_dedc": yuan(s.deductible), "hifp_pay": yuan(s.fund),
        "pool_prop_selfpay": yuan(ded_base - s.fund), "cvlserv_pay": "0.00",
        "hifes_pay": "0.00", "hifmi_pay": "0.00", "hifob_pay": "0.00", "maf_pay": "0.00",
        "oth_pay": "0.00", "fund_pay_sumamt": yuan(s.fund), "psn_part_amt": yuan(s.psn_part),
        "acct_pay": yuan(s.acct_pay), "psn_cash_pay": yuan(s.rest), "cash_src": cash_src,
        "hosp_part_amt": "0.00", "balc": yuan(balc), "acct_mulaid_pay": "0.00",
        "medins_setl_id": ctx.msgid, "clr_optins": area, "clr_way": "1", "clr_type": med_type,
    }
    if payer.old_card_no:
        out["old_card_no"] = payer.old_card_no
    return out


def setldetail(s: Split, insutype: str) -> list[dict[str, Any]]:
    if s.fund == 0:
        return []
    return [{"fund_pay_type": f"{insutype}100", "inscp_scp_amt": yuan(s.inscp),
             "fund_payamt": yuan(s.fund), "fund_pay_type_name": FUND_NAMES.get(insutype, ""),
             "setl_proc_info": ""}]


def detlcutinfo(policy: Policy, s: Split) -> list[dict[str, Any]]:
    out = []
    for c in s.lines:
        item = policy.items.get(c.code)
        out.append({
            "feedetl_sn": c.feedetl_sn, "med_list_codg": c.code,
            "hilist_name": item.name if item else "", "det_item_fee_sumamt": yuan(c.amount),
            "pric_uplmt_amt": yuan(c.cap) if c.cap is not None else "",
            "selfpay_prop": f"{c.selfpay_bp / 10000:.4f}", "fulamt_ownpay_amt":
            yuan(c.fulamt_ownpay), "overlmt_amt": yuan(c.overlmt),
            "preselfpay_amt": yuan(c.preselfpay), "inscp_scp_amt": yuan(c.inscp),
            "chrgitm_lv": CLASSES[c.cls], "list_sp_item_flag": "0"})
    return out


def _record_settlement(ctx: Ctx, tx: Tx, s: Split, policy: Policy, payer: Payer, *,
                       setl_id: str, mdtrt_id: str, med_type: str, insutype: str,
                       cert_type: str, cash_src: str, extra: dict[str, Any],
                       balance_before: int) -> dict[str, Any]:
    entry_id = "E" + ctx.msgid
    books.post(tx, books.Entry(
        entry_id=entry_id, msgid=ctx.msgid, kind=f"settle:{ctx.infno}", day=ctx.day,
        fixmedins_code=ctx.fixmedins_code, created_at=ctx.iso, memo=setl_id,
        postings=settlement_postings(s, payer, policy.admdvs, ctx.fixmedins_code, cash_src)))
    balc = balance_before - s.acct_pay   # exact: the guarded update succeeded in this txn
    info = setlinfo(ctx, s, payer, setl_id=setl_id, mdtrt_id=mdtrt_id, med_type=med_type,
                    insutype=insutype, cert_type=cert_type, balc=balc, cash_src=cash_src,
                    area=policy.admdvs)
    info.update({k: v for k, v in extra.items() if k != "bank_atc"})
    if cash_src == "bank" and payer.card is not None:
        info["bank_balc"] = yuan(books.balance(tx, books.bank(payer.card.pan)))
    tx.defer(
        "INSERT INTO settlements (setl_id, mdtrt_id, psn_no, card_no, fixmedins_code, med_type, "
        "insutype, setl_year, day, state, medfee_sumamt, act_pay_dedc, hifp_pay, acct_pay, "
        "psn_cash_pay, cash_src, entry_id, msgid, cancel_entry_id, setlinfo, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'settled', ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?, ?)",
        (setl_id, mdtrt_id, payer.person.psn_no,
         payer.card.card_no if payer.card else payer.old_card_no, ctx.fixmedins_code,
         med_type, insutype, ctx.now.year, ctx.day, s.total, s.deductible, s.fund,
         s.acct_pay, s.rest, cash_src, entry_id, ctx.msgid, "", ctx.iso))
    return info


# -- pharmacy ---------------------------------------------------------------------------

def _pharmacy(ctx: Ctx, tx: Tx, data: In2101, *, final: bool) -> dict[str, Any]:
    require_inst(ctx, "pharmacy")
    di = data.druginfo
    payer = resolve(ctx, tx, di.mdtrt_cert_type, di.mdtrt_cert_no, di.card_sn, di.psn_no,
                    payment=True, ytd_year=_ytd_year(ctx, di.med_type))
    lines = cart(data.drugdetail, "input.drugdetail")
    check_total(lines, di.medfee_sumamt, "input.druginfo.medfee_sumamt")
    s, policy, bal = compute(ctx, tx, payer, di.med_type, di.insutype, lines, di.acct_used_flag)
    if di.cash_src == "bank" and s.rest and (di.mdtrt_cert_type != "03" or payer.card is None):
        raise Refused("paying from the bank account needs the card itself "
                      "(mdtrt_cert_type 03)", code="bank_needs_card")
    if not final:
        info = setlinfo(ctx, s, payer, setl_id="", mdtrt_id="", med_type=di.med_type,
                        insutype=di.insutype, cert_type=di.mdtrt_cert_type,
                        balc=bal - s.acct_pay, cash_src=di.cash_src, area=policy.admdvs)
        return {"setlinfo": info, "setldetail": setldetail(s, di.insutype),
                "detlcutinfo": detlcutinfo(policy, s)}
    extra = bank_debit(ctx, tx, payer, di.bank_auth, s.rest, di.mdtrt_cert_type) \
        if di.cash_src == "bank" else {}
    info = _record_settlement(ctx, tx, s, policy, payer, setl_id="S" + ctx.msgid,
                              mdtrt_id="M" + ctx.msgid, med_type=di.med_type,
                              insutype=di.insutype, cert_type=di.mdtrt_cert_type,
                              cash_src=di.cash_src, extra=extra, balance_before=bal)
    return {"setlinfo": info, "setldetail": setldetail(s, di.insutype),
            "detlcutinfo": detlcutinfo(policy, s)}


@op("2101", "pharmacy trial settlement", In2101, writes=False)
def trial_pharmacy(ctx: Ctx, tx: Tx, data: In2101) -> dict[str, Any]:
    return _pharmacy(ctx, tx, data, final=False)


@op("2102", "pharmacy settlement", In2101, reversible=True)
def settle_pharmacy(ctx: Ctx, tx: Tx, data: In2101) -> dict[str, Any]:
    return _pharmacy(ctx, tx, data, final=True)


def _load_settlement(tx: Tx, setl_id: str) -> dict[str, Any]:
    row = tx.one("SELECT setl_id, mdtrt_id, psn_no, fixmedins_code, state, entry_id, msgid, "
                 "setlinfo, med_type, cancel_entry_id FROM settlements WHERE setl_id = ?",
                 (setl_id,))
    if row is None:
        raise NotFound(f"settlement {setl_id} does not exist")
    keys = ("setl_id", "mdtrt_id", "psn_no", "fixmedins_code", "state", "entry_id", "msgid",
            "setlinfo", "med_type", "cancel_entry_id")
    return dict(zip(keys, row, strict=True))


def _original_setlinfo(tx: Tx, st: dict[str, Any]) -> dict[str, Any]:
    """The ``setlinfo`` the settlement answered (kept once, with the msgid's answer)."""
    row = tx.one("SELECT response FROM answers WHERE msgid = ?", (st["msgid"],))
    if row is None:  # pragma: no cover - every settlement is recorded with its answer
        raise NotFound(f"the answer of settlement {st['setl_id']} is missing")
    info: dict[str, Any] = json.loads(row[0])["output"]["setlinfo"]
    return info


def cancel_settlement(ctx: Ctx, tx: Tx, setl_id: str, mdtrt_id: str | None, psn_no: str | None,
                      *, entry_id: str, kind: str) -> dict[str, Any]:
    """Append the opposite entry of a settlement and mark it cancelled."""
    st = _load_settlement(tx, setl_id)
    if mdtrt_id is not None and st["mdtrt_id"] != mdtrt_id:
        raise Refused(f"settlement {setl_id} belongs to mdtrt_id {st['mdtrt_id']}, "
                      f"not {mdtrt_id}", code="mismatch")
    if psn_no is not None and st["psn_no"] != psn_no:
        raise Refused(f"settlement {setl_id} is not a settlement of person {psn_no}",
                      code="mismatch")
    if st["fixmedins_code"] != ctx.fixmedins_code:
        raise Refused(f"settlement {setl_id} was made by institution {st['fixmedins_code']}: "
                      "only that institution can cancel it", code="mismatch")
    if st["state"] != "settled":
        raise Refused(f"settlement {setl_id} was already cancelled: nothing to do",
                      code="already_cancelled")
    postings = books.opposite(books.entry_postings(tx, st["entry_id"]))
    books.post(tx, books.Entry(
        entry_id=entry_id, msgid=ctx.msgid, kind=kind, day=ctx.day,
        fixmedins_code=ctx.fixmedins_code, created_at=ctx.iso, ref_entry_id=st["entry_id"],
        memo=setl_id, postings=postings))
    n = tx.execute("UPDATE settlements SET state = 'cancelled', cancel_entry_id = ? "
                   "WHERE setl_id = ? AND state = 'settled'", (entry_id, setl_id))
    if n != 1:
        raise Refused(f"settlement {setl_id} was already cancelled: nothing to do",
                      code="already_cancelled")
    orig = _original_setlinfo(tx, st)
    out = {k: orig[k] for k in ("psn_no", "psn_name", "insutype", "med_type", "mdtrt_id")}
    for k in ("medfee_sumamt", "fulamt_ownpay_amt", "overlmt_selfpay", "preselfpay_amt",
              "inscp_scp_amt", "act_pay_dedc", "hifp_pay", "fund_pay_sumamt", "psn_part_amt",
              "acct_pay", "psn_cash_pay"):
        out[k] = yuan(-int(orig[k].replace(".", "")))
    account = next((a for a, _ in postings if books.kind_of(a) in ("medical", "oldmed")), None)
    out.update({"setl_id": entry_id, "orig_setl_id": setl_id, "setl_time": ctx.ts,
                "cash_src": orig.get("cash_src", "cash"),
                "balc": yuan(books.balance(tx, account)) if account else orig["balc"]})
    return out


@op("2103", "pharmacy settlement cancel", In2103, reversible=True)
def cancel_pharmacy(ctx: Ctx, tx: Tx, data: In2103) -> dict[str, Any]:
    require_inst(ctx, "pharmacy")
    d = data.data
    return {"setlinfo": cancel_settlement(ctx, tx, d.setl_id, d.mdtrt_id, d.psn_no,
                                          entry_id="C" + ctx.msgid, kind="cancel:2103")}


# -- inpatient ---------------------------------------------------------------------------

ADM_COLS = ("mdtrt_id, psn_no, card_no, fixmedins_code, insutype, med_type, state, begntime, "
            "endtime, detail, setl_id")


def _admission(ctx: Ctx, tx: Tx, mdtrt_id: str, psn_no: str) -> dict[str, Any]:
    row = tx.one(f"SELECT {ADM_COLS} FROM admissions WHERE mdtrt_id = ?", (mdtrt_id,))
    if row is None:
        raise NotFound(f"stay (mdtrt_id) {mdtrt_id} does not exist")
    adm = dict(zip([c.strip() for c in ADM_COLS.split(",")], row, strict=True))
    if adm["psn_no"] != psn_no:
        raise Refused(f"stay {mdtrt_id} is not a stay of person {psn_no}", code="mismatch")
    if adm["fixmedins_code"] != ctx.fixmedins_code:
        raise Refused(f"stay {mdtrt_id} belongs to institution {adm['fixmedins_code']}",
                      code="mismatch")
    return adm


def _adm_state(tx: Tx, mdtrt_id: str, frm: str, to: str, what: str, **cols: str) -> None:
    sets = ", ".join(["state = ?"] + [f"{k} = ?" for k in cols])
    n = tx.execute(f"UPDATE admissions SET {sets} WHERE mdtrt_id = ? AND state = ?",
                   (to, *cols.values(), mdtrt_id, frm))
    if n != 1:
        row = tx.one("SELECT state FROM admissions WHERE mdtrt_id = ?", (mdtrt_id,))
        raise Refused(f"cannot {what}: stay {mdtrt_id} is {row[0] if row else 'unknown'}, "
                      f"not {frm}", code="stay_state")


@op("2401", "inpatient admission", In2401, reversible=True)
def admit(ctx: Ctx, tx: Tx, data: In2401) -> dict[str, Any]:
    require_inst(ctx, "hospital")
    m = data.mdtrtinfo
    payer = resolve(ctx, tx, m.mdtrt_cert_type, m.mdtrt_cert_no, m.card_sn, m.psn_no,
                    payment=True)
    if m.insutype != payer.person.insutype:
        raise Refused(f"person {m.psn_no} is insured under insutype "
                      f"{payer.person.insutype}, not {m.insutype}", code="insutype")
    ctx.service.policy(payer.person.insuplc_admdvs).visit(m.med_type)
    row = tx.one("SELECT mdtrt_id FROM admissions WHERE psn_no = ? AND fixmedins_code = ? "
                 "AND state IN ('admitted', 'discharged')", (m.psn_no, ctx.fixmedins_code))
    if row is not None:
        raise Refused(f"person {m.psn_no} already has an open stay here (mdtrt_id {row[0]})",
                      code="stay_state")
    mdtrt_id = "M" + ctx.msgid
    detail = {"mdtrt_cert_type": m.mdtrt_cert_type, "mdtrt_cert_no": m.mdtrt_cert_no,
              "card_sn": m.card_sn, "ipt_no": m.ipt_no, "dept_name": m.dept_name,
              "dise_name": m.dise_name}
    tx.execute(f"INSERT INTO admissions ({ADM_COLS}) VALUES (?, ?, ?, ?, ?, ?, 'admitted', ?, "
               "'', ?, '')", (mdtrt_id, m.psn_no, payer.card.card_no if payer.card else "",
                              ctx.fixmedins_code, m.insutype, m.med_type, m.begntime,
                              json.dumps(detail, ensure_ascii=False)))
    return {"result": {"mdtrt_id": mdtrt_id, "psn_no": m.psn_no, "ipt_otp_no": m.ipt_no}}


@op("2402", "inpatient discharge", In2402)
def discharge(ctx: Ctx, tx: Tx, data: In2402) -> dict[str, Any]:
    require_inst(ctx, "hospital")
    d = data.dscginfo
    adm = _admission(ctx, tx, d.mdtrt_id, d.psn_no)
    if d.endtime < adm["begntime"]:
        raise BadRequest(f"input.dscginfo.endtime {d.endtime} is before the admission "
                         f"{adm['begntime']}")
    _adm_state(tx, d.mdtrt_id, "admitted", "discharged", "discharge", endtime=d.endtime)
    return {"result": {"mdtrt_id": d.mdtrt_id, "psn_no": d.psn_no, "endtime": d.endtime}}


@op("2404", "cancel admission", In2404)
def cancel_admission(ctx: Ctx, tx: Tx, data: In2404) -> dict[str, Any]:
    require_inst(ctx, "hospital")
    d = data.data
    _admission(ctx, tx, d.mdtrt_id, d.psn_no)
    _undo_admission(tx, d.mdtrt_id)
    return {"result": {"mdtrt_id": d.mdtrt_id, "state": "cancelled"}}


def _undo_admission(tx: Tx, mdtrt_id: str) -> None:
    row = tx.one("SELECT COUNT(*) FROM fee_details WHERE mdtrt_id = ? AND state = 'active'",
                 (mdtrt_id,))
    if row and int(row[0]):
        raise Refused(f"stay {mdtrt_id} has {row[0]} uploaded fee details: cancel them (2302) "
                      "before cancelling the admission", code="stay_state")
    _adm_state(tx, mdtrt_id, "admitted", "cancelled", "cancel the admission")


@op("2405", "cancel discharge", In2404)
def cancel_discharge(ctx: Ctx, tx: Tx, data: In2404) -> dict[str, Any]:
    require_inst(ctx, "hospital")
    d = data.data
    _admission(ctx, tx, d.mdtrt_id, d.psn_no)
    _adm_state(tx, d.mdtrt_id, "discharged", "admitted", "cancel the discharge", endtime="")
    return {"result": {"mdtrt_id": d.mdtrt_id, "state": "admitted"}}


@op("2301", "upload inpatient fee details", In2301)
def upload_fees(ctx: Ctx, tx: Tx, data: In2301) -> dict[str, Any]:
    require_inst(ctx, "hospital")
    lines = cart(list(data.feedetail), "input.feedetail")
    result = []
    seen: dict[str, dict[str, Any]] = {}
    for d, ln in zip(data.feedetail, lines, strict=True):
        adm = seen.get(d.mdtrt_id) or _admission(ctx, tx, d.mdtrt_id, d.psn_no)
        seen[d.mdtrt_id] = adm
        if adm["state"] not in ("admitted", "discharged"):
            raise Refused(f"stay {d.mdtrt_id} is {adm['state']}: fee details can no longer "
                          "be uploaded", code="stay_state")
        if tx.one("SELECT state FROM fee_details WHERE mdtrt_id = ? AND feedetl_sn = ?",
                  (d.mdtrt_id, d.feedetl_sn)) is not None:
            raise Refused(f"fee detail {d.feedetl_sn} of stay {d.mdtrt_id} was already "
                          "uploaded: use a new feedetl_sn", code="duplicate_detail")
        tx.execute("INSERT INTO fee_details (mdtrt_id, feedetl_sn, med_list_codg, qty, pric, "
                   "amount, state, msgid) VALUES (?, ?, ?, ?, ?, ?, 'active', ?)",
                   (d.mdtrt_id, d.feedetl_sn, ln.code, ln.qty, ln.price, ln.amount,
                    ctx.msgid))
        person = get_person(tx, d.psn_no)
        c = cut_line(ctx.service.policy(person.insuplc_admdvs), ln)
        result.append({"feedetl_sn": d.feedetl_sn, "det_item_fee_sumamt": yuan(ln.amount),
                       "cnt": qty_text(ln.qty), "pric": yuan(ln.price),
                       "pric_uplmt_amt": yuan(c.cap) if c.cap is not None else "",
                       "selfpay_prop": f"{c.selfpay_bp / 10000:.4f}",
                       "fulamt_ownpay_amt": yuan(c.fulamt_ownpay), "overlmt_amt":
                       yuan(c.overlmt), "preselfpay_amt": yuan(c.preselfpay),
                       "inscp_scp_amt": yuan(c.inscp), "chrgitm_lv": CLASSES[c.cls]})
    return {"result": result}


@op("2302", "cancel inpatient fee details", In2302)
def cancel_fees(ctx: Ctx, tx: Tx, data: In2302) -> dict[str, Any]:
    require_inst(ctx, "hospital")
    d = data.data
    adm = _admission(ctx, tx, d.mdtrt_id, d.psn_no)
    if adm["state"] not in ("admitted", "discharged"):
        raise Refused(f"stay {d.mdtrt_id} is {adm['state']}: its fee details can no longer "
                      "be cancelled", code="stay_state")
    if d.feedetl_sn == "0000":
        n = tx.execute("UPDATE fee_details SET state = 'cancelled' WHERE mdtrt_id = ? "
                       "AND state = 'active'", (d.mdtrt_id,))
        if n == 0:
            raise Refused(f"stay {d.mdtrt_id} has no uploaded fee details to cancel",
                          code="no_details")
    else:
        n = tx.execute("UPDATE fee_details SET state = 'cancelled' WHERE mdtrt_id = ? "
                       "AND feedetl_sn = ? AND state = 'active'", (d.mdtrt_id, d.feedetl_sn))
        if n == 0:
            raise Refused(f"fee detail {d.feedetl_sn} of stay {d.mdtrt_id} is not an active "
                          "uploaded detail", code="no_details")
    return {"result": {"mdtrt_id": d.mdtrt_id, "cancelled": n}}


def _inpatient(ctx: Ctx, tx: Tx, data: In2303, *, final: bool) -> dict[str, Any]:
    require_inst(ctx, "hospital")
    d = data.data
    adm = _admission(ctx, tx, d.mdtrt_id, d.psn_no)
    allowed = ("discharged",) if final else ("admitted", "discharged")
    if adm["state"] not in allowed:
        raise Refused(f"stay {d.mdtrt_id} is {adm['state']}: "
                      + ("discharge it (2402) before settling" if adm["state"] == "admitted"
                         else "it cannot be settled"), code="stay_state")
    stored = json.loads(adm["detail"])
    if d.mdtrt_cert_no:
        cert_type, cert_no, card_sn = d.mdtrt_cert_type, d.mdtrt_cert_no, d.card_sn
    else:
        cert_type, cert_no, card_sn = (stored["mdtrt_cert_type"], stored["mdtrt_cert_no"],
                                       stored["card_sn"])
    payer = resolve(ctx, tx, cert_type, cert_no, card_sn, d.psn_no, payment=True,
                    ytd_year=_ytd_year(ctx, adm["med_type"]))
    rows = tx.all("SELECT feedetl_sn, med_list_codg, qty, pric, amount FROM fee_details "
                  "WHERE mdtrt_id = ? AND state = 'active' ORDER BY feedetl_sn", (d.mdtrt_id,))
    if not rows:
        raise Refused(f"stay {d.mdtrt_id} has no uploaded fee details (2301)",
                      code="no_details")
    lines = [CartLine(str(a), str(b), int(c), int(p), int(e)) for a, b, c, p, e in rows]
    check_total(lines, d.medfee_sumamt, "input.data.medfee_sumamt")
    s, policy, bal = compute(ctx, tx, payer, adm["med_type"], adm["insutype"], lines,
                             d.acct_used_flag)
    if d.cash_src == "bank" and s.rest and (cert_type != "03" or payer.card is None):
        raise Refused("paying from the bank account needs the card itself "
                      "(mdtrt_cert_type 03)", code="bank_needs_card")
    if not final:
        info = setlinfo(ctx, s, payer, setl_id="", mdtrt_id=d.mdtrt_id,
                        med_type=adm["med_type"], insutype=adm["insutype"],
                        cert_type=cert_type, balc=bal - s.acct_pay, cash_src=d.cash_src,
                        area=policy.admdvs)
        return {"setlinfo": info, "setldetail": setldetail(s, adm["insutype"])}
    extra = bank_debit(ctx, tx, payer, d.bank_auth, s.rest, cert_type) \
        if d.cash_src == "bank" else {}
    setl_id = "S" + ctx.msgid
    info = _record_settlement(ctx, tx, s, policy, payer, setl_id=setl_id,
                              mdtrt_id=d.mdtrt_id, med_type=adm["med_type"],
                              insutype=adm["insutype"], cert_type=cert_type,
                              cash_src=d.cash_src, extra=extra, balance_before=bal)
    _adm_state(tx, d.mdtrt_id, "discharged", "settled", "settle", setl_id=setl_id)
    return {"setlinfo": info, "setldetail": setldetail(s, adm["insutype"])}


@op("2303", "inpatient trial settlement", In2303, writes=False)
def trial_inpatient(ctx: Ctx, tx: Tx, data: In2303) -> dict[str, Any]:
    return _inpatient(ctx, tx, data, final=False)


@op("2304", "inpatient settlement", In2303, reversible=True)
def settle_inpatient(ctx: Ctx, tx: Tx, data: In2303) -> dict[str, Any]:
    return _inpatient(ctx, tx, data, final=True)


@op("2305", "inpatient settlement cancel", In2305, reversible=True)
def cancel_inpatient(ctx: Ctx, tx: Tx, data: In2305) -> dict[str, Any]:
    require_inst(ctx, "hospital")
    d = data.data
    _admission(ctx, tx, d.mdtrt_id, d.psn_no)
    out = cancel_settlement(ctx, tx, d.setl_id, d.mdtrt_id, d.psn_no,
                            entry_id="C" + ctx.msgid, kind="cancel:2305")
    _adm_state(tx, d.mdtrt_id, "settled", "discharged", "cancel the settlement", setl_id="")
    return {"setlinfo": out}


# -- reversal ----------------------------------------------------------------------------

def _reinstate(ctx: Ctx, tx: Tx, cancel_entry: str, entry_id: str) -> str:
    ent = tx.one("SELECT memo FROM entries WHERE entry_id = ?", (cancel_entry,))
    row = None if ent is None else tx.one(
        "SELECT setl_id, entry_id, mdtrt_id, med_type FROM settlements WHERE setl_id = ? "
        "AND cancel_entry_id = ?", (ent[0], cancel_entry))
    if row is None:
        return "nothing_to_undo"
    setl_id, orig_entry, mdtrt_id, _ = row
    books.post(tx, books.Entry(
        entry_id=entry_id, msgid=ctx.msgid, kind="reversal:cancel", day=ctx.day,
        fixmedins_code=ctx.fixmedins_code, created_at=ctx.iso, ref_entry_id=cancel_entry,
        memo=str(setl_id), postings=books.entry_postings(tx, str(orig_entry))))
    tx.execute("UPDATE settlements SET state = 'settled', cancel_entry_id = NULL "
               "WHERE setl_id = ? AND state = 'cancelled'", (setl_id,))
    tx.execute("UPDATE admissions SET state = 'settled', setl_id = ? WHERE mdtrt_id = ? "
               "AND state = 'discharged'", (setl_id, mdtrt_id))
    return "reinstated"


@op("2601", "reversal", In2601)
def reverse(ctx: Ctx, tx: Tx, data: In2601) -> dict[str, Any]:
    """冲正: undo an earlier message whose answer the terminal never saw (spec/host.md §4).

    Idempotent, and a no-op for a message that never arrived: the host then remembers the
    msgid as reversed, so the message is refused if it arrives late.
    """
    d = data.data
    if d.oinfno not in REVERSIBLE:
        raise Refused(f"oinfno {d.oinfno} cannot be reversed; reversible codes: "
                      f"{', '.join(REVERSIBLE)}", code="not_reversible")
    if d.omsgid[:12] != ctx.fixmedins_code:
        raise Refused(f"message {d.omsgid} was not sent by institution {ctx.fixmedins_code}: "
                      "only its sender can reverse it", code="mismatch")
    done = tx.one("SELECT msgid FROM reversals WHERE omsgid = ?", (d.omsgid,))
    if done is not None:
        return {"omsgid": d.omsgid, "oinfno": d.oinfno, "rvs_result": "already_reversed",
                "rvs_msgid": done[0]}
    req = tx.one("SELECT infno, status FROM requests WHERE msgid = ?", (d.omsgid,))
    result = "reversed"
    entry_id = "R" + ctx.msgid
    if req is None:
        tx.execute("INSERT INTO requests (msgid, infno, digest, status, fixmedins_code, "
                   "created_at) VALUES (?, ?, '', 'reversed_unseen', ?, ?)",
                   (d.omsgid, d.oinfno, ctx.fixmedins_code, ctx.iso))
        result = "not_received"
    elif req[0] != d.oinfno:
        raise Refused(f"message {d.omsgid} was a {req[0]}, not a {d.oinfno}", code="mismatch")
    elif d.oinfno in ("2102", "2304"):
        st = _load_settlement(tx, "S" + d.omsgid)
        if st["psn_no"] != d.psn_no:
            raise Refused(f"message {d.omsgid} settled person {st['psn_no']}, not {d.psn_no}",
                          code="mismatch")
        if st["state"] == "settled":
            cancel_settlement(ctx, tx, st["setl_id"], None, d.psn_no, entry_id=entry_id,
                              kind=f"reversal:{d.oinfno}")
            if d.oinfno == "2304":
                tx.execute("UPDATE admissions SET state = 'discharged', setl_id = '' "
                           "WHERE mdtrt_id = ? AND state = 'settled'", (st["mdtrt_id"],))
        else:
            result = "already_cancelled"
    elif d.oinfno in ("2103", "2305"):
        result = _reinstate(ctx, tx, "C" + d.omsgid, entry_id)
    elif d.oinfno == "2401":
        row = tx.one("SELECT state, psn_no FROM admissions WHERE mdtrt_id = ?",
                     ("M" + d.omsgid,))
        if row is None:
            result = "nothing_to_undo"
        elif row[1] != d.psn_no:
            raise Refused(f"message {d.omsgid} admitted person {row[1]}, not {d.psn_no}",
                          code="mismatch")
        elif row[0] == "admitted":
            _undo_admission(tx, "M" + d.omsgid)
        else:
            raise Refused(f"the stay opened by {d.omsgid} is {row[0]}: undo the later steps "
                          "first", code="stay_state")
    tx.execute("INSERT INTO reversals (omsgid, msgid, oinfno, entry_id, created_at) "
               "VALUES (?, ?, ?, ?, ?)", (d.omsgid, ctx.msgid, d.oinfno, entry_id, ctx.iso))
    return {"omsgid": d.omsgid, "oinfno": d.oinfno, "rvs_result": result}


"""Sign-in/out (9001/9002), person lookup (1101), balance enquiry (8108), daily
reconciliation (3201/3202) and cumulative totals (5206) — spec/host.md §2."""

from __future__ import annotations

import json
from typing import Any

from ledger import books
from ledger.errors import Refused
from ledger.holders import get_person, resolve
from ledger.money import yuan
from ledger.registry import Ctx, op
from ledger.schemas import In1101, In3201, In3202, In5206, In8108, In9001, In9002
from ledger.store.base import Tx


@op("9001", "terminal sign-in", In9001)
def sign_in(ctx: Ctx, tx: Tx, data: In9001) -> dict[str, Any]:
    sign_no = "SN" + ctx.msgid
    tx.execute("INSERT INTO signins (sign_no, paasid, fixmedins_code, opter, signed_in_at, "
               "signed_out_at) VALUES (?, ?, ?, ?, ?, '')",
               (sign_no, ctx.paasid, ctx.fixmedins_code, data.signIn.opter_no, ctx.ts))
    return {"signinoutb": {"sign_time": ctx.ts, "sign_no": sign_no}}


@op("9002", "terminal sign-out", In9002)
def sign_out(ctx: Ctx, tx: Tx, data: In9002) -> dict[str, Any]:
    n = tx.execute("UPDATE signins SET signed_out_at = ? WHERE sign_no = ? AND "
                   "fixmedins_code = ? AND signed_out_at = ''",
                   (ctx.ts, data.signOut.sign_no, ctx.fixmedins_code))
    if n != 1:
        raise Refused(f"sign_no {data.signOut.sign_no} is not an open sign-in of institution "
                      f"{ctx.fixmedins_code}", code="auth")
    return {"signoutoutb": {"sign_time": ctx.ts}}


@op("1101", "person lookup", In1101, writes=False)
def person_lookup(ctx: Ctx, tx: Tx, data: In1101) -> dict[str, Any]:
    d = data.data
    payer = resolve(ctx, tx, d.mdtrt_cert_type, d.mdtrt_cert_no, d.card_sn, None,
                    payment=False)
    p = payer.person
    balc = books.balance(tx, payer.account)
    out: dict[str, Any] = {
        "baseinfo": p.baseinfo(ctx.now),
        "insuinfo": [{"balc": yuan(balc), "insutype": p.insutype, "psn_type": p.psn_type,
                      "psn_insu_stas": p.psn_insu_stas, "psn_insu_date": "",
                      "paus_insu_date": "", "cvlserv_flag": "0",
                      "insuplc_admdvs": p.insuplc_admdvs, "emp_name": p.emp_name}],
        "idetinfo": [],
    }
    if payer.card is not None:
        out["cardinfo"] = payer.card.info(ctx)
    if payer.old_card_no:
        out["cardinfo"] = {"old_card_no": payer.old_card_no, "card_stas": "old_medical_card"}
    return out


@op("8108", "balance enquiry (余额查询)", In8108, writes=False)
def balance_enquiry(ctx: Ctx, tx: Tx, data: In8108) -> dict[str, Any]:
    """Seed rule U5: the medical-account balance (any counter), and the bank balance."""
    d = data.data
    payer = resolve(ctx, tx, d.mdtrt_cert_type, d.mdtrt_cert_no, d.card_sn, None,
                    payment=False)
    out: dict[str, Any] = {"psn_no": payer.person.psn_no,
                           "balc": yuan(books.balance(tx, payer.account))}
    if payer.card is not None:
        out["card_no"] = payer.card.card_no
        out["bank_balc"] = yuan(books.balance(tx, books.bank(payer.card.pan)))
    return out


def _host_totals(tx: Tx, inst: str, begin: str, end: str,
                 insutype: str) -> tuple[int, int, int, int]:
    sql = ("SELECT COUNT(*), COALESCE(SUM(medfee_sumamt), 0), COALESCE(SUM(hifp_pay), 0), "
           "COALESCE(SUM(acct_pay), 0) FROM settlements WHERE fixmedins_code = ? AND day >= ? "
           "AND day <= ? AND state = 'settled'")
    params: tuple[Any, ...] = (inst, begin, end)
    if insutype:
        sql += " AND insutype = ?"
        params += (insutype,)
    row = tx.one(sql, params)
    assert row is not None
    return int(row[0]), int(row[1]), int(row[2]), int(row[3])


@op("3201", "reconciliation of totals", In3201)
def reconcile_totals(ctx: Ctx, tx: Tx, data: In3201) -> dict[str, Any]:
    d = data.data
    cnt, tot, fund, acct = _host_totals(tx, ctx.fixmedins_code, d.stmt_begndate,
                                        d.stmt_enddate, d.insutype)
    diffs = []
    for name, mine, theirs in (("fixmedins_setl_cnt", cnt, d.fixmedins_setl_cnt),
                               ("medfee_sumamt", tot, d.medfee_sumamt),
                               ("fund_pay_sumamt", fund, d.fund_pay_sumamt),
                               ("acct_pay", acct, d.acct_pay)):
        if mine != theirs:
            show = (lambda v: str(v)) if name == "fixmedins_setl_cnt" else yuan
            diffs.append(f"{name}: host {show(mine)}, institution {show(theirs)}")
    result = "0" if not diffs else "1"
    descr = "totals match" if not diffs else "; ".join(diffs)
    tx.execute("INSERT INTO reconciliations (msgid, fixmedins_code, day, kind, result, detail, "
               "created_at) VALUES (?, ?, ?, '3201', ?, ?, ?)",
               (ctx.msgid, ctx.fixmedins_code, d.stmt_enddate, result, descr, ctx.iso))
    return {"stmtinfo": {"setl_optins": d.setl_optins, "stmt_rslt": result,
                         "stmt_rslt_dscr": descr, "medfee_sumamt": yuan(tot),
                         "fund_pay_sumamt": yuan(fund), "acct_pay": yuan(acct),
                         "fixmedins_setl_cnt": cnt}}


@op("3202", "reconciliation of details", In3202)
def reconcile_details(ctx: Ctx, tx: Tx, data: In3202) -> dict[str, Any]:
    d = data.data
    rows = tx.all("SELECT setl_id, medfee_sumamt, hifp_pay, acct_pay, state FROM settlements "
                  "WHERE fixmedins_code = ? AND day >= ? AND day <= ?",
                  (ctx.fixmedins_code, d.stmt_begndate, d.stmt_enddate))
    host = {str(r[0]): r for r in rows}
    mismatches: list[dict[str, Any]] = []
    theirs = {x.setl_id for x in d.details}
    for x in d.details:
        r = host.get(x.setl_id)
        if r is None:
            mismatches.append({"setl_id": x.setl_id, "reason": "not at the host"})
            continue
        cancelled = r[4] == "cancelled"
        if cancelled != (x.refd_setl_flag == "1"):
            mismatches.append({"setl_id": x.setl_id, "reason": "host: " + (
                "cancelled" if cancelled else "settled") + ", institution: " + (
                "cancelled" if x.refd_setl_flag == "1" else "settled")})
        elif (int(r[1]), int(r[2]), int(r[3])) != (x.medfee_sumamt, x.fund_pay_sumamt,
                                                   x.acct_pay):
            mismatches.append({"setl_id": x.setl_id, "reason":
                               f"amounts differ: host {yuan(int(r[1]))}/{yuan(int(r[2]))}/"
                               f"{yuan(int(r[3]))}, institution {yuan(x.medfee_sumamt)}/"
                               f"{yuan(x.fund_pay_sumamt)}/{yuan(x.acct_pay)}"})
    for sid, r in host.items():
        if sid not in theirs:
            mismatches.append({"setl_id": sid, "reason": "missing at the institution ("
                               + ("cancelled" if r[4] == "cancelled" else "settled") + ")"})
    result = "0" if not mismatches else "1"
    tx.execute("INSERT INTO reconciliations (msgid, fixmedins_code, day, kind, result, detail, "
               "created_at) VALUES (?, ?, ?, '3202', ?, ?, ?)",
               (ctx.msgid, ctx.fixmedins_code, d.stmt_enddate, result,
                json.dumps(mismatches[:100], ensure_ascii=False), ctx.iso))
    return {"stmt_rslt": result, "checked": len(d.details), "host_count": len(host),
            "mismatches": mismatches}


CUM_TYPES = (("C001", "医疗费总额", "medfee_sumamt"), ("C002", "统筹基金支付", "hifp_pay"),
             ("C003", "起付线累计", "act_pay_dedc"), ("C004", "个人账户支付", "acct_pay"),
             ("C005", "个人现金支付", "psn_cash_pay"))


@op("5206", "cumulative totals", In5206, writes=False)
def cumulative(ctx: Ctx, tx: Tx, data: In5206) -> dict[str, Any]:
    d = data.data
    get_person(tx, d.psn_no)
    year, month = d.cum_ym[:4], d.cum_ym[4:]
    rows = tx.all("SELECT insutype, COUNT(*), SUM(medfee_sumamt), SUM(hifp_pay), "
                  "SUM(act_pay_dedc), SUM(acct_pay), SUM(psn_cash_pay) FROM settlements "
                  "WHERE psn_no = ? AND setl_year = ? AND day <= ? AND state = 'settled' "
                  "GROUP BY insutype", (d.psn_no, int(year), f"{year}-{month}-31"))
    out = []
    for r in rows:
        for i, (code, name, _) in enumerate(CUM_TYPES):
            out.append({"insutype": r[0], "year": year, "cum_type_code": code,
                        "cum_type_name": name, "cum": yuan(int(r[2 + i] or 0))})
        out.append({"insutype": r[0], "year": year, "cum_type_code": "C006",
                    "cum_type_name": "结算次数", "cum": str(r[1])})
    return {"cuminfo": out}

"""The day's totals per institution and the reconciliation status (``sscard host report``)."""

from __future__ import annotations

from dataclasses import dataclass

from ledger.money import yuan
from ledger.store.base import Store, Tx


@dataclass
class InstitutionDay:
    fixmedins_code: str
    name: str
    settled: int
    cancelled: int
    total: int
    fund: int
    account: int
    cash: int
    bank: int
    reconciliation: str


def day_report(store: Store, day: str) -> tuple[list[InstitutionDay], list[str]]:
    """Per institution: settlements of ``day`` and the last 3201 result; plus any entry of
    the day whose postings do not sum to zero (there should be none)."""
    def q(tx: Tx) -> tuple[list[InstitutionDay], list[str]]:
        names = {str(c): str(n) for c, n in tx.all("SELECT fixmedins_code, name FROM institutions")}
        rows = tx.all(
            "SELECT fixmedins_code, SUM(CASE WHEN state = 'settled' THEN 1 ELSE 0 END), "
            "SUM(CASE WHEN state = 'cancelled' THEN 1 ELSE 0 END), "
            "SUM(CASE WHEN state = 'settled' THEN medfee_sumamt ELSE 0 END), "
            "SUM(CASE WHEN state = 'settled' THEN hifp_pay ELSE 0 END), "
            "SUM(CASE WHEN state = 'settled' THEN acct_pay ELSE 0 END), "
            "SUM(CASE WHEN state = 'settled' AND cash_src = 'cash' THEN psn_cash_pay ELSE 0 END), "
            "SUM(CASE WHEN state = 'settled' AND cash_src = 'bank' THEN psn_cash_pay ELSE 0 END) "
            "FROM settlements WHERE day = ? GROUP BY fixmedins_code ORDER BY fixmedins_code",
            (day,))
        recon = {}
        for code, result, _created in tx.all(
                "SELECT fixmedins_code, result, created_at FROM reconciliations "
                "WHERE day = ? AND kind = '3201' ORDER BY created_at", (day,)):
            recon[str(code)] = "match" if result == "0" else "MISMATCH"
        out = [InstitutionDay(str(r[0]), names.get(str(r[0]), ""), int(r[1]), int(r[2]),
                              int(r[3]), int(r[4]), int(r[5]), int(r[6]), int(r[7]),
                              recon.get(str(r[0]), "not reconciled")) for r in rows]
        bad = [f"entry {e} does not balance ({s})" for e, s in tx.all(
            "SELECT p.entry_id, SUM(p.amount) FROM postings p JOIN entries e ON "
            "e.entry_id = p.entry_id WHERE e.day = ? GROUP BY p.entry_id "
            "HAVING SUM(p.amount) <> 0", (day,))]
        return out, bad
    return store.run(q)


def format_report(day: str, rows: list[InstitutionDay], problems: list[str]) -> str:
    head = (f"{'institution':<13} {'settled':>7} {'cancel':>6} {'total':>12} {'fund':>12} "
            f"{'account':>12} {'cash':>11} {'bank':>11}  reconciliation")
    lines = [f"sscard host report for {day}", head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r.fixmedins_code:<13} {r.settled:>7} {r.cancelled:>6} "
                     f"{yuan(r.total):>12} {yuan(r.fund):>12} {yuan(r.account):>12} "
                     f"{yuan(r.cash):>11} {yuan(r.bank):>11}  {r.reconciliation}")
    if not rows:
        lines.append("(no settlements that day)")
    tot = sum(r.total for r in rows)
    lines.append(f"total {yuan(tot)} yuan in {sum(r.settled for r in rows)} settlements; "
                 + ("books balance" if not problems else f"{len(problems)} PROBLEMS:"))
    lines.extend(problems)
    return "\n".join(lines)

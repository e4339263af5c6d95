"""The double-entry books (spec/host.md §4).

- An *entry* is one business event (settlement, cancel, reversal, fee, migration,
  replacement…); its *postings* move integer fen between accounts and sum to zero.
- Entries and postings are append-only: the database refuses UPDATE and DELETE on them
  (triggers, migration 0001); a cancel is a new, opposite entry.
- A posting's amount is the change of what the account holds: ``-500`` on a personal
  medical account is a 5-yuan payment out of it.
- Personal medical, bank and old medical card accounts can never go below zero: the
  balance update is guarded in SQL (``balance + amount >= 0``) and by a CHECK constraint,
  so no caller can overdraw them. Other accounts keep no running balance (no hot rows);
  their balance is the sum of their postings.

Account identifiers: ``medical:<psn_no>``, ``bank:<pan>``, ``oldmed:<old card no>``,
``clearing:<fixmedins_code>``, ``cash:<fixmedins_code>``, ``fund:<admdvs>``,
``fee:<admdvs>``, ``contrib:<admdvs>``, ``deposits:<bank>``, ``external:cash``.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ledger.errors import InsufficientFunds, NotFound
from ledger.money import yuan
from ledger.store.base import Tx

CONSTRAINED = frozenset({"medical", "bank", "oldmed"})
KIND_NAMES = {"medical": "personal medical account", "bank": "bank account",
              "oldmed": "old medical card account"}


def medical(psn_no: str) -> str:
    return f"medical:{psn_no}"


def bank(pan: str) -> str:
    return f"bank:{pan}"


def oldmed(old_card_no: str) -> str:
    return f"oldmed:{old_card_no}"


def clearing(fixmedins_code: str) -> str:
    return f"clearing:{fixmedins_code}"


def cash(fixmedins_code: str) -> str:
    return f"cash:{fixmedins_code}"


def fund(admdvs: str) -> str:
    return f"fund:{admdvs}"


def fee(admdvs: str) -> str:
    return f"fee:{admdvs}"


def contrib(admdvs: str) -> str:
    return f"contrib:{admdvs}"


def deposits(bank_code: str) -> str:
    return f"deposits:{bank_code}"


EXTERNAL_CASH = "external:cash"


def kind_of(account_id: str) -> str:
    return account_id.split(":", 1)[0]


@dataclass(frozen=True)
class Entry:
    """One journal entry to append."""

    entry_id: str
    msgid: str
    kind: str
    day: str
    fixmedins_code: str
    created_at: str
    postings: Sequence[tuple[str, int]]
    memo: str = ""
    ref_entry_id: str | None = None


def open_account(tx: Tx, account_id: str, owner: str) -> None:
    """Create an account (idempotent)."""
    tx.execute("INSERT INTO accounts (account_id, kind, owner, balance) VALUES (?, ?, ?, 0) "
               "ON CONFLICT (account_id) DO NOTHING", (account_id, kind_of(account_id), owner))


def post(tx: Tx, entry: Entry) -> None:
    """Append ``entry`` and apply its postings; refuse any overdraft of a guarded account.

    Raises :class:`InsufficientFunds` (the whole transaction then rolls back) when a
    medical, bank or old-card account would go below zero.
    """
    postings = [(a, amt) for a, amt in entry.postings if amt != 0]
    if sum(amt for _, amt in postings) != 0:
        raise AssertionError(f"entry {entry.entry_id} does not balance: {postings}")
    # guarded balances first, in a fixed order (no deadlock between concurrent entries)
    merged: dict[str, int] = {}
    for a, amt in postings:
        if kind_of(a) in CONSTRAINED:
            merged[a] = merged.get(a, 0) + amt
    for a in sorted(merged):
        amt = merged[a]
        if amt == 0:
            continue
        tx.contend(a)
        tx.defer("UPDATE accounts SET balance = balance + ? "
                 "WHERE account_id = ? AND balance + ? >= 0", (amt, a, amt),
                 check=functools.partial(_refuse, account_id=a, amount=amt))
    tx.defer("INSERT INTO entries (entry_id, msgid, kind, day, fixmedins_code, created_at, "
               "ref_entry_id, memo) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
               (entry.entry_id, entry.msgid, entry.kind, entry.day, entry.fixmedins_code,
                entry.created_at, entry.ref_entry_id, entry.memo))
    if len(postings) <= 64:   # one statement, one round trip
        marks = ", ".join("(?, ?, ?, ?)" for _ in postings)
        flat = [v for i, (a, amt) in enumerate(postings) for v in (entry.entry_id, i, a, amt)]
        tx.defer(f"INSERT INTO postings (entry_id, seq, account_id, amount) VALUES {marks}",
                 flat)
    else:
        tx.many("INSERT INTO postings (entry_id, seq, account_id, amount) VALUES (?, ?, ?, ?)",
                [(entry.entry_id, i, a, amt) for i, (a, amt) in enumerate(postings)])


def _refuse(tx: Tx, account_id: str, amount: int) -> None:
    """The guarded update changed no row: say precisely why."""
    row = tx.one("SELECT balance FROM accounts WHERE account_id = ?", (account_id,))
    if row is None:
        raise NotFound(f"account {account_id} does not exist")
    raise InsufficientFunds(
        f"insufficient balance: the {KIND_NAMES[kind_of(account_id)]} holds "
        f"{yuan(int(row[0]))} yuan, {yuan(-amount)} yuan needed; nothing was charged")


def entry_postings(tx: Tx, entry_id: str) -> list[tuple[str, int]]:
    rows = tx.all("SELECT account_id, amount FROM postings WHERE entry_id = ? ORDER BY seq",
                  (entry_id,))
    return [(str(a), int(amt)) for a, amt in rows]


def opposite(postings: Iterable[tuple[str, int]]) -> list[tuple[str, int]]:
    """The postings that undo ``postings``."""
    return [(a, -amt) for a, amt in postings]


def balance(tx: Tx, account_id: str) -> int:
    """What the account holds now (guarded: running balance; others: sum of postings)."""
    if kind_of(account_id) in CONSTRAINED:
        row = tx.one("SELECT balance FROM accounts WHERE account_id = ?", (account_id,))
        if row is None:
            raise NotFound(f"account {account_id} does not exist")
        return int(row[0])
    row = tx.one("SELECT COALESCE(SUM(amount), 0) FROM postings WHERE account_id = ?",
                 (account_id,))
    return int(row[0]) if row else 0


def verify(tx: Tx) -> list[str]:
    """Check the books: every entry balances, guarded balances equal their postings and
    none is negative. Returns the problems found (empty when the books are sound)."""
    problems: list[str] = []
    for eid, s in tx.all("SELECT entry_id, SUM(amount) FROM postings GROUP BY entry_id "
                         "HAVING SUM(amount) <> 0"):
        problems.append(f"entry {eid} does not balance (sum {s})")
    rows = tx.all(
        "SELECT a.account_id, a.balance, COALESCE(p.s, 0) FROM accounts a LEFT JOIN "
        "(SELECT account_id, SUM(amount) AS s FROM postings GROUP BY account_id) p "
        "ON p.account_id = a.account_id WHERE a.kind IN ('medical', 'bank', 'oldmed')")
    for a, bal, s in rows:
        if int(bal) != int(s):
            problems.append(f"account {a}: balance {bal} but postings sum to {s}")
        if int(bal) < 0:
            problems.append(f"account {a} is negative ({bal})")
    return problems

"""Synthetic holders in bulk (``sscard host populate --cards N``).

Deterministic: holder ``i`` always gets the same ID number (valid GB 11643 check
character), name, card number (``Y`` + 7 digits + check character: the ``Y`` range is kept
free by the counter's issuing), card identification code (serial ``F…``), PAN (serial from
9×10¹¹) and opening balances. Bulk insert in big transactions: executemany on SQLite, COPY
on PostgreSQL. Opening balances are journal entries too (one per batch), so the books
balance after a populate. Up to the seed city's size (4 million).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import date, timedelta

from ledger import books
from ledger.errors import BadRequest
from ledger.ids import card_check_char, card_sn_auth, id_check_char, luhn_digit
from ledger.service import now_cst
from ledger.store.base import Store, Tx

DISTRICTS = ("370811", "370812", "370826", "370827", "370828", "370829", "370830",
             "370831", "370832", "370881", "370883", "370802")
SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕"
GIVEN = ("伟", "芳", "娜", "秀英", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰",
         "娟", "涛", "明", "超", "秀兰", "霞", "平", "刚", "桂英", "建华", "玉兰", "志强")
BANKS = (("CCB", "621700"), ("ICBC", "621226"), ("ABC", "622848"), ("BOC", "621661"))
EPOCH = date(1940, 1, 1)
MAX_CARDS = 12 * 25_000 * 1000


def holder(i: int, area: str) -> dict[str, object]:
    """The ``i``-th synthetic holder."""
    seq, rest = i % 1000, i // 1000
    born = EPOCH + timedelta(days=rest % 25_000)
    district = DISTRICTS[(rest // 25_000) % len(DISTRICTS)]
    body = f"{district}{born:%Y%m%d}{seq:03d}"
    certno = body + id_check_char(body)
    cbody = f"Y{i:07d}"
    card_no = cbody + card_check_char(cbody)
    serial = f"F{i:07X}"
    card_sn = f"{area}D156000005{serial}{card_sn_auth(area, serial)}"
    bank, bin6 = BANKS[i % 4]
    pbody = f"{bin6}{9 * 10**11 + i:012d}"
    r = random.Random(i)
    return {
        "psn_no": area + certno, "certno": certno,
        "name": SURNAMES[r.randrange(len(SURNAMES))] + GIVEN[r.randrange(len(GIVEN))],
        "gend": "1" if seq % 2 else "2", "brdy": born.isoformat(),
        "insutype": "310" if r.random() < 0.21 else "390",
        "card_no": card_no, "card_sn": card_sn, "pan": pbody + luhn_digit(pbody),
        "bank": bank, "medical": r.randrange(0, 300_000), "bank_balance": r.randrange(0, 500_000),
    }


def populate(store: Store, cards: int, *, area: str = "370800", start: int | None = None,
             batch: int = 20_000,
             progress: Callable[[int, int], None] | None = None) -> dict[str, int]:
    """Create ``cards`` synthetic holders (person, activated card, medical and bank accounts
    with opening balances) in ``area`` (one with a policy at this host), ``batch`` per
    transaction. ``start`` defaults to the number already populated.

    Each batch is one transaction with its own opening entry (``POP<area><first>+<n>``), so
    a failed run leaves whole batches only and the next run continues after them."""
    if cards < 0 or cards > 4_000_000:
        raise BadRequest("--cards must be between 0 and 4000000 (the seed city's size)")
    if batch < 1:
        raise BadRequest("--batch must be at least 1 (holders per transaction)")

    def count(tx: Tx) -> int:
        row = tx.one("SELECT COUNT(*) FROM cards WHERE card_no >= 'Y' AND card_no < 'Z'")
        return int(row[0]) if row else 0

    def areas(tx: Tx) -> list[str]:
        return sorted(str(r[0]) for r in tx.all("SELECT admdvs FROM policies"))
    known = store.run(areas)
    if area not in known:
        raise BadRequest(f"area {area!r} has no policy at this host; known areas: "
                         f"{', '.join(known) or 'none (run `sscard host init`)'}")
    first = store.run(count) if start is None else start
    if first + cards > MAX_CARDS:
        raise BadRequest("too many synthetic holders")
    now = now_cst()
    ts = now.isoformat()
    day = now.strftime("%Y-%m-%d")
    done = 0
    while done < cards:
        n = min(batch, cards - done)
        hs = [holder(first + done + k, area) for k in range(n)]
        # the count in the key keeps it apart from the empty entry an older populate with
        # --batch 0 committed
        entry_id = f"POP{area}{first + done:010d}+{n}"

        def load(tx: Tx, hs: list[dict[str, object]] = hs, entry_id: str = entry_id) -> None:
            tx.load("persons", ("psn_no", "certno", "psn_name", "gend", "naty", "brdy",
                                "insutype", "psn_type", "psn_insu_stas", "insuplc_admdvs",
                                "emp_name", "created_at"),
                    [(h["psn_no"], h["certno"], h["name"], h["gend"], "01", h["brdy"],
                      h["insutype"], "11" if h["insutype"] == "310" else "16", "1", area,
                      "", ts) for h in hs])
            tx.load("cards", ("card_no", "card_sn", "psn_no", "pan", "pan_seq", "bank", "state",
                              "generation", "alg", "issued_at", "state_at", "atc_last",
                              "activated_at", "replaces"),
                    [(h["card_no"], h["card_sn"], h["psn_no"], h["pan"], 1, h["bank"],
                      "activated", "3.00", 3, ts, ts, 0, ts, "") for h in hs])
            tx.load("accounts", ("account_id", "kind", "owner", "balance"),
                    [r for h in hs for r in (
                        (books.medical(str(h["psn_no"])), "medical", h["psn_no"], h["medical"]),
                        (books.bank(str(h["pan"])), "bank", h["card_no"], h["bank_balance"]))])
            tx.execute("INSERT INTO entries (entry_id, msgid, kind, day, fixmedins_code, "
                       "created_at, ref_entry_id, memo) VALUES (?, ?, 'opening', ?, '', ?, "
                       "NULL, ?)", (entry_id, entry_id, day, ts, f"populate {len(hs)}"))
            postings: list[tuple[str, int, str, int]] = []
            src: dict[str, int] = {}
            for h in hs:
                postings.append((entry_id, len(postings), books.medical(str(h["psn_no"])),
                                 int(str(h["medical"]))))
                postings.append((entry_id, len(postings), books.bank(str(h["pan"])),
                                 int(str(h["bank_balance"]))))
                src[books.contrib(area)] = src.get(books.contrib(area), 0) - int(str(h["medical"]))
                k = books.deposits(str(h["bank"]))
                src[k] = src.get(k, 0) - int(str(h["bank_balance"]))
            for acct, amt in sorted(src.items()):
                postings.append((entry_id, len(postings), acct, amt))
            tx.load("postings", ("entry_id", "seq", "account_id", "amount"), postings)

        store.run(load)
        done += n
        if progress:
            progress(done, cards)
    return {"created": cards, "first": first, "total": first + cards}

"""Idempotency after a crash (spec/host.md §4): a process that dies inside the transaction
leaves nothing; one that dies after the commit, before answering, leaves the effect once and
the resent msgid gets the first answer. Real processes, killed with ``os._exit``."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ledger.service import HostService
from tests.ledger.helpers import AMOXICILLIN, PHARMACY, World, balances, envelope, verify

CHILD = textwrap.dedent('''
    import json, os, sys
    from ledger import books, service
    from ledger.service import HostService
    from ledger.store import open_store
    url, when, env = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    store = open_store(url)
    if when == "before-commit":
        real = books.post
        def post(tx, entry):
            real(tx, entry)
            if hasattr(tx, "flush"):
                tx.flush()          # the writes reached PostgreSQL, the commit did not
            os._exit(9)
        books.post = post
        import ledger.settle
        ledger.settle.books.post = post
    host = HostService(store)
    answer = host.call(env)
    if when == "after-commit":
        os._exit(9)                 # committed, the answer never leaves the process
    print(json.dumps(answer))
''')


def _url(host: HostService) -> str:
    return host.store.url


@pytest.mark.parametrize("when", ["before-commit", "after-commit"])
def test_crash_then_resend_has_one_effect(host: HostService, when: str, tmp_path: Path) -> None:
    w = World(host)
    h = w.person()
    env = envelope(PHARMACY, "2102", w.pharmacy.druginfo(
        psn_no=h.psn_no, card_no=h.card_no, card_sn=h.card_sn,
        lines=w.lines((AMOXICILLIN, 2, 1250))), sign_no=w.pharmacy.sign_no)
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.run([sys.executable, "-c", CHILD, _url(host), when, json.dumps(env)],
                          cwd=root, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 9, proc.stderr
    host.store.close()          # drop our connections; the child's are gone with it
    after_crash = balances(host)[f"medical:{h.psn_no}"]
    assert after_crash == (50_000 if when == "before-commit" else 47_500)
    first = host.call(env)
    again = host.call(env)
    assert first["infcode"] == 0 and again == first
    assert balances(host)[f"medical:{h.psn_no}"] == 47_500
    n = host.store.run(lambda tx: tx.one("SELECT COUNT(*) FROM settlements WHERE msgid = ?",
                                         (env["msgid"],)))[0]
    assert n == 1
    assert verify(host) == []

"""Failures the fault harnesses once found, kept as fast regression tests.

* bank test, SQLite: a duplicate msgid sent while its first copy was still being applied was
  answered "internal error" (``UNIQUE constraint failed: requests.msgid``) instead of the
  first answer (spec/host.md §4: the same msgid, concurrently or after a crash, has exactly
  one effect and returns the first answer again).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from ledger.client import HostClient, drug_line
from ledger.populate import holder, populate
from ledger.service import HostService, initialize
from ledger.store import open_store


def test_concurrent_duplicates_get_the_first_answer(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'host.db'}"
    store = open_store(url)
    initialize(store)
    populate(store, 2)
    store.close()
    service = HostService.open(url)
    client = HostClient(_Local(service), fixmedins_code="P37080000001")
    try:
        h = holder(0, "370800")
        for round_ in range(5):
            env = client.envelope("2102", client.druginfo(
                psn_no=str(h["psn_no"]), card_no=str(h["card_no"]), card_sn=str(h["card_sn"]),
                insutype=str(h["insutype"]),
                lines=[drug_line("1", "XJ01CAA040A001010101445", 1 + round_, 1250)]))
            answers: list[dict[str, Any]] = []
            barrier = threading.Barrier(8)

            def send(env: dict[str, Any] = env, barrier: threading.Barrier = barrier,
                     answers: list[dict[str, Any]] = answers) -> None:
                barrier.wait()
                answers.append(service.call(env))

            threads = [threading.Thread(target=send) for _ in range(8)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(30)
            assert len(answers) == 8
            assert all(a["infcode"] == 0 for a in answers), [a["err_msg"] for a in answers]
            assert len({a["output"]["setlinfo"]["setl_id"] for a in answers}) == 1
            msgid = env["msgid"]

            def count(tx: Any, msgid: str = msgid) -> int:
                row = tx.one("SELECT COUNT(*) FROM entries WHERE msgid = ?", (msgid,))
                return int(row[0])

            assert service.store.run(count) == 1
    finally:
        service.close()


class _Local:
    def __init__(self, service: HostService) -> None:
        self.service = service

    def send(self, envelope: dict[str, Any], timeout: float) -> dict[str, Any]:
        answer: dict[str, Any] = self.service.call(envelope)
        return answer

    def close(self) -> None:
        pass

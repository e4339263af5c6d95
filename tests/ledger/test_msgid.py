"""msgids of the terminals of one institution (spec/host.md §1): 30 characters,
``institution ‖ yyyyMMddHHmmss ‖ slot(2) ‖ counter(2)``, distinct between terminals,
stable across the retries of one request; on both back ends."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from typing import Any

from ledger.client import HostClient, LocalTransport, MsgidSequence, terminal_slot
from ledger.errors import Unavailable
from ledger.ids import valid_msgid
from ledger.service import HostService
from tests.ledger.helpers import OFFICE, PHARMACY2, World, balances, count_rows, verify


class FrozenClock:
    """A clock that only moves when told."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 28, 10, 0, 0, 250_000)

    def __call__(self) -> datetime:
        return self.now


def test_terminal_slots() -> None:
    assert [terminal_slot(t) for t in ("00", "01", "7", "42", "99", "101")] == \
        [0, 1, 7, 42, 99, 1]
    assert terminal_slot("cashier-A") == terminal_slot("cashier-A")
    assert 0 <= terminal_slot("cashier-A") <= 99
    assert 0 <= terminal_slot(None) <= 99


def test_one_hundred_terminals_in_one_second_never_collide() -> None:
    clock = FrozenClock()
    seqs = [MsgidSequence(OFFICE, slot, clock=clock) for slot in range(100)]
    ids = [s.next() for s in seqs for _ in range(MsgidSequence.PER_SECOND)]
    assert len(set(ids)) == 100 * MsgidSequence.PER_SECOND
    assert all(len(m) == 30 and valid_msgid(m) and m.startswith(OFFICE + "20261128100000")
               for m in ids)
    # the 101st of slot 42 in that second goes on with the next second, without waiting
    assert seqs[42].next()[12:] == "202611281000014200"
    assert seqs[42].next()[12:] == "202611281000014201"
    clock.now += timedelta(seconds=1)        # the clock catches up: no repeat
    assert seqs[42].next()[12:] == "202611281000014202"
    clock.now += timedelta(seconds=1)
    assert seqs[42].next()[12:] == "202611281000024200"


def test_the_sequence_never_repeats_when_the_clock_goes_back() -> None:
    clock = FrozenClock()
    seq = MsgidSequence(OFFICE, 3, clock=clock)
    seen = {seq.next() for _ in range(60)}
    clock.now -= timedelta(minutes=5)         # NTP step back
    later = [seq.next() for _ in range(100)]
    assert not seen & set(later) and len(set(later)) == 100
    assert later[0][12:] == "202611281000000360"   # carries on from the last one used
    assert later[-1][12:26] == "20261128100001"   # and past that second when it is full


def test_clients_of_one_terminal_in_one_process_share_the_sequence(host: HostService) -> None:
    a = HostClient(LocalTransport(host), fixmedins_code=OFFICE, terminal_id="05",
                   sign_in=False)
    b = HostClient(LocalTransport(host), fixmedins_code=OFFICE, terminal_id="05",
                   sign_in=False)
    c = HostClient(LocalTransport(host), fixmedins_code=OFFICE, terminal_id="06",
                   sign_in=False)
    ids = [x.new_msgid() for _ in range(150) for x in (a, b, c)]
    assert len(set(ids)) == len(ids)
    assert {m[26:28] for m in ids} == {"05", "06"}


def test_fifty_terminals_minting_at_full_speed_never_collide(host: HostService) -> None:
    clients = [HostClient(LocalTransport(host), fixmedins_code=PHARMACY2,
                          terminal_id=f"{i:02d}", sign_in=False) for i in range(50)]
    ids = [c.new_msgid() for _ in range(100) for c in clients]
    assert len(set(ids)) == len(ids) and all(valid_msgid(m) for m in ids)


def test_many_terminals_of_one_institution_at_once(host: HostService) -> None:
    """Forty terminals of the office credit the same person concurrently with identical
    requests: a shared msgid would be answered as a duplicate (or refused as a conflict),
    losing a credit; every credit must land."""
    world = World(host)
    h = world.person(medical_fen=0, bank_fen=0)
    terminals = 40
    per_terminal = 5
    clients = [HostClient(LocalTransport(host), fixmedins_code=OFFICE,
                          terminal_id=f"{10 + i:02d}") for i in range(terminals)]
    errors: list[BaseException] = []
    msgids: list[str] = []
    refused: list[str] = []
    start = threading.Barrier(terminals)

    def run(c: HostClient) -> None:
        start.wait()
        try:
            for _ in range(per_terminal):
                answer = c.call_envelope("8109", {"data": {
                    "psn_no": h.psn_no, "amount": "0.01", "target": "medical"}})
                msgids.append(answer["inf_refmsgid"])
                if answer["infcode"] != 0:
                    refused.append(answer["err_msg"])
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for c in clients:
        c.close()
    assert errors == []
    assert refused == []
    assert len(set(msgids)) == terminals * per_terminal
    assert balances(host)[f"medical:{h.psn_no}"] == terminals * per_terminal
    assert verify(host) == []


class LosesFirstAnswer:
    """Applies every request but loses the first answer (the terminal times out)."""

    def __init__(self, host: HostService) -> None:
        self.host = host
        self.sent: list[dict[str, Any]] = []
        self.lose = 1

    def send(self, envelope: dict[str, Any], timeout: float) -> dict[str, Any]:
        self.sent.append(dict(envelope))
        answer: dict[str, Any] = self.host.call(envelope)
        if self.lose:
            self.lose -= 1
            raise Unavailable("no answer from the host within 1 s")
        return answer

    def close(self) -> None:
        pass


def test_a_resend_keeps_its_msgid_and_gets_the_first_answer(host: HostService) -> None:
    world = World(host)
    h = world.person(medical_fen=0, bank_fen=0)
    t = LosesFirstAnswer(host)
    c = HostClient(t, fixmedins_code=OFFICE, terminal_id="07", sign_in=False)
    t.lose = 0
    c.sign_in()
    t.lose = 1
    before = count_rows(host)
    answer = c.call_envelope("8109", {"data": {"psn_no": h.psn_no, "amount": "12.34"}})
    assert answer["infcode"] == 0
    credits = [e for e in t.sent if e["infno"] == "8109"]
    assert len(credits) == 2 and credits[0]["msgid"] == credits[1]["msgid"]
    assert answer["inf_refmsgid"] == credits[0]["msgid"]
    assert balances(host)[f"medical:{h.psn_no}"] == 1234      # applied once
    after = count_rows(host)
    assert after["entries"] == before["entries"] + 1
    assert after["requests"] == before["requests"] + 1
    # the same request sent again on purpose (same msgid) gets the very same answer
    again = c.call_envelope("8109", {"data": {"psn_no": h.psn_no, "amount": "12.34"}},
                            msgid=credits[0]["msgid"])
    assert again == answer
    assert balances(host)[f"medical:{h.psn_no}"] == 1234

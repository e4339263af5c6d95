"""The in-process virtual transport: slots, PC/SC-like semantics, T=0 in one place, events."""

from __future__ import annotations

import io
import threading
import time

import pytest

from reader.base import CardEvent
from reader.echo import ECHO_ATR, EchoCard
from reader.errors import CardRemoved, NoCard, NoReader, ReaderBusy, ReaderError
from reader.monitor import ReaderMonitor
from reader.trace import TraceWriter, parse_trace
from reader.virtual import VirtualTransport
from tests.reader.cards import PullableCard

USER, PSAM = "Virtual Card 0", "Virtual PSAM 0"


def test_pair_of_readers_and_their_state() -> None:
    t = VirtualTransport.with_cards(EchoCard())
    infos = {r.name: r for r in t.readers()}
    assert infos[USER].card_present and infos[USER].atr == ECHO_ATR
    assert not infos[PSAM].card_present and infos[PSAM].state == "empty"
    with t.connect(USER):
        assert t.readers()[0].state == "present, exclusive"


def test_t0_rules_applied_once_and_observed_at_tpdu_level() -> None:
    card = EchoCard()
    t = VirtualTransport.with_cards(card)
    buf = io.StringIO()
    with t.connect(USER) as conn:
        conn.add_observer(TraceWriter(buf, reader=USER))
        rsp = conn.transmit(bytes.fromhex("00DA000003A1B2C300"))  # case 4
        assert rsp.data == bytes.fromhex("A1B2C3") and rsp.sw == 0x9000
    exchanges = parse_trace(buf.getvalue()).exchanges()
    # the card answered 61 03 to the case-3 TPDU, the layer fetched it with GET RESPONSE
    assert [(c.data.hex(), r.data.hex()) for c, r in exchanges] == [
        ("00da000003a1b2c3", "6103"), ("00c0000003", "a1b2c39000")]


def test_exclusive_and_shared() -> None:
    t = VirtualTransport.with_cards(EchoCard())
    c1 = t.connect(USER)
    with pytest.raises(ReaderBusy):
        t.connect(USER, exclusive=False)
    c1.disconnect()
    a = t.connect(USER, exclusive=False)
    b = t.connect(USER, exclusive=False)
    with pytest.raises(ReaderBusy):
        t.connect(USER)
    assert a.transmit(bytes.fromhex("00B0000001")).ok and b.transmit(b"\x00\xb0\x00\x00\x01").ok


def test_no_card_unknown_reader_and_removal() -> None:
    t = VirtualTransport.with_cards(EchoCard())
    with pytest.raises(NoCard) as info:
        t.connect(PSAM)
    assert info.value.driver_code == -2
    with pytest.raises(NoReader, match="Virtual Card 0"):
        t.connect("Nope")
    conn = t.connect(USER)
    removed = t.remove(USER)
    assert isinstance(removed, EchoCard) and not removed.powered
    with pytest.raises(CardRemoved):
        conn.transmit(bytes.fromhex("00B0000001"))
    t.insert(EchoCard(), USER)
    with pytest.raises(CardRemoved):  # a new card does not revive the old connection
        conn.transmit(bytes.fromhex("00B0000001"))
    with t.connect(USER) as fresh:
        assert fresh.transmit(bytes.fromhex("00B0000001")).ok


def test_card_leaving_the_contacts_mid_exchange() -> None:
    card = PullableCard(pull_at=1)
    t = VirtualTransport.with_cards(card)
    conn = t.connect(USER)
    assert conn.transmit(bytes.fromhex("00B0000002")).ok
    with pytest.raises(CardRemoved, match="start over") as info:
        conn.transmit(bytes.fromhex("00B0000002"))
    assert isinstance(info.value, ReaderError) and info.value.driver_code == -2
    conn.disconnect()
    with pytest.raises(NoCard):
        t.connect(USER)
    card.insert()
    with t.connect(USER) as again:
        assert again.transmit(bytes.fromhex("00B0000002")).ok


def test_disconnect_resets_the_card_by_default() -> None:
    resets = []

    class Counting(EchoCard):
        def reset(self) -> bytes:
            resets.append(1)
            return super().reset()

    t = VirtualTransport.with_cards(Counting())
    t.connect(USER).disconnect()
    assert resets == [1]
    leave = VirtualTransport(disposition="leave")
    leave.add_reader("R", Counting())
    leave.connect("R").disconnect()
    assert resets == [1]


def test_events_first_picture_then_changes() -> None:
    t = VirtualTransport.with_cards(EchoCard())
    first = t.wait_for_event(0)
    assert [(e.reader, e.kind) for e in first] == [
        (USER, "reader_added"), (USER, "inserted"), (PSAM, "reader_added")]
    assert t.wait_for_event(0.01) == []
    t.insert(EchoCard(), PSAM)
    t.remove(USER)
    kinds = [(e.reader, e.kind) for e in t.wait_for_event(1)]
    assert sorted(kinds) == [(USER, "removed"), (PSAM, "inserted")]
    t.remove(USER)  # already empty: nothing changes for a watcher
    assert t.wait_for_event(0.01) == []
    t.insert(EchoCard(), USER)
    assert [e.kind for e in t.wait_for_event(1)] == ["inserted"]
    t.insert(EchoCard(), USER)  # swapped between two polls: removed + inserted
    assert [e.kind for e in t.wait_for_event(1)] == ["removed", "inserted"]
    t.remove_reader(PSAM)
    assert [(e.reader, e.kind) for e in t.wait_for_event(1)] == [
        (PSAM, "removed"), (PSAM, "reader_removed")]


def test_monitor_delivers_events_from_another_thread() -> None:
    t = VirtualTransport.with_cards(None)
    got: list[CardEvent] = []
    ready = threading.Event()

    def on_event(e: CardEvent) -> None:
        got.append(e)
        if e.kind == "removed":
            ready.set()

    with ReaderMonitor(t, on_event, poll=0.05):
        time.sleep(0.1)
        t.insert(EchoCard(), USER)
        time.sleep(0.1)
        t.remove(USER)
        assert ready.wait(2)
    assert [(e.reader, e.kind) for e in got if e.reader == USER][-2:] == [
        (USER, "inserted"), (USER, "removed")]


def test_monitor_survives_a_failing_transport() -> None:
    class Flaky(VirtualTransport):
        calls = 0

        def wait_for_event(self, timeout: float | None = None) -> list[CardEvent]:
            self.calls += 1
            if self.calls <= 2:
                raise ReaderError("service gone")
            if self.calls == 3:
                raise RuntimeError("unexpected")
            return super().wait_for_event(timeout)

    t = Flaky()
    t.add_reader("R", EchoCard())
    got: list[CardEvent] = []
    mon = ReaderMonitor(t, got.append, poll=0.05, backoff=(0.01, 0.02)).start()
    try:
        deadline = time.monotonic() + 3
        while not got and time.monotonic() < deadline:
            time.sleep(0.02)
        assert mon.alive and mon.errors == 3 and "unexpected" in mon.last_error
        assert ("R", "inserted") in [(e.reader, e.kind) for e in got]
    finally:
        mon.stop()
    assert not mon.alive

"""A state-machine test of the in-process transport: any sequence of insertions, removals,
connections and exchanges keeps PC/SC semantics, and the events a watcher sees replay to the
true reader state."""

from __future__ import annotations

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from reader.base import Connection
from reader.echo import EchoCard
from reader.errors import CardRemoved, NoCard, NotPowered, ReaderBusy
from reader.virtual import VirtualTransport

READERS = ("Virtual Card 0", "Virtual PSAM 0")
reader_st = st.sampled_from(READERS)


class VirtualReaders(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.t = VirtualTransport.with_cards(None, None)
        self.present = {r: False for r in READERS}
        self.watched = {r: False for r in READERS}  # what the events told so far
        self.conns: list[tuple[str, Connection, bool, int]] = []  # reader, conn, excl, gen
        self.gen = {r: 0 for r in READERS}
        for e in self.t.wait_for_event(0):
            if e.kind == "inserted":
                self.watched[e.reader] = True

    @rule(reader=reader_st)
    def insert(self, reader: str) -> None:
        self.t.insert(EchoCard(), reader)
        self.present[reader] = True
        self.gen[reader] += 1

    @rule(reader=reader_st)
    def remove(self, reader: str) -> None:
        self.t.remove(reader)
        if self.present[reader]:
            self.gen[reader] += 1
        self.present[reader] = False

    @rule(reader=reader_st, exclusive=st.booleans())
    def connect(self, reader: str, exclusive: bool) -> None:
        live = [c for c in self.conns if c[0] == reader and c[3] == self.gen[reader]]
        busy = any(c[2] for c in live) or (exclusive and bool(live))
        try:
            conn = self.t.connect(reader, exclusive=exclusive)
        except NoCard:
            assert not self.present[reader]
            return
        except ReaderBusy:
            assert self.present[reader] and busy
            return
        assert self.present[reader] and not busy
        self.conns.append((reader, conn, exclusive, self.gen[reader]))

    @precondition(lambda self: bool(self.conns))
    @rule(i=st.integers(0, 50))
    def exchange(self, i: int) -> None:
        reader, conn, _, gen = self.conns[i % len(self.conns)]
        try:
            rsp = conn.transmit(bytes.fromhex("00B0000002"))
        except CardRemoved:
            assert gen != self.gen[reader] or not self.present[reader]
            return
        assert gen == self.gen[reader] and self.present[reader]
        assert rsp.data == b"\x00\x01" and rsp.sw == 0x9000

    @precondition(lambda self: bool(self.conns))
    @rule(i=st.integers(0, 50))
    def disconnect(self, i: int) -> None:
        _, conn, _, _ = self.conns.pop(i % len(self.conns))
        conn.disconnect()
        try:
            conn.transmit(bytes.fromhex("00B0000001"))
            raise AssertionError("a closed connection answered")
        except (NotPowered, CardRemoved):
            pass

    @rule()
    def watch(self) -> None:
        for e in self.t.wait_for_event(0):
            if e.kind == "inserted":
                self.watched[e.reader] = True
            elif e.kind == "removed":
                self.watched[e.reader] = False

    @invariant()
    def listing_matches(self) -> None:
        assert {r.name: r.card_present for r in self.t.readers()} == self.present

    def teardown(self) -> None:
        self.watch()
        assert self.watched == self.present


TestVirtualReaders = VirtualReaders.TestCase
TestVirtualReaders.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)

"""PC/SC event logic against a scripted PC/SC service (no pcscd): readers plugged and
unplugged (PnP), cards swapped between two polls, the service going away and coming back.
What pcscd itself does is covered by test_pcsc.py and test_faults.py."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from reader import pcsc
from reader.errors import NoCard, ReaderGone, ServiceUnavailable
from reader.pcsc import PcscTransport


@dataclass
class FakeReader:
    present: bool = False
    atr: bytes = b""
    count: int = 0  # pcsc-lite's event counter (high word of the state)


@dataclass
class FakeScard:
    """Just enough of smartcard.scard for the transport's listing and event code."""

    readers: dict[str, FakeReader] = field(default_factory=dict)
    up: bool = True
    epoch: int = 1  # contexts of an earlier epoch are dead (the service restarted)
    plug_count: int = 0
    transmit_answer: tuple[int, list[int]] = (0, [0x90, 0x00])

    SCARD_SCOPE_USER = 0
    SCARD_SHARE_EXCLUSIVE = 1
    SCARD_SHARE_SHARED = 2
    SCARD_PROTOCOL_T0 = 1
    SCARD_PROTOCOL_T1 = 2
    SCARD_RESET_CARD = 1
    SCARD_LEAVE_CARD = 0
    SCARD_UNPOWER_CARD = 2

    def SCardGetErrorMessage(self, code: int) -> str:
        return "fake"

    def _alive(self, ctx: int) -> bool:
        return self.up and ctx == self.epoch

    def SCardEstablishContext(self, scope: int) -> tuple[int, int]:
        return (0, self.epoch) if self.up else (pcsc.SCARD_E_NO_SERVICE, 0)

    def SCardReleaseContext(self, ctx: int) -> int:
        return 0

    def SCardListReaders(self, ctx: int, groups: list[str]) -> tuple[int, list[str]]:
        if not self._alive(ctx):
            return pcsc.SCARD_E_NO_SERVICE, []
        if not self.readers:
            return pcsc.SCARD_E_NO_READERS_AVAILABLE, []
        return 0, list(self.readers)

    def _state(self, name: str) -> int:
        r = self.readers.get(name)
        if r is None:
            return pcsc.SCARD_STATE_UNKNOWN
        flags = pcsc.SCARD_STATE_PRESENT if r.present else pcsc.SCARD_STATE_EMPTY
        return (r.count << 16) | flags

    def SCardGetStatusChange(self, ctx: int, timeout: int,
                             states: list[tuple[str, int]]) -> tuple[int, list[Any]]:
        if not self._alive(ctx):
            return pcsc.SCARD_E_NO_SERVICE, []
        out = []
        changed = False
        for name, given in states:
            now = self.plug_count << 16 if name == pcsc.PNP_READER else self._state(name)
            differs = (now & ~pcsc.SCARD_STATE_CHANGED) != (given & ~pcsc.SCARD_STATE_CHANGED)
            changed |= differs
            r = self.readers.get(name)
            out.append((name, now | (pcsc.SCARD_STATE_CHANGED if differs else 0),
                        list(r.atr) if r and r.present else []))
        if not changed and timeout:
            return pcsc.SCARD_E_TIMEOUT, out
        return 0, out

    # -- what a test does --------------------------------------------------------------------
    def plug(self, name: str) -> None:
        self.readers[name] = FakeReader()
        self.plug_count += 1

    def unplug(self, name: str) -> None:
        del self.readers[name]
        self.plug_count += 1

    def insert(self, name: str, atr: bytes) -> None:
        r = self.readers[name]
        r.present, r.atr, r.count = True, atr, r.count + 1

    def remove(self, name: str) -> None:
        r = self.readers[name]
        r.present, r.atr, r.count = False, b"", r.count + 1

    def restart(self) -> None:
        self.epoch += 1


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeScard:
    f = FakeScard()
    monkeypatch.setattr(pcsc, "_scard", f)
    return f


def kinds(events: list[Any]) -> list[tuple[str, str]]:
    return [(e.reader, e.kind) for e in events]


def test_first_picture_insert_remove_and_swap(fake: FakeScard) -> None:
    fake.plug("A")
    fake.plug("B")
    fake.insert("A", b"\x3b\x00")
    t = PcscTransport()
    first = t.wait_for_event(0.1)
    assert kinds(first) == [("A", "reader_added"), ("A", "inserted"), ("B", "reader_added")]
    assert first[1].atr == b"\x3b\x00"
    assert t.wait_for_event(0.1) == []
    fake.insert("B", b"\x3b\x01")
    assert kinds(t.wait_for_event(0.1)) == [("B", "inserted")]
    fake.remove("A")
    fake.insert("A", b"\x3b\x02")  # swapped between two polls
    events = t.wait_for_event(0.1)
    assert kinds(events) == [("A", "removed"), ("A", "inserted")]
    assert events[1].atr == b"\x3b\x02"
    fake.remove("B")
    assert kinds(t.wait_for_event(0.1)) == [("B", "removed")]


def test_readers_plugged_and_unplugged(fake: FakeScard) -> None:
    fake.plug("A")
    t = PcscTransport()
    t.wait_for_event(0.1)
    fake.plug("USB reader")
    fake.insert("USB reader", b"\x3b\x09")
    assert kinds(t.wait_for_event(0.1)) == [("USB reader", "reader_added"),
                                            ("USB reader", "inserted")]
    fake.unplug("USB reader")
    assert kinds(t.wait_for_event(0.1)) == [("USB reader", "removed"),
                                            ("USB reader", "reader_removed")]
    fake.unplug("A")
    assert kinds(t.wait_for_event(0.1)) == [("A", "reader_removed")]
    assert t.readers() == []


def test_service_away_and_back(fake: FakeScard) -> None:
    fake.plug("A")
    fake.insert("A", b"\x3b\x00")
    t = PcscTransport()
    t.wait_for_event(0.1)
    fake.up = False
    assert kinds(t.wait_for_event(0.1)) == [("A", "removed"), ("A", "reader_removed")]
    assert t.wait_for_event(0.05) == []  # reported once; retried quietly
    with pytest.raises(ServiceUnavailable, match="pcscd is not running"):
        t.readers()
    fake.up = True
    fake.restart()  # the old context stays dead: a new one must be established
    assert kinds(t.wait_for_event(0.1)) == [("A", "reader_added"), ("A", "inserted")]
    assert [r.name for r in t.readers()] == ["A"]


def test_connection_errors_map_to_reader_errors(fake: FakeScard) -> None:
    fake.plug("A")
    t = PcscTransport(connect_retry=0)

    def connect(ctx: int, reader: str, share: int, protocols: int) -> tuple[int, int, int]:
        if not fake.readers[reader].present:
            return pcsc.SCARD_E_NO_SMARTCARD, 0, 0
        return 0, 7, 1

    fake.SCardConnect = connect  # type: ignore[attr-defined]
    with pytest.raises(NoCard):
        t.connect("A")
    fake.insert("A", b"\x3b\x00")
    fake.SCardStatus = lambda h: (0, "A", 0, 1, [0x3B, 0x00])  # type: ignore[attr-defined]
    fake.SCardTransmit = lambda h, p, apdu: (pcsc.SCARD_E_NO_SERVICE, [])  # type: ignore[attr-defined]
    fake.SCardDisconnect = lambda h, d: 0  # type: ignore[attr-defined]
    conn = t.connect("A")
    assert conn.atr() == b"\x3b\x00"
    fake.up = False
    with pytest.raises(ReaderGone, match="pcscd went away"):
        conn.transmit(bytes.fromhex("00B0000001"))


@pytest.mark.parametrize("code, cls, driver", [
    (pcsc.SCARD_E_NO_SERVICE, "ServiceUnavailable", -11),
    (pcsc.SCARD_E_NO_READERS_AVAILABLE, "NoReader", -11),
    (pcsc.SCARD_E_UNKNOWN_READER, "NoReader", -11),
    (pcsc.SCARD_E_READER_UNAVAILABLE, "ReaderGone", -11),
    (pcsc.SCARD_E_NO_SMARTCARD, "NoCard", -2),
    (pcsc.SCARD_W_REMOVED_CARD, "CardRemoved", -2),
    (pcsc.SCARD_W_RESET_CARD, "CardReset", -3),
    (pcsc.SCARD_W_UNPOWERED_CARD, "NotPowered", -3),
    (pcsc.SCARD_W_UNRESPONSIVE_CARD, "ReaderTimeout", -4),
    (pcsc.SCARD_E_TIMEOUT, "ReaderTimeout", -4),
    (pcsc.SCARD_E_SHARING_VIOLATION, "ReaderBusy", -11),
    (0x80100001, "TransportError", -11),
    (-2146435043, "ServiceUnavailable", -11),  # signed form of 0x8010001D
])
def test_error_mapping(code: int, cls: str, driver: int) -> None:
    err = pcsc.error_for(code, "R", "act")
    assert type(err).__name__ == cls and err.driver_code == driver
    assert str(err).startswith("R: act: ")

"""The vpcd card server against a scripted vpcd peer (no pcscd needed).

The peer behaves like vpcd 3.3: it listens, writes the 2-byte length and the payload in two
separate writes (so frames arrive split), polls with GET ATR, powers the card on and off.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reader.echo import ECHO_ATR, EchoCard
from reader.vpcd import VpcdServer, parse_endpoint, read_frame


class FakeVpcd:
    """A listening socket playing vpcd's part, one accepted connection at a time."""

    def __init__(self) -> None:
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(1)
        self.port = self.listener.getsockname()[1]
        self.conn: socket.socket | None = None

    def accept(self, timeout: float = 5.0) -> socket.socket:
        self.listener.settimeout(timeout)
        conn, _ = self.listener.accept()
        conn.settimeout(timeout)
        self.conn = conn
        return conn

    def send_split(self, payload: bytes) -> None:
        """Length and payload in two writes with a pause between (vpcd's habit)."""
        assert self.conn is not None
        self.conn.sendall(len(payload).to_bytes(2, "big"))
        time.sleep(0.01)
        for i in range(0, len(payload), 3):  # and the payload itself in pieces
            self.conn.sendall(payload[i : i + 3])
        return None

    def ask(self, payload: bytes) -> bytes:
        self.send_split(payload)
        assert self.conn is not None
        return read_frame(self.conn, quickack=False)

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
        self.listener.close()


@pytest.fixture
def vpcd() -> Iterator[FakeVpcd]:
    peer = FakeVpcd()
    yield peer
    peer.close()


def test_answers_get_atr_apdus_and_power_controls(vpcd: FakeVpcd) -> None:
    card = EchoCard()
    with VpcdServer(card, port=vpcd.port) as server:
        vpcd.accept()
        assert server.wait_connected(2)
        assert vpcd.ask(b"\x04") == ECHO_ATR
        vpcd.send_split(b"\x01")  # power on: no answer expected
        assert vpcd.ask(bytes.fromhex("00B0000005")) == bytes.fromhex("00010203049000")
        assert card.powered
        vpcd.send_split(b"\x00")  # power off
        assert vpcd.ask(b"\x04") == ECHO_ATR  # GET ATR is answered even when unpowered
        assert not card.powered
        vpcd.send_split(b"\x02")  # reset powers it again
        big = bytes(range(200))
        assert vpcd.ask(bytes.fromhex("00DA0000C8") + big + b"\x00") == big + b"\x90\x00"
        assert server.apdus == 2


def test_remove_closes_and_insert_reconnects(vpcd: FakeVpcd) -> None:
    server = VpcdServer(EchoCard(), port=vpcd.port).start()
    try:
        first = vpcd.accept()
        assert server.wait_connected(2)
        server.remove()
        first.settimeout(2)
        assert first.recv(10) == b""  # the card side closed: vpcd sees the card leave
        assert server.wait_disconnected(2)
        server.insert()
        vpcd.accept()
        assert server.wait_connected(2)
        assert vpcd.ask(b"\x04") == ECHO_ATR
        assert server.connections == 2
    finally:
        server.stop()


def test_reconnects_with_backoff_when_vpcd_comes_back() -> None:
    """pcscd restarting = vpcd's socket closing, then listening again later on the port."""
    peer = FakeVpcd()
    port = peer.port
    server = VpcdServer(EchoCard(), port=port, backoff=(0.02, 0.1)).start()
    try:
        conn = peer.accept()
        assert server.wait_connected(2)
        conn.close()
        peer.close()  # nothing listens now: connects are refused for a while
        assert server.wait_disconnected(2)
        time.sleep(0.3)
        assert not server.connected
        again = socket.socket()
        again.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        again.bind(("127.0.0.1", port))
        again.listen(1)
        again.settimeout(3)
        c2, _ = again.accept()
        c2.settimeout(2)
        c2.sendall(b"\x00\x01\x04")
        assert read_frame(c2, quickack=False) == ECHO_ATR
        assert server.connections == 2
        c2.close()
        again.close()
    finally:
        server.stop()


def test_stop_removes_the_card(vpcd: FakeVpcd) -> None:
    server = VpcdServer(EchoCard(), port=vpcd.port).start()
    conn = vpcd.accept()
    assert server.wait_connected(2)
    server.stop()
    conn.settimeout(2)
    assert conn.recv(10) == b""
    assert not server.connected


def test_card_that_raises_answers_6f00(vpcd: FakeVpcd) -> None:
    class Broken(EchoCard):
        def transmit(self, command: bytes) -> bytes:
            raise RuntimeError("bug")

    with VpcdServer(Broken(), port=vpcd.port):
        vpcd.accept()
        assert vpcd.ask(bytes.fromhex("00A4000000")) == b"\x6f\x00"


def test_observers_see_exchanges(vpcd: FakeVpcd) -> None:
    seen: list[tuple[str, bytes]] = []

    class Obs:
        def on_command(self, reader: str, tpdu: bytes) -> None:
            seen.append(("cmd", tpdu))

        def on_response(self, reader: str, tpdu: bytes, response: bytes, s: float) -> None:
            seen.append(("rsp", response))

        def on_event(self, reader: str, what: str, data: bytes = b"") -> None:
            seen.append((what, data))

    with VpcdServer(EchoCard(), port=vpcd.port, observers=[Obs()]) as server:  # type: ignore[list-item]
        vpcd.accept()
        server.wait_connected(2)
        vpcd.send_split(b"\x01")
        vpcd.ask(bytes.fromhex("00B0000001"))
    assert ("cmd", bytes.fromhex("00B0000001")) in seen
    assert ("rsp", bytes.fromhex("009000")) in seen
    assert ("power on", ECHO_ATR) in seen
    assert seen[0][0] == "inserted" and seen[-1][0] == "removed"


def test_parse_endpoint() -> None:
    assert parse_endpoint(None, 1) == ("127.0.0.1", 35964)
    assert parse_endpoint(":40000") == ("127.0.0.1", 40000)
    assert parse_endpoint("[::1]:40000") == ("::1", 40000)
    with pytest.raises(ValueError):
        parse_endpoint("host:port")
    with pytest.raises(ValueError):
        parse_endpoint("host:70000")


def test_many_servers_at_once() -> None:
    peers = [FakeVpcd() for _ in range(3)]
    servers = [VpcdServer(EchoCard(atr=bytes([0x3B, 0x60 + i])), port=p.port).start()
               for i, p in enumerate(peers)]
    try:
        conns = [p.accept() for p in peers]
        results: list[bytes] = [b""] * 3

        def poll(i: int) -> None:
            peers[i].send_split(b"\x04")
            results[i] = read_frame(conns[i], quickack=False)

        threads = [threading.Thread(target=poll, args=(i,)) for i in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(3)
        assert results == [bytes([0x3B, 0x60 + i]) for i in range(3)]
    finally:
        for s in servers:
            s.stop()
        for p in peers:
            p.close()


@settings(max_examples=60, deadline=None)
@given(st.binary(min_size=0, max_size=600), st.lists(st.integers(1, 50), max_size=20))
def test_frames_survive_any_split(payload: bytes, cuts: list[int]) -> None:
    """A frame cut anywhere (vpcd's two writes, TCP segmentation) is read whole."""
    a, b = socket.socketpair()
    try:
        wire = len(payload).to_bytes(2, "big") + payload + b"\x00\x01\x04"
        pos = 0
        for cut in cuts:
            a.sendall(wire[pos : pos + cut])
            pos += cut
        a.sendall(wire[pos:])
        assert read_frame(b, quickack=False) == payload
        assert read_frame(b, quickack=False) == b"\x04"
    finally:
        a.close()
        b.close()

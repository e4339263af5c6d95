"""Serve a card to pcscd's vpcd driver, so every PC/SC program sees it (spec/pcsc-lab.md, vpcd).

vpcd (vsmartcard) is a pcscd reader driver that *listens* on TCP (``Virtual PCD 00 00`` on
35963, ``Virtual PCD 00 01`` on 35964); the card side connects. Connecting inserts the card,
closing removes it. Frames go both ways as a 2-byte big-endian length and the payload. A
1-byte frame from vpcd is a control byte: ``00`` power off, ``01`` power on, ``02`` reset,
``04`` get ATR (the only one answered, with the ATR; vpcd sends it on every presence poll, so
it must be answered at any time). Any longer frame is a command APDU, answered with the
response APDU.

Two traps this module handles:

- vpcd writes the length and the payload in two ``send`` calls, so a frame may arrive in
  pieces: every read here reads an exact number of bytes.
- vpcd does not set ``TCP_NODELAY``: with Linux delayed ACKs each APDU would cost about
  44 ms. ``TCP_QUICKACK`` is not sticky, so it is re-armed before every ``recv``.

vpcd does no T=0 work: a card whose ATR announces T=0 must itself answer ``61xx``/``6Cxx``
(spec/card.md §2); the server passes the card's answers unchanged.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from apdu.iface import CardLike

if TYPE_CHECKING:
    from reader.base import ExchangeObserver

log = logging.getLogger(__name__)

VPCD_HOST = "127.0.0.1"
VPCD_PORT = 35963
"""vpcd's first slot; slot ``n`` listens on ``VPCD_PORT + n`` (Debian's reader.conf.d/vpcd)."""

CTRL_POWER_OFF = 0x00
CTRL_POWER_ON = 0x01
CTRL_RESET = 0x02
CTRL_GET_ATR = 0x04

_TCP_QUICKACK = getattr(socket, "TCP_QUICKACK", 12)


class PeerClosed(Exception):
    """The vpcd side closed the connection (pcscd stopped, or the card was removed)."""


def parse_endpoint(text: str | None, slot: int = 0) -> tuple[str, int]:
    """``HOST:PORT`` | ``HOST`` | ``:PORT`` | None → (host, port); the slot offsets the port.

    >>> parse_endpoint(None)
    ('127.0.0.1', 35963)
    >>> parse_endpoint("10.0.0.5", slot=1)
    ('10.0.0.5', 35964)
    >>> parse_endpoint("localhost:40000")
    ('localhost', 40000)
    """
    host, port = VPCD_HOST, VPCD_PORT
    if text:
        if ":" in text:
            h, _, p = text.rpartition(":")
            host = h.strip("[]") or VPCD_HOST
            try:
                port = int(p)
            except ValueError:
                raise ValueError(f"bad vpcd port in {text!r}: expected HOST:PORT") from None
        else:
            host = text
    if slot < 0:
        raise ValueError(f"bad slot {slot}: slots count from 0")
    port += slot
    if not 0 < port < 65536:
        raise ValueError(f"vpcd port {port} out of range")
    return host, port


def recv_exact(sock: socket.socket, n: int, quickack: bool = True) -> bytes:
    """Read exactly ``n`` bytes, re-arming ``TCP_QUICKACK`` before every ``recv``."""
    buf = bytearray()
    while len(buf) < n:
        if quickack:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, _TCP_QUICKACK, 1)
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise PeerClosed("vpcd closed the connection")
        buf += chunk
    return bytes(buf)


def read_frame(sock: socket.socket, quickack: bool = True) -> bytes:
    """One vpcd frame: 2-byte big-endian length, then that many bytes."""
    size = int.from_bytes(recv_exact(sock, 2, quickack), "big")
    return recv_exact(sock, size, quickack) if size else b""


def write_frame(sock: socket.socket, payload: bytes) -> None:
    """Send one frame in a single write (length and payload together)."""
    if len(payload) > 0xFFFF:
        raise ValueError("vpcd frame longer than 65535 bytes")
    sock.sendall(len(payload).to_bytes(2, "big") + payload)


class VpcdServer:
    """Serve one :class:`apdu.iface.CardLike` to a vpcd slot, in a background thread.

    ``insert()``/``remove()`` connect/close (vpcd sees the card arrive/leave); after the peer
    goes away while the card is meant to be inserted (pcscd restarted), the server reconnects
    with a growing backoff. ``stop()`` removes the card cleanly and ends the thread.
    Several servers on different ports serve several cards at once.
    """

    def __init__(
        self,
        card: CardLike,
        host: str = VPCD_HOST,
        port: int = VPCD_PORT,
        *,
        inserted: bool = True,
        quickack: bool = True,
        observers: Iterable[ExchangeObserver] = (),
        backoff: tuple[float, float] = (0.05, 1.0),
        connect_timeout: float = 2.0,
    ) -> None:
        self.card = card
        self.host = host
        self.port = port
        self.quickack = quickack
        self.observers: list[ExchangeObserver] = list(observers)
        self.name = f"vpcd:{host}:{port}"
        self._backoff = backoff
        self._connect_timeout = connect_timeout
        self._card_lock = threading.Lock()
        self._want = threading.Event()
        if inserted:
            self._want.set()
        self._stop = threading.Event()
        self._connected = threading.Event()
        self._disconnected = threading.Event()
        self._disconnected.set()
        self._sock: socket.socket | None = None
        self._sock_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.connections = 0
        """How many times the card was connected (inserted) so far."""
        self.apdus = 0
        """How many command APDUs were answered."""
        self.last_error: str = ""

    # -- control -------------------------------------------------------------------------
    def start(self) -> VpcdServer:
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Remove the card (close the connection) and end the serving thread."""
        self._stop.set()
        self._want.clear()
        self._close_socket()
        if self._thread is not None:
            self._thread.join(timeout)

    def insert(self) -> None:
        """Insert the card: connect to vpcd (retrying until it listens)."""
        self._want.set()

    def remove(self) -> None:
        """Remove the card: close the connection; stays removed until :meth:`insert`."""
        self._want.clear()
        self._close_socket()

    @property
    def inserted(self) -> bool:
        """Whether the card is meant to be in the reader."""
        return self._want.is_set()

    @property
    def connected(self) -> bool:
        """Whether vpcd currently holds the card."""
        return self._connected.is_set()

    def wait_connected(self, timeout: float | None = None) -> bool:
        return self._connected.wait(timeout)

    def wait_disconnected(self, timeout: float | None = None) -> bool:
        return self._disconnected.wait(timeout)

    def __enter__(self) -> VpcdServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the serving thread --------------------------------------------------------------
    def _close_socket(self) -> None:
        with self._sock_lock:
            sock = self._sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def _run(self) -> None:
        delay = self._backoff[0]
        while not self._stop.is_set():
            if not self._want.wait(0.1):
                continue
            try:
                sock = socket.create_connection((self.host, self.port), self._connect_timeout)
            except OSError as exc:
                self.last_error = f"cannot reach vpcd at {self.host}:{self.port}: {exc}"
                log.debug("%s", self.last_error)
                self._stop.wait(delay)
                delay = min(delay * 2, self._backoff[1])
                continue
            delay = self._backoff[0]
            sock.settimeout(None)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._sock_lock:
                self._sock = sock
            self.connections += 1
            self._disconnected.clear()
            self._connected.set()
            self._notify_event("inserted")
            log.info("%s: card inserted", self.name)
            try:
                if not self._want.is_set() or self._stop.is_set():
                    raise PeerClosed("removed before serving")
                self._serve(sock)
            except (OSError, PeerClosed) as exc:
                self.last_error = str(exc)
            finally:
                with self._sock_lock:
                    self._sock = None
                with contextlib.suppress(OSError):
                    sock.close()
                with self._card_lock, contextlib.suppress(ConnectionError):
                    self.card.power_off()  # leaving the reader cuts the power
                self._connected.clear()
                self._disconnected.set()
                self._notify_event("removed")
                log.info("%s: card removed (%s)", self.name, self.last_error)
            if self._want.is_set() and not self._stop.is_set():
                # vpcd went away (pcscd stopped): try again shortly
                self._stop.wait(delay)

    def _serve(self, sock: socket.socket) -> None:
        while True:
            frame = read_frame(sock, self.quickack)
            if len(frame) == 1:
                reply = self._control(frame[0])
                if reply is not None:
                    write_frame(sock, reply)
            elif len(frame) == 0:
                continue
            else:
                write_frame(sock, self._exchange(frame))

    def _control(self, code: int) -> bytes | None:
        with self._card_lock, self._physical():
            if code == CTRL_GET_ATR:
                return self.card.atr()
            if code == CTRL_POWER_ON:
                atr = self.card.power_on()
                self._notify_event("power on", atr)
            elif code == CTRL_RESET:
                atr = self.card.reset()
                self._notify_event("reset", atr)
            elif code == CTRL_POWER_OFF:
                self.card.power_off()
                self._notify_event("power off")
            else:
                log.warning("%s: unknown vpcd control byte %02X", self.name, code)
        return None

    def _exchange(self, command: bytes) -> bytes:
        for obs in self.observers:
            obs.on_command(self.name, command)
        start = time.perf_counter()
        with self._card_lock:
            try:
                response = self.card.transmit(command)
            except ConnectionError as exc:
                self._pulled(exc)
                raise PeerClosed(f"card left the reader: {exc}") from exc
            except Exception:  # a card must never raise; answer "no precise diagnosis"
                log.exception("%s: card raised on %s", self.name, command[:4].hex())
                response = b"\x6f\x00"
        self.apdus += 1
        elapsed = time.perf_counter() - start
        for obs in self.observers:
            obs.on_response(self.name, command, response, elapsed)
        return response

    @contextlib.contextmanager
    def _physical(self) -> Iterator[None]:
        """A card object raising ``ConnectionError`` (pulled out, power cut) leaves the reader."""
        try:
            yield
        except ConnectionError as exc:
            self._pulled(exc)
            raise PeerClosed(f"card left the reader: {exc}") from exc

    def _pulled(self, exc: BaseException) -> None:
        """The card itself left (fault injection): stay removed until :meth:`insert`."""
        log.info("%s: the card left the reader: %s", self.name, exc)
        self._want.clear()

    def _notify_event(self, what: str, data: bytes = b"") -> None:
        for obs in self.observers:
            obs.on_event(self.name, what, data)

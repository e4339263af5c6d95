"""A card served as a serial device: the card end of an ISO 7816-3 I/O line behind a UART.

:func:`serve` makes any :class:`apdu.iface.CardLike` look like a card in a Phoenix-style serial
reader, reachable two ways:

``rfc2217://HOST:PORT``
    A TCP server speaking RFC 2217 (pyserial's ``serial.rfc2217.PortManager``), the way a
    serial device server puts a reader on the network. Baud rate, parity and the modem lines
    travel with the data, so the card sees the reader's reset line: while the reset line is
    at its active level the card is held in reset; releasing it makes the card answer with
    its ATR (ISO 7816-3 §6.2.2, §8). ``PORT`` 0 picks a free port (reported via ``on_ready``).
``pty``
    A pseudo-terminal pair; the slave path is reported via ``on_ready`` (or printed). A pty has
    no modem lines and ignores parity, so a reset is signalled in band of the tty driver: the
    reader flushes its output queue (``tcflush(TCOFLUSH)``, pyserial's
    ``reset_output_buffer()``), which the device sees as ``TIOCPKT_FLUSHWRITE`` in packet
    mode. :class:`reader.serial.SerialTransport` does this with ``reset=flush``.

The card speaks the character level (ISO 7816-3 §10.3): it answers a PPS request (§9) when
``pps`` is on, then takes 5-byte headers, answers procedure bytes (ACK = INS, or ``INS ⊕ FF``
per byte with ``byte_by_byte``), sends ``60`` NULL bytes every ``null_after`` seconds (default:
half the work waiting time of its ATR; 0: none) while the card computes, and ends with SW1 SW2.
The card decides the data direction from INS (:func:`outgoing_ins`), as a real T=0 card does.
Characters are paced as on the wire: each takes 12 etu (§7.2) at the current rate, in both
directions (one shared I/O line), and the reader's own bytes are echoed back (``echo``), as the
single-wire line of a Phoenix reader does. When the reader's UART settings do not match the
card's (rate after PPS, parity for the convention) the card receives and sends garbled
characters, as on a real line.

Faults (each fires once per :func:`serve` call; counts start at serving time):

* ``drop_byte_at=N``: the N-th (0-based) byte the card sends after an ATR is never sent;
* ``corrupt_byte_at=N``: that byte is sent with bit 8 flipped (no parity error can be
  signalled over RFC 2217 or a pty, so only a corrupted procedure byte or SW is visible);
* ``stall_after=N``: after N received characters the card stops answering until a reset;
* ``remove_after=N``: after N received characters the link closes (card pulled);
* ``no_atr``: no card in the reader — a reset is never answered.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import pty
import queue
import select
import socket
import struct
import sys
import termios
import threading
import time
import tty
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from serial import rfc2217

from apdu import atr as atr_codec
from apdu.iface import CardLike
from reader.iso7816_3 import (
    NULL_BYTE,
    PPSS,
    CharProtocolError,
    char_seconds,
    di_of,
    fi_of,
    inverse,
    other_parity,
    pps_check,
    pps_length,
    rate_for,
    work_waiting_seconds,
)

#: Commands whose data flows from the card under T=0 (ISO 7816-4 §5; spec/card.md §5, §6):
#: READ BINARY, READ RECORD(S), GET RESPONSE, GET DATA, GET CHALLENGE, and the purse's GET
#: BALANCE (CLA B0 or 80). Everything else carries data to the card (or none: case 1).
OUTGOING_INS = frozenset({0xB0, 0xB1, 0xB2, 0xB3, 0xC0, 0xCA, 0xCB, 0x84})
OUTGOING_PURSE_INS = frozenset({0x26})

log = logging.getLogger(__name__)

_TIOCPKT_FLUSHWRITE = 0x02
_SW_INS_INVALID = b"\x6d\x00"
_SW_NO_DIAGNOSIS = b"\x6f\x00"


def outgoing_ins(cla: int, ins: int) -> bool:
    """True when the card sends data for this command (the T=0 direction, §10.3.2).

    >>> outgoing_ins(0x00, 0xB2), outgoing_ins(0x00, 0xA4), outgoing_ins(0xB0, 0x26)
    (True, False, True)
    """
    if ins in OUTGOING_INS:
        return True
    return cla in (0x80, 0xB0) and ins in OUTGOING_PURSE_INS


@dataclass
class Faults:
    """One-shot faults and the counters they fire on (shared by every link of one serve)."""

    drop_byte_at: int | None = None
    corrupt_byte_at: int | None = None
    stall_after: int | None = None
    remove_after: int | None = None
    no_atr: bool = False
    sent: int = 0
    received: int = 0

    def __post_init__(self) -> None:
        self._lock = threading.Lock()

    def on_send(self, byte: int) -> int | None:
        """The byte to put on the line (``None`` = dropped)."""
        with self._lock:
            index = self.sent
            self.sent += 1
        if index == self.drop_byte_at:
            return None
        if index == self.corrupt_byte_at:
            return byte ^ 0x80
        return byte

    def on_receive(self) -> str | None:
        """``"stall"`` or ``"remove"`` when that fault fires on this received character."""
        with self._lock:
            self.received += 1
            count = self.received
        if count == self.remove_after:
            return "remove"
        if count == self.stall_after:
            return "stall"
        return None


class _Reset(Exception):
    def __init__(self, released: bool) -> None:
        super().__init__("reset")
        self.released = released


class _Closed(Exception):
    pass


class _Stalled(Exception):
    pass


@dataclass
class LineOptions:
    baud: int = 9600
    parity: str = "E"
    pps: bool = True
    null_after: float | None = None
    echo: bool = True
    byte_by_byte: bool = False
    reset_line: str = "rts"
    reset_active_high: bool = True
    outgoing: Callable[[int, int], bool] = outgoing_ins


class CardLine:
    """The card's end of the I/O line: one per reader link, driven by its own thread.

    The link calls :meth:`receive` for every character from the reader, :meth:`set_reset`
    when the reset line changes, :meth:`settings` when the reader's UART changes, and
    :meth:`close` when it goes away. The card's characters leave through ``emit``.
    """

    def __init__(self, card: CardLike, emit: Callable[[bytes], None], options: LineOptions,
                 faults: Faults, on_remove: Callable[[], None]) -> None:
        self.card = card
        self._emit = emit
        self.opts = options
        self.faults = faults
        self._on_remove = on_remove
        self._events: queue.SimpleQueue[tuple[str, int, float]] = queue.SimpleQueue()
        self._rate = options.baud
        self._wt = work_waiting_seconds(options.baud, 372, 10)   # until an ATR says more
        self._inverse = False
        self._in_atr = False
        self._line_free = 0.0
        self._powered = False
        self._reset_pending = False
        self.client_baud: int | None = None
        self.client_parity: str | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="card")
        self._thread = threading.Thread(target=self._run, name="card-line", daemon=True)
        self._thread.start()

    # -- called by the link ------------------------------------------------------------
    def receive(self, byte: int) -> None:
        self._events.put(("byte", byte, time.monotonic()))

    def set_reset(self, asserted: bool) -> None:
        self._reset_pending = True  # a card stops talking as soon as RST goes low
        self._events.put(("assert" if asserted else "release", 0, time.monotonic()))

    def pulse_reset(self) -> None:
        self.set_reset(True)
        self.set_reset(False)

    def settings(self, baud: int | None = None, parity: str | None = None) -> None:
        if baud is not None:
            self.client_baud = baud
        if parity is not None:
            self.client_parity = parity

    def close(self) -> None:
        self._events.put(("close", 0, 0.0))
        self._thread.join(5)
        self._executor.shutdown(wait=False, cancel_futures=True)

    # -- the card's thread -------------------------------------------------------------
    def _run(self) -> None:
        released = False
        try:
            while True:
                if not released:
                    self._wait_release()
                try:
                    self._session()
                except _Reset as reset:
                    released = reset.released
        except _Closed:
            pass
        finally:
            if self._powered:
                with contextlib.suppress(Exception):
                    self.card.power_off()

    def _wait_release(self) -> None:
        while True:
            kind, _, _ = self._events.get()
            if kind == "close":
                raise _Closed
            if kind == "release":
                self._reset_pending = False
                return

    def _event(self, timeout: float | None = None) -> tuple[str, int, float] | None:
        try:
            kind, value, at = self._events.get(timeout=timeout)
        except queue.Empty:
            return None
        if kind == "close":
            raise _Closed
        if kind == "assert":
            raise _Reset(released=False)
        if kind == "release":
            self._reset_pending = False
            raise _Reset(released=True)
        return kind, value, at

    def _next(self) -> int:
        """The next character from the reader, once it has fully arrived on the line."""
        event = self._event()
        assert event is not None
        _, raw, arrived = event
        done = max(arrived, self._line_free) + char_seconds(self._rate)
        self._sleep_until(done)
        self._line_free = done
        if self.opts.echo:
            self._emit(bytes([raw]))
        fault = self.faults.on_receive()
        if fault == "remove":
            self._on_remove()
            raise _Closed
        if fault == "stall":
            raise _Stalled
        byte = inverse(bytes([raw]))[0] if self._inverse else raw
        if self._mismatch(check_parity=True):
            byte ^= 0x5A
        return byte

    def _mismatch(self, check_parity: bool) -> bool:
        if self.client_baud is not None and self.client_baud != self._rate:
            return True
        if check_parity and self.client_parity is not None:
            expected = other_parity(self.opts.parity) if self._inverse else self.opts.parity
            return self.client_parity != expected
        return False

    @staticmethod
    def _sleep_until(moment: float) -> None:
        delay = moment - time.monotonic()
        if delay > 0:
            time.sleep(delay)

    def _send(self, data: bytes) -> None:
        """Put characters on the line, 12 etu each, in chunks of about 2 ms."""
        char = char_seconds(self._rate)
        per_write = max(1, int(0.002 / char))
        out = bytearray()
        garble = self._mismatch(check_parity=not self._in_atr)
        for logical in data:
            byte: int | None = logical
            if not self._in_atr:
                byte = self.faults.on_send(logical)
            if byte is None:
                continue
            raw = inverse(bytes([byte]))[0] if self._inverse else byte
            if garble:
                raw ^= 0x5A
            out.append(raw)
            self._line_free = max(time.monotonic(), self._line_free) + char
            if len(out) >= per_write:
                self._sleep_until(self._line_free)
                if self._reset_pending:
                    raise _Reset(released=False)  # the queued events say what comes next
                self._emit(bytes(out))
                out.clear()
        if out:
            self._sleep_until(self._line_free)
            if self._reset_pending:
                raise _Reset(released=False)
            self._emit(bytes(out))

    def _session(self) -> None:
        """From the release of reset: ATR, optional PPS, then T=0 commands (§8, §9, §10)."""
        self._rate = self.opts.baud
        self._inverse = False
        if self.faults.no_atr:
            self._ignore_until_reset()
        try:
            atr = self.card.reset() if self._powered else self.card.power_on()
        except ConnectionError:
            self._ignore_until_reset()  # the card is out of the reader: nothing answers
        self._powered = True
        self._inverse = atr[:1] == b"\x3f"
        with contextlib.suppress(Exception):      # a malformed ATR keeps the last WT
            parsed = atr_codec.parse(atr)
            self._wt = work_waiting_seconds(self.opts.baud, parsed.fi, parsed.wi)
        self._in_atr = True
        try:
            self._send(atr)
        finally:
            self._in_atr = False
        try:
            first = True
            while True:
                byte = self._next()
                if first and byte == PPSS:
                    first = False
                    self._pps(atr)
                    continue
                first = False
                header = bytes([byte] + [self._next() for _ in range(4)])
                self._command(header)
        except _Stalled:
            self._ignore_until_reset()

    def _ignore_until_reset(self) -> None:
        while True:
            self._event()

    def _pps(self, atr: bytes) -> None:
        """§9: answer a PPS request by echoing it, then switch to the agreed F/D."""
        message = bytearray([PPSS])
        while True:
            total = pps_length(bytes(message))
            if total is not None and len(message) >= total:
                break
            message.append(self._next())
        try:
            pps_check(bytes(message))
            ta1 = message[2] if message[1] & 0x10 else None
            fi, di = fi_of(ta1), di_of(ta1)
        except CharProtocolError:
            return  # a card answers no malformed PPS; the reader times out and resets
        if not self.opts.pps or (message[1] & 0x0F) != 0:
            return
        self._send(bytes(message))
        self._rate = rate_for(self.opts.baud, fi, di)

    def _call(self, tpdu: bytes) -> bytes:
        """Run the card; send NULL bytes every ``null_after`` seconds while it works (by
        default every half work waiting time, §10.2, as a real card asks for more time: a
        durable image write that the disk delays must not look like a dead card).

        A card that loses contact (``ConnectionError``, e.g. a pull injected into a virtual
        card) closes the link; any other failure answers 6F00.
        """
        try:
            interval = self.opts.null_after if self.opts.null_after is not None \
                else self._wt / 2
            future = self._executor.submit(self.card.transmit, tpdu)
            while True:
                try:
                    answer = future.result(timeout=interval or None)   # 0: a silent card
                    break
                except TimeoutError:
                    try:
                        self._send(bytes([NULL_BYTE]))
                    except _Reset:
                        # a virtual card cannot be interrupted: let it finish first
                        with contextlib.suppress(Exception):
                            future.result()
                        raise
        except ConnectionError:
            self._on_remove()
            raise _Closed from None
        except Exception:
            log.exception("card failed on %s", tpdu[:4].hex())
            return _SW_NO_DIAGNOSIS
        return bytes(answer) if len(answer) >= 2 else _SW_NO_DIAGNOSIS

    def _command(self, header: bytes) -> None:
        """One T=0 command at the character level (ISO 7816-3 §10.3.3)."""
        cla, ins, _p1, _p2, p3 = header
        if ins & 0xF0 in (0x60, 0x90):
            self._send(_SW_INS_INVALID)
            return
        single = self.opts.byte_by_byte
        if self.opts.outgoing(cla, ins):
            answer = self._call(header)
            data, sw = answer[:-2], answer[-2:]
            if not data:
                self._send(sw)
            elif len(data) == (p3 or 256):
                if single:
                    for byte in data:
                        self._send(bytes([ins ^ 0xFF, byte]))
                    self._send(sw)
                else:
                    self._send(bytes([ins]) + data + sw)
            else:
                self._send(_SW_NO_DIAGNOSIS)
            return
        incoming = bytearray()
        if p3:
            if single:
                for _ in range(p3):
                    self._send(bytes([ins ^ 0xFF]))
                    incoming.append(self._next())
            else:
                self._send(bytes([ins]))
                incoming.extend(self._next() for _ in range(p3))
        answer = self._call(header + bytes(incoming))
        self._send(answer[-2:] if len(answer) == 2 else _SW_NO_DIAGNOSIS)


# -- links ---------------------------------------------------------------------------------


class _DeviceSerial:
    """The serial port as :class:`serial.rfc2217.PortManager` sees it: the card's UART.

    Line settings and the reset line go to the :class:`CardLine`; CD reports a card.
    """

    def __init__(self, link: _Rfc2217Link) -> None:
        self._link = link
        self._baudrate = 9600
        self._parity = "N"
        self.bytesize = 8
        self.stopbits = 1
        self.xonxoff = False
        self.rtscts = False
        self.break_condition = False
        self._rts = False
        self._dtr = False
        self.cts = True
        self.dsr = True
        self.ri = False
        self.cd = not link.faults.no_atr

    @property
    def baudrate(self) -> int:
        return self._baudrate

    @baudrate.setter
    def baudrate(self, value: int) -> None:
        self._baudrate = value
        self._link.line.settings(baud=value)

    @property
    def parity(self) -> str:
        return self._parity

    @parity.setter
    def parity(self, value: str) -> None:
        self._parity = value
        self._link.line.settings(parity=value)

    def _level(self, name: str, value: bool) -> None:
        opts = self._link.options
        if opts.reset_line == name:
            self._link.line.set_reset(value == opts.reset_active_high)

    @property
    def rts(self) -> bool:
        return self._rts

    @rts.setter
    def rts(self, value: bool) -> None:
        self._rts = bool(value)
        self._level("rts", self._rts)

    @property
    def dtr(self) -> bool:
        return self._dtr

    @dtr.setter
    def dtr(self, value: bool) -> None:
        self._dtr = bool(value)
        self._level("dtr", self._dtr)

    def reset_input_buffer(self) -> None:
        """Nothing is buffered on the card side."""

    def reset_output_buffer(self) -> None:
        """Nothing is buffered on the card side."""


class _Rfc2217Link:
    """One reader connected over RFC 2217."""

    def __init__(self, sock: socket.socket, card: CardLike, options: LineOptions,
                 faults: Faults) -> None:
        self.sock = sock
        self.options = options
        self.faults = faults
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self.line = CardLine(card, self._emit, options, faults, self.shutdown)
        self.port = _DeviceSerial(self)
        self.manager = rfc2217.PortManager(self.port, self)

    def write(self, data: bytes) -> None:
        """Raw (already escaped) bytes to the network; used by the PortManager too."""
        if self._closed.is_set():
            return
        with self._lock:
            try:
                self.sock.sendall(data)
            except OSError:
                self._closed.set()

    def _emit(self, data: bytes) -> None:
        self.write(b"".join(self.manager.escape(data)))

    def shutdown(self) -> None:
        self._closed.set()
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)

    def run(self, stop: threading.Event) -> None:
        self.sock.settimeout(0.1)
        try:
            while not stop.is_set() and not self._closed.is_set():
                try:
                    data = self.sock.recv(1024)
                except TimeoutError:
                    continue
                except OSError:
                    break
                if not data:
                    break
                for byte in self.manager.filter(data):
                    self.line.receive(byte[0])
        finally:
            self.shutdown()
            self.line.close()
            self.sock.close()


def _serve_rfc2217(card: CardLike, host: str, port: int, stop: threading.Event,
                   options: LineOptions, faults: Faults,
                   on_ready: Callable[[str], None]) -> None:
    listener = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((host, port))
    except OSError as exc:
        raise OSError(f"cannot listen on {host}:{port}: {exc.strerror}") from exc
    listener.listen(1)
    listener.settimeout(0.1)
    bound = listener.getsockname()[1]
    on_ready(f"rfc2217://{host}:{bound}")
    try:
        while not stop.is_set():
            try:
                sock, _ = listener.accept()
            except TimeoutError:
                continue
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            _Rfc2217Link(sock, card, options, faults).run(stop)
    finally:
        listener.close()


def _serve_pty(card: CardLike, stop: threading.Event, options: LineOptions, faults: Faults,
               on_ready: Callable[[str], None]) -> None:
    master, slave = pty.openpty()
    tty.setraw(slave)
    fcntl.ioctl(master, termios.TIOCPKT, struct.pack("i", 1))
    closed = threading.Event()

    def emit(data: bytes) -> None:
        if not closed.is_set():
            with contextlib.suppress(OSError):
                os.write(master, data)

    line = CardLine(card, emit, options, faults, closed.set)
    on_ready(os.ttyname(slave))
    try:
        while not stop.is_set() and not closed.is_set():
            ready, _, _ = select.select([master], [], [], 0.1)
            if not ready:
                continue
            try:
                packet = os.read(master, 1024)
            except OSError:
                time.sleep(0.05)
                continue
            if not packet:
                continue
            if packet[0] == 0:
                for byte in packet[1:]:
                    line.receive(byte)
            elif packet[0] & _TIOCPKT_FLUSHWRITE:
                line.pulse_reset()
    finally:
        closed.set()
        line.close()
        os.close(master)
        os.close(slave)


def _print_ready(url: str) -> None:
    print(url, file=sys.stdout, flush=True)


def serve(card: CardLike, url: str, stop: threading.Event, *, baud: int = 9600,
          parity: str = "E", pps: bool = True, null_after: float | None = None,
          drop_byte_at: int | None = None, corrupt_byte_at: int | None = None,
          stall_after: int | None = None, no_atr: bool = False,
          remove_after: int | None = None, echo: bool = True, byte_by_byte: bool = False,
          reset_line: str = "rts", reset_active_high: bool = True,
          outgoing: Callable[[int, int], bool] | None = None,
          on_ready: Callable[[str], None] | None = None) -> None:
    """Serve ``card`` as a card in a serial reader at ``url`` until ``stop`` is set.

    ``url`` is ``rfc2217://HOST:PORT`` or ``pty`` (see the module docstring). ``baud`` is the
    rate at the default F/D (372/1); ``parity`` the UART parity for a direct-convention card
    (the reader needs the other one for an inverse-convention card). ``reset_line`` (``rts``
    or ``dtr``) and ``reset_active_high`` must match the reader's; ``echo`` mirrors the
    reader's characters as a single-wire I/O line does. ``on_ready`` receives the URL or pty
    path once the device listens (default: printed on stdout). One reader at a time.
    """
    if reset_line not in ("rts", "dtr"):
        raise ValueError(f"reset_line must be 'rts' or 'dtr', not {reset_line!r}")
    if parity not in ("E", "O", "N"):
        raise ValueError(f"parity must be E, O or N, not {parity!r}")
    offered = atr_codec.parse(card.atr()).protocols
    if 0 not in offered:
        raise ValueError(
            f"the card's ATR offers T={'/'.join(map(str, offered))}; a serial reader speaks "
            "T=0: serve a T=0 card (a virtual card made with t0=True)"
        )
    options = LineOptions(
        baud=baud, parity=parity, pps=pps, null_after=null_after, echo=echo,
        byte_by_byte=byte_by_byte, reset_line=reset_line, reset_active_high=reset_active_high,
        outgoing=outgoing or outgoing_ins,
    )
    faults = Faults(drop_byte_at=drop_byte_at, corrupt_byte_at=corrupt_byte_at,
                    stall_after=stall_after, remove_after=remove_after, no_atr=no_atr)
    ready = on_ready or _print_ready
    if url in ("pty", "pty:", "pty://"):
        _serve_pty(card, stop, options, faults, ready)
        return
    parts = urlsplit(url)
    if parts.scheme != "rfc2217" or not parts.hostname or parts.port is None:
        raise ValueError(f"serial device URL must be rfc2217://HOST:PORT or pty, not {url!r}")
    _serve_rfc2217(card, parts.hostname, parts.port, stop, options, faults, ready)


def serve_in_thread(card: CardLike, url: str, **options: Any) -> tuple[str, threading.Event,
                                                                       threading.Thread]:
    """Start :func:`serve` in a daemon thread; return (ready URL or pty path, stop, thread)."""
    stop = threading.Event()
    ready: queue.SimpleQueue[str | BaseException] = queue.SimpleQueue()

    def target() -> None:
        try:
            serve(card, url, stop, on_ready=ready.put, **options)
        except BaseException as exc:  # reported to the caller below
            ready.put(exc)

    thread = threading.Thread(target=target, name="serial-device", daemon=True)
    thread.start()
    result = ready.get(timeout=10)
    if isinstance(result, BaseException):
        raise result
    return result, stop, thread

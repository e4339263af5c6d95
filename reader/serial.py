"""Serial readers: a card whose I/O line is a UART (Phoenix / Smartmouse style), ISO 7816-3.

``SerialTransport(url)`` drives one reader reachable through any URL pyserial opens
(``/dev/ttyUSB0``, ``rfc2217://host:port``, a pty path, ``loop://``). Its reader is named
``serial:URL``. The connection does the character level itself:

* reset: the reset line (RTS or DTR, polarity configurable) is asserted, then released; the
  ATR is read with the standard's timing (§8.2: TS within 40000 clocks, at most 9600 etu
  between characters, 19200 etu in all), its convention detected from TS (an inverse card's
  TS reads ``03`` on a direct UART; the parity is then switched, see
  :func:`reader.iso7816_3.other_parity`), then checked (TCK) and parsed by
  :func:`apdu.atr.parse` for F/D, WI and the protocols;
* optional PPS (§9) to the card's TA1 rate; a refused or unanswered PPS is followed by a
  reset without PPS (§9.1);
* T=0 (§10.3): 5-byte header, procedure bytes, data phases, each character awaited at most
  WT = WI·960·Fi/f (960·D·WI etu, §10.2) plus the link latency; 61xx/6Cxx are handled once
  for every transport by :meth:`reader.base.Connection.transmit` (``apdu.t0``);
* the echo of every written character (a single-wire I/O line returns what the reader sends)
  is read back and compared; ``echo="auto"`` detects it on the first character sent.

A Phoenix reader cannot tell whether a card is inserted, so :meth:`SerialTransport.readers`
and :meth:`SerialTransport.wait_for_event` probe by resetting the card (not while a
connection is open), and a cold reset is the same pulse as a warm one.

A timeout, a garbled character or a broken echo raises (:class:`ReaderTimeout`,
:class:`TransportError`) after the connection resynchronises by resetting the card (volatile
card state such as a verified PIN is then lost). A link that disappears raises
:class:`CardRemoved`. No wait is unbounded.

Reader names: ``serial:rfc2217://127.0.0.1:7000``, ``serial:/dev/ttyUSB0?reset=dtr``,
``serial:/dev/pts/3?reset=flush``. URL options (``serial:URL?opt=value&…``; anything else
stays on the pyserial URL, e.g. ``rfc2217://h:p?timeout=3&logging=debug``); keyword
arguments of :class:`SerialTransport` take the same names (``reset`` → ``reset_line``,
``reset_active`` → ``reset_active_high``), options in the URL win:

``reset``           ``rts`` (default), ``dtr``, or ``flush`` (a pty: reset = flushing the
                    output queue, see :mod:`reader.serial_device`; parity and stop bits are
                    then not set, a pty cannot carry them)
``reset_active``    ``high`` (default) or ``low``: the reset line level that holds RST low
``baud``            rate at F=372, D=1 (default 9600)
``parity``          ``E`` (default), ``O`` or ``N`` for a direct-convention card
``stopbits``        1 or 2 (default 2: the guard time, §7.2)
``pps``             ``1`` to negotiate TA1's F/D (default ``0``)
``echo``            ``1``, ``0`` or ``auto`` (default)
``latency``         seconds added to every standard timeout for the link (default 0.3)
``atr_timeout``     seconds to wait for TS after reset (default: 108 etu + latency)
``exchange_timeout`` seconds one TPDU may take in all, NULL bytes included (default 30): a
                    card that keeps asking for more time is given up on
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit

import serial
from serial import SerialException

from apdu import atr as atr_codec
from apdu.errors import ApduError
from reader.base import CardEvent, Connection, ReaderInfo, Transport
from reader.errors import (
    CardRemoved,
    NoCard,
    NoReader,
    NotPowered,
    ReaderBusy,
    ReaderError,
    ReaderTimeout,
    TransportError,
)
from reader.iso7816_3 import (
    ATR_CHAR_WAIT_ETU,
    ATR_FIRST_CHAR_ETU,
    ATR_TOTAL_ETU,
    AtrAssembler,
    CharProtocolError,
    Convention,
    T0Transfer,
    char_seconds,
    di_of,
    fi_of,
    inverse,
    other_parity,
    pps_accepted,
    pps_length,
    pps_request,
    rate_for,
    work_waiting_seconds,
)

PREFIX = "serial:"
EchoMode = bool | Literal["auto"]
_OPTION_NAMES = ("reset", "reset_active", "baud", "parity", "stopbits", "pps", "echo",
                 "latency", "atr_timeout", "exchange_timeout")
_POLL = 0.02


def _flag(value: str) -> bool:
    if value.lower() in ("1", "true", "yes", "on"):
        return True
    if value.lower() in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"expected 0 or 1, got {value!r}")


def split_options(url: str) -> tuple[str, dict[str, Any]]:
    """Separate the reader options of a ``serial:`` URL from pyserial's own URL.

    >>> split_options("rfc2217://127.0.0.1:5000?baud=19200&timeout=3&echo=auto")
    ('rfc2217://127.0.0.1:5000?timeout=3', {'baud': 19200, 'echo': 'auto'})
    """
    if url.startswith(PREFIX):
        url = url[len(PREFIX):]
    parts = urlsplit(url)
    kept: list[tuple[str, str]] = []
    options: dict[str, Any] = {}
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key not in _OPTION_NAMES:
            kept.append((key, value))
            continue
        try:
            if key == "reset":
                options["reset_line"] = value.lower()
            elif key == "reset_active":
                if value.lower() not in ("high", "low"):
                    raise ValueError("expected high or low")
                options["reset_active_high"] = value.lower() == "high"
            elif key in ("baud", "stopbits"):
                options[key] = int(value)
            elif key == "parity":
                options[key] = value.upper()
            elif key == "pps":
                options[key] = _flag(value)
            elif key == "echo":
                options[key] = "auto" if value.lower() == "auto" else _flag(value)
            else:
                options[key] = float(value)
        except ValueError as exc:
            raise ValueError(f"serial reader option {key}={value!r}: {exc}") from None
    if not options:
        return url, options
    base = url.split("?", 1)[0]
    return (base + "?" + urlencode(kept) if kept else base), options


@dataclass
class LineStats:
    """Characters moved on the I/O line (echoes excluded) and their wire time at 12 etu."""

    to_card: int = 0
    from_card: int = 0
    wire_seconds: float = 0.0

    def count(self, n: int, baud: int, to_card: bool) -> None:
        if to_card:
            self.to_card += n
        else:
            self.from_card += n
        self.wire_seconds += n * char_seconds(baud)


class _Line:
    """A UART carrying the card's I/O line: convention coding, echo, bounded reads."""

    def __init__(self, port: serial.SerialBase, name: str, echo: EchoMode,
                 latency: float, stats: LineStats) -> None:
        self.port = port
        self.name = name
        self.echo_mode = echo
        self.echo: bool | None = None if echo == "auto" else bool(echo)
        self.latency = latency
        self.convention = Convention.DIRECT
        self.baud = int(port.baudrate)
        self.stats = stats

    def _raw_read(self, n: int) -> bytes:
        try:
            data = self.port.read(n)
        except SerialException as exc:
            raise CardRemoved(f"{self.name}: link lost ({exc}); the card is gone") from exc
        except OSError as exc:
            raise CardRemoved(f"{self.name}: link lost ({exc}); the card is gone") from exc
        return bytes(data)

    def read_raw(self, n: int, first_timeout: float, char_timeout: float,
                 deadline: float | None = None) -> bytes:
        """Read ``n`` raw bytes; each must start within its timeout (first, then each next)."""
        got = bytearray()
        last = time.monotonic()
        limit = first_timeout
        while len(got) < n:
            chunk = self._raw_read(n - len(got))
            now = time.monotonic()
            if chunk:
                got += chunk
                last = now
                limit = char_timeout
                continue
            if now - last > limit:
                raise ReaderTimeout(
                    f"{self.name}: no character from the card within {limit:.2f} s "
                    f"(got {len(got)} of {n})"
                )
            if deadline is not None and now > deadline:
                raise ReaderTimeout(f"{self.name}: the card did not finish in time")
        return bytes(got)

    def decode(self, raw: bytes) -> bytes:
        return inverse(raw) if self.convention is Convention.INVERSE else raw

    def read(self, n: int, char_timeout: float, deadline: float | None = None) -> bytes:
        data = self.decode(self.read_raw(n, char_timeout, char_timeout, deadline))
        self.stats.count(len(data), self.baud, to_card=False)
        return data

    def write(self, data: bytes) -> None:
        """Send characters and cancel their echo (a wrong echo is a line fault)."""
        raw = inverse(data) if self.convention is Convention.INVERSE else data
        if not raw:
            return
        if self.echo is None:
            self._write(raw[:1])
            self.echo = self._probe_echo(raw[0])
            rest = raw[1:]
        else:
            rest = raw
        if rest:
            self._write(rest)
            if self.echo:
                back = self.read_raw(len(rest), self._echo_timeout(len(rest)),
                                     self._echo_timeout(1))
                if back != rest:
                    raise TransportError(
                        f"{self.name}: echo {back.hex()} differs from the sent {rest.hex()} "
                        "(line fault or a card talking out of turn)"
                    )
        self.stats.count(len(data), self.baud, to_card=True)

    def _write(self, raw: bytes) -> None:
        try:
            self.port.write(raw)
            self.port.flush()
        except (SerialException, OSError) as exc:
            raise CardRemoved(f"{self.name}: link lost ({exc}); the card is gone") from exc

    def _echo_timeout(self, n: int) -> float:
        return n * char_seconds(self.baud) + self.latency

    def _probe_echo(self, sent: int) -> bool:
        """A card never answers one byte of a header: a byte back is the line's echo.

        The window is generous (twice the link latency): an echo that came late would later
        be taken for a procedure byte; a line without echo pays the window once per reset.
        """
        deadline = time.monotonic() + self._echo_timeout(4) + self.latency
        while time.monotonic() < deadline:
            back = self._raw_read(1)
            if back:
                if back[0] != sent:
                    raise TransportError(
                        f"{self.name}: unexpected {back.hex()} while sending {sent:02X}"
                    )
                return True
        return False

    def purge(self) -> None:
        with contextlib.suppress(SerialException, OSError):
            self.port.reset_input_buffer()


class SerialConnection(Connection):
    """A card in a serial reader, spoken to at the ISO 7816-3 character level."""

    def __init__(self, transport: SerialTransport, port: serial.SerialBase) -> None:
        super().__init__(transport.name)
        self._transport = transport
        self.stats = LineStats()
        self._line = _Line(port, transport.name, transport.echo, transport.latency, self.stats)
        self._port = port
        self._atr: bytes | None = None
        self._wt = 1.0
        self.rate = transport.baud
        self.closed = False
        self.removed = False

    # -- reset and ATR (ISO 7816-3 §6.2, §8) -------------------------------------------
    def atr(self) -> bytes:
        if self._atr is None:
            raise NotPowered(f"{self.reader}: the card has no ATR yet; reset it")
        return self._atr

    def _set_reset(self, asserted: bool) -> None:
        t = self._transport
        if t.reset_line == "flush":
            if not asserted:
                self._port.reset_output_buffer()
            return
        level = asserted == t.reset_active_high
        if t.reset_line == "rts":
            self._port.rts = level
        else:
            self._port.dtr = level

    def _set_rate(self, baud: int, parity: str) -> None:
        if self._port.baudrate != baud:
            self._port.baudrate = baud
        if self._transport.line_settings and self._port.parity != parity:
            self._port.parity = parity
        self._line.baud = baud
        self.rate = baud

    def _reset(self, cold: bool) -> bytes:
        """Pulse the reset line and read the ATR; negotiate PPS when asked (§6.2.2, §8, §9).

        A Phoenix reader cannot switch the card's power, so a cold reset is a warm one.
        """
        return self._power_up(self._transport.pps)

    def _power_up(self, pps: bool) -> bytes:
        if self.closed:
            raise NotPowered(f"{self.reader}: the connection is closed")
        t = self._transport
        self._atr = None
        try:
            self._line.echo = None if t.echo == "auto" else bool(t.echo)
            self._line.convention = Convention.DIRECT
            self._set_rate(t.baud, t.parity)
            self._set_reset(True)
            time.sleep(t.reset_pulse)
            self._line.purge()
            self._set_reset(False)
            atr = self._read_atr()
            parsed = atr_codec.parse(atr)
            self._wt = work_waiting_seconds(t.baud, parsed.fi, parsed.wi) + t.latency
            ta1 = parsed.ta(1)
            if (pps and ta1 is not None and ta1 != 0x11 and parsed.specific_mode is None
                    and not self._pps(ta1, parsed.protocols[0])):
                # §9.1: a failed PPS exchange is followed by a reset without PPS
                return self._power_up(pps=False)
        except (SerialException, OSError) as exc:
            self.removed = True
            raise CardRemoved(f"{self.reader}: link lost during reset ({exc})") from exc
        except (CharProtocolError, ApduError) as exc:
            raise TransportError(f"{self.reader}: bad answer to reset: {exc}") from exc
        self._atr = atr
        return atr

    def _read_atr(self) -> bytes:
        t = self._transport
        etu = 1 / t.baud
        first = t.atr_timeout if t.atr_timeout is not None else ATR_FIRST_CHAR_ETU * etu
        first += t.latency
        per_char = ATR_CHAR_WAIT_ETU * etu + t.latency
        deadline = time.monotonic() + first + ATR_TOTAL_ETU * etu + t.latency
        assembler = AtrAssembler()
        try:
            ts = self._line.read_raw(1, first, per_char, deadline)
        except ReaderTimeout:
            raise NoCard(
                f"{self.reader}: no answer to reset within {first:.2f} s; "
                "insert a card (or check the reset line and polarity)"
            ) from None
        assembler.feed(ts)
        if assembler.convention is Convention.INVERSE:
            self._line.convention = Convention.INVERSE
            self._set_rate(t.baud, other_parity(t.parity))
        while not assembler.complete:
            raw = self._line.read_raw(assembler.missing, per_char, per_char, deadline)
            assembler.feed(raw)
        atr = assembler.atr
        self.stats.count(len(atr), t.baud, to_card=False)
        return atr

    def _pps(self, ta1: int, protocol: int) -> bool:
        """§9: propose TA1; on an echoed answer switch the UART to the new rate."""
        t = self._transport
        request = pps_request(protocol, ta1)
        wait = ATR_CHAR_WAIT_ETU / t.baud + t.latency
        try:
            self._line.write(request)
            head = self._line.read(2, wait)
            total = pps_length(head) or 2
            answer = head + self._line.read(total - 2, wait)
            if not pps_accepted(request, answer):
                return False
        except (ReaderTimeout, TransportError, CharProtocolError):
            return False
        self._set_rate(rate_for(t.baud, fi_of(ta1), di_of(ta1)), self._port.parity)
        return True

    # -- T=0 (ISO 7816-3 §10.3) ----------------------------------------------------------
    def _transmit_raw(self, tpdu: bytes) -> bytes:
        if self.closed:
            raise NotPowered(f"{self.reader}: the connection is closed")
        if self.removed:
            raise CardRemoved(f"{self.reader}: the card was removed")
        if self._atr is None:
            self._reset(cold=False)
        try:
            return self._exchange(tpdu)
        except CardRemoved:
            self.removed = True
            self._atr = None
            raise
        except (ReaderTimeout, TransportError) as exc:
            raise type(exc)(f"{exc}; {self._resync()}") from exc

    def _exchange(self, tpdu: bytes) -> bytes:
        try:
            transfer = T0Transfer(tpdu)
        except CharProtocolError as exc:
            raise TransportError(f"{self.reader}: {exc}") from exc
        deadline = time.monotonic() + self._transport.exchange_timeout
        self._line.write(transfer.header)
        while not transfer.done:
            chunk = self._line.read(transfer.expected(), self._wt, deadline)
            for byte in chunk:
                try:
                    out = transfer.feed(byte)
                except CharProtocolError as exc:
                    raise TransportError(f"{self.reader}: {exc}") from exc
                if out:
                    self._line.write(out)
        assert transfer.response is not None
        return transfer.response

    def _resync(self) -> str:
        """Reset the card after a broken exchange so the next one starts clean.

        A link lost meanwhile raises :class:`CardRemoved` from here.
        """
        try:
            atr = self._reset(cold=False)
        except CardRemoved:
            self.removed = True
            raise
        except ReaderError as exc:
            self._atr = None
            return f"resynchronising failed too ({exc})"
        for obs in self.observers:
            obs.on_event(self.reader, "warm reset", atr)
        return "the card was reset to resynchronise (a verified PIN must be re-entered)"

    def _disconnect(self) -> None:
        if self.closed:
            return
        self.closed = True
        with contextlib.suppress(SerialException, OSError, ReaderError):
            if not self.removed:
                self._set_reset(True)
        with contextlib.suppress(SerialException, OSError):
            self._port.close()
        self._transport._released(self)


class SerialTransport(Transport):
    """One serial reader at ``url`` (see the module docstring for the options)."""

    def __init__(self, url: str, *, reset_line: str = "rts", reset_active_high: bool = True,
                 baud: int = 9600, parity: str = "E", stopbits: int = 2, pps: bool = False,
                 echo: EchoMode = "auto", latency: float = 0.3,
                 atr_timeout: float | None = None, exchange_timeout: float = 30.0,
                 reset_pulse: float = 0.01,
                 poll_interval: float = 1.0) -> None:
        try:
            bare, options = split_options(url)
        except ValueError as exc:
            raise NoReader(f"{url}: {exc}; see the serial reader options") from None
        given: dict[str, Any] = {
            "reset_line": reset_line, "reset_active_high": reset_active_high, "baud": baud,
            "parity": parity, "stopbits": stopbits, "pps": pps, "echo": echo,
            "latency": latency, "atr_timeout": atr_timeout, "exchange_timeout": exchange_timeout,
        }
        given.update(options)
        if given["reset_line"] not in ("rts", "dtr", "flush"):
            raise NoReader(f"{url}: reset must be rts, dtr or flush, not {given['reset_line']!r}")
        if given["parity"] not in ("E", "O", "N"):
            raise NoReader(f"{url}: parity must be E, O or N, not {given['parity']!r}")
        if given["stopbits"] not in (1, 2):
            raise NoReader(f"{url}: stopbits must be 1 or 2, not {given['stopbits']!r}")
        self.url = bare
        self.name = PREFIX + bare
        self.reset_line: str = given["reset_line"]
        self.reset_active_high: bool = given["reset_active_high"]
        self.baud: int = given["baud"]
        self.parity: str = given["parity"]
        self.stopbits: int = given["stopbits"]
        self.pps: bool = given["pps"]
        self.echo: EchoMode = given["echo"]
        self.latency: float = given["latency"]
        self.atr_timeout: float | None = given["atr_timeout"]
        self.exchange_timeout: float = given["exchange_timeout"]
        #: A pty (``reset=flush``) carries bytes only: parity and stop bits are left alone.
        self.line_settings = self.reset_line != "flush"
        self.reset_pulse = reset_pulse
        self.poll_interval = poll_interval
        self._connection: SerialConnection | None = None
        self._seen: tuple[bool, bool, bytes | None] | None = None

    @classmethod
    def from_name(cls, name: str, **options: Any) -> SerialTransport:
        """The transport for a reader name ``serial:URL[?options]`` (module docstring)."""
        if not name.startswith(PREFIX):
            raise NoReader(f"{name!r} is not a serial reader name (serial:URL)")
        return cls(name, **options)

    # -- ports -------------------------------------------------------------------------
    def _open_port(self, exclusive: bool = True) -> serial.SerialBase:
        """Open the UART (``exclusive``: an advisory lock on local ports, as PC/SC's)."""
        try:
            port = serial.serial_for_url(self.url, do_not_open=True)
            port.exclusive = exclusive
            port.baudrate = self.baud
            port.bytesize = serial.EIGHTBITS
            if self.line_settings:
                port.parity = self.parity
                port.stopbits = self.stopbits
            port.timeout = _POLL
            if self.reset_line == "rts":
                port.rts = self.reset_active_high
            elif self.reset_line == "dtr":
                port.dtr = self.reset_active_high
            port.open()
        except (SerialException, OSError, ValueError) as exc:
            raise NoReader(f"{self.name}: cannot open the serial port ({exc})") from exc
        return port

    def check_port(self) -> None:
        """Open and close the port: :class:`NoReader` with the reason when it cannot be opened
        (:meth:`readers` then lists nothing; a caller that named this reader says why)."""
        conn = self._connection
        if conn is not None and not conn.closed:
            return
        port = self._open_port(exclusive=False)
        with contextlib.suppress(SerialException, OSError):
            port.close()

    def _released(self, connection: SerialConnection) -> None:
        if self._connection is connection:
            self._connection = None

    def _matches(self, reader: str) -> bool:
        return reader in (self.name, self.url) or split_options(reader)[0] == self.url

    # -- Transport ---------------------------------------------------------------------
    def connect(self, reader: str, exclusive: bool = True) -> SerialConnection:
        """Open the port, reset the card and read its ATR (NoCard when none answers)."""
        if not self._matches(reader):
            raise NoReader(f"no reader {reader!r}; this transport has {self.name!r}")
        if self._connection is not None and not self._connection.closed:
            raise ReaderBusy(f"{self.name}: already connected; disconnect first")
        port = self._open_port(exclusive)
        connection = SerialConnection(self, port)
        try:
            connection.reset()
        except ReaderError:
            connection.closed = True
            with contextlib.suppress(SerialException, OSError):
                port.close()
            raise
        self._connection = connection
        return connection

    def _probe(self) -> ReaderInfo | None:
        """Reset the card once to learn whether one answers (the port is closed after)."""
        try:
            port = self._open_port()
        except NoReader:
            return None
        probe = SerialConnection(self, port)
        try:
            atr = probe.reset()
            return ReaderInfo(self.name, True, atr, "present")
        except ReaderError as exc:
            return ReaderInfo(self.name, False, None, f"empty ({type(exc).__name__})")
        finally:
            probe.closed = True
            with contextlib.suppress(SerialException, OSError, ReaderError):
                probe._set_reset(True)
            with contextlib.suppress(SerialException, OSError):
                port.close()

    def readers(self) -> list[ReaderInfo]:
        """The one reader; its card state is probed by a reset unless a connection is open."""
        conn = self._connection
        if conn is not None and not conn.closed:
            present = not conn.removed
            return [ReaderInfo(self.name, present, conn._atr if present else None,
                               "connected" if present else "removed")]
        info = self._probe()
        return [info] if info is not None else []

    def _snapshot(self) -> tuple[bool, bool, bytes | None]:
        """(port opens, card answers, ATR) — from the open connection when there is one."""
        conn = self._connection
        if conn is not None and not conn.closed:
            return True, not conn.removed, None if conn.removed else conn._atr
        info = self._probe()
        if info is None:
            return False, False, None
        return True, info.card_present, info.atr

    def _changes(self, exists: bool, present: bool, atr: bytes | None) -> list[CardEvent]:
        old_exists, old_present, old_atr = self._seen or (False, False, None)
        self._seen = (exists, present, atr)
        events: list[CardEvent] = []
        if old_present and (not present or (atr is not None and atr != old_atr)):
            events.append(CardEvent(self.name, "removed"))
        if old_exists and not exists:
            events.append(CardEvent(self.name, "reader_removed"))
        if exists and not old_exists:
            events.append(CardEvent(self.name, "reader_added"))
        if present and (not old_present or (atr is not None and atr != old_atr)):
            events.append(CardEvent(self.name, "inserted", atr))
        return events

    def wait_for_event(self, timeout: float | None = None) -> list[CardEvent]:
        """Changes since the previous call; the first call reports the reader and its card.

        A Phoenix reader has no card-detect line: every ``poll_interval`` seconds the port is
        opened and the card reset to see whether an ATR comes (never while a connection is
        open; then a removal seen by that connection is reported). A different ATR between
        two polls is reported as ``removed`` + ``inserted``.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            events = self._changes(*self._snapshot())
            if events:
                return events
            if deadline is not None and time.monotonic() >= deadline:
                return []
            pause = self.poll_interval
            if deadline is not None:
                pause = max(0.0, min(pause, deadline - time.monotonic()))
            time.sleep(pause)

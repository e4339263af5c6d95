"""APDU traces: record every exchange of a connection, replay a trace as a test or as a card.

Trace file format ("sscard-trace 1"), UTF-8 text, one record per line::

    # sscard-trace 1
    # reader: Virtual PCD 00 00
    # started: 2026-11-28T13:32:09.123456+00:00
    0.000000 ** power-on=3B6D000000814A44468660519900000001AC
    0.000412 >> 00A40400 0F7378312E73682EC9E7BBE1B1A3D5CF ; SELECT
    0.000655 << 611E ; 611E more data available, 30 bytes ; 0.24 ms
    0.000700 >> 00C00000 1E ; GET RESPONSE
    0.000901 << 6F1C840F...9000 ; 9000 success ; 0.20 ms
    0.001200 >> 00200000 03XXXXXX ; VERIFY
    0.001390 << 63C2 ; 63C2 wrong PIN, 2 tries left ; 0.19 ms
    0.002000 psam >> 80FA0000 08 1122334455667788 ; CIPHER DATA

- ``#`` lines are comments; ``# key: value`` comments before the first record are headers.
  A trace file must carry the ``# sscard-trace 1`` line before its first record (the
  recorder, :class:`TraceWriter`, always writes it first; :func:`load_trace` refuses a file
  without it). A ``# sscard-trace N`` line of another version is refused, and so is a file
  whose last record has no line end (cut short).
- A record is ``SECONDS [CHANNEL] KIND PAYLOAD [; comment…]``. ``SECONDS`` counts from the
  start of the trace. ``CHANNEL`` (optional, a word) names a second card in the same trace,
  e.g. ``psam``; records without one belong to the main card.
- ``>>`` is a command TPDU, ``<<`` the card's raw answer to the command before it, both in
  hex (spaces ignored). ``**`` is an event ``name[=HEX]``: ``power-on``, ``warm-reset``,
  ``cold-reset``, ``power-off``, ``disconnect``, ``inserted``, ``removed``.
- ``XX`` in a command stands for a masked secret byte: VERIFY, CHANGE PIN and PIN RELOAD data
  are never written (DESIGN.md; ``apdu.commands.is_secret_bearing``), their lengths are. When
  replayed, ``XX`` matches any byte; a PIN whose length differs from the recorded VERIFY's
  is refused before anything is sent (:func:`pin_filler`, :func:`fill_secrets`).
- ``..`` in a response matches any byte when a trace is checked against a card; a replayed
  card answers ``00`` there.
- ``<~`` instead of ``<<`` marks a response whose data varies from run to run (a GET
  CHALLENGE answer): checking a card compares only its length and status word, while a
  replayed card still answers the recorded bytes.
- Everything after ``;`` is for people (command name, status word meaning, timing) and is
  ignored when a trace is read.

Traces are recorded at the TPDU level (below the T=0 rules), so ``61xx``/GET RESPONSE pairs
appear as they went over the wire.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Literal, Protocol

from apdu.commands import command_name, is_secret_bearing
from apdu.iface import CardLike
from apdu.sw import describe
from reader.base import Connection, ExchangeObserver
from reader.errors import ReaderError

MAGIC = "sscard-trace 1"
_MAGIC_RE = re.compile(r"^sscard-trace(?:\s+\S+)?$")
_CLIP = 24
RecordKind = Literal["command", "response", "event"]
_KINDS: dict[str, RecordKind] = {">>": "command", "<<": "response", "<~": "response",
                                 "**": "event"}
_EVENT_RE = re.compile(r"^([a-z][a-z0-9-]*)(?:=([0-9A-Fa-f\s]*))?$")
_HEXPAIR_RE = re.compile(r"^(?:[0-9A-Fa-f]{2}|XX|xx|\.\.)*$")


class TraceFormatError(ReaderError):
    """A trace file does not follow the documented format (with the line number)."""


@dataclass(frozen=True)
class TraceRecord:
    """One line of a trace. ``wild`` marks bytes that match anything (``XX`` / ``..``)."""

    seconds: float
    kind: RecordKind
    data: bytes = b""
    wild: tuple[bool, ...] = ()
    event: str = ""
    channel: str = ""
    line: int = 0
    varies: bool = False

    def matches(self, actual: bytes) -> bool:
        """Whether ``actual`` equals this record's bytes, wildcards matching anything
        (a ``<~`` response: same length and status word)."""
        if len(actual) != len(self.data):
            return False
        if self.varies:
            return actual[-2:] == self.data[-2:]
        wild = self.wild or (False,) * len(self.data)
        return all(w or a == b for a, b, w in zip(actual, self.data, wild, strict=True))

    @property
    def hex(self) -> str:
        wild = self.wild or (False,) * len(self.data)
        mark = "XX" if self.kind == "command" else ".."
        return "".join(mark if w else f"{b:02X}" for b, w in zip(self.data, wild, strict=True))


@dataclass
class Trace:
    """A parsed trace: headers and records in order."""

    headers: dict[str, str] = field(default_factory=dict)
    records: list[TraceRecord] = field(default_factory=list)

    def channel(self, name: str = "") -> list[TraceRecord]:
        return [r for r in self.records if r.channel == name]

    @property
    def channels(self) -> list[str]:
        """The channels that hold records, in order of appearance (``""``: the main card)."""
        return list(dict.fromkeys(r.channel for r in self.records))

    def exchanges(self, channel: str = "") -> list[tuple[TraceRecord, TraceRecord]]:
        """(command, response) pairs of one channel, in order."""
        out = []
        pending: TraceRecord | None = None
        for rec in self.channel(channel):
            if rec.kind == "command":
                pending = rec
            elif rec.kind == "response" and pending is not None:
                out.append((pending, rec))
                pending = None
        return out

    @property
    def atr(self) -> bytes | None:
        """The ATR: the ``atr`` header or the first event that carries one."""
        if "atr" in self.headers:
            return bytes.fromhex(self.headers["atr"])
        for rec in self.channel(""):
            if rec.kind == "event" and rec.data:
                return rec.data
        return None


def _clip(text: str, keep: int = _CLIP) -> str:
    """``text`` quoted, cut to ``keep`` characters (a bad line may be megabytes long or hold a
    PIN typed in clear): the start and the length, never the whole."""
    text = text.strip()
    if len(text) <= keep:
        return repr(text)
    return f"{text[:keep]!r}… ({len(text)} characters)"


def _parse_hex(text: str, lineno: int) -> tuple[bytes, tuple[bool, ...]]:
    compact = "".join(text.split())
    if not _HEXPAIR_RE.match(compact):
        # its length only: a command's data, even its header, may be a PIN (a short one)
        raise TraceFormatError(f"line {lineno}: not hex bytes ({len(compact)} characters)")
    data = bytearray()
    wild = []
    for i in range(0, len(compact), 2):
        pair = compact[i : i + 2]
        if pair in ("XX", "xx", ".."):
            data.append(0)
            wild.append(True)
        else:
            data.append(int(pair, 16))
            wild.append(False)
    return bytes(data), tuple(wild) if any(wild) else ()


def parse_trace(text: str) -> Trace:
    """Read a trace in the format above; raises :class:`TraceFormatError` with a line number."""
    trace = Trace()
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#"):
            body = line[1:].strip()
            magic = _MAGIC_RE.match(body)
            if magic and " ".join(body.split()) != MAGIC:
                raise TraceFormatError(
                    f"line {lineno}: unsupported trace format {body!r}; this sscard reads "
                    f"{MAGIC!r} only")
            if not trace.records and ":" in body:
                key, _, value = body.partition(":")
                if key.strip() and " " not in key.strip():
                    trace.headers[key.strip().lower()] = value.strip()
            continue
        fields = line.split(";", 1)[0].split(None, 2)
        if len(fields) < 2:
            raise TraceFormatError(  # the line may be a stray PIN: its length only
                f"line {lineno}: expected 'SECONDS KIND PAYLOAD' ({len(line)} characters)")
        try:
            seconds = float(fields[0])
        except ValueError:
            raise TraceFormatError(
                f"line {lineno}: bad time ({len(fields[0])} characters, not a number)") from None
        channel = ""
        rest = fields[1:]
        if rest[0] not in _KINDS:
            channel = rest[0]
            rest = rest[1].split(None, 1) if len(rest) > 1 else []
            if not rest or rest[0] not in _KINDS:
                raise TraceFormatError(
                    f"line {lineno}: expected >>, <<, <~ or ** after the time")
        kind = _KINDS[rest[0]]
        varies = rest[0] == "<~"
        payload = rest[1] if len(rest) > 1 else ""
        if kind == "event":
            m = _EVENT_RE.match(payload.strip())
            if not m:
                raise TraceFormatError(f"line {lineno}: bad event {_clip(payload)}")
            data, _ = _parse_hex(m.group(2) or "", lineno)
            trace.records.append(TraceRecord(seconds, kind, data, (), m.group(1), channel,
                                             lineno))
            continue
        data, wild = _parse_hex(payload, lineno)
        if kind == "command" and len(data) < 4:
            raise TraceFormatError(f"line {lineno}: a command needs at least 4 bytes")
        if kind == "response" and len(data) < 2:
            raise TraceFormatError(f"line {lineno}: a response needs at least SW1 SW2")
        trace.records.append(TraceRecord(seconds, kind, data, wild, "", channel, lineno,
                                         varies))
    return trace


def _check_magic(lines: list[str], path: str | Path) -> None:
    """:class:`TraceFormatError` unless a ``# sscard-trace …`` line comes before the first
    record (its version is checked by :func:`parse_trace`)."""
    for lineno, raw in enumerate(lines, 1):
        line = raw.strip()
        if line.startswith("#") and _MAGIC_RE.match(line[1:].strip()):
            return
        if line and not line.startswith("#"):
            raise TraceFormatError(
                f"{path} line {lineno}: a record before the '# {MAGIC}' header: not an "
                "sscard trace (sscard writes that header first)")
    what = "is empty" if not any(line.strip() for line in lines) else "has no records"
    raise TraceFormatError(f"{path} {what} and no '# {MAGIC}' header: not an sscard trace")


def load_trace(path: str | Path) -> Trace:
    """Read a trace file; errors name the file and the line. A last record without its line
    end means the file was cut short (a recorder always ends its lines) and is refused; so
    is a file without the ``# sscard-trace 1`` header (the recorder always writes it)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise TraceFormatError(f"cannot read trace {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError:
        raise TraceFormatError(f"trace {path} is not UTF-8 text") from None
    lines = text.splitlines()
    if text and not text.endswith(("\n", "\r")) and not lines[-1].lstrip().startswith("#"):
        raise TraceFormatError(f"{path} line {len(lines)}: the last line has no line end: "
                               "the trace was cut short")
    _check_magic(lines, path)
    try:
        return parse_trace(text)
    except TraceFormatError as exc:
        raise TraceFormatError(f"{path} {exc}") from None


# -- recording -------------------------------------------------------------------------------
def is_secret(tpdu: bytes) -> bool:
    """Commands whose data must never be written (``apdu.commands.is_secret_bearing``:
    VERIFY, CHANGE PIN, PIN RELOAD, the PSAM's CIPHER DATA encrypt of a PIN block …)."""
    return is_secret_bearing(tpdu)


def mask_command(tpdu: bytes) -> bytes:
    """The command with secret data (see :func:`is_secret`) replaced by zeros."""
    if not is_secret(tpdu) or len(tpdu) <= 5:
        return bytes(tpdu)
    return tpdu[:5] + bytes(len(tpdu) - 5)


def masked_hex(tpdu: bytes) -> str:
    """Hex of a command TPDU with secret data written as ``XX`` (header and lengths kept).

    >>> masked_hex(bytes.fromhex("0020000003123456"))
    '00200000 03XXXXXX'
    >>> masked_hex(bytes.fromhex("00B2010400"))
    '00B20104 00'
    >>> masked_hex(bytes.fromhex("80FA0000040612345F"))
    '80FA0000 04XXXXXXXX'
    """
    head = tpdu[:4].hex().upper()
    rest = tpdu[4:]
    if is_secret(tpdu) and len(rest) > 1:
        lc = rest[0]
        if lc and len(rest) >= 1 + lc:
            tail = rest[1 + lc :].hex().upper()
            return f"{head} {rest[0]:02X}{'XX' * lc}{tail}"
        return f"{head} {'XX' * len(rest)}"
    return f"{head} {rest.hex().upper()}".rstrip()


def _event_name(what: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", what.lower()).strip("-") or "event"


class TraceWriter(ExchangeObserver):
    """An observer writing the trace format to a text stream (or a file it opens).

    ``channels`` maps reader names to channel words (e.g. the PSAM's reader → ``psam``);
    other readers are the main card. Secret command data is masked before it is written.
    """

    def __init__(self, out: IO[str] | str | Path, *, reader: str = "",
                 channels: Mapping[str, str] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if isinstance(out, str | Path):
            self._stream: IO[str] = Path(out).open("w", encoding="utf-8")  # noqa: SIM115
            self._owns = True
        else:
            self._stream = out
            self._owns = False
        self._channels = dict(channels or {})
        self._ins: dict[str, int] = {}   # the last command's INS per reader, for its answer
        self._clock = clock
        self._start = clock()
        self._lock = threading.Lock()
        self.records = 0
        self._write(f"# {MAGIC}")
        if reader:
            self._write(f"# reader: {reader}")
        self._write(f"# started: {datetime.now(UTC).isoformat(timespec='microseconds')}")

    def _write(self, line: str) -> None:
        with self._lock:
            if self._stream.closed:
                return
            self._stream.write(line + "\n")
            self._stream.flush()

    def _prefix(self, reader: str) -> str:
        t = self._clock() - self._start
        chan = self._channels.get(reader, "")
        return f"{t:.6f} {chan} " if chan else f"{t:.6f} "

    def on_command(self, reader: str, tpdu: bytes) -> None:
        self.records += 1
        if len(tpdu) >= 2:
            self._ins[reader] = tpdu[1]
        self._write(f"{self._prefix(reader)}>> {masked_hex(tpdu)} ; {command_name(tpdu)}")

    def on_response(self, reader: str, tpdu: bytes, response: bytes, seconds: float) -> None:
        self.records += 1
        note = ""
        if len(response) >= 2:
            sw = int.from_bytes(response[-2:], "big")
            note = f" ; {describe(sw, self._ins.get(reader))}"
        self._write(f"{self._prefix(reader)}<< {response.hex().upper()}{note} ; "
                    f"{seconds * 1000:.2f} ms")

    def on_event(self, reader: str, what: str, data: bytes = b"") -> None:
        self.records += 1
        value = f"={data.hex().upper()}" if data else ""
        self._write(f"{self._prefix(reader)}** {_event_name(what)}{value}")

    def close(self) -> None:
        if self._owns:
            self._stream.close()

    def __enter__(self) -> TraceWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class TracedCard:
    """A card object that reports its own exchanges to observers (``apdu.iface.CardLike``):
    traces the card side wherever the card is served (vpcd, a serial line, in-process)."""

    def __init__(self, card: CardLike, observers: Iterable[ExchangeObserver],
                 name: str = "card") -> None:
        self.card = card
        self.observers = list(observers)
        self.name = name

    def atr(self) -> bytes:
        return self.card.atr()

    def _event(self, what: str, data: bytes = b"") -> None:
        for obs in self.observers:
            obs.on_event(self.name, what, data)

    def power_on(self) -> bytes:
        atr = self.card.power_on()
        self._event("power on", atr)
        return atr

    def power_off(self) -> None:
        self.card.power_off()
        self._event("power off")

    def reset(self) -> bytes:
        atr = self.card.reset()
        self._event("warm reset", atr)
        return atr

    def transmit(self, command: bytes) -> bytes:
        for obs in self.observers:
            obs.on_command(self.name, command)
        start = time.perf_counter()
        response = self.card.transmit(command)
        for obs in self.observers:
            obs.on_response(self.name, command, response, time.perf_counter() - start)
        return response

    def insert(self) -> None:
        """Pass a re-insertion on to a card that was pulled (fault injection)."""
        again = getattr(self.card, "insert", None)
        if callable(again):
            again()


# -- replay as a card --------------------------------------------------------------------------
class TraceReplayCard:
    """A simulated card answering from a trace (``apdu.iface.CardLike``).

    Each command must match the next recorded command of ``channel`` (``XX`` bytes match
    anything). A command that does not match is answered ``6F00`` and noted in
    :attr:`mismatches` (a card never raises to its reader); so is any command after the end.
    Resets and power cycles skip to the matching event in the trace when there is one.
    """

    def __init__(self, trace: Trace, channel: str = "", atr: bytes | None = None) -> None:
        self.trace = trace
        self._records = trace.channel(channel)
        self._pos = 0
        found = atr or trace.atr
        if found is None:
            raise TraceFormatError("the trace records no ATR: add a '# atr: HEX' header")
        self._atr = found
        self.mismatches: list[str] = []
        self.answered = 0

    @classmethod
    def from_file(cls, path: str | Path, channel: str = "") -> TraceReplayCard:
        return cls(load_trace(path), channel)

    @property
    def done(self) -> bool:
        """True once every recorded exchange was replayed."""
        return not any(r.kind == "command" for r in self._records[self._pos :])

    def atr(self) -> bytes:
        return self._atr

    def _skip_event(self, names: Iterable[str]) -> None:
        wanted = set(names)
        for i in range(self._pos, len(self._records)):
            rec = self._records[i]
            if rec.kind != "event":
                return
            if rec.event in wanted:
                self._pos = i + 1
                return

    def power_on(self) -> bytes:
        self._skip_event({"power-on", "cold-reset", "inserted"})
        return self._atr

    def power_off(self) -> None:
        self._skip_event({"power-off", "disconnect", "removed"})

    def reset(self) -> bytes:
        self._skip_event({"warm-reset", "cold-reset", "reset", "power-on"})
        return self._atr

    def transmit(self, command: bytes) -> bytes:
        while self._pos < len(self._records) and self._records[self._pos].kind == "event":
            self._pos += 1
        if self._pos >= len(self._records):
            self.mismatches.append(f"unexpected command after the end: {masked_hex(command)}")
            return b"\x6f\x00"
        expected = self._records[self._pos]
        if expected.kind != "command":
            self.mismatches.append(f"line {expected.line}: trace has a response without command")
            return b"\x6f\x00"
        if not expected.matches(command):
            self.mismatches.append(
                f"line {expected.line}: expected {expected.hex}, got {masked_hex(command)}")
            return b"\x6f\x00"
        self._pos += 1
        if self._pos < len(self._records) and self._records[self._pos].kind == "response":
            answer = self._records[self._pos].data
            self._pos += 1
            self.answered += 1
            return answer
        self.mismatches.append(f"line {expected.line}: no recorded response")
        return b"\x6f\x00"


# -- replay as a test fixture ------------------------------------------------------------------
class _RawTarget(Protocol):
    def transmit_raw(self, tpdu: bytes) -> bytes: ...


SecretFiller = Callable[[TraceRecord], bytes]
"""Given a recorded command with masked (``XX``) bytes, return the full command to send."""


def pin_filler(pin: str) -> SecretFiller:
    """Fill masked VERIFY data with ``pin`` in BCD padded with F (spec/card.md §5).

    A PIN that is not 4 to 12 digits is refused here (:class:`reader.facade.PinFormatError`,
    as ``CardDriver.verify_pin`` does), and one whose length cannot match the recorded
    VERIFY's (the trace keeps the length) when it is filled in, before either could cost a
    try on the card."""
    from apdu.commands import verify
    from reader.facade import PinFormatError, check_pin

    check_pin(pin)

    def fill(rec: TraceRecord) -> bytes:
        if command_name(rec.data) != "VERIFY":
            raise ReplayError(f"line {rec.line}: cannot replay masked {command_name(rec.data)}"
                              " without its secret")
        command = verify(pin).to_bytes()
        if len(command) != len(rec.data) or command[4] != rec.data[4]:
            digits = _pin_digits(max(len(rec.data) - 5, 0))
            raise PinFormatError(f"line {rec.line}: the trace's VERIFY carries a PIN of "
                                 f"{digits}, not {len(pin)}: refused before it could cost a try")
        return command

    return fill


def _pin_digits(nbytes: int) -> str:
    """The digit counts a PIN block of ``nbytes`` BCD bytes (F-padded) holds."""
    counts = [n for n in (2 * nbytes - 1, 2 * nbytes) if 4 <= n <= 12]
    if not counts:
        return f"{nbytes} bytes (no PIN of 4 to 12 digits fits)"
    return " or ".join(map(str, counts)) + " digits"


def fill_secrets(trace: Trace, channel: str, secrets: SecretFiller) -> dict[int, bytes]:
    """Every masked command of ``channel`` filled in by ``secrets``, keyed by trace line:
    done before anything is sent, so a secret that cannot match the recording (a PIN of the
    wrong length) is refused before the card sees any command."""
    return {rec.line: secrets(rec) for rec in trace.channel(channel)
            if rec.kind == "command" and rec.wild}


class ReplayError(ReaderError):
    """A trace could not be replayed (masked secret with no filler, bad trace)."""


@dataclass
class ReplayReport:
    """Outcome of checking a card against a trace."""

    steps: int = 0
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures

    def __str__(self) -> str:
        if self.ok:
            return f"{self.steps} exchanges replayed, all responses as expected"
        return f"{len(self.failures)} of {self.steps} exchanges differ: " + "; ".join(
            self.failures[:5])


def check_replayable(trace: Trace, channel: str = "") -> int:
    """The number of exchanges of ``channel``, or :class:`ReplayError` when there is nothing
    to replay: no exchanges at all, an unknown channel, an answer without a command, or a
    last command without its answer (a trace cut short; ``replay_check`` would skip it)."""
    if not trace.exchanges(channel):
        if not any(trace.exchanges(c) for c in trace.channels):
            raise ReplayError("the trace holds no exchanges: nothing to replay")
        has = ", ".join(repr(c) if c else "the main card (no --channel)"
                        for c in trace.channels if trace.exchanges(c))
        raise ReplayError(f"the trace has no exchanges on channel {channel!r}; it has: {has}")
    pending: TraceRecord | None = None
    steps = 0
    for rec in trace.channel(channel):
        if rec.kind == "command":
            pending = rec
        elif rec.kind == "response":
            if pending is None:
                raise ReplayError(f"line {rec.line}: response without a command")
            pending = None
            steps += 1
    if pending is not None:
        raise ReplayError(f"line {pending.line}: the last command ({command_name(pending.data)})"
                          " has no recorded answer: the trace was cut short")
    return steps


def replay_check(trace: Trace, target: Connection | CardLike, *, channel: str = "",
                 secrets: SecretFiller | None = None, stop_on_failure: bool = False,
                 ) -> ReplayReport:
    """Send every recorded command of ``channel`` to ``target`` and compare the answers.

    ``target`` is a reader connection (TPDUs sent with :meth:`Connection.transmit_raw`, no
    T=0 processing: the trace already holds the GET RESPONSE commands) or a card object.
    Recorded resets are performed. Masked commands need ``secrets`` (e.g. :func:`pin_filler`),
    all filled in before the first command is sent (:func:`fill_secrets`). A trace with
    nothing to replay is refused first (:func:`check_replayable`).
    """
    check_replayable(trace, channel)
    filled = fill_secrets(trace, channel, secrets) if secrets is not None else {}
    report = ReplayReport()
    send: Callable[[bytes], bytes] = (
        target.transmit_raw if isinstance(target, Connection) else target.transmit)
    pending: TraceRecord | None = None
    for rec in trace.channel(channel):
        if rec.kind == "event":
            if rec.event in ("warm-reset", "cold-reset", "reset"):
                if isinstance(target, Connection):
                    target.reset(cold=rec.event == "cold-reset")
                elif rec.event == "cold-reset":
                    target.power_off()
                    target.power_on()
                else:
                    target.reset()
            elif rec.event == "power-on" and not isinstance(target, Connection):
                target.power_on()
            continue
        if rec.kind == "command":
            pending = rec
            continue
        if pending is None:
            raise ReplayError(f"line {rec.line}: response without a command")
        command = pending.data
        if pending.wild:
            if secrets is None:
                raise ReplayError(f"line {pending.line}: {command_name(pending.data)} is masked; "
                                  "pass the secret to replay it")
            command = filled[pending.line]
        answer = send(command)
        report.steps += 1
        if not rec.matches(answer):
            report.failures.append(
                f"line {rec.line}: {command_name(pending.data)} answered {answer.hex().upper()},"
                f" trace has {rec.hex}")
            if stop_on_failure:
                break
        pending = None
    return report

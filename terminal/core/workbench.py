"""The developer workbench: an APDU console, a card file browser and a live trace.

A small service over a reader connection (``reader.base``) and the ``apdu`` decoders, with no
UI toolkit: the Textual workbench screen and scripts drive it the same way.

- :meth:`Workbench.send` parses a command typed as hex, sends it, and returns an
  :class:`Exchange` with the command name, the status word's meaning (spec/card.md §7) and the
  response data decoded as a TLV tree (BER-TLV for FCIs, the card's ``tag len value`` records
  of spec/card.md §4 otherwise).
- :data:`CARD_TREE` is the file tree of spec/card.md §3; :meth:`Workbench.read_node` selects a
  node along its path and reads it (records by tag, transparent EFs by READ BINARY).
- Every exchange reaches :class:`TraceLine` listeners with VERIFY data masked, so the trace
  panel never holds a PIN (DESIGN.md conventions); traces are recorded and replayed in the
  format of :mod:`reader.trace`, which masks them too.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

from apdu import commands as cmds
from apdu import tlv
from apdu.command import CommandApdu
from apdu.errors import ApduError
from apdu.response import ResponseApdu
from apdu.sw import describe
from reader.base import CardEvent, Connection, ExchangeObserver, ReaderInfo, Transport
from reader.errors import ReaderError
from reader.trace import (
    ReplayError,
    ReplayReport,
    TraceWriter,
    load_trace,
    pin_filler,
    replay_check,
)

NodeKind = Literal["MF", "DDF", "ADF", "DF", "records", "binary", "cyclic"]


class WorkbenchError(Exception):
    """A workbench request that cannot be carried out; the message says what to do."""


# -- decoding -------------------------------------------------------------------------


@dataclass(frozen=True)
class TlvNode:
    """One node of a decoded TLV tree (``children`` for constructed BER-TLV objects)."""

    tag: int
    value: bytes
    children: tuple[TlvNode, ...] = ()

    @property
    def label(self) -> str:
        tag = f"{self.tag:02X}" if self.tag <= 0xFF else f"{self.tag:X}"
        if self.children:
            return f"{tag} ({len(self.value)} bytes)"
        return f"{tag} = {self.value.hex().upper()}{_printable(self.value)}"


def _printable(value: bytes) -> str:
    """A text rendering of ``value`` when it is GBK text (spec/card.md §4 ``an``)."""
    body = value.rstrip(b"\x00")
    if not body:
        return ""
    try:
        text = body.decode("gbk")
    except UnicodeDecodeError:
        return ""
    if len(text) >= 2 and all(ch.isprintable() for ch in text):
        return f'  "{text}"'
    return ""


def _ber_nodes(items: Sequence[tlv.Tlv]) -> tuple[TlvNode, ...]:
    out: list[TlvNode] = []
    for item in items:
        kids: tuple[TlvNode, ...] = ()
        if item.constructed:
            try:
                kids = _ber_nodes(item.children())
            except ApduError:
                kids = ()
        out.append(TlvNode(item.tag, item.value, kids))
    return tuple(out)


def decode_tlv(data: bytes) -> tuple[TlvNode, ...]:
    """Decode response data as a TLV tree: BER-TLV if the whole of it parses (FCI, PBOC
    records, ISO 7816-4 §5.2), else the card's simple records (spec/card.md §4), else ``()``.
    """
    if not data:
        return ()
    try:
        items = tlv.decode(data)
        if items and sum(len(i.to_bytes()) for i in items) == len(data):
            return _ber_nodes(items)
    except ApduError:
        pass
    try:
        return tuple(TlvNode(tag, value) for tag, value in tlv.decode_simple(data))
    except ApduError:
        return ()


@dataclass(frozen=True)
class Exchange:
    """One command and its answer, as the console shows it."""

    index: int
    reader: str
    command: bytes
    """The command as shown: VERIFY/PIN data already masked."""
    name: str
    response: bytes
    """Response data ‖ SW1 SW2."""
    seconds: float

    @property
    def sw(self) -> int:
        return int.from_bytes(self.response[-2:], "big")

    @property
    def data(self) -> bytes:
        return self.response[:-2]

    @property
    def sw_text(self) -> str:
        meaning = describe(self.sw, self.command[1] if len(self.command) >= 2 else None)
        return f"{self.sw:04X} {meaning.en} ({meaning.zh})"

    @property
    def ok(self) -> bool:
        return self.sw == 0x9000

    @property
    def tree(self) -> tuple[TlvNode, ...]:
        return decode_tlv(self.data)


def parse_command(text: str) -> CommandApdu:
    """Parse a command typed as hex (spaces, colons allowed): ``00 A4 04 00 …``."""
    cleaned = "".join(ch for ch in text if ch not in " :\t-")
    if not cleaned:
        raise WorkbenchError("empty command: type a command APDU in hex, e.g. 00A4000002 3F00")
    try:
        raw = bytes.fromhex(cleaned)
    except ValueError as exc:
        raise WorkbenchError(f"not hex: {text.strip()!r}; type bytes like 00 B2 01 2C 00") from exc
    try:
        return CommandApdu.from_bytes(raw)
    except ApduError as exc:
        raise WorkbenchError(f"malformed command APDU: {exc}") from exc


def carries_secret(text: str) -> bool:
    """True when the typed command carries a secret (VERIFY, CHANGE PIN, PIN RELOAD data):
    such a line must not be kept for recall nor shown again."""
    try:
        return cmds.is_secret_bearing(parse_command(text))
    except WorkbenchError:
        return False


# -- the card's file tree (spec/card.md §3) -------------------------------------------


@dataclass(frozen=True)
class FileNode:
    """A file of the card's tree and how to select and read it."""

    name: str
    kind: NodeKind
    label: str
    select: CommandApdu | None = None
    """The SELECT that reaches this node from its parent (``None`` for nothing to select)."""
    tags: tuple[int, ...] = ()
    """Record identifiers (= tags) of a record EF, spec/card.md §4."""
    size: int = 0
    """Size of a transparent EF."""
    children: tuple[FileNode, ...] = ()
    note: str = ""


def _ef(fid: int) -> CommandApdu:
    return cmds.select_ef(fid)


def _aid(hexstr: str) -> CommandApdu:
    return cmds.select_name(bytes.fromhex(hexstr))


CARD_TREE = FileNode(
    "MF",
    "MF",
    "MF 3F00",
    select=cmds.select_mf(),
    children=(
        FileNode(
            "1PAY.SYS.DDF01",
            "DDF",
            "1PAY.SYS.DDF01 (bank directory)",
            select=cmds.select_name(cmds.PSE_NAME),
            children=(
                FileNode(
                    "A000000333010101",
                    "ADF",
                    "UnionPay debit A0000003330101 01",
                    select=cmds.select_name(cmds.PBOC_DEBIT_AID),
                    note="records appear after GET PROCESSING OPTIONS (spec/card.md §11)",
                ),
            ),
        ),
        FileNode(
            "SSSE",
            "DDF",
            "SSSE sx1.sh.社会保障",
            select=cmds.select_name(cmds.SSSE_DF_NAME),
            children=(
                FileNode("EF05", "records", "EF05 issuer data", _ef(0xEF05),
                         tags=(0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07)),
                FileNode("EF06", "records", "EF06 holder data", _ef(0xEF06),
                         tags=(0x08, 0x09, 0x4E, 0x0A, 0x0B, 0x0C, 0x0D),
                         note="3.00 cards: readable after EXTERNAL AUTHENTICATE with RKSSSE"),
                FileNode("EF07", "binary", "EF07 fingerprint", _ef(0xEF07), size=0x300,
                         note="read key RKSSSE"),
                FileNode("EF08", "binary", "EF08 photo", _ef(0xEF08), size=0x1000,
                         note="read key RKSSSE"),
                FileNode("DF01", "DF", "DF01 public info", _aid("D15600000500")),
                FileNode("DF02", "DF", "DF02 employment", _aid("D15600000501")),
                FileNode("DF03", "DF", "DF03 social insurance", _aid("D15600000502")),
                FileNode(
                    "DF04",
                    "DF",
                    "DF04 medical insurance",
                    _aid("D15600000503"),
                    children=(
                        FileNode("EF05", "records", "EF05 medical basic info", _ef(0xEF05),
                                 tags=(0x81, 0x84, 0x8C, 0x8B, 0x8F),
                                 note="readable after VERIFY"),
                        FileNode("EF06", "records", "EF06 offline settlement info",
                                 _ef(0xEF06)),
                        FileNode("EF08", "cyclic", "EF08 medical transaction log",
                                 _ef(0xEF08)),
                        FileNode("EF15", "cyclic", "EF15 special settlement log",
                                 _ef(0xEF15)),
                    ),
                ),
                FileNode("DF07", "DF", "DF07 personnel/talent", _aid("D15600000504")),
            ),
        ),
    ),
)


def node_path(name_path: Sequence[str]) -> list[FileNode]:
    """The nodes from MF down to the node named by ``name_path`` (e.g. ``["SSSE", "EF05"]``)."""
    path = [CARD_TREE]
    for name in name_path:
        match = next((c for c in path[-1].children if c.name == name), None)
        if match is None:
            raise WorkbenchError(f"no file {'/'.join(name_path)} in the card tree")
        path.append(match)
    return path


@dataclass(frozen=True)
class NodeContent:
    """What reading one file produced."""

    node: FileNode
    records: tuple[tuple[int, bytes], ...] = ()
    """(tag or record number, value) for record EFs that answered 9000."""
    binary: bytes = b""
    problems: tuple[str, ...] = ()
    """Status words that stopped a read, explained."""
    fci: tuple[TlvNode, ...] = ()


# -- traces ---------------------------------------------------------------------------


@dataclass(frozen=True)
class TraceLine:
    """One line of the live trace (VERIFY data masked, spec/card.md §7)."""

    at: float
    reader: str
    direction: Literal[">>", "<<", "--"]
    data: bytes
    note: str = ""

    def render(self) -> str:
        clock = time.strftime("%H:%M:%S", time.localtime(self.at))
        frac = f"{self.at % 1:.3f}"[1:]
        body = self.data.hex(" ").upper()
        tail = f"  {self.note}" if self.note else ""
        return f"{clock}{frac} {self.reader} {self.direction} {body}{tail}"


class _TraceObserver(ExchangeObserver):
    def __init__(self, bench: Workbench) -> None:
        self.bench = bench
        self._ins: dict[str, int] = {}   # the last command's INS per reader, for its answer

    def on_command(self, reader: str, tpdu: bytes) -> None:
        shown = tpdu
        note = ""
        if len(tpdu) >= 2:
            self._ins[reader] = tpdu[1]
        try:
            command = CommandApdu.from_bytes(tpdu)
            shown = cmds.mask_secrets(command)
            note = cmds.command_name(command)
        except ApduError:
            note = "unparsed"
        self.bench._emit(TraceLine(time.time(), reader, ">>", shown, note))

    def on_response(self, reader: str, tpdu: bytes, response: bytes, seconds: float) -> None:
        sw = int.from_bytes(response[-2:], "big") if len(response) >= 2 else 0
        note = (f"{describe(sw, self._ins.get(reader)).en}  {seconds * 1000:.1f} ms"
                if len(response) >= 2 else "")
        self.bench._emit(TraceLine(time.time(), reader, "<<", response, note))

    def on_event(self, reader: str, what: str, data: bytes = b"") -> None:
        self.bench._emit(TraceLine(time.time(), reader, "--", data, what))


# -- the service ----------------------------------------------------------------------


TraceListener = Callable[[TraceLine], None]


@dataclass
class Workbench:
    """An APDU console over the readers of one or more transports.

    Thread-safe: the UI calls it from worker threads. ``history`` holds every exchange of the
    session; ``recording`` collects trace lines between :meth:`start_recording` and
    :meth:`stop_recording`.
    """

    transports: Sequence[Transport]
    history: list[Exchange] = field(default_factory=list)
    _writer: TraceWriter | None = None
    _connection: Connection | None = None
    _listeners: list[TraceListener] = field(default_factory=list)
    _lock: threading.RLock = field(default_factory=threading.RLock)

    def __post_init__(self) -> None:
        self._observer = _TraceObserver(self)

    # readers
    def readers(self) -> list[ReaderInfo]:
        """Every reader of every transport, with card presence."""
        out: list[ReaderInfo] = []
        for transport in self.transports:
            out.extend(transport.readers())
        return out

    @property
    def reader(self) -> str | None:
        return self._connection.reader if self._connection else None

    def open(self, reader: str) -> bytes:
        """Connect to the card in ``reader`` (shared, so the terminal keeps working) and return
        its ATR."""
        with self._lock:
            self.close()
            last: ReaderError | None = None
            for transport in self.transports:
                try:
                    names = [r.name for r in transport.readers()]
                except ReaderError as exc:
                    last = exc
                    continue
                if reader not in names:
                    continue
                try:
                    conn = transport.connect(reader, exclusive=False)
                except ReaderError as exc:
                    last = exc
                    continue
                conn.add_observer(self._observer)
                self._connection = conn
                atr = conn.atr()
                self._emit(TraceLine(time.time(), reader, "--", atr, "connected, ATR"))
                return atr
            if last is not None:
                raise WorkbenchError(str(last)) from last
            raise WorkbenchError(f"no reader named {reader!r}; pick one from the reader list")

    def close(self) -> None:
        with self._lock:
            self.stop_recording()
            conn, self._connection = self._connection, None
            if conn is not None:
                with contextlib.suppress(ReaderError):
                    conn.disconnect()
                conn.remove_observer(self._observer)

    # listeners
    def subscribe(self, listener: TraceListener) -> None:
        self._listeners.append(listener)

    def unsubscribe(self, listener: TraceListener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def _emit(self, line: TraceLine) -> None:
        for listener in list(self._listeners):
            listener(line)

    # the console
    def transmit(self, command: CommandApdu) -> Exchange:
        """Send one command on the open connection and log it in ``history``."""
        with self._lock:
            if self._connection is None:
                raise WorkbenchError("no card connected: choose a reader with a card first")
            start = time.perf_counter()
            try:
                response = self._connection.transmit(command)
            except ReaderError as exc:
                raise WorkbenchError(f"{self._connection.reader}: {exc}") from exc
            elapsed = time.perf_counter() - start
            exchange = Exchange(
                index=len(self.history) + 1,
                reader=self._connection.reader,
                command=cmds.mask_secrets(command),
                name=cmds.command_name(command),
                response=response.to_bytes(),
                seconds=elapsed,
            )
            self.history.append(exchange)
            return exchange

    def send(self, text: str) -> Exchange:
        """Parse ``text`` as a hex command APDU and send it (see :func:`parse_command`)."""
        return self.transmit(parse_command(text))

    # the file tree
    def read_node(self, name_path: Sequence[str]) -> NodeContent:
        """Select the node at ``name_path`` from the MF down and read what it holds."""
        path = node_path(name_path)
        fci: tuple[TlvNode, ...] = ()
        for node in path:
            if node.select is None:
                continue
            ex = self.transmit(node.select)
            if not ex.ok:
                return NodeContent(path[-1], problems=(f"SELECT {node.label}: {ex.sw_text}",))
            fci = ex.tree
        target = path[-1]
        if target.kind == "records":
            return self._read_records_by_tag(target)
        if target.kind == "cyclic":
            return self._read_records_by_number(target)
        if target.kind == "binary":
            return self._read_binary(target)
        return NodeContent(target, fci=fci)

    def _read_records_by_tag(self, node: FileNode) -> NodeContent:
        records: list[tuple[int, bytes]] = []
        problems: list[str] = []
        for tag in node.tags:
            ex = self.transmit(cmds.read_record_by_tag(tag))
            if ex.ok:
                simple = tlv.decode_simple(ex.data) if ex.data else []
                records.append((tag, simple[0][1] if simple else ex.data))
            elif ex.sw != 0x6A83:
                problems.append(f"tag {tag:02X}: {ex.sw_text}")
                if ex.sw in (0x6982, 0x6983):
                    break
        return NodeContent(node, records=tuple(records), problems=tuple(problems))

    def _read_records_by_number(self, node: FileNode, limit: int = 64) -> NodeContent:
        records: list[tuple[int, bytes]] = []
        problems: list[str] = []
        for number in range(1, limit + 1):
            ex = self.transmit(cmds.read_record_by_number(number))
            if not ex.ok:
                if ex.sw != 0x6A83:
                    problems.append(f"record {number}: {ex.sw_text}")
                break
            records.append((number, ex.data))
        return NodeContent(node, records=tuple(records), problems=tuple(problems))

    def _read_binary(self, node: FileNode, chunk: int = 0xF0) -> NodeContent:
        data = bytearray()
        problems: list[str] = []
        while len(data) < node.size:
            want = min(chunk, node.size - len(data))
            ex = self.transmit(cmds.read_binary(offset=len(data), le=want))
            if not ex.ok:
                if ex.sw != 0x6B00:
                    problems.append(f"offset {len(data):04X}: {ex.sw_text}")
                break
            if not ex.data:
                break
            data += ex.data
        return NodeContent(node, binary=bytes(data), problems=tuple(problems))

    # trace record / replay (the trace format of reader.trace)
    @property
    def recording(self) -> bool:
        return self._writer is not None

    def start_recording(self, path: Path) -> None:
        """Write every exchange of the open connection to ``path`` (``sscard-trace 1``;
        secret command data masked by :class:`reader.trace.TraceWriter`)."""
        with self._lock:
            if self._connection is None:
                raise WorkbenchError("no card connected: connect a reader before recording")
            self.stop_recording()
            try:
                writer = TraceWriter(path, reader=self._connection.reader)
            except OSError as exc:
                raise WorkbenchError(f"cannot write {path}: {exc.strerror}") from exc
            writer.on_event(self._connection.reader, "power-on", self._connection.atr())
            self._connection.add_observer(writer)
            self._writer = writer

    def stop_recording(self) -> int:
        """Stop recording; returns the number of records written."""
        with self._lock:
            writer, self._writer = self._writer, None
            if writer is None:
                return 0
            if self._connection is not None:
                self._connection.remove_observer(writer)
            writer.close()
            return writer.records

    def replay(self, path: Path, pin: str | None = None) -> ReplayReport:
        """Send a recorded trace's commands to the open card and compare the answers
        (:func:`reader.trace.replay_check`); masked VERIFY commands need ``pin``."""
        try:
            trace = load_trace(path)
        except OSError as exc:
            raise WorkbenchError(f"cannot read trace {path}: {exc.strerror}") from exc
        except ReaderError as exc:
            raise WorkbenchError(f"{path}: {exc}") from exc
        with self._lock:
            if self._connection is None:
                raise WorkbenchError("no card connected: connect a reader before replaying")
            try:
                return replay_check(trace, self._connection,
                                    secrets=pin_filler(pin) if pin else None)
            except ReplayError as exc:
                raise WorkbenchError(str(exc)) from exc
            except ReaderError as exc:
                raise WorkbenchError(f"{self._connection.reader}: {exc}") from exc


def response_of(exchange: Exchange) -> ResponseApdu:
    """The exchange's answer as a :class:`ResponseApdu`."""
    return ResponseApdu.from_bytes(exchange.response)


# -- the card drawer: fixture cards for the in-process virtual reader ------------------


@dataclass(frozen=True)
class DrawerState:
    """Which fixture card (if any) sits in the virtual reader."""

    reader: str
    cards: tuple[str, ...]
    inserted: str | None


class CardDrawer(Protocol):
    """Puts a chosen fixture card into the in-process virtual reader, or takes it out.

    The composition root (``sscard terminal``) implements it over the virtual reader and the
    card images; the reader monitor then reports the insert/remove like a real reader would.
    """

    def state(self) -> DrawerState:
        """The reader name, the cards to choose from and the one inserted."""

    def insert(self, card: str) -> None:
        """Insert the fixture card named ``card`` (removing any other first)."""

    def remove(self) -> None:
        """Take the card out of the reader (nothing happens if it is empty)."""


CardEventSource = Callable[[float], Sequence[CardEvent]]
"""A reader monitor: blocks up to the given seconds and returns the card events seen."""

__all__ = [
    "CARD_TREE",
    "CardDrawer",
    "CardEvent",
    "CardEventSource",
    "DrawerState",
    "Exchange",
    "FileNode",
    "NodeContent",
    "ReaderInfo",
    "ReplayReport",
    "TlvNode",
    "TraceLine",
    "Workbench",
    "WorkbenchError",
    "carries_secret",
    "decode_tlv",
    "node_path",
    "parse_command",
]

"""The developer workbench: readers and cards, APDU console, file tree, live trace.

Card I/O runs in thread workers over :class:`terminal.core.workbench.Workbench`; the screen
never blocks on the card.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, cast

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Input, TabbedContent, TabPane, Tree

from terminal.core.workbench import (
    Exchange,
    NodeContent,
    ReaderInfo,
    ReplayReport,
    TraceLine,
    Workbench,
    WorkbenchError,
    carries_secret,
)
from terminal.ui.messages import CardInserted, CardRemoved
from terminal.ui.screens.dialogs import AskDialog, ChooseDialog
from terminal.ui.widgets.pinpad import PinPad
from terminal.ui.widgets.status import StatusBar
from terminal.ui.widgets.workbench import ApduConsole, FileBrowser, TracePanel

if TYPE_CHECKING:
    from terminal.ui.app import SscardApp


class WorkbenchScreen(Screen[None]):
    """Readers, APDU console, file tree and trace for card developers."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f2", "choose_reader", "Reader"),
        Binding("f3", "console", "Console"),
        Binding("f4", "read_file", "Read file"),
        Binding("f5", "record", "Record"),
        Binding("f6", "replay", "Replay"),
        Binding("f7", "trace", "Trace"),
    ]

    atr: bytes = b""
    """The ATR of the connected card (shown in the status bar)."""

    @property
    def sscard(self) -> SscardApp:
        return cast("SscardApp", self.app)

    @property
    def bench(self) -> Workbench | None:
        return self.sscard.services.workbench

    def compose(self) -> ComposeResult:
        yield StatusBar("Workbench 工作台", id="status")
        with TabbedContent(initial="tab-console", id="bench-tabs"):
            with TabPane("Console 指令", id="tab-console"):
                yield ApduConsole(id="console")
            with TabPane("Files 文件", id="tab-files"):
                yield FileBrowser(id="browser")
            with TabPane("Trace 跟踪", id="tab-trace"):
                yield TracePanel(id="trace")
            with TabPane("Readers 读卡器", id="tab-readers"):
                yield DataTable(id="readers", cursor_type="row")
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        status = self.query_one(StatusBar)
        status.host = self.sscard.services.host_label
        if self.bench is None:
            status.reader = "no workbench available for this reader"
            return
        self._trace_feed = self.query_one(TracePanel).feed
        self.bench.subscribe(self._trace_feed)
        readers = self.query_one("#readers", DataTable)
        readers.add_column("reader", key="name")
        readers.add_column("card", key="card")
        readers.add_column("state", key="state")
        readers.add_column("ATR", key="atr")
        self.refresh_status()
        self.list_readers()
        self.connect(self.sscard.services.reader)

    def on_unmount(self) -> None:
        feed = getattr(self, "_trace_feed", None)
        if self.bench is not None and feed is not None:
            self.bench.unsubscribe(feed)

    def refresh_status(self) -> None:
        status = self.query_one(StatusBar)
        bench = self.bench
        status.reader = (bench.reader if bench and bench.reader
                         else "not connected: insert a card (F9) or pick a reader (F2)")
        card = f"ATR {self.atr.hex(' ').upper()}" if bench and bench.reader and self.atr else ""
        recording = "● recording trace" if bench and bench.recording else ""
        status.card = "  ".join(part for part in (card, recording) if part)

    # -- readers --------------------------------------------------------------------
    @work(thread=True, exclusive=True, group="bench", exit_on_error=False)
    def connect(self, reader: str) -> None:
        bench = self.bench
        if bench is None or not reader:
            return
        try:
            empty = any(r.name == reader and not r.card_present for r in bench.readers())
        except Exception:  # listing failed: let open() say why
            empty = False
        if empty:
            self.atr = b""
            self.app.call_from_thread(self.refresh_status)
            return
        try:
            atr = bench.open(reader)
        except WorkbenchError as exc:
            self.atr = b""
            self.app.call_from_thread(self.notify, str(exc), severity="warning")
        else:
            self.atr = atr
        self.app.call_from_thread(self.refresh_status)

    @work(thread=True, exclusive=True, group="bench", exit_on_error=False)
    def action_choose_reader(self) -> None:
        if self.bench is None:
            return
        try:
            readers = self.bench.readers()
        except Exception as exc:  # a reader service failure must not kill the screen
            self.app.call_from_thread(self.notify, f"cannot list readers: {exc}",
                                      severity="error")
            return
        choices = [(r.name, f"{r.name}  {'card' if r.card_present else 'empty'}")
                   for r in readers]
        self.app.call_from_thread(self._ask_reader, choices)

    def _ask_reader(self, choices: list[tuple[str, str]]) -> None:
        def chosen(name: str | None) -> None:
            if name:
                self.connect(name)

        self.app.push_screen(ChooseDialog("Reader 读卡器", choices,
                                          current=self.bench.reader if self.bench else None),
                             chosen)

    def on_card_inserted(self, message: CardInserted) -> None:
        self.list_readers()
        if message.reader == self.sscard.services.reader:
            self.connect(message.reader)

    def on_card_removed(self, message: CardRemoved) -> None:
        self.close_if(message.reader)

    @work(thread=True, exclusive=True, group="bench", exit_on_error=False)
    def close_if(self, reader: str) -> None:
        """The card left ``reader``: drop the connection to it (off the event loop)."""
        if self.bench is not None and self.bench.reader == reader:
            self.bench.close()
        self.app.call_from_thread(self.refresh_status)
        self.app.call_from_thread(self.list_readers)

    @work(thread=True, exclusive=True, group="readers", exit_on_error=False)
    def list_readers(self) -> None:
        """Refresh the Readers tab (live: called on every insert/remove)."""
        if self.bench is None:
            return
        try:
            readers = self.bench.readers()
        except Exception as exc:  # a reader service failure must not kill the screen
            self.app.call_from_thread(self.notify, f"cannot list readers: {exc}",
                                      severity="error")
            return
        self.app.call_from_thread(self._show_readers, readers)

    def _show_readers(self, readers: list[ReaderInfo]) -> None:
        table = self.query_one("#readers", DataTable)
        table.clear()
        for info in readers:
            table.add_row(info.name, "card 有卡" if info.card_present else "empty 无卡",
                          info.state, info.atr.hex(" ").upper() if info.atr else "",
                          key=info.name)

    @on(DataTable.RowSelected, "#readers")
    def reader_chosen(self, event: DataTable.RowSelected) -> None:
        if event.row_key.value:
            self.connect(str(event.row_key.value))

    # -- console ----------------------------------------------------------------------
    def action_console(self) -> None:
        self.query_one(TabbedContent).active = "tab-console"
        self.query_one("#apdu-input", Input).focus()

    def action_trace(self) -> None:
        self.query_one(TabbedContent).active = "tab-trace"
        self.query_one(TracePanel).focus()

    @on(Input.Submitted, "#apdu-input")
    def send_typed(self, event: Input.Submitted) -> None:
        if event.value.strip():
            if not carries_secret(event.value):
                self.query_one(ApduConsole).remember(event.value.strip())
            self.send(event.value)
            event.input.value = ""

    @work(thread=True, exclusive=False, group="bench", exit_on_error=False)
    def send(self, text: str) -> None:
        if self.bench is None:
            return
        try:
            exchange = self.bench.send(text)
        except WorkbenchError as exc:
            self.app.call_from_thread(self.query_one(ApduConsole).show_error, str(exc))
            return
        self.app.call_from_thread(self._show_exchange, exchange)

    def _show_exchange(self, exchange: Exchange) -> None:
        self.query_one(ApduConsole).add(exchange)

    # -- files ------------------------------------------------------------------------
    def action_read_file(self) -> None:
        tabs = self.query_one(TabbedContent)
        tree = self.query_one("#files", Tree)
        if tabs.active != "tab-files":
            tabs.active = "tab-files"
            tree.focus()
            return  # first F4 shows the tree; F4 or Enter on a file reads it
        tree.focus()
        self.read_file(self.query_one(FileBrowser).selected_path)

    @work(thread=True, exclusive=True, group="bench", exit_on_error=False)
    def read_file(self, path: tuple[str, ...]) -> None:
        if self.bench is None:
            return
        try:
            content = self.bench.read_node(path)
        except WorkbenchError as exc:
            self.app.call_from_thread(self.query_one(FileBrowser).show_error, str(exc))
            return
        self.app.call_from_thread(self._show_content, content)

    def _show_content(self, content: NodeContent) -> None:
        self.query_one(FileBrowser).show(content)
        console = self.query_one(ApduConsole)
        for exchange in self.bench.history[len(console.exchanges):] if self.bench else []:
            console.add(exchange)

    @on(Tree.NodeSelected, "#files")
    def file_chosen(self, event: Tree.NodeSelected[tuple[str, ...]]) -> None:
        if event.node.data:
            self.read_file(tuple(event.node.data))

    # -- trace record / replay --------------------------------------------------------
    def action_record(self) -> None:
        bench = self.bench
        if bench is None:
            return
        if not bench.recording:
            path = self.sscard.traces_dir / time.strftime("trace-%Y%m%d-%H%M%S.trace")
            try:
                bench.start_recording(path)
            except WorkbenchError as exc:
                self.notify(str(exc), severity="error")
                return
            self.sscard.last_trace = path
            self.notify(f"recording to {path}: F5 again stops")
        else:
            count = bench.stop_recording()
            message = f"saved {count} trace records to {self.sscard.last_trace}"
            self.notify(message)
            self.query_one(TracePanel).note(message)
        self.refresh_status()

    def action_replay(self) -> None:
        last = self.sscard.last_trace
        default = str(last) if last else str(self.sscard.traces_dir)

        def chosen(path: str | None) -> None:
            if path:
                self.replay(Path(path).expanduser(), None)

        self.app.push_screen(AskDialog("Replay a trace against this card 回放跟踪", default),
                             chosen)

    @work(thread=True, exclusive=True, group="bench", exit_on_error=False)
    def replay(self, path: Path, pin: str | None) -> None:
        if self.bench is None:
            return
        try:
            report = self.bench.replay(path, pin)
        except WorkbenchError as exc:
            if "masked" in str(exc) and pin is None:
                self.app.call_from_thread(self._ask_replay_pin, path)
                return
            self.app.call_from_thread(self.notify, str(exc), severity="error")
            return
        self.app.call_from_thread(self._replayed, report)

    def _ask_replay_pin(self, path: Path) -> None:
        def entered(pin: str | None) -> None:
            if pin:
                self.replay(path, pin)

        self.app.push_screen(PinPad(title="The trace has a VERIFY: PIN to replay it"), entered)

    def _replayed(self, report: ReplayReport) -> None:
        self.notify(str(report), severity="information" if report.ok else "warning",
                    timeout=10)
        self.query_one(TracePanel).note(f"replay: {report}",
                                        "bold green" if report.ok else "bold red")
        self.action_trace()

    def feed_trace(self, line: TraceLine) -> None:
        self.query_one(TracePanel).feed(line)

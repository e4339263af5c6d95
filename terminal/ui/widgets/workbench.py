"""Workbench widgets: the APDU console, the card file tree and the live trace panel.

They show what :class:`terminal.core.workbench.Workbench` returns; the screen runs the
card I/O in workers and hands the results to these widgets.
"""

from __future__ import annotations

from collections import deque

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.events import Key
from textual.widget import Widget
from textual.widgets import DataTable, Input, RichLog, Static, Tree
from textual.widgets.tree import TreeNode

from terminal.core.workbench import (
    CARD_TREE,
    Exchange,
    FileNode,
    NodeContent,
    TlvNode,
    TraceLine,
)


def _add_tlv(parent: TreeNode[None], nodes: tuple[TlvNode, ...]) -> None:
    for node in nodes:
        if node.children:
            branch = parent.add(node.label, expand=True)
            _add_tlv(branch, node.children)
        else:
            parent.add_leaf(node.label)


class ApduConsole(Widget):
    """History of exchanges, the decoded answer of the selected one, and the command line."""

    DEFAULT_CSS = """
    ApduConsole { layout: vertical; height: 1fr; }
    ApduConsole > Horizontal { height: 1fr; }
    ApduConsole DataTable { width: 3fr; }
    ApduConsole #decoded { width: 2fr; border-left: solid $panel; }
    ApduConsole #apdu-input { dock: bottom; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.exchanges: list[Exchange] = []
        self.typed: list[str] = []
        """Commands typed in this session, for Up/Down recall in the command line."""
        self._recall = 0

    def remember(self, text: str) -> None:
        if not self.typed or self.typed[-1] != text:
            self.typed.append(text)
        self._recall = len(self.typed)

    def on_key(self, event: Key) -> None:
        line = self.query_one("#apdu-input", Input)
        if not line.has_focus or event.key not in ("up", "down") or not self.typed:
            return
        step = -1 if event.key == "up" else 1
        self._recall = max(0, min(len(self.typed), self._recall + step))
        line.value = self.typed[self._recall] if self._recall < len(self.typed) else ""
        line.cursor_position = len(line.value)
        event.stop()

    def compose(self) -> ComposeResult:
        with Horizontal():
            table: DataTable[str] = DataTable(id="history", cursor_type="row", zebra_stripes=True)
            yield table
            yield Tree("response", id="decoded")
        yield Input(placeholder="APDU> hex, e.g. 00 A4 00 00 02 3F 00  (Enter sends, F3 here)",
                    id="apdu-input", compact=True)

    def on_mount(self) -> None:
        table = self.query_one("#history", DataTable)
        table.add_column("#", key="n")
        table.add_column("command", key="name")
        table.add_column("APDU", key="apdu", width=20)
        table.add_column("SW", key="sw")
        self.query_one("#decoded", Tree).show_root = False

    def add(self, exchange: Exchange) -> None:
        """Append an exchange and show its decoding."""
        self.exchanges.append(exchange)
        table = self.query_one("#history", DataTable)
        sw = Text(f"{exchange.sw:04X}", style="green" if exchange.ok else "red")
        apdu = Text(exchange.command.hex(" ").upper(), overflow="ellipsis", no_wrap=True)
        table.add_row(str(exchange.index), exchange.name, apdu, sw, key=str(exchange.index))
        table.move_cursor(row=table.row_count - 1)
        self.show(exchange)

    def show(self, exchange: Exchange) -> None:
        tree = self.query_one("#decoded", Tree)
        tree.clear()
        tree.root.add_leaf(f"#{exchange.index} {exchange.name}")
        tree.root.add_leaf(exchange.sw_text)
        if exchange.data:
            data = tree.root.add(f"data ({len(exchange.data)} bytes)", expand=True)
            decoded = exchange.tree
            if decoded:
                _add_tlv(data, decoded)
            else:
                data.add_leaf(exchange.data.hex(" ").upper())
        tree.root.expand()

    def show_error(self, message: str) -> None:
        """Show why a command was not sent (or got no answer) where the answer would be."""
        tree = self.query_one("#decoded", Tree)
        tree.clear()
        tree.root.add_leaf(Text(message, style="bold red"))
        tree.root.expand()

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if 0 <= event.cursor_row < len(self.exchanges):
            self.show(self.exchanges[event.cursor_row])


class FileBrowser(Widget):
    """The card's file tree (spec/card.md §3) and what reading the chosen file returned."""

    DEFAULT_CSS = """
    FileBrowser { layout: horizontal; height: 1fr; }
    FileBrowser #files { width: 2fr; }
    FileBrowser #file-content { width: 3fr; border-left: solid $panel; padding: 0 1; }
    """

    def compose(self) -> ComposeResult:
        tree: Tree[tuple[str, ...]] = Tree(CARD_TREE.label, data=(), id="files")
        yield tree
        with Vertical(id="file-content"):
            yield Static("Choose a file and press Enter (F4) to select and read it.",
                         id="file-text")

    def on_mount(self) -> None:
        tree = self.query_one("#files", Tree)
        self._fill(tree.root, CARD_TREE, ())
        tree.root.expand_all()

    def _fill(self, parent: TreeNode[tuple[str, ...]], node: FileNode,
              path: tuple[str, ...]) -> None:
        for child in node.children:
            child_path = (*path, child.name)
            if child.children:
                branch = parent.add(child.label, data=child_path)
                self._fill(branch, child, child_path)
            else:
                parent.add_leaf(child.label, data=child_path)

    @property
    def selected_path(self) -> tuple[str, ...]:
        node = self.query_one("#files", Tree).cursor_node
        return tuple(node.data) if node is not None and node.data is not None else ()

    def show(self, content: NodeContent) -> None:
        text = Text()
        text.append(content.node.label + "\n", style="bold")
        if content.node.note:
            text.append(content.node.note + "\n", style="italic")
        for key, value in content.records:
            text.append(f"{key:02X} ", style="bold cyan")
            text.append(value.hex(" ").upper())
            shown = _as_text(value)
            if shown:
                text.append(f'  "{shown}"', style="green")
            text.append("\n")
        if content.binary:
            kind = "JPEG" if content.binary.startswith(b"\xff\xd8") else "binary"
            text.append(f"{kind}, {len(content.binary)} bytes\n")
            text.append(content.binary[:64].hex(" ").upper() + (" …" if len(content.binary) > 64
                                                                 else "") + "\n")
        for node in content.fci:
            text.append(node.label + "\n", style="cyan")
        for problem in content.problems:
            text.append(problem + "\n", style="bold red")
        if not (content.records or content.binary or content.fci or content.problems):
            text.append("selected; nothing to read here\n")
        self.query_one("#file-text", Static).update(text)

    def show_error(self, message: str) -> None:
        self.query_one("#file-text", Static).update(Text(message, style="bold red"))


def _as_text(value: bytes) -> str:
    body = value.rstrip(b"\x00")
    try:
        text = body.decode("gbk")
    except UnicodeDecodeError:
        return ""
    return text if text and all(ch.isprintable() for ch in text) else ""


class TracePanel(RichLog):
    """The live trace: lines arrive from any thread into a queue drained on a timer."""

    DEFAULT_CSS = """
    TracePanel { background: $surface; height: 1fr; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, wrap=False, markup=False, highlight=False, max_lines=2000)
        self._pending: deque[TraceLine] = deque()
        self.lines_seen = 0

    def on_mount(self) -> None:
        self.set_interval(0.1, self._drain)

    def feed(self, line: TraceLine) -> None:
        """Queue a line (safe from any thread)."""
        self._pending.append(line)

    def note(self, message: str, style: str = "bold") -> None:
        """Write a line of the workbench's own (a replay report, a recording saved)."""
        self.write(Text(message, style=style))

    def _drain(self) -> None:
        while self._pending:
            line = self._pending.popleft()
            style = {">>": "cyan", "<<": "green", "--": "yellow"}[line.direction]
            self.write(Text(line.render(), style=style))
            self.lines_seen += 1

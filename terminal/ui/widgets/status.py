"""The one-line status bar at the top of every screen: mode, reader, card, host."""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget


class StatusBar(Widget):
    """Mode title, reader name, card presence and host state on one line."""

    DEFAULT_CSS = """
    StatusBar { height: 1; background: $primary; color: $text; padding: 0 1; }
    """

    title: reactive[str] = reactive("")
    reader: reactive[str] = reactive("")
    card: reactive[str] = reactive("")
    host: reactive[str] = reactive("")

    def __init__(self, title: str, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.title = title

    def render(self) -> Text:
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append(f" {self.title} ", style="bold reverse")
        if self.reader:
            text.append(f"  reader: {self.reader}")
        if self.card:
            text.append(f"  card: {self.card}")
        if self.host:
            text.append(f"  host: {self.host}")
        return text

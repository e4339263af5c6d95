"""The service counter (seed rules A3, A4, C3, L1, L2, A5, M2)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.widgets import Footer

from terminal.ui.screens.base import FlowScreen, Progress
from terminal.ui.widgets.status import StatusBar


class CounterScreen(FlowScreen):
    """Counter operations on the card and at the host."""

    def compose(self) -> ComposeResult:
        yield StatusBar("Service counter 服务柜台", id="status")
        yield Progress(id="progress")
        yield Footer(compact=True, show_command_palette=False)

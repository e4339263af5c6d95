"""What every counter screen shares: driving a core flow off the event loop.

A flow (``terminal.core.machine.Flow``) is synchronous: each input or step may talk to the
card or the host. :meth:`FlowScreen.drive` runs one input plus ``run_until_input`` in a
thread worker (serialised by a lock), shows a progress line while it runs, and calls
:meth:`FlowScreen.flow_settled` on the event loop when the flow waits again or finished.
Transitions reach :meth:`FlowScreen.on_flow_event` as they happen.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from rich.text import Text
from textual import work
from textual.reactive import reactive
from textual.screen import Screen
from textual.widget import Widget

from terminal.core.machine import Flow, FlowEvent

if TYPE_CHECKING:
    from terminal.ui.app import SscardApp


class Progress(Widget):
    """One line: what the terminal is waiting for, and for how long (slow host, card)."""

    DEFAULT_CSS = """
    Progress { height: auto; max-height: 3; padding: 0 1; color: $warning; text-style: italic; }
    Progress.-idle { color: $text-muted; text-style: none; }
    Progress.-error { color: $error; text-style: bold; }
    Progress.-ok { color: $success; text-style: bold; }
    """

    what: reactive[str] = reactive("", layout=True)
    since: reactive[float | None] = reactive(None)
    tick: reactive[int] = reactive(0)

    def on_mount(self) -> None:
        self.set_interval(0.25, self._tick)

    def _tick(self) -> None:
        if self.since is not None:
            self.tick += 1

    def start(self, what: str) -> None:
        self.what = what
        self.since = time.monotonic()
        self.set_classes("")

    def stop(self, message: str = "", kind: str = "idle") -> None:
        self.since = None
        self.what = message
        self.set_classes(f"-{kind}")

    def render(self) -> Text:
        if self.since is None:
            return Text(self.what)
        seconds = time.monotonic() - self.since
        spinner = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"[self.tick % 10]
        slow = "  (the host is slow; still waiting)" if seconds >= 3 else ""
        return Text(f"{spinner} {self.what}… {seconds:.0f}s{slow}")


class FlowScreen(Screen[None]):
    """A screen that drives one core flow at a time."""

    flow: Flow[Any] | None = None

    def __init__(self) -> None:
        super().__init__()
        self._flow_lock = threading.Lock()
        self._unsubscribe: Callable[[], None] | None = None
        self.busy = False

    @property
    def sscard(self) -> SscardApp:
        return cast("SscardApp", self.app)

    # -- flows --------------------------------------------------------------------------
    def start_flow(self, flow: Flow[Any], what: str) -> None:
        """Make ``flow`` the screen's flow and run it until it needs an input."""
        if self._unsubscribe is not None:
            self._unsubscribe()
        self.flow = flow
        self._unsubscribe = flow.subscribe(self._observe)
        self.drive(None, what)

    def _observe(self, event: FlowEvent[Any]) -> None:
        try:
            self.app.call_from_thread(self.on_flow_event, event)
        except RuntimeError:  # already on the event loop
            self.on_flow_event(event)

    def drive(self, action: Callable[[], None] | None, what: str) -> None:
        """Run ``action`` (an input of the flow) then the flow's automatic steps, off-loop."""
        self.busy = True
        self.progress.start(what)
        self._drive(action)

    @work(thread=True, group="flow", exit_on_error=False)
    def _drive(self, action: Callable[[], None] | None) -> None:
        flow = self.flow
        error: Exception | None = None
        with self._flow_lock:
            try:
                if action is not None:
                    action()
                if flow is not None:
                    flow.run_until_input()
            except Exception as exc:  # a programming error: show it, keep the terminal alive
                error = exc
        self.app.call_from_thread(self._settled, flow, error)

    def _settled(self, flow: Flow[Any] | None, error: Exception | None) -> None:
        self.busy = False
        if error is not None:
            self.progress.stop(f"{type(error).__name__}: {error}", "error")
            self.notify(str(error), severity="error")
            return
        if flow is not self.flow:
            return
        self.flow_settled()

    @property
    def progress(self) -> Progress:
        return self.query_one(Progress)

    # -- for subclasses -----------------------------------------------------------------
    def on_flow_event(self, event: FlowEvent[Any]) -> None:
        """A transition happened (on the event loop)."""
        if event.message and self.busy:
            self.progress.what = event.message

    def flow_settled(self) -> None:
        """The flow waits for an input or finished: update the screen."""

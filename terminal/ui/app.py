"""The sscard terminal: one Textual app, four modes (pharmacy, hospital, counter, workbench).

The app holds the :class:`TerminalServices` built by ``sscard terminal`` (or a test): the
transaction core, the workbench service, the card drawer of the in-process virtual reader and
the reader monitor. Card insert/remove events come from the monitor in a thread worker and
reach the active screen as messages; nothing here blocks on card or host I/O.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol

from textual import work
from textual.app import App
from textual.binding import Binding, BindingType
from textual.screen import ModalScreen, Screen
from textual.worker import get_current_worker

from terminal.core.common import Clock, now
from terminal.core.model import TerminalConfig
from terminal.core.ports import (
    CardIssuerPort,
    CardPort,
    CatalogueItem,
    CataloguePort,
    HostPort,
)
from terminal.core.workbench import CardDrawer, CardEventSource, Workbench
from terminal.ui.messages import CardInserted, CardRemoved, ReaderProblem
from terminal.ui.screens.counter import CounterScreen
from terminal.ui.screens.dialogs import ChooseDialog
from terminal.ui.screens.hospital import HospitalScreen
from terminal.ui.screens.pharmacy import PharmacyScreen
from terminal.ui.screens.workbench import WorkbenchScreen
from terminal.ui.themes import DARK, LIGHT, THEMES

MODE_LABELS = {
    "pharmacy": "Pharmacy checkout 药店收银",
    "hospital": "Hospital desk 住院登记/结算",
    "counter": "Service counter 服务柜台",
    "workbench": "Workbench 工作台",
}


def data_dir() -> Path:
    """The per-user data directory (``$XDG_DATA_HOME/sscard``, else ``~/.local/share/sscard``)."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "sscard"


class ShelfCatalogue(CataloguePort, Protocol):
    """The catalogue as the cart needs it: lookup by code and search by code, name or pinyin
    initials (the catalogue's own search, :meth:`terminal.core.adapters.PolicyCatalogue.search`;
    the UI only shows the results, with each item's class 甲/乙/丙 and eligibility)."""

    def search(self, text: str, limit: int = 8) -> Sequence[CatalogueItem]:
        """Items matching ``text``, best first, at most ``limit``."""


@dataclass
class TerminalServices:
    """What the terminal runs on; built by ``sscard terminal`` or by tests.

    ``card``, ``host`` and ``catalogue`` are the transaction core's ports
    (``terminal.core.ports``) the flows are created with; ``card_events`` is the reader
    monitor; ``drawer`` exists only for the in-process virtual reader.
    """

    card: CardPort | None = None
    host: HostPort | None = None
    host_at: Callable[[str], HostPort] | None = None
    """The host as seen from another institution (a bank counter, the card office); may
    block and raise :class:`terminal.core.ports.HostError`."""
    counters: Sequence[tuple[str, str]] = ()
    """(institution code, label) of the counters the service-counter screen can act as."""
    catalogue: ShelfCatalogue | None = None
    config: TerminalConfig = field(default_factory=TerminalConfig)
    issuer: CardIssuerPort | None = None
    """Writes new cards at the counter (replacement); only where a personaliser exists."""
    workbench: Workbench | None = None
    drawer: CardDrawer | None = None
    card_events: CardEventSource | None = None
    reader: str = ""
    host_label: str = ""
    data_dir: Path = field(default_factory=data_dir)
    clock: Clock = now
    """The flows' clock (tests pin it for reproducible slips and snapshots)."""
    notice: str = ""
    """Something the clerk should know from the start (shown once as a warning)."""


class SscardApp(App[None]):
    """The terminal application."""

    CSS_PATH = "sscard.tcss"
    TITLE = "sscard"
    MODES: ClassVar[dict[str, str | Callable[[], Screen[Any]]]] = {
        "pharmacy": PharmacyScreen,
        "hospital": HospitalScreen,
        "counter": CounterScreen,
        "workbench": WorkbenchScreen,
    }
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (110, "-wide")]  # noqa: RUF012 - Textual's own
    """80×24 is the floor; from 110 columns the panels get more room (``Screen.-wide``)."""
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f9", "card_drawer", "In/Out", show=True),
        Binding("f10", "choose_mode", "Mode", show=True),
        Binding("ctrl+t", "toggle_theme", "Theme", show=False),
        Binding("ctrl+q", "quit", "Quit", show=False, priority=True),
    ]

    def __init__(self, services: TerminalServices, *, mode: str = "pharmacy",
                 theme: str = "dark", watch_cards: bool = True) -> None:
        super().__init__()
        if mode not in self.MODES:
            raise ValueError(f"unknown mode {mode!r}: use one of {', '.join(self.MODES)}")
        self.services = services
        self.start_mode = mode
        self.start_theme = THEMES.get(theme, DARK).name
        self.watch_cards = watch_cards
        self.last_trace: Path | None = None
        self.card_present = False

    @property
    def traces_dir(self) -> Path:
        path = self.services.data_dir / "traces"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def on_mount(self) -> None:
        self.register_theme(DARK)
        self.register_theme(LIGHT)
        self.theme = self.start_theme
        self.switch_mode(self.start_mode)
        if self.services.notice:
            self.notify(self.services.notice, severity="warning", timeout=20)
        if self.watch_cards and self.services.card_events is not None:
            self.monitor_cards()

    # -- reader monitor ----------------------------------------------------------------
    @work(thread=True, exclusive=True, group="monitor", exit_on_error=False)
    def monitor_cards(self) -> None:
        """Wait for card events in a thread and hand them to the active screen."""
        source = self.services.card_events
        worker = get_current_worker()
        while source is not None and not worker.is_cancelled:
            try:
                events = source(0.2)
            except Exception as exc:  # reader service down: say so, keep the app alive
                self.call_from_thread(self._route, ReaderProblem(str(exc)))
                return
            for event in events:
                if event.reader != self.services.reader and self.current_mode != "workbench":
                    continue  # the PSAM slot and other readers are not the counter's card
                if event.kind == "inserted":
                    self.call_from_thread(self._route, CardInserted(event.reader, event.atr))
                elif event.kind == "removed":
                    self.call_from_thread(self._route, CardRemoved(event.reader))

    def _route(self, message: CardInserted | CardRemoved | ReaderProblem) -> None:
        if isinstance(message, CardInserted):
            self.card_present = True
        elif isinstance(message, CardRemoved):
            self.card_present = False
        else:
            self.notify(f"reader problem: {message.message}", severity="error", timeout=10)
        # the mode's own screen, even when a dialog (PIN pad, chooser) is on top of it
        target = next((s for s in reversed(self.screen_stack) if not isinstance(s, ModalScreen)),
                      self.screen)
        target.post_message(message)

    # -- actions ------------------------------------------------------------------------
    def action_toggle_theme(self) -> None:
        self.theme = LIGHT.name if self.theme == DARK.name else DARK.name

    def action_choose_mode(self) -> None:
        def chosen(mode: str | None) -> None:
            if mode:
                self.switch_mode(mode)

        self.push_screen(ChooseDialog("Mode 模式", list(MODE_LABELS.items()),
                                      current=self.current_mode), chosen)

    def action_card_drawer(self) -> None:
        drawer = self.services.drawer
        if drawer is None:
            self.notify("this reader is a real one: insert or remove the card by hand",
                        severity="warning")
            return
        state = drawer.state()
        choices = [(name, f"insert {name}") for name in state.cards]
        if state.inserted:
            choices.insert(0, ("", f"remove {state.inserted}"))

        def chosen(name: str | None) -> None:
            if name is None:
                return
            self.drawer_do(name)

        self.push_screen(ChooseDialog("Virtual reader: insert or remove a card 插拔卡",
                                      choices, current=None), chosen)

    @work(thread=True, group="drawer", exit_on_error=False)
    def drawer_do(self, name: str) -> None:
        drawer = self.services.drawer
        if drawer is None:
            return
        try:
            if name:
                drawer.insert(name)
            else:
                drawer.remove()
        except Exception as exc:  # a broken card image: say so, keep the terminal running
            self.call_from_thread(self.notify, f"cannot {'insert ' + name if name else 'remove'}"
                                  f": {exc}", severity="error", timeout=10)
            return
        if self.services.card_events is None or not self.watch_cards:
            # no monitor running: tell the screen directly
            state = drawer.state()
            msg = CardInserted(state.reader) if name else CardRemoved(state.reader)
            self.call_from_thread(self._route, msg)

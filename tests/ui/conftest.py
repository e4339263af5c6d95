"""Fixtures for the terminal UI tests: the real stack (virtual reader with the fixture cards,
the embedded SQLite host, the transaction core) in a temporary data directory.

The fixture cards are registered at the host under their own numbers with
``tests.core.hosting.enrol`` (8110, "register a personalised card").
"""

from __future__ import annotations

import contextlib
import io
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

from terminal.cli.cmd_terminal import Stack, build_stack, prepare_data_dir
from tests.core.hosting import Enrolled, enrol, init_host

CST = timezone(timedelta(hours=8))
FIXTURE_CARD = "zhang-san"
"""张三: an activated CCB card (fixtures/cards/make_fixtures.py)."""
FIXTURE_PIN = "246810"
LOCKED_CARD = "zhao-min"
"""赵敏: a card whose PIN is locked."""
LOCKED_PIN = "975310"
OPENING_BALANCE = 50000
BANK_DEPOSIT = 100000


class FixedClock:
    """The flows' clock: a fixed start, one second further at every reading."""

    def __init__(self) -> None:
        self.t = datetime(2026, 11, 28, 10, 0, 0, tzinfo=CST)

    def __call__(self) -> datetime:
        self.t += timedelta(seconds=1)
        return self.t


@dataclass
class World:
    """A data directory with an embedded host that knows the fixture cards."""

    data: Path
    url: str
    cards: dict[str, Enrolled]
    stacks: list[Stack] = field(default_factory=list)

    def enrol(self, name: str) -> Enrolled:
        """Make the host know fixture card ``name`` (opening balance and bank deposit)."""
        self.cards[name] = enrol(self.url, self.data / "cards" / f"{name}.json",
                                 balance=OPENING_BALANCE, bank_deposit=BANK_DEPOSIT)
        return self.cards[name]

    def stack(self, mode: str = "pharmacy", *, host: str | None = None,
              watch: bool = False) -> Stack:
        stack = build_stack(mode=mode, data_dir=self.data, host=host or self.url,
                            clock=FixedClock(), watch=watch)
        self.stacks.append(stack)
        return stack

    def run(self, fn: Callable[[Any], Any]) -> Any:
        from ledger.store.base import open_store

        store = open_store(self.url)
        try:
            return store.run(fn)
        finally:
            store.close()

    def balances(self, name: str) -> tuple[int, int]:
        """(personal medical account, bank account) of a fixture card's holder, in fen."""
        from ledger import books

        card = self.cards[name]
        return self.run(lambda tx: (books.balance(tx, books.medical(card.psn_no)),
                                    books.balance(tx, books.bank(card.pan))))

    def books_problems(self) -> list[str]:
        from ledger import books

        return list(self.run(books.verify))

    def settlements(self) -> list[tuple[Any, ...]]:
        return list(self.run(lambda tx: tx.all(
            "SELECT setl_id, state, acct_pay, psn_cash_pay FROM settlements")))

    def card_state(self, name: str) -> str:
        card = self.cards[name]
        row = self.run(lambda tx: tx.one("SELECT state FROM cards WHERE card_no = ?",
                                         (card.card_no,)))
        return str(row[0])


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    """A data directory and host that know :data:`FIXTURE_CARD`; ``world.enrol(name)``
    adds another fixture card."""
    data = tmp_path / "data"
    prepare_data_dir(data)
    url = f"sqlite:///{data}/host.sqlite"
    init_host(url)
    w = World(data, url, {})
    w.enrol(FIXTURE_CARD)
    yield w
    for stack in w.stacks:
        stack.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class HostServer:
    """``sscard host serve`` in a thread of the test process, stoppable."""

    url: str
    server: Any
    thread: threading.Thread
    service: Any

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.service.close()


@pytest.fixture
def host_server(world: World) -> Iterator[HostServer]:
    import uvicorn

    from ledger.auth import TEST_SECRET
    from ledger.http import create_app
    from ledger.service import HostService

    service = HostService.open(world.url)
    port = free_port()
    config = uvicorn.Config(create_app(service, secret=TEST_SECRET), host="127.0.0.1",
                            port=port, log_level="error", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the host server did not start")
        time.sleep(0.02)
    hs = HostServer(f"http://127.0.0.1:{port}", server, thread, service)
    yield hs
    if thread.is_alive():
        hs.stop()


async def wait_until(pilot: Pilot[Any], check: Callable[[], bool], *, timeout: float = 30.0,
                     what: str = "") -> None:
    """Let the app run until ``check()`` holds (bounded; workers finish in their own time)."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or check}")
        await pilot.pause(0.05)


async def wait_text(pilot: Pilot[Any], *needles: str, timeout: float = 30.0) -> str:
    """Wait until the screen shows every one of ``needles``; returns the screen text."""
    await wait_until(pilot, lambda: all(n in screen_text(pilot.app) for n in needles),
                     timeout=timeout, what=" and ".join(repr(n) for n in needles))
    return screen_text(pilot.app)


async def settle(pilot: Pilot[Any], *, timeout: float = 15.0) -> None:
    """Bring the app to a state a snapshot can rely on, whatever the machine's speed.

    Text cursors stop blinking (shown steadily: a blink phase depends on the wall clock since
    the last key), every worker has finished (their ``call_from_thread`` updates are applied
    before they finish), and scheduled animations and the refresh that follows have run.
    Long-running workers (the card monitor) must not be running: build the app with
    ``watch_cards=False``.
    """
    from textual.widgets import Input, TextArea

    app = pilot.app
    for screen in app.screen_stack:
        for editor in screen.query(Input):
            editor.cursor_blink = False
        for area in screen.query(TextArea):
            area.cursor_blink = False
    await wait_until(pilot, lambda: all(w.is_finished for w in app.workers), timeout=timeout,
                     what="the workers to finish")
    await pilot.wait_for_scheduled_animations()
    await pilot.pause()


async def type_text(pilot: Pilot[Any], text: str) -> None:
    for ch in text:
        await pilot.press(ch)


def screen_text(app: Any) -> str:
    """Everything the terminal shows now (modal screens over their background), as plain
    text: the same rendering ``App.export_screenshot`` uses, exported as text."""
    from rich.console import Console

    width, height = app.size
    console = Console(width=width, height=height, file=io.StringIO(), force_terminal=True,
                      color_system="truecolor", record=True, legacy_windows=False)
    console.print(app.screen._compositor.render_update(
        full=True, screen_stack=app._background_screens))
    return console.export_text(styles=False)


def notifications(app: Any) -> list[str]:
    """The messages of the toasts the app raised (newest last)."""
    return [n.message for n in app._notifications]


class SlowLink:
    """A TCP relay in front of the host server that holds every request for ``delay``
    seconds: a slow network, with the real host behind it."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.delay = 0.0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self._stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        self.listener.settimeout(0.2)
        while not self._stop.is_set():
            try:
                client, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.target_port))
            threading.Thread(target=self._pipe, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(server, client, False),
                             daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, slow: bool) -> None:
        try:
            while chunk := src.recv(65536):
                if slow and self.delay:
                    time.sleep(self.delay)
                dst.sendall(chunk)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                with contextlib.suppress(OSError):
                    sock.close()

    def close(self) -> None:
        self._stop.set()
        self.listener.close()


@pytest.fixture
def slow_link(host_server: HostServer) -> Iterator[SlowLink]:
    link = SlowLink(int(host_server.url.rsplit(":", 1)[1]))
    yield link
    link.close()

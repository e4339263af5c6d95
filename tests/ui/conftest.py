"""Fixtures for the terminal UI tests: the real stack (virtual reader with the fixture cards,
the embedded SQLite host, the transaction core) in a temporary data directory."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

from terminal.cli.cmd_terminal import Stack, build_stack

CST = timezone(timedelta(hours=8))
FIXTURE_CARD = "zhang-san"
"""An activated CCB card with a balance (fixtures/cards/make_fixtures.py)."""
FIXTURE_PIN = "246810"
LOCKED_CARD = "zhao-min"
"""A card whose PIN is locked."""


class FixedClock:
    """The flows' clock: a fixed start, one second further at every reading."""

    def __init__(self) -> None:
        self.t = datetime(2026, 11, 28, 10, 0, 0, tzinfo=CST)

    def __call__(self) -> datetime:
        self.t += timedelta(seconds=1)
        return self.t


@pytest.fixture
def stack_factory(tmp_path: Path) -> Iterator[Callable[..., Stack]]:
    opened: list[Stack] = []

    def make(mode: str = "pharmacy", **kw: Any) -> Stack:
        stack = build_stack(mode=mode, data_dir=tmp_path / "data", clock=FixedClock(), **kw)
        opened.append(stack)
        return stack

    yield make
    for stack in opened:
        stack.close()


async def wait_until(pilot: Pilot[Any], check: Callable[[], bool], *, timeout: float = 10.0,
                     what: str = "") -> None:
    """Let the app run until ``check()`` holds (bounded; workers finish in their own time)."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or check}")
        await pilot.pause(0.05)


def screen_text(app: Any) -> str:
    """Everything the terminal shows now (modal screens over their background), as plain
    text: the same rendering ``App.export_screenshot`` uses, exported as text."""
    import io

    from rich.console import Console

    width, height = app.size
    console = Console(width=width, height=height, file=io.StringIO(), force_terminal=True,
                      color_system="truecolor", record=True, legacy_windows=False)
    console.print(app.screen._compositor.render_update(
        full=True, screen_stack=app._background_screens))
    return console.export_text(styles=False)

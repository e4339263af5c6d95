"""End to end in a real terminal: tmux runs ``sscard terminal``, keys are sent, a sale
completes and the captured screen shows the slip with the account balance (seed rule U5).

tmux gets its own socket (``-L``) so the test never touches a user's sessions; every wait
polls the captured pane with a deadline instead of sleeping a fixed time.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support import require
from tests.ui.conftest import FIXTURE_CARD, FIXTURE_PIN

ROOT = Path(__file__).resolve().parents[2]
SSCARD = Path(sys.executable).with_name("sscard")


class Tmux:
    """One private tmux server running one command in a 120×40 window."""

    def __init__(self, socket: str) -> None:
        self.socket = socket

    def run(self, *args: str) -> str:
        proc = subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True,
                              text=True, timeout=20)
        if proc.returncode != 0:
            raise AssertionError(f"tmux {' '.join(args)}: {proc.stderr.strip()}")
        return proc.stdout

    def screen(self) -> str:
        return self.run("capture-pane", "-p", "-J", "-t", "sscard")

    def keys(self, *keys: str) -> None:
        self.run("send-keys", "-t", "sscard", *keys)

    def type(self, text: str) -> None:
        self.run("send-keys", "-t", "sscard", "-l", text)

    def wait_for(self, what: Callable[[str], bool] | str, timeout: float = 30.0) -> str:
        check = (lambda s: what in s) if isinstance(what, str) else what
        deadline = time.monotonic() + timeout
        screen = ""
        while time.monotonic() < deadline:
            screen = self.screen()
            if check(screen):
                return screen
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what!r}; the screen was:\n{screen}")


@pytest.fixture
def tmux(tmp_path: Path) -> Iterator[Tmux]:
    if shutil.which("tmux") is None:
        require("tmux", "install the Debian package tmux")
    data = tmp_path / "sscard"  # empty: the terminal's first run sets it up
    socket = f"sscard-test-{uuid.uuid4().hex[:8]}"
    t = Tmux(socket)
    env = {
        "TERM": "xterm-256color",
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "COLORTERM": "truecolor",
    }
    exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
    command = (f"env -i {exports} {shlex.quote(str(SSCARD))} terminal "
               f"--data-dir {shlex.quote(str(data))}; echo sscard-exited-$?; sleep 30")
    t.run("new-session", "-d", "-s", "sscard", "-x", "120", "-y", "40", command)
    try:
        yield t
    finally:
        subprocess.run(["tmux", "-L", socket, "kill-server"], capture_output=True, timeout=20)


@pytest.mark.slow
def test_a_sale_in_a_real_terminal_prints_the_balance(tmux: Tmux) -> None:
    tmux.wait_for("请插卡", timeout=60)
    tmux.keys("F9")  # the card drawer of the virtual reader
    screen = tmux.wait_for(f"insert {FIXTURE_CARD}")
    line = next(ln for ln in screen.splitlines() if f"insert {FIXTURE_CARD}" in ln)
    number = line.split(f"insert {FIXTURE_CARD}")[0].split()[-1]  # "5 insert zhang-san"
    tmux.type(number)
    tmux.wait_for(lambda s: "¥500.00" in s and "张三" in s, timeout=30)
    tmux.keys("F2")
    tmux.type("2*amxl")
    tmux.wait_for("阿莫西林胶囊")
    tmux.keys("Enter")
    tmux.wait_for("25.00")
    tmux.keys("F8")
    tmux.wait_for("tries left", timeout=30)
    tmux.type(FIXTURE_PIN)
    assert FIXTURE_PIN not in tmux.screen()
    tmux.keys("Enter")
    screen = tmux.wait_for("账户余额", timeout=30)
    assert "SETTLEMENT SLIP" in screen and "阿莫西林胶囊" in screen
    balance = next(ln for ln in screen.splitlines() if "账户余额" in ln)
    assert "475.00" in balance
    tmux.keys("Escape")
    tmux.keys("C-q")
    tmux.wait_for("sscard-exited-0", timeout=20)

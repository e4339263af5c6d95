"""Argument types and output-file checks shared by the ``sscard`` commands.

Each type refuses a bad value while the command line is parsed (argparse prints the usage
line and exits 2), so no command runs with a NaN timeout or a negative count.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import stat
from collections.abc import Callable, Iterable
from pathlib import Path

from terminal.cli import CliError

MAX_SECONDS = 10_000_000.0
"""The longest time an option may give (about 115 days): beyond it the system's clocks and
waits overflow."""


def seconds(*, zero: bool = False) -> Callable[[str], float]:
    """A number of seconds, > 0 (or ≥ 0 with ``zero``), at most :data:`MAX_SECONDS`."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
        if not math.isfinite(value) or value < 0 or (value == 0 and not zero) \
                or value > MAX_SECONDS:
            bound = f"from 0 to {MAX_SECONDS:.0f}" if zero else \
                f"more than 0 and at most {MAX_SECONDS:.0f}"
            raise argparse.ArgumentTypeError(f"{text!r}: seconds must be {bound}")
        return value
    return parse


def minutes(text: str) -> float:
    """A number of minutes, > 0, at most :data:`MAX_SECONDS` / 60."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of minutes") from None
    if not math.isfinite(value) or value <= 0 or value * 60 > MAX_SECONDS:
        raise argparse.ArgumentTypeError(
            f"{text!r}: minutes must be more than 0 and at most {MAX_SECONDS / 60:.0f}")
    return value


def count(low: int = 1, high: int | None = None) -> Callable[[str], int]:
    """A whole number from ``low`` to ``high``."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < low or (high is not None and value > high):
            span = f"from {low} to {high}" if high is not None else f"{low} or more"
            raise argparse.ArgumentTypeError(f"{value} is out of range: {span}")
        return value
    return parse


def terminal_id(text: str) -> str:
    """A terminal number at its institution: two digits, 00–99 (the msgid slot of
    spec/host.md §1, and the end of the terminal's paasid ``institution-NN``)."""
    if not re.fullmatch(r"[0-9]{2}", text):
        raise argparse.ArgumentTypeError(f"{text!r}: a terminal id is two digits, 00 to 99")
    return text


def check_output(path: Path, *, force: bool = False, inputs: Iterable[Path | None] = (),
                 option: str = "--out") -> None:
    """Refuse to write ``path`` where that would lose something: it is one of the command's
    own ``inputs`` (a card image, say), it is not a regular file (a directory, a device;
    a symbolic link counts as what it points to), it exists and ``force`` is not given, or
    its directory does not exist."""
    for src in inputs:
        if src is not None and path.exists() and src.exists() and path.samefile(src):
            raise CliError(f"{option} {path} is the command's own input file: choose another "
                           "file")
    if path.exists():                        # a symbolic link: what it points to
        mode = path.stat().st_mode
        if stat.S_ISDIR(mode):
            raise CliError(f"{option} {path} is a directory: name a file")
        if not stat.S_ISREG(mode):
            raise CliError(f"{option} {path} is not a regular file: choose another file")
        if not force:
            raise CliError(f"{path} already exists; choose another {option} or add --force")
    parent = Path(os.path.realpath(path)).parent
    if parent.exists() and not parent.is_dir():
        raise CliError(f"{option} {path}: {parent} is a file, not a directory")
    if not parent.is_dir():
        raise CliError(f"directory {parent} does not exist; create it first")

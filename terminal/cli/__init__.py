"""The ``sscard`` command line.

Every module in this package named ``cmd_*.py`` contributes subcommands through a
``register(subparsers)`` function and sets ``func`` on its parsers; ``main`` discovers them,
so adding a command never means editing a central list. A command reports failure by raising
:class:`CliError` (or any error of the sscard packages): ``main`` prints one clear line and
exits non-zero, never a traceback (set ``SSCARD_DEBUG=1`` to see one).
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys
from collections.abc import Sequence


class CliError(Exception):
    """A failure to report to the user: a message saying what happened and what to do."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


EPILOG_HEAD = "examples (one per command; `sscard COMMAND --help` shows more):"
EPILOG_TAIL = "  sscard COMMAND --help\n"


def _first_example(epilog: str | None) -> str | None:
    """The first ``sscard …`` line of a subcommand's epilog."""
    lines = (epilog or "").splitlines()
    for i, line in enumerate(lines):
        text = line.strip().removeprefix("$ ")
        if not text.startswith("sscard "):
            continue
        while text.endswith("\\") and i + 1 < len(lines):  # shell line continuation
            i += 1
            text = text[:-1].rstrip() + " " + lines[i].strip()
        return text.split("   ")[0].rstrip()
    return None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sscard",
        description="China social security card (社会保障卡) terminal, card and reader toolkit.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    pkg_path = os.path.dirname(__file__)
    for info in sorted(pkgutil.iter_modules([pkg_path]), key=lambda m: m.name):
        if info.name.startswith("cmd_"):
            module = importlib.import_module(f"{__name__}.{info.name}")
            module.register(sub)
    examples = [EPILOG_HEAD]
    for sub_parser in dict.fromkeys(sub.choices.values()):
        example = _first_example(sub_parser.epilog)
        if example:
            examples.append(f"  {example}")
    parser.epilog = "\n".join(examples) + "\n" + EPILOG_TAIL
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    debug = args.debug or os.environ.get("SSCARD_DEBUG") == "1"
    try:
        rc = args.func(args)
    except KeyboardInterrupt as exc:   # Ctrl-C, or SIGTERM where a command stops cleanly
        from terminal.sim.hostproc import Terminated

        terminated = isinstance(exc, Terminated)
        print(f"sscard: {'terminated' if terminated else 'interrupted'}", file=sys.stderr)
        return 143 if terminated else 130
    except CliError as exc:
        if debug:
            raise
        print(f"sscard: {exc}", file=sys.stderr)
        return exc.exit_code
    except BrokenPipeError:
        return 1
    except Exception as exc:  # the last line of defence: a message, never a traceback
        if debug:
            raise
        print(f"sscard: {describe(exc)}", file=sys.stderr)
        return 1
    return int(rc or 0)


_OWN = ("apdu", "card", "reader", "ledger", "terminal")


def describe(exc: BaseException) -> str:
    """One line for an error: sscard's own errors speak for themselves; a file the system
    refused is named with the reason; anything else keeps its type for a bug report."""
    if isinstance(exc, OSError) and exc.strerror:
        names = " -> ".join(str(f) for f in (exc.filename, exc.filename2) if f is not None)
        return f"{names}: {exc.strerror}" if names else exc.strerror
    if type(exc).__module__.split(".")[0] in _OWN and str(exc):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


if __name__ == "__main__":
    sys.exit(main())

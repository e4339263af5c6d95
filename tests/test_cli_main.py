"""The ``sscard`` entry point: discovery of commands, help, and error reporting."""

from __future__ import annotations

import pytest

from terminal.cli import CliError, build_parser, main


def test_help_lists_every_command_with_an_example(capsys: pytest.CaptureFixture[str]) -> None:
    parser = build_parser()
    text = parser.format_help()
    commands = [c for c in ("card", "host", "read", "apdu", "pin", "checkout", "terminal")]
    for command in commands:
        assert f"    {command}" in text
        assert f"  sscard {command}" in text.split("examples", 1)[1]


def test_cli_error_is_one_line_and_nonzero(capsys: pytest.CaptureFixture[str],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(args: object) -> int:
        raise CliError("card locked; reset it at a bank counter", exit_code=3)

    parser = build_parser()
    args = parser.parse_args(["doctor"])
    monkeypatch.setattr("terminal.cli.build_parser", lambda: _Fixed(parser, args, boom))
    assert main(["doctor"]) == 3
    err = capsys.readouterr().err
    assert err.strip() == "sscard: card locked; reset it at a bank counter"


def test_unexpected_error_has_no_traceback(capsys: pytest.CaptureFixture[str],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(args: object) -> int:
        raise RuntimeError("disk on fire")

    parser = build_parser()
    args = parser.parse_args(["doctor"])
    monkeypatch.setattr("terminal.cli.build_parser", lambda: _Fixed(parser, args, boom))
    assert main(["doctor"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and "disk on fire" in err


class _Fixed:
    """A parser stand-in returning fixed arguments whose command is ``func``."""

    def __init__(self, parser: object, args: object, func: object) -> None:
        self._args = args
        self._args.func = func  # type: ignore[attr-defined]

    def parse_args(self, argv: object) -> object:
        return self._args

    def print_help(self) -> None:  # pragma: no cover
        pass

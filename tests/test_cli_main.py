"""The ``sscard`` entry point: discovery of commands, help, and error reporting."""

from __future__ import annotations

from pathlib import Path

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


@pytest.mark.parametrize("exc, line", [
    (FileNotFoundError(2, "No such file or directory", "/x/photo.jpg"),
     "/x/photo.jpg: No such file or directory"),
    (IsADirectoryError(21, "Is a directory", "/tmp/a.tmp", None, "/tmp/adir"),
     "/tmp/a.tmp -> /tmp/adir: Is a directory"),
    (__import__("ledger.errors", fromlist=["PolicyError"]).PolicyError("no policy for 999999"),
     "no policy for 999999"),
    (KeyError("bogus"), "KeyError: 'bogus'"),     # not ours: keeps its type for a bug report
])
def test_an_error_is_described_in_one_plain_line(exc: Exception, line: str) -> None:
    from terminal.cli import describe
    assert describe(exc) == line


def test_argument_types_refuse_what_no_command_can_use() -> None:
    import argparse
    import math

    from terminal.cli.args import count, minutes, seconds
    for bad in ("nan", "inf", "-1", "x", "0", "1e12"):
        with pytest.raises(argparse.ArgumentTypeError):
            seconds()(bad)
    assert seconds(zero=True)("0") == 0 and seconds()("2.5") == 2.5
    with pytest.raises(argparse.ArgumentTypeError):
        seconds(zero=True)("-0.1")
    for bad in ("nan", "-inf", "0", "a", "1e9"):
        with pytest.raises(argparse.ArgumentTypeError):
            minutes(bad)
    assert math.isclose(minutes("0.5"), 0.5)
    with pytest.raises(argparse.ArgumentTypeError, match="from 1 to 9"):
        count(1, 9)("10")
    with pytest.raises(argparse.ArgumentTypeError, match="whole number"):
        count()("1.5")
    assert count(0)("0") == 0


def test_an_output_file_never_replaces_an_input_a_directory_or_a_device(
        tmp_path: Path) -> None:
    from terminal.cli.args import check_output
    card = tmp_path / "card.json"
    card.write_text("{}")
    link = tmp_path / "link.json"
    link.symlink_to(card)
    with pytest.raises(CliError, match="own input"):
        check_output(link, force=True, inputs=[card], option="--photo")
    with pytest.raises(CliError, match="is a directory"):
        check_output(tmp_path, force=True)
    with pytest.raises(CliError, match="not a regular file"):
        check_output(Path("/dev/null"), force=True)
    with pytest.raises(CliError, match="already exists; choose another --trace or add --force"):
        check_output(card, option="--trace")
    with pytest.raises(CliError, match="does not exist; create it first"):
        check_output(tmp_path / "no" / "x.jpg")
    with pytest.raises(CliError, match=r"card\.json is a file, not a directory"):
        check_output(card / "x.jpg")
    check_output(card, force=True)                  # an ordinary file, with --force
    check_output(link, force=True)                  # a link to one
    devlink = tmp_path / "dev.json"
    devlink.symlink_to("/dev/null")
    with pytest.raises(CliError, match="not a regular file"):
        check_output(devlink, force=True)
    check_output(tmp_path / "new.jpg")
    assert card.read_text() == "{}"

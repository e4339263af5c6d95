"""``sscard terminal --terminal-id``: each terminal of an institution signs in under its own
number, so its message ids never collide with another terminal's (ledger/client.py numbers
msgids per terminal id)."""

from __future__ import annotations

import argparse

import pytest

from ledger.client import terminal_slot
from terminal.cli import cmd_terminal
from tests.ui.conftest import World


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="sscard")
    cmd_terminal.register(top.add_subparsers())
    return top


def test_the_default_id_is_not_the_scripted_checkouts() -> None:
    args = parser().parse_args(["terminal"])
    assert args.terminal_id == "02"
    assert terminal_slot(args.terminal_id) != terminal_slot("01")  # sscard checkout's
    assert parser().parse_args(["terminal", "--terminal-id", "07"]).terminal_id == "07"


def test_help_says_every_terminal_needs_its_own_id(
        capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parser().parse_args(["terminal", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--terminal-id ID" in text
    assert "every terminal of an institution needs its own id" in text.lower()


def test_the_stack_signs_in_under_the_terminal_id(world: World) -> None:
    stack = cmd_terminal.build_stack(mode="pharmacy", data_dir=world.data, host=world.url,
                                     watch=False, terminal_id="07")
    world.stacks.append(stack)
    host = stack.services.host
    assert host.client.terminal_id == "07"
    other = stack.services.host_at("H37080000001")
    assert other.client.terminal_id == "07"
    default = world.stack("pharmacy")
    assert default.services.host.client.terminal_id == "02"

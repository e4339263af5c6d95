"""The power-cut campaign (spec/card.md §7): no cut buys an extra PIN guess, no cut corrupts
the card image — and the campaign's checks catch a card that gets either wrong."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from card import image as image_mod
from card import pin as pin_mod
from card.image import FileStore, PinRecord, dumps, seal
from terminal.sim.powercut import run_campaign


@pytest.mark.parametrize("algorithm", ["SM4", "3DES"])
def test_campaign_finds_no_violation(algorithm: str, tmp_path: Path) -> None:
    result = run_campaign(700, seed=20261128, algorithm=algorithm, directory=tmp_path)
    assert result.violations == []
    assert result.runs == 700
    # the campaign really cut power, at the points that matter, and exercised every command
    assert result.cuts > 400
    for name in ("pin.decremented", "pin.compared", "commit.write", "commit.before"):
        assert result.cut_at[name] > 0, name
    for op in ("verify_ok", "verify_wrong", "change_ok", "change_wrong", "reload"):
        assert result.by_op[op] > 0, op
    assert result.wrong_guesses_compared > 0
    assert result.blocked_reached > 0


def _unsafe_evaluate(record: PinRecord, candidate: str, max_tries: int,
                     commit: Callable[[], None], step: Callable[[str], None]) -> bool:
    """Compare first, count afterwards: the classic tearing bug."""
    step("pin.before_decrement")
    ok = record.matches(candidate)
    step("pin.compared")
    if ok:
        record.tries_left = max_tries
    else:
        record.tries_left -= 1
    commit()
    step("pin.decremented")
    return ok


def test_campaign_catches_a_card_that_compares_before_counting(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(pin_mod, "evaluate", _unsafe_evaluate)
    result = run_campaign(400, seed=5, directory=tmp_path)
    assert any("extra guess" in v or "wrong PIN compared" in v for v in result.violations)


def test_campaign_catches_a_torn_image_write(monkeypatch: pytest.MonkeyPatch,
                                             tmp_path: Path) -> None:
    def torn_save(self: FileStore, doc: dict[str, Any],
                  before_commit: Callable[[], None] | None = None) -> None:
        text = dumps(seal(doc), self.toml)
        with open(self.path, "w", encoding="utf-8") as fh:  # in place, not atomic
            fh.write(text[: len(text) // 2])
            fh.flush()
            if before_commit is not None:
                before_commit()
            fh.write(text[len(text) // 2:])

    monkeypatch.setattr(image_mod.FileStore, "save", torn_save)
    result = run_campaign(300, seed=11, directory=tmp_path)
    assert any("image unreadable" in v for v in result.violations)

"""Fault injection (card.faults) and the card's physical-event contract."""

from __future__ import annotations

import errno
import os
import time
from pathlib import Path

import pytest

from card.cos import VirtualCard
from card.errors import CardEvent, CardNotPowered, CardRemoved, PowerCut
from card.image import CardImage, dumps
from tests.card.helpers import SSSE_NAME, make_card, make_issued, tx

AID = "A000000333010101"


def test_power_cut_is_a_connection_error_and_the_card_recovers() -> None:
    card = make_card()
    card.faults.power_cut_at("command.received")
    with pytest.raises(PowerCut) as info:
        card.transmit(b"\x00\x84\x00\x00\x08")
    assert isinstance(info.value, ConnectionError)
    with pytest.raises(CardNotPowered):
        card.transmit(b"\x00\x84\x00\x00\x08")
    card.power_on()
    assert tx(card, "0084000008")[1] == 0x9000


def test_card_pulled_mid_command_loses_the_answer_but_keeps_what_it_committed() -> None:
    card = make_card("CCB")
    tx(card, "00A4040008" + AID)
    card.faults.pull_at(0)
    with pytest.raises(CardRemoved):
        card.transmit(bytes.fromhex("80A80000048302015600"))
    assert CardImage.from_doc(card.store.load()).atc == 1  # the GPO had committed its ATC
    with pytest.raises(CardRemoved):
        card.power_on()
    card.insert()
    card.power_on()
    tx(card, "00A4040008" + AID)
    _out, sw = tx(card, "80A80000048302015600")
    assert sw == 0x9000 and card.image.atc == 2


def test_card_pulled_at_a_checkpoint_of_a_later_command() -> None:
    card = make_card()
    card.faults.pull_at(1, step="pin.decremented")
    assert tx(card, "0084000008")[1] == 0x9000
    with pytest.raises(CardRemoved):
        card.transmit(bytes.fromhex("0020000003123456"))
    card.insert()
    card.power_on()
    assert tx(card, "00200000")[1] == 0x63C2  # the decrement was durable


def test_power_cut_by_checkpoint_index() -> None:
    card = make_card()
    card.faults.power_cut_at(0)
    with pytest.raises(CardEvent):
        card.transmit(b"\x00\x84\x00\x00\x08")
    assert card.faults.hits[-1] == "command.received"


def test_slow_card() -> None:
    card = make_card()
    card.faults.delay(0.05)
    t = time.monotonic()
    tx(card, "0084000008")
    assert time.monotonic() - t >= 0.05
    with pytest.raises(ValueError):
        card.faults.delay(-1)


def test_forced_status_word_for_a_chosen_command() -> None:
    card = make_card()
    card.faults.force_sw(0xA4, 0x6A82, times=2)
    sel = b"\x00\xa4\x04\x00\x0f" + SSSE_NAME
    assert tx(card, sel)[1] == 0x6A82
    assert tx(card, sel)[1] == 0x6A82
    assert tx(card, sel)[1] == 0x9000
    card.faults.force_sw(0x20, 0x6581)
    for _ in range(3):
        assert tx(card, "0020000003111111")[1] == 0x6581
    assert card.image.pins["ssse"].tries_left == 3  # forced answers do not execute
    card.faults.clear()
    assert tx(card, "00200000")[1] == 0x63C3


def test_internal_error_answers_6f00_and_the_card_stays_usable(
        monkeypatch: pytest.MonkeyPatch) -> None:
    card = make_card()
    tx(card, "0020000003111111")

    def boom(self: VirtualCard, cmd: object) -> tuple[bytes, int]:
        self.image.pins["ssse"].tries_left = 3  # an uncommitted change that must be dropped
        raise RuntimeError("bug")

    from card import cos

    monkeypatch.setitem(cos._HANDLERS, (0x00, 0x84), boom)
    assert tx(card, "0084000008")[1] == 0x6F00
    assert card.image.pins["ssse"].tries_left == 2
    monkeypatch.undo()
    assert tx(card, "0084000008")[1] == 0x9000


def test_a_failed_image_write_answers_6581_and_changes_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "card.json"
    path.write_text(dumps(make_issued().doc))
    card = VirtualCard.from_image(path)
    real_fsync = os.fsync

    def disk_full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    assert tx(card, "0020000003111111")[1] == 0x6581
    assert card.image.pins["ssse"].tries_left == 3  # nothing compared, nothing counted
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["card.json"]
    assert tx(card, "0020000003111111")[1] == 0x63C2

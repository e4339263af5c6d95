"""PIN behaviour (spec/card.md §5, §7): counting, blocking, change, unblock, reload, tearing."""

from __future__ import annotations

from pathlib import Path

import pytest

from card.cos import VirtualCard
from card.errors import PowerCut
from card.image import CardImage, FileStore, dumps
from tests.card.helpers import SSSE_NAME, Terminal, make_card, make_issued, make_psam, tx

AID = "A000000333010101"


def select_ssse(card: VirtualCard) -> None:
    assert tx(card, b"\x00\xa4\x04\x00\x0f" + SSSE_NAME)[1] == 0x9000


def durable_tries(card: VirtualCard, name: str = "ssse") -> int:
    return CardImage.from_doc(card.store.load()).pins[name].tries_left


def test_wrong_pins_count_down_then_block() -> None:
    card = make_card()
    assert tx(card, "00200000")[1] == 0x63C3
    assert tx(card, "0020000003111111")[1] == 0x63C2
    assert tx(card, "0020000003111111")[1] == 0x63C1
    assert tx(card, "0020000003111111")[1] == 0x63C0
    assert tx(card, "0020000003123456")[1] == 0x6983  # even the right PIN
    assert tx(card, "00200000")[1] == 0x6983
    assert durable_tries(card) == 0


def test_correct_pin_resets_counter_and_stays_verified_until_reset() -> None:
    card = make_card()
    tx(card, "0020000003111111")
    assert tx(card, "0020000003123456")[1] == 0x9000
    assert durable_tries(card) == 3
    assert tx(card, "00200000")[1] == 0x9000
    card.reset()
    assert tx(card, "00200000")[1] == 0x63C3
    tx(card, "0020000003123456")
    card.power_off()
    card.power_on()
    assert tx(card, "00200000")[1] == 0x63C3


def test_pin_guards_medical_files() -> None:
    card = make_card()
    select_ssse(card)
    assert tx(card, "00A4000002DF04")[1] == 0x9000
    assert tx(card, "00B2812800")[1] == 0x6982  # SFI 5, tag 81
    tx(card, "0020000003123456")
    rec, sw = tx(card, "00B281280A")
    assert sw == 0x9000 and rec[2:5] == b"310"


def test_emv_pin_block_format_and_malformed_pin_data() -> None:
    card = make_card()
    assert tx(card, "00200080082612345 6FFFFFFFF".replace(" ", ""))[1] == 0x9000
    card.reset()
    assert tx(card, "00200000021A2B")[1] == 0x6A80  # not BCD: no try spent
    assert durable_tries(card) == 3
    assert tx(card, "0020000103123456")[1] == 0x6A86


def test_change_pin() -> None:
    card = make_card()
    assert tx(card, "805E010007999999FF654321")[1] == 0x63C2
    assert tx(card, "805E010007123456FF654321")[1] == 0x9000
    assert card.image.pins["ssse"].initial is False
    card.reset()
    assert tx(card, "0020000003123456")[1] == 0x63C2
    assert tx(card, "0020000003654321")[1] == 0x9000
    assert tx(card, "805E010006123456654321")[1] == 0x6A80  # no FF separator
    assert tx(card, "805E010107123456FF654321")[1] == 0x6A86


def test_counter_survives_restarts(tmp_path: Path) -> None:
    path = tmp_path / "card.json"
    path.write_text(dumps(make_issued().doc))
    card = VirtualCard.from_image(path)
    tx(card, "0020000003111111")
    tx(card, "0020000003111111")
    again = VirtualCard.from_image(path)
    assert tx(again, "00200000")[1] == 0x63C1


@pytest.mark.parametrize("correct", [False, True])
def test_power_cut_at_every_point_of_verify_never_gives_a_free_guess(
        tmp_path: Path, correct: bool) -> None:
    path = tmp_path / "card.json"
    path.write_text(dumps(make_issued().doc))
    pin = "123456" if correct else "111111"
    # how many checkpoints does one VERIFY pass?
    probe = VirtualCard(FileStore(path))
    before = len(probe.faults.hits)
    tx(probe, "0020000003" + pin)
    n = len(probe.faults.hits) - before
    path.write_text(dumps(make_issued().doc))
    assert n >= 6
    for k in range(n):
        path.write_text(dumps(make_issued().doc))
        card = VirtualCard(FileStore(path))
        tx(card, "0020000003111111")  # tries 2
        start = len(card.faults.hits)
        card.faults.power_cut_at(k)
        with pytest.raises(PowerCut):
            card.transmit(bytes.fromhex("0020000003" + pin))
        mine = card.faults.hits[start:]
        compared = "pin.compared" in mine
        tries = durable_tries(VirtualCard.from_image(path))
        if tries == 2:
            assert not compared, (k, mine)  # untouched counter: the PIN was never compared
        if compared and not correct:
            assert tries == 1, (k, mine)  # a compared wrong PIN is always paid for
        if compared and correct:
            assert tries in (1, 3), (k, mine)
        assert tries in (1, 2, 3)
        assert card.power_on()
        assert tx(card, "00200000")[1] == 0x63C0 | tries


def test_power_cut_mid_write_leaves_old_or_new_image(tmp_path: Path) -> None:
    path = tmp_path / "card.json"
    path.write_text(dumps(make_issued().doc))
    card = VirtualCard.from_image(path)
    card.faults.power_cut_at("commit.write")
    with pytest.raises(PowerCut):
        card.transmit(bytes.fromhex("0020000003111111"))
    # the temp file was durable but never renamed: the old image stands, no guess was compared
    assert durable_tries(VirtualCard.from_image(path)) == 3
    assert "pin.compared" not in card.faults.hits
    assert [p.name for p in tmp_path.iterdir()] == ["card.json"]


def test_separate_policy_gives_the_bank_its_own_pin() -> None:
    card = make_card(pin_policy="separate")
    assert tx(card, "0020000003111111")[1] == 0x63C2  # SSSE PIN
    assert tx(card, "00A4040008" + AID)[1] == 0x9000
    assert tx(card, "00200000")[1] == 0x63C3  # bank PIN untouched
    assert tx(card, "0020000003123456")[1] == 0x9000
    assert durable_tries(card, "ssse") == 2
    assert durable_tries(card, "bank") == 3


def test_shared_policy_bank_and_ssse_share_one_counter() -> None:
    card = make_card()
    assert tx(card, "00A4040008" + AID)[1] == 0x9000
    assert tx(card, "0020008008261111 11FFFFFFFF".replace(" ", ""))[1] == 0x63C2
    select_ssse(card)
    assert tx(card, "00200000")[1] == 0x63C2


@pytest.mark.parametrize("algorithm", ["SM4", "3DES"])
def test_unblock_and_reload_through_the_psam(algorithm: str) -> None:
    card = make_card(algorithm=algorithm, locked=True)
    term = Terminal(card, make_psam())
    assert tx(card, "00200000")[1] == 0x6983
    assert term.unblock_pin() == 0x9000
    assert tx(card, "00200000")[1] == 0x63C3
    assert tx(card, "0020000003123456")[1] == 0x9000  # unblock keeps the PIN
    assert term.reload_pin("24680135") == 0x9000
    card.reset()
    assert tx(card, "0020000003123456")[1] == 0x63C2
    assert tx(card, "002000000424680135")[1] == 0x9000


def test_issuer_commands_refuse_bad_mac_and_missing_challenge() -> None:
    card = make_card(locked=True)
    assert tx(card, "842400000411223344")[1] == 0x6984  # no challenge
    tx(card, "0084000008")
    assert tx(card, "842400000411223344")[1] == 0x9302
    assert tx(card, "842400000411223344")[1] == 0x6984  # the challenge was consumed
    assert durable_tries(card) == 0
    assert tx(card, "84240002")[1] == 0x6A86
    tx(card, "0084000008")
    assert tx(card, "8424000108" + "00" * 8)[1] == 0x6700  # SM4 reload needs 16 + 4


def test_separate_policy_unblock_of_the_bank_pin_uses_kid_02() -> None:
    card = make_card(pin_policy="separate", locked=True)
    term = Terminal(card, make_psam())
    term.session(0x03, 0x02)  # BPUK session (the helper selects SSSE to learn the algorithm)
    assert tx(card, "00A4040008" + AID)[1] == 0x9000
    m = term.mac(bytes.fromhex("84240000"), b"")
    assert tx(card, b"\x84\x24\x00\x00\x04" + m)[1] == 0x9000
    assert durable_tries(card, "bank") == 3
    assert durable_tries(card, "ssse") == 0

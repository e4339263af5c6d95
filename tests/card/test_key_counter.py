"""The EXTERNAL AUTHENTICATE key error counter (card/keyauth.py; spec/card.md §5, §7, ISO 7816-4):
63Cx counting down, 6983 once blocked, durable before the answer, tearing-safe."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from card.cos import VirtualCard
from card.errors import ImageError, IssueError, PowerCut
from card.image import CardImage, FileStore, check_seal, dumps, read_document, seal
from terminal.cli import main
from tests.card.helpers import Terminal, make_issued, make_psam, tx

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "cards"
KEY_CUTS = ("key.before_decrement", "commit.before", "commit.write", "commit.after",
            "key.decremented", "key.compared", "key.restored", "command.done")
_BASE = {m: make_issued(key_max_tries=m).doc for m in (1, 3, 6)}


def card_from(doc: dict[str, Any]) -> tuple[VirtualCard, Terminal]:
    card = VirtualCard.from_doc(doc)
    return card, Terminal(card, make_psam())


def wrong_auth(card: VirtualCard | Any) -> int:
    """EXTERNAL AUTHENTICATE RKSSSE with fresh challenges and a cryptogram of zeros."""
    tx(card, "0084000008")
    c2, _ = tx(card, "0084000008")
    return tx(card, b"\x00\x82\x00\x0a\x10" + bytes(8) + c2)[1]


def durable_tries(card: VirtualCard) -> int:
    return CardImage.from_doc(card.store.load()).key_tries_left("RKSSSE")


def ef06_sw(card: VirtualCard) -> int:
    assert tx(card, "00A4020002EF06")[1] == 0x9000
    return tx(card, "00B2080014")[1]


def old_image_doc() -> dict[str, Any]:
    """An image as written before the key counters existed: neither field, sealed."""
    doc = copy.deepcopy(make_issued().doc)
    del doc["policy"]["key_max_tries"]
    del doc["counters"]["key_tries_left"]
    return seal(doc)


def test_wrong_cryptograms_count_down_then_the_key_is_blocked() -> None:
    card, term = card_from(_BASE[3])
    term.alg()
    assert [wrong_auth(card) for _ in range(3)] == [0x63C2, 0x63C1, 0x63C0]
    assert wrong_auth(card) == 0x6983
    assert term.external_auth() == 0x6983  # even the right cryptogram
    assert durable_tries(card) == 0
    assert ef06_sw(card) == 0x6982  # the holder file stays shut
    assert tx(card, "00B0880000")[1] == 0x6982  # and so does the photo
    card.power_off()
    card.power_on()
    assert Terminal(card, make_psam()).external_auth() == 0x6983


def test_a_right_cryptogram_resets_the_counter() -> None:
    card, term = card_from(_BASE[3])
    term.alg()
    assert [wrong_auth(card), wrong_auth(card)] == [0x63C2, 0x63C1]
    assert term.external_auth() == 0x9000
    assert durable_tries(card) == 3
    assert ef06_sw(card) == 0x9000
    assert wrong_auth(card) == 0x63C2  # a full counter again; the failure ends the access
    assert ef06_sw(card) == 0x6982


def test_a_right_cryptogram_leaves_a_full_counter_full() -> None:
    card, term = card_from(_BASE[3])
    assert term.external_auth() == 0x9000
    assert durable_tries(card) == 3
    assert card.store.load()["counters"]["key_tries_left"] == {"RKSSSE": 3}


def test_other_errors_cost_no_try() -> None:
    card, term = card_from(_BASE[3])
    term.alg()
    assert tx(card, "0082000A10" + "00" * 16)[1] == 0x6984  # no challenge
    tx(card, "0084000008")
    tx(card, "0084000008")
    assert tx(card, "0082000A08" + "00" * 8)[1] == 0x6700
    assert tx(card, "0082000B10" + "00" * 16)[1] == 0x6A88
    assert tx(card, "0082010A10" + "00" * 16)[1] == 0x6A86
    assert durable_tries(card) == 3
    assert term.external_auth() == 0x9000


def test_a_blocked_key_answers_6983_even_without_a_challenge() -> None:
    card, _ = card_from(_BASE[1])
    assert wrong_auth(card) == 0x63C0
    assert tx(card, "0082000A10" + "00" * 16)[1] == 0x6983  # no challenge, still blocked
    assert tx(card, "0082000A08" + "00" * 8)[1] == 0x6700  # a malformed command stays 6700
    assert tx(card, "0082000B10" + "00" * 16)[1] == 0x6A88


def test_the_counter_survives_reloading_the_image(tmp_path: Path) -> None:
    path = tmp_path / "card.json"
    path.write_text(dumps(make_issued().doc))
    card = VirtualCard.from_image(path)
    assert wrong_auth(card) == 0x63C2
    assert wrong_auth(card) == 0x63C1
    again = VirtualCard.from_image(path)
    check_seal(read_document(path))
    assert again.image.key_tries_left("RKSSSE") == 1
    assert wrong_auth(again) == 0x63C0
    third = VirtualCard.from_image(path)
    assert Terminal(third, make_psam()).external_auth() == 0x6983
    assert read_document(path)["counters"]["key_tries_left"] == {"RKSSSE": 0}


@pytest.mark.parametrize("right", [False, True])
def test_a_power_cut_anywhere_in_the_command_never_gains_a_guess(
        tmp_path: Path, right: bool) -> None:
    """Cut the power at every checkpoint EXTERNAL AUTHENTICATE passes: a cryptogram that
    was compared is always paid for (the rule spec/card.md §7 gives the PIN)."""
    path = tmp_path / "card.json"

    def fresh() -> VirtualCard:
        path.write_text(dumps(make_issued().doc))
        card = VirtualCard(FileStore(path))
        assert wrong_auth(card) == 0x63C2  # 2 tries left
        return card

    def attempt(card: VirtualCard, cut: int | None) -> int:
        """Send a right or wrong cryptogram; arm the cut just before the command."""
        term = Terminal(card, make_psam())
        c1, c2 = term.challenge(), term.challenge()
        auth = bytes(8)
        if right:
            p1 = term.p1(0x02)
            assert tx(term.psam, bytes([0xBF, 0xDE, p1, 0x0A, 0x10]) + term.factor
                      + c1)[1] == 0x9000
            auth, _ = tx(term.psam, b"\x80\xfa\x08\x00\x08" + c2)
        armed.append(len(card.faults.hits))
        if cut is not None:
            card.faults.power_cut_at(cut)
        return tx(card, b"\x00\x82\x00\x0a\x10" + auth + c2)[1]

    armed: list[int] = []
    probe = fresh()
    assert attempt(probe, None) == (0x9000 if right else 0x63C1)
    steps = probe.faults.hits[armed[-1]:]  # the checkpoints of EXTERNAL AUTHENTICATE
    assert steps.index("key.decremented") < steps.index("key.compared")
    assert len(steps) >= 8
    for k in range(len(steps)):
        card = fresh()
        with pytest.raises(PowerCut):
            attempt(card, k)
        mine = card.faults.hits[armed[-1]:]
        assert mine == steps[:k + 1], (k, mine)
        compared = "key.compared" in mine
        tries = durable_tries(VirtualCard.from_image(path))
        if tries == 2:
            assert not compared, (k, mine)  # counter untouched: nothing was compared
        if compared and not right:
            assert tries == 1, (k, mine)  # a compared wrong cryptogram is always paid for
        assert tries in ((1, 2, 3) if right else (1, 2)), (k, mine)
        assert card.power_on()
        assert wrong_auth(card) == 0x63C0 | (tries - 1)


def test_a_power_cut_while_writing_the_decrement_keeps_the_old_counter(
        tmp_path: Path) -> None:
    path = tmp_path / "card.json"
    path.write_text(dumps(make_issued().doc))
    card = VirtualCard.from_image(path)
    tx(card, "0084000008")
    c2, _ = tx(card, "0084000008")
    card.faults.power_cut_at("commit.write")
    with pytest.raises(PowerCut):
        card.transmit(b"\x00\x82\x00\x0a\x10" + bytes(8) + c2)
    assert "key.compared" not in card.faults.hits  # nothing was compared ...
    assert durable_tries(VirtualCard.from_image(path)) == 3  # ... so nothing was counted
    assert [p.name for p in tmp_path.iterdir()] == ["card.json"]


def test_an_image_without_the_counter_loads_with_the_default(tmp_path: Path) -> None:
    doc = old_image_doc()
    image = CardImage.from_doc(doc)
    assert image.key_max_tries == 3 and image.key_tries == {"RKSSSE": 3}
    path = tmp_path / "old.json"
    path.write_text(dumps(doc))
    card = VirtualCard.from_image(path)
    assert Terminal(card, make_psam()).external_auth() == 0x9000
    assert wrong_auth(card) == 0x63C2
    saved = read_document(path)
    check_seal(saved)  # the card's write added both fields under a valid seal
    assert saved["schema"] == 1
    assert saved["policy"]["key_max_tries"] == 3
    assert saved["counters"]["key_tries_left"] == {"RKSSSE": 2}


@pytest.mark.parametrize("name", ["zhang-san", "wang-wu", "sun-li"])
def test_the_fixture_images_load_with_full_counters(name: str) -> None:
    doc = json.loads((FIXTURES / f"{name}.json").read_text("utf-8"))
    check_seal(doc)
    image = CardImage.from_doc(doc)
    assert image.key_max_tries == 3 and image.key_tries_left("RKSSSE") == 3


@pytest.mark.parametrize("mutate,field", [
    (lambda d: d["counters"]["key_tries_left"].update(RKSSSE=4),
     "counters.key_tries_left.RKSSSE"),
    (lambda d: d["counters"]["key_tries_left"].update(RKSSSE=True),
     "counters.key_tries_left.RKSSSE"),
    (lambda d: d["counters"]["key_tries_left"].update(IRK=3), "counters.key_tries_left.IRK"),
    (lambda d: d["counters"].update(key_tries_left=[3]), "counters.key_tries_left"),
    (lambda d: d["policy"].update(key_max_tries=0), "policy.key_max_tries"),
    (lambda d: d["policy"].update(key_max_tries=16), "policy.key_max_tries"),
    (lambda d: d["policy"].update(key_max_tries="3"), "policy.key_max_tries"),
])
def test_a_bad_counter_names_the_field(mutate: Any, field: str) -> None:
    doc = copy.deepcopy(make_issued().doc)
    mutate(doc)
    with pytest.raises(ImageError) as info:
        CardImage.from_doc(seal(doc))
    assert info.value.field == field


def test_a_hand_edited_counter_breaks_the_seal(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    doc = copy.deepcopy(make_issued().doc)
    doc["counters"]["key_tries_left"]["RKSSSE"] = 0
    path.write_text(dumps(seal(doc)))
    card = VirtualCard.from_image(path)
    assert Terminal(card, make_psam()).external_auth() == 0x6983
    edited = read_document(path)
    edited["counters"]["key_tries_left"]["RKSSSE"] = 3  # "unblocked" by hand
    path.write_text(dumps(edited))
    with pytest.raises(ImageError) as info:
        VirtualCard.from_image(path)
    assert info.value.field == "counters"


def test_issue_checks_the_limit() -> None:
    assert make_issued(key_max_tries=6).doc["policy"]["key_max_tries"] == 6
    for bad in (0, 16):
        with pytest.raises(IssueError):
            make_issued(key_max_tries=bad)


@settings(max_examples=60)
@given(max_tries=st.sampled_from(sorted(_BASE)), script=st.lists(st.booleans(), max_size=14))
def test_tries_left_is_max_minus_failures_since_the_last_success(
        max_tries: int, script: list[bool]) -> None:
    """Any sequence of right (True) and wrong (False) cryptograms: tries left = max − the
    consecutive failures since the last success, floored at 0; blocked exactly at 0, and
    a blocked key refuses the right cryptogram too."""
    card, term = card_from(_BASE[max_tries])
    term.alg()
    failures = 0
    for right in script:
        tries_before = max(max_tries - failures, 0)
        answer = term.external_auth() if right else wrong_auth(card)
        if tries_before == 0:
            assert answer == 0x6983
        elif right:
            assert answer == 0x9000
            failures = 0
        else:
            failures += 1
            assert answer == 0x63C0 | (max_tries - failures)
        expected = max(max_tries - failures, 0)
        assert card.image.key_tries_left("RKSSSE") == expected
        assert durable_tries(card) == expected
        assert ef06_sw(card) == (0x9000 if right and expected > 0 else 0x6982)


@settings(max_examples=40)
@given(steps=st.lists(st.tuples(st.booleans(), st.none() | st.sampled_from(KEY_CUTS)),
                      max_size=10))
def test_power_cuts_in_any_sequence_never_buy_a_guess(
        steps: list[tuple[bool, str | None]]) -> None:
    """Durable tries plus wrong cryptograms compared since the last durable reset never
    exceed the limit, however the power is cut."""
    card, term = card_from(_BASE[3])
    term.alg()
    wrong_compared = 0
    last = 3
    for right, cut in steps:
        start = len(card.faults.hits)
        if cut is not None:
            card.faults.power_cut_at(cut)
        try:
            _ = term.external_auth() if right else wrong_auth(card)
        except PowerCut:
            card.power_on()
            term = Terminal(card, term.psam)
            term.alg()
        card.faults.clear()
        mine = card.faults.hits[start:]
        now = durable_tries(card)
        if now > last:
            assert right, "the counter went up without a right cryptogram"
        if right and now == 3:
            wrong_compared = 0  # a durable reset (or nothing was ever spent)
        if not right and "key.compared" in mine:
            wrong_compared += 1
        last = now
        assert 0 <= now <= 3
        assert now + wrong_compared <= 3


def test_card_show_prints_the_key_tries(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "c.json"
    path.write_text(dumps(make_issued().doc))
    card = VirtualCard.from_image(path)
    wrong_auth(card)
    assert main(["card", "show", str(path)]) == 0
    assert "key RKSSSE  external authentication: 2 of 3 tries left" in capsys.readouterr().out
    wrong_auth(card)
    wrong_auth(card)
    assert main(["card", "show", str(path), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["key_tries"] == {"RKSSSE": {"tries_left": 0, "blocked": True}}
    assert info["policy"]["key_max_tries"] == 3
    assert main(["card", "show", str(path)]) == 0
    assert "key RKSSSE  external authentication: BLOCKED" in capsys.readouterr().out


def test_the_trace_names_the_key_not_the_pin() -> None:
    import io

    from reader.trace import TracedCard, TraceWriter

    card, term = card_from(_BASE[3])
    term.alg()
    buf = io.StringIO()
    traced = TracedCard(card, [TraceWriter(buf)])
    assert [wrong_auth(traced) for _ in range(4)] == [0x63C2, 0x63C1, 0x63C0, 0x6983]
    assert tx(traced, "0020000003654321")[1] == 0x63C2     # a wrong PIN, after them
    text = buf.getvalue()
    assert "external authentication failed, 2 tries left" in text
    assert "external authentication failed, 0 tries left" in text
    assert "key blocked" in text
    assert "wrong PIN, 2 tries left" in text

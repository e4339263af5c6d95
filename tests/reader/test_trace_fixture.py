"""A recorded terminal session (fixtures/reader/wang-wu-read.trace) used two ways: as a test
fixture checked against the card (in-process and through pcscd), and as a simulated card
the driver façade reads."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from apdu.cardbas import CardBasics
from card.cos import VirtualCard
from card.psam import VirtualPsam
from reader.facade import CardDriver
from reader.pcsc import PcscTransport
from reader.trace import TraceReplayCard, load_trace, pin_filler, replay_check
from reader.virtual import VirtualTransport
from tests.reader.conftest import SLOT_READERS, ServeFn

ROOT = Path(__file__).resolve().parents[2]
TRACE = ROOT / "fixtures" / "reader" / "wang-wu-read.trace"
CARDS = ROOT / "fixtures" / "cards"
LINE = ("370800|370826195507080016|J00000033|370800D15600000500000003CF1CEF06|王五|"
        "00814A44468660370800000003|2.00|20240506|20340506|370800000001||")


def fresh(tmp: Path, name: str = "wang-wu") -> VirtualCard:
    shutil.copy(CARDS / f"{name}.json", tmp / f"{name}.json")
    return VirtualCard.from_image(tmp / f"{name}.json", t0=True)


def psam() -> VirtualPsam:
    return VirtualPsam.from_doc(json.loads((CARDS / "psam-370800.json").read_text()), t0=True)


def test_trace_checks_the_card_and_the_psam(tmp_path: Path) -> None:
    trace = load_trace(TRACE)
    t = VirtualTransport.with_cards(fresh(tmp_path), psam())
    with t.connect("Virtual Card 0") as user, t.connect("Virtual PSAM 0") as sam:
        card_report = replay_check(trace, user, secrets=pin_filler("135790"))
        psam_report = replay_check(trace, sam, channel="psam")
    assert card_report.ok and card_report.steps == 21, str(card_report)
    assert psam_report.ok and psam_report.steps == 3, str(psam_report)


def test_trace_catches_a_different_card(tmp_path: Path) -> None:
    trace = load_trace(TRACE)
    with VirtualTransport.with_cards(fresh(tmp_path, "zhang-san")).connect(
            "Virtual Card 0") as user:
        report = replay_check(trace, user, secrets=pin_filler("135790"))
    assert not report.ok
    assert any("READ RECORD answered" in f for f in report.failures)
    with VirtualTransport.with_cards(fresh(tmp_path)).connect("Virtual Card 0") as user:
        wrong_pin = replay_check(trace, user, secrets=pin_filler("000000"))
    assert len(wrong_pin.failures) == 1 and "VERIFY answered 63C2" in wrong_pin.failures[0]


def test_the_facade_reads_a_simulated_card_from_the_trace() -> None:
    trace = load_trace(TRACE)
    card, sam = TraceReplayCard(trace), TraceReplayCard(trace, channel="psam",
                                                        atr=psam().atr())
    t = VirtualTransport.with_cards(card, sam)
    driver = CardDriver(t.connect("Virtual Card 0"), t.connect("Virtual PSAM 0"))
    assert driver.read_card_basics() == CardBasics.parse_line(LINE)
    driver.verify_pin("135790")  # masked in the trace: any PIN of that length matches
    assert card.mismatches == [] and sam.mismatches == []
    assert card.done and sam.done


@pytest.mark.pcscd
def test_trace_checks_the_card_through_pcscd(pcsc: PcscTransport, serve: ServeFn,
                                             tmp_path: Path) -> None:
    serve(fresh(tmp_path), slot=0)
    with pcsc.connect(SLOT_READERS[0]) as user:
        report = replay_check(load_trace(TRACE), user, secrets=pin_filler("135790"))
    assert report.ok, str(report)

"""The card-reading suite, run over the in-process reader and over pcscd + vpcd.

Every test drives the driver façade (spec/card.md §10) against the fixture cards of
``fixtures/cards`` and the area PSAM, either in-process
(``VirtualTransport``) or served to the real pcscd through vpcd (T=0 cards, slot 0 = user
card, slot 1 = PSAM) and read back through pyscard.
"""

from __future__ import annotations

import io
import json
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from apdu.cardbas import CardBasics
from apdu.iface import CardLike
from card.cos import VirtualCard
from card.psam import VirtualPsam
from reader.base import Connection
from reader.echo import EchoCard
from reader.errors import CardRefused, CardStatusError, ReaderError
from reader.facade import (
    CardDriver,
    KeyAuthFailed,
    KeyBlocked,
    PinFormatError,
    PinLocked,
    PinWrong,
    iChangePIN,
    iReadCard,
    iReadCardBas,
    iReloadPIN,
    iUnblockPIN,
    iVerifyPIN,
    iWriteCard,
)
from reader.trace import TraceWriter
from reader.virtual import VirtualTransport
from tests.reader.conftest import SLOT_READERS, wait_card

CARDS = Path(__file__).resolve().parents[2] / "fixtures" / "cards"
PSAM_FILE = CARDS / "psam-370800.json"
PINS = {"zhang-san": "246810", "li-si": "123456", "wang-wu": "135790", "maimaiti": "112233",
        "sun-li": "202020"}


@dataclass
class Rig:
    """Opens a driver over one kind of reader."""

    kind: str
    open_pair: Callable[[CardLike, CardLike | None], tuple[Connection, Connection | None]]
    t0: bool
    tmp: Path

    def card(self, name: str, mutate: Callable[[dict[str, Any]], None] | None = None,
             ) -> VirtualCard:
        """A fresh copy of a fixture card (the copy's file is the card)."""
        path = self.tmp / f"{name}.json"
        if mutate is None:
            shutil.copy(CARDS / f"{name}.json", path)
            return VirtualCard.from_image(path, t0=self.t0)
        doc = json.loads((CARDS / f"{name}.json").read_text("utf-8"))
        mutate(doc)
        return VirtualCard.from_doc(doc, t0=self.t0)

    def psam(self) -> VirtualPsam:
        return VirtualPsam.from_doc(json.loads(PSAM_FILE.read_text("utf-8")), t0=self.t0)

    def driver(self, card: CardLike, psam: bool | CardLike = True, **kw: Any) -> CardDriver:
        sam: CardLike | None = (self.psam() if psam is True
                                else None if psam is False else psam)
        user, sam_conn = self.open_pair(card, sam)
        return CardDriver(user, sam_conn, **kw)


@pytest.fixture(params=["inprocess", pytest.param("pcscd", marks=pytest.mark.pcscd)])
def rig(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Rig]:
    opened: list[Connection] = []
    if request.param == "inprocess":
        def open_pair(card: CardLike, psam: CardLike | None,
                      ) -> tuple[Connection, Connection | None]:
            t = VirtualTransport.with_cards(card, psam)
            user = t.connect("Virtual Card 0")
            sam = t.connect("Virtual PSAM 0") if psam is not None else None
            opened.extend(c for c in (user, sam) if c is not None)
            return user, sam

        yield Rig("inprocess", open_pair, False, tmp_path)
    else:
        serve = request.getfixturevalue("serve")
        from reader.pcsc import PcscTransport

        transport = PcscTransport()

        live: list[Any] = []

        def open_pair(card: CardLike, psam: CardLike | None,
                      ) -> tuple[Connection, Connection | None]:
            for c in opened:  # one pair at a time: take the previous cards out first
                c.disconnect()
            opened.clear()
            for server, slot in live:
                server.stop()
                wait_card(SLOT_READERS[slot], False)
            live.clear()
            live.append((serve(card, slot=0), 0))
            if psam is not None:
                live.append((serve(psam, slot=1), 1))
            user = transport.connect("Virtual PCD 00 00")
            sam = transport.connect("Virtual PCD 00 01") if psam is not None else None
            opened.extend(c for c in (user, sam) if c is not None)
            return user, sam

        yield Rig("pcscd", open_pair, True, tmp_path)
        for c in opened:
            c.disconnect()
        transport.close()
        return
    for c in opened:
        c.disconnect()


def identity(name: str) -> dict[str, str]:
    ident: dict[str, str] = json.loads((CARDS / f"{name}.json").read_text("utf-8"))["identity"]
    return ident


@pytest.mark.parametrize("name", ["zhang-san", "li-si", "wang-wu", "maimaiti", "zhao-min",
                                  "sun-li"])
def test_read_card_basics_of_every_fixture_card(rig: Rig, name: str) -> None:
    d = rig.driver(rig.card(name), terminal_device="POS-7")
    code, line = iReadCardBas(d)
    assert code == 0, line
    b = CardBasics.parse_line(line)
    ident = identity(name)
    assert b.area_code == ident["area_code"] == b.card_id_code[:6]
    assert b.ssn == ident["ssn"] and b.name == ident["name"]  # maimaiti needs record 4E
    assert b.card_number == ident["card_number"]
    assert b.card_id_code == ident["card_id_code"]
    assert b.atr_historical_hex == ident["historical"]
    assert b.spec_version == ident["generation"]
    assert (b.issue_date, b.expiry_date) == (ident["issue_date"], ident["expiry_date"])
    assert b.terminal_number == "370800000001" and b.terminal_device == "POS-7"
    assert d.authenticated


def test_card_with_wrong_keys_is_refused_as_not_genuine(rig: Rig) -> None:
    def forge(doc: dict[str, Any]) -> None:
        doc["keys"]["IRK"] = "00" * (len(doc["keys"]["IRK"]) // 2)

    d = rig.driver(rig.card("zhang-san", forge))
    code, text = iReadCardBas(d)
    assert code == -21 and "not genuine" in text
    assert not d.authenticated


def _forge_rkssse(doc: dict[str, Any]) -> None:
    doc["keys"]["RKSSSE"] = "11" * (len(doc["keys"]["RKSSSE"]) // 2)


def _block_rkssse(doc: dict[str, Any]) -> None:
    doc["counters"]["key_tries_left"] = {"RKSSSE": 0}


def test_wrong_read_key_refuses_the_holder_file(rig: Rig) -> None:
    code, text = iReadCardBas(rig.driver(rig.card("zhang-san", _forge_rkssse)))
    assert code == -0x63C2 == -25538  # the card status word (spec/card.md §10)
    assert "RKSSSE" in text and "2 tries left" in text


def test_a_wrong_read_key_counts_down_then_blocks(rig: Rig) -> None:
    """Each refused cryptogram costs the card's RKSSSE a try (63Cx); the try that reaches 0
    blocks it (63C0), and from then on the card answers 6983 (spec/card.md §7)."""
    d = rig.driver(rig.card("zhang-san", _forge_rkssse))
    for left in (2, 1):
        with pytest.raises(KeyAuthFailed) as failed:
            d.read_card_basics()
        assert (failed.value.key, failed.value.tries_left) == ("RKSSSE", left)
        assert failed.value.driver_code == -(0x63C0 | left)
        assert f"{left} tries left" in str(failed.value)
    with pytest.raises(KeyBlocked) as blocked:
        d.read_card_basics()
    assert blocked.value.sw == 0x63C0 and "RKSSSE blocked by this failed try" in str(
        blocked.value)
    code, text = iReadCardBas(d)
    assert code == -27011
    assert text.startswith("RKSSSE blocked (6983)") and "replaced" in text
    assert "Traceback" not in text


def test_a_blocked_read_key_keeps_the_holder_file_and_photo_shut(rig: Rig) -> None:
    code, text = iReadCardBas(rig.driver(rig.card("zhang-san", _block_rkssse)))
    assert code == -27011 and "RKSSSE blocked" in text
    # a 2.00 card's holder file is free; its photo needs RKSSSE
    d = rig.driver(rig.card("wang-wu", _block_rkssse))
    assert iReadCardBas(d)[0] == 0
    assert d.read_holder(photo=False).name == "王五"
    with pytest.raises(KeyBlocked) as info:
        d.read_holder(photo=True)
    assert info.value.driver_code == -27011 and info.value.key == "RKSSSE"


def test_without_psam(rig: Rig) -> None:
    code, text = iReadCardBas(rig.driver(rig.card("zhang-san"), psam=False))
    assert code == -2201 and "PSAM" in text  # a 3.00 holder file needs RKSSSE
    code, line = iReadCardBas(rig.driver(rig.card("wang-wu"), psam=False))
    assert code == 0, line
    basics = CardBasics.parse_line(line)
    assert basics.terminal_number == "000000000000" and basics.name == "王五"


def test_not_a_social_security_card(rig: Rig) -> None:
    code, text = iReadCardBas(rig.driver(EchoCard()))
    assert code == -1, text


def test_verify_pin_codes(rig: Rig) -> None:
    d = rig.driver(rig.card("zhang-san"))
    assert d.pin_tries_left() == 3
    assert iVerifyPIN(d, "000000") == (-51, "wrong PIN: 2 tries left / 密码错误，还可尝试 2 次")
    with pytest.raises(PinWrong) as info:
        d.verify_pin("000001")
    assert info.value.tries_left == 1 and info.value.driver_code == -51
    assert iVerifyPIN(d, "246810")[0] == 0
    assert d.pin_tries_left() is None  # verified
    assert iVerifyPIN(d, "12ab")[0] == -33
    with pytest.raises(PinFormatError):
        d.verify_pin("123")


def test_locked_pin_and_unblock(rig: Rig) -> None:
    d = rig.driver(rig.card("zhao-min"))
    assert iVerifyPIN(d, "975310")[0] == -52
    with pytest.raises(PinLocked):
        d.verify_pin("975310")
    assert iUnblockPIN(d) == (0, "success / 成功")
    assert d.pin_tries_left() == 3
    assert iVerifyPIN(d, "975310")[0] == 0  # unblock keeps the PIN


def test_three_wrong_pins_lock_then_reload(rig: Rig) -> None:
    d = rig.driver(rig.card("wang-wu"))
    codes = [iVerifyPIN(d, "000000")[0] for _ in range(3)]
    assert codes == [-51, -51, -52]
    assert iVerifyPIN(d, "135790")[0] == -52
    assert iReloadPIN(d, "864200") == (0, "success / 成功")
    assert iVerifyPIN(d, "135790")[0] == -51
    assert iVerifyPIN(d, "864200")[0] == 0


def test_change_pin(rig: Rig) -> None:
    d = rig.driver(rig.card("li-si"))
    assert iChangePIN(d, "123456", "654321", "654322")[0] == -34
    assert iChangePIN(d, "999999", "654321")[0] == -51
    assert iChangePIN(d, "123456", "654321") == (0, "success / 成功")
    assert iVerifyPIN(d, "123456")[0] == -51
    assert iVerifyPIN(d, "654321")[0] == 0


def test_unblock_and_reload_need_a_psam(rig: Rig) -> None:
    d = rig.driver(rig.card("zhao-min"), psam=False)
    assert iUnblockPIN(d)[0] == -2201
    assert iReloadPIN(d, "123456")[0] == -2201


def test_medical_file_needs_the_pin_then_reads_and_writes(rig: Rig) -> None:
    d = rig.driver(rig.card("zhang-san"))
    code, text = iReadCard(d)
    assert code == -0x6982, text  # security status not satisfied: −27010
    d.verify_pin("246810")
    code, text = iReadCard(d)
    assert code == 0, text
    assert "insurance_type=31000000|" in text and "insured_area=370800|" in text
    assert iWriteCard(d, 0x8F, "2".encode("gbk"))[0] == 0
    assert d.read_medical().use_mode == "2"
    assert d.read_medical().raw[0x8F] == b"2"


def test_write_without_psam_is_refused(rig: Rig) -> None:
    d = rig.driver(rig.card("wang-wu"), psam=False)
    d.verify_pin("135790")
    assert iWriteCard(d, 0x8F, b"2")[0] == -2201


def test_holder_and_photo(rig: Rig) -> None:
    d = rig.driver(rig.card("maimaiti"))
    holder = d.read_holder()
    assert holder.name == "买买提·阿不都热合曼·艾合麦提江" and holder.ethnicity == "05"
    assert holder.photo is not None and holder.photo[:2] == b"\xff\xd8"
    assert holder.photo.endswith(b"\xff\xd9")


def test_a_traced_session_masks_every_pin(rig: Rig) -> None:
    d = rig.driver(rig.card("li-si"))
    buf = io.StringIO()
    writer = TraceWriter(buf, channels={d.psam.reader: "psam"} if d.psam else {})
    d.user.add_observer(writer)
    assert d.psam is not None
    d.psam.add_observer(writer)
    iReadCardBas(d)
    iVerifyPIN(d, "123456")
    iChangePIN(d, "123456", "975318")
    iReloadPIN(d, "975319")
    text = buf.getvalue()
    for pin in ("123456", "975318", "975319"):
        assert pin not in text.replace(" ", "")
    assert "; VERIFY" in text and "; CHANGE PIN" in text and "; PIN RELOAD" in text
    assert "psam >> BFDE" in text  # the PSAM exchanges are in the same trace


def test_card_errors_carry_negative_sw(rig: Rig) -> None:
    d = rig.driver(rig.card("zhang-san"))
    d.select_ssse()
    with pytest.raises(CardStatusError) as info:
        d._card(bytes.fromhex("00B2990400"), "read a missing record")
    assert info.value.driver_code == -info.value.sw and info.value.sw in (0x6A83, 0x6986)
    assert isinstance(info.value, ReaderError)
    assert isinstance(CardRefused("x"), ReaderError)


def test_itype(rig: Rig) -> None:
    d = rig.driver(rig.card("wang-wu"))
    assert iReadCardBas(d, 2)[0] == -1
    assert iReadCardBas(d, 9)[0] == -1
    assert iReadCardBas(d, 3)[0] == 0 and iReadCardBas(d, 4)[0] == 0


def test_medical_log_needs_the_pin(rig: Rig) -> None:
    d = rig.driver(rig.card("zhang-san"))
    with pytest.raises(CardStatusError) as info:
        d.read_medical_log()
    assert info.value.driver_code == -0x6982
    d.verify_pin("246810")
    assert d.read_medical_log() == []  # a fresh card has no settlement yet

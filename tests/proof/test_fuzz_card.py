"""Fuzzing the card OS with mutated terminal sessions (spec/card.md §5, §7).

A real session (the sequence of spec/card.md §5, a VERIFY, reads of EF05/EF06 and DF04, a
PIN RELOAD through the PSAM) is replayed against a card stored in an image *file*, with
some of its commands mutated (bytes flipped, inserted, deleted, truncated) or replaced by
random bytes. For every command:

* the card answers a status word of spec/card.md §7 and never raises (6F00, the internal
  error answer, counts as a failure: it means a handler crashed);
* a command the card rejects writes nothing: the image file is byte-for-byte unchanged
  (a wrong PIN, 63Cx, is the one refusal that must write: the try counter);
* the image file always loads (integrity seal) after the session.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from apdu import codec
from apdu import commands as C
from card.cos import VirtualCard
from card.image import atomic_write, dumps, load_card_image
from card.issue import Holder, issue
from tests.proof.test_fuzz_apdu import mutated

SSN_BODY = "37080219800101123"
_DOCS = {
    gen: issue(Holder("张三", SSN_BODY + codec.id_check_digit(SSN_BODY)), bank="CCB",
               generation=gen, pin="123456", issue_date=dt.date(2024, 5, 6)).doc
    for gen in ("2.00", "3.00")
}

SESSION: list[bytes] = [bytes(c) for c in (
    C.select_ssse(), C.select_ef(C.EF05), C.read_record_by_tag(0x01),
    C.read_record_by_tag(0x03), C.read_record_by_tag(0x07), C.get_challenge(8),
    C.get_challenge(8), C.select_ef(C.EF06), C.read_record_by_tag(0x08),
    C.verify(None), C.verify("123456"), C.select_df("DF04"), C.select_ef(0xEF05),
    C.read_record_by_tag(0x81), C.verify("000000"), C.change_pin("123456", "654321"),
    C.get_challenge(8))] + [bytes.fromhex("8424000114") + bytes(24),
                            bytes.fromhex("84240000040102030400"),
                            bytes.fromhex("841E000104A1B2C3D4"), bytes.fromhex("00B0950010")]


def valid_sw(sw: int) -> bool:
    return 0x6100 <= sw <= 0x6FFF or 0x9000 <= sw <= 0x9FFF


@st.composite
def sessions(draw: st.DrawFn) -> list[bytes]:
    out: list[bytes] = []
    for cmd in SESSION:
        choice = draw(st.sampled_from(("keep", "keep", "mutate", "mutate", "random", "drop")))
        if choice == "keep":
            out.append(cmd)
        elif choice == "mutate":
            out.append(draw(mutated(st.just(cmd))))
        elif choice == "random":
            out.append(draw(st.binary(max_size=64)))
    return out


def _replay(generation: str, t0: bool, session: list[bytes]) -> None:
    with tempfile.TemporaryDirectory(prefix="sscard-fuzz-") as tmp:
        path = Path(tmp) / "card.json"
        atomic_write(path, dumps(_DOCS[generation]))
        card = VirtualCard.from_image(path, t0=t0)
        for cmd in session:
            before = path.read_bytes()
            out = card.transmit(cmd)
            assert len(out) >= 2, (cmd.hex(), out.hex())
            sw = int.from_bytes(out[-2:], "big")
            assert valid_sw(sw), (cmd.hex(), out.hex())
            assert sw != 0x6F00, f"internal error on {cmd.hex()}"
            refused = sw >> 8 not in (0x90, 0x61, 0x63)
            if refused:
                assert path.read_bytes() == before, f"{cmd.hex()} answered {sw:04X} but wrote"
            if t0 and sw >> 8 == 0x61:  # T=0: fetch the answer as a terminal would
                out = card.transmit(bytes(C.get_response(sw & 0xFF)))
                assert valid_sw(int.from_bytes(out[-2:], "big"))
        load_card_image(path)


@given(sessions(), st.sampled_from(("2.00", "3.00")), st.booleans())
@settings(max_examples=90, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@example([b"\x00\x20\x00\x00\x03\x12\x34\x56"] * 4, "3.00", False)     # three wrong tries, then
@example([b"\x80\x5e\x01\x00\x07\x12\x34\x56\xff\x65\x43\x21"], "2.00", True)  # CHANGE PIN T=0
@example([b"\x00\xa4\x04\x00\xff"], "3.00", True)                      # Lc beyond the data
def test_mutated_sessions_get_status_words_and_write_nothing_when_refused(
        session: list[bytes], generation: str, t0: bool) -> None:
    _replay(generation, t0, session)

"""The bank application: PBOC debit (JR/T 0025, EMV contact), spec/card.md §11.

Files (built by :func:`build_files`):

* DDF ``1PAY.SYS.DDF01``; FCI ``6F [84 name] [A5 [88 01 01] [5F2D "zhen"]]``; SFI 1
  record 1 = ``70 [61 [4F AID] [50 label] [87 01 01]]``.
* ADF ``A0 00 00 03 33 01 01 01``; FCI carries the PDOL ``9F1A 02`` (terminal country).
* SFI 2 record 1: track 2 (57), PAN (5A), expiry (5F24), effective date (5F25), PSN (5F34),
  AUC (9F07), CVM list (8E: online PIN, offline plaintext PIN, signature, no CVM), IACs.
* SFI 3 record 1: holder name (5F20, GBK), ID number (9F61) and type (9F62), CDOL1 (8C),
  CDOL2 (8D), issuer country (5F28), application version (9F08), service code (5F30).

Commands: GET PROCESSING OPTIONS ``80 A8 00 00 [83 02 country]`` → format 2
``77 [82 AIP] [94 AFL]`` and the ATC is incremented and committed (EMV Book 3 §10.1);
a card not yet activated (spec/card.md, seed rule A4) answers 6985. GENERATE AC
``80 AE P1 00 CDOL1-data`` (P1 00 AAC, 40 TC, 80 ARQC; the card answers the type asked) →
``77 [9F27 CID] [9F36 ATC] [9F26 AC] [9F10 IAD]``. GET DATA ``80 CA`` for 9F36 (ATC),
9F13 (last online ATC, 0000), 9F17 (PIN try counter).

**Issuer authentication** (EMV Book 2 §8.2, Book 3 §6.5.5 and §10.9): the card takes the
Issuer Authentication Data in the second GENERATE AC, requested by its CDOL2 (tag ``91``,
the combined form of the EMV Common Core Definitions, so the whole completion is one
command; on this card ``00 82`` is the SSSE key authentication of spec/card.md §5, so the
ARPC does not travel in EXTERNAL AUTHENTICATE). CDOL2 data = ``8A`` ARC (2) ‖ the 29
bytes of CDOL1 data ‖ ``91`` = ARPC (8) ‖ ARC (2). A second GENERATE AC is only accepted
after a first one answered ARQC, and asks for TC or AAC (P1 40 / 00; ARQC answers 6A86).
The ARPC is ARPC method 1, as the host computes it (``ledger/bank.py``):
``ARPC = E(SK, ARQC ⊕ (ARC ‖ 00×6))`` under the session key of step 2 below (3DES:
single DES; SM4: ``E(SK, X ‖ 00×8)`` folded left ⊕ right). The card answers TC only when
TC was asked, the ARPC verifies and the ARC says approved (``"00"``, ``"10"``, ``"11"``,
the same in ``8A`` and in ``91``); otherwise AAC. A wrong ARPC sets "issuer
authentication performed and failed" in the CVR.

The IAD (9F10) is ``06 DKI(01) CVN(01) 03 CVR(3)`` with the CVR of the Visa/PBOC layout,
byte 1: b8–7 AC of the second GENERATE AC (00 AAC, 01 TC, 10 not requested), b6–5 AC of
the first (00 AAC, 01 TC, 10 ARQC), b4 issuer authentication performed and failed, b3
offline PIN performed; bytes 2–3 are 00.

**Application cryptogram recipe** (what a host re-implements to check an ARQC):

1. card master key ``MK``: ``diversify`` (spec/card.md §8, algorithm of the card) of the
   TEST root key ``AC`` (``card.keys.test_root_key("AC", alg)`` =
   ``SHA-256("sscard TEST root key|AC|3DES" or "|AC|SM4")[:16]``) with, in order, the level-1
   factor ``ASCII(city[:2]) ‖ "0000sh"``, the level-2 factor ``ASCII(city) ‖ "sx"`` and the
   PAN factor: the rightmost 16 digits of ``PAN ‖ PSN`` (PSN as 2 digits, ``01``), as 8
   bytes BCD (EMV option A). ``city`` is the card's 6-digit area code.
2. session key ``SK = session_key(MK, ATC(2 bytes) ‖ 00×6)``: 3DES → ``3DES-EDE(MK, ·)``, an
   8-byte single-DES key; SM4 → ``SM4(MK, ATC ‖ 00×14)``, a 16-byte key.
3. data ``D`` = the 29 bytes of CDOL1 data exactly as sent (9F02 amount 6 ‖ 9F03 other
   amount 6 ‖ 9F1A country 2 ‖ 95 TVR 5 ‖ 5F2A currency 2 ‖ 9A date 3 ‖ 9C type 1 ‖
   9F37 unpredictable number 4) ‖ AIP (2, ``1C 00``) ‖ ATC (2). For a second GENERATE AC
   the CDOL1 part is taken from the CDOL2 data after the 2-byte ARC.
4. pad ``D`` with ``80`` then ``00`` to the block size (ISO 9797-1 method 2), CBC with IV 0
   under ``SK`` (single DES for 3DES cards, SM4 for SM4 cards).
5. ``AC`` = the last block (3DES: 8 bytes); SM4: left 8 bytes XOR right 8 bytes of the last
   16-byte block. The same recipe gives TC and AAC; the CID (9F27) tells which.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from apdu.command import CommandApdu
from card import crypto

if TYPE_CHECKING:
    from card.cos import VirtualCard

APP_NAME = "PBOC"
PSE_NAME = b"1PAY.SYS.DDF01"
AID = bytes.fromhex("A000000333010101")
AIP = bytes.fromhex("1C00")
AFL = bytes.fromhex("1001010018010100")
PDOL = bytes.fromhex("9F1A02")
CDOL1 = bytes.fromhex("9F02069F03069F1A0295055F2A029A039C019F3704")
CDOL1_LEN = 29
CDOL2 = bytes.fromhex("8A02") + CDOL1 + bytes.fromhex("910A")
CDOL2_LEN = 2 + CDOL1_LEN + 10
IAD_HEAD = bytes.fromhex("06010103")
CID = {0x00: 0x00, 0x40: 0x40, 0x80: 0x80}
AAC, TC, ARQC = 0x00, 0x40, 0x80
ARC_APPROVED = frozenset({b"00", b"10", b"11"})
CVR_2ND_NOT_REQUESTED = 0x80
CVR_ISSUER_AUTH_FAILED = 0x08
CVR_OFFLINE_PIN = 0x04

Answer = tuple[bytes, int]


@dataclass
class PbocState:
    """Volatile transaction state of the bank application."""

    gpo_done: bool = False
    acs: int = 0
    first_cid: int | None = None
    arqc: bytes = b""
    issuer_auth_failed: bool = False


def cvr(state: PbocState, second_cid: int | None, pin_verified: bool) -> bytes:
    """The card verification results (module docstring: IAD) after this GENERATE AC."""
    first = state.first_cid if state.first_cid is not None else AAC
    b1 = ((CVR_2ND_NOT_REQUESTED if second_cid is None else second_cid) | (first >> 2))
    if state.issuer_auth_failed:
        b1 |= CVR_ISSUER_AUTH_FAILED
    if pin_verified:
        b1 |= CVR_OFFLINE_PIN
    return bytes([b1, 0x00, 0x00])


def tlv(tag: int, value: bytes) -> bytes:
    """BER-TLV with a one- or two-byte tag and short/81 length (EMV Book 3 Annex B)."""
    t = tag.to_bytes(2 if tag > 0xFF else 1, "big")
    n = len(value)
    length = bytes([n]) if n < 0x80 else bytes([0x81, n])
    return t + length + value


def _in_adf(card: VirtualCard) -> bool:
    return card.current_df.name == AID


def get_processing_options(card: VirtualCard, cmd: CommandApdu) -> Answer:
    if cmd.cla != 0x80:
        return b"", 0x6E00
    if cmd.p1 or cmd.p2:
        return b"", 0x6A86
    if not _in_adf(card):
        return b"", 0x6985
    if len(cmd.data) != 4 or cmd.data[:2] != b"\x83\x02":
        return b"", 0x6700
    if not card.image.activated:
        return b"", 0x6985
    if card.image.atc >= 0xFFFF:
        return b"", 0x6985
    card.image.atc += 1
    card.commit()
    card.pboc_state = PbocState(gpo_done=True)
    body = tlv(0x82, AIP) + tlv(0x94, AFL)
    return tlv(0x77, body), 0x9000


def cryptogram(session: bytes, data: bytes, alg: int) -> bytes:
    """Steps 4–5 of the recipe: CBC-MAC with 80-padding, folded to 8 bytes for SM4."""
    last = crypto.cbc_last_block(session, crypto.pad80(data, crypto.block_size(alg)), alg)
    if len(last) == 8:
        return last
    return bytes(a ^ b for a, b in zip(last[:8], last[8:], strict=True))


def application_cryptogram(master_key: bytes, atc: int, cdol1_data: bytes, alg: int) -> bytes:
    """The whole recipe from the card master key (module docstring, steps 2–5)."""
    session = crypto.session_key(master_key, atc.to_bytes(2, "big") + b"\x00" * 6, alg)
    return cryptogram(session, cdol1_data + AIP + atc.to_bytes(2, "big"), alg)


def arpc(master_key: bytes, atc: int, arqc: bytes, arc: bytes, alg: int) -> bytes:
    """ARPC method 1 (EMV Book 2 §8.2.1): ``E(SK, ARQC ⊕ (ARC ‖ 00×6))`` under the session
    key of the transaction's ATC (recipe step 2)."""
    session = crypto.session_key(master_key, atc.to_bytes(2, "big") + b"\x00" * 6, alg)
    block = bytes(a ^ b for a, b in zip(arqc, arc + b"\x00" * 6, strict=True))
    return crypto.auth_data(session, block, alg)


def issuer_authentication(card: VirtualCard, key: bytes, issuer_data: bytes) -> bool:
    """Check the Issuer Authentication Data ``ARPC(8) ‖ ARC(2)`` against the ARQC of this
    transaction (EMV Book 2 §8.2); a failure is kept in the CVR."""
    state = card.pboc_state
    mac, arc = issuer_data[:8], issuer_data[8:10]
    want = arpc(key, card.image.atc, state.arqc, arc, card.image.algorithm)
    ok = hmac.compare_digest(want, mac)
    state.issuer_auth_failed = not ok
    return ok


def generate_ac(card: VirtualCard, cmd: CommandApdu) -> Answer:
    if cmd.cla != 0x80:
        return b"", 0x6E00
    kind = cmd.p1 & 0xC0
    if kind not in CID or cmd.p2 != 0x00 or cmd.p1 & 0x2F:
        return b"", 0x6A86
    state = card.pboc_state
    if not _in_adf(card) or not state.gpo_done or state.acs >= 2:
        return b"", 0x6985
    if state.acs == 1 and state.first_cid != ARQC:
        return b"", 0x6985  # the first GENERATE AC already ended the transaction
    if state.acs == 1 and kind == ARQC:
        return b"", 0x6A86
    expected = CDOL1_LEN if state.acs == 0 else CDOL2_LEN
    if len(cmd.data) != expected:
        return b"", 0x6700
    key = card.image.keys.get("AC")
    if key is None:
        return b"", 0x6A88
    alg = card.image.algorithm
    atc = card.image.atc
    second: int | None = None
    if state.acs == 0:
        cdol1 = cmd.data
        cid = CID[kind]
    else:
        arc, cdol1 = cmd.data[:2], cmd.data[2:2 + CDOL1_LEN]
        authentic = issuer_authentication(card, key, cmd.data[2 + CDOL1_LEN:])
        approved = authentic and arc in ARC_APPROVED and cmd.data[-2:] == arc
        cid = TC if kind == TC and approved else AAC
        second = cid
    state.acs += 1
    ac = application_cryptogram(key, atc, cdol1, alg)
    if state.acs == 1:
        state.first_cid, state.arqc = cid, ac
    iad = IAD_HEAD + cvr(state, second, card.pin_name(APP_NAME) in card.verified)
    body = (tlv(0x9F27, bytes([cid])) + tlv(0x9F36, atc.to_bytes(2, "big"))
            + tlv(0x9F26, ac) + tlv(0x9F10, iad))
    return tlv(0x77, body), 0x9000


def get_data(card: VirtualCard, cmd: CommandApdu) -> Answer:
    tag = (cmd.p1 << 8) | cmd.p2
    if tag == 0x9F36:
        return tlv(tag, card.image.atc.to_bytes(2, "big")), 0x9000
    if tag == 0x9F13:
        return tlv(tag, b"\x00\x00"), 0x9000
    if tag == 0x9F17:
        record = card.image.pins[card.pin_name("PBOC")]
        return tlv(tag, bytes([record.tries_left])), 0x9000
    return b"", 0x6A88


# --- issuing ------------------------------------------------------------------------------


def track2(pan: str, expiry_yymm: str) -> bytes:
    digits = f"{pan}D{expiry_yymm}2200000000000"
    if len(digits) % 2:
        digits += "F"
    return bytes.fromhex(digits)


def build_files(*, pan: str, psn: int, expiry: str, effective: str, name_gbk: bytes,
                ssn: str, label: str = "PBOC DEBIT") -> dict[str, Any]:
    """The image form of the DDF ``1PAY.SYS.DDF01`` with its ADF (dates YYYYMMDD)."""
    pan_bcd = bytes.fromhex(pan + ("F" if len(pan) % 2 else ""))
    exp = bytes.fromhex(expiry[2:8])
    eff = bytes.fromhex(effective[2:8])
    cvm = bytes.fromhex("00000000" "00000000" "4203" "4103" "1E03" "1F00")
    rec2 = tlv(0x70, (
        tlv(0x57, track2(pan, expiry[2:6])) + tlv(0x5A, pan_bcd) + tlv(0x5F24, exp)
        + tlv(0x5F25, eff) + tlv(0x5F34, bytes([psn])) + tlv(0x9F07, bytes.fromhex("FF00"))
        + tlv(0x8E, cvm) + tlv(0x9F0D, bytes.fromhex("D84004A800"))
        + tlv(0x9F0E, bytes.fromhex("0010000000")) + tlv(0x9F0F, bytes.fromhex("D84004F800"))
    ))
    rec3 = tlv(0x70, (
        tlv(0x5F20, name_gbk[:26]) + tlv(0x9F61, ssn.encode("ascii")) + tlv(0x9F62, b"\x00")
        + tlv(0x8C, CDOL1) + tlv(0x8D, CDOL2) + tlv(0x5F28, bytes.fromhex("0156"))
        + tlv(0x9F08, bytes.fromhex("0030")) + tlv(0x5F30, bytes.fromhex("0220"))
    ))
    dir_rec = tlv(0x70, tlv(0x61, tlv(0x4F, AID) + tlv(0x50, label.encode("ascii"))
                             + tlv(0x87, b"\x01")))
    pse_fci = tlv(0x6F, tlv(0x84, PSE_NAME) + tlv(0xA5, tlv(0x88, b"\x01")
                                                   + tlv(0x5F2D, b"zhen")))
    adf_fci = tlv(0x6F, tlv(0x84, AID) + tlv(0xA5, (
        tlv(0x50, label.encode("ascii")) + tlv(0x87, b"\x01") + tlv(0x9F38, PDOL)
        + tlv(0x5F2D, b"zhen") + tlv(0x9F11, b"\x01")
    )))
    return {
        "kind": "df", "label": "PAY", "name": PSE_NAME.hex().upper(), "app": "PBOC",
        "fci": pse_fci.hex().upper(),
        "children": [
            {"kind": "ef", "fid": "EF01", "sfi": 1, "structure": "records", "read": "free",
             "write": "never", "label": "DIR", "records": [dir_rec.hex().upper()]},
            {"kind": "df", "label": "ADF", "name": AID.hex().upper(), "app": "PBOC",
             "fci": adf_fci.hex().upper(),
             "children": [
                 {"kind": "ef", "fid": "EF02", "sfi": 2, "structure": "records", "read": "free",
                  "write": "never", "records": [rec2.hex().upper()]},
                 {"kind": "ef", "fid": "EF03", "sfi": 3, "structure": "records", "read": "free",
                  "write": "never", "records": [rec3.hex().upper()]},
             ]},
        ],
    }

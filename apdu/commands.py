"""Builders for every command of the card, the PSAM and the bank application.

spec/card.md §5 (SSSE), §6 (offline purse), §9 (PSAM), §11 (PBOC debit). Callers never write
header bytes by hand.

>>> select_ef(0xEF05).hex()
'00A4020002EF05'
>>> read_record_by_tag(0x07, le=11).hex()
'00B207000B'
>>> verify("123456").hex()
'0020000003123456'
>>> command_name(bytes.fromhex("00C0000010"))
'GET RESPONSE'
>>> mask_secrets(verify("1234").to_bytes()).hex()
'00200000020000'
"""

from __future__ import annotations

from apdu.codec import pin_encode
from apdu.command import CommandApdu
from apdu.errors import ApduError
from apdu.tlv import Tlv

SW_WRONG_DATA = 0x6A80
SW_WRONG_P1P2 = 0x6A86

#: DF name of the social security application, "sx1.sh.社会保障" (spec/card.md §3).
SSSE_DF_NAME = b"sx1.sh." + "社会保障".encode("gbk")
PSE_NAME = b"1PAY.SYS.DDF01"
PPSE_NAME = b"2PAY.SYS.DDF01"
PBOC_DEBIT_AID = bytes.fromhex("A000000333010101")
DF01_AID = bytes.fromhex("D15600000500")
DF02_AID = bytes.fromhex("D15600000501")
DF03_AID = bytes.fromhex("D15600000502")
DF04_AID = bytes.fromhex("D15600000503")
DF07_AID = bytes.fromhex("D15600000504")
#: DF short name → AID (spec/card.md §3).
DF_AIDS: dict[str, bytes] = {
    "DF01": DF01_AID, "DF02": DF02_AID, "DF03": DF03_AID, "DF04": DF04_AID, "DF07": DF07_AID,
}

MF_FID = 0x3F00
#: EF identifiers under SSSE / DF04 / PSAM (spec/card.md §3, §9).
EF05, EF06, EF07, EF08, EF15, EF16 = 0xEF05, 0xEF06, 0xEF07, 0xEF08, 0xEF15, 0xEF16
#: Key identifier of RKSSSE for EXTERNAL AUTHENTICATE (spec/card.md §5).
KID_RKSSSE = 0x0A

CLA_ISO = 0x00
CLA_SM = 0x04
CLA_PROPRIETARY = 0x80
CLA_PROPRIETARY_SM = 0x84
CLA_PURSE = 0xB0
CLA_DELIVERY = 0xBF

INS_SELECT = 0xA4
INS_READ_BINARY = 0xB0
INS_READ_RECORD = 0xB2
INS_UPDATE_BINARY = 0xD6
INS_UPDATE_RECORD = 0xDC
INS_VERIFY = 0x20
INS_CHANGE_PIN = 0x5E
INS_PIN_UNBLOCK = 0x24
INS_GET_CHALLENGE = 0x84
INS_INTERNAL_AUTH = 0x88
INS_EXTERNAL_AUTH = 0x82
INS_GET_RESPONSE = 0xC0
INS_APPLICATION_BLOCK = 0x1E
INS_CARD_BLOCK = 0x16
INS_RESET_RETRY_COUNTER = 0x2C  # ISO 7816-4; DEBIT FOR PURCHASE shares it under CLA_PURSE
INS_GET_BALANCE = 0x26
INS_INITIALIZE = 0x28
INS_CREDIT_FOR_LOAD = 0x2A
INS_DEBIT_FOR_PURCHASE = 0x2C
INS_GET_TRANSACTION_PROOF = 0x2E
INS_DELIVERY_SESSION_KEY = 0xDE
INS_CIPHER_DATA = 0xFA
INS_INIT_SAM_FOR_PURCHASE = 0x70
INS_CREDIT_SAM_FOR_PURCHASE = 0x72
INS_GET_PROCESSING_OPTIONS = 0xA8
INS_GENERATE_AC = 0xAE
INS_GET_DATA = 0xCA
INS_WRITE_KEY = 0xD4

#: GET BALANCE P2 (spec/card.md §6).
BALANCE, ANNUAL_SELF_PAY, ANNUAL_POOLED = 0x01, 0x02, 0x03
#: CIPHER DATA P1 (spec/card.md §9).
CIPHER_ENCRYPT, CIPHER_MAC_ONE_BLOCK = 0x00, 0x05
CIPHER_MAC_FIRST, CIPHER_MAC_NEXT, CIPHER_MAC_LAST = 0x07, 0x03, 0x01
#: sscard PSAM extensions of CIPHER DATA: 08 authentication data of an 8-byte original,
#: 09 check a card's internal-authentication answer (data ``original8 ‖ answer8``).
CIPHER_AUTH_DATA, CIPHER_CHECK_INTERNAL_AUTH = 0x08, 0x09
#: GENERATE AC reference control parameter (EMV Book 3 §6.5.5).
AC_AAC, AC_TC, AC_ARQC = 0x00, 0x40, 0x80
#: Le 00: "up to 256 bytes" (short); cards that need the exact length answer 6Cxx.
LE_ANY = 256


def _u8(name: str, v: int) -> int:
    if not 0 <= v <= 0xFF:
        raise ApduError(f"{name} must be one byte, got {v!r}", SW_WRONG_P1P2)
    return v


def _fixed(name: str, value: bytes, *sizes: int) -> bytes:
    value = bytes(value)
    if len(value) not in sizes:
        want = " or ".join(str(s) for s in sizes)
        raise ApduError(f"{name} must be {want} bytes, got {len(value)}", SW_WRONG_DATA)
    return value


def _sfi(sfi: int) -> int:
    if not 1 <= sfi <= 30:
        raise ApduError(f"SFI must be 1..30, got {sfi!r}", SW_WRONG_P1P2)
    return sfi


def _le(le: int | None) -> int:
    return LE_ANY if le is None or le == 0 else le


# --- SELECT (ISO 7816-4 §11.2.2) -------------------------------------------------------


def select_mf() -> CommandApdu:
    """SELECT MF by its FID 3F00 (``00 A4 00 00 02 3F 00``)."""
    return select_fid(MF_FID)


def select_fid(fid: int, le: int | None = None) -> CommandApdu:
    """SELECT by file identifier, P1 00 (MF, DF or EF under the current DF)."""
    if not 0 <= fid <= 0xFFFF:
        raise ApduError(f"file identifier must be two bytes, got {fid!r}", SW_WRONG_DATA)
    return CommandApdu(CLA_ISO, INS_SELECT, 0x00, 0x00, fid.to_bytes(2, "big"), le)


def select_ef(fid: int, le: int | None = None) -> CommandApdu:
    """SELECT an EF under the current DF, P1 02 (``00 A4 02 00 02 EF 05``)."""
    if not 0 <= fid <= 0xFFFF:
        raise ApduError(f"file identifier must be two bytes, got {fid!r}", SW_WRONG_DATA)
    return CommandApdu(CLA_ISO, INS_SELECT, 0x02, 0x00, fid.to_bytes(2, "big"), le)


def select_name(name: bytes, le: int | None = LE_ANY) -> CommandApdu:
    """SELECT by DF name / AID, P1 04, asking for the FCI (Le 00 by default)."""
    if not 1 <= len(name) <= 16:
        raise ApduError(f"DF name must be 1..16 bytes, got {len(name)}", SW_WRONG_DATA)
    return CommandApdu(CLA_ISO, INS_SELECT, 0x04, 0x00, bytes(name), le)


def select_ssse() -> CommandApdu:
    """SELECT the social security application by DF name (spec/card.md §3)."""
    return select_name(SSSE_DF_NAME)


def select_df(name: str) -> CommandApdu:
    """SELECT one of DF01..DF04, DF07 by AID (spec/card.md §3)."""
    try:
        return select_name(DF_AIDS[name.upper()])
    except KeyError:
        raise ApduError(f"unknown DF {name!r}; known: {', '.join(DF_AIDS)}") from None


# --- reading and writing -----------------------------------------------------------------


def read_binary(offset: int = 0, le: int = 0, sfi: int | None = None) -> CommandApdu:
    """READ BINARY (spec/card.md §5): with ``sfi`` P1 = 80|SFI and P2 = offset (0..255),
    else P1‖P2 = offset (0..7FFF). ``le`` 0 means 256."""
    if sfi is not None:
        if not 0 <= offset <= 0xFF:
            raise ApduError(f"offset with SFI must be 0..255, got {offset}", SW_WRONG_P1P2)
        p1, p2 = 0x80 | _sfi(sfi), offset
    else:
        if not 0 <= offset <= 0x7FFF:
            raise ApduError(f"offset must be 0..7FFF, got {offset}", SW_WRONG_P1P2)
        p1, p2 = offset >> 8, offset & 0xFF
    return CommandApdu(CLA_ISO, INS_READ_BINARY, p1, p2, b"", _le(le))


def _record_p2(sfi: int | None, by_number: bool) -> int:
    return ((_sfi(sfi) << 3) if sfi is not None else 0) | (0x04 if by_number else 0x00)


def read_record_by_tag(tag: int, sfi: int | None = None, le: int | None = None) -> CommandApdu:
    """READ RECORD of the first record with identifier ``tag`` (spec/card.md §4).

    P2 = 00 (current EF) or SFI<<3. ``le`` None sends Le 00, which the card answers with
    6Cxx carrying the exact length (``2 + len``).
    """
    return CommandApdu(CLA_ISO, INS_READ_RECORD, _u8("record tag", tag), _record_p2(sfi, False),
                       b"", _le(le))


def read_record_by_number(n: int, sfi: int | None = None, le: int | None = None) -> CommandApdu:
    """READ RECORD number ``n`` (P2 low bits 100; EMV reads by SFI this way)."""
    if not 1 <= n <= 0xFE:
        raise ApduError(f"record number must be 1..254, got {n}", SW_WRONG_P1P2)
    return CommandApdu(CLA_ISO, INS_READ_RECORD, n, _record_p2(sfi, True), b"", _le(le))


def mac_input(command: CommandApdu, mac_len: int = 4) -> bytes:
    """The bytes a secure-messaging MAC covers: ``CLA INS P1 P2 Lc ‖ data`` where Lc counts
    the MAC bytes that will follow (spec/card.md §8). Padding is the MAC's business.

    >>> mac_input(pin_unblock_template()).hex()
    '8424000004'
    """
    n = len(command.data) + mac_len
    if n > 0xFF:
        raise ApduError("secure-messaging data longer than 255 bytes", SW_WRONG_DATA)
    return command.header + bytes((n,)) + command.data


def _with_mac(cla: int, ins: int, p1: int, p2: int, data: bytes, mac: bytes | None,
              le: int | None = None) -> CommandApdu:
    if mac is None:
        return CommandApdu(cla, ins, p1, p2, data, le)
    return CommandApdu(cla | 0x04, ins, p1, p2, data + _fixed("MAC", mac, 4), le)


def update_binary(offset: int, data: bytes, sfi: int | None = None,
                  mac: bytes | None = None) -> CommandApdu:
    """UPDATE BINARY; with ``mac`` the class is 04 and the MAC follows the data (§5, §8)."""
    if sfi is not None:
        if not 0 <= offset <= 0xFF:
            raise ApduError(f"offset with SFI must be 0..255, got {offset}", SW_WRONG_P1P2)
        p1, p2 = 0x80 | _sfi(sfi), offset
    else:
        if not 0 <= offset <= 0x7FFF:
            raise ApduError(f"offset must be 0..7FFF, got {offset}", SW_WRONG_P1P2)
        p1, p2 = offset >> 8, offset & 0xFF
    if not data:
        raise ApduError("UPDATE BINARY needs data", SW_WRONG_DATA)
    return _with_mac(CLA_ISO, INS_UPDATE_BINARY, p1, p2, bytes(data), mac)


def update_record(record: int, data: bytes, sfi: int | None = None, mac: bytes | None = None,
                  by_number: bool = False) -> CommandApdu:
    """UPDATE RECORD. ``record`` is the record identifier (tag, P2 low bits 000) or, with
    ``by_number``, the record number (100). ``data`` is the whole record as stored
    (``tag ‖ len ‖ value``, see :func:`apdu.tlv.encode_simple`). With ``mac`` the class is 04.
    """
    if not data:
        raise ApduError("UPDATE RECORD needs data", SW_WRONG_DATA)
    p1 = _u8("record", record)
    return _with_mac(CLA_ISO, INS_UPDATE_RECORD, p1, _record_p2(sfi, by_number), bytes(data), mac)


# --- PIN ---------------------------------------------------------------------------------


def verify(pin: str | None) -> CommandApdu:
    """VERIFY ``00 20 00 00`` with the PIN in BCD (odd length padded F); ``None`` builds the
    query form with no data (case 1; under T=0 it travels with P3 = 00), answered 63Cx
    when a PIN is needed (spec/card.md §5, §7)."""
    if pin is None:
        return CommandApdu(CLA_ISO, INS_VERIFY, 0x00, 0x00)
    return CommandApdu(CLA_ISO, INS_VERIFY, 0x00, 0x00, pin_encode(pin))


def change_pin(old: str, new: str) -> CommandApdu:
    """CHANGE PIN ``80 5E 01 00``: old PIN ‖ FF ‖ new PIN."""
    return CommandApdu(CLA_PROPRIETARY, INS_CHANGE_PIN, 0x01, 0x00,
                       pin_encode(old) + b"\xff" + pin_encode(new))


def pin_unblock_template() -> CommandApdu:
    """PIN UNBLOCK without its MAC: what :func:`mac_input` is computed over."""
    return CommandApdu(CLA_PROPRIETARY_SM, INS_PIN_UNBLOCK, 0x00, 0x00)


def pin_unblock(mac4: bytes) -> CommandApdu:
    """PIN UNBLOCK ``84 24 00 00`` + MAC (keeps the PIN, resets the counter)."""
    return CommandApdu(CLA_PROPRIETARY_SM, INS_PIN_UNBLOCK, 0x00, 0x00, _fixed("MAC", mac4, 4))


def pin_reload(enc_block: bytes, mac4: bytes) -> CommandApdu:
    """PIN RELOAD ``84 24 00 01``: enciphered PIN block (8 for 3DES, 16 for SM4) ‖ MAC4."""
    return CommandApdu(CLA_PROPRIETARY_SM, INS_PIN_UNBLOCK, 0x00, 0x01,
                       _fixed("enciphered PIN block", enc_block, 8, 16) + _fixed("MAC", mac4, 4))


# --- authentication ---------------------------------------------------------------------


def get_challenge(n: int = 8) -> CommandApdu:
    """GET CHALLENGE ``00 84 00 00`` with Le 04, 08 or 10."""
    if n not in (4, 8, 16):
        raise ApduError(f"GET CHALLENGE length must be 4, 8 or 16, got {n}", SW_WRONG_DATA)
    return CommandApdu(CLA_ISO, INS_GET_CHALLENGE, 0x00, 0x00, b"", n)


def internal_authenticate(session_factor8: bytes, original8: bytes,
                          key_version: int | None = None, le: int | None = 8) -> CommandApdu:
    """INTERNAL AUTHENTICATE ``00 88 00 00``: session factor 8 ‖ original 8 [‖ key version]."""
    data = _fixed("session factor", session_factor8, 8) + _fixed("original data", original8, 8)
    if key_version is not None:
        data += bytes((_u8("key version", key_version),))
    return CommandApdu(CLA_ISO, INS_INTERNAL_AUTH, 0x00, 0x00, data, le)


def external_authenticate(kid: int, auth8: bytes, original8: bytes) -> CommandApdu:
    """EXTERNAL AUTHENTICATE ``00 82 00 kid``: auth data 8 ‖ original 8 (kid 0A = RKSSSE)."""
    return CommandApdu(CLA_ISO, INS_EXTERNAL_AUTH, 0x00, _u8("key id", kid),
                       _fixed("authentication data", auth8, 8) + _fixed("original data",
                                                                      original8, 8))


def get_response(n: int, cla: int = CLA_ISO) -> CommandApdu:
    """GET RESPONSE ``00 C0 00 00 n`` (T=0; n 0 means 256)."""
    if not 0 <= n <= 256:
        raise ApduError(f"GET RESPONSE length must be 0..256, got {n}", SW_WRONG_DATA)
    return CommandApdu(cla, INS_GET_RESPONSE, 0x00, 0x00, b"", _le(n))


def application_block(mac4: bytes) -> CommandApdu:
    """APPLICATION BLOCK ``84 1E 00 01`` + MAC (then SELECT answers 9303)."""
    return CommandApdu(CLA_PROPRIETARY_SM, INS_APPLICATION_BLOCK, 0x00, 0x01,
                       _fixed("MAC", mac4, 4))


def card_block(mac4: bytes) -> CommandApdu:
    """CARD BLOCK ``84 16 00 00`` + MAC (then every command answers 6A81)."""
    return CommandApdu(CLA_PROPRIETARY_SM, INS_CARD_BLOCK, 0x00, 0x00, _fixed("MAC", mac4, 4))


# --- offline purse (spec/card.md §6) -----------------------------------------------------


def _amount(name: str, fen: int) -> bytes:
    if not 0 <= fen <= 0xFFFFFFFF:
        raise ApduError(f"{name} must be 0..4294967295 fen, got {fen}", SW_WRONG_DATA)
    return fen.to_bytes(4, "big")


def get_balance(which: int = BALANCE) -> CommandApdu:
    """GET BALANCE ``B0 26 00 P2`` (01 balance, 02 annual self-pay, 03 annual pooled), Le 4."""
    if which not in (BALANCE, ANNUAL_SELF_PAY, ANNUAL_POOLED):
        raise ApduError(f"GET BALANCE P2 must be 01, 02 or 03, got {which!r}", SW_WRONG_P1P2)
    return CommandApdu(CLA_PURSE, INS_GET_BALANCE, 0x00, which, b"", 4)


def initialize_for_load(key_index: int, amount: int, terminal6: bytes,
                        le: int | None = LE_ANY) -> CommandApdu:
    """INITIALIZE FOR LOAD ``B0 28 00 01``: key index 1 ‖ amount 4 ‖ terminal number 6."""
    data = (bytes((_u8("key index", key_index),)) + _amount("amount", amount)
            + _fixed("terminal number", terminal6, 6))
    return CommandApdu(CLA_PURSE, INS_INITIALIZE, 0x00, 0x01, data, le)


def credit_for_load(time7: bytes, mac2: bytes, le: int | None = 4) -> CommandApdu:
    """CREDIT FOR LOAD ``B0 2A 00 00``: time cn7 ‖ MAC2 → TAC."""
    return CommandApdu(CLA_PURSE, INS_CREDIT_FOR_LOAD, 0x00, 0x00,
                       _fixed("time", time7, 7) + _fixed("MAC2", mac2, 4), le)


def initialize_for_purchase(key_index: int, account_pay: int, self_pay: int, pooled_pay: int,
                            terminal6: bytes, le: int | None = LE_ANY) -> CommandApdu:
    """INITIALIZE FOR PURCHASE ``B0 28 01 01``: key index 1 ‖ account pay 4 ‖ self pay 4 ‖
    pooled pay 4 ‖ terminal number 6."""
    data = (bytes((_u8("key index", key_index),)) + _amount("account pay", account_pay)
            + _amount("self pay", self_pay) + _amount("pooled pay", pooled_pay)
            + _fixed("terminal number", terminal6, 6))
    return CommandApdu(CLA_PURSE, INS_INITIALIZE, 0x01, 0x01, data, le)


def debit_for_purchase(terminal_seq4: bytes, time7: bytes, mac1: bytes,
                       le: int | None = 8) -> CommandApdu:
    """DEBIT FOR PURCHASE ``B0 2C 01 00``: terminal sequence 4 ‖ time cn7 ‖ MAC1 → TAC ‖ MAC2."""
    data = (_fixed("terminal sequence", terminal_seq4, 4) + _fixed("time", time7, 7)
            + _fixed("MAC1", mac1, 4))
    return CommandApdu(CLA_PURSE, INS_DEBIT_FOR_PURCHASE, 0x01, 0x00, data, le)


def get_transaction_proof(tx_type: int, card_seq: int, le: int | None = 8) -> CommandApdu:
    """GET TRANSACTION PROOF ``B0 2E 00 type``: card transaction sequence 2 → MAC/TAC."""
    if not 0 <= card_seq <= 0xFFFF:
        raise ApduError(f"card sequence must be 0..65535, got {card_seq}", SW_WRONG_DATA)
    return CommandApdu(CLA_PURSE, INS_GET_TRANSACTION_PROOF, 0x00, _u8("type", tx_type),
                       card_seq.to_bytes(2, "big"), le)


# --- PSAM (spec/card.md §9) --------------------------------------------------------------


def psam_select_terminal_file() -> CommandApdu:
    """SELECT the PSAM's EF16 (terminal number)."""
    return select_ef(EF16)


def psam_read_terminal_number() -> CommandApdu:
    """READ BINARY of the current EF (EF16 after :func:`psam_select_terminal_file`), Le 6."""
    return read_binary(0, 6)


def delivery_session_key(usage: int, kid: int, factors: bytes, data: bytes = b"") -> CommandApdu:
    """DELIVERY SESSION KEY ``BF DE usage kid``: diversification factors ‖ session input."""
    body = bytes(factors) + bytes(data)
    if not body:
        raise ApduError("DELIVERY SESSION KEY needs factors", SW_WRONG_DATA)
    return CommandApdu(CLA_DELIVERY, INS_DELIVERY_SESSION_KEY, _u8("usage", usage),
                       _u8("key id", kid), body)


def cipher_data(p1: int, data: bytes, le: int | None = LE_ANY) -> CommandApdu:
    """CIPHER DATA ``80 FA P1 00`` (spec/card.md §9: P1 00 encrypt, 05 one-block MAC,
    07/03/01 MAC chain; sscard PSAM extensions 08 auth data, 09 internal-auth check)."""
    if p1 not in (CIPHER_ENCRYPT, CIPHER_MAC_ONE_BLOCK, CIPHER_MAC_FIRST, CIPHER_MAC_NEXT,
                  CIPHER_MAC_LAST, CIPHER_AUTH_DATA, CIPHER_CHECK_INTERNAL_AUTH):
        raise ApduError(f"CIPHER DATA P1 {p1!r} is not 00, 05, 07, 03, 01, 08 or 09",
                        SW_WRONG_P1P2)
    if not data:
        raise ApduError("CIPHER DATA needs data", SW_WRONG_DATA)
    if p1 in (CIPHER_MAC_FIRST, CIPHER_MAC_NEXT):
        le = None
    return CommandApdu(CLA_PROPRIETARY, INS_CIPHER_DATA, p1, 0x00, bytes(data), le)


def init_sam_for_purchase(data: bytes, le: int | None = 8) -> CommandApdu:
    """INIT SAM FOR PURCHASE ``80 70 01 00`` → terminal sequence 4 ‖ MAC1 4."""
    if not data:
        raise ApduError("INIT SAM FOR PURCHASE needs data", SW_WRONG_DATA)
    return CommandApdu(CLA_PROPRIETARY, INS_INIT_SAM_FOR_PURCHASE, 0x01, 0x00, bytes(data), le)


def credit_sam_for_purchase(mac2: bytes) -> CommandApdu:
    """CREDIT SAM FOR PURCHASE ``80 72 00 00 04`` MAC2 → 9000 or 63CF."""
    return CommandApdu(CLA_PROPRIETARY, INS_CREDIT_SAM_FOR_PURCHASE, 0x00, 0x00,
                       _fixed("MAC2", mac2, 4))


# --- PBOC / EMV (spec/card.md §11) -------------------------------------------------------


def get_processing_options(pdol_data: bytes = b"") -> CommandApdu:
    """GET PROCESSING OPTIONS ``80 A8 00 00`` with the PDOL data in template 83."""
    return CommandApdu(CLA_PROPRIETARY, INS_GET_PROCESSING_OPTIONS, 0x00, 0x00,
                       Tlv(0x83, bytes(pdol_data)).to_bytes(), LE_ANY)


def generate_ac(ref_control: int, cdol_data: bytes) -> CommandApdu:
    """GENERATE AC ``80 AE P1 00`` (P1 00 AAC, 40 TC, 80 ARQC) with the CDOL data."""
    if not cdol_data:
        raise ApduError("GENERATE AC needs CDOL data", SW_WRONG_DATA)
    return CommandApdu(CLA_PROPRIETARY, INS_GENERATE_AC, _u8("reference control", ref_control),
                       0x00, bytes(cdol_data), LE_ANY)


def get_data(tag: int) -> CommandApdu:
    """GET DATA ``80 CA tag`` (e.g. 9F36 ATC, 9F13 last online ATC, 9F17 PIN try counter)."""
    if not 0 <= tag <= 0xFFFF:
        raise ApduError(f"GET DATA tag must be at most two bytes, got {tag!r}", SW_WRONG_P1P2)
    return CommandApdu(CLA_PROPRIETARY, INS_GET_DATA, tag >> 8, tag & 0xFF, b"", LE_ANY)


# --- naming and masking ------------------------------------------------------------------

_BY_INS: dict[int, str] = {
    INS_SELECT: "SELECT",
    INS_READ_BINARY: "READ BINARY",
    INS_READ_RECORD: "READ RECORD",
    INS_UPDATE_BINARY: "UPDATE BINARY",
    INS_UPDATE_RECORD: "UPDATE RECORD",
    INS_VERIFY: "VERIFY",
    INS_CHANGE_PIN: "CHANGE PIN",
    INS_GET_CHALLENGE: "GET CHALLENGE",
    INS_INTERNAL_AUTH: "INTERNAL AUTHENTICATE",
    INS_EXTERNAL_AUTH: "EXTERNAL AUTHENTICATE",
    INS_GET_RESPONSE: "GET RESPONSE",
    INS_APPLICATION_BLOCK: "APPLICATION BLOCK",
    0x18: "APPLICATION UNBLOCK",
    INS_CARD_BLOCK: "CARD BLOCK",
    INS_GET_DATA: "GET DATA",
    0xE2: "APPEND RECORD",
    0x0E: "ERASE BINARY",
}

_BY_INS_PROPRIETARY: dict[int, str] = {
    INS_CIPHER_DATA: "CIPHER DATA",
    INS_INIT_SAM_FOR_PURCHASE: "INIT SAM FOR PURCHASE",
    INS_CREDIT_SAM_FOR_PURCHASE: "CREDIT SAM FOR PURCHASE",
    INS_GET_PROCESSING_OPTIONS: "GET PROCESSING OPTIONS",
    INS_GENERATE_AC: "GENERATE AC",
    INS_WRITE_KEY: "WRITE KEY",
}

_PURSE: dict[int, str] = {
    INS_GET_BALANCE: "GET BALANCE",
    INS_CREDIT_FOR_LOAD: "CREDIT FOR LOAD",
    INS_DEBIT_FOR_PURCHASE: "DEBIT FOR PURCHASE",
    INS_GET_TRANSACTION_PROOF: "GET TRANSACTION PROOF",
}


def _header(cmd: bytes | CommandApdu) -> tuple[int, int, int, int] | None:
    if isinstance(cmd, CommandApdu):
        return cmd.cla, cmd.ins, cmd.p1, cmd.p2
    raw = bytes(cmd)
    if len(raw) < 4:
        return None
    return raw[0], raw[1], raw[2], raw[3]


def command_name(cmd: bytes | CommandApdu) -> str:
    """Human name of a command (or T=0 TPDU) from its header; unknown → ``"INS xx"``.

    >>> command_name(bytes.fromhex("B028010113"))
    'INITIALIZE FOR PURCHASE'
    >>> command_name(bytes.fromhex("00EE0000"))
    'INS EE'
    """
    head = _header(cmd)
    if head is None:
        return "MALFORMED"
    cla, ins, p1, p2 = head
    if cla == CLA_PURSE:
        if ins == INS_INITIALIZE:
            return "INITIALIZE FOR PURCHASE" if p1 == 0x01 else "INITIALIZE FOR LOAD"
        if ins in _PURSE:
            return _PURSE[ins]
    if cla == CLA_DELIVERY and ins == INS_DELIVERY_SESSION_KEY:
        return "DELIVERY SESSION KEY"
    if ins == INS_PIN_UNBLOCK:
        if cla & 0x80:
            return "PIN RELOAD" if p2 == 0x01 else "PIN UNBLOCK"
        return "CHANGE REFERENCE DATA"
    if cla & 0x80 and ins in _BY_INS_PROPRIETARY:
        return _BY_INS_PROPRIETARY[ins]
    if ins == 0x70 and not cla & 0x80:
        return "MANAGE CHANNEL"
    if ins in _BY_INS:
        return _BY_INS[ins]
    return f"INS {ins:02X}"


def is_secret_bearing(cmd: bytes | CommandApdu) -> bool:
    """True for commands whose data is a secret: VERIFY, CHANGE PIN, PIN RELOAD, the
    personalisation WRITE KEY, and the PSAM's CIPHER DATA encrypt (``80 FA 00``), whose
    plaintext is the new PIN block of a reload (spec/card.md §9). Traces must mask them
    (DESIGN.md)."""
    head = _header(cmd)
    if head is None:
        return False
    if head[0] == CLA_PROPRIETARY and head[1] == INS_CIPHER_DATA and head[2] == CIPHER_ENCRYPT:
        return True
    name = command_name(cmd)
    return name in ("VERIFY", "CHANGE PIN", "PIN RELOAD", "WRITE KEY", "CHANGE REFERENCE DATA")


PIN_INS = frozenset({INS_VERIFY, INS_PIN_UNBLOCK, INS_RESET_RETRY_COUNTER, INS_CHANGE_PIN})
"""INS codes whose data may be a PIN under any CLA: VERIFY (20), CHANGE REFERENCE DATA, PIN
UNBLOCK and PIN RELOAD (24), RESET RETRY COUNTER (2C), the card's CHANGE PIN (5E)."""


def may_carry_pin(cmd: bytes | CommandApdu) -> bool:
    """True when even the header of ``cmd`` should not be shown next to its data: an INS of
    :data:`PIN_INS` under any CLA, or a secret-bearing command (:func:`is_secret_bearing`).

    >>> may_carry_pin(bytes.fromhex("00200000")), may_carry_pin(bytes.fromhex("00A40400"))
    (True, False)
    """
    head = _header(cmd)
    return head is not None and (head[1] in PIN_INS or is_secret_bearing(cmd))


def mask_secrets(cmd: bytes | CommandApdu) -> bytes:
    """The command with the data of a secret-bearing command replaced by zeros.

    The header and the length fields stay, so the trace still shows the shape. When the
    bytes do not parse, everything after the header is zeroed.
    """
    raw = cmd.to_bytes() if isinstance(cmd, CommandApdu) else bytes(cmd)
    if not is_secret_bearing(raw):
        return raw
    try:
        parsed = CommandApdu.from_bytes(raw)
    except ApduError:
        return raw[:4] + bytes(len(raw) - 4)
    if not parsed.data:
        return raw
    masked = CommandApdu(parsed.cla, parsed.ins, parsed.p1, parsed.p2, bytes(len(parsed.data)),
                         parsed.le, parsed.extended).to_bytes()
    return masked if len(masked) == len(raw) else raw[:4] + bytes(len(raw) - 4)

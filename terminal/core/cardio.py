"""The card port over reader connections: the APDU sequences a counter terminal runs.

:class:`ReaderCard` implements :class:`terminal.core.ports.CardPort` for the user card in one
reader and the PSAM in another (spec/card.md §9: reader slots for the user card and the
PSAM). The terminal holds no key: the PSAM authenticates the card, opens the holder file,
computes the MACs and checks the purse MAC2 (the sequences of ``card/psam.py``).

- card basics: SELECT SSSE (FCI tag 86 = algorithm), EF05 records 01 03 05 06 07,
  INTERNAL AUTHENTICATE checked by the PSAM (spec/card.md §5 "a real terminal session"),
  EXTERNAL AUTHENTICATE with RKSSSE (3.00 cards), EF06 records 08 09 4E; the terminal
  number from the PSAM's EF16;
- holder identity: EF06 08 09 4E 0A 0B 0D and the photo in SSSE EF08 (READ BINARY);
- PIN: VERIFY (63Cx tries left, 6983 locked, spec/card.md §7), CHANGE PIN, PIN RELOAD and
  PIN UNBLOCK with a PSAM MAC (spec/card.md §5, §8);
- bank: SELECT the UnionPay debit ADF, GET PROCESSING OPTIONS, READ RECORD (PAN 5A, PSN
  5F34), GENERATE AC (ARQC) over the CDOL1 data (spec/card.md §11);
- DF04 EF08: the settlement record is written by the card itself in a purse purchase
  (INITIALIZE FOR PURCHASE, PSAM INIT SAM FOR PURCHASE → MAC1, DEBIT FOR PURCHASE, PSAM
  CREDIT SAM FOR PURCHASE checks MAC2; spec/card.md §6) with the account amount 0 (online
  mode); READ RECORD by number of SFI 8 reads the log back.

A card that leaves the reader raises :class:`~terminal.core.ports.CardRemovedError`
(``maybe_done`` when it left during DEBIT FOR PURCHASE, whose effect is then unknown).
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable

from apdu import atr as atrmod
from apdu import codec, tlv
from apdu import commands as C
from apdu.command import CommandApdu
from apdu.errors import ApduError
from apdu.sw import describe, driver_code
from reader.base import Connection
from reader.errors import CardRemoved, NoCard, NotPowered, ReaderError
from terminal.core.ports import (
    BankCryptogram,
    CardBlocked,
    CardError,
    CardFault,
    CardInfo,
    CardNotGenuine,
    CardRemovedError,
    CardUnsupported,
    HolderIdentity,
    NoPsam,
    PinLocked,
    PinRuleBroken,
    PinWrong,
    Sex,
    TxKind,
    TxRecord,
    build_cdol1,
)

EF05_TAGS = (0x01, 0x02, 0x03, 0x05, 0x06, 0x07)
KID_IRK = 0x01
KID_RKSSSE = 0x0A
KID_PIN = 0x01
USAGE_INTERNAL = 0x01
USAGE_EXTERNAL = 0x02
USAGE_PIN = 0x03
PHOTO_SIZE = 0x1000
EF08_SFI = 8
EF08_RECORDS = 30
PURCHASE_TYPE = 0x06
REMOVED = (CardRemoved, NoCard, NotPowered)


def status_error(sw: int, what: str) -> CardError:
    """The card error for status word ``sw`` (spec/card.md §7, §10 driver codes)."""
    if sw & 0xFFF0 == 0x63C0:
        tries = sw & 0x0F
        return PinLocked() if tries == 0 else PinWrong(tries)
    if sw == 0x6983:
        return PinLocked()
    if sw in (0x6A81, 0x9303):
        return CardBlocked(f"{what}: {describe(sw).en}")
    return CardFault(f"{what}: {sw:04X} {describe(sw).en}", driver_code(sw))


class ReaderCard:
    """:class:`~terminal.core.ports.CardPort` for the card in ``connect_card()`` with the
    PSAM on ``psam``. ``connect_card`` opens a fresh connection (after a pull the card is
    a new session); ``present`` tells whether a card is in the reader."""

    def __init__(self, connect_card: Callable[[], Connection], psam: Connection | None,
                 present: Callable[[], bool]) -> None:
        self._connect = connect_card
        self._psam = psam
        self._present = present
        self._conn: Connection | None = None
        self._alg = 0x01
        self._factor = b""
        self._generation = ""
        self._terminal = ""
        self._ssse_selected = False
        self._info: CardInfo | None = None

    # ----------------------------------------------------------------- plumbing
    def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(ReaderError):
                self._conn.disconnect()
            self._conn = None

    def _card(self) -> Connection:
        if self._conn is None:
            try:
                self._conn = self._connect()
            except REMOVED as exc:
                raise CardRemovedError(str(exc)) from None
            except ReaderError as exc:
                raise CardFault(str(exc), exc.driver_code) from None
            try:
                self._factor = atrmod.diversification_factor(self._conn.atr())
            except (ApduError, ReaderError) as exc:
                raise CardFault(f"unreadable ATR: {exc}", -1) from None
            self._ssse_selected = False
        return self._conn

    def _send(self, conn: Connection, cmd: CommandApdu, what: str, *,
              write: bool = False) -> tuple[bytes, int]:
        try:
            r = conn.transmit(cmd)
        except REMOVED as exc:
            if conn is self._conn:
                self._conn = None
                raise CardRemovedError(str(exc), maybe_done=write) from None
            raise NoPsam(f"the PSAM left its reader: {exc}") from None
        except ReaderError as exc:
            if conn is self._conn:
                self._conn = None
            raise CardFault(f"{what}: {exc}", exc.driver_code) from None
        return r.data, r.sw

    def _tx(self, cmd: CommandApdu, what: str, *, write: bool = False,
            ok: tuple[int, ...] = (0x9000,)) -> bytes:
        data, sw = self._send(self._card(), cmd, what, write=write)
        if sw not in ok:
            raise status_error(sw, what)
        return data

    def _sam(self, cmd: CommandApdu, what: str) -> bytes:
        if self._psam is None:
            raise NoPsam("no PSAM in the reader: the card cannot be authenticated")
        data, sw = self._send(self._psam, cmd, what)
        if sw != 0x9000:
            if what == "internal authentication" and sw == 0x6300:
                raise CardNotGenuine("the card failed internal authentication")
            raise CardFault(f"PSAM {what}: {sw:04X} {describe(sw).en}", driver_code(sw))
        return data

    def _select_ssse(self) -> None:
        fci = self._tx(C.select_ssse(), "SELECT SSSE")
        alg = tlv.find(fci, 0x6F, 0xA5, 0x9F0C, 0x86)
        if alg is not None and alg.value:
            self._alg = alg.value[0]
        self._ssse_selected = True

    def _record(self, tag: int) -> bytes:
        data = self._tx(C.read_record_by_tag(tag, le=0), f"READ RECORD {tag:02X}")
        return data[2:] if len(data) >= 2 and data[0] == tag else data

    def _session(self, usage: int, kid: int, what: str) -> bytes:
        challenge = self._tx(C.get_challenge(8), "GET CHALLENGE")
        self._sam(C.delivery_session_key(self._alg << 4 | usage, kid, self._factor, challenge),
                  what)
        return challenge

    def _terminal_number(self) -> str:
        if not self._terminal and self._psam is not None:
            self._sam(C.psam_select_terminal_file(), "SELECT EF16")
            self._terminal = codec.cn_decode(self._sam(C.psam_read_terminal_number(),
                                                       "READ EF16"))
        return self._terminal

    # ----------------------------------------------------------------- CardPort
    def present(self) -> bool:
        try:
            return self._present()
        except ReaderError:
            return False

    def read_basics(self) -> CardInfo:
        self.close()
        self._card()
        self._select_ssse()
        self._tx(C.select_ef(0xEF05), "SELECT EF05")
        ef05 = {t: self._record(t) for t in EF05_TAGS}
        self._generation = codec.an_decode(ef05[0x03])
        self._internal_auth()
        self._open_holder_file()
        ssn = codec.an_decode(self._record(0x08))
        name = self._name()
        card_id = ef05[0x01].hex().upper()
        info = CardInfo(
            area_code=card_id[:6], ssn=ssn, card_number=codec.an_decode(ef05[0x07]),
            card_id_code=card_id, name=name, spec_version=self._generation,
            issue_date=codec.cn_decode(ef05[0x05]), expiry_date=codec.cn_decode(ef05[0x06]),
            terminal_number=self._terminal_number(),
            atr_historical=atrmod.parse(self._card().atr()).historical.hex().upper())
        self._info = info
        return info

    def _internal_auth(self) -> None:
        r1 = self._tx(C.get_challenge(8), "GET CHALLENGE")
        r2 = self._tx(C.get_challenge(8), "GET CHALLENGE")
        s = self._tx(C.internal_authenticate(r1, r2), "INTERNAL AUTHENTICATE")
        self._sam(C.delivery_session_key(self._alg << 4 | USAGE_INTERNAL, KID_IRK,
                                         self._factor, r1), "session key")
        self._sam(CommandApdu(0x80, 0xFA, 0x09, 0x00, r2 + s), "internal authentication")

    def _open_holder_file(self) -> None:
        if not self._generation.startswith("3"):
            self._tx(C.select_ef(0xEF06), "SELECT EF06")
            return
        c1 = self._tx(C.get_challenge(8), "GET CHALLENGE")
        c2 = self._tx(C.get_challenge(8), "GET CHALLENGE")
        self._sam(C.delivery_session_key(self._alg << 4 | USAGE_EXTERNAL, KID_RKSSSE,
                                         self._factor, c1), "session key")
        auth = self._sam(CommandApdu(0x80, 0xFA, 0x08, 0x00, c2, 0), "authentication data")
        self._tx(C.external_authenticate(KID_RKSSSE, auth, c2), "EXTERNAL AUTHENTICATE")
        self._tx(C.select_ef(0xEF06), "SELECT EF06")

    def _name(self) -> str:
        main = self._record(0x09)
        try:
            ext = self._record(0x4E)
        except CardFault:
            ext = b""
        return codec.join_name(main, ext)

    def read_identity(self, with_photo: bool = True) -> HolderIdentity:
        if self._info is None:
            self.read_basics()
        else:
            self._select_ssse()
            self._open_holder_file()
        ssn = codec.an_decode(self._record(0x08))
        name = self._name()
        sex = codec.an_decode(self._record(0x0A)) or "9"
        ethnicity = codec.cn_decode(self._record(0x0B))
        try:
            birth: dt.date | None = codec.date_decode(self._record(0x0D))
        except (ApduError, ValueError):
            birth = None
        photo = self._photo() if with_photo else b""
        return HolderIdentity(ssn=ssn, name=name, sex=Sex(sex) if sex in "129" else
                              Sex.UNSTATED, birth_date=birth, ethnicity=ethnicity, photo=photo)

    def _photo(self) -> bytes:
        self._tx(C.select_ef(0xEF08), "SELECT photo")
        out = bytearray()
        while len(out) < PHOTO_SIZE:
            n = min(0xFF, PHOTO_SIZE - len(out))
            chunk = self._tx(C.read_binary(len(out), n), "READ BINARY photo")
            if not chunk:
                break
            out += chunk
            end = out.find(b"\xff\xd9")
            if out.startswith(b"\xff\xd8") and end > 0:
                return bytes(out[:end + 2])
        return bytes(out).rstrip(b"\x00")

    def pin_tries_left(self) -> int | None:
        if not self._ssse_selected:
            self._select_ssse()
        _, sw = self._send(self._card(), C.verify(None), "VERIFY")
        if sw & 0xFFF0 == 0x63C0:
            return sw & 0x0F
        if sw == 0x6983:
            return 0
        return None

    def verify_pin(self, pin: str) -> None:
        self._select_ssse()
        self._tx(C.verify(pin), "VERIFY", write=True)

    def change_pin(self, old: str, new: str) -> None:
        self._select_ssse()
        _, sw = self._send(self._card(), C.change_pin(old, new), "CHANGE PIN", write=True)
        if sw == 0x6A80:
            raise PinRuleBroken("the card refused the new PIN")
        if sw != 0x9000:
            raise status_error(sw, "CHANGE PIN")

    def reload_pin(self, new: str) -> None:
        self._select_ssse()
        self._session(USAGE_PIN, KID_PIN, "session key")
        body = bytes([len(new)]) + codec.pin_encode(new)
        enc = self._sam(C.cipher_data(0x00, body), "PIN encipherment")
        header = bytes.fromhex("84240001")
        mac = self._sam(C.cipher_data(0x05, header + bytes([len(enc) + 4]) + enc), "MAC")
        self._tx(CommandApdu(0x84, 0x24, 0x00, 0x01, enc + mac), "PIN RELOAD", write=True)

    def unblock_pin(self) -> None:
        self._select_ssse()
        self._session(USAGE_PIN, KID_PIN, "session key")
        mac = self._sam(C.cipher_data(0x05, bytes.fromhex("8424000004")), "MAC")
        self._tx(CommandApdu(0x84, 0x24, 0x00, 0x00, mac), "PIN UNBLOCK", write=True)

    def bank_cryptogram(self, amount_fen: int, when: dt.datetime) -> BankCryptogram:
        _, sw = self._send(self._card(), C.select_name(C.PBOC_DEBIT_AID), "SELECT debit")
        self._ssse_selected = False
        if sw == 0x6A82:
            raise CardUnsupported("the card has no bank application")
        if sw != 0x9000:
            raise status_error(sw, "SELECT debit application")
        gpo = self._tx(C.get_processing_options(bytes.fromhex("0156")),
                       "GET PROCESSING OPTIONS")
        afl = tlv.find(gpo, 0x77, 0x94)
        found: dict[int, bytes] = {}
        if afl is not None:
            for i in range(0, len(afl.value) - 3, 4):
                sfi, first, last = afl.value[i] >> 3, afl.value[i + 1], afl.value[i + 2]
                for n in range(first, last + 1):
                    rec = self._tx(C.read_record_by_number(n, sfi=sfi, le=0), "READ RECORD")
                    for _, item in tlv.walk(rec):
                        found.setdefault(item.tag, item.value)
        if 0x5A not in found:
            raise CardFault("the bank application has no PAN", -1)
        pan = found[0x5A].hex().upper().rstrip("F")
        psn = found.get(0x5F34, b"\x01").hex()
        un = self._tx(C.get_challenge(4), "GET CHALLENGE").hex().upper()
        cdol1 = build_cdol1(amount_fen, when.strftime("%y%m%d"), un)
        answer = self._tx(C.generate_ac(0x80, bytes.fromhex(cdol1)), "GENERATE AC",
                          write=True)
        atc = tlv.find(answer, 0x77, 0x9F36)
        ac = tlv.find(answer, 0x77, 0x9F26)
        if atc is None or ac is None:
            raise CardFault("GENERATE AC answered no cryptogram", -1)
        return BankCryptogram(pan=pan, pan_seq=psn, amount_fen=amount_fen, cdol1=cdol1,
                              atc=atc.value.hex().upper(), arqc=ac.value.hex().upper())

    def _select_df04(self) -> None:
        self._select_ssse()
        self._tx(C.select_df("DF04"), "SELECT DF04")
        self._ssse_selected = False

    def supports_transaction_log(self) -> bool:
        self._select_ssse()
        _, sw = self._send(self._card(), C.select_df("DF04"), "SELECT DF04")
        self._ssse_selected = False
        if sw == 0x6A82:
            return False
        if sw != 0x9000:
            raise status_error(sw, "SELECT DF04")
        return True

    def append_transaction(self, record: TxRecord) -> None:
        if record.kind is not TxKind.SETTLEMENT:
            raise CardUnsupported("a refund record needs the host's load key (CREDIT FOR LOAD)")
        self._select_df04()
        terminal = bytes.fromhex(self._terminal_number().rjust(12, "0"))
        init = self._tx(C.initialize_for_purchase(1, record.account_fen, record.selfpay_fen,
                                                  record.fund_fen, terminal),
                        "INITIALIZE FOR PURCHASE")
        seq, keyver, alg, rnd = init[4:6], init[9:10], init[10:11], init[11:15]
        when = codec.datetime_encode(record.when)
        sam = self._sam(C.init_sam_for_purchase(
            rnd + seq + record.account_fen.to_bytes(4, "big") + bytes([PURCHASE_TYPE]) + when
            + keyver + alg + self._factor), "INIT SAM FOR PURCHASE")
        out = self._tx(C.debit_for_purchase(sam[:4], when, sam[4:8]), "DEBIT FOR PURCHASE",
                       write=True)
        self._sam(C.credit_sam_for_purchase(out[4:8]), "CREDIT SAM FOR PURCHASE")

    def read_transactions(self) -> list[TxRecord]:
        self._select_df04()
        out: list[TxRecord] = []
        for n in range(1, EF08_RECORDS + 1):
            data, sw = self._send(self._card(), C.read_record_by_number(n, sfi=EF08_SFI, le=28),
                                  "READ RECORD EF08")
            if sw in (0x6A83, 0x6B00):
                break
            if sw != 0x9000:
                raise status_error(sw, "READ RECORD EF08")
            if len(data) != 28 or not any(data):
                break
            out.append(parse_record(data))
        return out


def parse_record(data: bytes) -> TxRecord:
    """A 28-byte DF04 EF08 record (spec/card.md §4)."""
    kind = TxKind(data[2:3].decode("ascii", "replace"))
    return TxRecord(kind=kind, terminal=codec.cn_decode(data[3:9]),
                    when=codec.datetime_decode(data[9:16]),
                    account_fen=int.from_bytes(data[16:20], "big"),
                    selfpay_fen=int.from_bytes(data[20:24], "big"),
                    fund_fen=int.from_bytes(data[24:28], "big"),
                    sequence=int.from_bytes(data[:2], "big"))

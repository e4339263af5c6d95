"""The card port over reader connections: the APDU sequences a counter terminal runs.

:class:`ReaderCard` implements :class:`terminal.core.ports.CardPort` for the user card in one
reader and the PSAM in another (spec/card.md §9: reader slots for the user card and the
PSAM). The terminal holds no key: the PSAM authenticates the card, opens the holder file,
computes the MACs and checks the purse MAC2 (the sequences of ``card/psam.py``).

- card basics, holder identity and photo, PIN query/verify/change, PIN reload and unblock,
  the DF04 EF08 log: the driver façade :class:`reader.facade.CardDriver` (spec/card.md §5,
  §7, §10), its errors mapped to the port's;
- bank: SELECT the UnionPay debit ADF, VERIFY (query) for the cardholder verification,
  GET PROCESSING OPTIONS, READ RECORD (PAN 5A, PSN 5F34), GENERATE AC (ARQC) over the CDOL1
  data (spec/card.md §11); after the host approved, the second GENERATE AC (TC asked)
  carries the host's ARPC for issuer authentication (EMV Book 3 §6.5.5, §10.9; CDOL2 of
  ``card/pboc.py``: ARC ‖ CDOL1 data ‖ ``91`` ARPC ‖ ARC) and the card answers TC or AAC;
- bank PIN (spec/card.md §1, §11): a shared-PIN card's bank application counts the SSSE PIN
  already verified (VERIFY query answers 9000), a separate-PIN card's answers 63Cx until
  its own PIN is verified there: :meth:`ReaderCard.bank_pin_tries` tells which,
  :meth:`ReaderCard.verify_bank_pin` verifies it, and :meth:`ReaderCard.bank_cryptogram`
  refuses with :class:`BankPinRequired` rather than skip the cardholder verification;
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
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from apdu import atr as atrmod
from apdu import codec, tlv
from apdu import commands as C
from apdu.command import CommandApdu
from apdu.sw import describe, driver_code
from reader import facade
from reader.base import Connection, Transport
from reader.errors import (
    CardRefused,
    CardRemoved,
    CardStatusError,
    NoCard,
    NotPowered,
    ReaderError,
)
from terminal.core.ports import (
    BankCryptogram,
    CardBlocked,
    CardError,
    CardFault,
    CardInfo,
    CardKeyBlocked,
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

if TYPE_CHECKING:
    from terminal.core.readers import CardSession

T = TypeVar("T")

EF08_SFI = 8
PURCHASE_TYPE = 0x06
REMOVED = (CardRemoved, NoCard, NotPowered)
CID_TC = 0x40
CVR_ISSUER_AUTH_FAILED = 0x08
ARC_APPROVED = "3030"


class BankPinRequired(CardError):
    """The bank application of a separate-PIN card wants its own PIN (VERIFY query 63Cx,
    spec/card.md §1, §7) before it may authorise a payment."""

    def __init__(self, tries_left: int) -> None:
        super().__init__(f"the card's bank application needs its own PIN ({tries_left} "
                         "tries left)")
        self.tries_left = tries_left


@dataclass(frozen=True)
class BankCompletion:
    """The card's answer to the host's ARPC (second GENERATE AC, EMV Book 3 §6.5.5)."""

    approved: bool
    """True when the card answered TC."""
    issuer_authentication_failed: bool
    """The ARPC did not verify (CVR of the IAD 9F10, card/pboc.py)."""
    atc: str
    cryptogram: str


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


def port_error(exc: ReaderError, *, write: bool = False) -> CardError:
    """A reader-layer or façade error as the port's error (spec/card.md §10 codes)."""
    if isinstance(exc, REMOVED):
        return CardRemovedError(str(exc), maybe_done=write)
    if isinstance(exc, facade.PinWrong):
        return PinWrong(exc.tries_left)
    if isinstance(exc, facade.PinLocked):
        return PinLocked()
    if isinstance(exc, facade.NoPsam):
        return NoPsam(str(exc))
    if isinstance(exc, facade.KeyBlocked):
        return CardKeyBlocked(exc.key, str(exc))
    if isinstance(exc, facade.KeyAuthFailed):  # the card and the PSAM disagree on the key
        return CardNotGenuine(str(exc))
    if isinstance(exc, facade.PinFormatError):
        return PinRuleBroken(str(exc))
    if isinstance(exc, CardRefused) and exc.driver_code == -21:
        return CardNotGenuine(str(exc))
    if isinstance(exc, CardStatusError):
        if exc.sw in (0x6A81, 0x9303):
            return CardBlocked(str(exc))
        if exc.sw == 0x6A80 and "PIN" in str(exc):
            return PinRuleBroken(str(exc))
    return CardFault(str(exc), exc.driver_code)


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
        self._driver: facade.CardDriver | None = None
        self._terminal = ""
        self._bank_cdol1: bytes | None = None

    @classmethod
    def in_reader(cls, transport: Transport, reader: str, psam: Connection | None, *,
                  exclusive: bool = True) -> ReaderCard:
        """The card port for the card in ``reader`` of ``transport`` (a new connection for
        each card session) with the PSAM on ``psam``."""

        def present() -> bool:
            return any(r.card_present for r in transport.readers() if r.name == reader)

        return cls(lambda: transport.connect(reader, exclusive=exclusive), psam, present)

    @classmethod
    def over_session(cls, session: CardSession) -> ReaderCard:
        """The card port over a session of :func:`terminal.core.readers.open_card`: its
        connection and façade serve the first card session, its transport the next ones."""
        card = cls.in_reader(session.transports[0], session.user.reader, session.psam)
        card._conn, card._driver = session.user, session.driver
        return card

    # ----------------------------------------------------------------- plumbing
    def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(ReaderError):
                self._conn.disconnect()
        self._conn = None
        self._driver = None
        self._bank_cdol1 = None

    def _drv(self) -> facade.CardDriver:
        if self._driver is None:
            try:
                self._conn = self._connect()
            except ReaderError as exc:
                raise port_error(exc) from None
            self._driver = facade.CardDriver(self._conn, self._psam)
        return self._driver

    def _call(self, fn: Callable[[facade.CardDriver], T], *, write: bool = False) -> T:
        driver = self._drv()
        try:
            return fn(driver)
        except ReaderError as exc:
            if isinstance(exc, REMOVED):
                self.close()
            raise port_error(exc, write=write) from None

    def _send(self, cmd: CommandApdu, *, write: bool = False) -> tuple[bytes, int]:
        r = self._call(lambda d: d.user.transmit(cmd), write=write)
        return r.data, r.sw

    def _tx(self, cmd: CommandApdu, what: str, *, write: bool = False) -> bytes:
        data, sw = self._send(cmd, write=write)
        if sw != 0x9000:
            raise status_error(sw, what)
        return data

    def _sam(self, cmd: CommandApdu, what: str) -> bytes:
        if self._psam is None:
            raise NoPsam("no PSAM in the reader: put one in the PSAM slot")
        try:
            r = self._psam.transmit(cmd)
        except ReaderError as exc:
            raise NoPsam(f"the PSAM does not answer: {exc}") from None
        if r.sw != 0x9000:
            raise CardFault(f"PSAM {what}: {r.sw:04X} {describe(r.sw).en}", driver_code(r.sw))
        return r.data

    # ----------------------------------------------------------------- CardPort
    def present(self) -> bool:
        try:
            return self._present()
        except ReaderError:
            return False

    def read_basics(self) -> CardInfo:
        self.close()  # a new card session: power, select, authenticate
        b = self._call(lambda d: d.read_card_basics())
        self._terminal = b.terminal_number
        return CardInfo(area_code=b.area_code, ssn=b.ssn, card_number=b.card_number,
                        card_id_code=b.card_id_code, name=b.name, spec_version=b.spec_version,
                        issue_date=b.issue_date, expiry_date=b.expiry_date,
                        terminal_number=b.terminal_number,
                        atr_historical=b.atr_historical_hex)

    def read_identity(self, with_photo: bool = True) -> HolderIdentity:
        h = self._call(lambda d: d.read_holder(photo=with_photo))
        try:
            birth: dt.date | None = dt.datetime.strptime(h.birth_date, "%Y%m%d").date()
        except ValueError:
            birth = None
        sex = Sex(h.sex) if h.sex in ("1", "2", "9") else Sex.UNSTATED
        return HolderIdentity(ssn=h.ssn, name=h.name, sex=sex, birth_date=birth,
                              ethnicity=h.ethnicity, photo=h.photo or b"")

    def pin_tries_left(self) -> int | None:
        return self._call(lambda d: d.pin_tries_left())

    def verify_pin(self, pin: str) -> None:
        self._call(lambda d: d.verify_pin(pin), write=True)

    def change_pin(self, old: str, new: str) -> None:
        self._call(lambda d: d.change_pin(old, new), write=True)

    def reload_pin(self, new: str) -> None:
        self._call(lambda d: d.reload_pin(new), write=True)

    def unblock_pin(self) -> None:
        self._call(lambda d: d.unblock_pin(), write=True)

    def _select_bank(self) -> None:
        self._bank_cdol1 = None
        _, sw = self._send(C.select_name(C.PBOC_DEBIT_AID))
        if self._driver is not None:
            self._driver.algorithm = None  # the SSSE is no longer selected
        if sw == 0x6A82:
            raise CardUnsupported("the card has no bank application")
        if sw != 0x9000:
            raise status_error(sw, "SELECT debit application")

    def _bank_pin_query(self) -> int | None:
        """VERIFY with no data in the selected bank application (spec/card.md §7)."""
        _, sw = self._send(C.verify(None))
        if sw == 0x9000:
            return None
        if sw == 0x6983 or sw == 0x63C0:
            raise PinLocked()
        if sw & 0xFFF0 == 0x63C0:
            return sw & 0x0F
        raise status_error(sw, "VERIFY (bank application)")

    def bank_pin_tries(self) -> int | None:
        """None when the bank application needs no further PIN (shared PIN already
        verified), else the tries left of its own PIN; a locked PIN raises PinLocked."""
        self._select_bank()
        return self._bank_pin_query()

    def verify_bank_pin(self, pin: str) -> None:
        """VERIFY the bank application's own PIN (separate-PIN cards, spec/card.md §1)."""
        if not facade.PIN_RE.match(pin):
            raise PinRuleBroken("the PIN must be 4 to 12 digits / 密码须为 4 至 12 位数字")
        self._select_bank()
        _, sw = self._send(C.verify(pin), write=True)
        if sw == 0x6A80:
            raise PinRuleBroken("the PIN has a bad length or format")
        if sw != 0x9000:
            raise status_error(sw, "VERIFY (bank application)")

    def bank_cryptogram(self, amount_fen: int, when: dt.datetime) -> BankCryptogram:
        """The debit application's ARQC for ``amount_fen`` (spec/card.md §11), after the
        cardholder verification: :class:`BankPinRequired` when its own PIN is due."""
        self._select_bank()
        tries = self._bank_pin_query()
        if tries is not None:
            raise BankPinRequired(tries)
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
        self._bank_cdol1 = bytes.fromhex(cdol1)
        return BankCryptogram(pan=pan, pan_seq=psn, amount_fen=amount_fen, cdol1=cdol1,
                              atc=atc.value.hex().upper(), arqc=ac.value.hex().upper())

    def complete_bank(self, arpc: str, arc: str = ARC_APPROVED) -> BankCompletion:
        """Issuer authentication: the host's ARPC (and ARC) to the card in the second
        GENERATE AC, TC asked (EMV Book 3 §6.5.5, §10.9; data of the CDOL2 of
        card/pboc.py). The card answers TC only for the right ARPC of an approval."""
        if self._bank_cdol1 is None:
            raise CardFault("no bank authorisation is open on this card (GENERATE AC first)",
                            -1)
        try:
            arpc_b, arc_b = bytes.fromhex(arpc), bytes.fromhex(arc)
        except ValueError:
            arpc_b, arc_b = b"", b""
        if len(arpc_b) != 8 or len(arc_b) != 2:
            raise CardFault(f"the host's ARPC is malformed ({arpc!r}, ARC {arc!r})", -22)
        data = arc_b + self._bank_cdol1 + arpc_b + arc_b
        self._bank_cdol1 = None  # one completion per authorisation
        answer = self._tx(C.generate_ac(CID_TC, data), "GENERATE AC (completion)", write=True)
        cid = tlv.find(answer, 0x77, 0x9F27)
        atc = tlv.find(answer, 0x77, 0x9F36)
        ac = tlv.find(answer, 0x77, 0x9F26)
        iad = tlv.find(answer, 0x77, 0x9F10)
        if cid is None or atc is None or ac is None:
            raise CardFault("the completion GENERATE AC answered no cryptogram", -1)
        cvr = iad.value[4:7] if iad is not None and len(iad.value) >= 7 else b"\x00"
        return BankCompletion(
            approved=cid.value[:1] == bytes([CID_TC]),
            issuer_authentication_failed=bool(cvr[0] & CVR_ISSUER_AUTH_FAILED),
            atc=atc.value.hex().upper(), cryptogram=ac.value.hex().upper())

    def supports_transaction_log(self) -> bool:
        self._call(lambda d: d.select_ssse())
        _, sw = self._send(C.select_df("DF04"))
        if sw == 0x6A82:
            return False
        if sw != 0x9000:
            raise status_error(sw, "SELECT DF04")
        return True

    def append_transaction(self, record: TxRecord) -> None:
        """The card writes the record itself in a purse purchase (spec/card.md §6)."""
        if record.kind is not TxKind.SETTLEMENT:
            raise CardUnsupported("a refund record needs the host's load key (CREDIT FOR LOAD)")
        self._call(lambda d: d.select_ssse())
        self._tx(C.select_df("DF04"), "SELECT DF04")
        terminal = bytes.fromhex((self._terminal or record.terminal).rjust(12, "0"))
        init = self._tx(C.initialize_for_purchase(1, record.account_fen, record.selfpay_fen,
                                                  record.fund_fen, terminal),
                        "INITIALIZE FOR PURCHASE")
        seq, keyver, alg, rnd = init[4:6], init[9:10], init[10:11], init[11:15]
        when = codec.datetime_encode(record.when)
        sam = self._sam(C.init_sam_for_purchase(
            rnd + seq + record.account_fen.to_bytes(4, "big") + bytes([PURCHASE_TYPE]) + when
            + keyver + alg + atrmod.diversification_factor(self._drv().user.atr())),
            "INIT SAM FOR PURCHASE")
        try:
            out = self._tx(C.debit_for_purchase(sam[:4], when, sam[4:8]),
                           "DEBIT FOR PURCHASE", write=True)
        except CardRemovedError as exc:  # the record, if written, carries this sequence
            raise CardRemovedError(exc.message, maybe_done=True,
                                   record_sequence=int.from_bytes(seq, "big")) from None
        self._sam(C.credit_sam_for_purchase(out[4:8]), "CREDIT SAM FOR PURCHASE")

    def read_transactions(self) -> list[TxRecord]:
        raw = self._call(lambda d: d.read_medical_log())
        return [parse_record(r) for r in raw if len(r) == 28 and any(r)]


def parse_record(data: bytes) -> TxRecord:
    """A 28-byte DF04 EF08 record (spec/card.md §4)."""
    kind = TxKind(data[2:3].decode("ascii", "replace"))
    return TxRecord(kind=kind, terminal=codec.cn_decode(data[3:9]),
                    when=codec.datetime_decode(data[9:16]),
                    account_fen=int.from_bytes(data[16:20], "big"),
                    selfpay_fen=int.from_bytes(data[20:24], "big"),
                    fund_fen=int.from_bytes(data[24:28], "big"),
                    sequence=int.from_bytes(data[:2], "big"))

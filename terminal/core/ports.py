"""The core's ports: what the counter flows need of the card, the host and the catalogue.

The flows (:mod:`terminal.core.checkout` and friends) talk only to these protocols; the
adapters in :mod:`terminal.core.adapters` implement them over the reader driver façade and
the ledger client, and tests implement them with in-memory fakes. Every failure a port can
report is one of the typed errors below, so a flow can decide what to do with each one.

Card side (spec/card.md §5, §7, §10, §11): reading the card basics includes proving the card
genuine with the PSAM (INTERNAL AUTHENTICATE); a PIN is verified against the one shared
PIN (seed rule C2, spec/card.md §1 "shared" mode), or, on a separate-PIN card, the bank
application has its own PIN; the bank application produces an ARQC for an amount and checks
the issuer's ARPC in return (issuer authentication, §11); DF04 EF08 holds the medical
transaction log (spec/card.md §4).

Host side (spec/host.md §1, §2): a transaction is an ``infno`` with an ``input`` object; the
host answers an ``output`` object or refuses with a message; a timeout leaves the outcome
unknown and is settled with a reversal (2601) of the message, identified by its ``msgid``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

# --------------------------------------------------------------------------- card errors


class CardError(Exception):
    """Root of every card-side failure. ``driver_code`` follows spec/card.md §10."""

    driver_code = -11

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class CardRemovedError(CardError):
    """The card is not in the reader, or was pulled during an exchange (driver code −2).

    ``maybe_done`` is True when the card was pulled while a write was in flight, so the
    write may or may not have reached the card; ``record_sequence`` then names the EF08
    record the write would have created (the card's own sequence), when known.
    """

    driver_code = -2

    def __init__(self, message: str = "the card was removed", *, maybe_done: bool = False,
                 record_sequence: int | None = None):
        super().__init__(message)
        self.maybe_done = maybe_done
        self.record_sequence = record_sequence


class CardNotGenuine(CardError):
    """Internal authentication through the PSAM failed (driver code −21)."""

    driver_code = -21


class NoPsam(CardError):
    """The reader has no PSAM, so the card cannot be authenticated (driver code −2201)."""

    driver_code = -2201


class PinWrong(CardError):
    """The PIN was wrong; ``tries_left`` more tries before the card locks (code −51)."""

    driver_code = -51

    def __init__(self, tries_left: int) -> None:
        super().__init__(f"wrong PIN: {tries_left} tries left")
        self.tries_left = tries_left


class PinLocked(CardError):
    """The PIN is blocked after too many wrong tries (code −52, status 6983)."""

    driver_code = -52

    def __init__(self, message: str = "the PIN is locked") -> None:
        super().__init__(message)


class PinRuleBroken(CardError):
    """A new PIN was refused: wrong length, the initial PIN, the two entries differ…"""

    driver_code = -33


class CardBlocked(CardError):
    """The application or the whole card is blocked (status 9303 / 6A81)."""

    driver_code = -27393


class CardKeyBlocked(CardError):
    """A card key is blocked after too many failed external authentications (status 6983,
    spec/card.md §7, driver code −27011): the files it guards (the holder file EF06 of a 3.00
    card, the photo) cannot be read; only a replacement card helps. ``key`` names it."""

    driver_code = -27011

    def __init__(self, key: str, message: str = "") -> None:
        super().__init__(message or f"the card's key {key} is blocked")
        self.key = key


class CardUnsupported(CardError):
    """The card lacks the function (no bank application, no EF08 log…)."""

    driver_code = -1


class CardFault(CardError):
    """Any other status word or reader failure; ``driver_code`` carries the detail."""

    def __init__(self, message: str, driver_code: int = -11) -> None:
        super().__init__(message)
        self.driver_code = driver_code


# --------------------------------------------------------------------------- host errors


class HostError(Exception):
    """Root of every host-side failure seen by the terminal."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class HostRefused(HostError):
    """The host answered ``infcode = -1``: the transaction had no effect; show ``message``."""

    def __init__(self, message: str, *, infno: str = "", msgid: str = "",
                 code: str = "") -> None:
        super().__init__(message)
        self.infno = infno
        self.msgid = msgid
        self.code = code


class HostTimeout(HostError):
    """No answer in time: the host may or may not have applied ``msgid``.

    ``reversed`` is True when the client already sent (and the host accepted) the 2601
    reversal for it (spec/host.md §4), False when the core still has to.
    """

    def __init__(self, message: str, *, infno: str, msgid: str, reversed: bool = False):
        super().__init__(message)
        self.infno = infno
        self.msgid = msgid
        self.reversed = reversed


class HostUnreachable(HostError):
    """The request never reached the host (connection refused, DNS…): nothing happened."""


# --------------------------------------------------------------------------- card data


class Sex(StrEnum):
    """EF06 tag 0A (spec/card.md §4)."""

    MALE = "1"
    FEMALE = "2"
    UNSTATED = "9"

    @property
    def label(self) -> str:
        return {"1": "male 男", "2": "female 女", "9": "unstated 未说明"}[self.value]


@dataclass(frozen=True)
class CardInfo:
    """The card basics (``iReadCardBas``, spec/card.md §10) of an authenticated card."""

    area_code: str
    ssn: str
    card_number: str
    card_id_code: str
    name: str
    spec_version: str = ""
    issue_date: str = ""
    expiry_date: str = ""
    terminal_number: str = ""
    atr_historical: str = ""

    @property
    def masked_number(self) -> str:
        """Card number with the middle hidden, as printed on slips (``X00****19``)."""
        n = self.card_number
        return n if len(n) <= 5 else n[:3] + "*" * (len(n) - 5) + n[-2:]


@dataclass(frozen=True)
class HolderIdentity:
    """The holder file EF06 and photo (spec/card.md §3, §4) for the clerk to compare (U2)."""

    ssn: str
    name: str
    sex: Sex
    birth_date: date | None
    ethnicity: str = ""
    photo: bytes = b""

    @property
    def photo_kind(self) -> str:
        """``jpeg``, ``bmp`` or ``""`` from the photo's magic bytes."""
        if self.photo.startswith(b"\xff\xd8"):
            return "jpeg"
        if self.photo.startswith(b"BM"):
            return "bmp"
        return ""


@dataclass(frozen=True)
class BankCryptogram:
    """The bank application's GENERATE AC answer and the data it signed (spec/card.md §11).

    ``cdol1`` is the 29-byte CDOL1 data exactly as sent (amount 9F02 ‖ other amount 9F03 ‖
    country 9F1A ‖ TVR 95 ‖ currency 5F2A ‖ date 9A ‖ type 9C ‖ unpredictable number 9F37),
    in hex; ``atc`` and ``arqc`` are the card's answer. :meth:`to_wire` gives the
    ``bank_auth`` object the host re-computes the ARQC from.
    """

    pan: str
    amount_fen: int
    cdol1: str
    atc: str
    arqc: str
    pan_seq: str = "01"

    def to_wire(self) -> dict[str, str]:
        return {"pan": self.pan, "pan_seq": self.pan_seq, "cdol1": self.cdol1.upper(),
                "atc": self.atc.upper(), "arqc": self.arqc.upper()}


def build_cdol1(amount_fen: int, txn_date: str, un: str, *, txn_type: str = "00") -> str:
    """CDOL1 data (hex) for a CNY purchase of ``amount_fen`` on ``txn_date`` (YYMMDD).

    >>> build_cdol1(1250, "261128", "12345678")[:12]
    '000000001250'
    """
    return (f"{amount_fen:012d}{0:012d}0156" "0000000000" "0156"
            f"{txn_date}{txn_type}{un}").upper()


class TxKind(StrEnum):
    """EF08 record type (spec/card.md §4): 1 credit, 2 settlement."""

    CREDIT = "1"
    SETTLEMENT = "2"


@dataclass(frozen=True)
class TxRecord:
    """One DF04 EF08 medical transaction record (28 bytes, spec/card.md §4).

    ``sequence`` is the card's own record sequence; it is ignored when comparing a record
    written by the core with the one read back.
    """

    kind: TxKind
    terminal: str
    when: datetime
    account_fen: int
    selfpay_fen: int
    fund_fen: int
    sequence: int = 0

    def same_entry(self, other: TxRecord) -> bool:
        """True when ``other`` is this record (whatever sequence the card gave it)."""
        return (
            self.kind == other.kind
            and self.terminal.rjust(12, "0") == other.terminal.rjust(12, "0")
            and _same_second(self.when, other.when)
            and self.account_fen == other.account_fen
            and self.selfpay_fen == other.selfpay_fen
            and self.fund_fen == other.fund_fen
        )


def _same_second(a: datetime, b: datetime) -> bool:
    """Equal to the second; aware times compare as instants, naive ones as wall time."""
    a, b = a.replace(microsecond=0), b.replace(microsecond=0)
    if (a.tzinfo is None) != (b.tzinfo is None):
        return a.replace(tzinfo=None) == b.replace(tzinfo=None)
    return a == b


# --------------------------------------------------------------------------- the ports

ARC_APPROVED = "3030"
"""The authorisation response code of an approval (EMV Book 3 §6.5.5)."""


class BankCompletionAnswer(Protocol):
    """The card's answer to the host's ARPC (second GENERATE AC, spec/card.md §11)."""

    @property
    def approved(self) -> bool:
        """True when the card answered TC."""

    @property
    def issuer_authentication_failed(self) -> bool:
        """The ARPC did not verify on the card."""

    @property
    def atc(self) -> str: ...

    @property
    def cryptogram(self) -> str: ...



@runtime_checkable
class CardPort(Protocol):
    """The card in the counter's reader, with the reader's PSAM.

    Every method raises :class:`CardRemovedError` when the card is gone, and another
    :class:`CardError` for anything the card refuses. PINs pass through and are never kept.
    """

    def present(self) -> bool:
        """True while a card is in the reader."""

    def read_basics(self) -> CardInfo:
        """Power the card, read the basics and prove it genuine with the PSAM (§5, §10)."""

    def read_identity(self, with_photo: bool = True) -> HolderIdentity:
        """Read the holder file EF06 (and the photo) after :meth:`read_basics`."""

    def pin_tries_left(self) -> int | None:
        """Tries left for the shared PIN (VERIFY with no data, §7); None if unknown."""

    def verify_pin(self, pin: str) -> None:
        """VERIFY the shared PIN; raises :class:`PinWrong` or :class:`PinLocked`."""

    def change_pin(self, old: str, new: str) -> None:
        """CHANGE PIN (§5): raises :class:`PinWrong`, :class:`PinLocked`, :class:`PinRuleBroken`."""

    def reload_pin(self, new: str) -> None:
        """PIN RELOAD with the PSAM (§5): set a new PIN and reset the counter (counter C3)."""

    def unblock_pin(self) -> None:
        """PIN UNBLOCK with the PSAM (§5): keep the PIN, reset the counter."""

    def bank_cryptogram(self, amount_fen: int, when: datetime) -> BankCryptogram:
        """Select the bank application and GENERATE AC (ARQC) for ``amount_fen`` (§11)."""

    def bank_pin_tries(self) -> int | None:
        """Select the bank application and ask whether it still wants a PIN (VERIFY with
        no data, §1, §7): None for a shared-PIN card whose PIN was verified, else the tries
        left of the bank application's own PIN; raises :class:`PinLocked` when it is locked."""

    def verify_bank_pin(self, pin: str) -> None:
        """VERIFY the bank application's own PIN (separate-PIN cards, §1); raises
        :class:`PinWrong`, :class:`PinLocked` or :class:`PinRuleBroken`."""

    def complete_bank(self, arpc: str, arc: str = ARC_APPROVED) -> BankCompletionAnswer:
        """Issuer authentication after :meth:`bank_cryptogram`: the host's ARPC (and ARC)
        in the second GENERATE AC (§11, EMV Book 3 §6.5.5); the card answers TC (approved)
        only for the right ARPC of an approval."""

    def supports_transaction_log(self) -> bool:
        """True when DF04 EF08 can be written on this card."""

    def append_transaction(self, record: TxRecord) -> None:
        """Add ``record`` to DF04 EF08 (cyclic, newest first)."""

    def read_transactions(self) -> list[TxRecord]:
        """Every record of DF04 EF08, newest first."""


@dataclass(frozen=True)
class HostReply:
    """A successful host answer: ``output`` of the response envelope (spec/host.md §1)."""

    output: Mapping[str, Any]
    msgid: str
    warn_msg: str = ""


@runtime_checkable
class HostPort(Protocol):
    """The settlement host (spec/host.md §1, §2)."""

    def call(
        self, infno: str, input: Mapping[str, Any], *, insuplc_admdvs: str = ""
    ) -> HostReply:
        """Send one transaction; raises :class:`HostRefused`, :class:`HostTimeout` or
        :class:`HostUnreachable`."""

    def reverse(self, *, psn_no: str, omsgid: str, oinfno: str) -> HostReply:
        """2601: reverse an earlier message (idempotent; a no-op if it never arrived)."""


@dataclass(frozen=True)
class CatalogueItem:
    """One item of the institution's catalogue (med_list_codg, spec/host.md §2 2101)."""

    code: str
    name: str
    price_fen: int
    unit: str = ""
    spec: str = ""


class UnknownItem(KeyError):
    """The code is not in the catalogue."""


@runtime_checkable
class CataloguePort(Protocol):
    """The catalogue of the institution (drugs, services)."""

    def lookup(self, code: str) -> CatalogueItem:
        """The item with ``code``; raises :class:`UnknownItem`."""


@runtime_checkable
class CardIssuerPort(Protocol):
    """The counter's card printer/personaliser: writes a new card image (replacement, L1/L2).

    ``cardinfo`` is the host's answer for the new card (card_no, card_sn, pan, bank,
    generation, algorithm…) and ``holder`` the person it belongs to; returns the basics of
    the card as written.
    """

    def write_card(self, cardinfo: Mapping[str, Any], holder: Mapping[str, Any]) -> CardInfo:
        """Personalise a blank card with ``cardinfo`` for ``holder``."""

"""Pieces shared by the flows: failure messages, the person lookup (1101), the steps every
card flow takes (:class:`CardFlow`), the scripted PIN prompt.

Messages say what happened and what to do (DESIGN.md); the PIN-lock message states seed
rule C3 (reset at a bank counter with the ID card, free of charge).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, Protocol, TypeVar

from terminal.core.machine import Failure, FailureKind, Flow
from terminal.core.model import (
    CartLine,
    SaleResult,
    SlipData,
    SlipLine,
    Split,
    TerminalConfig,
    fen,
    yuan,
)
from terminal.core.ports import (
    ARC_APPROVED,
    BankCryptogram,
    CardBlocked,
    CardError,
    CardInfo,
    CardKeyBlocked,
    CardNotGenuine,
    CardPort,
    CardRemovedError,
    HostError,
    HostPort,
    HostRefused,
    HostTimeout,
    HostUnreachable,
    NoPsam,
    PinLocked,
    PinWrong,
)

Clock = Callable[[], datetime]


def now() -> datetime:
    """The terminal's clock: local, timezone-aware, whole seconds."""
    return datetime.now().astimezone().replace(microsecond=0)


PIN_LOCKED_MESSAGE = (
    "PIN locked after too many wrong tries: the holder must have it reset at a bank counter "
    "with their own ID card (free of charge)"
)
PIN_CANCELLED = Failure(FailureKind.PIN_CANCELLED, "PIN entry cancelled; nothing was charged", -31)
"""The holder pressed cancel on the PIN pad before anything moved (driver code −31)."""
PIN_TIMED_OUT = Failure(FailureKind.PIN_TIMEOUT, "PIN entry timed out; nothing was charged", -32)
"""Nobody typed the PIN in time, before anything moved (driver code −32)."""


def card_failure(exc: CardError, *, charged: bool = False, doing: str = "") -> Failure:
    """Turn a card error into the failure shown to the clerk."""
    where = f" while {doing}" if doing else ""
    nothing = "" if charged else "; nothing was charged"
    if isinstance(exc, CardRemovedError):
        return Failure(
            FailureKind.CARD_REMOVED,
            f"the card was removed{where}{nothing}: insert the card and start again",
            exc.driver_code, charged)
    if isinstance(exc, PinLocked):
        return Failure(FailureKind.PIN_LOCKED, PIN_LOCKED_MESSAGE, exc.driver_code, charged)
    if isinstance(exc, NoPsam):
        return Failure(
            FailureKind.CARD_ERROR,
            "no PSAM in the reader: the card cannot be authenticated; insert the PSAM",
            exc.driver_code, charged)
    if isinstance(exc, CardBlocked):
        return Failure(
            FailureKind.CARD_STATUS,
            f"the card is blocked ({exc.message}){nothing}: the holder must go to the issuing "
            "bank's counter", exc.driver_code, charged)
    if isinstance(exc, CardKeyBlocked):
        return Failure(
            FailureKind.CARD_STATUS,
            f"the card's read key {exc.key} is blocked after too many failed authentications"
            f"{nothing}: the holder data on the card can no longer be read; the holder must "
            "apply for a replacement card at the service counter", exc.driver_code, charged)
    if isinstance(exc, CardNotGenuine):
        return Failure(
            FailureKind.CARD_NOT_GENUINE,
            f"the card failed authentication (not genuine){nothing}: keep the card and call "
            "the social security card office",
            exc.driver_code, charged)
    return Failure(
        FailureKind.CARD_ERROR, f"card error{where}: {exc.message}{nothing}",
        exc.driver_code, charged)


def host_failure(exc: HostError, *, doing: str = "", charged: bool = False) -> Failure:
    """Turn a host error into the failure shown to the clerk."""
    where = f" {doing}" if doing else ""
    during = f" during {doing.removeprefix('to ')}" if doing else ""
    if isinstance(exc, HostRefused):
        return Failure(FailureKind.HOST_REFUSED, f"the host refused{where}: {exc.message}",
                       None, charged)
    if isinstance(exc, HostTimeout):
        return Failure(
            FailureKind.HOST_TIMEOUT,
            f"the host did not answer{where} in time; the request was reversed, nothing was "
            "charged: try again", None, charged)
    if isinstance(exc, HostUnreachable):
        return Failure(
            FailureKind.HOST_UNREACHABLE,
            f"the host is unreachable{during} ({exc.message}); nothing was charged: check the "
            "network and try again", None, charged)
    return Failure(FailureKind.HOST_REFUSED, f"host error{where}: {exc.message}", None, charged)


# --------------------------------------------------------------------------- person (1101)

BLOCKING_CARD_STATES = {
    "lost": "the card has been reported lost",
    "loss_temp": "the card has been reported lost (temporary report)",
    "loss_formal": "the card has been reported lost",
    "loss_reported": "the card has been reported lost",
    "replaced": "the card was replaced by a new card",
    "cancelled": "the card has been cancelled",
    "blocked": "the card is blocked",
    "issued": "the card has not been activated yet",
    "not_activated": "the card has not been activated yet",
}
"""Card states (spec/host.md §5) that stop a flow at the person lookup, with the reason."""

CARD_REFUSALS = frozenset({"card_lost", "card_state", "card_mismatch"})
"""Host refusal codes of a 1101 that mean the card itself may not be used."""

CARD_STATE_ADVICE = {
    "issued": "the holder must activate it at the issuing bank's counter",
    "not_activated": "the holder must activate it at the issuing bank's counter",
    "replaced": "use the new card",
}


@dataclass(frozen=True)
class Person:
    """The insured person as the host knows them (1101 ``baseinfo`` + ``insuinfo``)."""

    psn_no: str
    certno: str
    name: str
    gend: str
    brdy: str
    insutype: str
    insuplc_admdvs: str
    balance_fen: int | None
    emp_name: str = ""
    card_state: str = ""
    raw: Mapping[str, Any] | None = None


class CardStatusError(Exception):
    """The host knows the card in a state that forbids the flow (lost, replaced…)."""

    def __init__(self, state: str, message: str) -> None:
        super().__init__(message)
        self.state = state
        self.message = message


def lookup_person(host: HostPort, card: CardInfo) -> Person:
    """1101 by card number (cert type 03, card_sn = card identification code).

    Raises :class:`CardStatusError` for a lost, replaced, blocked or inactive card; host
    errors pass through.
    """
    try:
        reply = host.call("1101", {"data": {
            "mdtrt_cert_type": "03",
            "mdtrt_cert_no": card.card_number,
            "card_sn": card.card_id_code,
            "psn_cert_type": "01",
            "certno": card.ssn,
            "psn_name": card.name,
        }})
    except HostRefused as exc:
        if exc.code in CARD_REFUSALS:
            raise CardStatusError(exc.code, exc.message) from None
        raise
    out = reply.output
    base = out.get("baseinfo") or {}
    insu_list = out.get("insuinfo") or []
    insu = insu_list[0] if insu_list else {}
    cardinfo = out.get("cardinfo") or {}
    state = str(cardinfo.get("card_stas") or cardinfo.get("state") or out.get("card_stas") or "")
    if state in BLOCKING_CARD_STATES:
        reason = BLOCKING_CARD_STATES[state]
        advice = CARD_STATE_ADVICE.get(state, "the holder must go to the issuing bank's counter")
        raise CardStatusError(state, f"{reason}: {advice}")
    balc = insu.get("balc")
    return Person(
        psn_no=str(base.get("psn_no", "")),
        certno=str(base.get("certno", card.ssn)),
        name=str(base.get("psn_name", card.name)),
        gend=str(base.get("gend", "")),
        brdy=str(base.get("brdy", "")),
        insutype=str(insu.get("insutype", "")),
        insuplc_admdvs=str(insu.get("insuplc_admdvs", "")),
        balance_fen=None if balc in (None, "") else fen(balc),
        emp_name=str(insu.get("emp_name", "")),
        card_state=state,
        raw=dict(out),
    )


def status_failure(exc: CardStatusError) -> Failure:
    return Failure(FailureKind.CARD_STATUS, exc.message)


# --------------------------------------------------------------------------- card flows

S = TypeVar("S", bound=enum.Enum)


class CardFlow(Flow[S]):
    """A counter flow with the holder's card and the host: the steps they all take.

    Subclasses set ``host`` and ``config`` (and ``card_info``, ``person``, ``bank_auth``
    as the steps fill them). When the bank part of a payment fails, the flow offers the
    rest in cash or :attr:`BANK_OR_ELSE`; :attr:`TAG_BANK_FAILURES` puts the failure kind
    in that event's data.
    """

    def _same_card_back(self, card: CardPort, pulled: Any) -> bool:
        """A pulled card came back: True when it is the same card; otherwise stay in
        ``pulled`` saying which card to insert."""
        assert self.card_info is not None
        try:
            info = card.read_basics()
        except CardError as exc:
            self._go(pulled, f"card not readable ({exc.message}): insert card "
                     f"{self.card_info.masked_number}")
            return False
        if info.card_number != self.card_info.card_number:
            self._go(pulled, f"that is another card ({info.masked_number}): insert card "
                     f"{self.card_info.masked_number}", failure=FailureKind.WRONG_CARD.value)
            return False
        return True

    BANK_OR_ELSE: ClassVar[str] = "cancel the sale"
    TAG_BANK_FAILURES: ClassVar[bool] = False

    host: HostPort
    config: TerminalConfig
    card_info: CardInfo | None = None
    person: Person | None = None
    bank_auth: BankCryptogram | None = None
    pin_tries_left: int | None = None
    _timeout: HostTimeout | None = None

    def _read_card(self, card: CardPort, failed: S) -> CardInfo | None:
        """READ_CARD: read and authenticate the card (spec/card.md §5); a card error ends
        the flow in ``failed`` (and None is returned)."""
        try:
            self.card_info = card.read_basics()
        except CardError as exc:
            self._fail(failed, card_failure(exc, doing="reading the card"))
            return None
        return self.card_info

    def _identify(self, failed: S) -> Person | None:
        """IDENTIFY: the person lookup (1101); a card the host refuses or a host error ends
        the flow in ``failed`` (and None is returned)."""
        assert self.card_info is not None
        try:
            self.person = lookup_person(self.host, self.card_info)
        except CardStatusError as exc:
            self._fail(failed, status_failure(exc))
            return None
        except HostError as exc:
            self._fail(failed, host_failure(exc, doing="the person lookup (1101)"))
            return None
        return self.person

    def _psn_no(self) -> str:
        return self.person.psn_no if self.person else ""

    def _insuplc(self) -> str:
        return self.person.insuplc_admdvs if self.person else ""

    def _bank_recovery(self, recovery: S, reason: str, kind: FailureKind) -> None:
        """The bank part failed (``reason``): go to ``recovery``, where the clerk takes the
        rest in cash or gives up; nothing moved."""
        data = {"failure": kind.value} if self.TAG_BANK_FAILURES else {}
        self._go(recovery, f"{reason} take the rest in cash or {self.BANK_OR_ELSE}", **data)

    def _authorise_bank(self, card: CardPort, amount_fen: int, when: datetime, *, ok: S,
                        recovery: S, failed: S) -> None:
        """BANK_AUTH: ``bank_auth`` becomes the card's ARQC for the bank part (spec/card.md
        §11; the same PIN, seed C2), then ``ok``. A locked PIN or a failing bank application
        goes to ``recovery``, a pulled card ends the flow in ``failed``."""
        try:
            self.bank_auth = card.bank_cryptogram(amount_fen, when)
        except PinLocked:
            self._bank_recovery(recovery, f"{PIN_LOCKED_MESSAGE};", FailureKind.PIN_LOCKED)
            return
        except CardRemovedError as exc:
            self._fail(failed, card_failure(exc, doing="authorising the bank payment"))
            return
        except CardError as exc:
            self._bank_recovery(recovery, f"the card's bank application failed "
                                f"({exc.message}):", FailureKind.BANK_REFUSED)
            return
        self._go(ok, f"bank payment of {yuan(amount_fen)} authorised by the card")

    def _bank_pin_due(self, card: CardPort, *, pin_state: S, recovery: S, failed: S) -> bool:
        """BANK_AUTH, first: does the card's bank application want its own PIN
        (separate-PIN cards, spec/card.md §1)? A shared-PIN card counts the PIN already
        verified and is not asked twice: True, authorise now. Otherwise the flow goes to
        ``pin_state`` (event data ``pin="bank"``, the tries left), to ``recovery`` when that
        PIN is locked or the bank application fails, or ends in ``failed`` for a pulled
        card; False."""
        try:
            tries = card.bank_pin_tries()
        except PinLocked:
            self.pin_tries_left = 0
            self._bank_recovery(recovery, f"the bank PIN is locked: {PIN_LOCKED_MESSAGE};",
                                FailureKind.PIN_LOCKED)
            return False
        except CardRemovedError as exc:
            self._fail(failed, card_failure(exc, doing="authorising the bank payment"))
            return False
        except CardError as exc:
            self._bank_recovery(recovery, f"the card's bank application failed "
                                f"({exc.message}):", FailureKind.BANK_REFUSED)
            return False
        if tries is None:
            return True
        self.pin_tries_left = tries
        self._go(pin_state, f"the card's bank account has its own PIN: enter the bank PIN "
                 f"({tries} tries left)", pin="bank", tries_left=tries)
        return False

    def _verify_bank_pin(self, card: CardPort, pin: str, *, pin_state: S, ok: S,
                         recovery: S, failed: S) -> None:
        """BANK_PIN: the bank application's own PIN goes to the card (never kept). Wrong:
        stays in ``pin_state`` with the tries left; locked: ``recovery``; right: ``ok``."""
        try:
            card.verify_bank_pin(pin)
        except PinWrong as exc:
            self.pin_tries_left = exc.tries_left
            self._go(pin_state, f"wrong bank PIN: {exc.tries_left} "
                     f"{'try' if exc.tries_left == 1 else 'tries'} left before it locks",
                     pin="bank", tries_left=exc.tries_left)
            return
        except PinLocked:
            self.pin_tries_left = 0
            self._bank_recovery(recovery, f"the bank PIN is locked: {PIN_LOCKED_MESSAGE};",
                                FailureKind.PIN_LOCKED)
            return
        except CardError as exc:
            self._fail(failed, card_failure(exc, doing="checking the bank PIN"))
            return
        self.pin_tries_left = None
        self._go(ok, "bank PIN correct")

    @staticmethod
    def _bank_completion_refusal(card: CardPort, arpc: str, arc: str) -> str:
        """Issuer authentication (spec/card.md §11, EMV Book 3 §6.5.5): the host's ARPC to
        the card. Returns "" when the card accepted it (TC), else why the settled payment
        must be reversed (no ARPC, the card declined or refused it, or it left)."""
        if not arpc:
            return "the host's answer carries no ARPC for the card"
        try:
            done = card.complete_bank(arpc, arc or ARC_APPROVED)
        except CardRemovedError:
            return "the card was removed before it accepted the host's answer"
        except CardError as exc:
            return f"the card could not complete the bank payment ({exc.message})"
        if done.approved:
            return ""
        if done.issuer_authentication_failed:
            return "the card refused the bank's answer (issuer authentication failed)"
        return "the card declined the bank payment"

    def _settlement_failed(self, exc: HostError, what: str, *, sale: str, recovery: S,
                           failed: S) -> None:
        """The settlement ``what`` failed with an answer (nothing moved): a refused sale
        with a bank part goes to ``recovery``; anything else ends the flow in ``failed``."""
        if isinstance(exc, HostRefused) and self.bank_auth is not None:
            self._bank_recovery(recovery, f"the host refused {sale} with the bank payment "
                                f"({exc.message}):", FailureKind.BANK_REFUSED)
            return
        self._fail(failed, host_failure(exc, doing=what))

    def _settlement_result(self, title: str, lines: Iterable[CartLine], split: Split, *,
                           setl_id: str, mdtrt_id: str, msgid: str, when: datetime,
                           notes: tuple[str, ...] = (),
                           recorded_on_card: bool = False) -> SaleResult:
        """SLIP: the slip of a settled sale (terminal, holder, lines, split) and its result."""
        assert self.card_info is not None
        slip = SlipData(
            title=title,
            institution=self.config.institution_name,
            terminal=self.config.terminal_number or self.card_info.terminal_number,
            when=when,
            card_number_masked=self.card_info.masked_number,
            holder_name=self.person.name if self.person else self.card_info.name,
            lines=tuple(SlipLine(ln.item.name, ln.qty, ln.amount_fen) for ln in lines),
            split=split,
            settlement_id=setl_id,
            notes=notes,
        )
        return SaleResult(setl_id=setl_id, mdtrt_id=mdtrt_id, psn_no=self._psn_no(),
                          card_number=self.card_info.card_number, split=split, slip=slip,
                          msgid=msgid, recorded_on_card=recorded_on_card)

    def _timed_out(self, exc: HostTimeout, what: str, *, failed: S, reverse: S) -> None:
        """``what`` (e.g. ``the admission (2401)``) got no answer: when the client already
        reversed it the flow ends in ``failed``, otherwise ``reverse`` sends the 2601
        (spec/host.md §4)."""
        if exc.reversed:
            self._fail(failed, host_failure(exc, doing=f"to {what}"))
            return
        self._timeout = exc
        self._go(reverse, f"no answer to {exc.infno}: reversing it (2601)")

    def _reverse_timeout(self, psn_no: str, what: str, *, failed: S, subject: str,
                         advice: str) -> None:
        """REVERSE: 2601 for the request that got no answer; the flow ends in ``failed``
        either way, saying whether the reversal was confirmed (``subject`` is not
        confirmed…: ``advice``)."""
        exc = self._timeout
        assert exc is not None
        self._timeout = None
        try:
            self.host.reverse(psn_no=psn_no, omsgid=exc.msgid, oinfno=exc.infno)
        except HostError as err:
            self._fail(failed, Failure(
                FailureKind.HOST_TIMEOUT,
                f"{subject} is not confirmed and its reversal failed ({err.message}): {advice}"))
            return
        self._fail(failed, host_failure(exc, doing=f"to {what}"))


# --------------------------------------------------------------------------- scripted PIN

PinSource = Callable[[int | None], str | None]
"""Asked for the PIN with the tries left (None = unknown); returns the PIN, or None when the
holder cancels. Raising :class:`TimeoutError` means the PIN pad timed out."""


class PinEntry(Protocol):
    """A flow waiting for the PIN (its PIN state)."""

    pin_tries_left: int | None

    def enter_pin(self, pin: str) -> None: ...

    def cancel_pin(self) -> None: ...

    def pin_timeout(self) -> None: ...


def prompt_pin(flow: PinEntry, pin: PinSource, asked: int, max_tries: int) -> bool:
    """One PIN prompt of a scripted driver (the ``asked``-th so far): the PIN goes to the
    flow, a cancel, a timeout or more than ``max_tries`` prompts end the entry. Returns
    False when the entry ended."""
    if asked >= max_tries:
        flow.cancel_pin()
        return False
    try:
        entered = pin(flow.pin_tries_left)
    except TimeoutError:
        flow.pin_timeout()
        return False
    if entered is None:
        flow.cancel_pin()
        return False
    flow.enter_pin(entered)
    return True

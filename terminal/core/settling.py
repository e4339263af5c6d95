"""What the two settling flows share: the pharmacy checkout
(:class:`~terminal.core.checkout.Checkout`) and the inpatient discharge
(:class:`~terminal.core.discharge.Discharge`).

Both ask the holder's PIN (spec/card.md §7; a separate-PIN card's bank application asks its
own, §1), may pay the rest from the card's bank account (BANK_AUTH, §11), settle at the host
and then write the settlement on the card's DF04 EF08 log (spec/card.md §4, §6) through the
purse purchase. A card pulled after the settlement parks the flow in CARD_PULLED until the
same card is back and the PIN entered again (DF04 needs it); a card pulled *while* the
record was being written may or may not carry it, so the log is read back before any new
write: a record is never doubled, and a settlement is never left unaccounted for.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, Generic, Protocol

from terminal.core.common import PIN_CANCELLED, PIN_TIMED_OUT, CardFlow, S, card_failure
from terminal.core.machine import Failure
from terminal.core.model import PayChoice, RestBy, Split
from terminal.core.ports import (
    CardError,
    CardPort,
    CardRemovedError,
    PinLocked,
    PinWrong,
    TxKind,
    TxRecord,
)


class RecordState(enum.Enum):
    """Whether the settlement's EF08 record is on the card."""

    NOT_WRITTEN = "not_written"
    UNKNOWN = "unknown"
    WRITTEN = "written"
    UNSUPPORTED = "unsupported"


def ef08_record(kind: TxKind, terminal: str, when: datetime, split: Split) -> TxRecord:
    """The DF04 EF08 record of a settlement (spec/card.md §4, §6).

    sscard runs the card in online mode (spec/card.md §1): the personal account lives at
    the host and the on-card purse is never debited, so the record's account amount is 0,
    its self-pay amount is the person's whole part (personal account + cash or bank) and
    its pooled amount the funds' part.
    """
    return TxRecord(kind=kind, terminal=terminal.rjust(12, "0")[-12:], when=when,
                    account_fen=0, selfpay_fen=split.account + split.rest,
                    fund_fen=split.fund)


class _RecordingFlow(Protocol):
    """What :func:`write_card_record` needs of a settling flow."""

    card: CardPort
    record_state: RecordState
    _record_sequence: int | None

    def _go(self, new: Any, message: str = "", **data: Any) -> None: ...

    def _pulled(self, when: str) -> None: ...

    def _refused(self, exc: CardError) -> None: ...


def write_card_record(flow: _RecordingFlow, record: TxRecord, slip: Any) -> None:
    """Append a settlement record to the card's DF04 EF08 log (spec/card.md §4, §6), then go
    to ``slip``; a card pulled during the write leaves ``record_state`` saying whether the
    record may already be on the card, so it is read back before any retry, never doubled."""
    try:
        supported = flow.card.supports_transaction_log()
    except CardRemovedError:
        flow._pulled("before its record was written on the card")
        return
    except CardError as exc:
        flow._refused(exc)
        return
    if not supported:
        flow.record_state = RecordState.UNSUPPORTED
        flow._go(slip, "this card keeps no transaction log")
        return
    try:
        flow.card.append_transaction(record)
    except CardRemovedError as exc:
        flow.record_state = RecordState.UNKNOWN if exc.maybe_done else RecordState.NOT_WRITTEN
        flow._record_sequence = exc.record_sequence
        flow._pulled("while its record was being written on the card")
        return
    except CardError as exc:
        flow._refused(exc)
        return
    flow.record_state = RecordState.WRITTEN
    flow._go(slip, "recorded on the card")


@dataclass(frozen=True)
class SettlingStates(Generic[S]):
    """Which state of a settling flow plays each shared role."""

    pin: S
    bank_pin: S
    bank_auth: S
    after_pin: S            # where a verified PIN leads when the bank pays nothing
    bank_failed: S
    retrial: S              # the trial again, with the rest in cash
    card_pulled: S
    record: S
    slip: S
    failed: S


class SettlingFlow(CardFlow[S]):
    """The PIN, bank fallback, pulled-card and card-record steps of a settling flow.

    Subclasses set :attr:`STATES`, the :attr:`NOUN` their messages use ("sale",
    "settlement") and :attr:`SETTLED` (how they say it is done at the host), and implement
    ``_pulled`` and ``_refused`` (what the clerk may do then differs).
    """

    STATES: ClassVar[SettlingStates[Any]]
    NOUN: ClassVar[str]
    SETTLED: ClassVar[str]

    card: CardPort
    pay: PayChoice
    trial: Split | None
    split: Split | None
    settled_at: datetime
    setl_id: str
    record_state: RecordState
    _pin_ok: bool
    _resume: bool               # PIN asked again on a returned card, to record the settlement
    _record_sequence: int | None

    def _pulled(self, when: str) -> None:
        raise NotImplementedError

    def _refused(self, exc: CardError) -> None:
        raise NotImplementedError

    @property
    def can_void_record(self) -> bool:
        """True when the settlement could be undone because the card surely carries no
        record of it (the checkout's void); a discharge is never voided this way."""
        return False

    # ----------------------------------------------------------------- PIN
    def enter_pin(self, pin: str) -> None:
        """The holder typed the PIN (PIN), or the bank application's own PIN (BANK_PIN).
        It goes to the card and is never kept."""
        st = self.STATES
        self._require(st.pin, st.bank_pin)
        if self.state is st.bank_pin:
            self._verify_bank_pin(self.card, pin, pin_state=st.bank_pin, ok=st.bank_auth,
                                  recovery=st.bank_failed, failed=st.failed)
            return
        if not self._pin_ok:
            try:
                self.card.verify_pin(pin)
            except PinWrong as exc:
                self.pin_tries_left = exc.tries_left
                self._go(st.pin, f"wrong PIN: {exc.tries_left} "
                         f"{'try' if exc.tries_left == 1 else 'tries'} left before the card "
                         "locks", tries_left=exc.tries_left)
                return
            except CardError as exc:
                if isinstance(exc, PinLocked):
                    self.pin_tries_left = 0
                if self._resume:
                    self._resume = False
                    if isinstance(exc, CardRemovedError):
                        self._pulled("again")
                    else:
                        self._go(st.card_pulled, f"{card_failure(exc, charged=True).message}; "
                                 f"the {self.NOUN} cannot be recorded on the card: "
                                 + ("void it, or confirm it without the record"
                                    if self.can_void_record else "confirm it without the record"))
                    return
                self._fail(st.failed, card_failure(exc, doing="checking the PIN"))
                return
        self._pin_ok = True
        self.pin_tries_left = None
        if self._resume:
            self._resume = False
            self._resume_record()
            return
        bank = self.pay.rest is RestBy.BANK and self.trial is not None and self.trial.rest > 0
        self._go(st.bank_auth if bank else st.after_pin, "PIN correct")

    def cancel_pin(self) -> None:
        """The holder pressed cancel on the PIN pad (driver code −31)."""
        self._require(self.STATES.pin, self.STATES.bank_pin)
        self._pin_abandoned("PIN entry cancelled", PIN_CANCELLED)

    def pin_timeout(self) -> None:
        """Nobody typed the PIN in time (driver code −32)."""
        self._require(self.STATES.pin, self.STATES.bank_pin)
        self._pin_abandoned("PIN entry timed out", PIN_TIMED_OUT)

    def _pin_abandoned(self, what: str, failure: Failure) -> None:
        """No PIN: before the settlement nothing was charged (``failure``); on a returned
        card the settlement waits in CARD_PULLED for its record."""
        if self._resume:
            self._resume = False
            self._go(self.STATES.card_pulled, f"{what}: {self.SETTLED} but not yet on the "
                     "card", record=self.record_state.value)
            return
        self._fail(self.STATES.failed, failure)

    def pay_cash_instead(self) -> None:
        """The bank part failed (BANK_FAILED): settle with the rest in cash (a new trial)."""
        self._require(self.STATES.bank_failed)
        self.pay = PayChoice(self.pay.use_account, RestBy.CASH)
        self._go(self.STATES.retrial, "the rest will be paid in cash")

    # ----------------------------------------------------------------- the card record
    def _settlement_record(self) -> TxRecord:
        assert self.split is not None and self.card_info is not None
        # the PSAM's terminal number: the card checks it against MAC1 (spec/card.md §6)
        return ef08_record(TxKind.SETTLEMENT, self.card_info.terminal_number,
                           self.settled_at, self.split)

    def card_returned(self) -> None:
        """The pulled card is back (CARD_PULLED): check it is the same card, then the PIN
        again (DF04 needs it) to finish the record."""
        st = self.STATES
        self._require(st.card_pulled)
        if not self._same_card_back(self.card, st.card_pulled):
            return
        self._resume = True
        self._pin_ok = False
        self._go(st.pin, f"card back: the holder enters the PIN again so the {self.NOUN} can "
                 "be recorded on the card")

    def _resume_record(self) -> None:
        """After the PIN on a returned card: read the log back when the pull came during
        the write, and write only when the record is not there (never twice)."""
        st = self.STATES
        if self.record_state is RecordState.UNKNOWN:
            try:
                entries = self.card.read_transactions()
            except CardRemovedError:
                self._pulled("again")
                return
            except CardError as exc:
                self._go(st.card_pulled, f"cannot read the card's log ({exc.message}): insert "
                         f"the card again, or confirm the {self.NOUN} without the card record")
                return
            expected = self._settlement_record()
            seq = self._record_sequence
            found = any(expected.same_entry(r) and (seq is None or r.sequence == seq)
                        for r in entries)
            self.record_state = RecordState.WRITTEN if found else RecordState.NOT_WRITTEN
        if self.record_state is RecordState.WRITTEN:
            self._go(st.slip, f"the {self.NOUN} is on the card")
        else:
            self._go(st.record, f"recording the {self.NOUN} on the card")

    def confirm_without_record(self) -> None:
        """Keep the settlement although its card record cannot be written or checked
        (CARD_PULLED): the slip says it is not on the card. It stands at the host."""
        self._require(self.STATES.card_pulled)
        self._go(self.STATES.slip, f"{self.NOUN} kept at the host without a record on the "
                 "card")

"""Service-counter operations (seed rules C3, A3, A4, A5, L1, L2, M2; spec/host.md §5).

Every operation is a small :class:`CounterFlow` with the states::

    READ_CARD ─▶ CHECK_ID ─▶ HOST ─▶ PIN ─▶ CARD_WRITE ─▶ DONE
        (each step only where the operation needs it; FAILED / CANCELLED end it)

- READ_CARD reads and authenticates the card (operations that need the card);
- CHECK_ID waits for the holder's ID number (:meth:`CounterFlow.provide_id`), which must
  match the card's social security number — the counter's identity check (C3, L1);
- HOST sends the operation's counter transaction (8102–8107, 8201, spec/host.md §5);
- PIN waits for PINs typed on the PIN pad (:meth:`CounterFlow.enter_pins`), applied to the
  card at once and never kept;
- CARD_WRITE writes the card (a replacement card's new image).

Operations: :class:`ActivateCard` (A3/A4: the PIN is changed, then 8102),
:class:`ChangePin` (C2), :class:`ResetPin` / :class:`UnlockPin` (C3: ID check, 8106, PIN
RELOAD or UNBLOCK with the PSAM; free), :class:`ReportLoss` / :class:`LiftLoss` (L1, 8103/8104),
:class:`ReplaceCard` (L1/L2/A5, 8105: new card written, the old one is dead at the host,
fee or free), :class:`ChangeHolderData` (A5/C7, 8107), :class:`MigrateOldCards` (M2, 8201
in batches) and :class:`BalanceEnquiry` (U5, 8108).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any, ClassVar, Protocol, runtime_checkable

from terminal.core.common import CardFlow, Clock, card_failure, host_failure, now
from terminal.core.machine import Awaiting, Failure, FailureKind, FlowStateError
from terminal.core.model import TerminalConfig, fen, yuan
from terminal.core.ports import (
    CardError,
    CardInfo,
    CardIssuerPort,
    CardPort,
    HostError,
    HostPort,
    PinRuleBroken,
    PinWrong,
)


class CounterState(enum.Enum):
    READ_CARD = "read_card"
    CHECK_ID = "check_id"
    HOST = "host"
    PIN = "pin"
    CARD_WRITE = "card_write"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


K = CounterState
PIN_LENGTHS = (6,)


def check_new_pin(new: str, confirm: str, old: str | None = None) -> None:
    """The PIN pad's rules (spec/card.md §10 codes −33, −34, −35)."""
    if new != confirm:
        raise PinRuleBroken("the two new PINs differ")
    if len(new) not in PIN_LENGTHS or not new.isdigit():
        raise PinRuleBroken("a PIN is 6 digits")
    if old is not None and new == old:
        raise PinRuleBroken("the new PIN must differ from the old one")


class CounterFlow(CardFlow[CounterState]):
    """Base of the counter operations: the steps an operation needs, in a fixed order."""

    name = "counter"
    NEEDS_CARD: ClassVar[bool] = True
    CHECKS_ID: ClassVar[bool] = False
    HOST_STEP: ClassVar[bool] = True
    PIN_STEP: ClassVar[bool] = False
    WRITE_STEP: ClassVar[bool] = False
    TRANSITIONS: ClassVar[Mapping[Any, frozenset[Any]]] = {
        K.READ_CARD: frozenset({K.CHECK_ID, K.HOST, K.PIN, K.DONE, K.FAILED}),
        K.CHECK_ID: frozenset({K.HOST, K.PIN, K.FAILED, K.CANCELLED}),
        K.HOST: frozenset({K.HOST, K.PIN, K.CARD_WRITE, K.DONE, K.FAILED}),
        K.PIN: frozenset({K.PIN, K.HOST, K.CARD_WRITE, K.DONE, K.FAILED, K.CANCELLED}),
        K.CARD_WRITE: frozenset({K.DONE, K.FAILED}),
    }
    AWAITING: ClassVar[Mapping[Any, Awaiting]] = {K.CHECK_ID: Awaiting.DATA,
                                                  K.PIN: Awaiting.PIN}
    TERMINAL = frozenset({K.DONE, K.FAILED, K.CANCELLED})

    def __init__(self, host: HostPort, card: CardPort | None = None,
                 config: TerminalConfig | None = None, *, clock: Clock = now) -> None:
        super().__init__(K.READ_CARD)
        self.host = host
        self.card = card
        self.config = config or TerminalConfig()
        self.clock = clock
        self.certno = ""
        self.output: Mapping[str, Any] = {}
        self.pin_tries_left: int | None = None

    # ----------------------------------------------------------------- order of steps
    def _after(self, state: CounterState) -> CounterState:
        order = [(K.CHECK_ID, self.CHECKS_ID), (K.HOST, self.HOST_STEP),
                 (K.PIN, self.PIN_STEP), (K.CARD_WRITE, self.WRITE_STEP)]
        if self.PIN_BEFORE_HOST:
            order = [(K.CHECK_ID, self.CHECKS_ID), (K.PIN, self.PIN_STEP),
                     (K.HOST, self.HOST_STEP), (K.CARD_WRITE, self.WRITE_STEP)]
        names = [s for s, _ in order]
        start = names.index(state) + 1 if state in names else 0
        for s, wanted in order[start:]:
            if wanted:
                return s
        return K.DONE

    PIN_BEFORE_HOST: ClassVar[bool] = False

    # ----------------------------------------------------------------- steps
    def _do_read_card(self) -> None:
        if self.NEEDS_CARD:
            if self.card is None:
                raise FlowStateError(f"{self.name}: needs the card")
            if self._read_card(self.card, K.FAILED) is None:
                return
        self._go(self._after(K.READ_CARD), self._ask_message(self._after(K.READ_CARD)))

    def _ask_message(self, state: CounterState) -> str:
        if state is K.CHECK_ID:
            return "type the holder's ID number from their ID card"
        if state is K.PIN:
            return "the holder types the PIN on the PIN pad"
        return ""

    def provide_id(self, certno: str) -> None:
        """The clerk typed the holder's ID number from the ID card (CHECK_ID)."""
        self._require(K.CHECK_ID)
        certno = certno.strip().upper()
        if self.card_info is not None and certno != self.card_info.ssn.upper():
            self._fail(K.FAILED, Failure(
                FailureKind.WRONG_CARD, "the ID number does not match the card: the holder "
                "must come with their own ID card"))
            return
        self.certno = certno
        nxt = self._after(K.CHECK_ID)
        self._go(nxt, self._ask_message(nxt))

    def cancel(self) -> None:
        self._require(K.CHECK_ID, K.PIN)
        self._fail(K.CANCELLED, Failure(FailureKind.CANCELLED, f"{self.name} cancelled"))

    def _do_host(self) -> None:
        try:
            self.output = self._host_call()
        except HostError as exc:
            self._fail(K.FAILED, host_failure(exc, doing=self.name))
            return
        nxt = self._after(K.HOST)
        self._go(nxt, self._host_message() if nxt is K.DONE else self._ask_message(nxt))

    def _do_card_write(self) -> None:
        try:
            msg = self._card_write()
        except CardError as exc:
            self._fail(K.FAILED, card_failure(exc, doing="writing the card", charged=True))
            return
        self._go(K.DONE, msg)

    # ----------------------------------------------------------------- hooks
    def _host_call(self) -> Mapping[str, Any]:
        raise NotImplementedError

    def _host_message(self) -> str:
        return f"{self.name} done"

    def _card_write(self) -> str:
        raise NotImplementedError

    def _card_no(self) -> str:
        return self.card_info.card_number if self.card_info else ""

    def _change_pin(self, old: str, new: str, confirm: str) -> bool:
        """PIN: the PIN pad's rules, then CHANGE PIN on the card; False when the flow stays
        in PIN for another try or stopped."""
        self._require(K.PIN)
        assert self.card is not None
        try:
            check_new_pin(new, confirm, old)
            self.card.change_pin(old, new)
        except CardError as exc:
            self._pin_result(exc)
            return False
        return True

    def _pin_result(self, exc: CardError) -> None:
        """A PIN step failed on the card: stay for another try, or stop."""
        if isinstance(exc, PinWrong):
            self.pin_tries_left = exc.tries_left
            self._go(K.PIN, f"wrong PIN: {exc.tries_left} tries left before the card locks",
                     tries_left=exc.tries_left)
        elif isinstance(exc, PinRuleBroken):
            self._go(K.PIN, f"{exc.message}: type the PINs again", rule=True)
        else:
            self._fail(K.FAILED, card_failure(exc, doing="changing the PIN"))


class ChangePin(CounterFlow):
    """C2: the holder changes the shared PIN (old PIN, new PIN twice)."""

    name = "change PIN"
    HOST_STEP = False
    PIN_STEP = True

    def enter_pins(self, old: str, new: str, confirm: str) -> None:
        if self._change_pin(old, new, confirm):
            self._go(self._after(K.PIN), "PIN changed: it is the same PIN for the medical and "
                     "the bank account")


class ActivateCard(CounterFlow):
    """A3/A4: activation at the issuing bank's counter; the initial PIN is changed first."""

    name = "activation"
    CHECKS_ID = True
    PIN_STEP = True
    PIN_BEFORE_HOST = True

    def enter_pins(self, old: str, new: str, confirm: str) -> None:
        """Initial PIN (from the envelope) and the new PIN twice."""
        if self._change_pin(old, new, confirm):
            self._go(K.HOST, "PIN changed; activating the card (8102)")

    def _host_call(self) -> Mapping[str, Any]:
        return self.host.call("8102", {"data": {"card_no": self._card_no(),
                                                "certno": self.certno,
                                                "pin_changed": True}}).output

    def _host_message(self) -> str:
        return f"card {self.card_info.masked_number if self.card_info else ''} activated"


class ResetPin(CounterFlow):
    """C3: PIN reset at a bank counter after the ID check (8106 records it, then PIN RELOAD
    with the PSAM sets the new PIN and clears the lock); free of charge."""

    name = "PIN reset"
    CHECKS_ID = True
    PIN_STEP = True
    OP: ClassVar[str] = "reset"

    def _host_call(self) -> Mapping[str, Any]:
        return self.host.call("8106", {"data": {"card_no": self._card_no(),
                                                "certno": self.certno, "op": self.OP}}).output

    def enter_pins(self, new: str, confirm: str) -> None:
        """The holder's new PIN, twice (reset)."""
        self._require(K.PIN)
        assert self.card is not None
        try:
            check_new_pin(new, confirm)
            self.card.reload_pin(new)
        except CardError as exc:
            self._pin_result(exc)
            return
        self._go(K.DONE, "PIN reset; free of charge")


class UnlockPin(ResetPin):
    """C3: unlock keeping the PIN (PIN UNBLOCK with the PSAM) after the ID check; free."""

    name = "PIN unlock"
    PIN_STEP = False
    WRITE_STEP = True
    OP = "unlock"

    def _card_write(self) -> str:
        assert self.card is not None
        self.card.unblock_pin()
        return "PIN unlocked (the PIN is unchanged); free of charge"


class ReportLoss(CounterFlow):
    """L1: report a lost card (no card at hand): every payment with it stops at once."""

    name = "loss report"
    NEEDS_CARD = False

    def __init__(self, host: HostPort, card_no: str, certno: str, *, formal: bool = False,
                 config: TerminalConfig | None = None, clock: Clock = now) -> None:
        super().__init__(host, None, config, clock=clock)
        self.card_no, self.certno, self.formal = card_no, certno.upper(), formal

    def _card_no(self) -> str:
        return self.card_no

    def _host_call(self) -> Mapping[str, Any]:
        return self.host.call("8103", {"data": {"card_no": self.card_no, "certno": self.certno,
                                                "loss_type": "2" if self.formal else "1"}}
                              ).output

    def _host_message(self) -> str:
        info = self.output.get("cardinfo", {})
        until = info.get("loss_lapses_at", "")
        kind = "formal" if self.formal else f"temporary, lapses {until}"
        return f"card {self.card_no} reported lost ({kind}): nobody can pay with it now"


class LiftLoss(ReportLoss):
    """Lift a loss report (解挂) of a card found again."""

    name = "lift loss report"

    def _host_call(self) -> Mapping[str, Any]:
        return self.host.call("8104", {"data": {"card_no": self.card_no,
                                                "certno": self.certno}}).output

    def _host_message(self) -> str:
        return f"loss report of card {self.card_no} lifted"


@runtime_checkable
class InitialPinEnvelope(Protocol):
    """A card issuer that hands out the initial PIN of the card it just wrote, once (rule
    A3: a CCB card arrives activated with its initial PIN in a sealed envelope)."""

    def take_initial_pin(self) -> str | None:
        """The PIN once, then None; None for a card issued not activated (rule A4)."""


class ReplaceCard(CounterFlow):
    """L1/L2/A5: replacement. The host mints the new card (8105; the old card is dead from
    then on, the bank balance moves, the medical account stays) and the new card image is
    written; 30 yuan (policy) unless the damage is not the holder's fault or the data was
    wrong (certificate from the office).

    ``holder`` goes to the issuer with ``certno`` and ``old_card_no`` added (the issuer
    copies the identity from the old card and checks it is the same person). When the
    issuer is an :class:`InitialPinEnvelope`, a new card issued activated (CCB, rule A3) has
    its initial PIN available once from :meth:`take_initial_pin`; it never enters a message
    or an event.
    """

    name = "card replacement"
    NEEDS_CARD = False
    WRITE_STEP = True

    def __init__(self, host: HostPort, issuer: CardIssuerPort, card_no: str, certno: str, *,
                 reason: str, fee_src: str = "cash", certificate_no: str = "",
                 holder: Mapping[str, Any] | None = None,
                 config: TerminalConfig | None = None, clock: Clock = now) -> None:
        super().__init__(host, None, config, clock=clock)
        self.issuer = issuer
        self.card_no, self.certno = card_no, certno.upper()
        self.reason, self.fee_src, self.certificate_no = reason, fee_src, certificate_no
        self.holder = {"certno": self.certno, "old_card_no": card_no, **(holder or {})}
        self.new_card: CardInfo | None = None
        self.fee_fen = 0
        self.activated = False
        self._initial_pin: str | None = None

    def take_initial_pin(self) -> str | None:
        """The new card's initial PIN (CCB, rule A3) for the clerk to show once; None after
        the first call and for a card the holder activates at the bank (rule A4)."""
        pin, self._initial_pin = self._initial_pin, None
        return pin

    def _card_no(self) -> str:
        return self.card_no

    def _host_call(self) -> Mapping[str, Any]:
        out = self.host.call("8105", {"data": {
            "card_no": self.card_no, "certno": self.certno, "reason": self.reason,
            "fee_src": self.fee_src, "certificate_no": self.certificate_no}}).output
        self.fee_fen = fen(out.get("cardinfo", {}).get("fee", "0"))
        return out

    def _card_write(self) -> str:
        info = self.output.get("cardinfo", {})
        self.new_card = self.issuer.write_card(info, self.holder)
        self.activated = info.get("card_stas") == "activated"
        if isinstance(self.issuer, InitialPinEnvelope):
            self._initial_pin = self.issuer.take_initial_pin()
        fee = "free of charge" if self.fee_fen == 0 else f"fee {yuan(self.fee_fen)} yuan " \
            f"({self.fee_src})"
        if self._initial_pin is not None:
            pin = "activated; its initial PIN is shown once for the holder's envelope"
        elif self.activated:
            pin = "activated"
        else:
            bank = info.get("bank", "")
            pin = (f"not activated: the holder activates it at a {bank} counter by changing "
                   "the initial PIN" if bank else "not activated")
        return (f"new card {self.new_card.card_number} written ({pin}); old card "
                f"{self.card_no} no longer works; {fee}")


class ChangeHolderData(CounterFlow):
    """A5/C7: correct the holder data at the office (a job change needs no new card)."""

    name = "holder data change"
    NEEDS_CARD = False

    def __init__(self, host: HostPort, psn_no: str, certno: str, changes: Mapping[str, str],
                 *, config: TerminalConfig | None = None, clock: Clock = now) -> None:
        super().__init__(host, None, config, clock=clock)
        self.psn_no, self.certno, self.changes = psn_no, certno.upper(), dict(changes)

    def _host_call(self) -> Mapping[str, Any]:
        return self.host.call("8107", {"data": {"psn_no": self.psn_no, "certno": self.certno,
                                                **self.changes}}).output

    def _host_message(self) -> str:
        changed = ", ".join(self.output.get("changed", [])) or "nothing"
        if self.output.get("card_replacement_needed"):
            return (f"changed: {changed}; the card data changed: the holder takes certificate "
                    f"{self.output.get('certificate_no', '')} to the bank for a free "
                    "replacement (rule A5)")
        return f"changed: {changed}; the card stays valid"


class MigrateOldCards(CounterFlow):
    """M2: move old medical card balances into the personal accounts, batch by batch."""

    name = "old card migration"
    NEEDS_CARD = False

    def __init__(self, host: HostPort, *, batch_size: int = 1000, max_batches: int = 10_000,
                 config: TerminalConfig | None = None, clock: Clock = now) -> None:
        super().__init__(host, None, config, clock=clock)
        self.batch_size, self.max_batches = batch_size, max_batches
        self.batches = 0
        self.migrated = 0
        self.amount_fen = 0

    def _do_host(self) -> None:
        try:
            out = self.host.call("8201", {"data": {"batch_size": self.batch_size}}).output
        except HostError as exc:
            self._fail(K.FAILED, host_failure(exc, doing="the migration batch (8201)"))
            return
        self.output = out
        self.batches += 1
        n = int(out.get("migrated", 0))
        self.migrated += n
        self.amount_fen += fen(out.get("amount", "0"))
        left = int(out.get("remaining", 0))
        if n and left and self.batches < self.max_batches:
            self._go(K.HOST, f"batch {self.batches}: {n} old cards, {left} left",
                     migrated=self.migrated, remaining=left)
            return
        self._go(K.DONE, f"{self.migrated} old cards migrated, {yuan(self.amount_fen)} yuan "
                 f"moved into personal accounts in {self.batches} batches; "
                 f"{out.get('without_new_card', 0)} wait for their holder's new card",
                 migrated=self.migrated, remaining=left)


class BalanceEnquiry(CounterFlow):
    """U5: the medical-account (and bank) balance of the card in the reader."""

    name = "balance enquiry"

    def _host_call(self) -> Mapping[str, Any]:
        assert self.card_info is not None
        return self.host.call("8108", {"data": {"mdtrt_cert_type": "03",
                                                "mdtrt_cert_no": self.card_info.card_number,
                                                "card_sn": self.card_info.card_id_code}}
                              ).output

    def _host_message(self) -> str:
        bank = self.output.get("bank_balc")
        return f"medical account {self.output.get('balc', '?')} yuan" + (
            f", bank account {bank} yuan" if bank is not None else "")

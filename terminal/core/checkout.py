"""Pharmacy checkout (seed rules U1, U4, U5, C2, C3) and the cancel of a finished sale.

The sale as a state machine (spec/host.md §2 1101/2101/2102/2103/2601, spec/card.md §7,
§11)::

    READ_CARD ─▶ IDENTIFY ─▶ CART ─▶ TRIAL ─▶ PIN ─▶ [BANK_AUTH ⇄ BANK_PIN] ─▶ SETTLE
                               ▲       │       │ wrong PIN: stays in PIN, with the tries left
                               └───────┘       │ third wrong PIN: FAILED (PIN locked, C3)
                        2101 refused
              SETTLE ─▶ [COMPLETE] ─▶ RECORD ─▶ SLIP ─▶ DONE
                             │ card refuses the bank's answer: REVERSE (2601) ─▶ FAILED

While in CART, :meth:`Checkout.preview` asks the host for the trial (2101) of the cart as it
stands without leaving CART (a trial moves nothing at the host): the live split.

When the card's bank account pays the rest, BANK_AUTH asks the card's bank application for
an ARQC over that amount (same PIN, C2) and the 2102 carries it, so the medical part and
the bank part succeed or fail together at the host; a refusal lands in BANK_FAILED, where
the clerk takes the rest in cash (:meth:`Checkout.pay_cash_instead`, a new trial) or
cancels: never a half-paid sale. A separate-PIN card's bank application has its own PIN
(spec/card.md §1): BANK_AUTH asks the card whether it still wants one and waits in BANK_PIN
for it through the same PIN entry (``enter_pin``; the event data says ``pin="bank"``); a
shared-PIN card counts the PIN already verified and is never asked twice.

After a 2102 with a bank part, COMPLETE hands the host's ARPC to the card (issuer
authentication, second GENERATE AC, EMV Book 3 §6.5.5): when the answer carries no ARPC, or
the card declines it, refuses it or leaves first, the 2102 is reversed (2601, REVERSE) and
the sale ends in FAILED with nothing charged.

Before SETTLE answers, nothing has moved at the host: any failure (card pulled, PIN locked,
PIN pad cancel or timeout, host refusal) ends in FAILED/CANCELLED with ``charged = False``.
A 2102 without an answer is reversed (2601, REVERSE) before the flow says so; a reversal
that cannot be confirmed parks the flow in REVERSAL_PENDING until
:meth:`Checkout.retry_reversal` succeeds.

After SETTLE the sale exists at the host and must end up on the card's DF04 EF08 log too
(RECORD), or be undone: a card pulled (or refusing the record) before the record was
written goes to CARD_PULLED, where :meth:`Checkout.card_returned` finishes the sale (the
same card, then the PIN again: DF04 needs it) and :meth:`Checkout.void` reverses the 2102
(2601; 2103 when the host refuses the reversal). A card pulled *while* the record was being
written may or may not carry it; only the card can tell, so void is not offered:
:meth:`Checkout.card_returned` reads EF08 back before writing again. When the card cannot
be read any more, :meth:`Checkout.confirm_without_record` keeps the sale (the slip says it
is not on the card): the core reverses or confirms, it never leaves a sale unaccounted.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any, ClassVar

from terminal.core.common import (
    PIN_LOCKED_MESSAGE,
    CardFlow,
    Clock,
    Person,
    PinSource,
    card_failure,
    host_failure,
    now,
    prompt_pin,
)
from terminal.core.machine import Awaiting, Failure, FailureKind, FlowStateError
from terminal.core.model import (
    Cart,
    CartLine,
    PayChoice,
    RestBy,
    SaleResult,
    Split,
    TerminalConfig,
    fen,
    yuan,
)
from terminal.core.ports import (
    BankCryptogram,
    CardError,
    CardInfo,
    CardPort,
    CardRemovedError,
    CataloguePort,
    HostError,
    HostPort,
    HostRefused,
    HostTimeout,
    PinWrong,
    TxKind,
    UnknownItem,
)
from terminal.core.settling import (
    RecordState,
    SettlingFlow,
    SettlingStates,
    ef08_record,
    write_card_record,
)

MED_TYPE_PHARMACY = "41"


class CheckoutState(enum.Enum):
    READ_CARD = "read_card"
    IDENTIFY = "identify"
    CART = "cart"
    TRIAL = "trial"
    PIN = "pin"
    BANK_AUTH = "bank_auth"
    BANK_PIN = "bank_pin"
    SETTLE = "settle"
    COMPLETE = "complete"
    REVERSE = "reverse"
    REVERSAL_PENDING = "reversal_pending"
    BANK_FAILED = "bank_failed"
    RECORD = "record"
    CARD_PULLED = "card_pulled"
    VOID = "void"
    CANCEL = "cancel"
    SLIP = "slip"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"
    VOIDED = "voided"


C = CheckoutState
_T: dict[CheckoutState, frozenset[CheckoutState]] = {
    C.READ_CARD: frozenset({C.IDENTIFY, C.FAILED}),
    C.IDENTIFY: frozenset({C.CART, C.FAILED}),
    C.CART: frozenset({C.CART, C.TRIAL, C.CANCELLED, C.FAILED}),
    C.TRIAL: frozenset({C.PIN, C.BANK_AUTH, C.SETTLE, C.CART, C.FAILED}),
    C.PIN: frozenset({C.PIN, C.BANK_AUTH, C.SETTLE, C.TRIAL, C.FAILED, C.CANCELLED,
                      C.RECORD, C.SLIP, C.CARD_PULLED}),
    C.BANK_AUTH: frozenset({C.SETTLE, C.BANK_PIN, C.BANK_FAILED, C.FAILED}),
    C.BANK_PIN: frozenset({C.BANK_PIN, C.BANK_AUTH, C.BANK_FAILED, C.FAILED, C.CANCELLED}),
    C.SETTLE: frozenset({C.COMPLETE, C.RECORD, C.REVERSE, C.FAILED, C.BANK_FAILED}),
    C.COMPLETE: frozenset({C.RECORD, C.REVERSE}),
    C.BANK_FAILED: frozenset({C.TRIAL, C.CANCELLED}),
    C.REVERSE: frozenset({C.FAILED, C.BANK_FAILED, C.VOIDED, C.REVERSAL_PENDING,
                          C.CARD_PULLED}),
    C.REVERSAL_PENDING: frozenset({C.REVERSE}),
    C.RECORD: frozenset({C.SLIP, C.CARD_PULLED}),
    C.CARD_PULLED: frozenset({C.CARD_PULLED, C.PIN, C.SLIP, C.VOID}),
    C.VOID: frozenset({C.VOIDED, C.REVERSAL_PENDING, C.CANCEL}),
    C.CANCEL: frozenset({C.VOIDED, C.REVERSE, C.CARD_PULLED}),
    C.SLIP: frozenset({C.DONE}),
}


class Checkout(SettlingFlow[CheckoutState]):
    """One pharmacy sale, driven step by step (see :mod:`terminal.core`)."""

    name = "checkout"
    TRANSITIONS = _T
    AWAITING: ClassVar[Mapping[Any, Awaiting]] = {
        C.CART: Awaiting.CART,
        C.PIN: Awaiting.PIN,
        C.BANK_PIN: Awaiting.PIN,
        C.CARD_PULLED: Awaiting.CARD_BACK,
        C.BANK_FAILED: Awaiting.RECOVERY,
        C.REVERSAL_PENDING: Awaiting.CONFIRM,
    }
    TERMINAL = frozenset({C.DONE, C.FAILED, C.CANCELLED, C.VOIDED})
    TAG_BANK_FAILURES = True
    STATES = SettlingStates(pin=C.PIN, bank_pin=C.BANK_PIN, bank_auth=C.BANK_AUTH,
                            after_pin=C.SETTLE, bank_failed=C.BANK_FAILED, retrial=C.TRIAL,
                            card_pulled=C.CARD_PULLED, record=C.RECORD, slip=C.SLIP,
                            failed=C.FAILED)
    NOUN = "sale"
    SETTLED = "the sale is settled"

    def __init__(
        self,
        card: CardPort,
        host: HostPort,
        catalogue: CataloguePort,
        config: TerminalConfig | None = None,
        *,
        pay: PayChoice | None = None,
        clock: Clock = now,
    ) -> None:
        super().__init__(C.READ_CARD)
        self.card = card
        self.host = host
        self.catalogue = catalogue
        self.config = config or TerminalConfig()
        self.pay = pay or PayChoice()
        self.clock = clock
        self.cart = Cart()
        self.trial: Split | None = None
        self.split: Split | None = None
        self.pin_tries_left: int | None = None
        self.setl_id = ""
        self.mdtrt_id = ""
        self.settle_msgid = ""
        self.opened_at = self.clock()
        self.settled_at = self.opened_at
        self.record_state = RecordState.NOT_WRITTEN
        self.result: SaleResult | None = None
        self.order_no = ""
        self._pin_ok = False
        self._resume = False  # PIN asked again on a returned card, to record the sale
        self._record_sequence: int | None = None
        self._reversal: tuple[str, str] | None = None  # (msgid, infno) awaiting 2601
        self._after_reversal: tuple[CheckoutState, Failure | None, str] | None = None
        self._arpc: tuple[str, str] | None = None  # the host's (ARPC, ARC) for the bank part

    # ================================================================= automatic steps
    def _do_read_card(self) -> None:
        info = self._read_card(self.card, C.FAILED)
        if info is not None:
            self._go(C.IDENTIFY, f"card {info.masked_number} of {info.name}",
                     card=info.masked_number)

    def _do_identify(self) -> None:
        person = self._identify(C.FAILED)
        if person is None:
            return
        balance = person.balance_fen
        self._go(C.CART, f"{person.name}: account balance "
                 f"{'?' if balance is None else yuan(balance)}", psn_no=person.psn_no)

    def _do_trial(self) -> None:
        self.bank_auth = None
        try:
            reply = self.host.call("2101", self._sale_input(), insuplc_admdvs=self._insuplc())
        except HostError as exc:
            # a trial moves no money: back to the cart with the reason
            f = host_failure(exc, doing="the trial settlement (2101)")
            self._go(C.CART, f.message, failure=f.kind.value)
            return
        self.trial = Split.from_setlinfo(reply.output.get("setlinfo", {}), self.pay.rest)
        try:
            tries = self.card.pin_tries_left()
        except CardRemovedError as exc:
            self._fail(C.FAILED, card_failure(exc, doing="asking for the PIN"))
            return
        except CardError:
            tries = None
        self.pin_tries_left = tries
        if tries == 0:
            self._fail(C.FAILED, Failure(FailureKind.PIN_LOCKED, PIN_LOCKED_MESSAGE, -52))
            return
        t = self.trial
        if self._pin_ok:
            # the PIN was verified in this card session (the bank part fell back to cash)
            bank = self.pay.rest is RestBy.BANK and t.rest > 0
            self._go(C.BANK_AUTH if bank else C.SETTLE, f"total {yuan(t.total)}: account "
                     f"{yuan(t.account)}, {self.pay.rest.value} {yuan(t.rest)}")
            return
        self._go(C.PIN, f"total {yuan(t.total)}: fund {yuan(t.fund)}, account "
                 f"{yuan(t.account)}, {self.pay.rest.value} {yuan(t.rest)}; enter the PIN",
                 total=t.total, tries_left=tries)

    def _do_bank_auth(self) -> None:
        assert self.trial is not None
        if self._bank_pin_due(self.card, pin_state=C.BANK_PIN, recovery=C.BANK_FAILED,
                              failed=C.FAILED):
            self._authorise_bank(
                self.card, self.trial.rest, self.clock(), ok=C.SETTLE,
                recovery=C.BANK_FAILED, failed=C.FAILED)

    def _do_settle(self) -> None:
        assert self.person is not None
        try:
            present = self.card.present()
        except CardError:
            present = False
        if not present:
            self._fail(C.FAILED, card_failure(CardRemovedError(), doing="settling"))
            return
        self.settled_at = self.clock()
        try:
            reply = self.host.call("2102", self._sale_input(), insuplc_admdvs=self._insuplc())
        except HostTimeout as exc:
            self._start_reversal(exc, C.FAILED,
                                 host_failure(exc, doing="to the settlement (2102)"))
            return
        except HostError as exc:
            self._settlement_failed(exc, "the settlement (2102)", sale="the sale",
                                    recovery=C.BANK_FAILED, failed=C.FAILED)
            return
        setl = reply.output.get("setlinfo", {})
        self.setl_id = str(setl.get("setl_id", ""))
        self.mdtrt_id = str(setl.get("mdtrt_id", ""))
        self.settle_msgid = reply.msgid
        self.split = Split.from_setlinfo(setl, self.pay.rest)
        s = self.split
        settled = (f"settled {self.setl_id}: account {yuan(s.account)}, "
                   f"{self.pay.rest.value} {yuan(s.rest)}")
        if self.bank_auth is not None:
            self._arpc = (str(setl.get("arpc") or ""), str(setl.get("arc") or ""))
            self._go(C.COMPLETE, f"{settled}; the card checks the bank's answer",
                     setl_id=self.setl_id)
            return
        self._go(C.RECORD, settled, setl_id=self.setl_id)

    def _do_complete(self) -> None:
        """Issuer authentication of the bank part (spec/card.md §11, EMV Book 3 §6.5.5):
        the card checks the host's ARPC; a card that refuses it, declines or leaves gets
        the 2102 reversed (2601, REVERSE) so nothing is charged."""
        assert self._arpc is not None
        arpc, arc = self._arpc
        self._arpc = None
        refusal = self._bank_completion_refusal(self.card, arpc, arc)
        if not refusal:
            self._go(C.RECORD, "the card accepted the bank payment (TC)")
            return
        self._reversal = (self.settle_msgid, "2102")
        self._after_reversal = (C.FAILED, Failure(
            FailureKind.BANK_REFUSED,
            f"{refusal}; the sale was reversed, nothing charged"), "")
        self._go(C.REVERSE, f"{refusal}: reversing sale {self.setl_id} (2601)",
                 omsgid=self.settle_msgid)

    def _do_reverse(self) -> None:
        assert self._reversal is not None and self._after_reversal is not None
        msgid, infno = self._reversal
        try:
            self.host.reverse(psn_no=self._psn_no(), omsgid=msgid, oinfno=infno)
        except HostError as exc:
            self._go(C.REVERSAL_PENDING,
                     f"the reversal of {infno} ({msgid}) is not confirmed ({exc.message}): "
                     "retry when the host is back; do not hand out the goods",
                     omsgid=msgid, oinfno=infno)
            return
        self._reversal = None
        self._finish_reversal()

    def _do_record(self) -> None:
        write_card_record(self, self._settlement_record(), C.SLIP)

    def _do_void(self) -> None:
        try:
            self.host.reverse(psn_no=self._psn_no(), omsgid=self.settle_msgid, oinfno="2102")
        except HostRefused:
            self._go(C.CANCEL, "the host would not reverse the settlement: cancelling it (2103)")
            return
        except HostError as exc:
            self._reversal = (self.settle_msgid, "2102")
            self._after_reversal = (C.VOIDED, _voided("sale voided (2601): nothing was charged"),
                                    "")
            self._go(C.REVERSAL_PENDING,
                     f"the void is not confirmed ({exc.message}): retry when the host is back",
                     omsgid=self.settle_msgid, oinfno="2102")
            return
        self._fail(C.VOIDED, _voided("sale voided (2601): nothing was charged"))

    def _do_cancel(self) -> None:
        try:
            self.host.call("2103", {"data": {"setl_id": self.setl_id, "mdtrt_id": self.mdtrt_id,
                                             "psn_no": self._psn_no()}},
                           insuplc_admdvs=self._insuplc())
        except HostTimeout as exc:
            # the cancel is reversed: the sale stands, still without its card record
            self._start_reversal(exc, C.CARD_PULLED, None,
                                 "the cancel (2103) got no answer and was reversed: the sale "
                                 "stands; void it again or insert the card to finish it")
            return
        except HostError as exc:
            self._pulled(f"and the host refused to undo the sale ({exc.message})")
            return
        self._fail(C.VOIDED, _voided("sale cancelled (2103): nothing was charged"))

    def _do_slip(self) -> None:
        assert self.split is not None
        notes: list[str] = []
        if self.record_state is RecordState.UNSUPPORTED:
            notes.append("this card keeps no transaction log")
        elif self.record_state is not RecordState.WRITTEN:
            notes.append("not recorded on the card")
        self.result = self._settlement_result(
            "医保结算单 SETTLEMENT SLIP", self.cart.lines, self.split, setl_id=self.setl_id,
            mdtrt_id=self.mdtrt_id, msgid=self.settle_msgid, when=self.settled_at,
            notes=tuple(notes), recorded_on_card=self.record_state is RecordState.WRITTEN)
        self._go(C.DONE, f"sale {self.setl_id} done", setl_id=self.setl_id)

    # ================================================================= inputs
    def add_item(self, code: str, qty: int = 1) -> None:
        """Add ``qty`` of catalogue item ``code`` (CART); unknown codes raise ValueError."""
        self._require(C.CART)
        try:
            item = self.catalogue.lookup(code)
        except UnknownItem:
            raise ValueError(f"item {code} is not in the catalogue") from None
        line = self.cart.add(item, qty)
        self._go(C.CART, f"{item.name} × {line.qty}", code=code, qty=line.qty,
                 total=self.cart.total_fen)

    def set_qty(self, code: str, qty: int) -> None:
        """Change (0 removes) the quantity of ``code`` (CART)."""
        self._require(C.CART)
        self.cart.set_qty(code, qty)
        self._go(C.CART, f"{code} × {qty}", code=code, qty=qty, total=self.cart.total_fen)

    def set_payment(self, pay: PayChoice) -> None:
        """Choose how the person pays (CART; in PIN the trial is run again)."""
        self._require(C.CART, C.PIN)
        if self._resume:
            raise FlowStateError("checkout: the sale is settled")
        self.pay = pay
        self._go(C.TRIAL if self.state is C.PIN else C.CART, f"payment: {pay.label}")

    def confirm_cart(self) -> None:
        """The cart is complete: run the trial settlement (2101)."""
        self._require(C.CART)
        if not self.cart:
            raise FlowStateError("checkout: the cart is empty")
        if not self.order_no:
            self.order_no = f"{self.config.institution_code}{self.clock():%Y%m%d%H%M%S}"
        self._go(C.TRIAL, f"{len(self.cart)} items, total {yuan(self.cart.total_fen)}")

    def preview(self, pay: PayChoice | None = None, *,
                lines: Sequence[CartLine] | None = None) -> Split:
        """The host's trial settlement (2101) of the cart, without leaving CART: the live
        split shown while the cart changes (spec/host.md §2 2101, §3).

        A 2101 moves nothing at the host, so a preview may run any number of times, from a
        worker thread, while the clerk goes on with the cart: it quotes ``lines`` (a
        snapshot the caller took; default the cart as it stands) paid as ``pay`` (default
        the flow's choice), changes nothing in the flow and announces no event. An empty
        cart costs nothing and asks nobody. The host's answer is the very split the trial
        of :meth:`confirm_cart` computes for the same cart and payment.

        Raises :class:`~terminal.core.ports.HostRefused` (with the host's message),
        :class:`~terminal.core.ports.HostTimeout` or
        :class:`~terminal.core.ports.HostUnreachable` as the host port raised them (nothing
        to undo: a trial is never reversed), and
        :class:`~terminal.core.machine.FlowStateError` outside CART.
        """
        self._require(C.CART)
        person, info = self.person, self.card_info
        if person is None or info is None:
            raise FlowStateError("checkout: no identified card to quote for")
        choice = pay or self.pay
        cart = Cart()
        for ln in self.cart.lines if lines is None else lines:
            cart.add(ln.item, ln.qty)
        if not cart:
            return Split(0, 0, 0, 0, 0, balance_after=person.balance_fen)
        # no clock reading and no order number taken: the flow stays exactly as it was
        order = self.order_no or f"{self.config.institution_code}{self.opened_at:%Y%m%d%H%M%S}"
        request = sale_input(person, info, cart, choice, order, self.config,
                             self.opened_at.strftime("%Y-%m-%d %H:%M:%S"))
        reply = self.host.call("2101", request, insuplc_admdvs=person.insuplc_admdvs)
        return Split.from_setlinfo(reply.output.get("setlinfo", {}), choice.rest)

    def cancel(self) -> None:
        """The clerk abandons the sale before it is settled (nothing was charged)."""
        self._require(C.CART, C.PIN, C.BANK_PIN, C.BANK_FAILED)
        if self._resume:
            raise FlowStateError("checkout: the sale is settled; void it or finish it")
        self._fail(C.CANCELLED, Failure(FailureKind.CANCELLED,
                                        "sale cancelled by the clerk; nothing was charged"))

    @property
    def can_void(self) -> bool:
        """True when the settled sale may be undone without the card (CARD_PULLED and the
        card surely carries no record of it)."""
        return self.state is C.CARD_PULLED and self.can_void_record

    @property
    def can_void_record(self) -> bool:
        """True when the card surely carries no record of the settled sale."""
        return self.record_state is RecordState.NOT_WRITTEN

    def void(self) -> None:
        """Undo a settled sale whose card is gone and carries no record of it (2601)."""
        self._require(C.CARD_PULLED)
        if not self.can_void:
            raise FlowStateError(
                "checkout: the card may carry this sale; insert the card to finish it")
        self._go(C.VOID, f"voiding {self.setl_id}")

    def retry_reversal(self) -> None:
        """Send the pending reversal again (REVERSAL_PENDING)."""
        self._require(C.REVERSAL_PENDING)
        self._go(C.REVERSE, "retrying the reversal")

    # ================================================================= helpers
    def _pulled(self, when: str) -> None:
        assert self.card_info is not None
        extra = ", or void the sale" if self.record_state is RecordState.NOT_WRITTEN else ""
        self._go(C.CARD_PULLED, f"the card was pulled {when}: sale {self.setl_id} is settled at "
                 f"the host; insert card {self.card_info.masked_number} to finish{extra}",
                 record=self.record_state.value)

    def _refused(self, exc: CardError) -> None:
        """The card refused the record (nothing written): it is needed again, or the sale
        is voided."""
        assert self.card_info is not None
        self.record_state = RecordState.NOT_WRITTEN
        self._go(C.CARD_PULLED, f"the card refused the sale's record ({exc.message}): sale "
                 f"{self.setl_id} is settled at the host; re-insert card "
                 f"{self.card_info.masked_number} to retry, or void the sale",
                 record=self.record_state.value)

    def _start_reversal(self, exc: HostTimeout, target: CheckoutState,
                        failure: Failure | None, message: str = "") -> None:
        """Reverse (2601) the message that got no answer, then go to ``target``."""
        self._after_reversal = (target, failure, message)
        if exc.reversed:
            self._reversal = None
            self._finish_reversal()
            return
        self._reversal = (exc.msgid, exc.infno)
        self._go(C.REVERSE, f"no answer to {exc.infno}: reversing it (2601)", omsgid=exc.msgid)

    def _finish_reversal(self) -> None:
        assert self._after_reversal is not None
        target, failure, message = self._after_reversal
        self._after_reversal = None
        if failure is not None:
            self._fail(target, failure)
        else:
            self._go(target, message)

    def _sale_input(self) -> dict[str, Any]:
        assert self.person is not None and self.card_info is not None
        return sale_input(self.person, self.card_info, self.cart, self.pay, self.order_no,
                          self.config, self.clock().strftime("%Y-%m-%d %H:%M:%S"),
                          self.bank_auth)


def _voided(message: str) -> Failure:
    return Failure(FailureKind.VOIDED, message)


def sale_input(person: Person, card: CardInfo, cart: Cart, pay: PayChoice, order_no: str,
               config: TerminalConfig, when: str,
               bank_auth: BankCryptogram | None = None) -> dict[str, Any]:
    """The 2101/2102 ``input`` (spec/host.md §2): ``druginfo`` + ``drugdetail``; the bank
    part, when the card's bank account pays the rest, rides along as ``bank_auth``."""
    druginfo: dict[str, Any] = {
        "psn_no": person.psn_no,
        "mdtrt_cert_type": "03",
        "mdtrt_cert_no": card.card_number,
        "card_sn": card.card_id_code,
        "med_type": MED_TYPE_PHARMACY,
        "medfee_sumamt": yuan(cart.total_fen),
        "insutype": person.insutype or config.insutype,
        "acct_used_flag": "1" if pay.use_account else "0",
        "psn_setlway": "01",
        "cash_src": pay.rest.value,
        "ipt_otp_no": order_no,
        "begntime": when,
    }
    if bank_auth is not None:
        druginfo["bank_auth"] = bank_auth.to_wire()
    return {
        "druginfo": druginfo,
        "drugdetail": [
            {
                "feedetl_sn": f"{order_no[-8:]}{i + 1:04d}",
                "med_list_codg": ln.item.code,
                "medins_list_codg": ln.item.code,
                "cnt": ln.qty,
                "pric": yuan(ln.item.price_fen),
                "det_item_fee_sumamt": yuan(ln.amount_fen),
                "fee_ocur_time": when,
            }
            for i, ln in enumerate(cart.lines)
        ],
    }


# ================================================================= cancel of a finished sale


class CancelState(enum.Enum):
    READ_CARD = "read_card"
    PIN = "pin"
    CANCEL = "cancel"
    REVERSE = "reverse"
    RECORD = "record"
    DONE = "done"
    FAILED = "failed"


K = CancelState


class CancelSale(CardFlow[CancelState]):
    """Cancel (2103) a finished sale with its card present, and record the refund in EF08."""

    name = "cancel_sale"
    TRANSITIONS: ClassVar[Mapping[Any, frozenset[Any]]] = {
        K.READ_CARD: frozenset({K.PIN, K.FAILED}),
        K.PIN: frozenset({K.PIN, K.CANCEL, K.FAILED}),
        K.CANCEL: frozenset({K.RECORD, K.DONE, K.FAILED, K.REVERSE}),
        K.REVERSE: frozenset({K.FAILED}),
        K.RECORD: frozenset({K.DONE, K.FAILED}),
    }
    AWAITING: ClassVar[Mapping[Any, Awaiting]] = {K.PIN: Awaiting.PIN}
    TERMINAL = frozenset({K.DONE, K.FAILED})

    def __init__(self, card: CardPort, host: HostPort, sale: SaleResult,
                 config: TerminalConfig | None = None, *, clock: Clock = now) -> None:
        super().__init__(K.READ_CARD)
        self.card = card
        self.host = host
        self.sale = sale
        self.config = config or TerminalConfig()
        self.clock = clock
        self.refund: Split | None = None
        self.recorded = False

    def _do_read_card(self) -> None:
        info = self._read_card(self.card, K.FAILED)
        if info is None:
            return
        if info.card_number != self.sale.card_number:
            self._fail(K.FAILED, Failure(
                FailureKind.WRONG_CARD,
                f"sale {self.sale.setl_id} was paid with another card: insert card "
                f"{self.sale.slip.card_number_masked}"))
            return
        self._go(K.PIN, f"cancel sale {self.sale.setl_id} of {yuan(self.sale.split.total)}: "
                 "the holder enters the PIN")

    def enter_pin(self, pin: str) -> None:
        """The holder confirms the cancel with the PIN (it also opens DF04 for the refund
        record). Passed to the card, never kept."""
        self._require(K.PIN)
        try:
            self.card.verify_pin(pin)
        except PinWrong as exc:
            self._go(K.PIN, f"wrong PIN: {exc.tries_left} tries left before the card locks",
                     tries_left=exc.tries_left)
            return
        except CardError as exc:
            self._fail(K.FAILED, card_failure(exc, doing="checking the PIN"))
            return
        self._go(K.CANCEL, f"cancelling {self.sale.setl_id} (2103)")

    def cancel_pin(self) -> None:
        self._require(K.PIN)
        self._fail(K.FAILED, Failure(FailureKind.PIN_CANCELLED,
                                     "PIN entry cancelled; the sale was not cancelled", -31))

    def _do_cancel(self) -> None:
        try:
            reply = self.host.call("2103", {"data": {"setl_id": self.sale.setl_id,
                                                     "mdtrt_id": self.sale.mdtrt_id,
                                                     "psn_no": self.sale.psn_no}})
        except HostTimeout as exc:
            self._timed_out(exc, "the cancel (2103)", failed=K.FAILED, reverse=K.REVERSE)
            return
        except HostError as exc:
            self._fail(K.FAILED, host_failure(exc, doing="the cancel (2103)"))
            return
        setl: Mapping[str, Any] = reply.output.get("setlinfo") or {}
        self.refund = self.sale.split
        if setl.get("acct_pay") not in (None, ""):
            self.refund = replace(self.sale.split, balance_after=(
                fen(setl["balc"]) if setl.get("balc") not in (None, "") else None))
        if self.sale.recorded_on_card:
            self._go(K.RECORD, "cancelled at the host; recording the refund on the card")
        else:
            self._go(K.DONE, f"sale {self.sale.setl_id} cancelled")

    def _do_reverse(self) -> None:
        self._reverse_timeout(
            self.sale.psn_no, "the cancel (2103)", failed=K.FAILED, subject="the cancel",
            advice="run the cancel again when the host is back (it is safe to repeat)")

    def _do_record(self) -> None:
        terminal = self.card_info.terminal_number if self.card_info else ""
        rec = ef08_record(TxKind.CREDIT, terminal, self.sale.slip.when, self.sale.split)
        try:
            self.card.append_transaction(rec)
            self.recorded = True
        except CardError as exc:
            self.message = f"refund not recorded on the card: {exc.message}"
        self._go(K.DONE, f"sale {self.sale.setl_id} cancelled")


# ================================================================= scripted driving

def run_checkout(flow: Checkout, items: list[tuple[str, int]], pin: PinSource,
                 *, max_pin_tries: int = 3, bank_fallback: str = "cancel",
                 bank_pin: PinSource | None = None) -> Checkout:
    """Drive a whole sale without a UI (the scriptable checkout and the benchmark).

    ``pin`` is asked at most ``max_pin_tries`` times; ``bank_pin`` (default: ``pin``) is
    the source of a separate-PIN card's bank PIN (BANK_PIN), asked as often. A refused
    trial ends the flow in FAILED with the host's message. When the bank part fails,
    ``bank_fallback`` decides:
    ``"cash"`` settles with the rest in cash, ``"cancel"`` cancels the sale. A card pulled
    after the settlement, before its record reached the card, voids the sale (2601); when
    the card may carry the record the flow stays in CARD_PULLED for the caller.
    """
    flow.run_until_input()
    if flow.state is C.CART:
        for code, qty in items:
            flow.add_item(code, qty)
        flow.confirm_cart()
        flow.run_until_input()
        if flow.state is C.CART:  # the trial was refused: its message is the reason
            flow._fail(C.FAILED, Failure(FailureKind.HOST_REFUSED, flow.message))
            return flow
    asked = {C.PIN: 0, C.BANK_PIN: 0}
    while True:
        state = flow.state
        if state in asked:
            source = (bank_pin or pin) if state is C.BANK_PIN else pin
            if not prompt_pin(flow, source, asked[state], max_pin_tries):
                break
            asked[state] += 1
        elif flow.state is C.BANK_FAILED:
            if bank_fallback == "cash":
                flow.pay_cash_instead()
                bank_fallback = "cancel"
            else:
                reason: str = flow.message
                flow.cancel()
                if flow.failure is not None:
                    flow.failure = replace(flow.failure, message=f"{reason}; sale cancelled, "
                                           "nothing was charged", kind=FailureKind.BANK_REFUSED)
                break
        elif flow.state is C.CARD_PULLED and flow.can_void:
            flow.void()
        elif flow.finished or flow.awaiting is not None:
            break
        flow.run_until_input()
    return flow

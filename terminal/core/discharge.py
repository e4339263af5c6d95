"""Discharge settlement (seed rule U3): the patient pays only the self-pay part.

::

    READ_CARD ─▶ IDENTIFY ─▶ FEES ─▶ TRIAL ─▶ CHOOSE ─▶ RETRIAL ─▶ [PIN] ─▶ [BANK_AUTH ⇄ BANK_PIN]
              ─▶ DISCHARGE ─▶ SETTLE ─▶ [COMPLETE] ─▶ RECORD ─▶ SLIP ─▶ DONE
                                           │ card declines: UNDO (2601) ─▶ FAILED
                                           RECORD ─▶ CARD_PULLED ─▶ PIN ─▶ RECORD | SLIP

FEES uploads the fee details (2301), TRIAL is the trial settlement with the pooled fund
(2303), CHOOSE waits for the patient's choice for the self-pay part (personal medical
account, the card's bank account or cash), RETRIAL runs 2303 for that choice, the PIN is
asked when the account or the bank account pays, BANK_AUTH gets the card's ARQC for the
bank part (spec/card.md §11), DISCHARGE registers the discharge (2402; the host settles
only discharged stays) and SETTLE is 2304 carrying the bank part (spec/host.md §2).

A separate-PIN card's bank application has its own PIN (spec/card.md §1): BANK_AUTH asks the
card whether its bank application still wants a PIN (a shared-PIN card counts the PIN of
the PIN state and is not asked twice) and waits in BANK_PIN for it, through the same PIN
entry (``enter_pin``; the event data says ``pin="bank"``).

After a 2304 with a bank part, COMPLETE gives the host's ARPC to the card (issuer
authentication, second GENERATE AC, EMV Book 3 §6.5.5,
:meth:`terminal.core.ports.CardPort.complete_bank`); a card that declines (wrong ARPC) or
leaves before answering gets the settlement reversed (UNDO, 2601): nothing is charged.

RECORD writes the settlement on the card's DF04 EF08 log through the purse purchase, as the
pharmacy checkout does (:func:`terminal.core.checkout.ef08_record`, spec/card.md §4, §6);
it needs the PIN, so a stay paid in cash without the PIN is not recorded (the slip says
so). A card pulled before the record was written waits in CARD_PULLED: the same card and
the PIN again (:meth:`Discharge.card_returned`), and when the pull came during the write
the log is read back first, so the record is never written twice;
:meth:`Discharge.confirm_without_record` keeps the settlement without it.

Before SETTLE answers nothing has moved: the bank part rides in the 2304, so a refusal
moves nothing and lands in BANK_FAILED (take the rest in cash, or stop); a 2304 without an
answer is reversed (2601). Re-running a discharge for the same stay is safe: fee lines
already uploaded and a stay already discharged are accepted as they are.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from terminal.core.common import (
    Clock,
    PinSource,
    host_failure,
    now,
    prompt_pin,
)
from terminal.core.machine import Awaiting, Failure, FailureKind
from terminal.core.model import (
    CartLine,
    PayChoice,
    RestBy,
    SaleResult,
    Split,
    TerminalConfig,
    yuan,
)
from terminal.core.ports import (
    CardError,
    CardPort,
    HostError,
    HostPort,
    HostRefused,
    HostTimeout,
)
from terminal.core.settling import RecordState, SettlingFlow, SettlingStates, write_card_record


class DischargeState(enum.Enum):
    READ_CARD = "read_card"
    IDENTIFY = "identify"
    FEES = "fees"
    TRIAL = "trial"
    CHOOSE = "choose"
    RETRIAL = "retrial"
    PIN = "pin"
    BANK_AUTH = "bank_auth"
    BANK_PIN = "bank_pin"
    DISCHARGE = "discharge"
    SETTLE = "settle"
    COMPLETE = "complete"
    UNDO = "undo"
    REVERSE = "reverse"
    BANK_FAILED = "bank_failed"
    RECORD = "record"
    CARD_PULLED = "card_pulled"
    SLIP = "slip"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


D = DischargeState


@dataclass(frozen=True)
class DischargeData:
    """The stay to settle: its admission id (2401 ``mdtrt_id``) and the discharge details."""

    mdtrt_id: str
    dscg_way: str = "1"
    dise_name: str = ""
    upload_fees: bool = True
    """False when the hospital system already uploaded the fee lines (2301)."""


class Discharge(SettlingFlow[DischargeState]):
    """Settlement of an inpatient stay and the discharge."""

    name = "discharge"
    TRANSITIONS: ClassVar[Mapping[Any, frozenset[Any]]] = {
        D.READ_CARD: frozenset({D.IDENTIFY, D.FAILED}),
        D.IDENTIFY: frozenset({D.FEES, D.TRIAL, D.FAILED}),
        D.FEES: frozenset({D.TRIAL, D.FAILED}),
        D.TRIAL: frozenset({D.CHOOSE, D.FAILED}),
        D.CHOOSE: frozenset({D.RETRIAL, D.CANCELLED}),
        D.RETRIAL: frozenset({D.PIN, D.BANK_AUTH, D.DISCHARGE, D.CHOOSE}),
        D.PIN: frozenset({D.PIN, D.BANK_AUTH, D.DISCHARGE, D.FAILED, D.RECORD, D.SLIP,
                          D.CARD_PULLED}),
        D.BANK_AUTH: frozenset({D.DISCHARGE, D.BANK_PIN, D.BANK_FAILED, D.FAILED}),
        D.BANK_PIN: frozenset({D.BANK_PIN, D.BANK_AUTH, D.BANK_FAILED, D.FAILED}),
        D.DISCHARGE: frozenset({D.SETTLE, D.FAILED}),
        D.SETTLE: frozenset({D.COMPLETE, D.RECORD, D.REVERSE, D.FAILED, D.BANK_FAILED}),
        D.COMPLETE: frozenset({D.RECORD, D.UNDO}),
        D.UNDO: frozenset({D.FAILED}),
        D.REVERSE: frozenset({D.FAILED}),
        D.BANK_FAILED: frozenset({D.RETRIAL, D.CANCELLED}),
        D.RECORD: frozenset({D.SLIP, D.CARD_PULLED}),
        D.CARD_PULLED: frozenset({D.CARD_PULLED, D.PIN, D.SLIP}),
        D.SLIP: frozenset({D.DONE}),
    }
    AWAITING: ClassVar[Mapping[Any, Awaiting]] = {
        D.CHOOSE: Awaiting.DATA,
        D.PIN: Awaiting.PIN,
        D.BANK_PIN: Awaiting.PIN,
        D.BANK_FAILED: Awaiting.RECOVERY,
        D.CARD_PULLED: Awaiting.CARD_BACK,
    }
    TERMINAL = frozenset({D.DONE, D.FAILED, D.CANCELLED})
    BANK_OR_ELSE = "stop"
    STATES = SettlingStates(pin=D.PIN, bank_pin=D.BANK_PIN, bank_auth=D.BANK_AUTH,
                            after_pin=D.DISCHARGE, bank_failed=D.BANK_FAILED,
                            retrial=D.RETRIAL, card_pulled=D.CARD_PULLED, record=D.RECORD,
                            slip=D.SLIP, failed=D.FAILED)
    NOUN = "settlement"
    SETTLED = "the settlement is done"

    def __init__(self, card: CardPort, host: HostPort, stay: DischargeData,
                 fees: list[CartLine], config: TerminalConfig | None = None,
                 *, clock: Clock = now) -> None:
        super().__init__(D.READ_CARD)
        self.card = card
        self.host = host
        self.stay = stay
        self.fees = list(fees)
        self.config = config or TerminalConfig()
        self.clock = clock
        self.pay = PayChoice()
        self.trial: Split | None = None
        self.split: Split | None = None
        self.setl_id = ""
        self.settle_msgid = ""
        self.settled_at = self.clock()
        self.pin_tries_left: int | None = None
        self.result: SaleResult | None = None
        self.record_state = RecordState.NOT_WRITTEN
        self._pin_ok = False
        self._resume = False  # PIN asked again on a returned card, to record the settlement
        self._record_sequence: int | None = None
        self._arpc: tuple[str, str] | None = None  # the host's (ARPC, ARC) for the bank part
        self._undo_reason = ""

    # ----------------------------------------------------------------- automatic
    def _do_read_card(self) -> None:
        info = self._read_card(self.card, D.FAILED)
        if info is not None:
            self._go(D.IDENTIFY, f"card {info.masked_number}")

    def _do_identify(self) -> None:
        if self._identify(D.FAILED) is None:
            return
        if self.stay.upload_fees:
            self._go(D.FEES, f"uploading {len(self.fees)} fee lines (2301)")
        else:
            self._go(D.TRIAL, "trial settlement (2303)")

    def _do_fees(self) -> None:
        assert self.person is not None
        when = self.clock().strftime("%Y-%m-%d %H:%M:%S")
        if self._call_once("2301", {"feedetail": [
                {"feedetl_sn": f"{self.stay.mdtrt_id[-12:]}{i + 1:04d}",
                 "mdtrt_id": self.stay.mdtrt_id, "psn_no": self.person.psn_no,
                 "med_list_codg": ln.item.code, "medins_list_codg": ln.item.code,
                 "cnt": ln.qty, "pric": yuan(ln.item.price_fen),
                 "det_item_fee_sumamt": yuan(ln.amount_fen), "fee_ocur_time": when}
                for i, ln in enumerate(self.fees)]},
                "the fee upload (2301)", done_code="duplicate_detail"):
            self._go(D.TRIAL, "trial settlement (2303)")

    def _do_trial(self) -> None:
        try:
            reply = self.host.call("2303", self._settle_input(PayChoice()),
                                   insuplc_admdvs=self._insuplc())
        except HostError as exc:
            self._fail(D.FAILED, host_failure(exc, doing="the trial settlement (2303)"))
            return
        self.trial = Split.from_setlinfo(reply.output.get("setlinfo", {}), RestBy.CASH)
        t = self.trial
        self._go(D.CHOOSE, f"total {yuan(t.total)}: pooled fund {yuan(t.fund)}, self-pay "
                 f"{yuan(t.total - t.fund)} (the account can pay {yuan(t.account)}); choose "
                 "account, bank or cash", total=t.total, fund=t.fund)

    def _do_retrial(self) -> None:
        self.bank_auth = None
        try:
            reply = self.host.call("2303", self._settle_input(self.pay),
                                   insuplc_admdvs=self._insuplc())
        except HostError as exc:
            f = host_failure(exc, doing="the trial settlement (2303)")
            self._go(D.CHOOSE, f.message, failure=f.kind.value)
            return
        self.trial = Split.from_setlinfo(reply.output.get("setlinfo", {}), self.pay.rest)
        t = self.trial
        bank = self.pay.rest is RestBy.BANK and t.rest > 0
        if (self.pay.use_account or bank) and not self._pin_ok:
            self._go(D.PIN, f"account {yuan(t.account)}, {self.pay.rest.value} {yuan(t.rest)}: "
                     "enter the PIN", total=t.total)
        elif bank:
            self._go(D.BANK_AUTH, f"bank {yuan(t.rest)}", total=t.total)
        else:
            self._go(D.DISCHARGE, f"{self.pay.rest.value} {yuan(t.rest)}", total=t.total)

    def _do_bank_auth(self) -> None:
        assert self.trial is not None
        if self._bank_pin_due(self.card, pin_state=D.BANK_PIN, recovery=D.BANK_FAILED,
                              failed=D.FAILED):
            self._authorise_bank(
                self.card, self.trial.rest, self.clock(), ok=D.DISCHARGE,
                recovery=D.BANK_FAILED, failed=D.FAILED)

    def _do_discharge(self) -> None:
        assert self.person is not None
        # a stay already discharged (stay_state) goes on to the settlement
        if self._call_once("2402", {"dscginfo": {
                "mdtrt_id": self.stay.mdtrt_id, "psn_no": self.person.psn_no,
                "endtime": self.clock().strftime("%Y-%m-%d %H:%M:%S"),
                "dscg_way": self.stay.dscg_way, "dise_name": self.stay.dise_name}},
                "the discharge (2402)", done_code="stay_state"):
            self._go(D.SETTLE, "discharged; settling (2304)")

    def _do_settle(self) -> None:
        assert self.person is not None
        self.settled_at = self.clock()
        try:
            reply = self.host.call("2304", self._settle_input(self.pay),
                                   insuplc_admdvs=self._insuplc())
        except HostTimeout as exc:
            self._timed_out(exc, "the settlement (2304)", failed=D.FAILED, reverse=D.REVERSE)
            return
        except HostError as exc:
            self._settlement_failed(exc, "the settlement (2304)", sale="the settlement",
                                    recovery=D.BANK_FAILED, failed=D.FAILED)
            return
        setl = reply.output.get("setlinfo", {})
        self.setl_id = str(setl.get("setl_id", ""))
        self.settle_msgid = reply.msgid
        self.split = Split.from_setlinfo(setl, self.pay.rest)
        if self.bank_auth is not None:
            self._arpc = (str(setl.get("arpc") or ""), str(setl.get("arc") or "3030"))
            self._go(D.COMPLETE, f"settled {self.setl_id}; the card checks the host's answer",
                     setl_id=self.setl_id)
            return
        self._go(D.RECORD, f"settled {self.setl_id}", setl_id=self.setl_id)

    def _do_complete(self) -> None:
        """Issuer authentication: the host's ARPC to the card (EMV Book 3 §6.5.5)."""
        assert self._arpc is not None
        arpc, arc = self._arpc
        self._arpc = None
        refusal = self._bank_completion_refusal(self.card, arpc, arc)
        if refusal:
            self._undo(refusal)
            return
        self._go(D.RECORD, "the card accepted the bank payment (TC)")

    def _undo(self, reason: str) -> None:
        self._undo_reason = reason
        self._go(D.UNDO, f"{reason}: reversing settlement {self.setl_id} (2601)")

    def _do_undo(self) -> None:
        reason = self._undo_reason
        try:
            self.host.reverse(psn_no=self._psn_no(), omsgid=self.settle_msgid, oinfno="2304")
        except HostError as exc:
            self._fail(D.FAILED, Failure(
                FailureKind.BANK_REFUSED,
                f"{reason}; the reversal of settlement {self.setl_id} is not confirmed "
                f"({exc.message}): check the stay at the host before settling again",
                charged=True))
            return
        self._fail(D.FAILED, Failure(
            FailureKind.BANK_REFUSED,
            f"{reason}: settlement {self.setl_id} was reversed (2601), nothing was charged; "
            "settle again, with the rest in cash"))

    def _do_record(self) -> None:
        """The settlement on the card's DF04 EF08 log (spec/card.md §4, §6)."""
        if not self._pin_ok:
            self._go(D.SLIP, "not recorded on the card: the holder entered no PIN")
            return
        write_card_record(self, self._settlement_record(), D.SLIP)

    def _do_reverse(self) -> None:
        assert self._timeout is not None and self.person is not None
        self._reverse_timeout(
            self.person.psn_no, "the settlement (2304)", failed=D.FAILED,
            subject=self._timeout.infno, advice="check the stay at the host before settling "
            "again")

    def _do_slip(self) -> None:
        assert self.split is not None
        notes: tuple[str, ...] = ()
        if self.record_state is RecordState.UNSUPPORTED:
            notes = ("this card keeps no transaction log",)
        elif self.record_state is not RecordState.WRITTEN:
            notes = ("not recorded on the card",)
        self.result = self._settlement_result(
            "住院结算单 INPATIENT SETTLEMENT", self.fees, self.split, setl_id=self.setl_id,
            mdtrt_id=self.stay.mdtrt_id, msgid=self.settle_msgid, when=self.settled_at,
            notes=notes, recorded_on_card=self.record_state is RecordState.WRITTEN)
        self._go(D.DONE, f"settlement {self.setl_id} done")

    # ----------------------------------------------------------------- inputs
    def choose_payment(self, pay: PayChoice) -> None:
        """The patient's choice for the self-pay part (CHOOSE): re-run the trial for it."""
        self._require(D.CHOOSE)
        self.pay = pay
        self._go(D.RETRIAL, f"payment: {pay.label}")

    def cancel(self) -> None:
        """Stop before the settlement (nothing was charged)."""
        self._require(D.CHOOSE, D.BANK_FAILED)
        self._fail(D.CANCELLED, Failure(FailureKind.CANCELLED,
                                        "settlement stopped by the clerk; nothing was charged"))

    # ----------------------------------------------------------------- helpers
    def _pulled(self, when: str) -> None:
        assert self.card_info is not None
        self._go(D.CARD_PULLED, f"the card was pulled {when}: settlement {self.setl_id} is "
                 f"done at the host; insert card {self.card_info.masked_number} to record it, "
                 "or confirm it without the record", record=self.record_state.value)

    def _refused(self, exc: CardError) -> None:
        """The card refused the record (nothing written): insert it again or confirm."""
        assert self.card_info is not None
        self.record_state = RecordState.NOT_WRITTEN
        self._go(D.CARD_PULLED, f"the card refused the settlement's record ({exc.message}): "
                 f"settlement {self.setl_id} is done at the host; re-insert card "
                 f"{self.card_info.masked_number} to retry, or confirm it without the record",
                 record=self.record_state.value)

    def _call_once(self, infno: str, input: Mapping[str, Any], what: str, *,
                   done_code: str) -> bool:
        """Send ``infno`` for the stay; a refusal ``done_code`` means an earlier attempt
        already did it (re-running a discharge is safe). Any other host error ends the flow;
        returns whether it goes on."""
        try:
            self.host.call(infno, input, insuplc_admdvs=self._insuplc())
        except HostError as exc:
            if not (isinstance(exc, HostRefused) and exc.code == done_code):
                self._fail(D.FAILED, host_failure(exc, doing=what))
                return False
        return True

    def _settle_input(self, pay: PayChoice) -> dict[str, Any]:
        total = sum(ln.amount_fen for ln in self.fees)
        data: dict[str, Any] = {
            "mdtrt_id": self.stay.mdtrt_id, "psn_no": self._psn_no(),
            "mdtrt_cert_type": "03",
            "mdtrt_cert_no": self.card_info.card_number if self.card_info else "",
            "card_sn": self.card_info.card_id_code if self.card_info else "",
            "medfee_sumamt": yuan(total),
            "acct_used_flag": "1" if pay.use_account else "0",
            "cash_src": pay.rest.value,
        }
        if self.bank_auth is not None:
            data["bank_auth"] = self.bank_auth.to_wire()
        return {"data": data}


def run_discharge(flow: Discharge, pay: PayChoice, pin: PinSource, *,
                  max_pin_tries: int = 3, bank_fallback: str = "cancel",
                  bank_pin: PinSource | None = None) -> Discharge:
    """Drive a discharge without a UI; ``pin`` is a :data:`terminal.core.common.PinSource`,
    ``bank_pin`` the one for a separate-PIN card's bank PIN (default: ``pin``). A card pulled
    after the settlement leaves the flow in CARD_PULLED for the caller."""
    flow.run_until_input()
    if flow.state is D.CHOOSE:
        flow.choose_payment(pay)
    asked = {D.PIN: 0, D.BANK_PIN: 0}
    while True:
        flow.run_until_input()
        state = flow.state
        if state in asked:
            source = bank_pin or pin if state is D.BANK_PIN else pin
            if not prompt_pin(flow, source, asked[state], max_pin_tries):
                break
            asked[state] += 1
        elif flow.state is D.BANK_FAILED:
            if bank_fallback == "cash":
                bank_fallback = "cancel"
                flow.pay_cash_instead()
            else:
                flow.cancel()
        elif flow.state is D.CHOOSE:  # the trial for the choice was refused
            flow.cancel()
        else:
            break
    return flow

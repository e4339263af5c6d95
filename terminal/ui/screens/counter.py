"""The service counter: activation, PIN change / unlock / reset, loss report, replacement,
damaged card, data change, old card migration, balance enquiry.

Each operation is a :mod:`terminal.core.counter` flow. The form on the right asks for what
the operation needs: the holder's ID number where the rules say so (C3 unlock/reset, L1
loss report, replacement), the card number for a card that is not at hand (loss), the
reason and fee source of a replacement (L1/L2), the changed data (A5). PINs are typed on the
PIN pad only.

Keys: F2 operations · F6 read card · F7 clear · F8 run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Checkbox, Footer, Input, Label, OptionList, Select, Static
from textual.widgets.option_list import Option

from terminal.core.counter import (
    ActivateCard,
    BalanceEnquiry,
    ChangeHolderData,
    ChangePin,
    CounterFlow,
    CounterState,
    LiftLoss,
    MigrateOldCards,
    ReplaceCard,
    ReportLoss,
    ResetPin,
    UnlockPin,
)
from terminal.core.machine import Awaiting, FailureKind
from terminal.core.ports import HostError, HostPort
from terminal.ui.messages import CardInserted, CardRemoved
from terminal.ui.screens.base import FlowScreen, Progress
from terminal.ui.widgets.pinpad import PinPad
from terminal.ui.widgets.slip import SlipPreview
from terminal.ui.widgets.status import StatusBar

K = CounterState


@dataclass(frozen=True)
class Operation:
    """One counter operation: its label, the rule it implements and the fields it asks."""

    key: str
    label: str
    rule: str
    fields: tuple[str, ...]


OPERATIONS: tuple[Operation, ...] = (
    Operation("activate", "Activation 激活", "A3/A4: change the initial PIN, then activate",
              ("certno",)),
    Operation("change_pin", "PIN change 修改密码", "C2: one PIN for both accounts", ()),
    Operation("unlock_pin", "PIN unlock 密码解锁", "C3: ID card required; free", ("certno",)),
    Operation("reset_pin", "PIN reset 密码重置", "C3: ID card required; free", ("certno",)),
    Operation("report_loss", "Loss report 挂失", "L1: ID card required; stops all payments",
              ("card_no", "certno", "formal")),
    Operation("lift_loss", "Lift loss report 解挂", "L1: ID card required",
              ("card_no", "certno")),
    Operation("replace", "Replacement 补卡 (lost)", "L1: new card, 30 yuan (policy)",
              ("card_no", "certno", "fee_src")),
    Operation("damaged", "Damaged card 损坏换卡", "L2: certificate; free unless the "
              "holder caused it", ("card_no", "certno", "holder_fault", "certificate_no",
                                   "fee_src")),
    Operation("data_change", "Data change 信息变更", "A5/C7: office records it",
              ("psn_no", "certno", "psn_name", "emp_name")),
    Operation("migrate", "Old card migration 旧卡迁移", "M2: batches into personal accounts",
              ("batch_size",)),
    Operation("balance", "Balance enquiry 余额查询", "U5", ()),
)
BY_KEY = {op.key: op for op in OPERATIONS}

FIELD_LABELS = {
    "certno": "holder's ID number 身份证号 (from the ID card)",
    "card_no": "card number 社保卡号",
    "formal": "formal loss report 正式挂失 (else temporary)",
    "fee_src": "fee paid from 手续费支付",
    "holder_fault": "damaged by the holder 本人原因损坏 (fee charged)",
    "certificate_no": "certificate number 证明编号 (from the office)",
    "psn_no": "person number 人员编号",
    "psn_name": "new name 新姓名 (empty = unchanged)",
    "emp_name": "new employer 新单位 (empty = unchanged)",
    "batch_size": "batch size 每批数量",
}


class CounterScreen(FlowScreen):
    """Counter operations on the card and at the host."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f2", "operations", "Ops"),
        Binding("f6", "read_card", "Card"),
        Binding("f7", "clear", "Clear"),
        Binding("f8", "run", "RUN"),
    ]

    flow: CounterFlow | None = None

    def __init__(self) -> None:
        super().__init__()
        self.operation = OPERATIONS[0]
        self.card_number = ""
        self.card_ssn = ""

    def compose(self) -> ComposeResult:
        yield StatusBar("Service counter 服务柜台", id="status")
        with Horizontal(id="counter-main"):
            yield OptionList(*[Option(op.label, id=op.key) for op in OPERATIONS],
                             id="counter-ops")
            with Vertical(id="counter-form"):
                with Horizontal(id="counter-at-row"):
                    yield Label("counter 柜台", id="counter-at-label")
                    yield Select(self._counter_choices(), allow_blank=False, id="counter-at",
                                 compact=True)
                yield Label("", id="counter-rule")
                yield Static("", id="counter-result")
                with VerticalScroll(id="counter-fields"):
                    yield Label(FIELD_LABELS["card_no"], id="label-card_no")
                    yield Input(id="card_no", compact=True, placeholder="9 characters")
                    yield Label(FIELD_LABELS["certno"], id="label-certno")
                    yield Input(id="certno", compact=True, placeholder="18 characters")
                    yield Checkbox(FIELD_LABELS["formal"], id="formal", compact=True)
                    yield Checkbox(FIELD_LABELS["holder_fault"], id="holder_fault",
                                   compact=True)
                    yield Label(FIELD_LABELS["certificate_no"], id="label-certificate_no")
                    yield Input(id="certificate_no", compact=True)
                    yield Label(FIELD_LABELS["fee_src"], id="label-fee_src")
                    yield Select([("cash 现金", "cash"), ("bank account 银行卡", "bank")],
                                 value="cash", allow_blank=False, id="fee_src", compact=True)
                    yield Label(FIELD_LABELS["psn_no"], id="label-psn_no")
                    yield Input(id="psn_no", compact=True)
                    yield Label(FIELD_LABELS["psn_name"], id="label-psn_name")
                    yield Input(id="psn_name", compact=True)
                    yield Label(FIELD_LABELS["emp_name"], id="label-emp_name")
                    yield Input(id="emp_name", compact=True)
                    yield Label(FIELD_LABELS["batch_size"], id="label-batch_size")
                    yield Input("1000", id="batch_size", compact=True, type="integer")
        yield Progress(id="progress")
        yield Footer(compact=True, show_command_palette=False)

    def _counter_choices(self) -> list[tuple[str, str]]:
        counters = list(self.sscard.services.counters)
        if not counters:
            config = self.sscard.services.config
            counters = [(config.institution_code, config.institution_name)]
        return [(label, code) for code, label in counters]

    def on_mount(self) -> None:
        status = self.query_one(StatusBar)
        status.reader = self.sscard.services.reader
        status.host = self.sscard.services.host_label
        self.choose(self.operation.key)
        self.query_one("#counter-ops", OptionList).highlighted = 0
        self.progress.stop("Choose an operation (F2), fill the form, F8 runs it 选择业务后按F8")

    # -- the form -------------------------------------------------------------------------
    ALL_FIELDS: ClassVar[tuple[str, ...]] = (
        "card_no", "certno", "formal", "holder_fault", "certificate_no", "fee_src", "psn_no",
        "psn_name", "emp_name", "batch_size")

    def choose(self, key: str) -> None:
        self.operation = BY_KEY[key]
        self.query_one("#counter-rule", Label).update(
            Text.assemble((self.operation.label, "bold"), "  ", (self.operation.rule, "dim")))
        for name in self.ALL_FIELDS:
            shown = name in self.operation.fields
            self.query_one(f"#{name}").display = shown
            labels = self.query(f"#label-{name}")
            for label in labels:
                label.display = shown
        self.query_one("#counter-result", Static).update("")

    @on(OptionList.OptionHighlighted, "#counter-ops")
    def op_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        if event.option.id and not self.busy:
            self.choose(event.option.id)

    @on(OptionList.OptionSelected, "#counter-ops")
    def op_selected(self, event: OptionList.OptionSelected) -> None:
        if event.option.id and not self.busy:
            self.choose(event.option.id)
            first = next((f for f in self.operation.fields), None)
            if first is not None:
                self.query_one(f"#{first}").focus()

    def value(self, name: str) -> str:
        return self.query_one(f"#{name}", Input).value.strip()

    def action_operations(self) -> None:
        self.query_one("#counter-ops", OptionList).focus()

    def action_clear(self) -> None:
        for name in ("card_no", "certno", "certificate_no", "psn_no", "psn_name", "emp_name"):
            self.query_one(f"#{name}", Input).value = ""
        self.query_one("#counter-result", Static).update("")
        self.progress.stop("")

    def action_read_card(self) -> None:
        """Read the card in the reader and show its balance (fills the card number)."""
        if self.busy:
            return
        self.run_operation(BY_KEY["balance"])

    # -- running ----------------------------------------------------------------------------
    def action_run(self) -> None:
        if self.busy:
            return
        self.run_operation(self.operation)

    def run_operation(self, op: Operation) -> None:
        """Check the form, then connect as the chosen counter and start the operation."""
        services = self.sscard.services
        if services.host is None:
            self.progress.stop("not connected to a host", "error")
            return
        self.busy = True
        self.progress.start(f"{op.label}: connecting as {self.counter_code}")
        self._connect_and_run(op, self.counter_code)

    @property
    def counter_code(self) -> str:
        value = self.query_one("#counter-at", Select).value
        if isinstance(value, str):
            return value
        return self.sscard.services.config.institution_code

    @work(thread=True, group="flow", exit_on_error=False)
    def _connect_and_run(self, op: Operation, code: str) -> None:
        services = self.sscard.services
        host = services.host
        if services.host_at is not None and code != services.config.institution_code:
            try:
                host = services.host_at(code)
            except HostError as exc:
                self.app.call_from_thread(self._not_started, f"cannot act as counter {code}: "
                                          f"{exc.message}")
                return
        self.app.call_from_thread(self._build_and_start, op, host)

    def _not_started(self, message: str) -> None:
        self.busy = False
        self.progress.stop(message, "error")

    def _build_and_start(self, op: Operation, host: HostPort | None) -> None:
        self.busy = False
        services = self.sscard.services
        card, config, clock = services.card, services.config, services.clock
        if host is None:
            self.progress.stop("not connected to a host", "error")
            return
        needs_card = op.key in ("activate", "change_pin", "unlock_pin", "reset_pin", "balance")
        if needs_card and card is None:
            self.progress.stop("no card reader", "error")
            return
        card_no, certno = self.value("card_no"), self.value("certno").upper()
        missing = [FIELD_LABELS[f] for f in op.fields
                   if f in ("card_no", "certno", "psn_no") and not self.value(f)]
        if op.key in ("activate", "unlock_pin", "reset_pin"):
            missing = [m for m in missing if "ID number" not in m]  # asked after the card read
        if missing:
            self.progress.stop("missing: " + "; ".join(missing), "error")
            return
        flow: CounterFlow
        if op.key == "activate":
            flow = ActivateCard(host, card, config, clock=clock)
        elif op.key == "change_pin":
            flow = ChangePin(host, card, config, clock=clock)
        elif op.key == "unlock_pin":
            flow = UnlockPin(host, card, config, clock=clock)
        elif op.key == "reset_pin":
            flow = ResetPin(host, card, config, clock=clock)
        elif op.key == "report_loss":
            flow = ReportLoss(host, card_no, certno,
                              formal=self.query_one("#formal", Checkbox).value,
                              config=config, clock=clock)
        elif op.key == "lift_loss":
            flow = LiftLoss(host, card_no, certno, config=config, clock=clock)
        elif op.key in ("replace", "damaged"):
            if services.issuer is None:
                self.progress.stop("this counter has no card personaliser for new cards",
                                   "error")
                return
            if op.key == "replace":
                reason = "lost"
            elif self.query_one("#holder_fault", Checkbox).value:
                reason = "damaged_by_holder"
            else:
                reason = "damaged_not_holder"
            fee_src = str(self.query_one("#fee_src", Select).value)
            flow = ReplaceCard(host, services.issuer, card_no, certno, reason=reason,
                               fee_src=fee_src, certificate_no=self.value("certificate_no"),
                               config=config, clock=clock)
        elif op.key == "data_change":
            changes = {k: self.value(k) for k in ("psn_name", "emp_name") if self.value(k)}
            flow = ChangeHolderData(host, self.value("psn_no"), certno, changes, config=config,
                                    clock=clock)
        elif op.key == "migrate":
            try:
                size = max(1, int(self.value("batch_size") or "1000"))
            except ValueError:
                self.progress.stop("the batch size is a whole number", "error")
                return
            flow = MigrateOldCards(host, batch_size=size, config=config, clock=clock)
        else:
            flow = BalanceEnquiry(host, card, config, clock=clock)
        self.query_one("#counter-result", Static).update("")
        self.start_flow(flow, f"{op.label}")

    def flow_settled(self) -> None:
        flow = self.flow
        if flow is None:
            return
        result = self.query_one("#counter-result", Static)
        if flow.card_info is not None:
            self.card_number = flow.card_info.card_number
            self.card_ssn = flow.card_info.ssn
            if not self.value("card_no"):
                self.query_one("#card_no", Input).value = flow.card_info.card_number
        if flow.state is K.CHECK_ID:
            typed = self.value("certno")
            if typed:
                self.drive(lambda: flow.provide_id(typed), "checking the ID number")
            else:
                self.progress.stop("type the holder's ID number from their ID card, then F8 "
                                   "输入身份证号", "idle")
                self.query_one("#certno", Input).focus()
            return
        if flow.state is K.PIN:
            self.ask_pins(flow)
            return
        if flow.state is K.DONE:
            result.update(Text(flow.message, style="bold green"))
            self.progress.stop(f"{flow.name}: done 办理成功", "ok")
            if isinstance(flow, ReplaceCard):
                self.hand_out_envelope(flow.take_initial_pin())
        elif flow.finished:
            message = flow.failure.message if flow.failure else flow.message
            result.update(Text(message, style="bold red"))
            self.progress.stop(message, "idle" if flow.state is K.CANCELLED else "error")
            if flow.failure is not None and flow.failure.kind is FailureKind.PIN_LOCKED:
                self.app.push_screen(PinPad(locked=message))
        elif flow.awaiting is Awaiting.CONFIRM:
            self.progress.stop(flow.message, "idle")

    def hand_out_envelope(self, pin: str | None) -> None:
        """A new card delivered activated (CCB, rule A3) comes with its initial PIN in a
        sealed envelope: show it once, for printing, then it is gone from the terminal."""
        if pin:
            text = (f"初始密码 Initial PIN\n\n        {pin}\n\n"
                    "Seal this in the envelope for the holder; change it at the bank "
                    "counter or an ATM. 请密封交持卡人")
            self.app.push_screen(SlipPreview(text, title="PIN envelope 密码信封"))

    # -- PIN pad for the counter ------------------------------------------------------------
    def ask_pins(self, flow: CounterFlow) -> None:
        """Collect the PINs the operation needs, one PIN pad after the other."""
        problem = flow.message if ("wrong PIN" in flow.message or "again" in flow.message) \
            else ""
        if isinstance(flow, ActivateCard | ChangePin):
            titles = ["Old / initial PIN 原密码", "New PIN 新密码", "New PIN again 确认新密码"]
        else:
            titles = ["New PIN 新密码", "New PIN again 确认新密码"]
        pins: list[str] = []

        def ask(index: int) -> None:
            pad = PinPad(title=titles[index], tries_left=flow.pin_tries_left if index == 0
                         else None, problem=problem if index == 0 else "")
            self.app.push_screen(pad, lambda pin: got(index, pin))

        def got(index: int, pin: str | None) -> None:
            current = self.flow
            if current is not flow or flow.state is not K.PIN:
                return
            if pin is None:
                self.drive(flow.cancel, "cancelling")
                return
            pins.append(pin)
            if index + 1 < len(titles):
                ask(index + 1)
                return
            entered = list(pins)
            self.drive(lambda: self._enter(flow, entered), "changing the PIN on the card")

        self.progress.stop("the holder types the PIN 请持卡人输入密码", "idle")
        ask(0)

    @staticmethod
    def _enter(flow: CounterFlow, pins: list[str]) -> None:
        enter: Any = getattr(flow, "enter_pins")  # noqa: B009 - each operation's own signature
        enter(*pins)

    # -- card events --------------------------------------------------------------------------
    def on_card_inserted(self, message: CardInserted) -> None:
        self.progress.stop("card inserted: choose the operation and press F8 已插卡")

    def on_card_removed(self, message: CardRemoved) -> None:
        self.card_number = self.card_ssn = ""
        if not self.busy:
            self.progress.stop("card removed 卡已拔出")

"""The hospital desk: admission with identity verification (U2) and discharge (U3).

Admission drives :class:`terminal.core.admission.Admission`: the card's photo and holder
data are shown for the clerk to compare with the patient, then F8 registers the stay (2401)
or F4 refuses it. Discharge drives :class:`terminal.core.discharge.Discharge` with the stay's
fee list: trial settlement, the payer's choice (personal account, bank account or cash),
the PIN when the card pays, then settlement, discharge and the slip.

Keys: F2 fee search · F3 admission/discharge · F4 reject/remove · F5 payment · F6 read card ·
F7 new · F8 confirm/settle.
"""

from __future__ import annotations

from typing import Any, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.widgets import Footer, Input, Label, OptionList, TabbedContent, TabPane

from terminal.core import slip as slip_text
from terminal.core.admission import Admission, AdmissionData, AdmissionState
from terminal.core.discharge import Discharge, DischargeData, DischargeState
from terminal.core.machine import Awaiting, FailureKind, FlowEvent
from terminal.core.model import Cart, PayChoice, yuan
from terminal.core.ports import CatalogueItem
from terminal.ui.messages import CardInserted, CardRemoved, CartQtyDelta
from terminal.ui.screens.base import FlowScreen, Progress
from terminal.ui.screens.dialogs import ChooseDialog
from terminal.ui.screens.pharmacy import BANK_PIN_TITLE, PAYMENTS
from terminal.ui.widgets.cart import CartView, parse_query
from terminal.ui.widgets.identity import IdentityPanel
from terminal.ui.widgets.pinpad import PinPad
from terminal.ui.widgets.slip import SlipPreview
from terminal.ui.widgets.split import SplitPanel
from terminal.ui.widgets.status import StatusBar

A = AdmissionState
D = DischargeState


class HospitalScreen(FlowScreen):
    """Admission and discharge at a designated hospital."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f2", "search", "Fees"),
        Binding("f3", "switch_tab", "Adm/Dis"),
        Binding("f4", "reject_or_remove", "Reject"),
        Binding("f5", "payment", "Pay by"),
        Binding("f6", "read_card", "Card"),
        Binding("f7", "new", "New"),
        Binding("f8", "confirm", "OK"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.fees = Cart()
        self.pay = PayChoice()
        self.last_mdtrt_id = ""
        self.last_slip = ""

    def compose(self) -> ComposeResult:
        yield StatusBar("Hospital 住院", id="status")
        with TabbedContent(initial="tab-admission", id="hospital-tabs"):
            with TabPane("Admission 入院登记", id="tab-admission"):
                yield IdentityPanel(id="identity")
                with Horizontal(id="admission-form"):
                    yield Label("dept 科室")
                    yield Input("内科", id="dept", compact=True)
                    yield Label("bed 床位")
                    yield Input("", id="bed", compact=True, placeholder="12")
                    yield Label("diagnosis 诊断")
                    yield Input("", id="diag", compact=True, placeholder="肺炎")
            with TabPane("Discharge 出院结算", id="tab-discharge"):
                with Horizontal(id="stay-row"):
                    yield Label("stay 就诊ID")
                    yield Input("", id="stay", compact=True,
                                placeholder="mdtrt_id from the admission")
                with Horizontal(id="discharge-main"):
                    yield CartView(id="fees")
                    yield SplitPanel(id="split")
        yield Progress(id="progress")
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        status = self.query_one(StatusBar)
        status.reader = self.sscard.services.reader
        status.host = self.sscard.services.host_label
        self.query_one("#fees", CartView).border_title = "Inpatient fees 住院费用"
        self.query_one(SplitPanel).payer = self.pay.label
        self.progress.stop("Insert the patient's card for admission (F6 reads it) 请插卡")

    @property
    def tab(self) -> str:
        return self.query_one(TabbedContent).active

    # -- admission ------------------------------------------------------------------------
    def start_admission(self) -> None:
        services = self.sscard.services
        if services.card is None or services.host is None:
            self.progress.stop("not connected to a card reader and a host", "error")
            return
        panel = self.query_one(IdentityPanel)
        panel.identity = None
        panel.note = "reading the card 读卡中…"
        self.start_flow(Admission(services.card, services.host, services.config,
                                  clock=services.clock),
                        "reading the card 读卡")

    def admission_data(self) -> AdmissionData:
        return AdmissionData(dept_name=self.query_one("#dept", Input).value.strip() or "内科",
                             bed=self.query_one("#bed", Input).value.strip(),
                             diag_name=self.query_one("#diag", Input).value.strip())

    # -- discharge ------------------------------------------------------------------------
    def start_discharge(self) -> None:
        services = self.sscard.services
        if services.card is None or services.host is None:
            self.progress.stop("not connected to a card reader and a host", "error")
            return
        stay = self.query_one("#stay", Input).value.strip()
        if not stay:
            self.notify("type the stay's id (mdtrt_id) first 请输入就诊ID", severity="warning")
            self.query_one("#stay", Input).focus()
            return
        if not self.fees:
            self.notify("the fee list is empty 费用为空", severity="warning")
            return
        self.query_one(SplitPanel).split = None
        flow = Discharge(services.card, services.host, DischargeData(stay), list(self.fees.lines),
                         services.config, clock=services.clock)
        self.start_flow(flow, "reading the card 读卡")

    # -- flow events ----------------------------------------------------------------------
    def on_flow_event(self, event: FlowEvent[Any]) -> None:
        super().on_flow_event(event)
        flow = self.flow
        if isinstance(flow, Admission) and event.state is A.IDENTIFY:
            self.query_one(IdentityPanel).identity = flow.identity
            self.query_one(IdentityPanel).note = ""

    def flow_settled(self) -> None:
        flow = self.flow
        if isinstance(flow, Admission):
            self._admission_settled(flow)
        elif isinstance(flow, Discharge):
            self._discharge_settled(flow)

    def _admission_settled(self, flow: Admission) -> None:
        panel = self.query_one(IdentityPanel)
        panel.identity = flow.identity
        if flow.state is A.COMPARE:
            panel.note = flow.message.split(" — ")[1] if " — " in flow.message else ""
            self.progress.stop("Compare the patient with the card, then F8 admit or F4 refuse "
                               "核对身份后按F8登记", "idle")
        elif flow.state is A.DONE and flow.result is not None:
            self.last_mdtrt_id = flow.result.mdtrt_id
            self.query_one("#stay", Input).value = flow.result.mdtrt_id
            panel.note = f"admitted 已登记: {flow.result.mdtrt_id}"
            self.progress.stop(f"{flow.result.name} admitted, stay {flow.result.mdtrt_id} "
                               f"(ipt {flow.result.ipt_no})  入院登记成功", "ok")
        elif flow.state in (A.FAILED, A.REJECTED):
            message = flow.failure.message if flow.failure else flow.message
            panel.note = message if flow.identity is None else panel.note
            kind = "idle" if flow.state is A.REJECTED else "error"
            self.progress.stop(message, kind)
            if flow.failure is not None and flow.failure.kind is FailureKind.PIN_LOCKED:
                self.app.push_screen(PinPad(locked=message))
        else:
            self.progress.stop(flow.message)

    def _discharge_settled(self, flow: Discharge) -> None:
        split_panel = self.query_one(SplitPanel)
        split_panel.split = flow.split or flow.trial
        split_panel.payer = flow.pay.label
        if flow.state is D.CHOOSE:
            self.progress.stop("The patient chooses how to pay the self-pay part 选择支付方式",
                               "idle")
            self.ask_payment_choice()
        elif flow.state in (D.PIN, D.BANK_PIN):
            self.ask_pin(flow)
        elif flow.state is D.DONE and flow.result is not None:
            result = flow.result
            self.last_slip = slip_text.render(result.slip, slip_text.WIDTH_58MM)
            self.progress.stop(
                f"settlement {result.setl_id} done, patient discharged  出院结算成功", "ok")

            def after(choice: str | None) -> None:
                self.fees = Cart()
                self.query_one("#fees", CartView).show_lines([])

            self.app.push_screen(SlipPreview(self.last_slip,
                                             title="Discharge settled 出院结算成功"), after)
        elif flow.finished:
            message = flow.failure.message if flow.failure else flow.message
            self.progress.stop(message, "idle" if flow.state is D.CANCELLED else "error")
            if flow.failure is not None and flow.failure.kind is FailureKind.PIN_LOCKED:
                self.app.push_screen(PinPad(locked=message))
        elif flow.awaiting in (Awaiting.RECOVERY, Awaiting.CARD_BACK, Awaiting.CONFIRM):
            self.progress.stop(flow.message, "error")
            self.offer_recovery(flow)
        else:
            self.progress.stop(flow.message)

    def ask_payment_choice(self) -> None:
        flow = self.flow
        if not isinstance(flow, Discharge):
            return

        def chosen(choice: str | None) -> None:
            current = self.flow
            if not isinstance(current, Discharge) or current.state is not D.CHOOSE:
                return
            if choice is None:
                self.drive(current.cancel, "cancelling")
                return
            self.pay = PayChoice.parse(choice)
            pay = self.pay
            self.drive(lambda: current.choose_payment(pay), "payment chosen")

        t = flow.trial
        title = "Payment 支付方式"
        if t is not None:
            title = (f"self-pay ¥{yuan(t.total - t.fund)} (fund ¥{yuan(t.fund)}): pay with… "
                     "自付部分支付方式")
        self.app.push_screen(ChooseDialog(title, PAYMENTS, current=self.pay.label), chosen)

    def ask_pin(self, flow: Discharge) -> None:
        """The PIN pad for the PIN, or for the bank application's own PIN (BANK_PIN,
        separate-PIN cards: spec/card.md §1)."""
        asked = flow.state
        bank = asked is D.BANK_PIN
        total = flow.trial.total - flow.trial.fund if flow.trial else 0
        if bank and flow.trial is not None:
            total = flow.trial.rest
        problem = flow.message if flow.message.startswith(("wrong PIN", "wrong bank PIN")) else ""
        self.progress.stop("waiting for the bank PIN 等待输入银行密码" if bank
                           else "waiting for the PIN 等待输入密码", "idle")

        def entered(pin: str | None) -> None:
            current = self.flow
            if not isinstance(current, Discharge) or current.state is not asked:
                return
            if pin is None:
                self.drive(current.cancel_pin, "cancelling")
            else:
                self.drive(lambda: current.enter_pin(pin), "checking the PIN 验证密码")

        if bank:
            self.app.push_screen(PinPad(amount=yuan(total), tries_left=flow.pin_tries_left,
                                        problem=problem, title=BANK_PIN_TITLE,
                                        detail="bank PIN 银行密码"), entered)
        else:
            self.app.push_screen(PinPad(amount=yuan(total), tries_left=flow.pin_tries_left,
                                        problem=problem), entered)

    def offer_recovery(self, flow: Discharge) -> None:
        if flow.state is D.CARD_PULLED:
            self.offer_card_back(flow)
            return
        if flow.state is not D.BANK_FAILED:
            return

        def chosen(choice: str | None) -> None:
            current = self.flow
            if not isinstance(current, Discharge) or current.state is not D.BANK_FAILED:
                return
            if choice == "cash":
                self.drive(current.pay_cash_instead, "taking the rest in cash")
            elif choice == "cancel":
                self.drive(current.cancel, "cancelling")

        self.app.push_screen(ChooseDialog(flow.message, [
            ("cash", "take the rest in cash 余额收现金"),
            ("cancel", "stop: nothing was charged 放弃结算"),
        ]), chosen)

    def offer_card_back(self, flow: Discharge) -> None:
        """CARD_PULLED: the settlement stands at the host, its card record is missing: the
        same card again (it is read back when inserted) or keep it without the record."""

        def chosen(choice: str | None) -> None:
            current = self.flow
            if not isinstance(current, Discharge) or current.state is not D.CARD_PULLED:
                return
            if choice == "keep":
                self.drive(current.confirm_without_record, "finishing the settlement")
            elif choice == "retry":
                self.drive(current.card_returned, "reading the card again")

        self.app.push_screen(ChooseDialog(flow.message, [
            ("wait", "insert the card again 重新插卡"),
            ("retry", "the card is back: read it 已插卡，重新读卡"),
            ("keep", "keep the settlement without the card record 不写卡完成"),
        ]), chosen)

    # -- card events ----------------------------------------------------------------------
    def on_card_inserted(self, message: CardInserted) -> None:
        flow = self.flow
        if isinstance(flow, Discharge) and flow.state is D.CARD_PULLED and not self.busy:
            if isinstance(self.app.screen, ChooseDialog):
                self.app.screen.dismiss(None)
            self.drive(flow.card_returned, "reading the card again")
            return
        if self.tab == "tab-admission" and (flow is None or flow.finished):
            self.start_admission()

    def on_card_removed(self, message: CardRemoved) -> None:
        flow = self.flow
        if isinstance(flow, Admission) and flow.state is A.COMPARE and not self.busy:
            self.drive(lambda: flow.reject("the card was removed before the admission"),
                       "card removed")
            self.query_one(IdentityPanel).identity = None

    # -- fees -------------------------------------------------------------------------------
    def action_search(self) -> None:
        self.query_one(TabbedContent).active = "tab-discharge"
        self.query_one("#search", Input).focus()

    @on(Input.Changed, "#search")
    def search_changed(self, event: Input.Changed) -> None:
        query = parse_query(event.value)
        if not query.text:
            self.query_one("#fees", CartView).hide_results()
            return
        self.search(query.text)

    @work(thread=True, exclusive=True, group="search", exit_on_error=False)
    def search(self, text: str) -> None:
        catalogue = self.sscard.services.catalogue
        if catalogue is None:
            return
        items: list[CatalogueItem] = list(catalogue.search(text, limit=6))
        self.app.call_from_thread(self.query_one("#fees", CartView).show_results, items)

    @on(Input.Submitted, "#search")
    def search_submitted(self, event: Input.Submitted) -> None:
        query = parse_query(event.value)
        code = self.query_one("#fees", CartView).highlighted_result or query.text
        if code:
            self.add_fee(code, query.qty)
        event.input.value = ""
        self.query_one("#fees", CartView).hide_results()

    @on(OptionList.OptionSelected, "#results")
    def result_chosen(self, event: OptionList.OptionSelected) -> None:
        search = self.query_one("#search", Input)
        if event.option.id:
            self.add_fee(event.option.id, parse_query(search.value).qty)
        search.value = ""
        self.query_one("#fees", CartView).hide_results()

    @work(thread=True, group="search", exit_on_error=False)
    def add_fee(self, code: str, qty: int) -> None:
        catalogue = self.sscard.services.catalogue
        if catalogue is None:
            return
        try:
            item = catalogue.lookup(code)
        except KeyError:
            self.app.call_from_thread(self.notify, f"item {code} is not in the catalogue",
                                      severity="warning")
            return
        self.app.call_from_thread(self._add_fee_item, item, qty)

    def _add_fee_item(self, item: CatalogueItem, qty: int) -> None:
        self.fees.add(item, qty)
        self._fees_changed()

    def _fees_changed(self) -> None:
        self.query_one("#fees", CartView).show_lines(self.fees.lines)
        split = self.query_one(SplitPanel)
        split.split = None
        split.total_fen = self.fees.total_fen

    def on_cart_qty_delta(self, message: CartQtyDelta) -> None:
        line = next((ln for ln in self.fees.lines if ln.item.code == message.code), None)
        if line is not None:
            self.fees.set_qty(message.code, max(0, line.qty + message.delta))
            self._fees_changed()

    def on_key(self, event: Any) -> None:
        search = self.query_one("#search", Input)
        if not search.has_focus:
            return
        results = self.query_one("#results", OptionList)
        if event.key in ("down", "up") and results.has_class("-open"):
            (results.action_cursor_down if event.key == "down" else results.action_cursor_up)()
            event.stop()

    # -- actions ----------------------------------------------------------------------------
    def action_switch_tab(self) -> None:
        tabs = self.query_one(TabbedContent)
        tabs.active = "tab-discharge" if tabs.active == "tab-admission" else "tab-admission"

    def action_reject_or_remove(self) -> None:
        flow = self.flow
        if self.tab == "tab-admission":
            if isinstance(flow, Admission) and flow.state is A.COMPARE and not self.busy:
                self.drive(flow.reject, "refusing the admission")
            return
        code = self.query_one("#fees", CartView).selected_code
        if code is not None:
            self.fees.remove(code)
            self._fees_changed()

    def action_payment(self) -> None:
        def chosen(choice: str | None) -> None:
            if choice:
                self.pay = PayChoice.parse(choice)
                self.query_one(SplitPanel).payer = self.pay.label

        self.app.push_screen(ChooseDialog("Payment 支付方式", PAYMENTS, current=self.pay.label),
                             chosen)

    def action_read_card(self) -> None:
        if self.busy:
            return
        self.query_one(TabbedContent).active = "tab-admission"
        self.start_admission()

    def action_new(self) -> None:
        if self.busy:
            return
        if self.tab == "tab-admission":
            self.query_one(IdentityPanel).identity = None
            self.query_one(IdentityPanel).note = ""
            self.progress.stop("Insert the patient's card for admission (F6 reads it) 请插卡")
        else:
            self.fees = Cart()
            self._fees_changed()
            self.query_one("#stay", Input).value = ""

    def action_confirm(self) -> None:
        if self.busy:
            return
        flow = self.flow
        if self.tab == "tab-admission":
            if isinstance(flow, Admission) and flow.state is A.COMPARE:
                data = self.admission_data()
                self.drive(lambda: flow.confirm(data), "registering the admission (2401)")
            else:
                self.start_admission()
            return
        self.start_discharge()

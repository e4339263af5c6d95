"""Pharmacy checkout (the default mode): card, cart, split, PIN pad, slip (seed U1, U4, U5).

The screen drives :class:`terminal.core.checkout.Checkout`; every card and host exchange
runs in a worker (:class:`~terminal.ui.screens.base.FlowScreen`).

The split panel is live once the card is identified: every change of the cart or of the
payment asks the host for a trial of the cart as it stands (:meth:`Checkout.preview`, a
2101 that moves nothing), debounced, one at a time, in its own worker; the clerk never
waits for it. A slow or dead host leaves the amounts at "—" with a short note; F8 runs the
trial of the sale itself as before.

Keys: F2 search · F3 quantity · F4 remove line · F5 payment · F6 read card · F7 new sale ·
F8 pay · F9 card in/out · F10 mode.
"""

from __future__ import annotations

import time
from typing import Any, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.timer import Timer
from textual.widgets import Footer, Input, OptionList

from terminal.core import slip as slip_text
from terminal.core.checkout import Checkout, CheckoutState
from terminal.core.machine import Awaiting, FailureKind, FlowEvent, FlowStateError
from terminal.core.model import CartLine, PayChoice, Split, yuan
from terminal.core.ports import CatalogueItem, HostError, HostRefused
from terminal.ui.messages import CardInserted, CardRemoved, CartQtyDelta
from terminal.ui.screens.base import FlowScreen, Progress
from terminal.ui.screens.dialogs import AskDialog, ChooseDialog
from terminal.ui.widgets.card_panel import CardPanel
from terminal.ui.widgets.cart import CartView, parse_query
from terminal.ui.widgets.pinpad import PinPad
from terminal.ui.widgets.slip import SlipPreview
from terminal.ui.widgets.split import SplitPanel
from terminal.ui.widgets.status import StatusBar

C = CheckoutState

PREVIEW_DELAY = 0.3
"""Seconds the cart must stay unchanged before the live split is asked for (debounce)."""
PREVIEW_SLOW = 2.0
"""Seconds after which an unanswered live trial is reported as slow."""
ASKING = "asking the host… 试算中"
BANK_PIN_TITLE = "Enter the bank PIN 请输入银行密码"
"""The PIN pad's title for a separate-PIN card's bank PIN (spec/card.md §1)."""

QuoteKey = tuple[Checkout, tuple[CartLine, ...], PayChoice]
"""What a live trial quotes: the sale, its cart lines and the payment."""

PAYMENTS = [
    ("account", "personal account, rest in cash 个人账户+现金"),
    ("account+bank", "personal account, rest from the bank account 个人账户+银行卡"),
    ("cash", "all in cash 全部现金"),
    ("bank", "all from the bank account 全部银行卡"),
]


class PharmacyScreen(FlowScreen):
    """The checkout a pharmacy clerk uses all day."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f2", "search", "Search"),
        Binding("f3", "quantity", "Qty"),
        Binding("f4", "remove_line", "Del"),
        Binding("f5", "payment", "Pay by"),
        Binding("f6", "read_card", "Card"),
        Binding("f7", "new_sale", "New"),
        Binding("f8", "pay", "PAY"),
    ]

    flow: Checkout | None = None

    def __init__(self) -> None:
        super().__init__()
        self.pay = PayChoice()
        self.carried: list[tuple[str, int]] = []
        """Cart lines kept while the card is out, re-added when it is back."""
        self.last_slip: str = ""
        self.pulled = False
        """The card was pulled before paying and the sale was dropped (nothing charged)."""
        self._quote_key: QuoteKey | None = None
        """The cart the live split shows (or is being asked for)."""
        self._quote: Split | str | None = None
        """Its answer: the host's split, the note saying why there is none, None pending."""
        self._quoting = False
        """A live trial is at the host (at most one at a time)."""
        self._quote_timer: Timer | None = None
        self._slow_timer: Timer | None = None

    def compose(self) -> ComposeResult:
        yield StatusBar("Pharmacy 药店收银", id="status")
        with Horizontal(id="main"):
            with Vertical(id="left"):
                yield CardPanel(id="card")
                yield SplitPanel(id="split")
            with Vertical(id="right"):
                yield CartView(id="cartview")
        yield Progress(id="progress")
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        status = self.query_one(StatusBar)
        status.reader = self.sscard.services.reader
        status.host = self.sscard.services.host_label
        self.query_one(SplitPanel).payer = self.pay.label
        self.progress.stop("Insert a card to start a sale 请插卡")
        self.check_card()

    @work(thread=True, group="probe", exit_on_error=False)
    def check_card(self) -> None:
        card = self.sscard.services.card
        try:
            present = card is not None and card.present()
        except Exception:
            present = False
        if present:
            self.app.call_from_thread(self.new_sale)

    # -- the sale -------------------------------------------------------------------------
    def new_sale(self) -> None:
        services = self.sscard.services
        if services.card is None or services.host is None or services.catalogue is None:
            self.progress.stop("not connected to a card reader and a host", "error")
            return
        self.pulled = False
        panel = self.query_one(CardPanel)
        panel.clear()
        panel.phase = "reading"
        split = self.query_one(SplitPanel)
        split.split = None
        split.total_fen = 0
        self._forget_quote()
        if not self.carried:
            self.query_one(CartView).show_lines([])
        flow = Checkout(services.card, services.host, services.catalogue, services.config,
                        pay=self.pay, clock=services.clock)
        self.start_flow(flow, "reading the card 读卡")

    def on_flow_event(self, event: FlowEvent[Any]) -> None:
        super().on_flow_event(event)
        flow = self.flow
        if flow is None:
            return
        panel = self.query_one(CardPanel)
        if event.state is C.IDENTIFY and flow.card_info is not None:
            info = flow.card_info
            panel.phase = "ready"
            panel.name = info.name
            panel.ssn = info.ssn
            panel.card_number = info.masked_number
            self.progress.what = "asking the host who this is (1101)"
        elif event.state is C.TRIAL:
            self.progress.what = "trial settlement with the host (2101)"
            self.query_one(SplitPanel).pending = "asking the host…"

    def flow_settled(self) -> None:
        flow = self.flow
        if flow is None:
            return
        panel = self.query_one(CardPanel)
        if self.pulled and flow.finished:
            panel.clear()
            self._forget_quote()
            self.query_one(SplitPanel).split = None
            kept = " the cart is kept;" if self.carried else ""
            self.progress.stop(f"card removed before paying: nothing was charged;{kept} insert "
                               "the card again 卡已拔出，请重新插卡", "idle")
            return
        split_panel = self.query_one(SplitPanel)
        split_panel.pending = ""
        if flow.person is not None:
            panel.phase = "ready"
            panel.name = flow.person.name
            panel.ssn = flow.person.certno or panel.ssn
            panel.insutype = flow.person.insutype
            panel.balance_fen = flow.person.balance_fen
            panel.state = flow.person.card_state or "normal"
        self.query_one(CartView).show_lines(flow.cart.lines)
        split_panel.total_fen = flow.cart.total_fen
        split_panel.payer = flow.pay.label
        state = flow.state
        if state is C.CART:
            self.live_split(flow)
        else:
            self._forget_quote()
            split_panel.split = flow.split or (
                flow.trial if state in (C.PIN, C.BANK_PIN) else None)
        if state is C.CART:
            if self.carried:
                carried, self.carried = self.carried, []
                self.drive(lambda: self._readd(carried), "putting the cart back")
                return
            failed = flow.history[-1].data.get("failure") if flow.history else None
            if failed:
                self.progress.stop(flow.message, "error")
            else:
                self.progress.stop("Add items (F2 search), then F8 to pay 添加药品后按F8结算",
                                   "idle")
        elif state in (C.PIN, C.BANK_PIN):
            self.ask_pin()
        elif state is C.DONE:
            self.sale_done()
        elif state in (C.FAILED, C.CANCELLED, C.VOIDED):
            self.sale_failed()
        elif flow.awaiting in (Awaiting.CARD_BACK, Awaiting.RECOVERY, Awaiting.CONFIRM):
            self.progress.stop(flow.message, "error")
            self.offer_recovery()
        else:
            self.progress.stop(flow.message)

    # -- the live split ---------------------------------------------------------------------
    @staticmethod
    def quote_key(flow: Checkout) -> QuoteKey:
        return (flow, flow.cart.lines, flow.pay)

    def _forget_quote(self) -> None:
        for timer in (self._quote_timer, self._slow_timer):
            if timer is not None:
                timer.stop()
        self._quote_timer = self._slow_timer = None
        self._quote_key, self._quote = None, None
        panel = self.query_one(SplitPanel)
        panel.live, panel.note = False, ""

    def live_split(self, flow: Checkout) -> None:
        """Show the host's split of the cart as it stands (CART): the answer already at
        hand, else "—" while a live trial is asked for (debounced)."""
        panel = self.query_one(SplitPanel)
        if flow.person is None or not flow.cart:
            self._forget_quote()
            panel.split = None
            return
        key = self.quote_key(flow)
        if key == self._quote_key and self._quote is not None:
            self._show_quote()
            return
        panel.split, panel.live, panel.note = None, False, ""
        panel.pending = ASKING
        if self._quote_timer is not None:
            self._quote_timer.stop()
        self._quote_timer = self.set_timer(PREVIEW_DELAY, self._ask_quote)

    def _show_quote(self) -> None:
        panel = self.query_one(SplitPanel)
        quote = self._quote
        panel.pending = ""
        if isinstance(quote, Split):
            panel.split, panel.live, panel.note = quote, True, ""
        else:
            panel.split, panel.live, panel.note = None, False, quote or ""

    def _ask_quote(self) -> None:
        """The cart stayed unchanged for :data:`PREVIEW_DELAY`: ask the host (one live trial
        at a time; a cart changed meanwhile is asked for when the answer is in)."""
        self._quote_timer = None
        flow = self.flow
        if flow is None or flow.state is not C.CART or flow.person is None or not flow.cart:
            return
        key = self.quote_key(flow)
        if self._quoting or (key == self._quote_key and self._quote is not None):
            return
        self._quote_key, self._quote, self._quoting = key, None, True
        if self._slow_timer is not None:
            self._slow_timer.stop()
        self._slow_timer = self.set_timer(PREVIEW_SLOW, lambda: self._quote_slow(key))
        self._run_quote(key)

    def _quote_slow(self, key: QuoteKey) -> None:
        self._slow_timer = None
        if self._quoting and key == self._quote_key:
            self.query_one(SplitPanel).pending = "the host is slow: split when it answers"

    @work(thread=True, group="preview", exit_on_error=False)
    def _run_quote(self, key: QuoteKey) -> None:
        flow, lines, pay = key
        answer: Split | str | None
        try:
            answer = flow.preview(pay, lines=lines)
        except FlowStateError:
            answer = None  # the sale moved on (F8, card pulled): nothing to show
        except HostRefused as exc:
            answer = f"no trial: the host refused ({exc.message})"
        except HostError:
            answer = "no trial: the host does not answer (F8 asks again)"
        except Exception as exc:  # a programming error: a note, never a dialog
            answer = f"no trial: {type(exc).__name__}: {exc}"
        self.app.call_from_thread(self._quote_answered, key, answer)

    def _quote_answered(self, key: QuoteKey, answer: Split | str | None) -> None:
        self._quoting = False
        if self._slow_timer is not None:
            self._slow_timer.stop()
            self._slow_timer = None
        flow = self.flow
        if flow is None or flow.state is not C.CART:
            return  # back in the cart, flow_settled asks again
        if key[0] is flow and key == self._quote_key and answer is not None:
            self._quote = answer
        if self.busy:
            return  # a step is running: flow_settled shows or asks when it is done
        if self.quote_key(flow) == self._quote_key and self._quote is not None:
            self._show_quote()
        else:
            self.live_split(flow)  # the cart (or the sale) changed while the host was asked

    def _readd(self, lines: list[tuple[str, int]]) -> None:
        flow = self.flow
        assert flow is not None
        for code, qty in lines:
            flow.add_item(code, qty)

    def sale_failed(self) -> None:
        flow = self.flow
        assert flow is not None
        failure = flow.failure
        message = failure.message if failure else flow.message
        panel = self.query_one(CardPanel)
        if failure is not None and failure.kind is FailureKind.CARD_STATUS and flow.person is None:
            panel.phase = "problem"
            panel.state = "lost" if "lost" in message else panel.state
        if failure is not None and failure.kind in (FailureKind.CARD_STATUS,
                                                    FailureKind.PIN_LOCKED,
                                                    FailureKind.HOST_UNREACHABLE,
                                                    FailureKind.HOST_REFUSED,
                                                    FailureKind.HOST_TIMEOUT,
                                                    FailureKind.CARD_NOT_GENUINE):
            panel.phase = "problem"
            panel.problem = message
        if failure is not None and failure.kind is FailureKind.PIN_LOCKED:
            panel.state = "pin_locked"
            self.app.push_screen(PinPad(locked=message))
        kind = "idle" if failure and failure.kind is FailureKind.CANCELLED else "error"
        self.progress.stop(f"{message}  (F7 new sale)", kind)

    def sale_done(self) -> None:
        flow = self.flow
        assert flow is not None and flow.result is not None
        result = flow.result
        self.last_slip = slip_text.render(result.slip, slip_text.WIDTH_58MM)
        if result.split.balance_after is not None:
            self.query_one(CardPanel).balance_fen = result.split.balance_after
        self.progress.stop(f"sale {result.setl_id} done: total ¥{yuan(result.split.total)}"
                           f"  成功", "ok")

        def after(choice: str | None) -> None:
            if choice == "save":
                path = self.sscard.services.data_dir / "slips"
                path.mkdir(parents=True, exist_ok=True)
                target = path / f"slip-{result.setl_id or int(time.time())}.txt"
                target.write_text(self.last_slip, encoding="utf-8")
                self.notify(f"slip saved to {target}")
            self.query_one(CartView).show_lines([])
            self.query_one(SplitPanel).split = None
            self.query_one(SplitPanel).total_fen = 0
            self.progress.stop("F6 next sale on this card, or insert the next card", "idle")

        self.app.push_screen(SlipPreview(self.last_slip), after)

    # -- PIN ------------------------------------------------------------------------------
    def ask_pin(self) -> None:
        """The PIN pad for the PIN, or for the bank application's own PIN (BANK_PIN,
        separate-PIN cards: spec/card.md §1)."""
        flow = self.flow
        assert flow is not None
        asked = flow.state
        bank = asked is C.BANK_PIN
        total = flow.trial.total if flow.trial else flow.cart.total_fen
        problem = flow.message if flow.message.startswith(("wrong PIN", "wrong bank PIN")) else ""
        self.progress.stop("waiting for the bank PIN 等待输入银行密码" if bank
                           else "waiting for the PIN 等待输入密码", "idle")

        def entered(pin: str | None) -> None:
            current = self.flow
            if current is None or current.state is not asked or self.pulled:
                return
            if pin is None:
                self.drive(current.cancel_pin, "cancelling")
            elif pin == PinPad.CHANGE_PAYMENT:
                self.choose_payment(then_pin=True)
            else:
                self.drive(lambda: current.enter_pin(pin), "checking the PIN 验证密码")

        t = flow.trial
        detail = ""
        if t is not None:
            detail = (f"统筹 ¥{yuan(t.fund)}  账户 ¥{yuan(t.account)}  "
                      f"{'银行卡' if t.bank else '现金'} ¥{yuan(t.rest)}")
        if bank and t is not None:
            total = t.rest
            detail = f"bank PIN 银行密码 · 银行卡 bank ¥{yuan(t.rest)}"
        settled = bool(flow.setl_id)
        title = BANK_PIN_TITLE if bank else "Enter PIN 请输入密码"
        self.app.push_screen(PinPad(amount=yuan(total), tries_left=flow.pin_tries_left,
                                    problem=problem, detail=detail, title=title,
                                    allow_payment_change=not settled and not bank), entered)

    # -- recovery after settlement -------------------------------------------------------
    def offer_recovery(self) -> None:
        flow = self.flow
        assert flow is not None
        choices: list[tuple[str, str]] = []
        if flow.state is C.CARD_PULLED:
            choices.append(("wait", "insert the card again 重新插卡"))
            if flow.can_void:
                choices.append(("void", "void the sale (2601) 撤销交易"))
            choices.append(("keep", "keep the sale without the card record 不写卡完成"))
        if flow.state is C.BANK_FAILED:
            choices.append(("cash", "take the rest in cash 余额收现金"))
            choices.append(("cancel", "cancel the sale: nothing was charged 取消交易"))
        if flow.state is C.REVERSAL_PENDING:
            choices.append(("retry", "retry the reversal 重试冲正"))
        if not choices:
            return

        def chosen(choice: str | None) -> None:
            current = self.flow
            if current is None:
                return
            actions = {"void": (current.void, "voiding the sale (2601)"),
                       "keep": (current.confirm_without_record, "finishing the sale"),
                       "cash": (current.pay_cash_instead, "new trial with the rest in cash"),
                       "cancel": (current.cancel, "cancelling the sale"),
                       "retry": (current.retry_reversal, "retrying the reversal")}
            if choice in actions:
                action, what = actions[choice]
                self.drive(action, what)

        self.app.push_screen(ChooseDialog(flow.message, choices), chosen)

    # -- card events ----------------------------------------------------------------------
    def on_card_inserted(self, message: CardInserted) -> None:
        flow = self.flow
        if flow is not None and flow.state is C.CARD_PULLED:
            self.drive(flow.card_returned, "reading the card again")
            return
        if flow is None or flow.finished:
            self.new_sale()

    def on_card_removed(self, message: CardRemoved) -> None:
        flow = self.flow
        if self.busy:
            return  # the running step sees the pull itself
        if flow is None or flow.finished:
            self.query_one(CardPanel).clear()
            self.progress.stop("Insert a card to start a sale 请插卡")
            return
        if flow.state is C.CART or (flow.state in (C.PIN, C.BANK_PIN) and not flow.setl_id):
            self.carried = [(ln.item.code, ln.qty) for ln in flow.cart.lines]
            self.pulled = True
            if isinstance(self.app.screen, PinPad):
                self.app.screen.dismiss(None)
            self.drive(flow.cancel, "card removed")
            self.query_one(CardPanel).clear()

    # -- cart -------------------------------------------------------------------------------
    def action_search(self) -> None:
        self.query_one("#search", Input).focus()

    @on(Input.Changed, "#search")
    def search_changed(self, event: Input.Changed) -> None:
        query = parse_query(event.value)
        if not query.text:
            self.query_one(CartView).hide_results()
            return
        self.search(query.text)

    @work(thread=True, exclusive=True, group="search", exit_on_error=False)
    def search(self, text: str) -> None:
        catalogue = self.sscard.services.catalogue
        if catalogue is None:
            return
        items: list[CatalogueItem] = list(catalogue.search(text, limit=6))
        self.app.call_from_thread(self.query_one(CartView).show_results, items)

    def on_key(self, event: Any) -> None:
        search = self.query_one("#search", Input)
        if not search.has_focus:
            return
        results = self.query_one("#results", OptionList)
        if event.key == "down" and results.has_class("-open"):
            results.action_cursor_down()
            event.stop()
        elif event.key == "up" and results.has_class("-open"):
            results.action_cursor_up()
            event.stop()

    @on(Input.Submitted, "#search")
    def search_submitted(self, event: Input.Submitted) -> None:
        query = parse_query(event.value)
        code = self.query_one(CartView).highlighted_result or query.text
        if code:
            self.add(code, query.qty)
        event.input.value = ""
        self.query_one(CartView).hide_results()

    @on(OptionList.OptionSelected, "#results")
    def result_chosen(self, event: OptionList.OptionSelected) -> None:
        search = self.query_one("#search", Input)
        query = parse_query(search.value)
        if event.option.id:
            self.add(event.option.id, query.qty)
        search.value = ""
        self.query_one(CartView).hide_results()
        search.focus()

    def add(self, code: str, qty: int) -> None:
        flow = self.flow
        if flow is None or flow.state is not C.CART or self.busy:
            self.notify("insert the card first (the sale starts with the card) 请先插卡",
                        severity="warning")
            return
        self.drive(lambda: self._add_checked(flow, code, qty), "adding")

    def _add_checked(self, flow: Checkout, code: str, qty: int) -> None:
        try:
            flow.add_item(code, qty)
        except ValueError as exc:
            self.app.call_from_thread(self.notify, str(exc), severity="warning")

    def on_cart_qty_delta(self, message: CartQtyDelta) -> None:
        flow = self.flow
        if flow is None or flow.state is not C.CART or self.busy:
            return
        line = next((ln for ln in flow.cart.lines if ln.item.code == message.code), None)
        if line is not None:
            qty = max(0, line.qty + message.delta)
            self.drive(lambda: flow.set_qty(message.code, qty), "changing the quantity")

    def action_quantity(self) -> None:
        flow = self.flow
        code = self.query_one(CartView).selected_code
        if flow is None or flow.state is not C.CART or code is None:
            return

        def chosen(value: str | None) -> None:
            if value is None:
                return
            try:
                qty = int(value)
            except ValueError:
                self.notify("the quantity is a whole number", severity="warning")
                return
            if qty < 0:
                self.notify("the quantity is a whole number", severity="warning")
                return
            self.drive(lambda: flow.set_qty(code, qty), "changing the quantity")

        line = next((ln for ln in flow.cart.lines if ln.item.code == code), None)
        self.app.push_screen(AskDialog(f"Quantity 数量: {line.item.name if line else code}",
                                       str(line.qty if line else 1)), chosen)

    def action_remove_line(self) -> None:
        flow = self.flow
        code = self.query_one(CartView).selected_code
        if flow is None or flow.state is not C.CART or code is None or self.busy:
            return
        self.drive(lambda: flow.set_qty(code, 0), "removing")

    def action_payment(self) -> None:
        self.choose_payment()

    def choose_payment(self, *, then_pin: bool = False) -> None:
        """Ask how the holder pays; in the PIN step the core runs the trial again (2101), so
        the split shown is always the host's for that choice."""

        def chosen(choice: str | None) -> None:
            flow = self.flow
            if choice is None:
                if then_pin and flow is not None and flow.state is C.PIN:
                    self.ask_pin()
                return
            self.pay = PayChoice.parse(choice)
            self.query_one(SplitPanel).payer = self.pay.label
            if flow is not None and flow.state in (C.CART, C.PIN) and not self.busy:
                pay = self.pay
                self.drive(lambda: flow.set_payment(pay), "changing the payment (new trial)")

        self.app.push_screen(ChooseDialog("Payment 支付方式", PAYMENTS, current=self.pay.label),
                             chosen)

    def action_pay(self) -> None:
        flow = self.flow
        if flow is None or flow.state is not C.CART or self.busy:
            self.notify("nothing to pay yet: insert the card and add items", severity="warning")
            return
        if not flow.cart:
            self.notify("the cart is empty 购物车为空", severity="warning")
            return
        self.drive(flow.confirm_cart, "trial settlement 预结算")

    def action_read_card(self) -> None:
        if self.busy:
            return
        if self.flow is not None and not self.flow.finished and self.flow.state in (C.CART,):
            flow = self.flow
            self.carried = [(ln.item.code, ln.qty) for ln in flow.cart.lines]
            self.drive(flow.cancel, "reading the card again")
            self.call_after_refresh(self.new_sale)
            return
        self.new_sale()

    def action_new_sale(self) -> None:
        if self.busy:
            return
        flow = self.flow
        self.carried = []
        if flow is not None and flow.state in (C.CART, C.PIN, C.BANK_PIN):
            self.drive(flow.cancel, "cancelling the sale")
            return
        self.new_sale()

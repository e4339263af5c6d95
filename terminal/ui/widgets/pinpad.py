"""The on-screen PIN pad: masked entry, tries left, and the locked message (seed rule C3).

The PIN only lives in this modal until it is handed to the flow; it is never logged, never
shown, and the field is cleared on every outcome.
"""

from __future__ import annotations

from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Grid, Vertical
from textual.events import Key
from textual.reactive import reactive
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Static

PIN_LENGTHS = (6,)


class PadKey(Button, can_focus=False):
    """A PIN pad key: clicked with the mouse; the keyboard types digits directly."""


class PinPad(ModalScreen[str | None]):
    """Ask the holder for the PIN; dismisses with the digits (OK/Enter) or None (Esc).

    ``tries_left`` and ``problem`` (e.g. "wrong PIN") are shown above the pad; with
    ``locked`` set the pad shows only the locked message and a Close button.
    """

    CHANGE_PAYMENT = "change-payment"
    """Returned instead of a PIN when the clerk asks to change the payment first (F5)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel"),
        Binding("f5", "change_payment", "Pay by"),
        Binding("enter", "ok", "OK", show=False),
        Binding("backspace", "backspace", "⌫", show=False),
    ]

    DEFAULT_CSS = """
    PinPad { align: center middle; }
    PinPad > Vertical {
        width: 44; height: auto; border: thick $primary; background: $surface; padding: 0 1;
    }
    PinPad #pin-title { text-style: bold; width: 100%; content-align: center middle; }
    PinPad #pin-dots { width: 100%; content-align: center middle; text-style: bold;
                       background: $panel; height: 1; margin: 1 0 0 0; }
    PinPad #pin-info { width: 100%; height: auto; color: $text-muted; }
    PinPad #pin-detail { width: 100%; height: auto; color: $success; }
    PinPad #pin-problem { width: 100%; height: auto; color: $error; text-style: bold; }
    PinPad Grid { grid-size: 3 4; grid-gutter: 0 1; height: 12; margin: 1 0 0 0; }
    PinPad Grid Button { width: 100%; min-width: 4; height: 3; }
    PinPad #pin-locked-close { width: 100%; margin: 1 0 0 0; }
    """

    digits: reactive[str] = reactive("")

    def __init__(self, *, amount: str = "", tries_left: int | None = None, problem: str = "",
                 locked: str = "", length: int = 6, title: str = "Enter PIN 请输入密码",
                 detail: str = "", allow_payment_change: bool = False) -> None:
        super().__init__()
        self.amount = amount
        self.detail = detail
        self.allow_payment_change = allow_payment_change
        self.tries_left = tries_left
        self.problem = problem
        self.locked = locked
        self.length = length
        self.title_text = title

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self.title_text if not self.locked else "PIN locked 密码已锁定",
                        id="pin-title")
            if self.locked:
                yield Static(self.locked, id="pin-problem")
                yield Button("Close 关闭", id="pin-locked-close", variant="primary")
                return
            info = []
            if self.amount:
                info.append(f"amount 金额 ¥{self.amount}")
            if self.tries_left is not None:
                info.append(f"tries left 剩余次数 {self.tries_left}")
            yield Static("\n".join(info), id="pin-info")
            if self.detail:
                yield Static(self.detail, id="pin-detail")
            yield Static(self.problem, id="pin-problem")
            yield Static("", id="pin-dots")
            with Grid():
                for key in "123456789":
                    yield PadKey(key, id=f"pin-{key}")
                yield PadKey("⌫", id="pin-back", variant="warning")
                yield PadKey("0", id="pin-0")
                yield PadKey("OK 确认", id="pin-ok", variant="success")

    def on_mount(self) -> None:
        self._show()

    def watch_digits(self) -> None:
        self._show()

    def _show(self) -> None:
        if self.locked:
            return
        dots = "● " * len(self.digits) + "○ " * max(0, self.length - len(self.digits))
        self.query_one("#pin-dots", Static).update(dots.strip())

    def on_key(self, event: Key) -> None:
        key = event.character
        if key is not None and key.isdigit() and not self.locked:
            self.press_digit(key)
            event.stop()

    def press_digit(self, digit: str) -> None:
        if len(self.digits) < self.length:
            self.digits += digit

    @on(Button.Pressed)
    def pressed(self, event: Button.Pressed) -> None:
        event.stop()
        key = event.button.id or ""
        if key == "pin-locked-close":
            self.dismiss(None)
        elif key == "pin-back":
            self.action_backspace()
        elif key == "pin-ok":
            self.action_ok()
        elif key.startswith("pin-"):
            self.press_digit(key[4:])

    def action_backspace(self) -> None:
        self.digits = self.digits[:-1]

    def action_ok(self) -> None:
        if self.locked:
            self.dismiss(None)
            return
        if len(self.digits) != self.length:
            self.query_one("#pin-problem", Static).update(
                f"the PIN has {self.length} digits 密码为{self.length}位")
            return
        pin, self.digits = self.digits, ""
        self.dismiss(pin)

    def action_cancel(self) -> None:
        self.digits = ""
        self.dismiss(None)

    def action_change_payment(self) -> None:
        if self.allow_payment_change and not self.locked:
            self.digits = ""
            self.dismiss(self.CHANGE_PAYMENT)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "change_payment":
            return self.allow_payment_change and not self.locked
        return True

"""The card panel: no card / reading / the holder, masked ID, card state, insurance, balance."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from terminal.core.model import yuan

INSURANCE_TYPES = {
    "310": "职工医保 employee",
    "390": "居民医保 resident",
    "391": "城镇居民 urban",
}

CARD_STATES = {
    "active": "normal 正常",
    "activated": "normal 正常",
    "normal": "normal 正常",
    "issued": "not activated 未激活",
    "not_activated": "not activated 未激活",
    "lost": "reported lost 已挂失",
    "loss_reported": "reported lost 已挂失",
    "replaced": "replaced 已换卡",
    "cancelled": "cancelled 已注销",
    "blocked": "blocked 已锁定",
    "pin_locked": "PIN locked 密码锁定",
}


def mask_id(ssn: str) -> str:
    """Resident ID with the birth date and sequence hidden: ``370802********123X``."""
    if len(ssn) < 10:
        return ssn
    return ssn[:6] + "*" * (len(ssn) - 10) + ssn[-4:]


class CardPanel(Widget):
    """Shows what is known of the card in the reader.

    ``phase`` is ``empty`` (no card), ``reading``, ``ready`` or ``problem``; the holder
    fields are filled by the screen from the core's card basics and person lookup.
    """

    DEFAULT_CSS = """
    CardPanel { height: auto; min-height: 8; border: round $primary; padding: 0 1; }
    CardPanel.-problem { border: round $error; }
    """

    phase: reactive[str] = reactive("empty", layout=True)
    name: reactive[str] = reactive("", layout=True)
    ssn: reactive[str] = reactive("", layout=True)
    card_number: reactive[str] = reactive("", layout=True)
    state: reactive[str] = reactive("", layout=True)
    insutype: reactive[str] = reactive("", layout=True)
    balance_fen: reactive[int | None] = reactive(None, layout=True)
    problem: reactive[str] = reactive("", layout=True)

    def on_mount(self) -> None:
        self.border_title = "Card 社保卡"

    def clear(self) -> None:
        self.phase = "empty"
        self.name = self.ssn = self.card_number = self.state = self.insutype = ""
        self.problem = ""
        self.balance_fen = None

    def watch_phase(self, phase: str) -> None:
        self.set_class(phase == "problem", "-problem")

    def render(self) -> Table | Text:
        if self.phase == "empty":
            return Text("No card 请插卡\n\nInsert the social security card (F9 on the virtual "
                        "reader).", style="italic")
        if self.phase == "reading":
            return Text("Reading the card… 读卡中", style="bold")
        grid = Table.grid(padding=(0, 1))
        grid.add_column(style="dim", no_wrap=True)
        grid.add_column(overflow="fold")
        if self.name:
            grid.add_row("name 姓名", Text(self.name, style="bold"))
        if self.ssn:
            grid.add_row("ID 证号", mask_id(self.ssn))
        if self.card_number:
            grid.add_row("card 卡号", self.card_number)
        if self.state:
            grid.add_row("state 状态", CARD_STATES.get(self.state, self.state))
        if self.insutype:
            grid.add_row("type 险种", INSURANCE_TYPES.get(self.insutype, self.insutype))
        if self.balance_fen is not None:
            grid.add_row("balance 余额", Text(f"¥{yuan(self.balance_fen)}", style="bold green"))
        if self.problem:
            grid.add_row("", Text(self.problem, style="bold red"))
        return grid

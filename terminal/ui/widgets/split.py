"""The live split: pooled fund, personal account, bank account / cash (spec/host.md §3)."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from terminal.core.model import Split, yuan


class SplitPanel(Widget):
    """Who pays what for the current cart; ``pending`` while the host is being asked,
    ``note`` when it could not say (a slow or dead host: the amounts show "—"), ``live``
    while the split is the host's trial of the cart as it stands (before F8)."""

    DEFAULT_CSS = """
    SplitPanel { height: auto; min-height: 9; border: round $secondary; padding: 0 1; }
    """

    split: reactive[Split | None] = reactive(None, layout=True)
    total_fen: reactive[int] = reactive(0)
    pending: reactive[str] = reactive("", layout=True)
    payer: reactive[str] = reactive("account")
    note: reactive[str] = reactive("", layout=True)
    live: reactive[bool] = reactive(False)

    def on_mount(self) -> None:
        self.border_title = "Payment 支付"

    def watch_live(self, live: bool) -> None:
        self.border_subtitle = "live trial 实时试算" if live else ""

    def render(self) -> RenderableType:
        grid = Table.grid(padding=(0, 1), expand=True)
        grid.add_column(style="dim", no_wrap=True)
        grid.add_column(justify="right", no_wrap=True)
        split = self.split
        total = split.total if split else self.total_fen
        grid.add_row("total 合计", Text(f"¥{yuan(total)}", style="bold"))
        if split is None:
            grid.add_row("pooled fund 统筹", "—")
            grid.add_row("account 个人账户", "—")
            grid.add_row("bank 银行卡", "—")
            grid.add_row("cash 现金", "—")
        else:
            grid.add_row("pooled fund 统筹", f"¥{yuan(split.fund)}")
            grid.add_row("account 个人账户", Text(f"¥{yuan(split.account)}", style="green"))
            grid.add_row("bank 银行卡", f"¥{yuan(split.bank)}")
            grid.add_row("cash 现金", Text(f"¥{yuan(split.cash)}", style="bold"))
            if split.balance_after is not None:
                grid.add_row("balance after 余额", f"¥{yuan(split.balance_after)}")
        grid.add_row("payer 支付方式", self.payer)
        if self.pending:
            grid.add_row("", Text(self.pending, style="italic yellow"))
        if self.note:  # below the amounts, wrapped: the host's reason may be long
            return Group(grid, Text(self.note, style="italic red"))
        return grid

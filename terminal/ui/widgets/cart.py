"""The cart: catalogue search (code, name or pinyin initials), the lines, quantities.

Typing ``3*amx`` searches for ``amx`` and adds three of the chosen item: the quantity prefix
habit of shop tills. The search itself is the catalogue's (``terminal.core``); this module
only shows results and lines.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.coordinate import Coordinate
from textual.widget import Widget
from textual.widgets import DataTable, Input, OptionList
from textual.widgets.data_table import ColumnKey
from textual.widgets.option_list import Option

from terminal.core.model import CartLine, yuan
from terminal.core.ports import CatalogueItem
from terminal.ui.messages import CartQtyDelta

_QTY = re.compile(r"^\s*(\d{1,3})\s*[*xX×]\s*(.*)$")


@dataclass(frozen=True)
class SearchQuery:
    """What the clerk typed: an optional quantity and the search text."""

    qty: int
    text: str


def parse_query(typed: str) -> SearchQuery:
    """``"3*amx"`` → (3, "amx"); ``"amx"`` → (1, "amx").

    >>> parse_query("2x 阿莫"), parse_query("tbkl")
    (SearchQuery(qty=2, text='阿莫'), SearchQuery(qty=1, text='tbkl'))
    """
    m = _QTY.match(typed)
    if m and int(m.group(1)) > 0:
        return SearchQuery(int(m.group(1)), m.group(2).strip())
    return SearchQuery(1, typed.strip())


def item_class(item: CatalogueItem) -> str:
    """The item's catalogue class 甲/乙/丙 (丙 = outside the insurance catalogue)."""
    return str(getattr(item, "cls", "") or getattr(item, "klass", "") or "")


def item_eligible(item: CatalogueItem) -> bool:
    """Whether the insurance pays for it at all (classes 甲 and 乙)."""
    eligible = getattr(item, "eligible", None)
    if eligible is not None:
        return bool(eligible)
    return item_class(item) in ("甲", "乙")


def _option_label(item: CatalogueItem) -> Text:
    text = Text(no_wrap=True, overflow="ellipsis")
    text.append(item.name, style="bold")
    if item.spec:
        text.append(f" {item.spec}", style="dim")
    cls = item_class(item)
    if cls:
        text.append(f" {cls}", style="cyan" if item_eligible(item) else "red")
    text.append(f" ¥{yuan(item.price_fen)}", style="green")
    text.append(f"  {item.code}", style="dim")
    return text


class CartView(Widget):
    """Search box, search results and the cart table."""

    DEFAULT_CSS = """
    CartView { layout: vertical; }
    CartView #search { margin: 0 0 1 0; }
    CartView #results { height: auto; max-height: 7; display: none; border: none; }
    CartView #results.-open { display: block; }
    CartView #cart { height: 1fr; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("plus,equals_sign", "qty(1)", "+1", show=False),
        Binding("minus", "qty(-1)", "−1", show=False),
    ]

    def compose(self) -> ComposeResult:
        yield Input(placeholder="F2 search: code / name / pinyin (amxl); 3*amxl adds 3",
                    id="search", compact=True)
        yield OptionList(id="results")
        table: DataTable[object] = DataTable(id="cart", cursor_type="row", zebra_stripes=True)
        yield table

    def on_mount(self) -> None:
        table = self.query_one("#cart", DataTable)
        # compact: the cart fits the 42 columns left at 80×24 next to the card panel
        table.add_column("品名 item", key="name", width=10)
        table.add_column("类", key="cls", width=2)
        table.add_column("数量", key="qty", width=4)
        table.add_column("单价", key="price", width=5)
        table.add_column("金额", key="amount", width=6)
        table.add_column("医保", key="ok", width=4)
        self.border_title = "Cart 购物车"

    def on_resize(self) -> None:
        """Give the item name whatever the other columns leave (10 cells at 80×24)."""
        table = self.query_one("#cart", DataTable)
        others = sum(c.width for c in table.columns.values() if c.key.value != "name")
        padding = 2 * table.cell_padding * len(table.columns)
        name = table.columns.get(ColumnKey("name"))
        if name is not None:
            name.width = max(10, self.size.width - others - padding - 2)
            table.refresh(layout=True)

    # results --------------------------------------------------------------------------
    def show_results(self, items: Sequence[CatalogueItem]) -> None:
        results = self.query_one("#results", OptionList)
        results.clear_options()
        for item in items:
            results.add_option(Option(_option_label(item), id=item.code))
        results.set_class(bool(items), "-open")
        if items:
            results.highlighted = 0

    def hide_results(self) -> None:
        self.query_one("#results", OptionList).set_class(False, "-open")

    @property
    def highlighted_result(self) -> str | None:
        results = self.query_one("#results", OptionList)
        if not results.has_class("-open") or results.highlighted is None:
            return None
        return results.get_option_at_index(results.highlighted).id

    # lines ------------------------------------------------------------------------------
    def show_lines(self, lines: Sequence[CartLine]) -> None:
        table = self.query_one("#cart", DataTable)
        keep = table.cursor_row
        table.clear()
        for line in lines:
            item = line.item
            eligible = item_eligible(item)
            table.add_row(
                Text(item.name, overflow="ellipsis", no_wrap=True),
                Text(item_class(item) or "-", style="cyan" if eligible else "red"),
                Text(str(line.qty), justify="right"),
                Text(yuan(item.price_fen), justify="right"),
                Text(yuan(line.amount_fen), justify="right", style="bold"),
                Text("✓" if eligible else "✗自费", style="green" if eligible else "red"),
                key=item.code,
            )
        if lines:
            table.move_cursor(row=min(max(keep, 0), len(lines) - 1))

    @property
    def selected_code(self) -> str | None:
        table = self.query_one("#cart", DataTable)
        if table.row_count == 0:
            return None
        row_key, _ = table.coordinate_to_cell_key(Coordinate(table.cursor_row, 0))
        return None if row_key.value is None else str(row_key.value)

    def action_qty(self, delta: int) -> None:
        code = self.selected_code
        if code is not None:
            self.post_message(CartQtyDelta(code, delta))

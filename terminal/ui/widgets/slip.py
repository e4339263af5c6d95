"""The slip as a printable preview: the text the core renders, on a paper-like panel."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Footer, Label, Static


class SlipPreview(ModalScreen[str | None]):
    """Shows ``text`` (the slip) as printed; dismisses with ``"new"`` or ``"save"`` or None."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,enter,f7", "new_sale", "Done"),
        Binding("f8", "save", "Save slip"),
    ]

    DEFAULT_CSS = """
    SlipPreview { align: center middle; }
    SlipPreview > Vertical { width: auto; max-width: 100%; height: auto; max-height: 100%;
                             background: $surface; border: thick $success; }
    SlipPreview #slip-title { width: 100%; content-align: center middle; text-style: bold;
                              color: $success; }
    SlipPreview VerticalScroll { width: auto; height: auto; max-height: 100%; }
    SlipPreview #slip { width: auto; padding: 0 2; background: #fdfdf8; color: #111111; }
    """

    def __init__(self, text: str, *, title: str = "Sale complete 交易成功") -> None:
        super().__init__()
        self.text = text
        self.title_text = title

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self.title_text, id="slip-title")
            with VerticalScroll():
                yield Static(self.text, id="slip", markup=False)
        yield Footer()

    def action_new_sale(self) -> None:
        self.dismiss("new")

    def action_save(self) -> None:
        self.dismiss("save")

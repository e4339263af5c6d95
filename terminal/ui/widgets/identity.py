"""The identity check (seed rule U2): the photo from the card next to the holder's data."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.reactive import reactive
from textual.widget import Widget
from textual.widgets import Static

from terminal.core.ports import HolderIdentity
from terminal.ui.widgets.photo import PhotoView

ETHNICITIES = {"01": "汉族 Han", "02": "蒙古族 Mongol", "03": "回族 Hui", "04": "藏族 Tibetan",
               "05": "维吾尔族 Uyghur", "06": "苗族 Miao", "08": "壮族 Zhuang",
               "10": "朝鲜族 Korean", "11": "满族 Manchu", "99": "其他 other"}
"""Codes of EF06 tag 0B (GB 3304) most often met; others are shown as the code."""


def _identity_table(identity: HolderIdentity | None, note: str) -> Table | Text:
    if identity is None:
        return Text(note or "Insert the patient's card 请插卡", style="italic")
    grid = Table.grid(padding=(0, 1))
    grid.add_column(style="dim", no_wrap=True)
    grid.add_column(overflow="fold")
    grid.add_row("name 姓名", Text(identity.name, style="bold"))
    grid.add_row("sex 性别", identity.sex.label)
    grid.add_row("ID 身份证号", Text(identity.ssn, style="bold"))
    birth = identity.birth_date.strftime("%Y-%m-%d") if identity.birth_date else "-"
    grid.add_row("born 出生日期", birth)
    if identity.ethnicity:
        grid.add_row("ethnicity 民族", ETHNICITIES.get(identity.ethnicity, identity.ethnicity))
    if note:
        grid.add_row("", Text(note, style="bold yellow"))
    return grid


class IdentityPanel(Widget):
    """Photo on the left, name / sex / ID number / birth date on the right."""

    DEFAULT_CSS = """
    IdentityPanel { layout: horizontal; height: 14; border: round $primary; }
    IdentityPanel PhotoView { width: 20; height: 12; margin: 0 1; }
    IdentityPanel #identity-data { width: 1fr; }
    """

    identity: reactive[HolderIdentity | None] = reactive(None)
    note: reactive[str] = reactive("")

    def compose(self) -> ComposeResult:
        yield PhotoView(id="photo")
        yield Static(id="identity-data")

    def on_mount(self) -> None:
        self.border_title = "Identity 身份核验"
        self._refresh_view()

    def watch_identity(self) -> None:
        self._refresh_view()

    def watch_note(self) -> None:
        self._refresh_view()

    def _refresh_view(self) -> None:
        if not self.is_mounted:
            return
        self.query_one(PhotoView).photo = self.identity.photo if self.identity else b""
        self.query_one("#identity-data", Static).update(_identity_table(self.identity,
                                                                        self.note))

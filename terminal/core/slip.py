"""The printed slip: plain text, width-aware for 58 mm (32 columns) and 80 mm (48 columns).

Column widths follow Unicode East Asian Width (UAX #11): wide (W) and fullwidth (F)
characters take two columns on a receipt printer, combining marks none, everything else one.
The slip shows what seed rule U5 asks (the personal account balance after the sale) and the
split of spec/host.md §3.
"""

from __future__ import annotations

import unicodedata

from terminal.core.model import SlipData, yuan

WIDTH_58MM = 32
WIDTH_80MM = 48
MIN_WIDTH = 24


def char_width(ch: str) -> int:
    """Columns taken by one character (UAX #11)."""
    if unicodedata.combining(ch) or unicodedata.category(ch) in ("Mn", "Me", "Cf"):
        return 0
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def display_width(text: str) -> int:
    """Columns taken by ``text``.

    >>> display_width("abc"), display_width("张三"), display_width("A张")
    (3, 4, 3)
    """
    return sum(char_width(c) for c in text)


def wrap(text: str, width: int) -> list[str]:
    """Cut ``text`` into lines of at most ``width`` columns (never splits a wide char)."""
    lines: list[str] = []
    current = ""
    used = 0
    for ch in text:
        w = char_width(ch)
        if used + w > width:
            lines.append(current)
            current, used = "", 0
        current += ch
        used += w
    if current or not lines:
        lines.append(current)
    return lines


def pad(text: str, width: int, align: str = "<") -> str:
    """Pad ``text`` with spaces to ``width`` columns (``<`` left, ``>`` right, ``^`` center)."""
    gap = max(0, width - display_width(text))
    if align == ">":
        return " " * gap + text
    if align == "^":
        return " " * (gap // 2) + text + " " * (gap - gap // 2)
    return text + " " * gap


def left_right(left: str, right: str, width: int) -> list[str]:
    """``left`` and ``right`` on one line if they fit, else ``left`` wrapped then ``right``
    right-aligned on its own line."""
    if display_width(left) + 1 + display_width(right) <= width:
        return [left + " " * (width - display_width(left) - display_width(right)) + right]
    return [*wrap(left, width), *(pad(r, width, ">") for r in wrap(right, width))]


def render(slip: SlipData, width: int = WIDTH_58MM) -> str:
    """The slip as text lines of at most ``width`` columns, ending with a newline."""
    if width < MIN_WIDTH:
        raise ValueError(f"a slip needs at least {MIN_WIDTH} columns, got {width}")
    rule = "-" * width
    out: list[str] = []
    for part in (slip.institution, slip.title):
        out += [pad(line, width, "^").rstrip() for line in wrap(part, width)]
    out.append(rule)
    wide = width >= WIDTH_80MM
    for label_zh, label_en, value in (
        ("终端号", "Terminal", slip.terminal or "-"),
        ("时间", "Time", slip.when.strftime("%Y-%m-%d %H:%M:%S")),
        ("卡号", "Card", slip.card_number_masked),
        ("姓名", "Name", slip.holder_name),
    ):
        label = f"{label_zh} {label_en}" if wide else label_zh
        out += left_right(label, value, width)
    out.append(rule)
    for line in slip.lines:
        out += wrap(line.name, width)
        unit = yuan(line.amount_fen // line.qty) if line.qty else ""
        out += left_right(f"  {line.qty} x {unit}", yuan(line.amount_fen), width)
    out.append(rule)
    s = slip.split
    rows = [
        ("合计", "Total", s.total),
        ("统筹基金", "Pooled fund", s.fund),
        ("个人账户", "Account", s.account),
        ("银行账户", "Bank", s.bank),
        ("现金", "Cash", s.cash),
    ]
    for zh, en, amount in rows:
        out += left_right(f"{zh} {en}" if wide else zh, yuan(amount), width)
    if s.balance_after is not None:
        out += left_right("账户余额 Balance" if wide else "账户余额", yuan(s.balance_after), width)
    out.append(rule)
    out += left_right("结算号 Settlement" if wide else "结算号", slip.settlement_id, width)
    for note in slip.notes:
        out += wrap(note, width)
    out.append(pad("谢谢 Thank you", width, "^").rstrip())
    return "\n".join(line.rstrip() for line in out) + "\n"

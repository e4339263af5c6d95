"""Widgets on their own: the photo renderer, the progress line of a slow host, the PIN pad's
masking, the card panel's ID masking, the cart's quantity prefix."""

from __future__ import annotations

import io
from typing import Any

import pytest
from PIL import Image
from textual.app import App, ComposeResult

from terminal.ui.screens import base
from terminal.ui.screens.base import Progress
from terminal.ui.widgets.card_panel import mask_id
from terminal.ui.widgets.cart import parse_query
from terminal.ui.widgets.photo import PhotoView, render_half_blocks
from terminal.ui.widgets.pinpad import PinPad


def jpeg(width: int, height: int, colour: tuple[int, int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(out, "JPEG")
    return out.getvalue()


def test_half_blocks_carry_two_pixels_per_cell() -> None:
    text = render_half_blocks(jpeg(40, 80, (200, 10, 10)), 20, 12)
    assert text is not None
    lines = text.plain.split("\n")
    assert set(text.plain) <= {"▀", "\n"}
    assert len(lines) <= 12 and max(len(ln) for ln in lines) <= 20
    # a 1:2 portrait keeps its shape: 2 pixel rows per cell, so as many cell rows as columns
    assert len(lines) == pytest.approx(max(len(ln) for ln in lines), abs=1)
    style = text.spans[0].style
    assert "#c" in str(style) or "#d" in str(style)  # red-ish fg/bg from the JPEG


@pytest.mark.parametrize("data", [b"", b"\xff\xd8 not really a jpeg", b"BM\x00\x00"])
def test_a_photo_that_does_not_decode_is_not_drawn(data: bytes) -> None:
    assert render_half_blocks(data, 20, 12) is None


class One(App[None]):
    def __init__(self, widget: Any) -> None:
        super().__init__()
        self.widget = widget

    def compose(self) -> ComposeResult:
        yield self.widget


async def test_photo_view_says_why_there_is_no_picture() -> None:
    app = One(PhotoView(b"\xff\xd8broken"))
    async with app.run_test(size=(40, 14)):
        assert "photo unreadable" in str(app.widget.render())
        app.widget.photo = b""
        assert "no photo" in str(app.widget.render())


async def test_progress_says_when_the_host_is_slow(monkeypatch: pytest.MonkeyPatch) -> None:
    app = One(Progress())
    async with app.run_test(size=(80, 5)):
        progress = app.widget
        now = 1000.0
        monkeypatch.setattr(base.time, "monotonic", lambda: now)
        progress.start("settling with the host (2102)")
        assert "settling with the host (2102)… 0s" in str(progress.render())
        assert "slow" not in str(progress.render())
        now += 4.2
        shown = str(progress.render())
        assert "4s" in shown and "the host is slow; still waiting" in shown
        progress.stop("the host is unreachable", "error")
        assert str(progress.render()) == "the host is unreachable"
        assert progress.has_class("-error")


async def test_pin_pad_masks_and_limits_the_digits() -> None:
    results: list[str | None] = []

    class PadApp(App[None]):
        def on_mount(self) -> None:
            self.push_screen(PinPad(amount="12.50", tries_left=2), results.append)

    app = PadApp()
    async with app.run_test(size=(80, 30)) as pilot:
        for digit in "1234567":
            await pilot.press(digit)
        pad = app.screen
        assert isinstance(pad, PinPad) and pad.digits == "123456"
        shown = str(pad.query_one("#pin-dots").render())
        assert "123" not in shown and shown.count("●") == 6
        await pilot.press("backspace")
        await pilot.press("enter")  # five digits: refused, the pad stays
        assert isinstance(app.screen, PinPad)
        assert "6 digits" in str(app.screen.query_one("#pin-problem").render())
        await pilot.press("9", "enter")
    assert results == ["123459"]


def test_the_id_number_is_masked_on_the_card_panel() -> None:
    assert mask_id("370802198001011235") == "370802********1235"


@pytest.mark.parametrize(("typed", "qty", "text"), [
    ("3*amxl", 3, "amxl"), ("2x 阿莫", 2, "阿莫"), ("12×tbkl", 12, "tbkl"), ("amxl", 1, "amxl"),
    ("0*amxl", 1, "0*amxl"),
])
def test_quantity_prefix(typed: str, qty: int, text: str) -> None:
    query = parse_query(typed)
    assert (query.qty, query.text) == (qty, text)

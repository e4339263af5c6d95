"""The holder's photo from the card (EF08, spec/card.md §3), drawn with half-block cells.

Each terminal cell shows two pixels: the upper half block ``▀`` in the top pixel's colour
over a background of the bottom pixel's colour, so a 20×12-cell area shows a 20×24 image.
Pillow decodes the JPEG or BMP; a photo that does not decode shows a clear placeholder.
"""

from __future__ import annotations

import io

from rich.style import Style
from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

try:  # Pillow is a dependency; the guard keeps the widget usable if a build lacks it.
    from PIL import Image, UnidentifiedImageError
except ImportError:  # pragma: no cover - exercised only without Pillow
    Image = None  # type: ignore[assignment]
    UnidentifiedImageError = OSError  # type: ignore[assignment,misc]


def render_half_blocks(photo: bytes, width: int, height: int) -> Text | None:
    """Render ``photo`` into at most ``width`` × ``height`` cells; None if it cannot."""
    if Image is None or not photo or width < 1 or height < 1:
        return None
    try:
        with Image.open(io.BytesIO(photo)) as img:
            rgb = img.convert("RGB")
    except (UnidentifiedImageError, OSError, ValueError):
        return None
    src_w, src_h = rgb.size
    if src_w == 0 or src_h == 0:
        return None
    # Cells are about twice as tall as wide, and each holds two pixels: pixel aspect ~1:1.
    scale = min(width / src_w, (height * 2) / src_h)
    cols = max(1, int(src_w * scale))
    rows = max(2, int(src_h * scale) // 2 * 2)
    small = rgb.resize((cols, rows), Image.Resampling.LANCZOS)
    pixels = small.load()
    assert pixels is not None
    text = Text(no_wrap=True, overflow="crop")
    for y in range(0, rows, 2):
        for x in range(cols):
            top = pixels[x, y]
            bottom = pixels[x, y + 1]
            text.append("▀", Style(color=_hex(top), bgcolor=_hex(bottom)))
        if y + 2 < rows:
            text.append("\n")
    return text


def _hex(pixel: object) -> str:
    if not isinstance(pixel, tuple) or len(pixel) < 3:
        return "#000000"
    return "#{:02x}{:02x}{:02x}".format(*(int(v) for v in pixel[:3]))


class PhotoView(Widget):
    """Shows the photo bytes it is given (``photo``), scaled to the widget's size."""

    DEFAULT_CSS = """
    PhotoView {
        width: 20;
        height: 12;
        content-align: center middle;
        color: $text-muted;
    }
    """

    photo: reactive[bytes] = reactive(b"", layout=False)

    def __init__(self, photo: bytes = b"", *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.photo = photo

    def render(self) -> Text:
        if not self.photo:
            return Text("no photo\n无照片", justify="center")
        drawn = render_half_blocks(self.photo, self.size.width, self.size.height)
        if drawn is None:
            return Text("photo unreadable\n照片无法显示", justify="center")
        return drawn

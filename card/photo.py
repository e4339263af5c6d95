"""Holder photos for SSSE EF08 (spec/card.md §3: transparent, 0x1000 bytes, JPEG or BMP).

Each holder gets a small, deterministic JPEG portrait (a plain background and a head-and-
shoulders silhouette in colours derived from the holder's ID number) that fits the 4096-byte
file. Real JPEG: any viewer and Pillow decode it.
"""

from __future__ import annotations

import hashlib
import io

from PIL import Image, ImageDraw

EF08_SIZE = 0x1000
WIDTH, HEIGHT = 78, 96


def make_photo(seed: str, limit: int = EF08_SIZE) -> bytes:
    """A JPEG portrait for ``seed`` (e.g. the ID number), at most ``limit`` bytes."""
    h = hashlib.sha256(seed.encode("utf-8")).digest()
    background = (200 + h[0] % 56, 200 + h[1] % 56, 230 + h[2] % 26)
    skin = (200 + h[3] % 40, 160 + h[4] % 40, 130 + h[5] % 40)
    clothes = (h[6] % 120, h[7] % 120, h[8] % 160)
    hair = (h[9] % 60, h[10] % 50, h[11] % 40)
    img = Image.new("RGB", (WIDTH, HEIGHT), background)
    d = ImageDraw.Draw(img)
    d.ellipse((6, 66, 72, 130), fill=clothes)
    d.rectangle((33, 56, 45, 72), fill=skin)
    d.ellipse((21, 18, 57, 62), fill=skin)
    d.chord((19, 12, 59, 48), 180, 360, fill=hair)
    for quality in (70, 55, 40, 25, 10):
        buf = io.BytesIO()
        img.save(buf, format="JPEG", quality=quality, optimize=True)
        data = buf.getvalue()
        if len(data) <= limit:
            return data
    raise ValueError("photo does not fit the EF08 file")


def photo_from_file(data: bytes) -> bytes:
    """The JPEG bytes stored in EF08 (the file is padded with 00 after the EOI marker)."""
    end = data.rfind(b"\xff\xd9")
    return data[: end + 2] if data.startswith(b"\xff\xd8") and end > 0 else data.rstrip(b"\x00")

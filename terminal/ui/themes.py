"""The terminal's two themes: a dark one for the workbench habit, a light one for the shop.

Colours follow the counter's needs: green for money accepted, amber for attention, red for
refusals; both keep enough contrast for a bright shop floor.
"""

from __future__ import annotations

from textual.theme import Theme

DARK = Theme(
    name="sscard-dark",
    primary="#2E9E6A",
    secondary="#3B82C4",
    accent="#E0A526",
    warning="#E0A526",
    error="#E5484D",
    success="#3DBE7A",
    foreground="#E6EAE8",
    background="#111715",
    surface="#18201D",
    panel="#223029",
    dark=True,
)

LIGHT = Theme(
    name="sscard-light",
    primary="#1F7A50",
    secondary="#2563A8",
    accent="#B7791F",
    warning="#B7791F",
    error="#C53030",
    success="#2F855A",
    foreground="#1A202C",
    background="#F7FAF8",
    surface="#FFFFFF",
    panel="#E3EDE7",
    dark=False,
)

THEMES = {"dark": DARK, "light": LIGHT}

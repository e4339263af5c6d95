"""The Textual terminal UI (``sscard terminal``).

Four modes, one screen each, all driving the transaction core (:mod:`terminal.core`) in
worker threads so the screen never waits on the card or the host:

- pharmacy checkout (:mod:`terminal.ui.screens.pharmacy`, the default) — card panel, cart
  with catalogue search by code, name or pinyin initials, the split, the PIN pad, the slip;
- hospital desk (:mod:`terminal.ui.screens.hospital`) — admission with the card's photo
  and holder data for the identity check, discharge settlement with the payer's choice;
- service counter (:mod:`terminal.ui.screens.counter`) — activation, PIN change / unlock /
  reset, loss report, replacement, damaged card, data change, old card migration;
- workbench (:mod:`terminal.ui.screens.workbench`) — readers, APDU console with decoded
  answers, the card's file tree, the live trace, trace record and replay
  (:mod:`terminal.core.workbench`).

Keys shown in each footer; everywhere: F9 inserts/removes a fixture card in the in-process
virtual reader, F10 switches mode, Ctrl+T switches the light/dark theme, Ctrl+Q quits.
:class:`terminal.ui.app.SscardApp` takes a :class:`terminal.ui.app.TerminalServices` (the
core's ports, the reader monitor, the card drawer); ``sscard terminal``
(:mod:`terminal.cli.cmd_terminal`) builds it.
"""

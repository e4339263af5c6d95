"""Fault injection for testing terminals against a misbehaving card.

A :class:`FaultPlan` is attached to a :class:`card.cos.VirtualCard` (``card.faults``):

* ``power_cut_at(step)``: cut power at a checkpoint. ``step`` is either a checkpoint name
  (``"pin.decremented"``, ``"key.decremented"``, ``"commit.write"``; see :data:`CHECKPOINTS`)
  or an integer, the index of the checkpoint hit counted from the moment the plan was armed
  (0 = the first).
  The card raises :class:`card.errors.PowerCut` from ``transmit``; what it had committed stays.
* ``pull_at(command_index, step=None)``: the card is pulled out during the command with that
  index (0 = the next command). Without ``step`` the command completes inside the card
  and its answer is lost; with ``step`` it is pulled at that checkpoint. ``transmit`` raises
  :class:`card.errors.CardRemoved`; the card answers nothing until ``card.insert()``.
* ``delay(seconds)``: a slow card, sleeping before every answer.
* ``force_sw(ins, sw, times=None)``: commands with that INS are not executed and answer
  ``sw`` (``times`` times, or always).

Checkpoints are counted in :attr:`FaultPlan.hits` so a test can enumerate every point of a
command and cut power at each in turn.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from card.errors import CardRemoved, PowerCut

#: Named checkpoints the card passes (in order, within one command).
CHECKPOINTS = (
    "command.received",
    "pin.before_decrement",
    "commit.before",
    "commit.write",
    "commit.after",
    "pin.decremented",
    "pin.compared",
    "pin.restored",
    "key.before_decrement",
    "key.decremented",
    "key.compared",
    "key.restored",
    "command.done",
)


@dataclass
class FaultPlan:
    """What should go wrong, and when. Empty by default: a well-behaved card."""

    cut_step: int | str | None = None
    pull_command: int | None = None
    pull_step: str | None = None
    delay_seconds: float = 0.0
    forced: dict[int, tuple[int, int | None]] = field(default_factory=dict)
    commands: int = 0
    hits: list[str] = field(default_factory=list)
    _in_pulled_command: bool = False

    # -- arming ----------------------------------------------------------------------------
    def power_cut_at(self, step: int | str) -> FaultPlan:
        """Cut power at the named checkpoint, or at checkpoint number ``step`` from now."""
        self.cut_step = step if isinstance(step, str) else len(self.hits) + step
        return self

    def pull_at(self, command_index: int, step: str | None = None) -> FaultPlan:
        """Pull the card during command ``command_index`` (counted from now)."""
        self.pull_command = self.commands + command_index
        self.pull_step = step
        return self

    def delay(self, seconds: float) -> FaultPlan:
        """Sleep ``seconds`` before every answer (a slow card)."""
        if seconds < 0:
            raise ValueError("delay must be >= 0")
        self.delay_seconds = seconds
        return self

    def force_sw(self, ins: int, sw: int, times: int | None = None) -> FaultPlan:
        """Answer ``sw`` to every command with INS ``ins`` (``times`` times or for ever)."""
        if not 0 <= ins <= 0xFF or not 0 <= sw <= 0xFFFF:
            raise ValueError("ins is one byte, sw two")
        self.forced[ins] = (sw, times)
        return self

    def clear(self) -> None:
        """Disarm every fault (counters are kept)."""
        self.cut_step = None
        self.pull_command = None
        self.pull_step = None
        self.delay_seconds = 0.0
        self.forced.clear()

    # -- called by the card ----------------------------------------------------------------
    def begin_command(self, ins: int | None) -> int | None:
        """Count a command, sleep if slow; return a forced status word, if any."""
        index = self.commands
        self.commands += 1
        self._in_pulled_command = self.pull_command == index
        if self.delay_seconds:
            time.sleep(self.delay_seconds)
        if ins is not None and ins in self.forced:
            sw, times = self.forced[ins]
            if times is not None:
                if times <= 1:
                    del self.forced[ins]
                else:
                    self.forced[ins] = (sw, times - 1)
            return sw
        return None

    def checkpoint(self, name: str) -> None:
        """Record a checkpoint hit; raise the armed physical event if this is its moment."""
        index = len(self.hits)
        self.hits.append(name)
        if self.cut_step is not None and (self.cut_step == name or self.cut_step == index):
            self.cut_step = None
            raise PowerCut(f"power cut at {name} (checkpoint {index})")
        if self._in_pulled_command and self.pull_step == name:
            self._pulled()

    def end_command(self) -> None:
        """After the card has finished: the answer is lost if the card is pulled now."""
        if self._in_pulled_command:
            self._pulled()

    def _pulled(self) -> None:
        self._in_pulled_command = False
        self.pull_command = None
        self.pull_step = None
        raise CardRemoved("card pulled out during the command")

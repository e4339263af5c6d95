"""The state-machine base and the shape of every flow's table (what the UI relies on)."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any, ClassVar

import pytest

from terminal.core.admission import Admission
from terminal.core.checkout import CancelSale, Checkout
from terminal.core.counter import (
    ActivateCard,
    BalanceEnquiry,
    ChangeHolderData,
    ChangePin,
    LiftLoss,
    MigrateOldCards,
    ReplaceCard,
    ReportLoss,
    ResetPin,
    UnlockPin,
)
from terminal.core.discharge import Discharge
from terminal.core.machine import Awaiting, Flow, FlowEvent, FlowStateError

FLOWS: list[type[Flow[Any]]] = [
    Checkout, CancelSale, Admission, Discharge, ActivateCard, BalanceEnquiry, ChangeHolderData,
    ChangePin, LiftLoss, MigrateOldCards, ReplaceCard, ReportLoss, ResetPin, UnlockPin]


@pytest.mark.parametrize("flow", FLOWS, ids=lambda f: f.__name__)
def test_every_state_is_automatic_waiting_or_terminal(flow: type[Flow[Any]]) -> None:
    states = {s for key in flow.TRANSITIONS for s in (key, *flow.TRANSITIONS[key])}
    for state in states:
        if state in flow.TERMINAL:
            assert state not in flow.TRANSITIONS, f"{state} is terminal but has exits"
            continue
        assert flow.TRANSITIONS.get(state), f"{state} has no way out"
        if state not in flow.AWAITING:
            assert hasattr(flow, f"_do_{state.name.lower()}"), f"{state} has no step"
    assert flow.TERMINAL, "a flow ends somewhere"
    assert all(isinstance(a, Awaiting) for a in flow.AWAITING.values())


class Light(enum.Enum):
    RED = "red"
    GREEN = "green"
    OFF = "off"


class Lamp(Flow[Light]):
    name = "lamp"
    TRANSITIONS: ClassVar[Mapping[Any, frozenset[Any]]] = {
        Light.RED: frozenset({Light.GREEN}), Light.GREEN: frozenset({Light.OFF})}
    AWAITING: ClassVar[Mapping[Any, Awaiting]] = {Light.GREEN: Awaiting.CONFIRM}
    TERMINAL = frozenset({Light.OFF})

    def __init__(self) -> None:
        super().__init__(Light.RED)

    def _do_red(self) -> None:
        self._go(Light.GREEN, "go", secret_free=True)

    def switch_off(self) -> None:
        self._require(Light.GREEN)
        self._go(Light.OFF, "off")


def test_events_awaiting_and_unsubscribe() -> None:
    lamp = Lamp()
    seen: list[FlowEvent[Light]] = []
    unsubscribe = lamp.subscribe(seen.append)
    assert lamp.run_until_input() is Light.GREEN and lamp.awaiting is Awaiting.CONFIRM
    assert (seen[0].previous, seen[0].state, seen[0].message) == (Light.RED, Light.GREEN, "go")
    assert seen[0].data == {"secret_free": True}
    with pytest.raises(FlowStateError, match="waits for confirm"):
        lamp.step()
    unsubscribe()
    lamp.switch_off()
    assert lamp.finished and len(seen) == 1 and len(lamp.history) == 2
    with pytest.raises(FlowStateError, match="already finished"):
        lamp.step()
    with pytest.raises(FlowStateError, match="needs state GREEN"):
        lamp.switch_off()


def test_a_transition_outside_the_table_is_refused() -> None:
    lamp = Lamp()
    with pytest.raises(FlowStateError, match="RED → OFF not allowed"):
        lamp._go(Light.OFF)

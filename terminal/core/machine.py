"""The state-machine base every counter flow is built on (the step API of ``terminal.core``).

A flow has an ``Enum`` of states and a table of allowed transitions. Two kinds of state:

- *automatic* states do one piece of I/O (card or host) when :meth:`Flow.step` is called;
- *waiting* states need an input from the clerk or the holder (a PIN, a choice, the card
  back); :attr:`Flow.awaiting` names it, and the flow's input methods (``enter_pin``…)
  supply it. :meth:`Flow.step` in a waiting state raises :class:`FlowStateError`.

Every transition is announced to the observers as a :class:`FlowEvent`; a failure ends in a
terminal state with :attr:`Flow.failure` saying what happened and what to do. No method
ever lets a card or host exception escape: they become transitions.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Generic, TypeVar

log = logging.getLogger("terminal.core")


class Awaiting(enum.StrEnum):
    """What a waiting state needs before the flow can go on."""

    CART = "cart"
    """Items for the cart (``add_item``…), then ``confirm_cart``."""
    PIN = "pin"
    """The holder's PIN (``enter_pin``), or ``cancel_pin`` / ``pin_timeout``."""
    CARD_BACK = "card_back"
    """The card was pulled mid-flow: ``card_returned`` (or the state's alternatives)."""
    RECOVERY = "recovery"
    """The bank part failed: ``pay_cash_instead`` or ``cancel_sale``."""
    CONFIRM = "confirm"
    """The clerk confirms what is shown (identity check, fee details…)."""
    DATA = "data"
    """Some data typed by the clerk (ID number, new holder data…)."""


class FailureKind(enum.StrEnum):
    """Why a flow stopped (stable identifiers for programs and ``--json``)."""

    CARD_REMOVED = "card_removed"
    CARD_NOT_GENUINE = "card_not_genuine"
    CARD_ERROR = "card_error"
    WRONG_CARD = "wrong_card"
    CARD_STATUS = "card_status"
    PIN_LOCKED = "pin_locked"
    PIN_CANCELLED = "pin_cancelled"
    PIN_TIMEOUT = "pin_timeout"
    HOST_REFUSED = "host_refused"
    HOST_TIMEOUT = "host_timeout"
    HOST_UNREACHABLE = "host_unreachable"
    BANK_REFUSED = "bank_refused"
    CANCELLED = "cancelled"
    VOIDED = "voided"
    BAD_INPUT = "bad_input"


@dataclass(frozen=True)
class Failure:
    """What went wrong and what to do, in one line for the clerk; ``charged`` says whether
    any money moved at the host (it never does when a flow fails)."""

    kind: FailureKind
    message: str
    driver_code: int | None = None
    charged: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "message": self.message,
            "driver_code": self.driver_code,
            "charged": self.charged,
        }


S = TypeVar("S", bound=enum.Enum)


@dataclass(frozen=True)
class FlowEvent(Generic[S]):
    """One transition: ``previous`` → ``state``, with a message for the screen and data
    (never a PIN)."""

    flow: str
    previous: S | None
    state: S
    message: str = ""
    data: Mapping[str, Any] = field(default_factory=dict)
    at: datetime = field(default_factory=lambda: datetime.now().astimezone())


class FlowStateError(RuntimeError):
    """A method was called in a state where it makes no sense (a programming error)."""


Observer = Callable[[FlowEvent[Any]], None]


class Flow(Generic[S]):
    """Base of the counter flows: the state, the transition table and the observers."""

    name: ClassVar[str] = "flow"
    TRANSITIONS: ClassVar[Mapping[Any, frozenset[Any]]] = {}
    AWAITING: ClassVar[Mapping[Any, Awaiting]] = {}
    TERMINAL: ClassVar[frozenset[Any]] = frozenset()

    def __init__(self, initial: S) -> None:
        self._state: S = initial
        self._observers: list[Observer] = []
        self.history: list[FlowEvent[S]] = []
        self.failure: Failure | None = None
        self.message: str = ""

    # ----------------------------------------------------------------- observing
    @property
    def state(self) -> S:
        return self._state

    @property
    def awaiting(self) -> Awaiting | None:
        """The input the current state waits for, or None (automatic or finished)."""
        return self.AWAITING.get(self._state)

    @property
    def finished(self) -> bool:
        return self._state in self.TERMINAL

    def subscribe(self, observer: Observer) -> Callable[[], None]:
        """Call ``observer`` on every transition; returns a function that unsubscribes."""
        self._observers.append(observer)

        def unsubscribe() -> None:
            if observer in self._observers:
                self._observers.remove(observer)

        return unsubscribe

    # ----------------------------------------------------------------- driving
    def step(self) -> S:
        """Run the automatic action of the current state and return the new state."""
        if self.finished:
            raise FlowStateError(f"{self.name}: already finished ({self._state.name})")
        if self.awaiting is not None:
            raise FlowStateError(
                f"{self.name}: {self._state.name} waits for {self.awaiting.value}"
            )
        action = getattr(self, f"_do_{self._state.name.lower()}", None)
        if action is None:
            raise FlowStateError(f"{self.name}: no action for {self._state.name}")
        action()
        return self._state

    def run_until_input(self) -> S:
        """Step until the flow waits for an input or finishes; returns that state."""
        while not self.finished and self.awaiting is None:
            self.step()
        return self._state

    # ----------------------------------------------------------------- for subclasses
    def _go(self, new: S, message: str = "", **data: Any) -> None:
        allowed = self.TRANSITIONS.get(self._state, frozenset())
        if new not in allowed:
            raise FlowStateError(f"{self.name}: {self._state.name} → {new.name} not allowed")
        previous = self._state
        self._state = new
        self.message = message
        event: FlowEvent[S] = FlowEvent(self.name, previous, new, message, dict(data))
        self.history.append(event)
        log.debug("%s: %s -> %s %s", self.name, previous.name, new.name, message)
        for obs in list(self._observers):
            obs(event)

    def _fail(self, state: S, failure: Failure) -> None:
        self.failure = failure
        self._go(state, failure.message, failure=failure.kind.value)

    def _require(self, *states: S) -> None:
        if self._state not in states:
            names = ", ".join(s.name for s in states)
            raise FlowStateError(f"{self.name}: needs state {names}, is {self._state.name}")

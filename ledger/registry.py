"""The table of transaction codes: each infno's input model, handler and properties.

Handlers live in :mod:`ledger.settle` (settlement, inpatient, reversal),
:mod:`ledger.lifecycle` (card lifecycle and counter operations) and
:mod:`ledger.queries` (lookups, reconciliation, cumulative totals); they register here with
:func:`op`. A handler runs inside one database transaction and returns the ``output``
object; raising a :class:`~ledger.errors.HostError` rolls everything back.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from ledger.store.base import Tx

if TYPE_CHECKING:
    from ledger.service import HostService


@dataclass
class Ctx:
    """What a handler knows about the request besides its input."""

    service: HostService
    infno: str
    msgid: str
    fixmedins_code: str
    mdtrtarea_admvs: str
    opter: str
    now: datetime
    inst: dict[str, Any]
    paasid: str = "inproc"
    opter_type: str = "1"
    ts: str = field(init=False)
    """``now`` as the envelope writes times: ``yyyy-MM-dd HH:mm:ss``."""
    day: str = field(init=False)
    """The business day of ``now``: ``yyyy-MM-dd``."""
    iso: str = field(init=False)
    """``now`` in ISO 8601 with its offset (stored timestamps)."""

    def __post_init__(self) -> None:
        n = self.now
        self.day = f"{n.year:04d}-{n.month:02d}-{n.day:02d}"
        self.ts = f"{self.day} {n.hour:02d}:{n.minute:02d}:{n.second:02d}"
        self.iso = n.isoformat()


Handler = Callable[[Ctx, Tx, Any], dict[str, Any]]


@dataclass(frozen=True)
class Op:
    infno: str
    name: str
    model: type[BaseModel]
    fn: Handler
    writes: bool
    reversible: bool


OPS: dict[str, Op] = {}


def op(infno: str, name: str, model: type[BaseModel], *, writes: bool = True,
       reversible: bool = False) -> Callable[[Handler], Handler]:
    """Register ``fn`` as the handler of ``infno``."""
    def deco(fn: Handler) -> Handler:
        OPS[infno] = Op(infno, name, model, fn, writes, reversible)
        return fn
    return deco

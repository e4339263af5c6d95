"""Pieces shared by the flows: failure messages, the person lookup (1101), host inputs.

Messages say what happened and what to do (DESIGN.md); the PIN-lock message states seed
rule C3 (reset at a bank counter with the ID card, free of charge).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from terminal.core.machine import Failure, FailureKind
from terminal.core.model import fen
from terminal.core.ports import (
    CardBlocked,
    CardError,
    CardInfo,
    CardNotGenuine,
    CardRemovedError,
    HostError,
    HostPort,
    HostRefused,
    HostTimeout,
    HostUnreachable,
    NoPsam,
    PinLocked,
)

Clock = Callable[[], datetime]


def now() -> datetime:
    """The terminal's clock: local, timezone-aware, whole seconds."""
    return datetime.now().astimezone().replace(microsecond=0)


PIN_LOCKED_MESSAGE = (
    "PIN locked after too many wrong tries: the holder must have it reset at a bank counter "
    "with their own ID card (free of charge)"
)


def card_failure(exc: CardError, *, charged: bool = False, doing: str = "") -> Failure:
    """Turn a card error into the failure shown to the clerk."""
    where = f" while {doing}" if doing else ""
    nothing = "" if charged else "; nothing was charged"
    if isinstance(exc, CardRemovedError):
        return Failure(
            FailureKind.CARD_REMOVED,
            f"the card was removed{where}{nothing}: insert the card and start again",
            exc.driver_code, charged)
    if isinstance(exc, PinLocked):
        return Failure(FailureKind.PIN_LOCKED, PIN_LOCKED_MESSAGE, exc.driver_code, charged)
    if isinstance(exc, NoPsam):
        return Failure(
            FailureKind.CARD_ERROR,
            "no PSAM in the reader: the card cannot be authenticated; insert the PSAM",
            exc.driver_code, charged)
    if isinstance(exc, CardBlocked):
        return Failure(
            FailureKind.CARD_STATUS,
            f"the card is blocked ({exc.message}){nothing}: the holder must go to the issuing "
            "bank's counter", exc.driver_code, charged)
    if isinstance(exc, CardNotGenuine):
        return Failure(
            FailureKind.CARD_NOT_GENUINE,
            f"the card failed authentication (not genuine){nothing}: keep the card and call "
            "the social security card office",
            exc.driver_code, charged)
    return Failure(
        FailureKind.CARD_ERROR, f"card error{where}: {exc.message}{nothing}",
        exc.driver_code, charged)


def host_failure(exc: HostError, *, doing: str = "", charged: bool = False) -> Failure:
    """Turn a host error into the failure shown to the clerk."""
    where = f" {doing}" if doing else ""
    if isinstance(exc, HostRefused):
        return Failure(FailureKind.HOST_REFUSED, f"the host refused{where}: {exc.message}",
                       None, charged)
    if isinstance(exc, HostTimeout):
        return Failure(
            FailureKind.HOST_TIMEOUT,
            f"the host did not answer{where} in time; the request was reversed, nothing was "
            "charged: try again", None, charged)
    if isinstance(exc, HostUnreachable):
        return Failure(
            FailureKind.HOST_UNREACHABLE,
            f"the host is unreachable{where} ({exc.message}); nothing was charged: check the "
            "network and try again", None, charged)
    return Failure(FailureKind.HOST_REFUSED, f"host error{where}: {exc.message}", None, charged)


# --------------------------------------------------------------------------- person (1101)

BLOCKING_CARD_STATES = {
    "lost": "the card has been reported lost",
    "loss_temp": "the card has been reported lost (temporary report)",
    "loss_formal": "the card has been reported lost",
    "loss_reported": "the card has been reported lost",
    "replaced": "the card was replaced by a new card",
    "cancelled": "the card has been cancelled",
    "blocked": "the card is blocked",
    "issued": "the card has not been activated yet",
    "not_activated": "the card has not been activated yet",
}
"""Card states (spec/host.md §5) that stop a flow at the person lookup, with the reason."""

CARD_REFUSALS = frozenset({"card_lost", "card_state", "card_mismatch"})
"""Host refusal codes of a 1101 that mean the card itself may not be used."""

CARD_STATE_ADVICE = {
    "issued": "the holder must activate it at the issuing bank's counter",
    "not_activated": "the holder must activate it at the issuing bank's counter",
    "replaced": "use the new card",
}


@dataclass(frozen=True)
class Person:
    """The insured person as the host knows them (1101 ``baseinfo`` + ``insuinfo``)."""

    psn_no: str
    certno: str
    name: str
    gend: str
    brdy: str
    insutype: str
    insuplc_admdvs: str
    balance_fen: int | None
    emp_name: str = ""
    card_state: str = ""
    raw: Mapping[str, Any] | None = None


class CardStatusError(Exception):
    """The host knows the card in a state that forbids the flow (lost, replaced…)."""

    def __init__(self, state: str, message: str) -> None:
        super().__init__(message)
        self.state = state
        self.message = message


def lookup_person(host: HostPort, card: CardInfo) -> Person:
    """1101 by card number (cert type 03, card_sn = card identification code).

    Raises :class:`CardStatusError` for a lost, replaced, blocked or inactive card; host
    errors pass through.
    """
    try:
        reply = host.call("1101", {"data": {
            "mdtrt_cert_type": "03",
            "mdtrt_cert_no": card.card_number,
            "card_sn": card.card_id_code,
            "psn_cert_type": "01",
            "certno": card.ssn,
            "psn_name": card.name,
        }})
    except HostRefused as exc:
        if exc.code in CARD_REFUSALS:
            raise CardStatusError(exc.code, exc.message) from None
        raise
    out = reply.output
    base = out.get("baseinfo") or {}
    insu_list = out.get("insuinfo") or []
    insu = insu_list[0] if insu_list else {}
    cardinfo = out.get("cardinfo") or {}
    state = str(cardinfo.get("card_stas") or cardinfo.get("state") or out.get("card_stas") or "")
    if state in BLOCKING_CARD_STATES:
        reason = BLOCKING_CARD_STATES[state]
        advice = CARD_STATE_ADVICE.get(state, "the holder must go to the issuing bank's counter")
        raise CardStatusError(state, f"{reason}: {advice}")
    balc = insu.get("balc")
    return Person(
        psn_no=str(base.get("psn_no", "")),
        certno=str(base.get("certno", card.ssn)),
        name=str(base.get("psn_name", card.name)),
        gend=str(base.get("gend", "")),
        brdy=str(base.get("brdy", "")),
        insutype=str(insu.get("insutype", "")),
        insuplc_admdvs=str(insu.get("insuplc_admdvs", "")),
        balance_fen=None if balc in (None, "") else fen(balc),
        emp_name=str(insu.get("emp_name", "")),
        card_state=state,
        raw=dict(out),
    )


def status_failure(exc: CardStatusError) -> Failure:
    return Failure(FailureKind.CARD_STATUS, exc.message)

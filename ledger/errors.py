"""One exception root for the host (DESIGN.md habits: one structured error type).

Every failure the host reports carries a stable ``code`` and a precise, user-facing
``message`` saying what happened and what to do. The service turns any :class:`HostError`
into a response envelope with ``infcode = -1`` and ``err_msg = message`` (spec/host.md §1).
"""

from __future__ import annotations


class HostError(Exception):
    """Root of every host error. ``code`` is a short stable identifier for programs."""

    code = "host_error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def __str__(self) -> str:
        return self.message


class BadRequest(HostError):
    """The request is malformed: bad JSON, unknown infno, missing or wrong-typed field."""

    code = "bad_request"


class NotFound(HostError):
    """The person, card, settlement or admission the request names does not exist."""

    code = "not_found"


class Refused(HostError):
    """A well-formed request that the rules refuse (lost card, insufficient balance…)."""

    code = "refused"


class InsufficientFunds(Refused):
    """A medical or bank account would go below zero."""

    code = "insufficient_funds"


class MsgidConflict(HostError):
    """The same msgid was already used for a request with different content."""

    code = "msgid_conflict"


class AuthError(HostError):
    """Unsigned, badly signed, replayed or signed-out request."""

    code = "auth"


class Unavailable(HostError):
    """The host could not be reached or did not answer in time (client side)."""

    code = "unavailable"


class StoreBusy(HostError):
    """The database stayed busy after every retry; the request had no effect."""

    code = "busy"


class PolicyError(HostError):
    """A policy file is missing, unreadable or inconsistent."""

    code = "policy"

"""The national ID check of seed rule C4, as a pluggable verifier.

Real-name issuance: name + ID number must pass the national identity check before a card
is issued; a person who fails it gets no card. The host asks an :class:`IdVerifier`;
sscard ships :class:`RegistryVerifier`, which answers from a JSON registry file
(``fixtures/host/id_registry.json`` by default): ``{"persons": [{"certno", "name"}…]}``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Protocol

from ledger.errors import BadRequest
from ledger.ids import valid_id_number

DEFAULT_REGISTRY = Path(__file__).resolve().parent.parent / "fixtures" / "host" / "id_registry.json"


class IdVerifier(Protocol):
    """Answers whether ``certno`` and ``name`` belong together; ``None`` when they do,
    otherwise the reason they do not."""

    def check(self, certno: str, name: str) -> str | None: ...


class RegistryVerifier:
    """An ID check answered from a registry file (the fixture for rule C4)."""

    def __init__(self, path: str | Path = DEFAULT_REGISTRY) -> None:
        p = Path(path)
        try:
            doc = json.loads(p.read_text(encoding="utf-8"))
            rows = doc["persons"] if isinstance(doc, dict) else doc
        except OSError as exc:
            raise BadRequest(f"cannot read the ID registry {p}: {exc.strerror}") from None
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise BadRequest(f"ID registry {p} is not a valid registry: {exc}") from None
        self.names = {str(r["certno"]).upper(): str(r["name"]) for r in rows}

    def add(self, certno: str, name: str) -> None:
        self.names[certno.upper()] = name

    def check(self, certno: str, name: str) -> str | None:
        if not valid_id_number(certno):
            return "the ID number fails its GB 11643 check character"
        known = self.names.get(certno.upper())
        if known is None:
            return "the ID number is not in the national register"
        if known != name:
            return "the name does not match the national register for this ID number"
        return None


class ChecksumVerifier:
    """Accepts any ID number with a valid check character (bulk synthetic data only)."""

    def check(self, certno: str, name: str) -> str | None:
        return None if valid_id_number(certno) else \
            "the ID number fails its GB 11643 check character"


def default_verifier() -> IdVerifier:
    """The fixture registry when present, else a verifier that refuses everyone."""
    if DEFAULT_REGISTRY.exists():
        return RegistryVerifier(DEFAULT_REGISTRY)

    class _Nobody:
        def check(self, certno: str, name: str) -> str | None:
            return "no ID check service is configured at this host"
    return _Nobody()

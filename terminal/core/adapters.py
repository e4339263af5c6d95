"""Adapters: the core's ports over the real parts.

- :class:`LedgerHost` — :class:`~terminal.core.ports.HostPort` over
  :class:`ledger.client.HostClient` (in-process ``sqlite:///…``/``postgresql://…`` or
  ``http://…``). The client's reversal rule (spec/host.md §4) is respected: a reversible
  request without an answer is reversed by the client when it can
  (:class:`~terminal.core.ports.HostTimeout` with ``reversed=True``) or left pending in the
  client, which the core then flushes through :meth:`LedgerHost.reverse`.
- :class:`PolicyCatalogue` — :class:`~terminal.core.ports.CataloguePort` from the area's
  policy file (the catalogue the host prices with).
- :class:`ReaderCard` — :class:`~terminal.core.ports.CardPort` over the reader driver
  façade (:mod:`reader.facade`) on a reader connection; see its docstring.
- :class:`Timed` — wraps any port and adds the time spent in it to a counter (benchmark).
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from terminal.core.ports import (
    CatalogueItem,
    HostRefused,
    HostReply,
    HostTimeout,
    HostUnreachable,
    UnknownItem,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
POLICY_DIR = REPO_ROOT / "fixtures" / "policies"
NO_EFFECT = frozenset({"1101", "2101", "2303", "5206", "8108", "9001", "9002"})


class LedgerHost:
    """:class:`~terminal.core.ports.HostPort` over a ``ledger.client.HostClient``."""

    def __init__(self, client: Any) -> None:
        self.client = client

    @classmethod
    def connect(cls, url: str, *, institution_code: str, institution_name: str = "",
                operator: str = "0001", operator_name: str = "clerk", timeout: float = 10.0,
                terminal_id: str = "01", key: bytes | None = None) -> LedgerHost:
        """Connect (and sign in) to the host at ``url``; host errors become HostErrors."""
        from ledger.client import HostClient
        from ledger.errors import HostError as LedgerError

        try:
            client = HostClient.connect(url, fixmedins_code=institution_code,
                                        fixmedins_name=institution_name or institution_code,
                                        opter=operator, opter_name=operator_name,
                                        timeout=timeout, terminal_id=terminal_id, key=key)
        except LedgerError as exc:
            if exc.code == "unavailable":
                raise HostUnreachable(exc.message) from None
            raise HostRefused(exc.message, infno="9001", code=exc.code) from None
        return cls(client)

    def close(self) -> None:
        self.client.close()

    def call(self, infno: str, input: Mapping[str, Any], *,
             insuplc_admdvs: str = "") -> HostReply:
        from ledger.errors import HostError as LedgerError
        from ledger.errors import Unavailable

        msgid = self.client.new_msgid()
        try:
            answer = self.client.call_envelope(infno, dict(input), msgid)
        except Unavailable as exc:
            pending = any(p[0] == msgid for p in self.client.pending_reversals)
            if infno in NO_EFFECT:
                raise HostUnreachable(exc.message) from None
            if not pending and any(True for _ in self.client.pending_reversals):
                # an earlier reversal could not be delivered: this request never left
                raise HostUnreachable(exc.message) from None
            raise HostTimeout(exc.message, infno=infno, msgid=msgid,
                              reversed=not pending and _reversible(infno)) from None
        except LedgerError as exc:
            raise HostRefused(exc.message, infno=infno, msgid=msgid, code=exc.code) from None
        if answer.get("infcode") != 0:
            raise HostRefused(str(answer.get("err_msg") or "the host refused the request"),
                              infno=infno, msgid=msgid, code=str(answer.get("err_code", "")))
        return HostReply(output=answer.get("output") or {}, msgid=msgid,
                         warn_msg=str(answer.get("warn_msg", "")))

    def reverse(self, *, psn_no: str, omsgid: str, oinfno: str) -> HostReply:
        from ledger.errors import HostError as LedgerError
        from ledger.errors import Unavailable

        try:
            if any(p[0] == omsgid for p in self.client.pending_reversals):
                self.client.flush_reversals()
                return HostReply(output={}, msgid=omsgid)
            out = self.client.reverse(omsgid, oinfno, psn_no)
        except Unavailable as exc:
            raise HostUnreachable(exc.message) from None
        except LedgerError as exc:
            raise HostRefused(exc.message, infno="2601", code=exc.code) from None
        return HostReply(output=out, msgid=omsgid)


def _reversible(infno: str) -> bool:
    from ledger.client import REVERSIBLE

    return infno in REVERSIBLE


class PolicyCatalogue:
    """The catalogue of an area policy (``fixtures/policies/<area>.toml``)."""

    def __init__(self, items: Mapping[str, CatalogueItem]) -> None:
        self.items = dict(items)

    @classmethod
    def load(cls, area: str = "370800", policy_dir: str | Path | None = None) -> PolicyCatalogue:
        from ledger.policy import load_policy

        policy = load_policy(Path(policy_dir or POLICY_DIR) / f"{area}.toml")
        return cls({code: CatalogueItem(code, it.name, it.price, it.unit, it.spec)
                    for code, it in policy.items.items()})

    def lookup(self, code: str) -> CatalogueItem:
        try:
            return self.items[code]
        except KeyError:
            raise UnknownItem(code) from None


class Timed:
    """A proxy adding the wall time of every method call of ``target`` to ``totals[label]``."""

    def __init__(self, target: Any, label: str, totals: dict[str, float],
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self._target = target
        self._label = label
        self._totals = totals
        self._clock = clock
        totals.setdefault(label, 0.0)

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._target, name)
        if not callable(attr):
            return attr

        def timed(*args: Any, **kwargs: Any) -> Any:
            start = self._clock()
            try:
                return attr(*args, **kwargs)
            finally:
                self._totals[self._label] += self._clock() - start

        return timed


def institution_name(code: str, area: str = "370800",
                     policy_dir: str | Path | None = None) -> str:
    """The name of institution ``code`` in the area policy (the code itself if unknown)."""
    from ledger.errors import PolicyError
    from ledger.policy import load_policy

    try:
        policy = load_policy(Path(policy_dir or POLICY_DIR) / f"{area}.toml")
    except PolicyError:  # a missing or broken policy only costs the pretty name
        return code
    for inst in policy.institutions:
        if inst.code == code:
            return inst.name
    return code


DEFAULT_PSAM = REPO_ROOT / "fixtures" / "cards" / "psam-370800.json"
VIRTUAL_PREFIX = "virtual:"


@contextlib.contextmanager
def open_card(name: str, *, psam: str | None = None) -> Iterator[Any]:
    """The :class:`~terminal.core.cardio.ReaderCard` for reader ``name``, with its PSAM.

    ``name`` is ``virtual:<card image>`` (an in-process reader holding that image; the image
    file is updated as the card is used) or the name of a PC/SC reader (pcscd, including a
    card served through vpcd). ``psam`` is ``virtual:<psam image>`` (default: the area PSAM of
    ``fixtures/cards``) or a PC/SC reader name holding a PSAM.
    """
    from card.cos import VirtualCard
    from card.errors import CardError as ImageProblem
    from card.psam import VirtualPsam
    from reader.errors import ReaderError
    from reader.virtual import VirtualTransport
    from terminal.core.cardio import ReaderCard
    from terminal.core.ports import CardFault, NoPsam

    psam_name = psam or f"{VIRTUAL_PREFIX}{DEFAULT_PSAM}"
    with contextlib.ExitStack() as stack:
        try:
            if psam is None:  # the fixture PSAM, used in memory: the repository stays as is
                sam = VirtualPsam.from_doc(json.loads(DEFAULT_PSAM.read_text("utf-8")))
                sam_conn = VirtualTransport.with_cards(None, sam).connect("Virtual PSAM 0")
            elif psam_name.startswith(VIRTUAL_PREFIX):
                sam = VirtualPsam.from_image(psam_name[len(VIRTUAL_PREFIX):])
                sam_conn = VirtualTransport.with_cards(None, sam).connect("Virtual PSAM 0")
            else:
                sam_conn = _pcsc().connect(psam_name)
        except (ImageProblem, OSError, ValueError) as exc:
            raise NoPsam(f"cannot load the PSAM {psam_name}: {exc}") from None
        except ReaderError as exc:
            raise NoPsam(f"no PSAM in {psam_name}: {exc}") from None
        stack.callback(sam_conn.disconnect)
        if name.startswith(VIRTUAL_PREFIX):
            try:
                image = VirtualCard.from_image(name[len(VIRTUAL_PREFIX):])
            except (ImageProblem, OSError, ValueError) as exc:
                raise CardFault(f"cannot load the card image: {exc}", -1) from None
            transport: Any = VirtualTransport.with_cards(image, None)
            reader = "Virtual Card 0"
        else:
            transport = _pcsc()
            reader = name

        def present() -> bool:
            return any(r.card_present for r in transport.readers() if r.name == reader)

        card = ReaderCard(lambda: transport.connect(reader), sam_conn, present)
        stack.callback(card.close)
        yield card


def _pcsc() -> Any:
    from reader.pcsc import PcscTransport

    return PcscTransport()

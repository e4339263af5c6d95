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

    def __init__(self, items: Mapping[str, CatalogueItem],
                 pinyin: Mapping[str, str] | None = None) -> None:
        self.items = dict(items)
        self._py = dict(pinyin or {})

    @classmethod
    def load(cls, area: str = "370800", policy_dir: str | Path | None = None) -> PolicyCatalogue:
        from ledger.policy import load_policy

        policy = load_policy(Path(policy_dir or POLICY_DIR) / f"{area}.toml")
        return cls({code: CatalogueItem(code, it.name, it.price, it.unit, it.spec)
                    for code, it in policy.items.items()},
                   {code: it.py for code, it in policy.items.items()})

    def lookup(self, code: str) -> CatalogueItem:
        try:
            return self.items[code]
        except KeyError:
            raise UnknownItem(code) from None

    def search(self, text: str, limit: int = 20) -> list[CatalogueItem]:
        """Items whose code starts with ``text``, whose pinyin initials start with it, or
        whose name contains it (the clerk's cart search)."""
        t = text.strip().upper()
        if not t:
            return []
        out = [i for c, i in self.items.items()
               if c.startswith(t) or self._py.get(c, "").startswith(t) or text.strip() in i.name]
        return out[:limit]


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

    ``name`` is resolved by :func:`terminal.core.readers.open_reader`: ``virtual:<card
    image>`` (an in-process reader holding that image, which is updated as the card is
    used), ``serial:…``, or a PC/SC reader name (pcscd, including a card served through
    vpcd). ``psam`` is ``virtual:<psam image>`` or a PC/SC reader name holding a PSAM;
    by default a virtual reader's own PSAM slot (the area PSAM), else the fixture PSAM of
    area 370800 in memory.
    """
    from reader.base import Connection
    from reader.errors import ReaderError
    from reader.virtual import PSAM_READER, VirtualTransport
    from terminal.core import readers
    from terminal.core.cardio import ReaderCard
    from terminal.core.ports import CardFault, NoPsam

    with contextlib.ExitStack() as stack:
        try:
            transport, reader = readers.open_reader(name)
        except ReaderError as exc:
            raise CardFault(str(exc), exc.driver_code) from None
        sam_conn: Connection
        try:
            slot = PSAM_READER.format(n=0)
            if psam and psam.startswith(VIRTUAL_PREFIX):
                sam = readers.load_psam(psam[len(VIRTUAL_PREFIX):])
                sam_conn = VirtualTransport.with_cards(None, sam).connect(slot)
            elif psam:
                pcsc = readers._pcsc()
                sam_conn = pcsc.connect(readers.match_pcsc(pcsc, psam))
            elif isinstance(transport, VirtualTransport) and transport.card(slot) is not None:
                sam_conn = transport.connect(slot)
            else:
                sam = readers.load_psam(DEFAULT_PSAM)
                sam_conn = VirtualTransport.with_cards(None, sam).connect(slot)
        except ReaderError as exc:
            raise NoPsam(f"no usable PSAM ({psam or 'default'}): {exc}") from None
        stack.callback(sam_conn.disconnect)

        def present() -> bool:
            return any(r.card_present for r in transport.readers() if r.name == reader)

        card = ReaderCard(lambda: transport.connect(reader), sam_conn, present)
        stack.callback(card.close)
        yield card

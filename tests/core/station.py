"""A counter station for end-to-end tests: copies of the fixture cards in an in-process
virtual reader, the fixture PSAM in a second reader, an embedded SQLite host with the
holders enrolled, and a flaky transport to lose host answers on purpose (tests only)."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from card.cos import VirtualCard
from card.psam import VirtualPsam
from ledger.client import HostClient, LocalTransport
from ledger.errors import Unavailable
from ledger.service import HostService
from reader.virtual import VirtualTransport
from terminal.core.adapters import LedgerHost
from terminal.core.cardio import ReaderCard
from terminal.core.machine import FailureKind
from terminal.core.ports import HostPort, HostReply
from tests.core import hosting

PINS = {"zhang-san": "246810", "li-si": "123456", "wang-wu": "135790", "maimaiti": "112233",
        "zhao-min": "975310"}
CAST = tuple(PINS)
USER = "Virtual Card 0"
PSAM = "Virtual PSAM 0"


class FlakyTransport:
    """Loses host answers as planned per infno: ``before`` (the request never arrives) or
    ``after`` (applied, the answer is lost)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.plan: dict[str, list[str]] = {}
        self.sent: list[str] = []

    def lose(self, infno: str, *how: str) -> None:
        self.plan.setdefault(infno, []).extend(how)

    def send(self, envelope: dict[str, Any], timeout: float) -> dict[str, Any]:
        infno = envelope["infno"]
        self.sent.append(infno)
        todo = self.plan.get(infno)
        how = todo.pop(0) if todo else None
        if how == "before":
            raise Unavailable("no answer from the host (test: request lost)")
        answer: dict[str, Any] = self.inner.send(envelope, timeout)
        if how == "after":
            raise Unavailable("no answer from the host (test: answer lost)")
        return answer

    def close(self) -> None:
        self.inner.close()


@dataclass
class Station:
    root: Path
    url: str
    images: dict[str, Path]
    enrolled: dict[str, hosting.Enrolled]
    transport: VirtualTransport = field(default_factory=VirtualTransport)
    cards: dict[str, VirtualCard] = field(default_factory=dict)
    flaky: list[FlakyTransport] = field(default_factory=list)
    _opened: list[Any] = field(default_factory=list)
    _psam: Any = None
    _card: ReaderCard | None = None

    @classmethod
    def build(cls, root: Path, cast: tuple[str, ...] = CAST, **money: int) -> Station:
        images = hosting.copy_fixtures(root, *cast)
        url = f"sqlite:///{root}/host.db"
        hosting.init_host(url)
        enroller = hosting.Enroller(url)
        try:
            enrolled = {n: enroller.enrol(images[n], **money) for n in cast}
        finally:
            enroller.close()
        st = cls(root, url, images, enrolled)
        st.transport.add_reader(USER)
        st.transport.add_reader(PSAM, VirtualPsam.from_image(images["psam-370800"]))
        return st

    def clone(self, dest: Path) -> Station:
        """A fresh station with copies of this one's host database and card images, as
        they are now (cheaper than enrolling again)."""
        shutil.copytree(self.root, dest, ignore=shutil.ignore_patterns("*-journal", "*.wal"))
        images = {n: dest / p.name for n, p in self.images.items()}
        st = Station(dest, f"sqlite:///{dest}/host.db", images, dict(self.enrolled))
        st.transport.add_reader(USER)
        st.transport.add_reader(PSAM, VirtualPsam.from_image(images["psam-370800"]))
        return st

    def insert(self, who: str) -> VirtualCard:
        card = self.cards.get(who) or VirtualCard.from_image(self.images[who])
        self.cards[who] = card
        card.insert()
        self.transport.insert(card, USER)
        return card

    def pull(self) -> None:
        self.transport.remove(USER)

    def reader_card(self) -> ReaderCard:
        """The card port of this station (the previous one, if any, lets go of the card)."""
        if self._psam is None:
            self._psam = self.transport.connect(PSAM)
        if self._card is not None:
            self._card.close()
        self._card = ReaderCard.in_reader(self.transport, USER, self._psam)
        return self._card

    def host(self, code: str = hosting.OFFICE, *, flaky: bool = False) -> LedgerHost:
        service = HostService.open(self.url)
        transport: Any = LocalTransport(service, own=True)
        if flaky:
            transport = FlakyTransport(transport)
            self.flaky.append(transport)
        client = HostClient(transport, fixmedins_code=code, fixmedins_name=code, timeout=2.0)
        host = LedgerHost(client)
        self._opened.append(host)
        return host

    def balances(self, who: str) -> tuple[int, int]:
        e = self.enrolled[who]
        return hosting.balances(self.url, e.psn_no, e.pan)

    def close(self) -> None:
        if self._card is not None:
            self._card.close()
        for thing in reversed(self._opened):
            # closing test scaffolding must not mask the test's outcome
            with contextlib.suppress(Exception):
                (thing.close if hasattr(thing, "close") else thing.disconnect)()
        self._opened.clear()


def card_log(st: Station, pin: str) -> list[Any]:
    """The card's DF04 EF08 log, read through the reader (the PIN opens DF04)."""
    rc = st.reader_card()
    rc.read_basics()
    rc.verify_pin(pin)
    return rc.read_transactions()


def assert_bank_refusal_undone(st: Station, failure: Any, who: str,
                               before: tuple[int, int]) -> None:
    """The card refused the bank's answer (issuer authentication): the settlement was
    reversed, nothing charged, nothing on the card, the books sound."""
    assert failure.kind is FailureKind.BANK_REFUSED and not failure.charged
    assert "issuer authentication failed" in failure.message
    assert "reversed" in failure.message
    assert st.balances(who) == before
    assert [s[1] for s in hosting.settlements(st.url)] != ["settled"]
    assert card_log(st, PINS[who]) == []
    assert hosting.books_problems(st.url) == []


class ForgingHost:
    """The real host, but the ARPC of an ``infno`` answer is altered on the way (a forged or
    corrupted issuer answer): its first byte XOR ``flip``."""

    def __init__(self, inner: HostPort, infno: str, flip: int) -> None:
        self.inner = inner
        self.infno = infno
        self.flip = flip

    def call(self, infno: str, input: Mapping[str, Any], *,
             insuplc_admdvs: str = "") -> HostReply:
        reply = self.inner.call(infno, input, insuplc_admdvs=insuplc_admdvs)
        setl = dict(reply.output.get("setlinfo") or {})
        if infno == self.infno and setl.get("arpc"):
            arpc = bytes.fromhex(setl["arpc"])
            setl["arpc"] = (bytes([arpc[0] ^ self.flip]) + arpc[1:]).hex().upper()
            return HostReply(output={**reply.output, "setlinfo": setl}, msgid=reply.msgid)
        return reply

    def reverse(self, *, psn_no: str, omsgid: str, oinfno: str) -> HostReply:
        return self.inner.reverse(psn_no=psn_no, omsgid=omsgid, oinfno=oinfno)

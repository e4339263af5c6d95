"""Adapters: the core's ports over the real parts.

- :class:`LedgerHost` — :class:`~terminal.core.ports.HostPort` over
  :class:`ledger.client.HostClient` (in-process ``sqlite:///…``/``postgresql://…`` or
  ``http://…``). The client's reversal rule (spec/host.md §4) is respected: a reversible
  request without an answer is reversed by the client when it can
  (:class:`~terminal.core.ports.HostTimeout` with ``reversed=True``) or left pending in the
  client, which the core then flushes through :meth:`LedgerHost.reverse`.
- :class:`PolicyCatalogue` — :class:`~terminal.core.ports.CataloguePort` from the area's
  policy file (the catalogue the host prices with), its items (:class:`PolicyItem`) with
  their class 甲/乙/丙 and pinyin initials, and the cart's search (code, name, initials).
- :class:`ReaderCard` — :class:`~terminal.core.ports.CardPort` over the reader driver
  façade (:mod:`reader.facade`) on a reader connection; see its docstring.
- :class:`ImageCardIssuer` — :class:`~terminal.core.ports.CardIssuerPort` writing the new
  card image of a replacement (seed rules L1, L2, A5; spec/host.md §5) with
  :func:`card.issue.issue` and the numbers the host assigned (8105).
- :class:`Timed` — wraps any port and adds the time spent in it to a counter (benchmark).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from terminal.core.ports import (
    CardFault,
    CardInfo,
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
            code = str(answer.get("err_code", ""))
            # the msgid was minted just now: taken means another terminal mints the same
            message = self.client.terminal_clash() if code == "msgid_conflict" else \
                str(answer.get("err_msg") or "the host refused the request")
            raise HostRefused(message, infno=infno, msgid=msgid, code=code)
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


@dataclass(frozen=True)
class PolicyItem(CatalogueItem):
    """A catalogue item with its insurance class (甲/乙/丙) and pinyin initials."""

    cls: str = ""
    py: str = ""

    @property
    def eligible(self) -> bool:
        """Whether the insurance pays for it at all: classes 甲 and 乙 (丙 is self-paid)."""
        return self.cls in ("甲", "乙")


class PolicyCatalogue:
    """The catalogue of an area policy (``fixtures/policies/<area>.toml``), with the cart's
    search (:meth:`search`)."""

    def __init__(self, items: Mapping[str, CatalogueItem],
                 pinyin: Mapping[str, str] | None = None) -> None:
        self.items = dict(items)
        py = dict(pinyin or {})
        self._py = {c: (py.get(c) or str(getattr(i, "py", "") or "")).upper()
                    for c, i in self.items.items()}

    @classmethod
    def load(cls, area: str = "370800", policy_dir: str | Path | None = None) -> PolicyCatalogue:
        """The catalogue of ``area``; an area without a policy file, or a broken policy,
        raises ``ledger.errors.PolicyError`` saying so (and which areas there are)."""
        from ledger.errors import PolicyError
        from ledger.policy import load_policy

        folder = Path(policy_dir or POLICY_DIR)
        path = folder / f"{area}.toml"
        if not (len(area) == 6 and area.isascii() and area.isdigit() and path.is_file()):
            known = sorted(f.stem for f in folder.glob("*.toml")) if folder.is_dir() else []
            raise PolicyError(f"area {area!r} is unknown: no policy file for it in {folder}; "
                              f"known areas: {', '.join(known) or 'none'}")
        policy = load_policy(path)
        return cls({code: PolicyItem(code, it.name, it.price, it.unit, it.spec, cls=it.cls,
                                     py=it.py.upper())
                    for code, it in policy.items.items()})

    def lookup(self, code: str) -> CatalogueItem:
        try:
            return self.items[code]
        except KeyError:
            raise UnknownItem(code) from None

    def search(self, text: str, limit: int = 20, *, classes: Iterable[str] | None = None,
               eligible: bool | None = None) -> list[CatalogueItem]:
        """The clerk's cart search: items whose code or pinyin initials start with ``text``
        or whose name contains it (any case, surrounding blanks ignored), best first — the
        exact code or initials, then code, initials and name prefixes, then the name
        fragments, each in catalogue order — at most ``limit``.

        ``classes`` keeps only the items of those classes (甲/乙/丙); ``eligible`` True
        keeps the items the insurance pays for (甲, 乙), False the self-paid ones (丙).

        >>> cat = PolicyCatalogue({"X1": PolicyItem("X1", "阿莫西林胶囊", 1250, cls="甲",
        ...                                           py="AMXLJN")})
        >>> [i.name for i in cat.search("amxl")], cat.search("丙")
        (['阿莫西林胶囊'], [])
        """
        t = text.strip()
        if not t or limit <= 0:
            return []
        up, low = t.upper(), t.casefold()
        wanted = None if classes is None else frozenset(classes)
        ranked: list[tuple[int, int, CatalogueItem]] = []
        for n, (code, item) in enumerate(self.items.items()):
            cls = str(getattr(item, "cls", "") or "")
            if wanted is not None and cls not in wanted:
                continue
            if eligible is not None and (cls in ("甲", "乙")) is not eligible:
                continue
            py = self._py.get(code, "")
            name = item.name.casefold()
            if code.upper() == up or py == up:
                rank = 0
            elif code.upper().startswith(up):
                rank = 1
            elif py.startswith(up):
                rank = 2
            elif name.startswith(low):
                rank = 3
            elif low in name:
                rank = 4
            else:
                continue
            ranked.append((rank, n, item))
        ranked.sort(key=lambda r: (r[0], r[1]))
        return [item for _, _, item in ranked[:limit]]


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


class ImageCardIssuer:
    """:class:`~terminal.core.ports.CardIssuerPort` over card image files: the counter's
    personaliser for replacement cards (seed rules L1, L2, A5; spec/host.md §5).

    :meth:`write_card` issues a new image (:func:`card.issue.issue`) with the card number,
    card identification code, PAN and PAN sequence number the host assigned (``cardinfo``
    of 8105: ``card_no``, ``card_sn``, ``pan``, ``pan_seq``, ``bank``, ``generation``,
    ``algorithm``), for the same holder:

    - the holder's identity (name, ID number, sex, birth date, ethnicity, birthplace,
      category, photo) and PIN policy are copied from the old card's image — ``holder
      ["image"]``, or the image among ``search`` (files or directories) whose card number
      is ``cardinfo["old_card_no"]``;
    - host data in ``holder`` wins over the old image (``psn_name``, ``gend``, ``brdy``,
      ``naty``: data corrected at the office, rule A5); ``holder["certno"]`` must be the old
      image's ID number; without an old image the holder comes from ``holder`` alone
      (``certno``, ``psn_name``…) with a generated photo;
    - the PIN follows the bank (rules A3/A4): a CCB card is activated with a new random
      initial PIN, handed out once by :meth:`take_initial_pin`; ICBC, ABC and BOC cards are
      not activated (initial PIN ``123456``, changed at the bank counter).

    The image is written atomically to ``holder["out"]``, else ``out``, else next to the
    old image as ``<old name>-<new card number>.json``, else into ``out_dir``; an existing
    file is never overwritten. ``registry`` (an issuer file) refuses numbers issued before.
    Every failure is a :class:`~terminal.core.ports.CardFault` saying what to do.
    """

    def __init__(self, search: Iterable[str | Path] = (), *, out: str | Path | None = None,
                 out_dir: str | Path | None = None, registry: str | Path | None = None,
                 issue_date: date | None = None) -> None:
        self.search = [Path(p) for p in search]
        self.out = Path(out) if out is not None else None
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.registry = Path(registry) if registry is not None else None
        self.issue_date = issue_date
        self.last_path: Path | None = None
        self._envelope: str | None = None

    def take_initial_pin(self) -> str | None:
        """The new card's initial PIN (CCB, rule A3), once; None afterwards or when the
        card is issued not activated (its initial PIN is the published ``123456``)."""
        pin, self._envelope = self._envelope, None
        return pin

    def find_image(self, card_no: str) -> Path | None:
        """The image among ``search`` whose card number is ``card_no``."""
        from card.errors import ImageError
        from card.image import read_document

        if not card_no:
            return None
        for place in self.search:
            files = sorted(place.iterdir()) if place.is_dir() else [place]
            for f in files:
                if f.suffix.lower() not in (".json", ".toml") or not f.is_file():
                    continue
                try:
                    ident = read_document(f).get("identity")
                except ImageError:
                    continue
                if isinstance(ident, dict) and ident.get("card_number") == card_no:
                    return f
        return None

    def write_card(self, cardinfo: Mapping[str, Any], holder: Mapping[str, Any]) -> CardInfo:
        from card.errors import CardError as CardSideError
        from card.image import CardImage, load_card_image
        from card.issue import Holder, IssuerRegistry, issue, save_issued
        from card.photo import photo_from_file

        missing = [k for k in ("card_no", "card_sn", "pan", "bank") if not cardinfo.get(k)]
        if missing:
            raise CardFault(f"the host's answer lacks {', '.join(missing)} for the new card: "
                            "nothing was written; ask the host operator")
        new_no = str(cardinfo["card_no"])
        old_no = str(holder.get("old_card_no") or cardinfo.get("old_card_no") or "")
        old_path = Path(holder["image"]) if holder.get("image") else self.find_image(old_no)
        old: CardImage | None = None
        if old_path is not None:
            try:
                old = load_card_image(old_path)
            except CardSideError as exc:
                raise CardFault(f"the old card image {old_path} cannot be read ({exc}): "
                                "give the holder data instead") from None
        ident: dict[str, Any] = dict(old.identity) if old is not None else {}
        certno = str(holder.get("certno") or ident.get("ssn") or "").upper()
        if not certno:
            raise CardFault("no holder data for the new card: give the old card image or the "
                            "holder's ID number and name")
        if old is not None and ident["ssn"].upper() != certno:
            raise CardFault(f"the old card image {old_path} belongs to another person (ID "
                            "number differs): nothing was written")
        name = str(holder.get("psn_name") or holder.get("name") or ident.get("name") or "")
        birth = str(holder.get("brdy") or holder.get("birth_date") or
                    ident.get("birth_date") or "").replace("-", "")
        sex = str(holder.get("gend") or holder.get("sex") or ident.get("sex") or "") or None
        photo = holder.get("photo")
        if photo is None and old is not None:
            ef08 = old.mf.find("SSSE/EF08")
            data = getattr(ef08, "data", b"")
            photo = photo_from_file(bytes(data)) if data else None
        who = Holder(name, certno, sex=sex, birth_date=birth or None,
                     ethnicity=str(holder.get("naty") or ident.get("ethnicity") or "01"),
                     birthplace=ident.get("birthplace"),
                     category=str(ident.get("category") or "3"))
        card_sn = str(cardinfo["card_sn"]).upper()
        area = str(cardinfo.get("area_code") or card_sn[:6])
        out = self._target(holder, old_path, new_no)
        try:
            registry = IssuerRegistry(self.registry) if self.registry else None
            issued = issue(
                who, bank=str(cardinfo["bank"]), area=area,
                generation=str(cardinfo.get("generation") or ident.get("generation") or "3.00"),
                algorithm=str(cardinfo.get("algorithm") or "") or None,
                pin_policy=old.pin_policy if old is not None else "shared",
                pin_max_tries=old.pin_max_tries if old is not None else 3,
                issue_date=self.issue_date, registry=registry, card_number=new_no,
                card_id_code=card_sn, pan=str(cardinfo["pan"]),
                pan_seq=int(str(cardinfo.get("pan_seq") or "1")),
                photo=bytes(photo) if photo else None, register=False)
            save_issued(issued, out, registry)
        except CardSideError as exc:
            raise CardFault(f"the new card {new_no} cannot be written: {exc}") from None
        except OSError as exc:
            raise CardFault(f"the new card image {out} cannot be written: {exc.strerror}") \
                from None
        self.last_path = out
        self._envelope = issued.initial_pin if issued.doc["policy"]["activated"] else None
        new = issued.doc["identity"]
        return CardInfo(area_code=new["area_code"], ssn=new["ssn"],
                        card_number=new["card_number"], card_id_code=new["card_id_code"],
                        name=new["name"], spec_version=new["generation"],
                        issue_date=new["issue_date"], expiry_date=new["expiry_date"],
                        atr_historical=new["historical"])

    def _target(self, holder: Mapping[str, Any], old_path: Path | None, new_no: str) -> Path:
        if holder.get("out"):
            out = Path(holder["out"])
        elif self.out is not None:
            out = self.out
        elif old_path is not None:
            stem = old_path.stem
            old_no = stem.rsplit("-", 1)[-1]
            if "-" in stem and len(old_no) == 9 and old_no.isalnum() and old_no.isupper():
                stem = stem.rsplit("-", 1)[0]  # zhang-san-B1234567X -> zhang-san
            out = old_path.with_name(f"{stem}-{new_no}.json")
        elif self.out_dir is not None:
            out = self.out_dir / f"{new_no}.json"
        else:
            raise CardFault("no place for the new card image: give an output file or the old "
                            "card image")
        if out.exists():
            raise CardFault(f"{out} already exists: a new card is never written over another "
                            "image; move it away and write the card again")
        if not out.parent.is_dir():
            raise CardFault(f"directory {out.parent} does not exist: create it and write the "
                            "card again")
        return out


DEFAULT_PSAM = REPO_ROOT / "fixtures" / "cards" / "psam-370800.json"


@contextlib.contextmanager
def open_card(name: str, *, psam: str | None = None) -> Iterator[Any]:
    """The :class:`~terminal.core.cardio.ReaderCard` for reader ``name``, with its PSAM.

    The reader and the PSAM are opened by :func:`terminal.core.readers.open_card`: ``name``
    is ``virtual:<card image>`` (an in-process reader holding that image, which is updated
    as the card is used), ``serial:…``, or a PC/SC reader name (pcscd, including a card
    served through vpcd); ``psam`` is ``virtual:<psam image>`` or a PC/SC reader name
    holding a PSAM. By default a virtual reader uses its own PSAM slot (the area PSAM) and
    any other reader the fixture PSAM of area 370800 in memory. A reader or PSAM that
    cannot be opened raises the port's error (:func:`~terminal.core.cardio.port_error`).
    """
    from reader.errors import ReaderError
    from terminal.core import readers
    from terminal.core.cardio import ReaderCard, port_error

    if psam is None and not name.startswith(readers.VIRTUAL):
        psam = f"{readers.VIRTUAL}{DEFAULT_PSAM}"
    with contextlib.ExitStack() as stack:
        try:
            session = stack.enter_context(readers.open_card(name, psam=psam))
        except ReaderError as exc:
            raise port_error(exc) from None
        card = ReaderCard.over_session(session)
        stack.callback(card.close)
        yield card

"""Reader names the whole CLI understands, resolved to a transport (spec/pcsc-lab.md).

- ``virtual:PATH`` — an in-process reader holding the card image at PATH (loaded through
  ``card``; the image file is the card, so PIN counters and writes persist there). Its PSAM
  slot holds the area's fixture PSAM (``psam-<area>.json`` beside the image or in
  ``fixtures/cards``), loaded in memory so the PSAM file never changes.
- ``serial:URL[?options]`` — a serial reader (:mod:`reader.serial`).
- anything else — a PC/SC reader as pcscd names it (``Virtual PCD 00 00``); a unique
  substring is enough (``"PCD 00 01"``).

The PSAM of a non-virtual reader is named separately (``--psam``): a PC/SC reader holding a
PSAM, or ``virtual:PATH`` for an in-process PSAM image.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from apdu.iface import CardLike
from reader.base import Connection, Transport
from reader.errors import NoReader, ReaderError
from reader.facade import CardDriver
from reader.virtual import PSAM_READER, USER_READER, VirtualTransport

VIRTUAL = "virtual:"
SERIAL = "serial:"
REPO_ROOT = Path(__file__).resolve().parents[2]
FIXTURE_CARDS = REPO_ROOT / "fixtures" / "cards"
ENV_READER = "SSCARD_READER"
ENV_PSAM = "SSCARD_PSAM"


class ReaderNameError(NoReader):
    """A reader name that resolves to nothing (the message lists what exists)."""


def load_card(path: str | os.PathLike[str], *, t0: bool = False) -> CardLike:
    """The virtual card stored in an image file (changes are written back to it)."""
    from card.cos import VirtualCard
    from card.errors import CardError

    try:
        return VirtualCard.from_image(path, t0=t0)
    except CardError as exc:
        raise ReaderNameError(f"cannot load the card image {path}: {exc}") from None
    except (OSError, ValueError) as exc:
        raise ReaderNameError(f"cannot read the card image {path}: {exc}") from None


def load_psam(path: str | os.PathLike[str], *, t0: bool = False,
              in_memory: bool = True) -> CardLike:
    """A virtual PSAM from its image (in memory by default, so the file never changes).

    The image (JSON, or TOML by suffix) is checked as ``sscard card show`` checks it
    (:func:`card.psam.load_psam_doc`: format, fields, integrity seal).
    """
    from card.errors import CardError
    from card.psam import VirtualPsam, load_psam_doc

    try:
        doc = load_psam_doc(path)
        if in_memory:
            return VirtualPsam.from_doc(doc, t0=t0)
        return VirtualPsam.from_image(path, t0=t0)
    except CardError as exc:
        raise ReaderNameError(f"cannot load the PSAM image {path}: {exc}") from None
    except OSError as exc:
        raise ReaderNameError(f"cannot read the PSAM image {path}: {exc.strerror or exc}"
                              ) from None


def image_files(reader: str | None, psam: str | None = None) -> list[Path]:
    """The image files ``virtual:`` reader names use: the card image with its area PSAM, and
    a ``virtual:`` PSAM (files a command must never write its output over)."""
    out: list[Path] = []
    if reader and reader.startswith(VIRTUAL) and reader[len(VIRTUAL):]:
        card = Path(reader[len(VIRTUAL):])
        out.append(card)
        area = area_psam(card)
        if area is not None:
            out.append(area)
    if psam and psam.startswith(VIRTUAL) and psam[len(VIRTUAL):]:
        out.append(Path(psam[len(VIRTUAL):]))
    return out


def area_psam(card_path: str | os.PathLike[str]) -> Path | None:
    """The PSAM image for the card's area: ``psam-<area>.json`` beside it or in fixtures."""
    try:
        doc = json.loads(Path(card_path).read_text(encoding="utf-8"))
        area = str(doc.get("identity", {}).get("area_code", ""))
    except (OSError, ValueError, AttributeError, RecursionError):
        area = ""
    candidates = []
    for folder in (Path(card_path).parent, FIXTURE_CARDS):
        if area:
            candidates.append(folder / f"psam-{area}.json")
        candidates += sorted(folder.glob("psam-*.json"))
    return next((c for c in candidates if c.is_file()), None)


def _pcsc() -> Transport:
    from reader.pcsc import PcscTransport

    return PcscTransport()


def _is_pcsc(transport: Transport) -> bool:
    """True when ``transport`` is the PC/SC transport (pyscard may be absent)."""
    try:
        from reader.pcsc import PcscTransport
    except ImportError:
        return False
    return isinstance(transport, PcscTransport)


def match_pcsc(transport: Transport, name: str) -> str:
    """The PC/SC reader called ``name``, or the one whose name contains it (unique)."""
    names = [r.name for r in transport.readers()]
    if name in names:
        return name
    hits = [n for n in names if name.lower() in n.lower()]
    if len(hits) == 1:
        return hits[0]
    listed = ", ".join(repr(n) for n in names) or "none (is a card served to vpcd?)"
    if hits:
        raise ReaderNameError(f"{name!r} matches several readers: {', '.join(map(repr, hits))}; "
                              "give more of the name")
    raise ReaderNameError(f"no reader named {name!r}; readers: {listed}; "
                          "or use virtual:CARD.json / serial:URL")


def open_reader(name: str, **opts: Any) -> tuple[Transport, str]:
    """Resolve a reader name to ``(transport, reader name within it)``.

    Options: ``t0`` (virtual cards speak T=0, default False), ``psam`` (path of a PSAM image
    for a virtual reader; default: the area PSAM), ``no_psam`` (leave the PSAM slot empty),
    and for ``serial:`` readers the options of :class:`reader.serial.SerialTransport`.
    """
    if not name:
        raise ReaderNameError("empty reader name; `sscard readers` lists the readers")
    if name.startswith(VIRTUAL):
        path = name[len(VIRTUAL):]
        if not path:
            raise ReaderNameError("virtual: needs a card image path, e.g. "
                                  "virtual:fixtures/cards/zhang-san.json")
        t0 = bool(opts.get("t0", False))
        card = load_card(path, t0=t0)
        psam: CardLike | None = None
        if not opts.get("no_psam"):
            psam_path = opts.get("psam") or area_psam(path)
            if psam_path is not None:
                psam = load_psam(psam_path, t0=t0)
        return VirtualTransport.with_cards(card, psam), USER_READER.format(n=0)
    if name.startswith(SERIAL):
        try:
            from reader.serial import SerialTransport
        except ImportError:
            raise ReaderNameError("serial readers are not available in this installation"
                                  ) from None
        serial_opts = {k: v for k, v in opts.items() if k not in ("t0", "psam", "no_psam")}
        serial = SerialTransport.from_name(name, **serial_opts)
        return serial, serial.name
    transport = _pcsc()
    return transport, match_pcsc(transport, name)


def default_reader_name() -> str:
    """``$SSCARD_READER``, else the first PC/SC reader holding a card."""
    env = os.environ.get(ENV_READER)
    if env:
        return env
    try:
        transport = _pcsc()
        for info in transport.readers():
            if info.card_present:
                return info.name
    except ReaderError:
        pass
    raise ReaderNameError(
        "no reader given and no PC/SC reader holds a card; use --reader NAME "
        "(e.g. --reader virtual:fixtures/cards/zhang-san.json, or a name from "
        "`sscard readers`), or set SSCARD_READER")


@dataclass
class CardSession:
    """Open connections to a user card and (when there is one) a PSAM, with the façade."""

    user: Connection
    psam: Connection | None
    driver: CardDriver
    transports: list[Transport] = field(default_factory=list)

    def close(self) -> None:
        for conn in (self.user, self.psam):
            if conn is not None:
                with contextlib.suppress(ReaderError):
                    conn.disconnect()
        for t in self.transports:
            closer = getattr(t, "close", None)
            if closer is not None:
                with contextlib.suppress(Exception):
                    closer()


@contextlib.contextmanager
def open_card(name: str | None = None, *, psam: str | None = None, exclusive: bool = True,
              terminal_device: str = "", **opts: Any) -> Iterator[CardSession]:
    """Connect to the card in reader ``name`` (default :func:`default_reader_name`) and its
    PSAM, and yield a :class:`CardSession`.

    ``psam``: ``none``, ``virtual:PATH``, or a PC/SC reader name; default for a virtual
    reader is its own PSAM slot, elsewhere ``$SSCARD_PSAM`` or no PSAM.
    """
    reader_name = name or default_reader_name()
    transport, reader = open_reader(reader_name, **opts)
    transports = [transport]
    user = transport.connect(reader, exclusive=exclusive)
    psam_conn: Connection | None = None
    try:
        psam_spec = psam if psam is not None else os.environ.get(ENV_PSAM)
        if psam_spec and psam_spec.lower() == "none":
            psam_conn = None
        elif psam_spec and psam_spec.startswith(VIRTUAL):
            sam = load_psam(psam_spec[len(VIRTUAL):], t0=bool(opts.get("t0", False)))
            vt = VirtualTransport.with_cards(None, sam)
            transports.append(vt)
            psam_conn = vt.connect(PSAM_READER.format(n=0))
        elif psam_spec:
            # A PSAM named by its PC/SC name lives in pcscd, whatever carries the user card.
            pt = transport if _is_pcsc(transport) else _pcsc()
            if pt is not transport:
                transports.append(pt)
            psam_conn = pt.connect(match_pcsc(pt, psam_spec), exclusive=exclusive)
        elif isinstance(transport, VirtualTransport):
            slot = PSAM_READER.format(n=0)
            if transport.card(slot) is not None:
                psam_conn = transport.connect(slot, exclusive=exclusive)
    except BaseException:
        user.disconnect()
        raise
    session = CardSession(user, psam_conn,
                          CardDriver(user, psam_conn, terminal_device=terminal_device),
                          transports)
    try:
        yield session
    finally:
        session.close()

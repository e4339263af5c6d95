"""``sscard terminal``: the Textual terminal (pharmacy, hospital, counter, workbench).

This is the composition root of the terminal: it prepares the per-user data directory, opens
the reader (the in-process virtual reader with the fixture cards by default), connects to
the host (an embedded SQLite host created on first run by default) and hands the transaction
core's ports to :class:`terminal.ui.app.SscardApp`.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from terminal.cli import CliError
from terminal.cli.args import terminal_id

MODES = ("pharmacy", "hospital", "counter", "workbench")
TERMINAL_ID = "02"
"""The default terminal number of ``sscard terminal`` (``sscard checkout`` uses 01): each
terminal of an institution has its own, and the host client numbers message ids per
terminal id (ledger/client.py ``terminal_slot``)."""
VIRTUAL = "virtual"
REPO_ROOT = Path(__file__).resolve().parents[2]
FIXTURE_CARDS = REPO_ROOT / "fixtures" / "cards"
POLICY_DIR = REPO_ROOT / "fixtures" / "policies"
AREA = "370800"
INSTITUTIONS = {
    "pharmacy": ("P37080000001", "济宁市太白湖大药房"),
    "hospital": ("H37080000001", "济宁市第一人民医院"),
    "counter": ("S37080000001", "济宁市社会保障卡服务大厅"),
    "workbench": ("P37080000001", "济宁市太白湖大药房"),
}

NOT_ENROLLED = "fixture-cards-not-enrolled"
NOT_ENROLLED_TEXT = ("the embedded host could not register the fixture cards (a card "
                     "image is unreadable): the host will refuse them at the person lookup; "
                     "delete the data directory to start afresh, or use --host")

COUNTERS = (
    ("S37080000001", "social security card office 社保卡服务大厅"),
    ("B37080000CCB", "CCB counter 建设银行"),
    ("B3708000ICBC", "ICBC counter 工商银行"),
    ("B37080000ABC", "ABC counter 农业银行"),
    ("B37080000BOC", "BOC counter 中国银行"),
)
"""The counters the service-counter mode can act as (fixtures/policies/370800.toml)."""

EPILOG = """examples:
  sscard terminal                                 pharmacy checkout, virtual reader, embedded host
  sscard terminal --mode hospital                 admission (photo check) and discharge
  sscard terminal --mode counter                  activation, PIN reset, loss, replacement …
  sscard terminal --mode workbench                APDU console, file tree, traces
  sscard terminal --reader "ACS ACR39U ICC Reader 00 00" --host http://127.0.0.1:8700
  sscard terminal --host http://127.0.0.1:8700 --terminal-id 03   a second till of the shop

Every terminal of an institution needs its own --terminal-id (default 02, so it never
shares message ids with `sscard checkout`, default 01): the host numbers each terminal's
messages apart, and two terminals on one id would collide.

keys: F9 inserts/removes a fixture card in the virtual reader, F10 switches mode,
Ctrl+T switches the light/dark theme, Ctrl+Q quits. Each screen shows its F-keys at the
bottom. The embedded host and the working copies of the fixture cards live in
$XDG_DATA_HOME/sscard (default ~/.local/share/sscard); delete that folder to start afresh.
"""


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "terminal",
        help="the point-of-sale terminal (Textual UI)",
        description="The sscard terminal: pharmacy checkout (default), hospital desk, "
                    "service counter and developer workbench, on the in-process virtual "
                    "reader or a real one, against the embedded host or a remote one.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--mode", choices=MODES, default="pharmacy",
                        help="the screen to start on (default: pharmacy)")
    parser.add_argument("--reader", default=VIRTUAL, metavar="R",
                        help="reader name: 'virtual' (default, the in-process reader with the "
                             "fixture cards) or a reader name as `sscard readers` lists it")
    parser.add_argument("--host", default=None, metavar="URL",
                        help="host: sqlite:///path/host.db, postgresql://…, or the http:// URL "
                             "of `sscard host serve` (default: the embedded SQLite host in the "
                             "data directory, created on first run)")
    parser.add_argument("--theme", choices=("dark", "light"), default="dark",
                        help="colour theme (Ctrl+T switches while running)")
    parser.add_argument("--data-dir", default=None, metavar="DIR",
                        help="data directory (default: $XDG_DATA_HOME/sscard)")
    parser.add_argument("--terminal-id", type=terminal_id, default=TERMINAL_ID, metavar="ID",
                        help="this terminal's number at its institution (default "
                             "%(default)s; `sscard checkout` defaults to 01): every terminal "
                             "of an institution needs its own id, the host's message ids are "
                             "numbered per terminal id")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from terminal.ui.app import SscardApp, data_dir

    root = Path(args.data_dir).expanduser() if args.data_dir else data_dir()
    stack = build_stack(mode=args.mode, reader=args.reader, host=args.host, data_dir=root,
                        terminal_id=args.terminal_id)
    try:
        app = SscardApp(stack.services, mode=args.mode, theme=args.theme)
        app.run()
    finally:
        stack.close()
    return 0


# ---------------------------------------------------------------------------- the stack


@dataclass
class Stack:
    """Everything ``sscard terminal`` opened, with one :meth:`close`."""

    services: Any
    transport: Any = None
    host_url: str = ""
    closers: list[Callable[[], None]] = field(default_factory=list)

    def close(self) -> None:
        while self.closers:
            closer = self.closers.pop()
            with contextlib.suppress(Exception):  # closing never hides the real outcome
                closer()


def prepare_data_dir(root: Path) -> Path:
    """Create the data directory and copy the fixture cards into ``root/cards`` once, so the
    repository's fixtures are never changed by using the terminal."""
    cards = root / "cards"
    try:
        cards.mkdir(parents=True, exist_ok=True)
        for image in sorted(FIXTURE_CARDS.glob("*.json")):
            target = cards / image.name
            if not target.exists():
                shutil.copyfile(image, target)
    except OSError as exc:
        raise CliError(f"cannot prepare the data directory {root}: {exc.strerror}; "
                       "choose another with --data-dir") from exc
    return cards


def embedded_host(root: Path) -> str:
    """The embedded SQLite host in ``root``: created and loaded with the fixture policies on
    first run (``ledger.service.initialize``), reused afterwards and brought up to this
    version's schema (its newer migrations) when an older sscard made it."""
    from ledger.errors import HostError
    from ledger.service import initialize
    from ledger.store.base import open_store

    path = root / "host.sqlite"
    url = f"sqlite:///{path}"
    fresh = not path.exists()
    if fresh:
        print(f"sscard: first run: creating the embedded host in {root} and registering "
              "the fixture cards…", file=sys.stderr, flush=True)
    try:
        store = open_store(url)
        try:
            if fresh:
                initialize(store, POLICY_DIR)
                if not register_fixture_holders(store, root / "cards"):
                    (root / NOT_ENROLLED).write_text(NOT_ENROLLED_TEXT + "\n",
                                                      encoding="utf-8")
            else:
                have = store.schema_version()
                if have:            # sscard's own file: bring it to this version's schema
                    applied = store.migrate()
                    if applied:
                        print(f"sscard: upgraded the embedded host in {root} from schema "
                              f"{have} to {applied[-1]}", file=sys.stderr, flush=True)
                store.require_schema()
        finally:
            store.close()
    except HostError as exc:
        if fresh:
            path.unlink(missing_ok=True)
        raise CliError(f"cannot set up the embedded host at {path}: {exc}") from exc
    return url


OFFICE = "S37080000001"
BANK_COUNTERS = {"CCB": "B37080000CCB", "ICBC": "B3708000ICBC", "ABC": "B37080000ABC",
                 "BOC": "B37080000BOC"}
OPENING_BALANCE = 50000
"""Opening personal-account balance of each fixture holder (fen)."""
OPENING_DEPOSIT = 100000
"""Opening bank-account deposit of each fixture card (fen)."""


class _ImageRegistry:
    """The national ID check (seed rule C4) answered from the fixture cards' holders."""

    def __init__(self, people: dict[str, str]) -> None:
        self.people = people

    def check(self, certno: str, name: str) -> str | None:
        return None if self.people.get(certno.upper()) == name else \
            "not a holder of the fixture cards"


def register_fixture_holders(store: Any, cards: Path) -> bool:
    """Register the fixture cards' working copies at the new embedded host.

    The cards were personalised by the card side (``fixtures/cards/make_fixtures.py``), so
    the office registers each card under its own numbers — card number, card
    identification code, PAN — for its holder (8110, the C4 ID check answered by the card
    images), in the state the image records (CCB cards arrive activated, A3; the others
    are activated when their image says the PIN was changed at the bank, A4), and the
    accounts receive an opening balance and deposit (8109). No card image is written.

    Returns False (and registers nothing) when a card image in ``cards`` cannot be read.
    """
    from card.errors import CardError
    from card.image import load_card_image
    from ledger.client import HostClient, LocalTransport
    from ledger.service import HostService

    plan = []
    for path in sorted(cards.glob("*.json")):
        if path.stem.startswith("psam"):
            continue
        try:
            image = load_card_image(path)
        except (CardError, OSError):
            return False
        plan.append((dict(image.identity), image.activated))
    service = HostService(store, verifier=_ImageRegistry(
        {str(ident["ssn"]).upper(): str(ident["name"]) for ident, _ in plan}))
    office = HostClient(LocalTransport(service), fixmedins_code=OFFICE)
    banks: dict[str, Any] = {}
    try:
        for ident, activated in plan:
            birth = str(ident["birth_date"])
            info = office.register_card(
                certno=str(ident["ssn"]), psn_name=str(ident["name"]), gend=str(ident["sex"]),
                brdy=f"{birth[:4]}-{birth[4:6]}-{birth[6:]}", bank=str(ident["bank"]),
                naty=str(ident.get("ethnicity") or "01"),
                insuplc_admdvs=str(ident["area_code"]), card_no=str(ident["card_number"]),
                card_sn=str(ident["card_id_code"]), pan=str(ident["pan"]),
                pan_seq=f"{int(str(ident.get('psn') or 1)):02d}",
                generation=str(ident["generation"]), algorithm=str(ident["algorithm"]),
                card_stas="activated" if activated else "issued")["cardinfo"]
            bank_code = BANK_COUNTERS[str(ident["bank"])]
            if bank_code not in banks:
                banks[bank_code] = HostClient(LocalTransport(service), fixmedins_code=bank_code)
            office.credit(str(info["psn_no"]), OPENING_BALANCE)
            banks[bank_code].credit(str(info["psn_no"]), OPENING_DEPOSIT, "bank",
                                    card_no=str(info["card_no"]))
    finally:
        for client in (office, *banks.values()):
            client.close()
    return True


def connect_host(url: str, institution: tuple[str, str], *,
                 terminal_id: str = TERMINAL_ID) -> Any:
    from terminal.core.adapters import LedgerHost
    from terminal.core.ports import HostError

    code, name = institution
    try:
        return LedgerHost.connect(url, institution_code=code, institution_name=name,
                                  terminal_id=terminal_id)
    except HostError as exc:
        raise CliError(f"the host at {url} is unreachable or refused the sign-in "
                       f"({exc.message}); start it (`sscard host serve`) or choose another "
                       "with --host") from exc


class FixtureDrawer:
    """The card drawer of the in-process virtual reader: the fixture cards in the data
    directory, one at a time in ``Virtual Card 0`` (:class:`terminal.core.workbench.CardDrawer`)."""

    def __init__(self, transport: Any, cards: Path, reader: str) -> None:
        self.transport = transport
        self.cards = cards
        self.reader = reader
        self.inserted: str | None = None
        self._lock = threading.Lock()

    def names(self) -> tuple[str, ...]:
        return tuple(p.stem for p in sorted(self.cards.glob("*.json"))
                     if not p.stem.startswith("psam"))

    def state(self) -> Any:
        from terminal.core.workbench import DrawerState

        return DrawerState(self.reader, self.names(), self.inserted)

    def insert(self, card: str) -> None:
        from card.cos import VirtualCard

        with self._lock:
            path = self.cards / f"{card}.json"
            if not path.exists():
                raise CliError(f"no fixture card {card!r}; choose one of "
                               f"{', '.join(self.names())}")
            self.transport.insert(VirtualCard.from_image(path, t0=True), self.reader)
            self.inserted = card

    def remove(self) -> None:
        with self._lock:
            self.transport.remove(self.reader)
            self.inserted = None


def build_stack(*, mode: str = "pharmacy", reader: str = VIRTUAL, host: str | None = None,
                data_dir: Path, clock: Callable[[], Any] | None = None,
                watch: bool = True, terminal_id: str = TERMINAL_ID) -> Stack:
    """Open the reader and the host and build the UI's :class:`TerminalServices`.

    ``reader`` is ``virtual`` (the in-process reader with a drawer of fixture cards) or any
    name :func:`terminal.core.readers.open_reader` understands (a PC/SC reader name,
    ``serial:…``, ``virtual:IMAGE``). ``terminal_id`` is this terminal's number at each
    institution it signs in as (its own msgid slot, ledger/client.py).
    """
    from reader.errors import ReaderError
    from reader.virtual import PSAM_READER, USER_READER, VirtualTransport
    from terminal.core.adapters import ImageCardIssuer, LedgerHost
    from terminal.core.cardio import ReaderCard
    from terminal.core.model import TerminalConfig
    from terminal.core.readers import load_psam, open_reader
    from terminal.core.workbench import Workbench
    from terminal.ui.app import TerminalServices

    cards = prepare_data_dir(data_dir)
    url = host or embedded_host(data_dir)
    stack = Stack(services=None, host_url=url)
    code, name = INSTITUTIONS[mode]
    try:
        drawer: FixtureDrawer | None = None
        psam_name: str | None = None
        try:
            if reader == VIRTUAL:
                transport: Any = VirtualTransport()
                reader_name, psam_name = USER_READER.format(n=0), PSAM_READER.format(n=0)
                transport.add_reader(reader_name)
                psam_image = next(iter(sorted(cards.glob("psam*.json"))), None)
                transport.add_reader(psam_name, load_psam(psam_image, t0=True)
                                     if psam_image else None)
                drawer = FixtureDrawer(transport, cards, reader_name)
            else:
                transport, reader_name = open_reader(reader, t0=True)
                if isinstance(transport, VirtualTransport):
                    psam_name = PSAM_READER.format(n=0)
        except ReaderError as exc:
            raise CliError(f"reader {reader!r}: {exc}") from exc
        stack.transport = transport
        psam_conn = None
        if psam_name is not None:
            try:
                psam_conn = transport.connect(psam_name, exclusive=False)
            except ReaderError:
                psam_conn = None  # no PSAM: the core says so when a card needs one
        if psam_conn is not None:
            stack.closers.append(psam_conn.disconnect)
        host_port = connect_host(url, (code, name), terminal_id=terminal_id)
        stack.closers.append(host_port.close)

        def present() -> bool:
            try:
                return any(r.card_present for r in transport.readers() if r.name == reader_name)
            except ReaderError:
                return False

        card_port = ReaderCard(lambda: transport.connect(reader_name, exclusive=False),
                               psam_conn, present)
        stack.closers.append(card_port.close)
        hosts: dict[str, Any] = {code: host_port}
        lock = threading.Lock()

        def host_at(other: str) -> Any:
            with lock:
                if other not in hosts:
                    from terminal.core.adapters import institution_name

                    port = LedgerHost.connect(url, institution_code=other,
                                              institution_name=institution_name(other, AREA),
                                              terminal_id=terminal_id)
                    hosts[other] = port
                    stack.closers.append(port.close)
                return hosts[other]

        workbench = Workbench([transport])
        stack.closers.append(workbench.close)
        services = TerminalServices(
            card=card_port,
            host=host_port,
            host_at=host_at,
            counters=COUNTERS if mode == "counter" else (),
            issuer=ImageCardIssuer([cards], out_dir=cards) if drawer is not None else None,
            catalogue=load_catalogue(AREA),
            config=TerminalConfig(institution_code=code, institution_name=name,
                                  area_code=AREA),
            workbench=workbench,
            drawer=drawer,
            card_events=transport.wait_for_event if watch else None,
            reader=reader_name,
            host_label=describe_host(url),
            data_dir=data_dir,
            notice=(NOT_ENROLLED_TEXT if host is None and (data_dir / NOT_ENROLLED).exists()
                    else ""),
        )
        if clock is not None:
            services = replace(services, clock=clock)
        stack.services = services
    except BaseException:
        stack.close()
        raise
    return stack


def describe_host(url: str) -> str:
    if url.startswith("sqlite:///"):
        return f"embedded {Path(url[len('sqlite:///'):]).name}"
    if url.startswith(("postgresql://", "postgres://")):
        return "PostgreSQL " + url.rsplit("@", 1)[-1]
    return url


def load_catalogue(area: str) -> Any:
    """The area catalogue the cart searches (:class:`terminal.core.adapters.PolicyCatalogue`:
    code, name, pinyin initials, class 甲/乙/丙, eligibility)."""
    from ledger.errors import HostError
    from terminal.core.adapters import PolicyCatalogue

    try:
        return PolicyCatalogue.load(area, POLICY_DIR)
    except HostError as exc:
        raise CliError(f"cannot load the catalogue of area {area}: {exc}; check "
                       f"{POLICY_DIR / (area + '.toml')}") from exc

"""``sscard card serve``: put a virtual card in a reader every PC/SC program sees.

Over vpcd (default): the card connects to pcscd's vpcd driver (spec/pcsc-lab.md), slot 0 =
``Virtual PCD 00 00`` on 127.0.0.1:35963, slot 1 = ``Virtual PCD 00 01`` on 35964. Several
FILEs are served on consecutive slots. Over a serial line (``--serial URL``) the card
answers as a card in a serial reader (:mod:`reader.serial_device`).

While serving, lines on standard input control the card: ``remove [N]``, ``insert [N]``,
``status``, ``quit``. Ctrl-C (or SIGTERM) removes the cards cleanly and exits.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any

from apdu.iface import CardLike
from reader.echo import EchoCard
from reader.trace import TracedCard, TraceWriter
from reader.vpcd import VpcdServer, parse_endpoint
from terminal.cli import CliError
from terminal.cli.args import check_output, count, seconds

FMT = argparse.RawDescriptionHelpFormatter

EPILOG = """examples:
  sscard card serve fixtures/cards/zhang-san.json            card in 'Virtual PCD 00 00'
  sscard card serve a.json b.json                            two cards, slots 0 and 1
  sscard card serve fixtures/cards/psam-370800.json --slot 1 a PSAM in 'Virtual PCD 00 01'
  sscard card serve card.json --vpcd 10.0.0.5:35963          vpcd of another machine
  sscard card serve --echo                                   the echo card (benchmarks)
  sscard card serve --replay fixtures/reader/wang-wu-read.trace   a card simulated by a trace
  sscard card serve card.json --serial rfc2217://0.0.0.0:7000
  then: pcsc_scan · opensc-tool -r 0 -a · scriptor -r 'Virtual PCD 00 00' · sscard read

while serving, type on standard input: remove [N] | insert [N] | status | quit
"""


def register(card_subparsers: Any) -> None:
    p = card_subparsers.add_parser(
        "serve", help="serve a card image to pcscd (vpcd) or on a serial line",
        description="Serve virtual card images so that every PC/SC program on the machine "
                    "sees them: each card connects to pcscd's vpcd driver (the card is "
                    "inserted while connected). The card image file is the card: PIN "
                    "counters and writes are saved to it.",
        epilog=EPILOG, formatter_class=FMT)
    p.add_argument("files", nargs="*", metavar="FILE",
                   help="card or PSAM image(s) (JSON/TOML); several go to consecutive slots")
    p.add_argument("--vpcd", nargs="?", const="", default=None, metavar="HOST:PORT",
                   help="vpcd endpoint of slot 0 (default 127.0.0.1:35963)")
    p.add_argument("--slot", type=count(0), default=0,
                   help="first vpcd slot (port offset, default 0)")
    p.add_argument("--serial", metavar="URL", help="serve on a serial line instead "
                   "(rfc2217://HOST:PORT or pty)")
    p.add_argument("--echo", action="store_true", help="serve the minimal echo card")
    p.add_argument("--replay", type=Path, metavar="TRACE",
                   help="serve a simulated card answering from a recorded trace")
    p.add_argument("--remove-after", type=seconds(), metavar="S",
                   help="remove the card(s) after S seconds (more than 0) and exit")
    p.add_argument("--insert-after", type=seconds(zero=True), default=0.0, metavar="S",
                   help="wait S seconds before inserting (default 0: at once)")
    p.add_argument("--trace", type=Path, metavar="FILE",
                   help="record the card-side APDU trace (PINs masked)")
    p.add_argument("--force", action="store_true", help="overwrite an existing --trace file")
    p.add_argument("--no-quickack", action="store_true",
                   help="do not set TCP_QUICKACK (shows vpcd's 44 ms delayed-ACK trap)")
    p.add_argument("--quiet", action="store_true", help="print only errors")
    p.set_defaults(func=cmd_serve)


def load_served(path: Path) -> tuple[CardLike, str]:
    """A card or PSAM image (JSON or TOML) as a T=0 card object (vpcd does no T=0 work) and
    a label."""
    from card.errors import CardError
    from card.image import read_document

    if not path.exists():
        raise CliError(f"{path} does not exist; give a card image "
                       "(e.g. fixtures/cards/zhang-san.json)")
    try:
        head = read_document(path)
        if head.get("format") == "sscard-psam":
            from card.psam import VirtualPsam

            return VirtualPsam.from_image(path, t0=True), f"PSAM {path.name}"
        from card.cos import VirtualCard

        card = VirtualCard.from_image(path, t0=True)
        ident = card.image.identity
        return card, f"{ident.get('name', path.name)} {ident.get('card_number', '')}".strip()
    except CardError as exc:
        raise CliError(f"{path}: {exc}") from None
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror or exc}") from None


def _say(args: argparse.Namespace, text: str) -> None:
    if not args.quiet:
        print(text, flush=True)


def _check_distinct(files: list[str]) -> None:
    """Refuse an image named twice (two emulations would write one file)."""
    seen: list[Path] = []
    for name in files:
        path = Path(name)
        for other in seen:
            same = os.path.realpath(path) == os.path.realpath(other)
            with contextlib.suppress(OSError):
                same = same or path.samefile(other)
            if same:
                raise CliError(f"{other} and {path} are the same card image: serve each image "
                               "once (two slots would write one file)")
        seen.append(path)


def _check_trace(args: argparse.Namespace) -> None:
    """Refuse a ``--trace`` that would overwrite a served image, its area PSAM, the
    ``--replay`` trace, another existing file (without ``--force``) or a non-file."""
    if args.trace is None:
        return
    from terminal.core.readers import image_files

    inputs: list[Path | None] = [args.replay]
    for name in args.files:
        inputs += image_files(f"virtual:{name}")
    check_output(args.trace, force=args.force, inputs=inputs, option="--trace")


def cmd_serve(args: argparse.Namespace) -> int:
    _check_distinct(args.files)
    cards: list[tuple[CardLike, str]] = []
    if args.echo:
        cards.append((EchoCard(), "echo card"))
    if args.replay:
        from reader.trace import TraceFormatError, TraceReplayCard

        try:
            cards.append((TraceReplayCard.from_file(args.replay), f"trace {args.replay.name}"))
        except TraceFormatError as exc:
            raise CliError(f"{exc}") from None
    cards += [load_served(Path(f)) for f in args.files]
    if not cards:
        raise CliError("nothing to serve: give a card image FILE (or --echo, --replay TRACE)")
    _check_trace(args)
    if args.serial:
        if args.vpcd is not None:
            raise CliError("choose --vpcd or --serial, not both")
        if len(cards) != 1:
            raise CliError("a serial line carries one card; give one FILE")
        return _serve_serial(args, cards[0])
    return _serve_vpcd(args, cards)


def _open_trace(path: Path | None) -> TraceWriter | None:
    if path is None:
        return None
    try:
        return TraceWriter(path)
    except OSError as exc:
        raise CliError(f"cannot write the trace {path}: {exc.strerror or exc}") from None


def _serve_serial(args: argparse.Namespace, served: tuple[CardLike, str]) -> int:
    try:
        from reader import serial_device
    except ImportError:
        raise CliError("serial serving is not available in this installation") from None
    stop = threading.Event()
    card, label = served
    writer = _open_trace(args.trace)
    if writer is not None:
        card = TracedCard(card, [writer], name=args.serial)
    if args.remove_after:
        _after(args.remove_after, stop)
    try:
        serial_device.serve(card, args.serial, stop,
                            on_ready=lambda where: _say(args, f"serving {label} on {where}"))
    except KeyboardInterrupt:
        stop.set()
    except (ValueError, OSError) as exc:
        raise CliError(f"cannot serve on {args.serial}: {exc}") from None
    finally:
        if writer is not None:
            writer.close()
    _say(args, "card removed")
    return 0


def _serve_vpcd(args: argparse.Namespace, cards: list[tuple[CardLike, str]]) -> int:
    host, port = _endpoint(args.vpcd, args.slot)
    channels = {f"vpcd:{host}:{port + i}": f"slot{args.slot + i}" for i in range(1, len(cards))}
    writer = None
    if args.trace is not None:
        try:
            writer = TraceWriter(args.trace, channels=channels)
        except OSError as exc:
            raise CliError(f"cannot write the trace {args.trace}: {exc.strerror or exc}"
                           ) from None
    servers = []
    for i, (card, label) in enumerate(cards):
        observers = [writer] if writer is not None else []
        server = VpcdServer(card, host, port + i, inserted=not args.insert_after,
                            quickack=not args.no_quickack, observers=observers)
        servers.append((server, label))
    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stop.set()

    with contextlib.suppress(ValueError):  # not in the main thread (tests)
        signal.signal(signal.SIGTERM, on_signal)
    try:
        for server, label in servers:
            server.start()
            slot = server.port - 35963
            where = f"Virtual PCD 00 {slot:02d}" if 0 <= slot < 100 else "vpcd"
            _say(args, f"serving {label} on vpcd {server.host}:{server.port} ({where})")
        if args.insert_after:
            if _wait(stop, args.insert_after):
                return 0
            for server, _ in servers:
                server.insert()
        _watch_connection(args, servers, stop)
        threading.Thread(target=_control, args=(args, servers, stop), daemon=True).start()
        deadline = time.monotonic() + args.remove_after if args.remove_after else None
        while not stop.wait(0.2):
            if deadline is not None and time.monotonic() >= deadline:
                break
    except KeyboardInterrupt:
        pass
    finally:
        for server, _ in servers:
            server.stop()
        if writer is not None:
            writer.close()
    never = [(server, label) for server, label in servers if not server.connections]
    if never:
        raise CliError("; ".join(
            f"{label} was never inserted ("
            f"{server.last_error or f'vpcd at {server.host}:{server.port} not reached'})"
            for server, label in never) + "; is pcscd running with vsmartcard-vpcd? "
            "(`sscard doctor`)")
    _say(args, "card removed" if len(servers) == 1 else "cards removed")
    return 0


def _wait(stop: threading.Event, delay: float) -> bool:
    """``stop.wait(delay)`` for any delay: waits longer than a lock can take are split."""
    deadline = time.monotonic() + delay
    while (left := deadline - time.monotonic()) > 0:
        if stop.wait(min(left, threading.TIMEOUT_MAX, 3600.0)):
            return True
    return stop.is_set()


def _after(delay: float, stop: threading.Event) -> None:
    """Set ``stop`` after ``delay`` seconds from a daemon thread (it never outlives the
    command, and no delay makes it fail)."""
    def fire() -> None:
        _wait(stop, delay)
        stop.set()

    threading.Thread(target=fire, daemon=True).start()


def _endpoint(text: str | None, slot: int) -> tuple[str, int]:
    """The vpcd ``(host, port)`` of ``--vpcd`` and ``--slot``; a malformed address or a host
    name that does not resolve is a :class:`CliError` at once, not an endless retry."""
    try:
        host, port = parse_endpoint(text, slot)
    except ValueError as exc:
        raise CliError(f"--vpcd: {exc}") from None
    try:
        socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise CliError(f"--vpcd {text}: cannot resolve the host {host!r} ({reason}); "
                       "give HOST:PORT, e.g. 127.0.0.1:35963") from None
    return host, port


def _watch_connection(args: argparse.Namespace, servers: list[tuple[VpcdServer, str]],
                      stop: threading.Event) -> None:
    """Tell the user when vpcd cannot be reached (pcscd down); keep retrying meanwhile."""

    def watch() -> None:
        warned = False
        while not stop.wait(2.0):
            still = [s for s, _ in servers if s.inserted and not s.connected]
            if still and not warned:
                print(f"waiting for vpcd at {still[0].host}:{still[0].port} "
                      f"({still[0].last_error or 'no answer'}); is pcscd running with "
                      "vsmartcard-vpcd? (`sscard doctor`) — retrying", file=sys.stderr,
                      flush=True)
                warned = True
            elif not still and warned:
                _say(args, "vpcd reached: card inserted")
                warned = False

    threading.Thread(target=watch, daemon=True).start()


def _control(args: argparse.Namespace, servers: list[tuple[VpcdServer, str]],
             stop: threading.Event) -> None:
    """Commands on standard input: remove [N] | insert [N] | status | quit."""
    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        cmd, rest = words[0].lower(), words[1:]
        try:
            chosen = [servers[int(rest[0])]] if rest else servers
        except (ValueError, IndexError):
            print(f"no card {rest[0]!r}; cards 0..{len(servers) - 1}", file=sys.stderr)
            continue
        if cmd in ("remove", "r"):
            for server, label in chosen:
                server.remove()
                _say(args, f"removed {label}")
        elif cmd in ("insert", "i"):
            for server, label in chosen:
                card_insert = getattr(server.card, "insert", None)
                if callable(card_insert):
                    card_insert()  # a card pulled by fault injection goes back in too
                server.insert()
                _say(args, f"inserted {label}")
        elif cmd == "status":
            for server, label in chosen:
                state = "connected" if server.connected else (
                    "waiting for vpcd" if server.inserted else "removed")
                print(f"{label}: {state}, {server.apdus} APDUs", flush=True)
        elif cmd in ("quit", "q", "exit"):
            stop.set()
            return
        else:
            print("commands: remove [N] | insert [N] | status | quit", file=sys.stderr)

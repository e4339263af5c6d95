"""``sscard host``: the settlement host (spec/host.md): init, serve, populate, report,
terminal-key."""

from __future__ import annotations

import argparse
import errno
import re
import socket
import sys
import time
from datetime import datetime
from typing import Any

from terminal.cli import CliError
from terminal.cli.args import count, terminal_id

LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")

DB_HELP = "database URL: sqlite:///path/host.db (relative) or sqlite:////abs/host.db, " \
          "or postgresql://user@host:5432/db"


def _store(url: str, create: bool = False) -> Any:
    from ledger.errors import HostError
    from ledger.store import open_store
    try:
        return open_store(url, create=create)
    except HostError as exc:
        raise CliError(str(exc)) from None


def _init(args: argparse.Namespace) -> int:
    from ledger.errors import HostError
    from ledger.policy import load_policies
    from ledger.service import DEFAULT_POLICY_DIR, initialize
    try:   # a broken policy folder leaves the database as it was (not even created)
        load_policies(args.policies or DEFAULT_POLICY_DIR)
    except HostError as exc:
        raise CliError(str(exc)) from None
    store = _store(args.db, create=True)
    try:
        out = initialize(store, args.policies)
    except HostError as exc:
        raise CliError(str(exc)) from None
    finally:
        store.close()
    applied = ", ".join(str(v) for v in out["migrations"]) or "none (schema up to date)"
    print(f"host database {store.safe_url()} ready: migrations applied: {applied}; areas "
          f"{', '.join(out['areas'])}; {out['institutions']} institutions")
    return 0


def _serve(args: argparse.Namespace) -> int:
    from ledger.auth import TEST_SECRET, load_secret
    from ledger.errors import HostError
    from ledger.http import serve
    from ledger.store.base import safe_url
    host, port = listen_address(args.listen)
    try:
        secret = load_secret(args.secret_file)
        store = _store(args.db)
        try:
            store.require_schema()
            areas = store.run(lambda tx: tx.one("SELECT COUNT(*) FROM policies"))
        finally:
            store.close()
    except HostError as exc:
        raise CliError(str(exc)) from None
    if not areas or not int(areas[0]):
        raise CliError(f"database {safe_url(args.db)} has no area policies: run `sscard host "
                       f"init --db {safe_url(args.db)}`")
    if port == 0:
        raise CliError(f"--listen {args.listen}: port 0 would serve on a random port the "
                       "terminals cannot know; give a port, e.g. 127.0.0.1:8700")
    check_listen(host, port)
    if secret == TEST_SECRET:
        print("sscard host: using the TEST host secret (give --secret-file for real use)",
              file=sys.stderr)
    procs = f", {args.workers} processes" if args.workers > 1 else ""
    print(f"sscard host serving {safe_url(args.db)} on http://{host}:{port}"
          f"/fsi/api/rsfComIfsService/callService{procs} (Ctrl-C to stop)", file=sys.stderr)
    serve(args.db, host, port, secret=secret, log_level=args.log_level, workers=args.workers,
          secret_file=args.secret_file)
    return 0


def listen_address(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:PORT`` for IPv6) → (host, port), the port 0–65535."""
    host, _, port = text.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not host or not port.isdigit():
        raise CliError(f"--listen {text!r}: expected HOST:PORT, e.g. 127.0.0.1:8700")
    if int(port) > 65535:
        raise CliError(f"--listen {text!r}: port {port} is out of range: from 0 to 65535")
    return host, int(port)


def check_listen(host: str, port: int) -> None:
    """Refuse, before claiming to serve, an address this process cannot listen on (the port
    is taken, the host is not one of this machine's addresses)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
            s.bind((host, port))
    except OSError as exc:
        reason = exc.strerror or str(exc)
        hint = "; is another server using it? choose another --listen port" \
            if exc.errno == errno.EADDRINUSE else ""
        raise CliError(f"cannot listen on {host}:{port}: {reason}{hint}") from None


def _populate(args: argparse.Namespace) -> int:
    from ledger.errors import HostError
    from ledger.populate import populate
    store = _store(args.db)
    started = time.monotonic()

    def progress(done: int, total: int) -> None:
        width = 30
        filled = width * done // max(total, 1)
        rate = done / max(time.monotonic() - started, 1e-6)
        sys.stderr.write(f"\rpopulate [{'#' * filled}{'.' * (width - filled)}] "
                         f"{done}/{total} cards ({rate:,.0f}/s)")
        sys.stderr.flush()
    try:
        store.require_schema()
        out = populate(store, args.cards, area=args.area, batch=args.batch, progress=progress)
    except HostError as exc:
        raise CliError(str(exc)) from None
    finally:
        store.close()
    sys.stderr.write("\n")
    print(f"created {out['created']} synthetic holders ({out['total']} in all) in "
          f"{time.monotonic() - started:.1f} s")
    return 0


def _report(args: argparse.Namespace) -> int:
    from ledger.errors import HostError
    from ledger.report import day_report, format_report
    from ledger.service import now_cst
    day = args.date or now_cst().strftime("%Y-%m-%d")   # the host's business day (UTC+8)
    try:
        datetime.strptime(day, "%Y-%m-%d")
    except ValueError:
        raise CliError(f"--date {day!r}: expected YYYY-MM-DD") from None
    store = _store(args.db)
    try:
        store.require_schema()
        rows, problems = day_report(store, day)
    except HostError as exc:
        raise CliError(str(exc)) from None
    finally:
        store.close()
    print(format_report(day, rows, problems))
    return 1 if problems else 0


def _terminal_key(args: argparse.Namespace) -> int:
    from ledger.auth import load_secret, terminal_key
    from ledger.errors import HostError
    try:
        secret = load_secret(args.secret_file)
    except HostError as exc:
        raise CliError(str(exc)) from None
    if not re.fullmatch(r"[0-9A-Z]{12}", args.fixmedins_code):
        raise CliError(f"--fixmedins-code {args.fixmedins_code!r}: an institution code is 12 "
                       "capital letters or digits, e.g. P37080000001")
    paasid = f"{args.fixmedins_code}-{args.terminal_id}"
    print(f"{paasid} {terminal_key(secret, paasid).hex()}")
    return 0


def register(sub: Any) -> None:
    fmt = argparse.RawDescriptionHelpFormatter
    p = sub.add_parser("host", help="the settlement host: books, policy, card lifecycle",
                       description="The settlement host of spec/host.md: a double-entry "
                                   "ledger behind an NHSA-shaped interface.",
                       epilog="examples:\n  sscard host init --db sqlite:///var/host.db\n"
                              "  sscard host serve --db sqlite:///var/host.db "
                              "--listen 127.0.0.1:8700\n"
                              "  sscard host populate --db sqlite:///var/host.db --cards 10000\n"
                              "  sscard host report --db sqlite:///var/host.db",
                       formatter_class=fmt)
    hs = p.add_subparsers(dest="host_command", metavar="ACTION", title="actions")
    p.set_defaults(func=lambda a: (p.print_help(), 2)[1])

    q = hs.add_parser("init", help="create or migrate the database, load area policies",
                      description="Run the versioned schema migrations and load the area "
                                  "policies (catalogue, ratios, fees, banks, institutions), "
                                  "all in one transaction: a failure half way changes "
                                  "nothing. Safe to run again.",
                      epilog="example:\n  sscard host init --db sqlite:///var/host.db\n"
                             "  sscard host init --db postgresql://postgres@127.0.0.1/test",
                      formatter_class=fmt)
    q.add_argument("--db", required=True, help=DB_HELP)
    q.add_argument("--policies", default=None,
                   help="directory of area policy files (default: fixtures/policies)")
    q.set_defaults(func=_init)

    q = hs.add_parser("serve", help="serve POST /fsi/api/rsfComIfsService/callService",
                      description="Serve the JSON envelope interface over HTTP; requests must "
                                  "be signed with the terminal key (see terminal-key).",
                      epilog="example:\n  sscard host serve --db sqlite:///var/host.db "
                             "--listen 127.0.0.1:8700",
                      formatter_class=fmt)
    q.add_argument("--db", required=True, help=DB_HELP)
    q.add_argument("--listen", default="127.0.0.1:8700", help="HOST:PORT (default %(default)s)")
    q.add_argument("--secret-file", default=None,
                   help="host secret file (default: $SSCARD_HOST_SECRET_FILE or the TEST secret)")
    q.add_argument("--log-level", default="warning", choices=LOG_LEVELS,
                   help="uvicorn log level (default %(default)s)")
    q.add_argument("--workers", type=count(1, 64), default=1, metavar="N",
                   help="server processes sharing the port (default 1): on PostgreSQL about "
                        "one per core; on SQLite, writes take turns on the file anyway")
    q.set_defaults(func=_serve)

    q = hs.add_parser("populate", help="create N synthetic card holders",
                      description="Create deterministic synthetic holders (person, activated "
                                  "card, accounts with opening balances), with progress.",
                      epilog="example:\n  sscard host populate --db sqlite:///var/host.db "
                             "--cards 4000000",
                      formatter_class=fmt)
    q.add_argument("--db", required=True, help=DB_HELP)
    q.add_argument("--cards", type=count(1, 4_000_000), required=True,
                   help="how many (1 to 4000000)")
    q.add_argument("--area", default="370800", help="insured area (default %(default)s)")
    q.add_argument("--batch", type=count(1), default=20000,
                   help="holders per transaction (default %(default)s)")
    q.set_defaults(func=_populate)

    q = hs.add_parser("report", help="the day's totals per institution and reconciliation",
                      description="Print the day's settlements per institution and whether "
                                  "each institution's 3201 reconciliation matched.",
                      epilog="example:\n  sscard host report --db sqlite:///var/host.db "
                             "--date 2026-11-28",
                      formatter_class=fmt)
    q.add_argument("--db", required=True, help=DB_HELP)
    q.add_argument("--date", default=None,
                   help="YYYY-MM-DD (default: today at the host, China Standard Time)")
    q.set_defaults(func=_report)

    q = hs.add_parser("terminal-key", help="print a terminal's signing key (provisioning)",
                      description="Derive the signing key of one terminal from the host "
                                  "secret; give it to that terminal once.",
                      epilog="example:\n  sscard host terminal-key --fixmedins-code "
                             "P37080000001 --terminal-id 01",
                      formatter_class=fmt)
    q.add_argument("--fixmedins-code", required=True,
                   help="institution code, 12 capital letters or digits")
    q.add_argument("--terminal-id", type=terminal_id, default="01",
                   help="terminal number 00–99 (default %(default)s)")
    q.add_argument("--secret-file", default=None)
    q.set_defaults(func=_terminal_key)

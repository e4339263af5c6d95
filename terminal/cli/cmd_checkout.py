"""``sscard checkout``, ``sscard admit``, ``sscard discharge``: the counter flows without a UI.

Each command opens the card in ``--reader`` (``virtual:<image>``, a PC/SC reader name…) and
the host at ``--host`` (``sqlite:///…``, ``postgresql://…`` or ``http://…``), runs one
flow of :mod:`terminal.core` to its end, prints the slip (or ``--json``), and exits
non-zero with the reason on any failure. The PIN is asked on the terminal without echo, or
read one per line from standard input with ``--pin-from-stdin`` (a wrong PIN reads the
next line; end of input cancels the PIN entry). A card whose bank application has its own
PIN (spec/card.md §1) is asked for it after the PIN, as a second prompt or the next line.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import re
import sys
import unicodedata
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from terminal.cli import CliError
from terminal.cli.args import check_output, seconds, terminal_id

FMT = argparse.RawDescriptionHelpFormatter
HOST_HELP = "host URL: sqlite:///path/host.db, postgresql://…, or http://127.0.0.1:8700"
READER_HELP = "reader: virtual:fixtures/cards/zhang-san.json, or a PC/SC reader name"
MAX_QTY = 999_999_999
"""The largest quantity of a fee line the host takes (spec/host.md: ``cnt``)."""


def parse_item(text: str) -> tuple[str, int]:
    """``CODE[:QTY]`` → (code, qty); QTY a whole number 1…999999999."""
    code, colon, qty = text.partition(":")
    if not code:
        raise argparse.ArgumentTypeError(f"bad item {text!r}: use CODE or CODE:QTY")
    if colon and not qty.strip():
        raise argparse.ArgumentTypeError(f"bad item {text!r}: no quantity after the colon; "
                                         "use CODE or CODE:QTY")
    try:
        n = int(qty) if colon else 1
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad quantity in {text!r}: a whole number") from None
    if n <= 0:
        raise argparse.ArgumentTypeError(f"bad quantity in {text!r}: must be positive")
    if n > MAX_QTY:
        raise argparse.ArgumentTypeError(f"bad quantity in {text!r}: at most {MAX_QTY}")
    return code, n


def plain_text(name: str, *, blank: bool = True, longest: int = 100) -> Callable[[str], str]:
    """One line of plain text (``name`` says what it is in the error): no control
    characters (newline, ESC…), at most ``longest`` characters, not blank unless ``blank``;
    surrounding spaces are dropped."""
    def parse(value: str) -> str:
        bad = next((c for c in value if unicodedata.category(c) in ("Cc", "Zl", "Zp")), None)
        if bad is not None:
            raise argparse.ArgumentTypeError(
                f"{name} contains a control character (U+{ord(bad):04X}): use one line of "
                "plain text")
        value = value.strip()
        if not blank and not value:
            raise argparse.ArgumentTypeError(f"{name} must not be empty")
        if len(value) > longest:
            raise argparse.ArgumentTypeError(f"{name} is too long: at most {longest} "
                                             "characters")
        return value
    return parse


def institution_code(text: str) -> str:
    """An institution code (fixmedins_code): 12 capital letters or digits, the 2nd to 7th
    the 6-digit area code (the envelope's ``mdtrtarea_admvs``)."""
    if not re.fullmatch(r"[0-9A-Z][0-9]{6}[0-9A-Z]{5}", text):
        raise argparse.ArgumentTypeError(
            f"{text!r}: an institution code is 12 capital letters or digits, the 2nd to 7th "
            "its area code, e.g. P37080000001")
    return text


def _common(p: argparse.ArgumentParser, institution: str) -> None:
    p.add_argument("--reader", required=True, help=READER_HELP)
    p.add_argument("--psam", default=None,
                   help="PSAM: virtual:<psam image> or a PC/SC reader name (default: the "
                        "fixture PSAM of area 370800, in memory)")
    p.add_argument("--host", required=True, help=HOST_HELP)
    p.add_argument("--institution", type=institution_code, default=institution,
                   help="institution code (fixmedins_code, default %(default)s)")
    p.add_argument("--terminal-id", type=terminal_id, default="01",
                   help="terminal number at the institution, 00–99 (HTTP signing and "
                        "message ids, default %(default)s)")
    p.add_argument("--key", default=None, help="terminal signing key (hex) for an HTTP host "
                   "(default: derived from the TEST host secret)")
    p.add_argument("--operator", type=plain_text("--operator", blank=False), default="0001",
                   help="operator number (default %(default)s)")
    p.add_argument("--timeout", type=seconds(), default=10.0,
                   help="host timeout in seconds (default %(default)s)")
    p.add_argument("--json", action="store_true", help="machine-readable output")


def _pin_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--pay", default="account",
                   choices=["account", "bank", "cash", "account+bank"],
                   help="account: personal account then cash; bank: all from the card's bank "
                        "account; cash: all cash; account+bank: account then bank "
                        "(default %(default)s)")
    p.add_argument("--pin-from-stdin", action="store_true",
                   help="read the PIN from standard input, one per line (for scripts); a "
                        "card with a separate bank PIN reads it from the following line")
    p.add_argument("--bank-fallback", choices=["cancel", "cash"], default="cancel",
                   help="when the bank part is refused: cancel the sale or take cash "
                        "(default %(default)s)")


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "checkout", help="run a whole pharmacy sale without the UI",
        description="A pharmacy sale (seed rules U1, U4, U5, C2, C3): read and authenticate "
                    "the card, look the person up (1101), trial settlement (2101), PIN, "
                    "settlement (2102), the record on the card, the slip. Exits non-zero with "
                    "the reason on any failure; nothing is left half-paid.",
        epilog="examples:\n"
               "  sscard checkout --reader virtual:card.json --host sqlite:///host.db \\\n"
               "      --item XJ01CAA040A001010101445:2 --item XN02BEA010A001010101581\n"
               "  echo 246810 | sscard checkout --reader virtual:card.json \\\n"
               "      --host http://127.0.0.1:8700 --item XJ01CAA040A001010101445 \\\n"
               "      --pay bank --pin-from-stdin --json\n",
        formatter_class=FMT)
    _common(p, "P37080000001")
    p.add_argument("--item", dest="items", action="append", type=parse_item, required=True,
                   metavar="CODE[:QTY]", help="catalogue item (repeat for more)")
    _pin_args(p)
    p.add_argument("--width", type=int, choices=[32, 48], default=32,
                   help="slip width: 32 columns (58 mm) or 48 (80 mm)")
    p.add_argument("--area", default="370800", help="catalogue area (default %(default)s)")
    p.set_defaults(func=run_checkout_cmd)

    p = subparsers.add_parser(
        "admit", help="register a hospital admission with the card",
        description="Hospital admission (seed rule U2): read and authenticate the card, show "
                    "the holder's identity (name, sex, ID number, birth date, photo) for the "
                    "clerk to compare with the patient, register the admission (2401).",
        epilog="examples:\n"
               "  sscard admit --reader virtual:card.json --host sqlite:///host.db "
               "--dept 内科\n"
               "  sscard admit --reader virtual:card.json --host sqlite:///host.db --yes "
               "--photo-out photo.jpg --json\n",
        formatter_class=FMT)
    _common(p, "H37080000001")
    p.add_argument("--dept", type=plain_text("--dept", blank=False), default="内科",
                   help="department name (default %(default)s)")
    p.add_argument("--ipt-no", type=plain_text("--ipt-no"), default="",
                   help="the hospital's admission number")
    p.add_argument("--diagnosis", type=plain_text("--diagnosis"), default="",
                   help="admission diagnosis")
    p.add_argument("--yes", action="store_true",
                   help="the clerk has compared the patient with the card (no question)")
    p.add_argument("--photo-out", type=Path, default=None, metavar="FILE",
                   help="save the card's photo to this file (a new file, see --force)")
    p.add_argument("--force", action="store_true",
                   help="let --photo-out replace an existing file")
    p.set_defaults(func=run_admit_cmd)

    p = subparsers.add_parser(
        "discharge", help="settle an inpatient stay and discharge",
        description="Discharge settlement (seed rule U3): upload the fee details (2301), "
                    "trial settlement with the pooled fund (2303), the patient's choice for "
                    "the self-pay part (account, bank account or cash), discharge (2402), "
                    "settlement (2304), the slip.",
        epilog="examples:\n"
               "  sscard discharge --reader virtual:card.json --host sqlite:///host.db \\\n"
               "      --mdtrt-id M… --item XJ01CAA040A001010101445:10 --pay account\n",
        formatter_class=FMT)
    _common(p, "H37080000001")
    p.add_argument("--mdtrt-id", required=True, help="the stay's id from the admission")
    p.add_argument("--item", dest="items", action="append", type=parse_item, default=[],
                   metavar="CODE[:QTY]", help="fee line (repeat for more)")
    p.add_argument("--no-upload", action="store_true",
                   help="the fee lines were already uploaded by the hospital system")
    _pin_args(p)
    p.add_argument("--width", type=int, choices=[32, 48], default=32, help="slip width")
    p.add_argument("--area", default="370800", help="catalogue area (default %(default)s)")
    p.set_defaults(func=run_discharge_cmd)


# --------------------------------------------------------------------------- helpers


def database_files(url: str | None) -> list[Path]:
    """The files of a ``sqlite:///`` database (with its journal, WAL and shared-memory
    files); none for other databases."""
    from ledger.store.base import database_file

    db = database_file(url) if url else None
    if db is None:
        return []
    return [db, *(db.with_name(db.name + end) for end in ("-journal", "-wal", "-shm"))]


def _inputs(args: argparse.Namespace) -> list[Path]:
    """The files the command uses: the card and PSAM images of ``virtual:`` readers (the
    area PSAM beside the card included; the PSAM from $SSCARD_PSAM when --psam is not
    given) and a SQLite host's database; an output option must never name one of them."""
    from terminal.core import readers as R

    psam = args.psam if args.psam is not None else os.environ.get(R.ENV_PSAM)
    return [*R.image_files(args.reader or os.environ.get(R.ENV_READER), psam),
            *database_files(args.host)]


def pin_source(from_stdin: bool, *, label: str = "PIN",
               lines: Iterator[str] | None = None) -> Callable[[int | None], str | None]:
    """Ask for the PIN (``label``) without echo, or read it from standard input, one per
    line (``lines``: an iterator over standard input shared with another source); never
    logged. Without a terminal to ask on, the command stops (nothing charged yet: the PIN
    comes before any settlement)."""
    source: Iterator[str] = iter(())
    if from_stdin:
        source = lines if lines is not None else iter(sys.stdin)

    def ask(tries: int | None) -> str | None:
        if from_stdin:
            line = next(source, None)
            return None if line is None else line.strip()
        if not sys.stdin.isatty():   # getpass would warn, then read the PIN with echo
            raise CliError("no terminal to type the PIN on: pipe it with --pin-from-stdin")
        hint = f" ({tries} tries left)" if tries is not None else ""
        try:
            return getpass.getpass(f"{label}{hint}: ", stream=sys.stderr)
        except EOFError:
            return None

    return ask


def pin_sources(from_stdin: bool) -> tuple[Callable[[int | None], str | None],
                                           Callable[[int | None], str | None]]:
    """The PIN source and the bank-PIN source of a separate-PIN card (spec/card.md §1): two
    prompts, or the next lines of the same standard input."""
    lines: Iterator[str] | None = iter(sys.stdin) if from_stdin else None
    return (pin_source(from_stdin, lines=lines),
            pin_source(from_stdin, label="bank PIN 银行密码", lines=lines))


def _open(stack: ExitStack, args: argparse.Namespace) -> tuple[Any, Any, Any]:
    from ledger.store.base import safe_url
    from terminal.core import adapters
    from terminal.core.model import TerminalConfig
    from terminal.core.ports import CardError, HostError

    try:
        name = adapters.institution_name(args.institution, getattr(args, "area", "370800"))
        host = adapters.LedgerHost.connect(
            args.host, institution_code=args.institution, institution_name=name,
            operator=args.operator, timeout=args.timeout, terminal_id=args.terminal_id,
            key=bytes.fromhex(args.key) if args.key else None)
    except HostError as exc:
        raise CliError(f"cannot use the host at {safe_url(args.host)}: {exc.message}") \
            from None
    except ValueError as exc:
        raise CliError(f"bad --key: {exc}") from None
    stack.callback(host.close)
    try:
        card = stack.enter_context(adapters.open_card(args.reader, psam=args.psam))
    except CardError as exc:
        raise CliError(f"cannot open the card in {args.reader}: {exc.message}") from None
    config = TerminalConfig(institution_code=args.institution, institution_name=name,
                            area_code=getattr(args, "area", "370800"),
                            operator=args.operator, slip_width=getattr(args, "width", 32))
    return card, host, config


def _finish(flow: Any, args: argparse.Namespace, extra: dict[str, Any] | None = None) -> int:
    from terminal.core.slip import render

    ok = flow.state.name == "DONE"
    if args.json:
        out: dict[str, Any] = {"ok": ok, "state": flow.state.value, "message": flow.message}
        if flow.failure is not None:
            out["failure"] = flow.failure.to_dict()
        result = getattr(flow, "result", None)
        if result is not None:
            out["result"] = result.to_dict()
            if hasattr(result, "slip"):
                out["slip"] = render(result.slip, args.width)
        out.update(extra or {})
        print(json.dumps(out, ensure_ascii=False, indent=2))
        if not ok:
            return 1
        return 0
    if not ok:
        reason = flow.failure.message if flow.failure is not None else flow.message
        raise CliError(f"{flow.name} stopped ({flow.state.value}): {reason}")
    result = getattr(flow, "result", None)
    if result is not None and hasattr(result, "slip"):
        sys.stdout.write(render(result.slip, args.width))
    return 0


def _progress(args: argparse.Namespace) -> Callable[[Any], None]:
    def show(event: Any) -> None:
        if not args.json and event.message:
            print(f"[{event.state.value}] {event.message}", file=sys.stderr)

    return show


# --------------------------------------------------------------------------- commands


def run_checkout_cmd(args: argparse.Namespace) -> int:
    from terminal.core.adapters import PolicyCatalogue
    from terminal.core.checkout import Checkout, run_checkout
    from terminal.core.model import PayChoice

    catalogue = PolicyCatalogue.load(args.area)
    for code, _ in args.items:
        if code not in catalogue.items:
            raise CliError(f"item {code} is not in the catalogue of area {args.area}: check "
                           "the code (see fixtures/policies)")
    with ExitStack() as stack:
        card, host, config = _open(stack, args)
        flow = Checkout(card, host, catalogue, config, pay=PayChoice.parse(args.pay))
        flow.subscribe(_progress(args))
        pin, bank_pin = pin_sources(args.pin_from_stdin)
        run_checkout(flow, list(args.items), pin, bank_fallback=args.bank_fallback,
                     bank_pin=bank_pin)
        if flow.state.name == "CARD_PULLED":
            flow.message += " (run again with the card in the reader to finish)"
        return _finish(flow, args)


def run_admit_cmd(args: argparse.Namespace) -> int:
    from terminal.core.admission import Admission, AdmissionData, AdmissionState

    if args.photo_out is not None:   # before the admission: never over an input
        check_output(args.photo_out, force=args.force, inputs=_inputs(args),
                     option="--photo-out")
    with ExitStack() as stack:
        card, host, config = _open(stack, args)
        flow = Admission(card, host, config)
        flow.subscribe(_progress(args))
        flow.run_until_input()
        extra: dict[str, Any] = {}
        if flow.state is AdmissionState.COMPARE and flow.identity is not None:
            ident = flow.identity
            saved = bool(args.photo_out and ident.photo)
            if saved:
                args.photo_out.write_bytes(ident.photo)
            shown = {"name": ident.name, "sex": ident.sex.label, "id_number": ident.ssn,
                     "birth_date": ident.birth_date.isoformat() if ident.birth_date else "",
                     "photo": f"{ident.photo_kind} {len(ident.photo)} bytes"
                     + (f" saved to {args.photo_out}" if saved else "")}
            extra["identity"] = shown
            accept = args.yes
            if not args.json:
                for k, v in shown.items():
                    print(f"{k:>10}: {v}", file=sys.stderr)
            if not accept:
                if args.json or not sys.stdin.isatty():
                    raise CliError("compare the patient with the card, then run again with "
                                   "--yes")
                answer = input("Does the patient match the card? [y/N] ")
                accept = answer.strip().lower() in ("y", "yes")
            if accept:
                flow.confirm(AdmissionData(dept_name=args.dept, ipt_no=args.ipt_no,
                                           diag_name=args.diagnosis))
            else:
                flow.reject()
            flow.run_until_input()
        if flow.state is AdmissionState.DONE and not args.json and flow.result is not None:
            print(f"admitted: mdtrt_id {flow.result.mdtrt_id}")
        return _finish(flow, args, extra)


def run_discharge_cmd(args: argparse.Namespace) -> int:
    from terminal.core.adapters import PolicyCatalogue
    from terminal.core.discharge import Discharge, DischargeData, run_discharge
    from terminal.core.model import CartLine, PayChoice
    from terminal.core.ports import UnknownItem

    catalogue = PolicyCatalogue.load(args.area)
    try:
        fees = [CartLine(catalogue.lookup(code), qty) for code, qty in args.items]
    except UnknownItem as exc:
        raise CliError(f"item {exc.args[0]} is not in the catalogue of area {args.area}") \
            from None
    if not fees:
        raise CliError("give the stay's fee lines with --item CODE:QTY (the settlement total "
                       "is their sum)")
    with ExitStack() as stack:
        card, host, config = _open(stack, args)
        flow = Discharge(card, host, DischargeData(args.mdtrt_id, upload_fees=not args.no_upload),
                         fees, config)
        flow.subscribe(_progress(args))
        pin, bank_pin = pin_sources(args.pin_from_stdin)
        run_discharge(flow, PayChoice.parse(args.pay), pin, bank_fallback=args.bank_fallback,
                      bank_pin=bank_pin)
        return _finish(flow, args)

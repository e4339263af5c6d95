"""Reader commands: ``readers``, ``read``, ``apdu``, ``pin``, ``watch``, ``doctor``.

Reader names (``--reader``): a PC/SC name as pcscd gives it (a unique part is enough),
``virtual:CARD.json`` for an in-process card image, ``serial:URL`` for a serial reader
(:mod:`terminal.core.readers`). PINs are typed without echo (read from standard input when
it is not a terminal) and never accepted on the command line.
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import json
import os
import shutil
import socket
import string
import sys
import time
import warnings
from pathlib import Path
from typing import Any, TextIO

from apdu.command import CommandApdu
from apdu.commands import command_name, may_carry_pin
from apdu.errors import ApduError
from apdu.sw import describe
from reader.base import CardEvent, Connection
from reader.errors import ReaderError
from reader.monitor import ReaderMonitor
from reader.trace import TraceWriter, mask_command
from terminal.cli import CliError
from terminal.cli.args import check_output, count, seconds
from terminal.core import readers as R

FMT = argparse.RawDescriptionHelpFormatter
READER_HELP = ("reader: a PC/SC name (or a unique part of it), virtual:CARD.json, or "
               "serial:URL (default: $SSCARD_READER, else the first PC/SC reader with a card)")
PSAM_HELP = ("PSAM: a PC/SC reader holding one, virtual:PSAM.json, or 'none' (default for "
             "virtual: readers: the area PSAM; elsewhere $SSCARD_PSAM or none)")


def _reader_args(p: argparse.ArgumentParser, psam: bool = True) -> None:
    p.add_argument("--reader", "-r", metavar="R", help=READER_HELP)
    if psam:
        p.add_argument("--psam", metavar="P", help=PSAM_HELP)
    p.add_argument("--trace", type=Path, metavar="FILE",
                   help="record the APDU trace to FILE (PIN data masked)")
    p.add_argument("--force", action="store_true",
                   help="overwrite an existing output FILE (never the card or PSAM image)")


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "readers", help="list readers, their state and the ATR of their card",
        description="Every PC/SC reader pcscd knows (vpcd slots included) with its state "
                    "and the ATR of the card in it.",
        epilog="examples:\n  sscard readers\n  sscard readers --json\n"
               "  sscard readers --reader virtual:fixtures/cards/zhang-san.json\n",
        formatter_class=FMT)
    p.add_argument("--reader", "-r", metavar="R",
                   help="list this reader's transport instead of PC/SC (e.g. virtual:CARD.json)")
    p.add_argument("--json", action="store_true", help="JSON output")
    p.set_defaults(func=cmd_readers)

    p = subparsers.add_parser(
        "read", help="read the card basics (iReadCardBas)",
        description="Read the card as the national reader interface's iReadCardBas does "
                    "(spec/card.md §10): SELECT SSSE, EF05, internal authentication checked "
                    "by the PSAM, EF06. Prints the 11-field '|' line, or JSON.",
        epilog="examples:\n  sscard read --reader virtual:fixtures/cards/zhang-san.json\n"
               "  sscard read --reader 'Virtual PCD 00 00' --psam 'Virtual PCD 00 01' --json\n",
        formatter_class=FMT)
    _reader_args(p)
    p.add_argument("--json", action="store_true", help="JSON output")
    p.add_argument("--holder", action="store_true", help="also read the holder file (EF06)")
    p.add_argument("--photo", type=Path, metavar="FILE", help="save the holder photo to FILE")
    p.add_argument("--device", default="", help="terminal device number (last field)")
    p.set_defaults(func=cmd_read)

    p = subparsers.add_parser(
        "apdu", help="send APDUs to a card and show the answers",
        description="Send command APDUs (hex) or a scriptor-style script (hex APDU lines, "
                    "'reset', '#' comments) and print each command's name, the response and "
                    "the meaning of its status word. T=0 GET RESPONSE is done for you "
                    "unless --raw.",
        epilog="examples:\n  sscard apdu -r virtual:fixtures/cards/zhang-san.json "
               "00A404000F7378312E73682EC9E7BBE1B1A3D5CF 0084000008\n"
               "  sscard apdu -r 'PCD 00 00' --script session.apdu\n",
        formatter_class=FMT)
    _reader_args(p, psam=False)
    p.add_argument("hex", nargs="*", metavar="HEX", help="command APDUs in hex")
    p.add_argument("--script", type=Path, metavar="FILE", help="script file ('-' = stdin)")
    p.add_argument("--raw", action="store_true", help="send TPDUs as given (no T=0 handling)")
    p.add_argument("--shared", action="store_true", help="connect shared, not exclusive")
    p.set_defaults(func=cmd_apdu)

    p = subparsers.add_parser(
        "pin", help="verify, change, unblock or reload the PIN",
        description="PIN operations of the national reader interface. PINs are typed without "
                    "echo (or read from standard input, one per line, when it is not a "
                    "terminal); never on the command line. unblock and reload need a PSAM.",
        epilog="examples:\n  sscard pin verify -r virtual:fixtures/cards/zhang-san.json\n"
               "  sscard pin change -r 'PCD 00 00'\n"
               "  sscard pin reload -r 'PCD 00 00' --psam 'PCD 00 01'\n",
        formatter_class=FMT)
    p.add_argument("action", choices=("verify", "change", "unblock", "reload", "tries"))
    _reader_args(p)
    p.set_defaults(func=cmd_pin)

    p = subparsers.add_parser(
        "replay", help="check a card against a recorded APDU trace",
        description="Send every command of a trace file (format: reader/trace.py) to the card "
                    "and compare each answer with the recorded one ('..' bytes and '<~' "
                    "answers match any data). Masked VERIFY data is filled with a PIN typed "
                    "without echo.",
        epilog="examples:\n  sscard replay fixtures/reader/wang-wu-read.trace "
               "-r virtual:fixtures/cards/wang-wu.json\n"
               "  sscard replay session.trace -r 'PCD 00 01' --channel psam\n",
        formatter_class=FMT)
    p.add_argument("file", type=Path, metavar="TRACE")
    p.add_argument("--reader", "-r", metavar="R", help=READER_HELP)
    p.add_argument("--channel", default="", help="which card of the trace (e.g. psam)")
    p.set_defaults(func=cmd_replay)

    p = subparsers.add_parser(
        "watch", help="show card insertions, removals and ATRs live",
        description="Print reader and card events as they happen (PC/SC by default). "
                    "Survives pcscd restarts: readers are reported gone and back.",
        epilog="examples:\n  sscard watch\n  sscard watch --count 2 --timeout 30\n",
        formatter_class=FMT)
    p.add_argument("--reader", "-r", metavar="R", help="only events of readers matching R")
    p.add_argument("--count", type=count(1), help="exit after COUNT card events")
    p.add_argument("--timeout", type=seconds(), help="exit after TIMEOUT seconds")
    p.set_defaults(func=cmd_watch)

    p = subparsers.add_parser(
        "doctor", help="check pcscd, vpcd, pyscard and readers; say what to fix",
        description="Check the PC/SC setup: pyscard, the pcscd daemon, the vpcd driver and "
                    "its slots, the readers, and the interoperability tools.",
        epilog="examples:\n  sscard doctor\n", formatter_class=FMT)
    p.set_defaults(func=cmd_doctor)


# -- helpers ------------------------------------------------------------------------------------
def _fail(exc: ReaderError) -> CliError:
    code = getattr(exc, "driver_code", -11)
    return CliError(f"{exc} (code {code})")


@contextlib.contextmanager
def _session(args: argparse.Namespace, exclusive: bool = True, **opts: Any) -> Any:
    writer: TraceWriter | None = None
    try:
        with R.open_card(args.reader, psam=getattr(args, "psam", None), exclusive=exclusive,
                         terminal_device=getattr(args, "device", ""), **opts) as session:
            if args.trace:
                channels = {}
                if session.psam is not None:
                    channels[session.psam.reader] = "psam"
                writer = TraceWriter(args.trace, reader=session.user.reader, channels=channels)
                session.user.add_observer(writer)
                if session.psam is not None:
                    session.psam.add_observer(writer)
            yield session
    except ReaderError as exc:
        raise _fail(exc) from None
    except OSError as exc:
        raise CliError(f"cannot write the trace: {exc}") from None
    finally:
        if writer is not None:
            writer.close()


def _hex(data: bytes) -> str:
    return data.hex(" ").upper()


def _inputs(args: argparse.Namespace) -> list[Path]:
    """The files the command reads: the card and PSAM images of ``virtual:`` readers (the
    area PSAM included) and a ``--script``; an output option must never name one of them."""
    psam = getattr(args, "psam", None)
    out = R.image_files(args.reader or os.environ.get(R.ENV_READER),
                        psam if psam is not None else os.environ.get(R.ENV_PSAM))
    script = getattr(args, "script", None)
    if script is not None and str(script) != "-":
        out.append(script)
    return out


def _check_outputs(args: argparse.Namespace) -> None:
    """Refuse ``--trace``/``--photo`` files whose writing would lose something (before the
    card is touched): an input, a directory, an existing file without ``--force``."""
    outputs = [(opt, getattr(args, name, None)) for opt, name in
               (("--trace", "trace"), ("--photo", "photo"))]
    named = [(opt, path) for opt, path in outputs if path is not None]
    for opt, path in named:
        check_output(path, force=args.force, inputs=_inputs(args), option=opt)
    if len(named) == 2 and named[0][1].resolve() == named[1][1].resolve():
        raise CliError("--trace and --photo name the same file: choose two files")


# -- readers ------------------------------------------------------------------------------------
def cmd_readers(args: argparse.Namespace) -> int:
    try:
        if args.reader:
            transport, _ = R.open_reader(args.reader)
        else:
            from reader.pcsc import PcscTransport

            transport = PcscTransport()
        infos = transport.readers()
        if args.reader and not infos:  # named, yet nothing there: say why, never "no readers"
            probe = getattr(transport, "check_port", None)
            if callable(probe):
                probe()
            raise CliError(f"reader {args.reader!r} cannot be opened (code -11)")
    except ReaderError as exc:
        raise _fail(exc) from None
    if args.json:
        print(json.dumps([{"name": i.name, "card_present": i.card_present, "state": i.state,
                           "atr": i.atr.hex().upper() if i.atr else None} for i in infos],
                         ensure_ascii=False, indent=1))
        return 0
    if not infos:
        print("no readers (attach one, or serve a card: sscard card serve FILE)")
        return 0
    width = max(len(i.name) for i in infos)
    for i, info in enumerate(infos):
        atr = _hex(info.atr) if info.atr else ""
        state = info.state or ("card" if info.card_present else "empty")
        print(f"{i}: {info.name:<{width}}  {state:<20} {atr}".rstrip())
    return 0


# -- read ---------------------------------------------------------------------------------------
def cmd_read(args: argparse.Namespace) -> int:
    _check_outputs(args)
    with _session(args) as s:
        try:
            basics = s.driver.read_card_basics()
            holder = s.driver.read_holder(photo=bool(args.photo)) if (
                args.holder or args.photo) else None
        except ReaderError as exc:
            raise _fail(exc) from None
    if args.photo and holder is not None and holder.photo:
        args.photo.write_bytes(holder.photo)
    if args.json:
        out: dict[str, Any] = {"code": 0, **basics.to_dict(),
                               "authenticated": s.driver.authenticated}
        if holder is not None:
            out["holder"] = {"ssn": holder.ssn, "name": holder.name, "sex": holder.sex,
                             "ethnicity": holder.ethnicity, "birthplace": holder.birthplace,
                             "birth_date": holder.birth_date,
                             "photo_bytes": len(holder.photo or b"")}
        print(json.dumps(out, ensure_ascii=False, indent=1))
    else:
        print(basics.to_line())
        if holder is not None:
            print(f"holder: {holder.name} {holder.ssn} sex {holder.sex} ethnicity "
                  f"{holder.ethnicity} born {holder.birth_date} in {holder.birthplace}")
        if args.photo:
            print(f"photo: {len(holder.photo or b'') if holder else 0} bytes -> {args.photo}")
    return 0


# -- apdu ---------------------------------------------------------------------------------------
def _why_not_apdu(compact: str) -> str:
    """Why a script line is not a command APDU, without its content (it may be a PIN): its
    length, and its header only when the header is no PIN command's (``may_carry_pin``)."""
    try:
        data = bytes.fromhex(compact)
    except ValueError:
        hexdigits = all(c in string.hexdigits for c in compact)
        why = "an odd number of hex digits" if hexdigits else "not hex digits"
        return f"{len(compact)} characters, {why}"
    try:
        CommandApdu.from_bytes(data)
    except ApduError as exc:
        if len(data) < 4:
            return f"{_bytes(len(data))}, shorter than a 4-byte header"
        if may_carry_pin(data):  # VERIFY and kin: not even the header beside the length
            return f"a {command_name(data)} of {_bytes(len(data))}: {exc}"
        return f"header {data[:4].hex().upper()}, {_bytes(len(data))}: {exc}"
    return _bytes(len(data))


def _bytes(n: int) -> str:
    return f"{n} byte" if n == 1 else f"{n} bytes"


def _script_lines(data: bytes, origin: str) -> list[str]:
    """The lines of a script file as text; a line that is not UTF-8 is an error naming it."""
    lines = []
    for n, raw in enumerate(data.splitlines(), 1):
        try:
            lines.append(raw.decode("utf-8"))
        except UnicodeDecodeError:
            raise CliError(f"{origin} line {n}: not UTF-8 text (is it a binary file?); a "
                           "script holds hex APDU lines") from None
    return lines


def _parse_script(lines: list[str], origin: str) -> list[tuple[int, str, bytes]]:
    """scriptor-style: hex APDU lines, ``reset``, ``#`` comments, blank lines."""
    steps = []
    for n, raw in enumerate(lines, 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.lower() == "reset":
            steps.append((n, "reset", b""))
            continue
        if line.lower() == "exit":
            break
        compact = "".join(line.split())
        try:
            data = bytes.fromhex(compact)
            CommandApdu.from_bytes(data)
        except ValueError:
            where = f"argument {n}" if origin == "argument" else f"{origin} line {n}"
            hint = ("; each HEX argument is one whole APDU (quote one that has spaces)"
                    if origin == "argument" and n > 1 else "")
            raise CliError(f"{where}: not a command APDU in hex ({_why_not_apdu(compact)})"
                           f"{hint}") from None
        steps.append((n, "apdu", data))
    return steps


def cmd_apdu(args: argparse.Namespace) -> int:
    if args.script and args.hex:
        raise CliError("give APDUs on the command line or --script, not both")
    if args.script:
        if str(args.script) == "-":
            stdin = getattr(sys.stdin, "buffer", None)
            origin = "stdin"
            data = stdin.read() if stdin is not None else sys.stdin.read().encode()
        else:
            try:
                data = args.script.read_bytes()
            except OSError as exc:
                raise CliError(f"cannot read {args.script}: {exc.strerror}") from None
            origin = str(args.script)
        steps = _parse_script(_script_lines(data, origin), origin)
    elif args.hex:
        steps = _parse_script(args.hex, "argument")
    else:
        raise CliError("no APDU given: sscard apdu HEX… or --script FILE")
    _check_outputs(args)
    failures = 0
    with _session(argparse.Namespace(**{**vars(args), "psam": "none"}),
                  exclusive=not args.shared) as s:
        conn: Connection = s.user
        print(f"reader: {conn.reader}  ATR: {_hex(conn.atr())}")
        for _n, kind, data in steps:
            try:
                if kind == "reset":
                    print(f"reset -> ATR {_hex(conn.reset())}")
                    continue
                name = command_name(data)
                print(f"> {_hex(mask_command(data))}  ({name})")
                if args.raw:
                    answer = conn.transmit_raw(data)
                    body, sw = answer[:-2], int.from_bytes(answer[-2:], "big")
                else:
                    rsp = conn.transmit(data)
                    body, sw = rsp.data, rsp.sw
            except ReaderError as exc:
                raise _fail(exc) from None
            if body:
                print(f"< {_hex(body)}")
            print(f"< {sw:04X}  {describe(sw, data[1] if len(data) >= 2 else None).en}")
            if sw != 0x9000 and sw >> 8 != 0x61:
                failures += 1
    return 0 if not failures else 3


# -- pin ----------------------------------------------------------------------------------------
PIPE_HINT = "or pipe the PIN on standard input, one per line (sscard … < pin.txt)"


def _ask(prompt: str) -> str:
    """A PIN typed without echo at a terminal, else the next line of standard input. Never
    a PIN that would be echoed: a terminal whose echo cannot be turned off (getpass's
    ``GetPassWarning``) or no standard input at all is a one-line error."""
    stdin: TextIO | None = sys.stdin
    try:
        tty = stdin is not None and stdin.isatty()
    except ValueError:  # closed
        stdin, tty = None, False
    if stdin is None:
        raise CliError(f"no standard input to read the PIN from: run at a terminal {PIPE_HINT}"
                       " (code -31)")
    if tty:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", getpass.GetPassWarning)
                return getpass.getpass(prompt)
        except getpass.GetPassWarning:  # the PIN would be echoed: refused, never read
            raise CliError("cannot hide the PIN on this terminal: type it at one that can "
                           f"{PIPE_HINT} (code -31)") from None
        except EOFError:
            raise CliError("PIN entry cancelled (code -31)") from None
    line = stdin.readline()
    if not line:
        raise CliError("PIN entry cancelled: no PIN on standard input (code -31)")
    return line.strip()


def cmd_pin(args: argparse.Namespace) -> int:
    from reader.facade import PinFormatError

    _check_outputs(args)
    with _session(args) as s:
        d = s.driver
        try:
            if args.action == "tries":
                left = d.pin_tries_left()
                print("PIN already verified" if left is None else f"{left} tries left")
            elif args.action == "verify":
                d.verify_pin(_ask("PIN: "))
                print("PIN verified")
            elif args.action == "change":
                old = _ask("current PIN: ")
                new = _ask("new PIN: ")
                if _ask("new PIN again: ") != new:
                    raise PinFormatError("the two new PINs differ / 两次输入的新密码不一致", -34)
                d.change_pin(old, new)
                print("PIN changed")
            elif args.action == "unblock":
                d.unblock_pin()
                print("PIN unblocked (try counter reset)")
            elif args.action == "reload":
                new = _ask("new PIN: ")
                if _ask("new PIN again: ") != new:
                    raise PinFormatError("the two new PINs differ / 两次输入的新密码不一致", -34)
                d.reload_pin(new)
                print("PIN reloaded")
        except ReaderError as exc:
            raise _fail(exc) from None
    return 0


# -- replay -------------------------------------------------------------------------------------
def cmd_replay(args: argparse.Namespace) -> int:
    from reader.trace import (
        ReplayError,
        TraceFormatError,
        check_replayable,
        fill_secrets,
        load_trace,
        pin_filler,
        replay_check,
    )

    try:
        trace = load_trace(args.file)
    except TraceFormatError as exc:
        raise CliError(f"{exc}") from None
    try:
        check_replayable(trace, args.channel)
    except ReplayError as exc:
        raise CliError(f"{args.file}: {exc}") from None
    masked = any(r.kind == "command" and r.wild for r in trace.channel(args.channel))
    try:  # a PIN of the wrong form or length is refused here, before it could cost a try
        filler = pin_filler(_ask("PIN for the masked VERIFY: ")) if masked else None
    except ReaderError as exc:
        raise _fail(exc) from None
    try:  # … and one whose length differs from the recorded VERIFY's
        if filler is not None:
            fill_secrets(trace, args.channel, filler)
    except ReaderError as exc:
        raise CliError(f"{args.file} {_fail(exc)}") from None
    ns = argparse.Namespace(reader=args.reader, psam="none", trace=None)
    # a trace recorded under T=0 shows 61xx/6Cxx: a virtual card must then speak T=0 too
    t0 = any(r.kind == "response" and r.data[-2] in (0x61, 0x6C)
             for r in trace.channel(args.channel))
    with _session(ns, t0=t0) as s:
        try:
            report = replay_check(trace, s.user, channel=args.channel, secrets=filler)
        except ReaderError as exc:
            raise _fail(exc) from None
    for failure in report.failures:
        print(f"differs: {failure}")
    print(report)
    return 0 if report.ok else 3


# -- watch --------------------------------------------------------------------------------------
def cmd_watch(args: argparse.Namespace) -> int:
    seen = 0
    if args.reader and (args.reader.startswith(R.VIRTUAL) or args.reader.startswith(R.SERIAL)):
        try:
            transport, _ = R.open_reader(args.reader)
            probe = getattr(transport, "check_port", None)
            if callable(probe):  # a named serial port that does not open is an error
                probe()
        except ReaderError as exc:
            raise _fail(exc) from None
        flt = None
    else:
        from reader.pcsc import PcscTransport

        transport = PcscTransport()
        try:  # pcscd must answer at the start (later outages are survived and reported)
            transport.reader_names()
        except ReaderError as exc:
            transport.close()
            raise _fail(exc) from None
        flt = args.reader.lower() if args.reader else None
    done = []

    def show(event: CardEvent) -> None:
        nonlocal seen
        if flt and flt not in event.reader.lower():
            return
        stamp = time.strftime("%H:%M:%S", time.localtime(event.at))
        atr = f"  ATR {_hex(event.atr)}" if event.atr else ""
        print(f"{stamp} {event.reader}: {event.kind.replace('_', ' ')}{atr}", flush=True)
        if event.kind in ("inserted", "removed"):
            seen += 1
            if args.count and seen >= args.count:
                done.append(True)

    monitor = ReaderMonitor(transport, show).start()
    deadline = time.monotonic() + args.timeout if args.timeout else None
    reported = ""
    try:
        while not done and (deadline is None or time.monotonic() < deadline):
            time.sleep(0.1)
            if monitor.last_error and monitor.last_error != reported:
                reported = monitor.last_error
                print(f"(waiting: {reported})", file=sys.stderr, flush=True)
    except KeyboardInterrupt:
        pass
    finally:
        monitor.stop()
    return 0


# -- doctor -------------------------------------------------------------------------------------
def cmd_doctor(args: argparse.Namespace) -> int:
    problems = 0

    def check(ok: bool, what: str, fix: str = "", essential: bool = True) -> bool:
        nonlocal problems
        mark = "ok  " if ok else ("FAIL" if essential else "warn")
        print(f"[{mark}] {what}" + ("" if ok or not fix else f"\n       fix: {fix}"))
        if not ok and essential:
            problems += 1
        return ok

    from reader.pcsc import pyscard_available

    apt = "apt-get install -y --no-install-recommends"
    check(pyscard_available(), "pyscard (Python PC/SC) importable",
          "pip install 'sscard[pcsc]' (needs libpcsclite-dev, a C compiler)")
    pcscd_bin = shutil.which("pcscd") or (
        "/usr/sbin/pcscd" if Path("/usr/sbin/pcscd").exists() else None)
    check(pcscd_bin is not None, "pcscd installed", f"{apt} pcscd")
    vpcd_conf = [p for p in Path("/etc/reader.conf.d").glob("*")
                 if p.is_file() and "vpcd" in p.read_text(errors="replace")] \
        if Path("/etc/reader.conf.d").is_dir() else []
    check(bool(vpcd_conf), "vpcd driver configured (/etc/reader.conf.d)",
          f"{apt} vsmartcard-vpcd")
    sock = Path("/run/pcscd/pcscd.comm")
    names: list[str] = []
    infos: list[Any] = []
    running = False
    if pyscard_available():
        from reader.pcsc import PcscTransport

        try:
            infos = PcscTransport().readers()
            names = [i.name for i in infos]
            running = True
        except ReaderError:
            running = False
    check(running, "pcscd running and answering" + (f" ({sock})" if sock.exists() else ""),
          "start it: pcscd (as root; `pcscd --foreground` to see its log) or "
          "systemctl start pcscd.socket")
    if running:
        vpcd = [n for n in names if n.startswith("Virtual PCD")]
        check(bool(vpcd), f"vpcd slots visible: {', '.join(vpcd) or 'none'}",
              "restart pcscd after installing vsmartcard-vpcd")
        check(bool(names), f"readers: {', '.join(names) or 'none'}", essential=False)
        served = [i for i in infos if i.name.startswith("Virtual PCD") and i.card_present]
        check(bool(served), "a card is served to vpcd" if served else
              "no card served to vpcd", "sscard card serve fixtures/cards/zhang-san.json",
              essential=False)
    check(hasattr(socket, "TCP_QUICKACK"), "TCP_QUICKACK available (vpcd latency)",
          "Linux only: without it every APDU through vpcd costs ~44 ms", essential=False)
    for tool, pkg in (("pcsc_scan", "pcsc-tools"), ("scriptor", "pcsc-tools"),
                      ("opensc-tool", "opensc")):
        check(shutil.which(tool) is not None, f"{tool} installed (interoperability checks)",
              f"{apt} {pkg}", essential=False)
    if os.geteuid() != 0 and not running:
        print("       note: pcscd needs root to start")
    print("all essential checks passed" if not problems else
          f"{problems} essential check(s) failed")
    return 0 if not problems else 1



"""``sscard card``: issue card images, show them, make PSAM images (spec/card.md, card/).

Subcommands: ``issue`` (a new card image from holder data), ``show`` (decode an image, PIN
and keys masked), ``psam`` (a PSAM image for an area). ``serve`` is registered by the reader
side of the project in :func:`register` (see the marked place there).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from pathlib import Path
from typing import Any

from card.errors import CardError, ImageError
from card.fs import DedicatedFile, ElementaryFile
from card.image import CardImage, atomic_write, dumps, read_document
from card.issue import DEFAULT_AREA, Holder, IssuerRegistry, issue, save_issued
from card.photo import photo_from_file
from card.psam import PSAM_FORMAT, PsamImage, make_psam_doc
from terminal.cli import CliError
from terminal.cli.args import check_output, count

FMT = argparse.RawDescriptionHelpFormatter


def register(subparsers: Any) -> None:
    card = subparsers.add_parser(
        "card", help="issue, show and manage virtual card images",
        description="Virtual social security cards (社会保障卡) and PSAMs as image files.",
        epilog="examples:\n  sscard card issue --name 张三 --id 370802198001011235 --bank CCB "
               "--out zhang.json\n  sscard card show zhang.json\n",
        formatter_class=FMT)
    sub = card.add_subparsers(dest="card_command", metavar="SUBCOMMAND", title="subcommands")
    card.set_defaults(func=lambda args: _help(card))

    p = sub.add_parser(
        "issue", help="issue a new card image",
        description="Issue a card image from the holder's name and resident ID number. CCB "
                    "cards come activated with a random 6-digit initial PIN shown once; "
                    "ICBC, ABC and BOC cards must be activated at the bank counter (initial "
                    "PIN 123456). The image holds TEST keys only.",
        epilog="examples:\n"
               "  sscard card issue --name 张三 --id 370802198001011235 --bank CCB "
               "--out zhang.json\n"
               "  sscard card issue --name 李四 --id 370802198505050529 --bank ICBC \\\n"
               "      --generation 2.00 --algorithm 3DES --issuer-file issued.json "
               "--out li.toml\n"
               "  # a replacement card with the numbers the host assigned (8105):\n"
               "  sscard card issue --name 张三 --id 370802198001011235 --bank CCB \\\n"
               "      --card-number B12345671 --card-id 370800D15600000500C0FFEE3D762484 "
               "\\\n      --pan 6217003708000000041 --out zhang-new.json\n",
        formatter_class=FMT)
    p.add_argument("--name", required=True, help="holder's name (GBK-encodable)")
    p.add_argument("--id", required=True, dest="ssn",
                   help="18-character resident ID number (check digit validated)")
    p.add_argument("--sex", choices=["1", "2", "9"],
                   help="1 male, 2 female, 9 unstated (default: from the ID number)")
    p.add_argument("--birth-date", help="YYYYMMDD (default: from the ID number)")
    p.add_argument("--bank", required=True, type=str.upper, choices=["ICBC", "ABC", "BOC", "CCB"],
                   help="issuing bank")
    p.add_argument("--area", default=DEFAULT_AREA,
                   help=f"6-digit area code (default {DEFAULT_AREA}, Jining)")
    p.add_argument("--generation", default="3.00", choices=["2.00", "3.00"],
                   help="card generation (3.00 protects EF06 with RKSSSE)")
    p.add_argument("--algorithm", type=str.upper, choices=["3DES", "SM4"],
                   help="key algorithm (default SM4 for 3.00, 3DES for 2.00)")
    p.add_argument("--pin-policy", default="shared", choices=["shared", "separate"],
                   help="one PIN for both applications (default) or one each")
    p.add_argument("--pin-max-tries", type=count(1, 15), default=3,
                   help="PIN tries 1..15 (default 3)")
    p.add_argument("--card-number", metavar="CN9",
                   help="use this card number (9 characters, check character validated) "
                        "instead of allocating one, e.g. the host's new card number")
    p.add_argument("--card-id", metavar="HEX32",
                   help="use this card identification code (32 hex: area ‖ D156000005 ‖ "
                        "serial ‖ authentication code); its serial goes into the ATR")
    p.add_argument("--pan", metavar="DIGITS",
                   help="use this bank card number (16-19 digits, Luhn digit validated)")
    p.add_argument("--issuer-file", type=Path,
                   help="JSON file tracking issued serials and card numbers (unique per file)")
    p.add_argument("--out", required=True, type=Path,
                   help="image file to write (.json or .toml)")
    p.add_argument("--force", action="store_true", help="overwrite an existing --out file")
    p.set_defaults(func=cmd_issue)

    p = sub.add_parser(
        "show", help="print a decoded card or PSAM image",
        description="Decode a card image: holder, card data, PIN state (PIN masked), the "
                    "external-authentication tries of each read key, keys (masked), "
                    "counters, blocks and the file tree.",
        epilog="examples:\n  sscard card show fixtures/cards/zhang-san.json\n"
               "  sscard card show fixtures/cards/psam-370800.json --json\n",
        formatter_class=FMT)
    p.add_argument("file", type=Path, help="card or PSAM image (.json or .toml)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_show)

    p = sub.add_parser(
        "psam", help="create a PSAM image for an area",
        description="Create a virtual PSAM image holding the TEST city keys of an area, a "
                    "terminal number (area code + 6-digit serial) and a transaction counter.",
        epilog="examples:\n  sscard card psam --out psam.json\n"
               "  sscard card psam --area 370100 --serial 12 --out jinan-psam.json\n",
        formatter_class=FMT)
    p.add_argument("--area", default=DEFAULT_AREA, help=f"6-digit area code ({DEFAULT_AREA})")
    p.add_argument("--serial", type=count(0, 999_999), default=1,
                   help="terminal serial 0..999999 (1)")
    p.add_argument("--out", required=True, type=Path,
                   help="image file to write (.json or .toml)")
    p.add_argument("--force", action="store_true", help="overwrite an existing --out file")
    p.set_defaults(func=cmd_psam)

    # ---- `sscard card serve` (owned by the reader side) is registered here: ------------------
    # add its parser to `sub` with sub.add_parser("serve", ...) and set func=...
    from terminal.cli import card_serve

    card_serve.register(sub)


def _help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _write_image(out: Path, doc: dict[str, Any]) -> None:
    """Write an image to ``out`` atomically; a failure is a one-line :class:`CliError`."""
    try:
        atomic_write(out, dumps(doc, out.suffix.lower() == ".toml"))
    except OSError as exc:
        raise CliError(f"cannot write {out}: {exc.strerror or exc}") from None


IMAGE_SUFFIXES = (".json", ".toml")


def _check_suffix(out: Path) -> None:
    """Refuse an image name whose suffix is neither ``.json`` nor ``.toml``: the suffix
    decides the format, here and whenever the image is read (``.toml`` TOML, else JSON)."""
    if out.suffix.lower() not in IMAGE_SUFFIXES:
        raise CliError(f"--out {out}: an image file ends in .json or .toml (the suffix "
                       "chooses the format)")


def cmd_issue(args: argparse.Namespace) -> int:
    check_output(args.out, force=args.force, inputs=[args.issuer_file])
    _check_suffix(args.out)
    if args.issuer_file is not None and (
            os.path.realpath(args.issuer_file) == os.path.realpath(args.out)):
        raise CliError(f"--out {args.out} is the --issuer-file: choose another file")
    try:
        registry = IssuerRegistry(args.issuer_file) if args.issuer_file else None
        issued = issue(
            Holder(args.name, args.ssn, sex=args.sex, birth_date=args.birth_date),
            bank=args.bank, area=args.area, generation=args.generation,
            algorithm=args.algorithm, pin_policy=args.pin_policy,
            pin_max_tries=args.pin_max_tries, registry=registry,
            card_number=args.card_number, card_id_code=args.card_id, pan=args.pan,
            register=False)
    except CardError as exc:
        raise CliError(f"{exc}") from None
    try:
        save_issued(issued, args.out, registry)
    except CardError as exc:
        raise CliError(str(exc)) from None
    except OSError as exc:
        raise CliError(f"cannot write {args.out}: {exc.strerror or exc}") from None
    ident = issued.doc["identity"]
    print(f"issued {ident['card_number']} for {ident['name']} ({ident['bank']}, "
          f"generation {ident['generation']}, {ident['algorithm']}) -> {args.out}")
    if issued.doc["policy"]["activated"]:
        print(f"initial PIN (shown once, keep it like a sealed envelope): {issued.initial_pin}")
    else:
        print("not activated: the holder activates it at the bank counter by changing the "
              f"initial PIN {issued.initial_pin}")
    return 0


def cmd_psam(args: argparse.Namespace) -> int:
    check_output(args.out, force=args.force)
    _check_suffix(args.out)
    try:
        doc = make_psam_doc(args.area, args.serial)
    except (CardError, ValueError) as exc:
        raise CliError(f"cannot make the PSAM: {exc}") from None
    _write_image(args.out, doc)
    print(f"PSAM for area {args.area}, terminal number {doc['terminal_number']} -> {args.out}")
    return 0


# -- show -------------------------------------------------------------------------------------

def _mask_key(key: bytes) -> str:
    return f"{len(key)} bytes ****"


def describe_card(img: CardImage) -> dict[str, Any]:
    """The decoded card as plain data, secrets masked."""
    ident = dict(img.identity)
    files: list[dict[str, Any]] = []
    photo_len = 0

    def walk(df: DedicatedFile, path: str) -> None:
        for child in df.children:
            label = child.label or (f"{child.fid:04X}" if child.fid is not None else "?")
            here = f"{path}/{label}"
            if isinstance(child, DedicatedFile):
                files.append({"path": here, "kind": "DF",
                              "name": child.name.hex().upper() if child.name else ""})
                walk(child, here)
            else:
                files.append(_ef_summary(child, here))
    walk(img.mf, "MF")
    ef08 = img.mf.find("SSSE/EF08")
    if isinstance(ef08, ElementaryFile):
        photo_len = len(photo_from_file(bytes(ef08.data)))
    return {
        "format": "sscard-card",
        "test_keys": img.test_keys,
        "identity": ident,
        "atr": img.atr.hex().upper(),
        "policy": {"pin_policy": img.pin_policy, "pin_max_tries": img.pin_max_tries,
                   "activated": img.activated, "key_max_tries": img.key_max_tries},
        "pins": {name: {"pin": "*" * rec.length, "tries_left": rec.tries_left,
                        "blocked": rec.tries_left == 0, "initial": rec.initial}
                 for name, rec in img.pins.items()},
        "key_tries": {name: {"tries_left": img.key_tries_left(name),
                             "blocked": img.key_tries_left(name) == 0}
                      for name in sorted(img.key_tries)},
        "keys": {name: _mask_key(k) for name, k in sorted(img.keys.items())},
        "counters": {"atc": img.atc},
        "state": {"card_blocked": img.card_blocked, "blocked_apps": img.blocked_apps},
        "photo_bytes": photo_len,
        "files": files,
    }


def _ef_summary(ef: ElementaryFile, path: str) -> dict[str, Any]:
    out: dict[str, Any] = {"path": path, "kind": ef.structure, "read": ef.read,
                           "write": ef.write}
    if ef.sfi is not None:
        out["sfi"] = ef.sfi
    if ef.structure == "transparent":
        out["size"] = ef.size
    else:
        out["records"] = len(ef.records)
    return out


def describe_psam(img: PsamImage) -> dict[str, Any]:
    return {
        "format": PSAM_FORMAT, "test_keys": img.test_keys, "area_code": img.area,
        "terminal_number": img.terminal_number, "counter": img.counter,
        "keys": {("3DES" if alg == 1 else "SM4"): {n: _mask_key(k) for n, k in sorted(t.items())}
                 for alg, t in sorted(img.keys.items())},
    }


SEX = {"1": "male", "2": "female", "9": "unstated"}


def cmd_show(args: argparse.Namespace) -> int:
    try:
        doc = read_document(args.file)
        if doc.get("format") == PSAM_FORMAT:
            info = describe_psam(PsamImage(doc))
        else:
            info = describe_card(CardImage.from_doc(doc))
    except ImageError as exc:
        raise CliError(f"{args.file}: {exc}") from None
    if args.json:
        json.dump(info, sys.stdout, ensure_ascii=False, indent=1)
        print()
        return 0
    if info["format"] == PSAM_FORMAT:
        print(f"PSAM  area {info['area_code']}  terminal number {info['terminal_number']}  "
              f"counter {info['counter']}")
        for alg, table in info["keys"].items():
            test = ", TEST keys" if info["test_keys"] else ""
            print(f"  {alg} keys: {', '.join(table)} (masked{test})")
        return 0
    i = info["identity"]
    born = dt.datetime.strptime(i["birth_date"], "%Y%m%d").date()
    lines = [
        f"holder      {i['name']}  ({SEX.get(i['sex'], i['sex'])}, born {born.isoformat()})",
        f"SSN / ID    {i['ssn']}",
        f"card number {i['card_number']}   card id code {i['card_id_code']}",
        f"bank        {i['bank']}  PAN {i['pan']}",
        f"area        {i['area_code']}  generation {i['generation']}  algorithm {i['algorithm']}",
        f"valid       {i['issue_date']} .. {i['expiry_date']}",
        f"ATR         {info['atr']}",
        f"PIN policy  {info['policy']['pin_policy']}, {info['policy']['pin_max_tries']} tries, "
        f"{'activated' if info['policy']['activated'] else 'NOT activated'}",
    ]
    for name, pin in info["pins"].items():
        state = "BLOCKED" if pin["blocked"] else f"{pin['tries_left']} tries left"
        initial = "  (initial PIN)" if pin["initial"] else ""
        lines.append(f"PIN {name:<7} {pin['pin']}  {state}{initial}")
    for name, key in info["key_tries"].items():
        state = ("BLOCKED (a new card from the issuer is needed)" if key["blocked"]
                 else f"{key['tries_left']} of {info['policy']['key_max_tries']} tries left")
        lines.append(f"key {name:<7} external authentication: {state}")
    lines.append(f"keys        {', '.join(info['keys'])} (masked"
                 f"{', TEST keys' if info['test_keys'] else ''})")
    lines.append(f"ATC         {info['counters']['atc']}")
    blocks = []
    if info["state"]["card_blocked"]:
        blocks.append("CARD BLOCKED")
    blocks += [f"{a} blocked" for a in info["state"]["blocked_apps"]]
    lines.append(f"state       {', '.join(blocks) or 'normal'}")
    lines.append(f"photo       JPEG, {info['photo_bytes']} bytes")
    lines.append("files:")
    for f in info["files"]:
        extra = (f"size {f['size']}" if "size" in f else f"{f['records']} records"
                 if "records" in f else f.get("name", ""))
        access = f"  read {f['read']}, write {f['write']}" if "read" in f else ""
        lines.append(f"  {f['path']:<22} {f['kind']:<11} {extra}{access}")
    print("\n".join(lines))
    return 0

"""Issuing cards: a holder's data in, a complete sealed card image out (spec/card.md §2–4, §8).

Rules applied (seed RULES.md):

* [C4] the ID number must pass the GB 11643 check and agree with the birth date and sex;
* [A2] the bank is one of ICBC, ABC, BOC, CCB;
* [A3] CCB cards are issued *activated* with a random 6-digit initial PIN, returned once in
  :class:`Issued` (the caller shows it, the image only keeps a salted hash);
* [A4] ICBC/ABC/BOC cards are issued *not activated* with the initial PIN ``123456``
  (:data:`INITIAL_PIN`); the bank application refuses transactions until a CHANGE PIN or a
  PIN RELOAD at the counter activates the card.

Numbering: the card serial (ATR TA–TD, card identification code) and the card number body
are allocated from an :class:`IssuerRegistry` file when one is given (unique per file and
area), else at random. Card numbers carry their check character, card identification codes
their authentication code (:func:`card.image.card_id_auth`); PANs their Luhn digit.

Given numbers (a replacement card, spec/host.md §5: the host assigns the new card number,
card identification code and PAN, seed rules L1/L2/A5): :func:`issue` takes them as
``card_number``, ``card_id_code`` and ``pan`` (and ``pan_seq``), checks each one
(:func:`check_card_number`, :func:`check_card_id_code`, :func:`check_pan`) and, with a
registry, refuses numbers already issued. The card serial is the one inside the card
identification code (spec/card.md §4), so the ATR historical bytes carry the same serial.

ATR historical bytes (13): ``00 81`` chip supplier ‖ ``4A 44 46`` COS ‖ ``86 60`` card maker ‖
first four digits of the area code (BCD) ‖ serial (4 bytes).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from apdu import atr as atrmod
from apdu import codec
from apdu.cardbas import CardBasics
from apdu.errors import ApduError
from card import keys, pboc
from card.errors import IssueError
from card.image import (
    BANKS,
    KEY_MAX_TRIES,
    CardImage,
    PinRecord,
    atomic_write,
    card_id_auth,
    check_area,
    dumps,
    seal,
)
from card.photo import make_photo

INITIAL_PIN = "123456"
DEFAULT_AREA = "370800"  # Jining (济宁市)
SSSE_NAME = bytes.fromhex("7378312E73682EC9E7BBE1B1A3D5CF")  # "sx1.sh.社会保障" in GBK
DF_AIDS = {
    "DF01": "D15600000500",
    "DF02": "D15600000501",
    "DF03": "D15600000502",
    "DF04": "D15600000503",
    "DF07": "D15600000504",
}
BANK_BINS = {"ICBC": "621226", "ABC": "622848", "BOC": "621661", "CCB": "621700"}
CARD_NUMBER_PREFIX = "J"


def luhn_digit(body: str) -> str:
    """The Luhn check digit of ``body`` (ISO/IEC 7812-1).

    >>> luhn_digit("7992739871")
    '3'
    """
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return str((10 - total % 10) % 10)


def historical_bytes(area: str, serial: bytes) -> bytes:
    return bytes.fromhex("00814A44468660") + bytes.fromhex(area[:4]) + serial


def check_card_number(card_number: str) -> str:
    """A given card number, upper-cased, or :class:`IssueError` saying what is wrong
    (spec/card.md §4: 8 characters 0-9/A-Z and the check character)."""
    cn = card_number.strip().upper()
    if len(cn) != 9 or not cn.isascii() or not cn.isalnum():
        raise IssueError(f"card number {card_number!r} must be 9 characters: 8 digits or "
                         "capital letters and a check character (spec/card.md §4)")
    want = codec.card_number_check_char(cn[:8])
    if cn[8] != want:
        raise IssueError(f"card number {cn} has the wrong check character {cn[8]!r} "
                         f"(expected {want!r} for {cn[:8]}): retype it from the host's answer")
    return cn


def check_card_id_code(card_id_code: str, area: str) -> codec.CardIdCode:
    """A given card identification code (spec/card.md §4: city code ‖ ``D156000005`` ‖
    serial ‖ authentication code, 32 hex) of ``area``, or :class:`IssueError`."""
    text = card_id_code.strip().upper()
    if len(text) != 32 or any(c not in "0123456789ABCDEF" for c in text):
        raise IssueError(f"card identification code {card_id_code!r} must be 32 hex "
                         "characters (spec/card.md §4)")
    try:
        cid = codec.CardIdCode.from_hex(text)
    except ApduError as exc:
        raise IssueError(f"card identification code {text}: {exc}") from None
    if cid.city != area:
        raise IssueError(f"card identification code {text} belongs to area {cid.city}, "
                         f"not {area}")
    if cid.auth != card_id_auth(cid.city, cid.serial):
        raise IssueError(f"card identification code {text} has a wrong authentication code "
                         "(last 8 characters): it was not issued for this serial")
    return cid


def check_pan(pan: str) -> str:
    """A given PAN: 16 to 19 digits with a correct Luhn digit (ISO/IEC 7812-1)."""
    p = pan.strip()
    if not p.isascii() or not p.isdigit() or not 16 <= len(p) <= 19:
        raise IssueError(f"PAN {pan!r} must be 16 to 19 digits")
    if luhn_digit(p[:-1]) != p[-1]:
        raise IssueError(f"PAN {p} has the wrong Luhn check digit (expected "
                         f"{luhn_digit(p[:-1])})")
    return p


@dataclass
class Holder:
    """Who the card is for. ``birth_date`` and ``sex`` default to what the ID number says."""

    name: str
    ssn: str
    sex: str | None = None
    birth_date: str | None = None
    ethnicity: str = "01"
    birthplace: str | None = None
    category: str = "3"


@dataclass
class Issued:
    """An issued card: the image document and the initial PIN (shown once, never stored)."""

    doc: dict[str, Any]
    initial_pin: str
    card_number: str

    @property
    def image(self) -> CardImage:
        return CardImage.from_doc(self.doc)


def save_issued(issued: Issued, out: Path, registry: IssuerRegistry | None) -> None:
    """Write an issued card's image to ``out`` atomically and, with a ``registry``, record
    the card there once the image is durable, just before it takes its name: a card the
    register lists always exists. Should the rename still fail, the record is taken back.
    Raises :class:`IssueError` (register) or ``OSError`` (image)."""
    ident = issued.doc["identity"]
    numbers = (ident["area_code"], ident["card_number"], ident["card_id_code"])
    recorded: list[bool] = []

    def record() -> None:
        if registry is not None:
            registry.record(*numbers)
            recorded.append(True)

    try:
        atomic_write(out, dumps(issued.doc, out.suffix.lower() == ".toml"), record)
    except IssueError as exc:
        raise IssueError(f"{exc}; no card was issued") from None
    except BaseException:
        if recorded and registry is not None:
            try:
                registry.forget(*numbers)
            except IssueError as exc:
                raise IssueError(f"the card image {out} was not written, but {exc}: remove "
                                 f"{ident['card_number']} from it by hand") from None
        raise


class IssuerRegistry:
    """A JSON file recording the serials and card numbers already issued, per area.

    Shape: ``{"areas": {"370800": {"next": 42, "card_numbers": [...],
    "card_id_codes": [...]}}}``; written atomically after every issue.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        if self.path.exists():
            if not self.path.is_file():
                raise IssueError(f"issuer file {self.path} is not a regular file")
            try:
                doc: Any = json.loads(self.path.read_text("utf-8"))
            except OSError as exc:
                raise IssueError(f"issuer file {self.path} cannot be read: "
                                 f"{exc.strerror or exc}") from None
            except RecursionError:
                raise IssueError(f"issuer file {self.path} is not usable JSON: nested too "
                                 "deep") from None
            except ValueError as exc:
                raise IssueError(f"issuer file {self.path} is not valid JSON: {exc}") from None
            self.doc: dict[str, Any] = _registry_doc(doc, self.path)
        elif not self.path.parent.is_dir():
            raise IssueError(f"issuer file {self.path}: directory {self.path.parent} does not "
                             "exist; create it first")
        else:
            self.doc = {"areas": {}}

    def allocate(self, area: str) -> int:
        """The next sequence number of ``area`` (1, 2, ...)."""
        entry = self._entry(area)
        seq = int(entry["next"])
        entry["next"] = seq + 1
        return seq

    def _entry(self, area: str) -> dict[str, Any]:
        entry: dict[str, Any] = self.doc["areas"].setdefault(
            area, {"next": 1, "card_numbers": []})
        return entry

    def check_free(self, area: str, card_number: str = "", card_id_code: str = "") -> None:
        """:class:`IssueError` when ``card_number`` or ``card_id_code`` was issued already."""
        entry = self.doc["areas"].get(area, {})
        if card_number and card_number in entry.get("card_numbers", []):
            raise IssueError(f"card number {card_number} was already issued (issuer file "
                             f"{self.path}); a card number is never reused")
        if card_id_code and card_id_code in entry.get("card_id_codes", []):
            raise IssueError(f"card identification code {card_id_code} was already issued "
                             f"(issuer file {self.path})")

    def has(self, area: str, card_number: str) -> bool:
        return card_number in self.doc["areas"].get(area, {}).get("card_numbers", [])

    def record(self, area: str, card_number: str, card_id_code: str = "") -> None:
        """Record an issued card and save the file (:class:`IssueError` if it cannot be)."""
        self.check_free(area, card_number, card_id_code)
        entry = self._entry(area)
        entry["card_numbers"].append(card_number)
        if card_id_code:
            entry.setdefault("card_id_codes", []).append(card_id_code)
        self._save()

    def forget(self, area: str, card_number: str, card_id_code: str = "") -> None:
        """Undo :meth:`record` for a card whose image could not be written."""
        entry = self._entry(area)
        if card_number in entry["card_numbers"]:
            entry["card_numbers"].remove(card_number)
        if card_id_code in entry.get("card_id_codes", []):
            entry["card_id_codes"].remove(card_id_code)
        self._save()

    def _save(self) -> None:
        try:
            atomic_write(self.path, json.dumps(self.doc, indent=1) + "\n")
        except OSError as exc:
            raise IssueError(f"issuer file {self.path} cannot be written: "
                             f"{exc.strerror or exc}") from None


def _registry_doc(doc: Any, path: Path) -> dict[str, Any]:
    """The issuer file's document, its shape checked (:class:`IssueError` says what is wrong)."""
    where = f"issuer file {path}"
    if not isinstance(doc, dict) or not isinstance(doc.get("areas"), dict):
        raise IssueError(f"{where} has no 'areas' object (expected "
                         '{"areas": {"370800": {"next": 1, "card_numbers": []}}})')
    for area, entry in doc["areas"].items():
        if not isinstance(entry, dict):
            raise IssueError(f"{where}: area {area} is not an object")
        nxt = entry.get("next")
        if not isinstance(nxt, int) or isinstance(nxt, bool) or nxt < 1:
            raise IssueError(f"{where}: area {area} 'next' must be a whole number 1 or more")
        for key in ("card_numbers", "card_id_codes"):
            value = entry.get(key, [])
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise IssueError(f"{where}: area {area} {key!r} must be a list of strings")
        entry.setdefault("card_numbers", [])
    return doc


def _validate_holder(h: Holder) -> tuple[str, str, str]:
    ssn = h.ssn.strip().upper()
    if not codec.id_number_valid(ssn):
        raise IssueError(f"ID number {h.ssn!r} is not valid (18 characters with a correct "
                         "GB 11643 check digit); check it against the ID card")
    born = ssn[6:14]
    birth = h.birth_date or born
    if birth != born:
        raise IssueError(f"birth date {birth} does not match the ID number ({born})")
    try:
        dt.date(int(birth[:4]), int(birth[4:6]), int(birth[6:]))
    except ValueError:
        raise IssueError(f"the ID number holds an impossible birth date {birth}") from None
    id_sex = "1" if int(ssn[16]) % 2 else "2"
    sex = h.sex or id_sex
    if sex not in ("1", "2", "9"):
        raise IssueError("sex must be 1 (male), 2 (female) or 9 (unstated)")
    if sex != "9" and sex != id_sex:
        raise IssueError(f"sex {sex} does not match the ID number (which says {id_sex})")
    if not h.name.strip():
        raise IssueError("the holder's name is empty")
    control = next((c for c in h.name if unicodedata.category(c).startswith("C")), None)
    if control is not None:
        raise IssueError(f"the holder's name {h.name!r} holds a control character "
                         f"(U+{ord(control):04X}): give the name on one line, printable "
                         "characters only")
    try:
        codec.split_name(h.name)
    except Exception:
        raise IssueError(f"name {h.name!r} cannot be written on the card (GBK, at most 50 "
                         "bytes)") from None
    return ssn, birth, sex


def _check_readable(ident: dict[str, Any]) -> None:
    """:class:`IssueError` unless a terminal can report the card: its ``iReadCardBas`` line
    (spec/card.md §10) is built with the rules the reader applies, e.g. no ``|`` in the
    name."""
    try:
        CardBasics(ident["area_code"], ident["ssn"], ident["card_number"],
                   ident["card_id_code"], ident["name"], ident["historical"],
                   ident["generation"], ident["issue_date"], ident["expiry_date"],
                   "0" * 12, "")
    except ApduError as exc:
        raise IssueError(f"the card could not be read by a terminal ({exc}): holder's name "
                         f"{ident['name']!r}") from None


def _rec(tag: int, value: bytes) -> str:
    return (bytes([tag, len(value)]) + value).hex().upper()


def issue(holder: Holder, *, bank: str, area: str = DEFAULT_AREA, generation: str = "3.00",
          algorithm: str | None = None, pin_policy: str = "shared", pin_max_tries: int = 3,
          issue_date: dt.date | None = None, registry: IssuerRegistry | None = None,
          pin: str | None = None, locked: bool = False, card_number: str | None = None,
          card_id_code: str | None = None, pan: str | None = None, pan_seq: int | None = None,
          photo: bytes | None = None, register: bool = True,
          key_max_tries: int = KEY_MAX_TRIES) -> Issued:
    """Issue a card image. ``algorithm`` defaults to SM4 for 3.00 and 3DES before.

    ``pin`` overrides the initial PIN (fixtures); ``locked`` issues it with the PIN blocked.
    ``card_number``, ``card_id_code`` (its serial is the card serial), ``pan`` and ``pan_seq``
    are numbers assigned elsewhere (the host, for a replacement): validated, checked against
    ``registry``, used as given; any left out is allocated as usual. ``photo`` (JPEG, at most
    4096 bytes) replaces the generated portrait (a replacement keeps the holder's photo).
    ``register=False`` leaves recording the card in ``registry`` to the caller, who does it
    once the image is written (:meth:`IssuerRegistry.record`). ``key_max_tries`` is the
    error limit of each EXTERNAL AUTHENTICATE key (RKSSSE), issued with full counters.
    """
    ssn, birth, sex = _validate_holder(holder)
    bank = bank.upper()
    if bank not in BANKS:
        raise IssueError(f"unknown bank {bank!r}; use one of {', '.join(BANKS)}")
    check_area(area)
    if generation not in ("2.00", "3.00"):
        raise IssueError("generation must be 2.00 or 3.00")
    alg_name = (algorithm or ("SM4" if generation == "3.00" else "3DES")).upper()
    if alg_name not in keys.ALG_NAMES:
        raise IssueError("algorithm must be 3DES or SM4")
    alg = keys.alg_id(alg_name)
    if pin_policy not in ("shared", "separate"):
        raise IssueError("PIN policy must be shared or separate")
    if not 1 <= pin_max_tries <= 15:
        raise IssueError("pin_max_tries must be 1..15")
    if not 1 <= key_max_tries <= 15:
        raise IssueError("key_max_tries must be 1..15")
    today = issue_date or dt.date.today()
    expiry = today.replace(year=today.year + 10)

    # numbering: given numbers first (checked), the rest allocated
    given_cn = check_card_number(card_number) if card_number is not None else None
    given_cid = check_card_id_code(card_id_code, area) if card_id_code is not None else None
    given_pan = check_pan(pan) if pan is not None else None
    psn = 1 if pan_seq is None else pan_seq
    if not 0 <= psn <= 99:
        raise IssueError(f"PAN sequence number must be 0..99, got {psn}")
    if photo is not None and (not photo.startswith(b"\xff\xd8") or len(photo) > 0x1000):
        raise IssueError("the photo must be a JPEG of at most 4096 bytes (spec/card.md §3)")
    if registry is not None:
        registry.check_free(area, given_cn or "", given_cid.to_hex() if given_cid else "")
    seq = 0
    if registry is not None and (given_cn is None or given_cid is None):
        seq = registry.allocate(area)
        while given_cn is None and registry.has(area, _registry_number(seq)):
            seq = registry.allocate(area)  # a given number took this one earlier
        if seq > 9_999_999:
            raise IssueError(f"area {area} has used up its card numbers")
    if given_cid is not None:
        serial = bytes.fromhex(given_cid.serial)
    elif registry is not None:
        serial = seq.to_bytes(4, "big")
    else:
        serial = secrets.token_bytes(4)
    if given_cn is not None:
        card_number = given_cn
    elif registry is not None:
        card_number = _registry_number(seq)
    else:
        body = CARD_NUMBER_PREFIX + f"{secrets.randbelow(9_000_000) + 1_000_000:07d}"
        card_number = body + codec.card_number_check_char(body)
    serial_hex = serial.hex().upper()
    cid = given_cid or codec.CardIdCode(area, serial_hex, card_id_auth(area, serial_hex))
    hist = historical_bytes(area, serial)
    atr = atrmod.build(hist, tb1=0, tc1=0)
    if given_pan is not None:
        pan = given_pan
    else:
        pan_body = BANK_BINS[bank] + area[:4] + f"{int.from_bytes(serial, 'big') % 10**8:08d}"
        pan = pan_body + luhn_digit(pan_body)

    initial_pin = pin or (f"{secrets.randbelow(10**6):06d}" if bank == "CCB" else INITIAL_PIN)
    if not initial_pin.isdigit() or not 4 <= len(initial_pin) <= 12:
        raise IssueError("a PIN is 4 to 12 digits")
    activated = bank == "CCB"

    card_keys = {name: keys.card_key(name, alg, area, hist) for name in keys.CARD_KEYS}
    card_keys["AC"] = keys.ac_master_key(alg, area, pan, psn)

    b09, b4e = codec.split_name(holder.name)
    birthplace = holder.birthplace or ssn[:6]
    ef05 = [
        _rec(0x01, cid.to_bytes()),
        _rec(0x02, codec.an_encode(holder.category, 1)),
        _rec(0x03, codec.an_encode(generation, 4)),
        _rec(0x04, codec.cn_encode("9156000002" + area + area + "01", 12)),
        _rec(0x05, codec.cn_encode(today.strftime("%Y%m%d"), 4)),
        _rec(0x06, codec.cn_encode(expiry.strftime("%Y%m%d"), 4)),
        _rec(0x07, codec.an_encode(card_number, 9)),
    ]
    ef06 = [
        _rec(0x08, codec.an_encode(ssn, 18)),
        _rec(0x09, b09),
        _rec(0x4E, b4e),
        _rec(0x0A, codec.an_encode(sex, 1)),
        _rec(0x0B, codec.cn_encode(holder.ethnicity, 1)),
        _rec(0x0C, codec.cn_encode(birthplace, 3)),
        _rec(0x0D, codec.cn_encode(birth, 4)),
    ]
    account = (area + ssn)[:29]
    df04_ef05 = [
        _rec(0x81, codec.an_encode("31000000", 8)),
        _rec(0x84, codec.cn_encode(area, 3)),
        _rec(0x8C, codec.cn_encode("11", 1)),
        _rec(0x8B, codec.an_encode(account, 29)),
        _rec(0x8F, codec.an_encode("1", 1)),
    ]
    df04_ef06 = [_rec(0x90, b"\x00" * 4), _rec(0x91, b"\x00" * 4), _rec(0x92, b"\x00" * 4)]
    ef06_read = "key:RKSSSE" if generation == "3.00" else "free"
    ssse_fci = (bytes([0x6F, 0x1C, 0x84, 0x0F]) + SSSE_NAME
                + bytes.fromhex("A50988011E9F0C038601") + bytes([alg]))
    photo_data = photo if photo is not None else make_photo(ssn)

    def df(fid: str, children: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        return {"kind": "df", "fid": fid, "name": DF_AIDS[fid], "label": fid,
                "children": children or []}

    ssse = {
        "kind": "df", "label": "SSSE", "name": SSSE_NAME.hex().upper(), "app": "SSSE",
        "fci": ssse_fci.hex().upper(),
        "children": [
            {"kind": "ef", "fid": "EF05", "sfi": 5, "structure": "records", "read": "free",
             "write": "mac:UKSSSE", "label": "EF05", "records": ef05},
            {"kind": "ef", "fid": "EF06", "sfi": 6, "structure": "records", "read": ef06_read,
             "write": "mac:UKSSSE", "label": "EF06", "records": ef06},
            {"kind": "ef", "fid": "EF07", "sfi": 7, "structure": "transparent",
             "read": "key:RKSSSE", "write": "mac:UKSSSE", "label": "EF07", "size": 0x300,
             "data": ""},
            {"kind": "ef", "fid": "EF08", "sfi": 8, "structure": "transparent",
             "read": "key:RKSSSE", "write": "mac:UKSSSE", "label": "EF08", "size": 0x1000,
             "data": photo_data.hex().upper()},
            df("DF01"), df("DF02"), df("DF03"),
            df("DF04", [
                {"kind": "ef", "fid": "EF05", "sfi": 5, "structure": "records", "read": "pin",
                 "write": "mac:UK1DF04", "label": "EF05", "records": df04_ef05},
                {"kind": "ef", "fid": "EF06", "sfi": 6, "structure": "records", "read": "pin",
                 "write": "mac:UK1DF04", "label": "EF06", "records": df04_ef06},
                {"kind": "ef", "fid": "EF08", "sfi": 8, "structure": "cyclic", "read": "pin",
                 "write": "never", "label": "EF08", "record_size": 28, "max_records": 30,
                 "records": []},
                {"kind": "ef", "fid": "EF15", "sfi": 21, "structure": "cyclic", "read": "pin",
                 "write": "never", "label": "EF15", "record_size": 28, "max_records": 8,
                 "records": []},
            ]),
            df("DF07"),
        ],
    }
    mf = {
        "kind": "df", "fid": "3F00", "label": "MF",
        "children": [
            pboc.build_files(pan=pan, psn=psn, expiry=expiry.strftime("%Y%m%d"),
                             effective=today.strftime("%Y%m%d"), name_gbk=holder.name.encode(
                                 "gbk"), ssn=ssn),
            ssse,
        ],
    }
    tries = 0 if locked else pin_max_tries
    pins = {"ssse": PinRecord.create(initial_pin, tries, initial=True).to_doc()}
    if pin_policy == "separate":
        pins["bank"] = PinRecord.create(initial_pin, tries, initial=True).to_doc()
    doc: dict[str, Any] = {
        "format": "sscard-card",
        "schema": 1,
        "test_keys": True,
        "identity": {
            "name": holder.name, "ssn": ssn, "sex": sex, "ethnicity": holder.ethnicity,
            "birthplace": birthplace, "birth_date": birth, "category": holder.category,
            "bank": bank, "area_code": area, "card_number": card_number,
            "card_id_code": cid.to_hex(), "generation": generation, "algorithm": alg_name,
            "issue_date": today.strftime("%Y%m%d"), "expiry_date": expiry.strftime("%Y%m%d"),
            "historical": hist.hex().upper(), "pan": pan, "psn": psn,
        },
        "atr": atr.hex().upper(),
        "policy": {"pin_policy": pin_policy, "pin_max_tries": pin_max_tries,
                   "activated": activated, "key_max_tries": key_max_tries},
        "pins": pins,
        "keys": {k: v.hex().upper() for k, v in sorted(card_keys.items())},
        "counters": {"atc": 0, "key_tries_left": {
            name: key_max_tries for name in sorted(keys.EXTERNAL_AUTH_KEYS)
            if name in card_keys}},
        "state": {"card_blocked": False, "blocked_apps": []},
        "purse": {"offline_seq": 0, "online_seq": 0},
        "files": mf,
    }
    _check_readable(doc["identity"])
    doc = seal(doc)
    CardImage.from_doc(doc)  # self-check: what we issue must load
    if registry is not None and register:
        registry.record(area, card_number, cid.to_hex())
    return Issued(doc, initial_pin, card_number)


def _registry_number(seq: int) -> str:
    body = CARD_NUMBER_PREFIX + f"{seq:07d}"
    return body + codec.card_number_check_char(body)

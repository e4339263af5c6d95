"""Card and PSAM images: a card as a file (JSON or TOML), validated, sealed, written atomically.

Document shape (schema 1), every binary value as upper-case hex::

    format      "sscard-card" (or "sscard-psam", see card.psam)
    schema      1
    test_keys   true  (the keys are the public TEST keys of card.keys)
    identity    holder and card summary: name, ssn, sex, ethnicity, birthplace, birth_date,
                bank, area_code, card_number, card_id_code, generation, algorithm, issue_date,
                expiry_date, pan, psn, category
    atr         the answer-to-reset announced (T=0 variant; see card.os)
    policy      pin_policy shared|separate, pin_max_tries, activated, key_max_tries
                (error limit of each EXTERNAL AUTHENTICATE key, 1..15, default 3)
    pins        {"ssse": PIN, "bank": PIN (separate only)}; PIN = salt, hash
                (SHA-256 of salt ‖ PIN digits), length, tries_left, initial
    keys        card keys diversified to level 3 (card.keys)
    counters    atc (bank application transaction counter), key_tries_left {key: tries
                left} for each EXTERNAL AUTHENTICATE key (card.keys.EXTERNAL_AUTH_KEYS,
                today RKSSSE; 0 = blocked, see card.keyauth)
    purse       offline purse counters and the last transaction proof (card.purse)
    state       card_blocked, blocked_apps
    files       the MF tree (card.fs)
    integrity   {"algorithm": "sha256", "sections": {section: digest}}

Images written before the key error counters existed lack ``policy.key_max_tries`` and
``counters.key_tries_left``: they load with the default limit and full counters, and the
card's next durable write adds both (same schema; the seal covers whatever is present).

The integrity seal holds a SHA-256 of every other top-level section in canonical JSON
(sorted keys, no spaces, UTF-8): a section edited by hand is refused with its name.
Saving is atomic (temp file in the same directory, fsync, rename, fsync of the directory)
so a crash leaves either the old or the new image, never half of one; an image reached
through a symbolic link is saved to the link's target, so the link stays a link. A file
with several hard links is refused (the rename would split its names into two cards).
"""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
import errno
import hashlib
import json
import os
import secrets
import stat
import tempfile
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from apdu import codec
from apdu.errors import ApduError
from card import crypto
from card.errors import ImageError, IssueError
from card.fs import DedicatedFile, node_from_doc
from card.keys import EXTERNAL_AUTH_KEYS

SCHEMA = 1
CARD_FORMAT = "sscard-card"
KEY_MAX_TRIES = 3
"""Default error limit of an EXTERNAL AUTHENTICATE key (policy.key_max_tries): spec/card.md
names none for keys, so the PIN's default of §1 is used."""
PIN_POLICIES = ("shared", "separate")
GENERATIONS = ("1.00", "2.00", "2.01", "3.00")
BANKS = {
    "ICBC": "中国工商银行",
    "ABC": "中国农业银行",
    "BOC": "中国银行",
    "CCB": "中国建设银行",
}

# --- canonical form, seal -------------------------------------------------------------


def canonical(value: Any) -> bytes:
    """Canonical JSON bytes of a document section (sorted keys, no whitespace, UTF-8)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def seal(doc: dict[str, Any]) -> dict[str, Any]:
    """Return ``doc`` with a fresh integrity seal over its other sections."""
    out = {k: v for k, v in doc.items() if k != "integrity"}
    out["integrity"] = {
        "algorithm": "sha256",
        "sections": {k: hashlib.sha256(canonical(v)).hexdigest() for k, v in sorted(out.items())},
    }
    return out


def check_seal(doc: dict[str, Any]) -> None:
    """:class:`ImageError` naming the first section whose digest does not match."""
    integ = doc.get("integrity")
    if not isinstance(integ, dict) or integ.get("algorithm") != "sha256":
        raise ImageError("integrity", "missing or unknown integrity seal")
    sections = integ.get("sections")
    if not isinstance(sections, dict):
        raise ImageError("integrity.sections", "missing")
    body = {k: v for k, v in doc.items() if k != "integrity"}
    for name in sorted(set(body) | set(sections)):
        if name not in sections:
            raise ImageError(name, "section is not covered by the integrity seal (added by hand?)")
        if name not in body:
            raise ImageError(name, "section sealed in the image is missing")
        if hashlib.sha256(canonical(body[name])).hexdigest() != sections[name]:
            raise ImageError(
                name, "content does not match the integrity seal: the image was edited by "
                "hand or damaged; re-issue it ('sscard card issue', a PSAM 'sscard card psam')"
            )


# --- files: read, atomic write ----------------------------------------------------------


def read_document(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Parse a JSON or TOML (by suffix ``.toml``) image; :class:`ImageError` on syntax errors."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise ImageError("file", f"{p} does not exist") from None
    except OSError as exc:
        raise ImageError("file", f"{p} cannot be read: {exc.strerror}") from None
    try:
        if p.suffix.lower() == ".toml":
            doc: Any = tomllib.loads(raw.decode("utf-8"))
        else:
            doc = json.loads(raw.decode("utf-8"))
    except RecursionError:
        raise ImageError("file", f"{p} is not a usable {_kind(p)} document: nested too "
                         f"deep (an image nests at most {MAX_DEPTH} levels)") from None
    except ValueError as exc:  # JSON/TOML syntax, UTF-8, an integer of too many digits
        raise ImageError("file", f"{p} is not a valid {_kind(p)} document: {exc}") from None
    if not isinstance(doc, dict):
        raise ImageError("file", f"{p} does not hold an object at its top level")
    if _depth(doc) > MAX_DEPTH:
        raise ImageError("file", f"{p} is not a usable {_kind(p)} document: nested too "
                         f"deep (an image nests at most {MAX_DEPTH} levels)")
    return doc


MAX_DEPTH = 64
"""The deepest nesting of objects and lists an image may have (real images use about 12):
deeper documents would exhaust the recursion of the seal and the file-tree loaders."""


def _depth(value: Any) -> int:
    """How deeply objects and lists nest in ``value`` (counted without recursion)."""
    deepest = 0
    todo: list[tuple[Any, int]] = [(value, 1)]
    while todo:
        item, level = todo.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, level)
        if level > MAX_DEPTH:
            break
        todo.extend((child, level + 1) for child in children)
    return deepest


def _kind(p: Path) -> str:
    return "TOML" if p.suffix.lower() == ".toml" else "JSON"


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def _toml_key(key: str) -> str:
    return key if key.replace("_", "").replace("-", "").isalnum() and key.isascii() else (
        json.dumps(key))


def dumps(doc: dict[str, Any], toml: bool = False) -> str:
    """Serialise an image: pretty JSON, or TOML (one ``key = value`` line per section)."""
    if not toml:
        return json.dumps(doc, indent=1, ensure_ascii=False) + "\n"
    return "".join(f"{_toml_key(k)} = {_toml_value(v)}\n" for k, v in doc.items())


def atomic_write(path: str | os.PathLike[str], text: str,
                 before_rename: Callable[[], None] | None = None) -> None:
    """Write ``text`` to ``path`` atomically: temp file, fsync, rename, fsync the directory.

    A symbolic link stays a link: the link's target is replaced (temp file beside it).
    Anything but a regular file (a directory, a device) is refused with an ``OSError``, and
    so is a file with several hard links: the rename would leave the other names on the old
    content (a card image split in two, one of them with its PIN tries restored).
    ``before_rename`` runs after the temp file is durable and before it replaces the old
    file (fault injection uses it to cut power at the worst moment; an exception from it
    leaves the old file untouched).
    """
    p = Path(path)
    if p.is_symlink():
        p = Path(os.path.realpath(p))
    directory = p.parent if str(p.parent) else Path(".")
    try:
        st = p.stat()
    except FileNotFoundError:
        mode = 0o644
    else:
        if stat.S_ISDIR(st.st_mode):
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
        if not stat.S_ISREG(st.st_mode):
            raise OSError(errno.EINVAL, "not a regular file: refusing to replace it", str(path))
        if st.st_nlink > 1:
            raise OSError(errno.EMLINK, hard_links_message(path, st.st_nlink), str(path))
        mode = st.st_mode & 0o777
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=directory)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        if before_rename is not None:
            before_rename()
        os.replace(tmp, p)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    dfd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def hard_links_message(path: str | os.PathLike[str], links: int) -> str:
    """Why a file with ``links`` hard links is not replaced."""
    return (f"{path} has {links} hard links: replacing it would split them into different "
            "files (a card image's PIN tries counted under one name only); use a copy (cp) "
            "or a symbolic link instead")


def check_single_link(path: str | os.PathLike[str]) -> None:
    """:class:`ImageError` when the image file at ``path`` has several hard links, so the
    user hears it before a card is used (and a PIN tried) rather than at its first save."""
    try:
        links = os.stat(path).st_nlink
    except OSError:
        return  # a missing or unreadable file is reported by whoever reads it
    if links > 1:
        raise ImageError("file", hard_links_message(path, links))


class Store:
    """Where an image is durable. ``load`` returns the last saved document."""

    def load(self) -> dict[str, Any]:
        raise NotImplementedError

    def save(self, doc: dict[str, Any], before_commit: Callable[[], None] | None = None) -> None:
        raise NotImplementedError


class FileStore(Store):
    """An image file; every save is an :func:`atomic_write` of the sealed document."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.toml = self.path.suffix.lower() == ".toml"
        check_single_link(self.path)

    def load(self) -> dict[str, Any]:
        return read_document(self.path)

    def save(self, doc: dict[str, Any], before_commit: Callable[[], None] | None = None) -> None:
        atomic_write(self.path, dumps(seal(doc), self.toml), before_commit)


class MemoryStore(Store):
    """An in-memory image (tests, throw-away cards) with the same commit semantics."""

    def __init__(self, doc: dict[str, Any]) -> None:
        self._doc = seal(copy.deepcopy(doc))

    def load(self) -> dict[str, Any]:
        return copy.deepcopy(self._doc)

    def save(self, doc: dict[str, Any], before_commit: Callable[[], None] | None = None) -> None:
        sealed = seal(copy.deepcopy(doc))
        if before_commit is not None:
            before_commit()
        self._doc = sealed


# --- the card image model ---------------------------------------------------------------


@dataclass
class PinRecord:
    """One PIN: salted hash, digit count, remaining tries, initial-PIN flag."""

    salt: bytes
    digest: bytes
    length: int
    tries_left: int
    initial: bool = False

    @classmethod
    def create(cls, pin: str, tries: int, initial: bool = False) -> PinRecord:
        salt = secrets.token_bytes(8)
        return cls(salt, pin_digest(salt, pin), len(pin), tries, initial)

    def matches(self, pin: str) -> bool:
        return secrets.compare_digest(pin_digest(self.salt, pin), self.digest)

    def set(self, pin: str) -> None:
        self.salt = secrets.token_bytes(8)
        self.digest = pin_digest(self.salt, pin)
        self.length = len(pin)

    def to_doc(self) -> dict[str, Any]:
        return {
            "salt": self.salt.hex().upper(),
            "hash": self.digest.hex().upper(),
            "length": self.length,
            "tries_left": self.tries_left,
            "initial": self.initial,
        }


def pin_digest(salt: bytes, pin: str) -> bytes:
    return hashlib.sha256(salt + pin.encode("ascii")).digest()


@dataclass
class CardImage:
    """The validated, durable state of one card."""

    identity: dict[str, Any]
    atr: bytes
    pin_policy: str
    pin_max_tries: int
    activated: bool
    pins: dict[str, PinRecord]
    keys: dict[str, bytes]
    atc: int
    card_blocked: bool
    blocked_apps: list[str]
    mf: DedicatedFile
    test_keys: bool = True
    purse: dict[str, Any] = field(default_factory=lambda: dict(PURSE_DEFAULT))
    key_max_tries: int = KEY_MAX_TRIES
    key_tries: dict[str, int] = field(default_factory=dict)
    """Tries left of each EXTERNAL AUTHENTICATE key the card holds (0 = blocked)."""

    @property
    def algorithm(self) -> int:
        return crypto.ALG_SM4 if self.identity["algorithm"] == "SM4" else crypto.ALG_3DES

    @property
    def generation(self) -> str:
        return str(self.identity["generation"])

    @property
    def historical(self) -> bytes:
        """ATR historical bytes (the last 13 bytes before TCK, see card.atr)."""
        return bytes.fromhex(self.identity["historical"])

    def pin_for(self, app: str) -> PinRecord:
        """The PIN that guards ``app`` (``shared`` policy: always the SSSE PIN)."""
        if self.pin_policy == "separate" and app == "PBOC":
            return self.pins["bank"]
        return self.pins["ssse"]

    def key_tries_left(self, name: str) -> int:
        """Tries left of the EXTERNAL AUTHENTICATE key ``name`` (full when never counted)."""
        return self.key_tries.get(name, self.key_max_tries)

    def to_doc(self) -> dict[str, Any]:
        return {
            "format": CARD_FORMAT,
            "schema": SCHEMA,
            "test_keys": self.test_keys,
            "identity": copy.deepcopy(self.identity),
            "atr": self.atr.hex().upper(),
            "policy": {
                "pin_policy": self.pin_policy,
                "pin_max_tries": self.pin_max_tries,
                "activated": self.activated,
                "key_max_tries": self.key_max_tries,
            },
            "pins": {k: v.to_doc() for k, v in self.pins.items()},
            "keys": {k: v.hex().upper() for k, v in sorted(self.keys.items())},
            "counters": {"atc": self.atc, "key_tries_left": dict(sorted(self.key_tries.items()))},
            "state": {"card_blocked": self.card_blocked, "blocked_apps": list(self.blocked_apps)},
            "purse": {k: copy.deepcopy(v) for k, v in self.purse.items() if v is not None},
            "files": self.mf.to_doc(),
        }

    @classmethod
    def from_doc(cls, doc: dict[str, Any], verify_seal: bool = True) -> CardImage:
        """Validate a document and build the image; :class:`ImageError` names the field."""
        if doc.get("format") != CARD_FORMAT:
            raise ImageError("format", f"expected {CARD_FORMAT!r}, got {doc.get('format')!r}")
        if doc.get("schema") != SCHEMA:
            raise ImageError("schema", f"unsupported schema {doc.get('schema')!r} "
                             f"(this sscard reads schema {SCHEMA})")
        if verify_seal:
            check_seal(doc)
        test_keys = doc.get("test_keys")
        if not isinstance(test_keys, bool):
            raise ImageError("test_keys", "must be true or false")
        identity = _section(doc, "identity")
        validate_identity(identity)
        atr = _hexfield(doc.get("atr"), "atr")
        if len(atr) < 2 or atr[0] not in (0x3B, 0x3F):
            raise ImageError("atr", "must start with 3B or 3F")
        policy = _section(doc, "policy")
        pin_policy = policy.get("pin_policy", "shared")
        if pin_policy not in PIN_POLICIES:
            raise ImageError("policy.pin_policy", "must be 'shared' or 'separate'")
        max_tries = policy.get("pin_max_tries", 3)
        if not _is_int(max_tries) or not 1 <= max_tries <= 15:
            raise ImageError("policy.pin_max_tries", "must be an integer 1..15")
        activated = policy.get("activated", True)
        if not isinstance(activated, bool):
            raise ImageError("policy.activated", "must be true or false")
        pins_doc = _section(doc, "pins")
        needed = ["ssse"] + (["bank"] if pin_policy == "separate" else [])
        pins: dict[str, PinRecord] = {}
        for name in needed:
            pins[name] = _pin(pins_doc.get(name), f"pins.{name}", max_tries)
        for name in pins_doc:
            if name not in needed:
                raise ImageError(f"pins.{name}", f"not used under pin_policy {pin_policy!r}")
        keys_doc = _section(doc, "keys")
        keys: dict[str, bytes] = {}
        for name, value in keys_doc.items():
            key = _hexfield(value, f"keys.{name}")
            if len(key) != 16:
                raise ImageError(f"keys.{name}", "a card key is 16 bytes")
            keys[name] = key
        for name in ("IRK", "RKSSSE", "PUK", "UKSSSE", "BK", "LK"):
            if name not in keys:
                raise ImageError(f"keys.{name}", "missing")
        counters = _section(doc, "counters")
        atc = counters.get("atc", 0)
        if not isinstance(atc, int) or isinstance(atc, bool) or not 0 <= atc <= 0xFFFF:
            raise ImageError("counters.atc", "must be an integer 0..65535")
        state = _section(doc, "state")
        card_blocked = state.get("card_blocked", False)
        if not isinstance(card_blocked, bool):
            raise ImageError("state.card_blocked", "must be true or false")
        blocked_apps = state.get("blocked_apps", [])
        if not isinstance(blocked_apps, list) or not all(isinstance(a, str) for a in blocked_apps):
            raise ImageError("state.blocked_apps", "must be a list of application names")
        mf = node_from_doc(doc.get("files"), "files")
        if not isinstance(mf, DedicatedFile) or mf.fid != 0x3F00:
            raise ImageError("files", "the root must be the MF (df, fid 3F00)")
        key_max = policy.get("key_max_tries", KEY_MAX_TRIES)
        if not _is_int(key_max) or not 1 <= key_max <= 15:
            raise ImageError("policy.key_max_tries", "must be an integer 1..15")
        key_tries = _key_tries(counters.get("key_tries_left", {}), keys, key_max)
        purse = _purse(doc.get("purse", PURSE_DEFAULT))
        return cls(identity, atr, pin_policy, max_tries, activated, pins, keys, atc,
                   card_blocked, blocked_apps, mf, test_keys, purse, key_max, key_tries)


def _key_tries(value: Any, keys: dict[str, bytes], max_tries: int) -> dict[str, int]:
    """``counters.key_tries_left``: each EXTERNAL AUTHENTICATE key the card holds, with
    ``max_tries`` for a key not listed (an image written before the counters existed)."""
    where = "counters.key_tries_left"
    if not isinstance(value, dict):
        raise ImageError(where, "must be an object {key name: tries left}")
    for name in value:
        if name not in EXTERNAL_AUTH_KEYS or name not in keys:
            raise ImageError(f"{where}.{name}", "not an EXTERNAL AUTHENTICATE key of this card "
                             f"({', '.join(k for k in EXTERNAL_AUTH_KEYS if k in keys)})")
    out: dict[str, int] = {}
    for name in EXTERNAL_AUTH_KEYS:
        if name not in keys:
            continue
        tries = value.get(name, max_tries)
        if not _is_int(tries) or not 0 <= tries <= max_tries:
            raise ImageError(f"{where}.{name}", f"must be between 0 and {max_tries}")
        out[name] = tries
    return out


PURSE_DEFAULT: dict[str, Any] = {"offline_seq": 0, "online_seq": 0, "last": None}


def _purse(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ImageError("purse", "must be an object")
    out = dict(PURSE_DEFAULT)
    for key in ("offline_seq", "online_seq"):
        n = value.get(key, 0)
        if not _is_int(n) or not 0 <= n <= 0xFFFF:
            raise ImageError(f"purse.{key}", "must be an integer 0..65535")
        out[key] = n
    last = value.get("last")
    if last is not None:
        if (not isinstance(last, dict) or not _is_int(last.get("seq"))
                or last.get("type") not in (0x02, 0x06) or not isinstance(last.get("proof"), str)):
            raise ImageError("purse.last", "must hold seq, type (2 or 6) and proof")
        _hexfield(last["proof"], "purse.last.proof")
        out["last"] = dict(last)
    return out


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _section(doc: dict[str, Any], name: str) -> dict[str, Any]:
    value = doc.get(name)
    if not isinstance(value, dict):
        raise ImageError(name, "missing or not an object")
    return value


def _hexfield(value: Any, where: str) -> bytes:
    if not isinstance(value, str):
        raise ImageError(where, "must be a hex string")
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise ImageError(where, "is not valid hex") from None


def _pin(value: Any, where: str, max_tries: int) -> PinRecord:
    if not isinstance(value, dict):
        raise ImageError(where, "missing or not an object")
    salt = _hexfield(value.get("salt"), f"{where}.salt")
    digest = _hexfield(value.get("hash"), f"{where}.hash")
    if len(digest) != 32:
        raise ImageError(f"{where}.hash", "must be a SHA-256 digest (32 bytes)")
    length = value.get("length")
    if not isinstance(length, int) or not 4 <= length <= 12:
        raise ImageError(f"{where}.length", "must be an integer 4..12")
    tries = value.get("tries_left")
    if not isinstance(tries, int) or isinstance(tries, bool) or not 0 <= tries <= max_tries:
        raise ImageError(f"{where}.tries_left", f"must be between 0 and {max_tries}")
    initial = value.get("initial", False)
    if not isinstance(initial, bool):
        raise ImageError(f"{where}.initial", "must be true or false")
    return PinRecord(salt, digest, length, tries, initial)


def _date(value: Any, where: str) -> dt.date:
    if not isinstance(value, str) or len(value) != 8 or not value.isdigit():
        raise ImageError(where, "must be a date YYYYMMDD")
    try:
        return dt.date(int(value[:4]), int(value[4:6]), int(value[6:]))
    except ValueError:
        raise ImageError(where, f"{value} is not a calendar date") from None


def validate_identity(ident: dict[str, Any]) -> None:
    """Check the identity section; :class:`ImageError` names the first bad field."""
    for key in ("name", "ssn", "sex", "birth_date", "bank", "area_code", "card_number",
                "card_id_code", "generation", "algorithm", "issue_date", "expiry_date",
                "historical", "pan"):
        if not isinstance(ident.get(key), str):
            raise ImageError(f"identity.{key}", "missing or not a string")
    if not codec.id_number_valid(ident["ssn"]):
        raise ImageError("identity.ssn", "not a valid resident ID number (check digit wrong)")
    if not codec.card_number_valid(ident["card_number"]):
        raise ImageError("identity.card_number", "check character wrong")
    if ident["sex"] not in ("1", "2", "9"):
        raise ImageError("identity.sex", "must be 1 (male), 2 (female) or 9 (unstated)")
    if ident["bank"] not in BANKS:
        raise ImageError("identity.bank", f"must be one of {', '.join(BANKS)}")
    area = ident["area_code"]
    if len(area) != 6 or not area.isascii() or not area.isdigit():
        raise ImageError("identity.area_code", "must be 6 digits")
    if ident["generation"] not in GENERATIONS:
        raise ImageError("identity.generation", f"must be one of {', '.join(GENERATIONS)}")
    if ident["algorithm"] not in ("3DES", "SM4"):
        raise ImageError("identity.algorithm", "must be 3DES or SM4")
    for key in ("birth_date", "issue_date", "expiry_date"):
        _date(ident[key], f"identity.{key}")
    try:
        cid = codec.CardIdCode.from_hex(ident["card_id_code"])
    except ApduError as exc:
        raise ImageError("identity.card_id_code", str(exc)) from None
    if cid.city != area:
        raise ImageError("identity.card_id_code", "city code differs from identity.area_code")
    if cid.auth != card_id_auth(area, cid.serial):
        raise ImageError("identity.card_id_code", "authentication code (check) wrong")
    hist = _hexfield(ident["historical"], "identity.historical")
    if len(hist) != 13:
        raise ImageError("identity.historical", "must be 13 bytes")
    if not ident["pan"].isdigit() or not 13 <= len(ident["pan"]) <= 19:
        raise ImageError("identity.pan", "must be 13..19 digits")
    try:
        ident["name"].encode("gbk")
    except UnicodeEncodeError:
        raise ImageError("identity.name", "cannot be written in GBK") from None


AREA_PROVINCES = frozenset({
    "11", "12", "13", "14", "15", "21", "22", "23", "31", "32", "33", "34", "35", "36", "37",
    "41", "42", "43", "44", "45", "46", "50", "51", "52", "53", "54", "61", "62", "63", "64",
    "65", "71", "81", "82"})
"""The province parts (first two digits) of GB/T 2260 administrative division codes."""


def check_area(area: str) -> str:
    """An issuing area (the city code of spec/card.md §4: a GB/T 2260 prefecture-level
    division, e.g. 370800 Jining), or :class:`IssueError` saying what is wrong."""
    if len(area) != 6 or not area.isascii() or not area.isdigit():
        raise IssueError(f"area code must be 6 digits, got {area!r}")
    if area[:2] not in AREA_PROVINCES:
        raise IssueError(f"area code {area}: {area[:2]} is not a province code (GB/T 2260: "
                         "11 Beijing .. 65 Xinjiang, 71, 81, 82); give the city's code, "
                         "e.g. 370800")
    if area[2:4] == "00":
        raise IssueError(f"area code {area} names a province, not a city: give the city's "
                         f"code (e.g. {area[:2]}0100)")
    return area


def card_id_auth(area: str, serial_hex: str) -> str:
    """The 4-byte authentication code of a card identification code (sscard check).

    The standard leaves its computation to the issuer; sscard uses the first four bytes of
    SHA-256 over ``area(ASCII) ‖ D1 56 00 00 05 ‖ serial`` so an invented or mistyped code
    is detected.
    """
    digest = hashlib.sha256(area.encode() + codec.RID_MOHRSS + bytes.fromhex(serial_hex)).digest()
    return digest[:4].hex().upper()


def load_card_image(path: str | os.PathLike[str]) -> CardImage:
    """Read, check and build a card image from a file."""
    return CardImage.from_doc(read_document(path))

"""The card file system: MF, DDF/ADF/DF and elementary files (ISO 7816-4 §7, spec/card.md §3–4).

A :class:`DedicatedFile` holds children; an :class:`ElementaryFile` has one structure:

* ``transparent``: a byte string of fixed ``size`` (READ/UPDATE BINARY);
* ``records``: variable-length records in the social security form ``tag(1) len(1) value``
  whose record identifier is the tag (spec/card.md §4), also readable by record number
  (EMV records of the bank application are this kind too, one template per record);
* ``cyclic``: fixed-size records, record 1 is the most recent, the oldest is overwritten
  when ``max_records`` are present (ISO 7816-4 §7.3.1).

Access conditions are strings: ``free``, ``never``, ``pin`` (PIN verified since reset),
``key:<NAME>`` (read after EXTERNAL AUTHENTICATE with that key), ``mac:<NAME>`` (write with a
MAC under that key, CLA 04/84). Every node converts to and from the JSON shape stored in
card images (:mod:`card.image`); :func:`node_from_doc` raises :class:`ImageError` naming the
offending field.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from card.errors import ImageError

STRUCTURES = ("transparent", "records", "cyclic")
ACCESS_PREFIXES = ("key:", "mac:")


def _check_access(value: Any, where: str) -> str:
    if not isinstance(value, str) or not (
        value in ("free", "never", "pin") or value.startswith(ACCESS_PREFIXES)
    ):
        raise ImageError(where, f"unknown access condition {value!r}")
    return value


def _hex(value: Any, where: str) -> bytes:
    if not isinstance(value, str):
        raise ImageError(where, "must be a hex string")
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise ImageError(where, "is not valid hex") from None


def _fid(value: Any, where: str) -> int | None:
    if value is None:
        return None
    raw = _hex(value, where)
    if len(raw) != 2:
        raise ImageError(where, "a file identifier is 2 bytes (4 hex digits)")
    return int.from_bytes(raw, "big")


@dataclass
class ElementaryFile:
    """An EF. ``data`` for transparent files, ``records`` for record files."""

    fid: int
    structure: str
    sfi: int | None = None
    read: str = "free"
    write: str = "never"
    size: int = 0
    data: bytearray = field(default_factory=bytearray)
    records: list[bytes] = field(default_factory=list)
    record_size: int = 0
    max_records: int = 0
    label: str = ""

    # -- records (spec/card.md §4) ------------------------------------------------------
    def record_by_tag(self, tag: int) -> tuple[int, bytes] | None:
        """(index, record) of the first record whose first byte is ``tag``."""
        for i, rec in enumerate(self.records):
            if rec and rec[0] == tag:
                return i, rec
        return None

    def record_by_number(self, number: int) -> bytes | None:
        """Record ``number`` (1-based; for cyclic files 1 is the most recent)."""
        if 1 <= number <= len(self.records):
            return self.records[number - 1]
        return None

    def append_cyclic(self, record: bytes) -> None:
        """Write a new most-recent record, dropping the oldest when full."""
        if len(record) != self.record_size:
            raise ValueError(f"cyclic record must be {self.record_size} bytes")
        self.records.insert(0, bytes(record))
        del self.records[self.max_records :]

    def to_doc(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "kind": "ef",
            "fid": f"{self.fid:04X}",
            "structure": self.structure,
            "read": self.read,
            "write": self.write,
        }
        if self.label:
            doc["label"] = self.label
        if self.sfi is not None:
            doc["sfi"] = self.sfi
        if self.structure == "transparent":
            doc["size"] = self.size
            doc["data"] = bytes(self.data).rstrip(b"\x00").hex().upper()
        else:
            doc["records"] = [r.hex().upper() for r in self.records]
        if self.structure == "cyclic":
            doc["record_size"] = self.record_size
            doc["max_records"] = self.max_records
        return doc


@dataclass
class DedicatedFile:
    """MF, DDF, ADF or DF. ``app`` names the application whose PIN and keys apply."""

    fid: int | None
    name: bytes = b""
    label: str = ""
    app: str = ""
    fci: bytes | None = None
    children: list[DedicatedFile | ElementaryFile] = field(default_factory=list)
    parent: DedicatedFile | None = field(default=None, repr=False, compare=False)

    def child_by_fid(self, fid: int) -> DedicatedFile | ElementaryFile | None:
        for child in self.children:
            if child.fid == fid:
                return child
        return None

    def ef_by_sfi(self, sfi: int) -> ElementaryFile | None:
        for child in self.children:
            if isinstance(child, ElementaryFile) and child.sfi == sfi:
                return child
        return None

    def walk(self) -> Iterator[DedicatedFile | ElementaryFile]:
        yield self
        for child in self.children:
            if isinstance(child, DedicatedFile):
                yield from child.walk()
            else:
                yield child

    def df_by_name(self, name: bytes) -> DedicatedFile | None:
        """The DF whose name is ``name`` anywhere under this DF (ISO 7816-4 §7.1.1)."""
        for node in self.walk():
            if isinstance(node, DedicatedFile) and node.name and node.name == name:
                return node
        return None

    def find(self, path: str) -> DedicatedFile | ElementaryFile | None:
        """Follow a ``/``-separated path of labels or FIDs from this DF (``SSSE/DF04/EF08``)."""
        node: DedicatedFile | ElementaryFile = self
        for part in [p for p in path.split("/") if p]:
            if not isinstance(node, DedicatedFile):
                return None
            found: DedicatedFile | ElementaryFile | None = None
            for child in node.children:
                if child.label == part or (child.fid is not None and f"{child.fid:04X}" == part):
                    found = child
                    break
            if found is None:
                return None
            node = found
        return node

    @property
    def application(self) -> str:
        """The application this DF belongs to (its own ``app`` or the nearest ancestor's)."""
        node: DedicatedFile | None = self
        while node is not None:
            if node.app:
                return node.app
            node = node.parent
        return ""

    def application_df(self) -> DedicatedFile | None:
        """The DF that defines the application this DF belongs to."""
        node: DedicatedFile | None = self
        while node is not None:
            if node.app:
                return node
            node = node.parent
        return None

    def to_doc(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"kind": "df"}
        if self.fid is not None:
            doc["fid"] = f"{self.fid:04X}"
        if self.name:
            doc["name"] = self.name.hex().upper()
        if self.label:
            doc["label"] = self.label
        if self.app:
            doc["app"] = self.app
        if self.fci is not None:
            doc["fci"] = self.fci.hex().upper()
        doc["children"] = [c.to_doc() for c in self.children]
        return doc


def _well_formed_record(rec: bytes) -> bool:
    """``tag len value`` with a one-byte length, or ``81 len`` for an EMV template."""
    if len(rec) >= 2 and rec[1] == len(rec) - 2:
        return True
    return len(rec) >= 3 and rec[1] == 0x81 and rec[2] == len(rec) - 3


def node_from_doc(doc: Any, where: str = "files") -> DedicatedFile | ElementaryFile:
    """Build a file (and its subtree) from its image form; :class:`ImageError` on any defect."""
    if not isinstance(doc, dict):
        raise ImageError(where, "must be an object")
    kind = doc.get("kind")
    label = doc.get("label", "")
    if not isinstance(label, str):
        raise ImageError(f"{where}.label", "must be a string")
    if kind == "df":
        name = _hex(doc.get("name", ""), f"{where}.name")
        if len(name) > 16:
            raise ImageError(f"{where}.name", "a DF name is at most 16 bytes")
        fci = doc.get("fci")
        app = doc.get("app", "")
        if not isinstance(app, str):
            raise ImageError(f"{where}.app", "must be a string")
        children_doc = doc.get("children", [])
        if not isinstance(children_doc, list):
            raise ImageError(f"{where}.children", "must be a list")
        df = DedicatedFile(
            fid=_fid(doc.get("fid"), f"{where}.fid"),
            name=name,
            label=label,
            app=app,
            fci=None if fci is None else _hex(fci, f"{where}.fci"),
        )
        seen: set[int] = set()
        for i, child_doc in enumerate(children_doc):
            child = node_from_doc(child_doc, f"{where}.children[{i}]")
            if child.fid is not None:
                if child.fid in seen:
                    raise ImageError(f"{where}.children[{i}].fid", "duplicate file identifier")
                seen.add(child.fid)
            if isinstance(child, DedicatedFile):
                child.parent = df
            df.children.append(child)
        return df
    if kind != "ef":
        raise ImageError(f"{where}.kind", f"must be 'df' or 'ef', got {kind!r}")
    fid = _fid(doc.get("fid"), f"{where}.fid")
    if fid is None:
        raise ImageError(f"{where}.fid", "an EF needs a file identifier")
    structure = doc.get("structure")
    if structure not in STRUCTURES:
        raise ImageError(f"{where}.structure", f"must be one of {', '.join(STRUCTURES)}")
    sfi = doc.get("sfi")
    if sfi is not None and (not isinstance(sfi, int) or not 1 <= sfi <= 30):
        raise ImageError(f"{where}.sfi", "must be an integer 1..30")
    ef = ElementaryFile(
        fid=fid,
        structure=structure,
        sfi=sfi,
        read=_check_access(doc.get("read", "free"), f"{where}.read"),
        write=_check_access(doc.get("write", "never"), f"{where}.write"),
        label=label,
    )
    if structure == "transparent":
        size = doc.get("size")
        if not isinstance(size, int) or not 0 < size <= 0x8000:
            raise ImageError(f"{where}.size", "must be an integer 1..32768")
        data = _hex(doc.get("data", ""), f"{where}.data")
        if len(data) > size:
            raise ImageError(f"{where}.data", f"{len(data)} bytes exceed the file size {size}")
        ef.size = size
        ef.data = bytearray(data.ljust(size, b"\x00"))
        return ef
    records_doc = doc.get("records", [])
    if not isinstance(records_doc, list):
        raise ImageError(f"{where}.records", "must be a list")
    for i, rec_doc in enumerate(records_doc):
        rec = _hex(rec_doc, f"{where}.records[{i}]")
        if structure == "records" and not _well_formed_record(rec):
            raise ImageError(f"{where}.records[{i}]", "must be tag(1) len(1) value")
        ef.records.append(rec)
    if structure == "cyclic":
        rs, mr = doc.get("record_size"), doc.get("max_records")
        if not isinstance(rs, int) or not 1 <= rs <= 255:
            raise ImageError(f"{where}.record_size", "must be an integer 1..255")
        if not isinstance(mr, int) or not 1 <= mr <= 254:
            raise ImageError(f"{where}.max_records", "must be an integer 1..254")
        if len(ef.records) > mr:
            raise ImageError(f"{where}.records", f"more than max_records={mr}")
        for i, rec in enumerate(ef.records):
            if len(rec) != rs:
                raise ImageError(f"{where}.records[{i}]", f"must be {rs} bytes")
        ef.record_size, ef.max_records = rs, mr
    return ef

"""TLV encodings: BER-TLV (ISO 7816-4 §5.2, EMV Book 3 Annex B) and the card's simple records.

BER-TLV tags are kept as integers of their encoded bytes (``0x9F0C`` for ``9F 0C``).
Constructed objects carry their encoded children as ``value``.

>>> fci = bytes.fromhex("6F0A8403A00001A503880101")
>>> find(fci, 0x6F, 0x84).value.hex()
'a00001'
>>> find(fci, 0x88).value
b'\\x01'

The card's records (spec/card.md §4) are simple-TLV: ``tag(1) len(1) value``.

>>> decode_simple(bytes.fromhex("0703414243"))
[(7, b'ABC')]
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from apdu.errors import ApduError

SW_WRONG_DATA = 0x6A80
_PADDING = (0x00, 0xFF)
MAX_TAG_BYTES = 4


def tag_bytes(tag: int) -> bytes:
    """Encoded bytes of a BER-TLV tag number; ApduError when not a well-formed tag."""
    if tag <= 0:
        raise ApduError(f"invalid BER-TLV tag {tag!r}", SW_WRONG_DATA)
    n = (tag.bit_length() + 7) // 8
    if n > MAX_TAG_BYTES:
        raise ApduError(f"BER-TLV tag {tag:X} longer than {MAX_TAG_BYTES} bytes", SW_WRONG_DATA)
    raw = tag.to_bytes(n, "big")
    if raw[0] == 0xFF:
        raise ApduError(f"tag {tag:X}: first byte FF is invalid (ISO 7816-4 §5.2.2)",
                        SW_WRONG_DATA)
    multi = raw[0] & 0x1F == 0x1F
    if n == 1:
        if multi:
            raise ApduError(f"tag {tag:02X} announces subsequent tag bytes", SW_WRONG_DATA)
        return raw
    if not multi:
        raise ApduError(f"tag {tag:X}: first byte does not announce more bytes", SW_WRONG_DATA)
    for b in raw[1:-1]:
        if not b & 0x80:
            raise ApduError(f"tag {tag:X}: continuation bit missing", SW_WRONG_DATA)
    if raw[-1] & 0x80:
        raise ApduError(f"tag {tag:X}: last byte has the continuation bit", SW_WRONG_DATA)
    return raw


def is_constructed(tag: int) -> bool:
    """Bit 6 of the first tag byte (ISO 7816-4 §5.2.2.1)."""
    return bool(tag_bytes(tag)[0] & 0x20)


def encode_length(n: int) -> bytes:
    """BER length field, shortest form: ``0..7F`` or ``81..84`` followed by the length.

    >>> encode_length(0x7F).hex(), encode_length(0x80).hex(), encode_length(0x1234).hex()
    ('7f', '8180', '821234')
    """
    if n < 0:
        raise ApduError(f"negative length {n}", SW_WRONG_DATA)
    if n < 0x80:
        return bytes((n,))
    size = (n.bit_length() + 7) // 8
    if size > 4:
        raise ApduError(f"length {n} does not fit a BER length field", SW_WRONG_DATA)
    return bytes((0x80 | size,)) + n.to_bytes(size, "big")


@dataclass(frozen=True, slots=True)
class Tlv:
    """One BER-TLV data object."""

    tag: int
    value: bytes = b""

    def __post_init__(self) -> None:
        tag_bytes(self.tag)
        object.__setattr__(self, "value", bytes(self.value))

    @classmethod
    def of(cls, tag: int, *children: Tlv) -> Tlv:
        """A constructed object holding ``children``."""
        return cls(tag, encode(children))

    @property
    def constructed(self) -> bool:
        return is_constructed(self.tag)

    def children(self) -> list[Tlv]:
        """Decoded children of a constructed object; ``[]`` for a primitive one."""
        return decode(self.value) if self.constructed else []

    def to_bytes(self) -> bytes:
        return tag_bytes(self.tag) + encode_length(len(self.value)) + self.value

    def __bytes__(self) -> bytes:
        return self.to_bytes()

    @property
    def tag_hex(self) -> str:
        return tag_bytes(self.tag).hex().upper()


def _read_tag(data: bytes, i: int) -> tuple[int, int]:
    start = i
    first = data[i]
    i += 1
    if first & 0x1F == 0x1F:
        while True:
            if i >= len(data):
                raise ApduError(f"truncated tag at offset {start}", SW_WRONG_DATA)
            b = data[i]
            i += 1
            if i - start > MAX_TAG_BYTES:
                raise ApduError(f"tag at offset {start} longer than {MAX_TAG_BYTES} bytes",
                                SW_WRONG_DATA)
            if not b & 0x80:
                break
    return int.from_bytes(data[start:i], "big"), i


def _read_length(data: bytes, i: int) -> tuple[int, int]:
    if i >= len(data):
        raise ApduError(f"missing length at offset {i}", SW_WRONG_DATA)
    first = data[i]
    i += 1
    if first < 0x80:
        return first, i
    if first == 0x80:
        raise ApduError(f"indefinite length (80) at offset {i - 1} is not allowed in "
                        "ISO 7816-4 BER-TLV", SW_WRONG_DATA)
    size = first & 0x7F
    if size > 4:
        raise ApduError(f"length field {first:02X} at offset {i - 1} is not supported",
                        SW_WRONG_DATA)
    if i + size > len(data):
        raise ApduError(f"truncated length at offset {i - 1}", SW_WRONG_DATA)
    return int.from_bytes(data[i : i + size], "big"), i + size


def decode(data: bytes) -> list[Tlv]:
    """Decode a sequence of BER-TLV objects (top level only; see :meth:`Tlv.children`).

    ``00`` and ``FF`` bytes before, between and after objects are skipped (ISO 7816-4
    §5.2.2). Lengths ``81``..``84`` are accepted; the indefinite form ``80`` is rejected.

    >>> decode(bytes.fromhex("00 9F0C0101 FF FF 5A00"))
    [Tlv(tag=40716, value=b'\\x01'), Tlv(tag=90, value=b'')]
    """
    data = bytes(data)
    out: list[Tlv] = []
    i = 0
    n = len(data)
    while i < n:
        if data[i] in _PADDING:
            i += 1
            continue
        tag, i = _read_tag(data, i)
        length, i = _read_length(data, i)
        if i + length > n:
            raise ApduError(f"tag {tag:X}: length {length} exceeds the {n - i} bytes left",
                            SW_WRONG_DATA)
        out.append(Tlv(tag, data[i : i + length]))
        i += length
    return out


def encode(items: Iterable[Tlv]) -> bytes:
    """Concatenated encodings of ``items``."""
    return b"".join(t.to_bytes() for t in items)


def _as_tlvs(data: bytes | Tlv | Sequence[Tlv]) -> list[Tlv]:
    if isinstance(data, Tlv):
        return [data]
    if isinstance(data, bytes | bytearray | memoryview):
        return decode(bytes(data))
    return list(data)


def _safe_children(t: Tlv) -> list[Tlv]:
    if not t.constructed:
        return []
    try:
        return decode(t.value)
    except ApduError:
        return []


def _first(items: list[Tlv], tag: int) -> Tlv | None:
    for t in items:
        if t.tag == tag:
            return t
    for t in items:
        hit = _first(_safe_children(t), tag)
        if hit is not None:
            return hit
    return None


def _path_children(t: Tlv) -> list[Tlv]:
    try:
        return decode(t.value)
    except ApduError:
        return []


def find(data: bytes | Tlv | Sequence[Tlv], *path: int) -> Tlv | None:
    """The object reached by the tag ``path``, or None.

    Each tag is looked up among the current objects first, then depth-first inside
    constructed ones, so ``find(fci, 0x6F, 0x84)`` and ``find(fci, 0x84)`` both work.
    Constructed values that do not parse are treated as leaves. When the path explicitly
    continues below an object, its value is decoded even if the tag is marked primitive:
    the SSSE FCI nests ``86`` inside the primitive ``9F0C`` (spec/card.md §3).

    >>> fci = bytes.fromhex("6F0BA5099F0C03860103880101")
    >>> find(fci, 0x9F0C, 0x86).value
    b'\\x03'
    """
    if not path:
        raise ApduError("find() needs at least one tag")
    items = _as_tlvs(data)
    hit: Tlv | None = None
    for depth, tag in enumerate(path):
        hit = _first(items, tag)
        if hit is None:
            return None
        if depth < len(path) - 1:
            items = _path_children(hit)
    return hit


def find_all(data: bytes | Tlv | Sequence[Tlv], tag: int) -> list[Tlv]:
    """Every object with ``tag`` in the tree, in document order."""
    return [t for _, t in walk(data) if t.tag == tag]


def walk(data: bytes | Tlv | Sequence[Tlv], depth: int = 0) -> Iterator[tuple[int, Tlv]]:
    """Pre-order ``(depth, object)`` pairs of the whole tree."""
    for t in _as_tlvs(data):
        yield depth, t
        yield from walk(_safe_children(t), depth + 1)


def dump(data: bytes | Tlv | Sequence[Tlv]) -> str:
    """An indented tree listing, one object a line.

    >>> print(dump(bytes.fromhex("6F058403A00001")))
    6F (5)
      84 (3) A00001
    """
    lines = []
    for depth, t in walk(data):
        pad = "  " * depth
        if t.constructed and _safe_children(t):
            lines.append(f"{pad}{t.tag_hex} ({len(t.value)})")
        else:
            lines.append(f"{pad}{t.tag_hex} ({len(t.value)}) {t.value.hex().upper()}".rstrip())
    return "\n".join(lines)


# --- simple-TLV: the card's records (ISO 7816-4 §5.2.1, spec/card.md §4) -----------------


@dataclass(frozen=True, slots=True)
class SimpleTlv:
    """One simple-TLV record: tag ``01``..``FE``, value up to 65535 bytes.

    Lengths up to 254 use one byte; longer values use ``FF`` and two bytes (ISO 7816-4
    §5.2.1). The card's records are all short (spec/card.md §4).
    """

    tag: int
    value: bytes = b""

    def __post_init__(self) -> None:
        if not 0x01 <= self.tag <= 0xFE:
            raise ApduError(f"simple-TLV tag must be 01..FE, got {self.tag!r}", SW_WRONG_DATA)
        object.__setattr__(self, "value", bytes(self.value))
        if len(self.value) > 0xFFFF:
            raise ApduError("simple-TLV value longer than 65535 bytes", SW_WRONG_DATA)

    def to_bytes(self) -> bytes:
        return encode_simple(self.tag, self.value)

    def __bytes__(self) -> bytes:
        return self.to_bytes()


def encode_simple(tag: int, value: bytes) -> bytes:
    """``tag ‖ len ‖ value`` (spec/card.md §4).

    >>> encode_simple(0x03, b"3.00").hex()
    '0304332e3030'
    """
    if not 0x01 <= tag <= 0xFE:
        raise ApduError(f"simple-TLV tag must be 01..FE, got {tag!r}", SW_WRONG_DATA)
    n = len(value)
    if n < 0xFF:
        return bytes((tag, n)) + bytes(value)
    if n <= 0xFFFF:
        return bytes((tag, 0xFF)) + n.to_bytes(2, "big") + bytes(value)
    raise ApduError("simple-TLV value longer than 65535 bytes", SW_WRONG_DATA)


def decode_simple(data: bytes) -> list[tuple[int, bytes]]:
    """Decode concatenated simple-TLV records into ``(tag, value)`` pairs.

    ``00`` and ``FF`` where a tag is expected are padding (they are invalid tags) and skipped.
    """
    data = bytes(data)
    out: list[tuple[int, bytes]] = []
    i, n = 0, len(data)
    while i < n:
        tag = data[i]
        if tag in _PADDING:
            i += 1
            continue
        if i + 1 >= n:
            raise ApduError(f"record {tag:02X} at offset {i} has no length", SW_WRONG_DATA)
        length = data[i + 1]
        i += 2
        if length == 0xFF:
            if i + 2 > n:
                raise ApduError(f"record {tag:02X}: truncated 3-byte length", SW_WRONG_DATA)
            length = int.from_bytes(data[i : i + 2], "big")
            i += 2
        if i + length > n:
            raise ApduError(f"record {tag:02X}: length {length} exceeds the {n - i} bytes left",
                            SW_WRONG_DATA)
        out.append((tag, data[i : i + length]))
        i += length
    return out


def decode_simple_records(data: bytes) -> list[SimpleTlv]:
    """Like :func:`decode_simple` but as :class:`SimpleTlv` objects."""
    return [SimpleTlv(t, v) for t, v in decode_simple(data)]

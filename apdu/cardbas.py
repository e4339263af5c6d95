"""The ``iReadCardBas`` output line of the national reader interface (spec/card.md §10).

Eleven fields, each followed by ``|``:

>>> line = ("639900|111111198101011110|X00000019|639900D15600000500BF7C7A48FB4966|张三|"
...         "00814E43238697159900BF7C7A|1.00|20101001|20201001|410100813475|终端设备号|")
>>> CardBasics.parse_line(line).to_line() == line
True
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from typing import Any

from apdu.errors import ApduError

SW_WRONG_DATA = 0x6A80
FIELD_COUNT = 11
_HEX = set("0123456789ABCDEFabcdef")


def _digits(name: str, value: str, n: int) -> None:
    if len(value) != n or any(c not in "0123456789" for c in value):
        raise ApduError(f"{name} must be {n} digits, got {value!r}", SW_WRONG_DATA)


@dataclass(frozen=True, slots=True)
class CardBasics:
    """The fields of ``iReadCardBas``, in order (spec/card.md §10).

    ``area_code`` is the first six digits of the card identification code; ``issue_date``
    and ``expiry_date`` are YYYYMMDD; ``terminal_number`` is 12 digits (zeros without a PSAM).
    """

    area_code: str
    ssn: str
    card_number: str
    card_id_code: str
    name: str
    atr_historical_hex: str
    spec_version: str
    issue_date: str
    expiry_date: str
    terminal_number: str
    terminal_device: str

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, str):
                raise ApduError(f"{f.name} must be text, got {type(value).__name__}",
                                SW_WRONG_DATA)
            if "|" in value or any(ord(c) < 0x20 for c in value):
                raise ApduError(f"{f.name} may not contain '|' or control characters",
                                SW_WRONG_DATA)
        _digits("area code", self.area_code, 6)
        if len(self.card_id_code) != 32 or any(c not in _HEX for c in self.card_id_code):
            raise ApduError(f"card identification code must be 32 hex digits, "
                            f"got {self.card_id_code!r}", SW_WRONG_DATA)
        if len(self.atr_historical_hex) % 2 or any(c not in _HEX
                                                    for c in self.atr_historical_hex):
            raise ApduError(f"ATR historical bytes must be hex, got {self.atr_historical_hex!r}",
                            SW_WRONG_DATA)
        _digits("issue date", self.issue_date, 8)
        _digits("expiry date", self.expiry_date, 8)
        _digits("terminal number", self.terminal_number, 12)

    def to_line(self) -> str:
        """The interface text: every field followed by ``|``."""
        return "".join(getattr(self, f.name) + "|" for f in fields(self))

    @classmethod
    def parse_line(cls, line: str) -> CardBasics:
        """Parse an ``iReadCardBas`` line; :class:`ApduError` when it is not one.

        Trailing NUL bytes and line breaks (as left in a C buffer) are ignored.
        """
        if not isinstance(line, str):
            raise ApduError("iReadCardBas output must be text", SW_WRONG_DATA)
        text = line.rstrip("\x00\r\n")
        if not text.endswith("|"):
            raise ApduError("iReadCardBas output must end with '|'", SW_WRONG_DATA)
        parts = text[:-1].split("|")
        if len(parts) != FIELD_COUNT:
            raise ApduError(f"iReadCardBas output has {len(parts)} fields, expected "
                            f"{FIELD_COUNT}", SW_WRONG_DATA)
        return cls(*parts)

    def to_dict(self) -> dict[str, str]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CardBasics:
        names = [f.name for f in fields(cls)]
        missing = [n for n in names if n not in data]
        if missing:
            raise ApduError(f"missing fields: {', '.join(missing)}", SW_WRONG_DATA)
        return cls(*(data[n] for n in names))

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> CardBasics:
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise ApduError(f"not JSON: {exc}", SW_WRONG_DATA) from exc
        if not isinstance(data, dict):
            raise ApduError("card basics JSON must be an object", SW_WRONG_DATA)
        return cls.from_dict(data)

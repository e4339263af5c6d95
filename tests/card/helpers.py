"""Test-local terminal: talks to a virtual card and a virtual PSAM through transmit() only.

It follows the APDU sequences documented in card/psam.py, so the tests prove that a
terminal holding no key can authenticate a card, unlock EF06 and reload a PIN.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from apdu import atr as atrmod
from apdu import codec
from card.cos import VirtualCard
from card.issue import Holder, Issued, issue
from card.psam import VirtualPsam, make_psam_doc

SSSE_NAME = bytes.fromhex("7378312E73682EC9E7BBE1B1A3D5CF")
ISSUE_DATE = dt.date(2024, 5, 6)


def ssn(body17: str) -> str:
    return body17 + codec.id_check_digit(body17)


ZHANG_SSN = ssn("37080219800101123")  # male, born 1980-01-01


def make_issued(bank: str = "CCB", generation: str = "3.00", **kwargs: Any) -> Issued:
    holder = kwargs.pop("holder", None) or Holder("张三", ZHANG_SSN)
    kwargs.setdefault("pin", "123456")
    return issue(holder, bank=bank, generation=generation, issue_date=ISSUE_DATE, **kwargs)


def make_card(bank: str = "CCB", generation: str = "3.00", **kwargs: Any) -> VirtualCard:
    t0 = kwargs.pop("t0", False)
    return VirtualCard.from_doc(make_issued(bank, generation, **kwargs).doc, t0=t0)


_PSAM_DOC = make_psam_doc("370800", 7)


def make_psam() -> VirtualPsam:
    return VirtualPsam.from_doc(_PSAM_DOC)


def apdu(hexstr: str) -> bytes:
    return bytes.fromhex(hexstr.replace(" ", ""))


def tx(device: VirtualCard | VirtualPsam, command: bytes | str) -> tuple[bytes, int]:
    raw = apdu(command) if isinstance(command, str) else command
    out = device.transmit(raw)
    return out[:-2], int.from_bytes(out[-2:], "big")


class Terminal:
    """The terminal side of spec/card.md §5 and the PSAM sequences of card/psam.py."""

    def __init__(self, card: VirtualCard, psam: VirtualPsam) -> None:
        self.card, self.psam = card, psam
        self._alg: int | None = None

    @property
    def factor(self) -> bytes:
        return atrmod.diversification_factor(self.card.atr())

    def alg(self) -> int:
        """The card's algorithm id from the SSSE FCI (selects SSSE the first time only)."""
        if self._alg is None:
            data, sw = tx(self.card, b"\x00\xa4\x04\x00\x0f" + SSSE_NAME)
            assert sw == 0x9000, hex(sw)
            self._alg = data[-1]
        return self._alg

    def p1(self, usage: int) -> int:
        return self.alg() << 4 | usage

    def challenge(self) -> bytes:
        data, sw = tx(self.card, "0084000008")
        assert sw == 0x9000
        return data

    def internal_auth(self) -> int:
        p1 = self.p1(0x01)
        r1, r2 = self.challenge(), self.challenge()
        s, sw = tx(self.card, b"\x00\x88\x00\x00\x10" + r1 + r2)
        assert sw == 0x9000
        assert tx(self.psam, bytes([0xBF, 0xDE, p1, 0x01, 0x10]) + self.factor + r1)[1] == 0x9000
        return tx(self.psam, b"\x80\xfa\x09\x00\x10" + r2 + s)[1]

    def external_auth(self) -> int:
        p1 = self.p1(0x02)
        c1, c2 = self.challenge(), self.challenge()
        assert tx(self.psam, bytes([0xBF, 0xDE, p1, 0x0A, 0x10]) + self.factor + c1)[1] == 0x9000
        x, sw = tx(self.psam, b"\x80\xfa\x08\x00\x08" + c2)
        assert sw == 0x9000
        return tx(self.card, b"\x00\x82\x00\x0a\x10" + x + c2)[1]

    def session(self, usage: int, kid: int) -> None:
        p1 = self.p1(usage)
        c = self.challenge()
        assert tx(self.psam, bytes([0xBF, 0xDE, p1, kid, 0x10]) + self.factor + c)[1] == 0x9000

    def mac(self, header: bytes, data: bytes) -> bytes:
        body = header + bytes([len(data) + 4]) + data
        m, sw = tx(self.psam, b"\x80\xfa\x05\x00" + bytes([len(body)]) + body)
        assert sw == 0x9000
        return m

    def secure(self, usage: int, kid: int, header: bytes, data: bytes = b"") -> int:
        """Send ``header ‖ Lc ‖ data ‖ MAC`` with a MAC computed by the PSAM."""
        self.session(usage, kid)
        m = self.mac(header, data)
        return tx(self.card, header + bytes([len(data) + 4]) + data + m)[1]

    def reload_pin(self, new_pin: str, kid: int = 0x01) -> int:
        self.session(0x03, kid)
        body = bytes([len(new_pin)]) + codec.pin_encode(new_pin)
        enc, sw = tx(self.psam, b"\x80\xfa\x00\x00" + bytes([len(body)]) + body)
        assert sw == 0x9000
        header = bytes.fromhex("84240001")
        m = self.mac(header, enc)
        return tx(self.card, header + bytes([len(enc) + 4]) + enc + m)[1]

    def unblock_pin(self, kid: int = 0x01) -> int:
        return self.secure(0x03, kid, bytes.fromhex("84240000"))

"""Wire formats of sscard: bytes ⇄ objects, no I/O (DESIGN.md).

APDUs (ISO 7816-4 §5.1), status words (§5.1.3, spec/card.md §7), BER-TLV and the card's
simple-TLV records (§5.2, spec/card.md §4), ATR (ISO 7816-3 §8), the T=0 rules (ISO 7816-3
§12.2), field codecs (spec/card.md §4), command builders (spec/card.md §5, §6, §9, §11) and
the iReadCardBas line (spec/card.md §10). Every parser raises :class:`ApduError` and nothing
else on malformed input.
"""

from apdu import atr, cardbas, codec, commands, sw, t0, tlv
from apdu.atr import Atr, InterfaceGroup
from apdu.cardbas import CardBasics
from apdu.codec import CardIdCode
from apdu.command import CommandApdu
from apdu.errors import ApduError
from apdu.iface import CardLike
from apdu.response import ResponseApdu
from apdu.sw import DriverCode, StatusWord, describe, driver_code, driver_message
from apdu.t0 import T0CardAdapter, T0Exchange, transceive
from apdu.tlv import SimpleTlv, Tlv

__all__ = [
    "ApduError",
    "Atr",
    "CardBasics",
    "CardIdCode",
    "CardLike",
    "CommandApdu",
    "DriverCode",
    "InterfaceGroup",
    "ResponseApdu",
    "SimpleTlv",
    "StatusWord",
    "T0CardAdapter",
    "T0Exchange",
    "Tlv",
    "atr",
    "cardbas",
    "codec",
    "commands",
    "describe",
    "driver_code",
    "driver_message",
    "sw",
    "t0",
    "tlv",
    "transceive",
]

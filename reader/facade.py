"""The driver façade: what pharmacy software calls (spec/card.md §10, the national reader
interface of 人社信息函〔2016〕38号).

:class:`CardDriver` works over any two reader connections (the user card and, optionally, the
PSAM; spec/card.md §9 reader slots) and speaks only APDUs (spec/card.md §5, §8, §9; the PSAM
sequences documented in ``card/psam.py``). Python callers use the typed methods, which raise
:mod:`reader.errors` exceptions carrying the national driver code; the ``i*`` functions mirror
the national interface and return ``(code, text)`` with 0 or a negative code.

Card authenticity is part of reading a card: with a PSAM, :meth:`CardDriver.read_card_basics`
runs INTERNAL AUTHENTICATE and lets the PSAM check the card's answer; a card whose keys are
wrong is refused with −21. Reading the holder file of a 3.00 card needs the RKSSSE external
authentication (spec/card.md §1), hence a PSAM (−2201 without one). The card counts failed
external authentications per key (ISO 7816-4): a refused cryptogram answers 63Cx
(:class:`KeyAuthFailed`, x tries left) and a blocked key 6983 (:class:`KeyBlocked`), both
returned as the status-word driver code of spec/card.md §10 (63C2 → −25538, 6983 → −27011).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from apdu import atr as atrmod
from apdu import codec, commands, tlv
from apdu.cardbas import CardBasics
from apdu.command import CommandApdu
from apdu.errors import ApduError
from apdu.response import ResponseApdu
from apdu.sw import describe, driver_message, pin_tries_left
from reader.base import Connection
from reader.errors import CardRefused, CardStatusError, ReaderError

# DELIVERY SESSION KEY usages and key ids (card/keys.py table; spec/card.md §8, §9)
USAGE_IRK, KID_IRK = 0x01, 0x01
USAGE_RKSSSE, KID_RKSSSE = 0x02, 0x0A
USAGE_PUK = 0x03
USAGE_UPDATE, KID_UK1DF04, KID_UKSSSE = 0x04, 0x04, 0x01
CIPHER_ENCRYPT, CIPHER_MAC, CIPHER_AUTH_DATA, CIPHER_CHECK_INTERNAL = 0x00, 0x05, 0x08, 0x09

EF05, EF06, EF08 = 0xEF05, 0xEF06, 0xEF08
PHOTO_SIZE = 0x1000
NO_TERMINAL = "000000000000"

# EF05 / EF06 tags (spec/card.md §4)
T_CARD_ID, T_CATEGORY, T_VERSION, T_INIT_ORG, T_ISSUE, T_EXPIRY, T_CARD_NO = range(1, 8)
T_SSN, T_NAME, T_SEX, T_ETHNIC, T_BIRTHPLACE, T_BIRTH, T_NAME_EXT = (
    0x08, 0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x4E)
# DF04 EF05 medical basic info tags
MEDICAL_TAGS = {0x81: "insurance_type", 0x84: "insured_area", 0x8C: "person_category",
                0x8B: "account_number", 0x8F: "use_mode"}
_MEDICAL_CN = {0x84, 0x8C}

PIN_RE = re.compile(r"^[0-9]{4,12}$")

# Value lengths fixed by the standard (spec/card.md §4): READ RECORD asks for Le = 2 + len at
# once; a card with other lengths answers 6Cxx and the T=0 layer asks again.
RECORD_LEN = {T_CARD_ID: 16, T_CATEGORY: 1, T_VERSION: 4, T_INIT_ORG: 12, T_ISSUE: 4,
              T_EXPIRY: 4, T_CARD_NO: 9, T_SSN: 18, T_NAME: 30, T_SEX: 1, T_ETHNIC: 1,
              T_BIRTHPLACE: 3, T_BIRTH: 4, T_NAME_EXT: 20}
MEDICAL_LEN = {0x81: 8, 0x84: 3, 0x8C: 1, 0x8B: 29, 0x8F: 1}


class NoPsam(ReaderError):
    """The operation needs a PSAM and none is in the reader (−2201)."""

    driver_code = -2201


class PsamRefused(ReaderError):
    """The PSAM cannot do what the card needs: −2202 no such algorithm, −2203 no RKSSSE."""

    def __init__(self, message: str, driver_code: int) -> None:
        super().__init__(message)
        self.driver_code = driver_code


class PinWrong(CardStatusError):
    """Wrong PIN (−51); ``tries_left`` before the PIN locks."""

    def __init__(self, sw: int, tries_left: int) -> None:
        super().__init__(f"wrong PIN: {tries_left} tries left / 密码错误，还可尝试 {tries_left} 次",
                         sw, -51)
        self.tries_left = tries_left


class PinLocked(CardStatusError):
    """The PIN is locked (−52): the holder must have it unblocked or reloaded at a counter."""

    def __init__(self, sw: int = 0x6983) -> None:
        super().__init__("PIN locked: the holder must have it reset at a social security or "
                         "bank counter with their ID card / 密码已锁定", sw, -52)


class KeyAuthFailed(CardStatusError):
    """EXTERNAL AUTHENTICATE refused the PSAM's cryptogram (63Cx, spec/card.md §7): the
    card's error counter of ``key`` dropped to ``tries_left`` (> 0). Driver code −SW1SW2."""

    def __init__(self, key: str, sw: int, tries_left: int) -> None:
        super().__init__(
            f"external authentication with {key} failed: the card refused the PSAM's "
            f"cryptogram ({sw:04X}), {tries_left} tries left before the card blocks {key}; the "
            f"PSAM's {key} does not fit this card: check the PSAM before trying again / "
            f"外部认证失败，{key} 密钥还可尝试 {tries_left} 次", sw)
        self.key = key
        self.tries_left = tries_left


class KeyBlocked(CardStatusError):
    """The card's ``key`` is blocked after too many failed external authentications (6983,
    or 63C0 on the try that blocked it; spec/card.md §7): the files it guards (EF06 of a 3.00
    card, fingerprint EF07, photo EF08) cannot be read any more. No command of the standard
    unblocks a key: the holder needs a new card from the issuer. Driver code −SW1SW2
    (6983 → −27011)."""

    def __init__(self, key: str, sw: int = 0x6983) -> None:
        now = " by this failed try" if sw != 0x6983 else ""
        super().__init__(
            f"{key} blocked{now} ({sw:04X}): the card refuses external authentication with "
            f"{key} after too many failures, so its holder data, fingerprint and photo cannot "
            "be read; the holder must have the card replaced by the issuer / "
            f"{key} 密钥已锁定，无法读取持卡人信息，请到发卡机构换卡", sw)
        self.key = key


class PinFormatError(ReaderError):
    """A PIN that is not 4–12 digits (−33), or two new PINs that differ (−34)."""

    def __init__(self, message: str, driver_code: int = -33) -> None:
        super().__init__(message)
        self.driver_code = driver_code


@dataclass(frozen=True)
class HolderInfo:
    """SSSE EF06 (spec/card.md §4) and, when read, the photo of EF08."""

    ssn: str
    name: str
    sex: str = ""
    ethnicity: str = ""
    birthplace: str = ""
    birth_date: str = ""
    photo: bytes | None = None


@dataclass(frozen=True)
class MedicalInfo:
    """DF04 EF05 medical basic info (spec/card.md §4), tag → decoded text."""

    insurance_type: str = ""
    insured_area: str = ""
    person_category: str = ""
    account_number: str = ""
    use_mode: str = ""
    raw: dict[int, bytes] = field(default_factory=dict)


def check_pin(pin: str, what: str = "PIN") -> None:
    """:class:`PinFormatError` (−33) unless ``pin`` is 4 to 12 decimal digits: checked
    before a PIN is sent, so a mistyped one never costs a try on the card."""
    if not isinstance(pin, str) or not PIN_RE.match(pin):
        raise PinFormatError(f"{what} must be 4 to 12 digits / 密码须为 4 至 12 位数字")


T = TypeVar("T")


class CardDriver:
    """Read and manage a social security card through reader connections.

    ``user``: the connection to the user card; ``psam``: the PSAM's, or None (then
    authenticity cannot be checked, the terminal number is zeros, and 3.00 holder data,
    PIN unblock/reload and writes are refused with −2201). ``terminal_device`` fills the
    last ``iReadCardBas`` field.
    """

    def __init__(self, user: Connection, psam: Connection | None = None, *,
                 terminal_device: str = "", require_psam_auth: bool = True) -> None:
        self.user = user
        self.psam = psam
        self.terminal_device = terminal_device
        self.require_psam_auth = require_psam_auth
        self.algorithm: int | None = None
        self.spec_version = ""
        self.authenticated = False

    # -- plumbing ----------------------------------------------------------------------------
    def _send(self, conn: Connection, cmd: CommandApdu | bytes, what: str) -> ResponseApdu:
        try:
            return conn.transmit(cmd)
        except ApduError as exc:  # a command we could not even build
            raise ReaderError(f"{what}: {exc}") from exc

    def _card(self, cmd: CommandApdu | bytes, what: str, ok: tuple[int, ...] = (0x9000,),
              ) -> ResponseApdu:
        rsp = self._send(self.user, cmd, what)
        if rsp.sw not in ok:
            raise self._card_error(rsp.sw, what)
        return rsp

    def _card_error(self, sw: int, what: str) -> ReaderError:
        tries = pin_tries_left(sw)
        if tries is not None:
            return PinWrong(sw, tries) if tries else PinLocked(sw)
        if sw == 0x6983:
            return PinLocked(sw)
        return CardStatusError(f"{what}: card answered {describe(sw)}", sw)

    def _psam(self, cmd: CommandApdu | bytes, what: str) -> ResponseApdu:
        if self.psam is None:
            raise NoPsam(f"{what} needs a PSAM: put one in the PSAM slot / 无 PSAM 卡")
        rsp = self._send(self.psam, cmd, what)
        if rsp.sw != 0x9000:
            raise CardStatusError(f"{what}: PSAM answered {describe(rsp.sw)}", rsp.sw)
        return rsp

    def _factor(self) -> bytes:
        return atrmod.diversification_factor(self.user.atr())

    def _session(self, usage: int, kid: int, challenge: bytes, what: str) -> None:
        """DELIVERY SESSION KEY on the PSAM for the card's key (usage, kid)."""
        alg = self._alg()
        cmd = CommandApdu(commands.CLA_DELIVERY, commands.INS_DELIVERY_SESSION_KEY,
                          (alg << 4) | usage, kid, self._factor() + challenge[:8])
        if self.psam is None:
            raise NoPsam(f"{what} needs a PSAM: put one in the PSAM slot / 无 PSAM 卡")
        rsp = self._send(self.psam, cmd, what)
        if rsp.sw == 0x9000:
            return
        if rsp.sw == 0x6A81:
            raise PsamRefused(f"{what}: the PSAM lacks algorithm {alg:02X} / "
                              "PSAM 卡不支持该算法", -2202)
        if rsp.sw == 0x6A88 and usage == USAGE_RKSSSE:
            raise PsamRefused(f"{what}: the PSAM holds no RKSSSE key for this card / "
                              "PSAM 卡缺少 RKSSSE 密钥", -2203)
        raise CardStatusError(f"{what}: PSAM answered {describe(rsp.sw)}", rsp.sw)

    def _cipher(self, p1: int, data: bytes, what: str) -> bytes:
        return self._psam(CommandApdu(0x80, commands.INS_CIPHER_DATA, p1, 0x00, data, 256),
                          what).data

    def _challenge(self, what: str) -> bytes:
        return self._card(commands.get_challenge(8), f"{what}: GET CHALLENGE").data

    def _alg(self) -> int:
        if self.algorithm is None:
            self.select_ssse()
        assert self.algorithm is not None
        return self.algorithm

    def _read_record(self, tag: int, what: str, optional: bool = False,
                     length: int | None = None) -> bytes | None:
        """READ RECORD by tag with Le = 2 + the standard length (Le 00 when unknown); the T=0
        layer resends on 6Cxx (spec/card.md §4)."""
        size = length if length is not None else RECORD_LEN.get(tag)
        le = size + 2 if size is not None and size + 2 <= 256 else None
        rsp = self._send(self.user, commands.read_record_by_tag(tag, le=le), what)
        if rsp.sw == 0x6A83 and optional:
            return None
        if rsp.sw != 0x9000:
            raise self._card_error(rsp.sw, f"{what} (record {tag:02X})")
        records = tlv.decode_simple(rsp.data)
        if not records or records[0][0] != tag:
            raise CardRefused(f"{what}: record {tag:02X} is malformed", -22)
        return records[0][1]

    def _decode(self, fn: Callable[[bytes], T], value: bytes | None, what: str) -> T:
        try:
            return fn(value or b"")
        except ApduError as exc:
            raise CardRefused(f"{what}: {exc}", -22) from exc

    # -- selection and authentication -----------------------------------------------------
    def select_ssse(self) -> bytes:
        """SELECT the SSSE application; remember its algorithm (FCI tag 86, spec/card.md §3)."""
        rsp = self._send(self.user, commands.select_ssse(), "select SSSE")
        if rsp.sw in (0x6A82, 0x6A86, 0x6D00, 0x6E00):
            raise CardRefused("not a social security card (no SSSE application) / 卡类型不对",
                              -1)
        if rsp.sw != 0x9000:
            raise self._card_error(rsp.sw, "select SSSE")
        try:
            name = tlv.find(rsp.data, 0x6F, 0x84)
        except ApduError:
            name = None
        if name is None or name.value != commands.SSSE_DF_NAME:
            raise CardRefused("not a social security card (SELECT SSSE answered no SSSE FCI) "
                              "/ 卡类型不对", -1)
        alg = tlv.find(rsp.data, 0x6F, 0xA5, 0x9F0C, 0x86)
        if alg is None or len(alg.value) != 1:
            m = re.search(rb"\x86\x01([\x01-\x03])", rsp.data)
            if m is None:
                raise CardRefused("SSSE FCI carries no algorithm (tag 86)", -22)
            self.algorithm = m.group(1)[0]
        else:
            self.algorithm = alg.value[0]
        return rsp.data

    def internal_authenticate(self) -> None:
        """Prove the card genuine: the card answers a challenge with its IRK; the PSAM checks
        it (card/psam.py "Internal authentication"). Raises CardRefused(−21) when not genuine.
        """
        what = "internal authentication"
        r1 = self._challenge(what)
        r2 = self._challenge(what)
        rsp = self._send(self.user, commands.internal_authenticate(r1, r2), what)
        if rsp.sw != 0x9000 or len(rsp.data) != 8:
            raise CardRefused(f"{what}: card answered {describe(rsp.sw)}; card not genuine / "
                              "内部认证失败（非法卡）", -21)
        self._session(USAGE_IRK, KID_IRK, r1, what)
        assert self.psam is not None  # _session refused otherwise
        check = self._send(self.psam, CommandApdu(
            0x80, commands.INS_CIPHER_DATA, CIPHER_CHECK_INTERNAL, 0x00, r2 + rsp.data), what)
        if check.sw != 0x9000:
            self.authenticated = False
            raise CardRefused("internal authentication failed: card not genuine / "
                              "内部认证失败（非法卡）", -21)
        self.authenticated = True

    def external_authenticate_rkssse(self) -> None:
        """Unlock EF06/EF07/EF08 of a 3.00 card with RKSSSE (card/psam.py "External
        authentication"; spec/card.md §1)."""
        what = "external authentication (RKSSSE)"
        c1 = self._challenge(what)
        c2 = self._challenge(what)
        self._session(USAGE_RKSSSE, KID_RKSSSE, c1, what)
        auth = self._cipher(CIPHER_AUTH_DATA, c2.ljust(8, b"\x00")[:8], what)
        rsp = self._send(self.user, commands.external_authenticate(
            KID_RKSSSE, auth[:8], c2.ljust(8, b"\x00")[:8]), what)
        if rsp.sw != 0x9000:
            raise _external_auth_error("RKSSSE", rsp.sw, what)

    # -- reading ------------------------------------------------------------------------------
    def read_card_basics(self) -> CardBasics:
        """The ``iReadCardBas`` fields (spec/card.md §5 terminal session, §10 output)."""
        self.select_ssse()
        self._card(commands.select_ef(EF05), "select EF05")
        card_id = self._read_record(T_CARD_ID, "read card identification code")
        version_raw = self._read_record(T_VERSION, "read spec version")
        issue = self._read_record(T_ISSUE, "read issue date")
        expiry = self._read_record(T_EXPIRY, "read expiry date")
        card_no = self._read_record(T_CARD_NO, "read card number")
        self.spec_version = self._decode(codec.an_decode, version_raw, "spec version")
        if self.psam is not None:
            self.internal_authenticate()
        elif self.require_psam_auth and self.spec_version.startswith("3"):
            raise NoPsam("reading a 3.00 card needs a PSAM (RKSSSE) / 无 PSAM 卡")
        holder = self._read_holder_records()
        atr = self.user.atr()
        try:
            historical = atrmod.parse(atr).historical
        except ApduError as exc:
            raise CardRefused(f"the card's ATR is malformed: {exc}", -1) from exc
        card_id_hex = (card_id or b"").hex().upper()
        terminal = self.terminal_number()
        try:
            return CardBasics(
                area_code=card_id_hex[:6],
                ssn=holder.ssn,
                card_number=self._decode(codec.an_decode, card_no, "card number"),
                card_id_code=card_id_hex,
                name=holder.name,
                atr_historical_hex=historical.hex().upper(),
                spec_version=self.spec_version,
                issue_date=self._decode(codec.cn_decode, issue, "issue date"),
                expiry_date=self._decode(codec.cn_decode, expiry, "expiry date"),
                terminal_number=terminal,
                terminal_device=self.terminal_device,
            )
        except ApduError as exc:
            raise CardRefused(f"card data malformed: {exc} / 数据与卡片不一致", -22) from exc

    def _read_holder_records(self) -> HolderInfo:
        if self.spec_version.startswith("3"):
            if self.psam is None:
                raise NoPsam("the holder file of a 3.00 card needs a PSAM (RKSSSE) / 无 PSAM 卡")
            self.external_authenticate_rkssse()
        self._card(commands.select_ef(EF06), "select EF06")
        ssn = self._decode(codec.an_decode, self._read_record(T_SSN, "read SSN"), "SSN")
        name = self._decode(codec.an_decode, self._read_record(T_NAME, "read name"), "name")
        ext = self._read_record(T_NAME_EXT, "read name extension", optional=True)
        if ext:
            name += self._decode(codec.an_decode, ext, "name extension")
        sex = self._read_record(T_SEX, "read sex", optional=True)
        ethnic = self._read_record(T_ETHNIC, "read ethnicity", optional=True)
        place = self._read_record(T_BIRTHPLACE, "read birthplace", optional=True)
        birth = self._read_record(T_BIRTH, "read birth date", optional=True)
        return HolderInfo(
            ssn=ssn, name=name,
            sex=self._decode(codec.an_decode, sex, "sex") if sex else "",
            ethnicity=self._decode(codec.cn_decode, ethnic, "ethnicity") if ethnic else "",
            birthplace=self._decode(codec.cn_decode, place, "birthplace") if place else "",
            birth_date=self._decode(codec.cn_decode, birth, "birth date") if birth else "",
        )

    def read_holder(self, photo: bool = True) -> HolderInfo:
        """EF06 holder data and (``photo``) the EF08 photo (spec/card.md §3, §4)."""
        self.select_ssse()
        self._card(commands.select_ef(EF05), "select EF05")
        version = self._read_record(T_VERSION, "read spec version")
        self.spec_version = self._decode(codec.an_decode, version, "spec version")
        holder = self._read_holder_records()
        if not photo:
            return holder
        if not self.spec_version.startswith("3"):
            if self.psam is None:
                raise NoPsam("reading the photo needs a PSAM (RKSSSE) / 无 PSAM 卡")
            self.external_authenticate_rkssse()
        image = self._read_transparent(EF08, PHOTO_SIZE, "read photo")
        return HolderInfo(holder.ssn, holder.name, holder.sex, holder.ethnicity,
                          holder.birthplace, holder.birth_date, _trim_image(image))

    def _read_transparent(self, fid: int, size: int, what: str) -> bytes:
        self._card(commands.select_ef(fid), f"{what}: select {fid:04X}")
        out = bytearray()
        while len(out) < size:
            n = min(256, size - len(out))
            rsp = self._send(self.user, commands.read_binary(len(out), le=n % 256), what)
            if rsp.sw == 0x6B00 or (rsp.sw == 0x9000 and not rsp.data):
                break
            if rsp.sw not in (0x9000, 0x6282):
                raise self._card_error(rsp.sw, what)
            out += rsp.data
            if rsp.sw == 0x6282:
                break
        return bytes(out)

    def terminal_number(self) -> str:
        """The PSAM's terminal number (EF16, cn6 → 12 digits); zeros without a PSAM."""
        if self.psam is None:
            return NO_TERMINAL
        rsp = self._psam(commands.read_binary(0, le=6, sfi=0x16), "read terminal number")
        digits = codec.cn_decode(rsp.data)
        if len(digits) != 12:
            raise CardStatusError(f"PSAM terminal number malformed: {rsp.data.hex()}", 0x6A80)
        return digits

    # -- PIN ----------------------------------------------------------------------------------
    def pin_tries_left(self) -> int | None:
        """VERIFY without data: tries left, or None when no PIN is needed (already verified)."""
        self.select_ssse()
        rsp = self._send(self.user, commands.verify(None), "PIN query")
        if rsp.sw == 0x9000:
            return None
        if rsp.sw == 0x6983:
            return 0
        tries = pin_tries_left(rsp.sw)
        if tries is None:
            raise self._card_error(rsp.sw, "PIN query")
        return tries

    def verify_pin(self, pin: str) -> None:
        """VERIFY (spec/card.md §5, §7). Raises PinWrong(−51, tries_left) / PinLocked(−52)."""
        check_pin(pin)
        if self.algorithm is None:
            self.select_ssse()
        self._card(commands.verify(pin), "verify PIN")

    def change_pin(self, old: str, new: str) -> None:
        """CHANGE PIN ``80 5E 01 00`` old ‖ FF ‖ new (spec/card.md §5)."""
        check_pin(old, "old PIN")
        check_pin(new, "new PIN")
        if self.algorithm is None:
            self.select_ssse()
        self._card(commands.change_pin(old, new), "change PIN")

    def unblock_pin(self) -> None:
        """PIN UNBLOCK with a PSAM MAC under PUK: keeps the PIN, resets the counter."""
        what = "unblock PIN"
        self.select_ssse()
        challenge = self._challenge(what)
        self._session(USAGE_PUK, 0x01, challenge, what)
        template = commands.pin_unblock_template()
        mac = self._cipher(CIPHER_MAC, commands.mac_input(template), what)[:4]
        self._card(commands.pin_unblock(mac), what)

    def reload_pin(self, new: str) -> None:
        """PIN RELOAD: the PSAM enciphers the new PIN block and MACs the command (card/psam.py
        "PIN reload")."""
        check_pin(new, "new PIN")
        what = "reload PIN"
        self.select_ssse()
        challenge = self._challenge(what)
        self._session(USAGE_PUK, 0x01, challenge, what)
        block = self._cipher(CIPHER_ENCRYPT, bytes([len(new)]) + codec.pin_encode(new), what)
        template = CommandApdu(0x84, commands.INS_PIN_UNBLOCK, 0x00, 0x01, block)
        mac = self._cipher(CIPHER_MAC, commands.mac_input(template), what)[:4]
        self._card(commands.pin_reload(block, mac), what)

    # -- medical files --------------------------------------------------------------------------
    def _select_df04(self) -> None:
        self.select_ssse()
        self._card(commands.select_df("DF04"), "select DF04")

    def read_medical(self) -> MedicalInfo:
        """DF04 EF05 medical basic info; needs the PIN verified first (spec/card.md §3)."""
        self._select_df04()
        self._card(commands.select_ef(EF05), "select DF04 EF05")
        raw: dict[int, bytes] = {}
        values: dict[str, str] = {}
        for tag, name in MEDICAL_TAGS.items():
            value = self._read_record(tag, f"read medical {name}", optional=True,
                                      length=MEDICAL_LEN.get(tag))
            if value is None:
                continue
            raw[tag] = value
            fn = codec.cn_decode if tag in _MEDICAL_CN else codec.an_decode
            values[name] = self._decode(fn, value, name)
        return MedicalInfo(raw=raw, **values)

    def read_medical_log(self, limit: int = 30) -> list[bytes]:
        """DF04 EF08 transaction records (28 bytes each, newest first); needs the PIN."""
        self._select_df04()
        self._card(commands.select_ef(EF08), "select DF04 EF08")
        out = []
        for n in range(1, limit + 1):
            rsp = self._send(self.user, commands.read_record_by_number(n, le=28), "read log")
            if rsp.sw in (0x6A83, 0x6A82):
                break
            if rsp.sw != 0x9000:
                raise self._card_error(rsp.sw, "read medical log")
            out.append(rsp.data)
        return out

    def write_medical(self, tag: int, value: bytes, ef: int = EF05) -> None:
        """UPDATE RECORD ``tag`` of DF04 ``ef`` with a MAC under UK1DF04 from the PSAM."""
        what = f"write medical record {tag:02X}"
        self._select_df04()
        self._card(commands.select_ef(ef), f"{what}: select EF")
        record = tlv.encode_simple(tag, value)
        challenge = self._challenge(what)
        self._session(USAGE_UPDATE, KID_UK1DF04, challenge, what)
        template = CommandApdu(0x04, commands.INS_UPDATE_RECORD, tag, 0x00, record)
        mac = self._cipher(CIPHER_MAC, commands.mac_input(template), what)[:4]
        self._card(commands.update_record(tag, record, mac=mac), what)


def _external_auth_error(key: str, sw: int, what: str) -> ReaderError:
    """The error for EXTERNAL AUTHENTICATE with ``key`` answering ``sw`` (not 9000):
    63Cx → :class:`KeyAuthFailed`, 63C0/6983 → :class:`KeyBlocked` (spec/card.md §7), any
    other answer a refusal (−21)."""
    if sw == 0x6983 or sw == 0x63C0:
        return KeyBlocked(key, sw)
    if sw & 0xFFF0 == 0x63C0:
        return KeyAuthFailed(key, sw, sw & 0x0F)
    return CardRefused(f"{what}: card answered {describe(sw)}; the PSAM's {key} does not fit "
                       "this card", -21)


def _trim_image(data: bytes) -> bytes:
    """The photo without the file's padding: up to the JPEG end marker, or a BMP's size."""
    if data[:2] == b"\xff\xd8":
        end = data.rfind(b"\xff\xd9")
        return data[: end + 2] if end >= 0 else data
    if data[:2] == b"BM" and len(data) >= 6:
        size = int.from_bytes(data[2:6], "little")
        return data[:size] if 0 < size <= len(data) else data
    return data.rstrip(b"\x00")


# -- the national interface: (code, text) ------------------------------------------------------
def _national(fn: Callable[[], str]) -> tuple[int, str]:
    try:
        return 0, fn()
    except ReaderError as exc:
        return exc.driver_code, str(exc)


ITYPE_CONTACT, ITYPE_CONTACTLESS, ITYPE_AUTO_CONTACT, ITYPE_AUTO_CONTACTLESS = 1, 2, 3, 4


def iReadCardBas(driver: CardDriver, iType: int = ITYPE_CONTACT,
                 ) -> tuple[int, str]:
    """``iReadCardBas``: (0, the 11-field line) or (negative code, message).

    ``iType`` (spec/card.md §10): 1 contact, 2 contactless, 3 auto contact-first, 4 auto
    contactless-first. The readers here are contact readers: 3 and 4 read by contact,
    2 answers −1 (wrong card type: no contactless interface).
    """
    if iType not in (1, 2, 3, 4):
        return -1, f"iType must be 1, 2, 3 or 4, not {iType}"
    if iType == ITYPE_CONTACTLESS:
        return -1, "no contactless interface on this reader / 读卡器无非接触接口"
    return _national(lambda: driver.read_card_basics().to_line())


def iVerifyPIN(driver: CardDriver, pin: str) -> tuple[int, str]:
    """``iVerifyPIN``: 0, −51 (text says tries left), −52, −33 …"""

    def run() -> str:
        driver.verify_pin(pin)
        return driver_message(0)

    return _national(run)


def iChangePIN(driver: CardDriver, old: str, new: str, new_again: str | None = None,
               ) -> tuple[int, str]:
    """``iChangePIN``: −34 when the two new PINs differ."""

    def run() -> str:
        if new_again is not None and new_again != new:
            raise PinFormatError("the two new PINs differ / 两次输入的新密码不一致", -34)
        driver.change_pin(old, new)
        return driver_message(0)

    return _national(run)


def iReloadPIN(driver: CardDriver, new: str) -> tuple[int, str]:
    def run() -> str:
        driver.reload_pin(new)
        return driver_message(0)

    return _national(run)


def iUnblockPIN(driver: CardDriver) -> tuple[int, str]:
    def run() -> str:
        driver.unblock_pin()
        return driver_message(0)

    return _national(run)


def iReadCard(driver: CardDriver) -> tuple[int, str]:
    """``iReadCard`` for DF04 EF05: ``name=value|`` pairs (PIN must be verified)."""

    def run() -> str:
        info = driver.read_medical()
        return "".join(f"{k}={getattr(info, k)}|" for k in MEDICAL_TAGS.values())

    return _national(run)


def iWriteCard(driver: CardDriver, tag: int, value: bytes) -> tuple[int, str]:
    def run() -> str:
        driver.write_medical(tag, value)
        return driver_message(0)

    return _national(run)

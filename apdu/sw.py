"""Status words (ISO 7816-4 §5.1.3, spec/card.md §7) and reader driver codes (spec/card.md §10).

>>> describe(0x63C2).en
'wrong PIN, 2 tries left'
>>> describe(0x6C12).name
'WRONG_LE'
>>> driver_code(0x6983)
-27011
>>> pin_tries_left(sw_pin_tries(1))
1
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from apdu.commands import INS_EXTERNAL_AUTH
from apdu.errors import ApduError

SW_OK = 0x9000
SW_WRONG_LENGTH = 0x6700
SW_INVALID_STATE = 0x6901
SW_WRONG_FILE_TYPE = 0x6981
SW_SECURITY_NOT_SATISFIED = 0x6982
SW_AUTH_BLOCKED = 0x6983
SW_REF_DATA_INVALID = 0x6984
SW_CONDITIONS_NOT_SATISFIED = 0x6985
SW_NO_CURRENT_EF = 0x6986
SW_SM_WRONG = 0x6988
SW_WRONG_DATA = 0x6A80
SW_FUNC_NOT_SUPPORTED = 0x6A81
SW_FILE_NOT_FOUND = 0x6A82
SW_RECORD_NOT_FOUND = 0x6A83
SW_NO_SPACE = 0x6A84
SW_WRONG_P1P2 = 0x6A86
SW_KEY_NOT_FOUND = 0x6A88
SW_OFFSET_BEYOND = 0x6B00
SW_INS_NOT_SUPPORTED = 0x6D00
SW_CLA_NOT_SUPPORTED = 0x6E00
SW_UNKNOWN = 0x6F00
SW_MEMORY_FAILURE = 0x6581
SW_MAC_INVALID = 0x9302
SW_APP_BLOCKED = 0x9303
SW_INSUFFICIENT_FUNDS = 0x9401
SW_KEY_INDEX_UNSUPPORTED = 0x9403
SW_PSAM_MAC2_INVALID = 0x63CF


@dataclass(frozen=True, slots=True)
class StatusWord:
    """A status word with a symbolic name and English / Chinese meaning."""

    sw: int
    name: str
    en: str
    zh: str

    @property
    def sw1(self) -> int:
        return self.sw >> 8

    @property
    def sw2(self) -> int:
        return self.sw & 0xFF

    @property
    def ok(self) -> bool:
        return self.sw == SW_OK

    def __str__(self) -> str:
        return f"{self.sw:04X} {self.en}"


_FIXED: dict[int, tuple[str, str, str]] = {
    0x9000: ("OK", "success", "成功"),
    0x6200: ("WARNING_NVM_UNCHANGED", "warning: state of non-volatile memory unchanged",
             "警告：非易失存储器未改变"),
    0x6281: ("WARNING_DATA_CORRUPTED", "warning: part of returned data may be corrupted",
             "警告：返回数据可能有误"),
    0x6282: ("WARNING_END_OF_FILE", "warning: end of file or record reached before Le bytes",
             "警告：读到文件或记录末尾"),
    0x6283: ("WARNING_FILE_INVALIDATED", "warning: selected file invalidated",
             "警告：选择的文件已失效"),
    0x6284: ("WARNING_FCI_FORMAT", "warning: FCI not formatted per ISO 7816-4",
             "警告：FCI 格式不符"),
    0x6300: ("WARNING_NVM_CHANGED", "warning: state of non-volatile memory changed",
             "警告：非易失存储器已改变"),
    0x6381: ("WARNING_FILE_FILLED", "warning: file filled up by the last write",
             "警告：文件已写满"),
    0x6400: ("EXECUTION_ERROR", "execution error, memory unchanged", "执行出错，存储器未改变"),
    0x6581: ("MEMORY_FAILURE", "memory failure", "存储器故障"),
    0x6700: ("WRONG_LENGTH", "wrong length", "长度错误"),
    0x6800: ("CLA_FUNCTION_NOT_SUPPORTED", "functions in CLA not supported",
             "不支持 CLA 中的功能"),
    0x6881: ("LOGICAL_CHANNEL_NOT_SUPPORTED", "logical channel not supported",
             "不支持逻辑通道"),
    0x6882: ("SM_NOT_SUPPORTED", "secure messaging not supported", "不支持安全报文"),
    0x6900: ("COMMAND_NOT_ALLOWED", "command not allowed", "命令不允许"),
    0x6901: ("INVALID_STATE", "command not accepted in the current state", "当前状态下命令无效"),
    0x6981: ("WRONG_FILE_TYPE", "command incompatible with file structure", "文件类型不符"),
    0x6982: ("SECURITY_NOT_SATISFIED", "security status not satisfied", "安全状态不满足"),
    0x6983: ("AUTH_BLOCKED", "PIN or authentication method blocked", "认证方法（PIN）已锁定"),
    0x6984: ("REF_DATA_INVALID", "reference data invalid (no challenge fetched)",
             "引用数据无效（未取随机数）"),
    0x6985: ("CONDITIONS_NOT_SATISFIED", "conditions of use not satisfied", "使用条件不满足"),
    0x6986: ("NO_CURRENT_EF", "command not allowed, no current EF",
             "不满足命令执行条件（无当前 EF）"),
    0x6987: ("SM_OBJECTS_MISSING", "expected secure messaging objects missing",
             "缺少安全报文数据对象"),
    0x6988: ("SM_WRONG", "secure messaging data objects incorrect", "安全报文数据错误"),
    0x6A80: ("WRONG_DATA", "incorrect parameters in the data field", "数据域参数错误"),
    0x6A81: ("FUNC_NOT_SUPPORTED", "function not supported (card blocked)",
             "功能不支持（卡已锁定）"),
    0x6A82: ("FILE_NOT_FOUND", "file or application not found", "文件或应用未找到"),
    0x6A83: ("RECORD_NOT_FOUND", "record not found", "记录未找到"),
    0x6A84: ("NO_SPACE", "not enough memory space in the file", "文件存储空间不足"),
    0x6A86: ("WRONG_P1P2", "incorrect parameters P1-P2", "参数 P1 P2 错误"),
    0x6A87: ("LC_INCONSISTENT", "Lc inconsistent with P1-P2", "Lc 与 P1 P2 不一致"),
    0x6A88: ("KEY_NOT_FOUND", "referenced data (key) not found", "引用数据（密钥）未找到"),
    0x6B00: ("OFFSET_BEYOND", "offset beyond the end of the EF", "偏移量超出文件"),
    0x6D00: ("INS_NOT_SUPPORTED", "instruction not supported", "指令不支持"),
    0x6E00: ("CLA_NOT_SUPPORTED", "class not supported", "类别不支持"),
    0x6F00: ("UNKNOWN", "no precise diagnosis", "无精确诊断"),
    0x9302: ("MAC_INVALID", "MAC invalid", "MAC 无效"),
    0x9303: ("APP_BLOCKED", "application permanently blocked", "应用已永久锁定"),
    0x9401: ("INSUFFICIENT_FUNDS", "insufficient funds", "金额不足"),
    0x9403: ("KEY_INDEX_UNSUPPORTED", "key index not supported", "密钥索引不支持"),
    0x9406: ("MAC_NOT_AVAILABLE", "MAC not available", "所需 MAC 不可用"),
}

_SW1_CLASS: dict[int, tuple[str, str, str]] = {
    0x62: ("WARNING", "warning, memory unchanged", "警告，存储器未改变"),
    0x63: ("WARNING", "warning, memory changed", "警告，存储器已改变"),
    0x64: ("EXECUTION_ERROR", "execution error, memory unchanged", "执行出错，存储器未改变"),
    0x65: ("EXECUTION_ERROR", "execution error, memory changed", "执行出错，存储器已改变"),
    0x66: ("SECURITY_ERROR", "security-related error", "安全相关错误"),
    0x67: ("WRONG_LENGTH", "wrong length", "长度错误"),
    0x68: ("CLA_FUNCTION_NOT_SUPPORTED", "functions in CLA not supported", "不支持 CLA 中的功能"),
    0x69: ("COMMAND_NOT_ALLOWED", "command not allowed", "命令不允许"),
    0x6A: ("WRONG_PARAMETERS", "wrong parameters", "参数错误"),
    0x6B: ("WRONG_P1P2", "wrong parameters P1-P2", "参数 P1 P2 错误"),
    0x6D: ("INS_NOT_SUPPORTED", "instruction not supported", "指令不支持"),
    0x6E: ("CLA_NOT_SUPPORTED", "class not supported", "类别不支持"),
    0x6F: ("UNKNOWN", "no precise diagnosis", "无精确诊断"),
    0x93: ("PROPRIETARY_ERROR", "application error", "应用错误"),
    0x94: ("PROPRIETARY_ERROR", "purse or key error", "电子钱包或密钥错误"),
}


def _check16(sw: int) -> None:
    if not 0 <= sw <= 0xFFFF:
        raise ApduError(f"status word out of range: {sw!r}")


def describe(sw: int, ins: int | None = None) -> StatusWord:
    """Name and meaning of ``sw`` (ISO 7816-4 §5.1.3 and spec/card.md §7).

    Patterns: ``61xx`` more data, ``63Cx`` wrong PIN with x tries left, ``6Cxx`` wrong Le.
    Any other value gets a class description from SW1, or a generic one. ``ins``, the
    instruction byte of the command answered, refines what a counter means: after
    EXTERNAL AUTHENTICATE (``82``) ``63Cx`` and ``6983`` speak of the key, not the PIN.

    >>> describe(0x63C1, ins=0x82).en
    'external authentication failed, 1 tries left'

    >>> describe(0x6110).en
    'more data available, 16 bytes'
    >>> str(describe(0x9000))
    '9000 success'
    """
    _check16(sw)
    if ins == INS_EXTERNAL_AUTH:
        if sw == SW_AUTH_BLOCKED:
            return StatusWord(sw, "AUTH_BLOCKED", "key blocked: external authentication "
                              "refused", "密钥已锁定，外部认证被拒绝")
        if sw & 0xFFF0 == 0x63C0:
            x = sw & 0x0F
            return StatusWord(sw, "AUTH_FAILED",
                              f"external authentication failed, {x} tries left",
                              f"外部认证失败，还可尝试 {x} 次")
    fixed = _FIXED.get(sw)
    if fixed is not None:
        return StatusWord(sw, *fixed)
    sw1, sw2 = sw >> 8, sw & 0xFF
    if sw1 == 0x61:
        n = sw2 or 256
        return StatusWord(sw, "MORE_DATA", f"more data available, {n} bytes",
                          f"还有 {n} 字节数据")
    if sw1 == 0x6C:
        n = sw2 or 256
        return StatusWord(sw, "WRONG_LE", f"wrong Le, {n} bytes expected",
                          f"Le 错误，应为 {n} 字节")
    if sw1 == 0x63 and sw2 & 0xF0 == 0xC0:
        x = sw2 & 0x0F
        return StatusWord(sw, "WRONG_PIN", f"wrong PIN, {x} tries left",
                          f"PIN 错误，还可尝试 {x} 次")
    cls = _SW1_CLASS.get(sw1)
    if cls is not None:
        return StatusWord(sw, *cls)
    return StatusWord(sw, "UNKNOWN_SW", f"unknown status word {sw:04X}", f"未知状态字 {sw:04X}")


def sw_more_data(n: int) -> int:
    """``61xx``: n more bytes are waiting for GET RESPONSE (n = 1..256; 256 → 6100)."""
    if not 1 <= n <= 256:
        raise ApduError(f"61xx count out of range: {n}")
    return 0x6100 | (n & 0xFF)


def sw_wrong_le(n: int) -> int:
    """``6Cxx``: resend with Le = n (n = 1..256; 256 → 6C00)."""
    if not 1 <= n <= 256:
        raise ApduError(f"6Cxx count out of range: {n}")
    return 0x6C00 | (n & 0xFF)


def sw_pin_tries(x: int) -> int:
    """``63Cx``: wrong PIN, x (0..15) tries left."""
    if not 0 <= x <= 15:
        raise ApduError(f"PIN try count out of range: {x}")
    return 0x63C0 | x


def pin_tries_left(sw: int) -> int | None:
    """Tries left encoded in a ``63Cx`` status word; 0 for ``6983`` (blocked); else None.

    >>> pin_tries_left(0x63C2), pin_tries_left(0x6983), pin_tries_left(0x9000)
    (2, 0, None)
    """
    if sw & 0xFFF0 == 0x63C0:
        return sw & 0x0F
    if sw == SW_AUTH_BLOCKED:
        return 0
    return None


def is_warning(sw: int) -> bool:
    """True for the warning classes 62xx and 63xx (ISO 7816-4 §5.1.3)."""
    return sw >> 8 in (0x62, 0x63)


def driver_code(sw: int) -> int:
    """Reader-interface return code of a card status word: ``-(SW1SW2)`` (spec/card.md §10).

    9000 maps to 0 (success).

    >>> driver_code(0x63C2)
    -25538
    """
    _check16(sw)
    return 0 if sw == SW_OK else -sw


def sw_from_driver_code(code: int) -> int | None:
    """The status word a negative driver code carries, or None for a driver-own code."""
    if -0xFFFF <= code <= -0x1000 and not _is_driver_own(code):
        return -code
    return None


class DriverCode(IntEnum):
    """Codes returned by the national reader interface (spec/card.md §10)."""

    OK = 0
    WRONG_CARD_TYPE = -1
    NO_CARD = -2
    CARD_NOT_POWERED = -3
    NO_RESPONSE = -4
    READER_CONNECTION = -11
    INTERNAL_AUTH_FAILED = -21
    DATA_MISMATCH = -22
    PIN_ENTRY_CANCELLED = -31
    PIN_ENTRY_TIMEOUT = -32
    BAD_PIN_LENGTH = -33
    NEW_PINS_DIFFER = -34
    INITIAL_PIN_FORBIDDEN = -35
    CHANGE_TO_INITIAL_PIN = -36
    WRONG_PIN = -51
    PIN_LOCKED = -52
    NO_PSAM = -2201
    PSAM_NO_ALGORITHM = -2202
    PSAM_NO_RKSSSE = -2203


_DRIVER_MESSAGES: dict[DriverCode, tuple[str, str]] = {
    DriverCode.OK: ("success", "成功"),
    DriverCode.WRONG_CARD_TYPE: ("wrong card type", "卡类型不对"),
    DriverCode.NO_CARD: ("no card in the reader", "无卡"),
    DriverCode.CARD_NOT_POWERED: ("card not powered", "卡片未上电"),
    DriverCode.NO_RESPONSE: ("no response from the card", "卡片无应答"),
    DriverCode.READER_CONNECTION: ("reader connection error", "读卡器连接错误"),
    DriverCode.INTERNAL_AUTH_FAILED: ("internal authentication failed: card not genuine",
                                      "内部认证失败（非法卡）"),
    DriverCode.DATA_MISMATCH: ("data does not match the card", "数据与卡片不一致"),
    DriverCode.PIN_ENTRY_CANCELLED: ("PIN entry cancelled", "密码输入被取消"),
    DriverCode.PIN_ENTRY_TIMEOUT: ("PIN entry timed out", "密码输入超时"),
    DriverCode.BAD_PIN_LENGTH: ("bad PIN length", "密码长度错误"),
    DriverCode.NEW_PINS_DIFFER: ("the two new PINs differ", "两次输入的新密码不一致"),
    DriverCode.INITIAL_PIN_FORBIDDEN: ("the initial PIN may not be used", "不能使用初始密码"),
    DriverCode.CHANGE_TO_INITIAL_PIN: ("may not change back to the initial PIN",
                                       "不能修改为初始密码"),
    DriverCode.WRONG_PIN: ("wrong PIN", "密码错误"),
    DriverCode.PIN_LOCKED: ("PIN locked", "密码已锁定"),
    DriverCode.NO_PSAM: ("no PSAM", "无 PSAM 卡"),
    DriverCode.PSAM_NO_ALGORITHM: ("PSAM lacks the algorithm", "PSAM 卡不支持该算法"),
    DriverCode.PSAM_NO_RKSSSE: ("PSAM lacks the RKSSSE key", "PSAM 卡缺少 RKSSSE 密钥"),
}


def _is_driver_own(code: int) -> bool:
    return code in DriverCode._value2member_map_


def driver_message(code: int) -> str:
    """English and Chinese text for a driver return code (spec/card.md §10).

    Negative status-word codes are decoded back to the status word.

    >>> driver_message(-52)
    'PIN locked / 密码已锁定'
    >>> driver_message(-25538)
    'card status 63C2: wrong PIN, 2 tries left / 卡片状态 63C2：PIN 错误，还可尝试 2 次'
    """
    if _is_driver_own(code):
        en, zh = _DRIVER_MESSAGES[DriverCode(code)]
        return f"{en} / {zh}"
    sw = sw_from_driver_code(code)
    if sw is not None:
        d = describe(sw)
        return f"card status {sw:04X}: {d.en} / 卡片状态 {sw:04X}：{d.zh}"
    return f"unknown driver code {code} / 未知返回码 {code}"

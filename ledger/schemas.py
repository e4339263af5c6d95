"""Request and response shapes of the NHSA-shaped service (spec/host.md §1–§2).

The envelope and every transaction code's ``input`` are pydantic models: the in-process
service and the HTTP server validate with the same models, and the OpenAPI description of
the HTTP server is generated from them. Money on the wire is yuan (string or number, at most
two decimals); after validation it is integer fen (:data:`Yuan`). Strings must be strings:
a number where a code is expected is refused, never coerced.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
)

from ledger.errors import BadRequest, HostError
from ledger.money import parse_qty, parse_yuan


def _yuan(v: object) -> int:
    try:
        return parse_yuan(v)
    except HostError as exc:
        raise ValueError(exc.message.split(": ", 1)[-1]) from None


def _qty(v: object) -> int:
    try:
        return parse_qty(v)
    except HostError as exc:
        raise ValueError(exc.message.split(": ", 1)[-1]) from None


def _plain(v: str) -> str:
    if v.isprintable():          # the common case, checked in C
        return v
    bad = next((c for c in v if unicodedata.category(c) in ("Cc", "Zl", "Zp")), None)
    if bad is not None:
        raise ValueError(f"contains a control character (U+{ord(bad):04X}): one line of "
                         "plain text")
    return v


Yuan = Annotated[int, BeforeValidator(_yuan)]
"""A yuan amount on the wire, integer fen after validation."""
Qty = Annotated[int, BeforeValidator(_qty)]
"""A quantity with up to 4 decimals, in 1/10000 units after validation."""

Code4 = Annotated[str, StringConstraints(pattern=r"^\d{4}$")]
Area = Annotated[str, StringConstraints(pattern=r"^\d{6}$")]
Inst = Annotated[str, StringConstraints(pattern=r"^[0-9A-Z]{12}$")]
Msgid = Annotated[str, StringConstraints(pattern=r"^[0-9A-Z]{12}\d{18}$")]
Text = Annotated[str, StringConstraints(min_length=1, max_length=100), AfterValidator(_plain)]
"""One line of text, 1 to 100 characters, without control characters."""
Note = Annotated[str, AfterValidator(_plain)]
"""Free text that may be empty (a department, a diagnosis), without control characters."""
Flag = Literal["0", "1"]
CertType = Literal["01", "02", "03", "04"]
Hex = Annotated[str, StringConstraints(pattern=r"^[0-9A-Fa-f]*$")]
Time = Annotated[str, StringConstraints(pattern=r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$")]


def _date(v: str) -> str:
    if v:
        try:
            date.fromisoformat(v)
        except ValueError:
            raise ValueError(f"{v} is no calendar date (yyyy-MM-dd)") from None
    return v


Date = Annotated[str, StringConstraints(pattern=r"^\d{4}-\d\d-\d\d$"), AfterValidator(_date)]
"""A calendar date ``yyyy-MM-dd``."""
OptDate = Annotated[str, StringConstraints(pattern=r"^(\d{4}-\d\d-\d\d)?$"),
                    AfterValidator(_date)]
"""A calendar date, or empty (unchanged, unknown)."""
OptText = Annotated[str, StringConstraints(max_length=100), AfterValidator(_plain)]
"""One line of text of at most 100 characters, or empty."""
Naty = Annotated[str, StringConstraints(pattern=r"^\d{2}$")]
"""Ethnic group, the two-digit code of GB/T 3304 (01 Han … 98 foreign origin)."""
OptNaty = Annotated[str, StringConstraints(pattern=r"^(\d{2})?$")]
PsnType = Annotated[str, StringConstraints(pattern=r"^\d{2,4}$")]
"""Personnel type code (11 employed, 21 retired, …)."""
CertNo = Annotated[str, StringConstraints(pattern=r"^\d{17}[\dXx]$")]
OptCertNo = Annotated[str, StringConstraints(pattern=r"^(\d{17}[\dXx])?$")]


class Strict(BaseModel):
    """Base: unknown fields are kept (real clients send more), types are not coerced."""

    model_config = ConfigDict(extra="allow", strict=False, coerce_numbers_to_str=False)


class Envelope(Strict):
    """The request envelope (spec/host.md §1)."""

    infno: Code4
    msgid: Msgid
    mdtrtarea_admvs: Area
    insuplc_admdvs: Annotated[str, StringConstraints(pattern=r"^(\d{6})?$")] = ""
    recer_sys_code: str = "SSCARD"
    dev_no: str = ""
    dev_safe_info: str = ""
    cainfo: str = ""
    signtype: str = ""
    infver: str = "V1.0"
    opter_type: Literal["1", "2", "3"]
    opter: Text
    opter_name: Text
    inf_time: Time
    fixmedins_code: Inst
    fixmedins_name: Text
    sign_no: str = ""
    input: dict[str, Any]

    @field_validator("msgid")
    @classmethod
    def _msgid_time(cls, v: str) -> str:
        t = v[12:26]
        if not (1 <= int(t[4:6]) <= 12 and 1 <= int(t[6:8]) <= 31 and int(t[8:10]) < 24):
            raise ValueError("msgid characters 13–26 must be a time yyyyMMddHHmmss")
        return v


class ResponseEnvelope(BaseModel):
    """The response envelope (spec/host.md §1). ``err_code`` is sscard's addition: a stable
    machine-readable reason next to the human ``err_msg``."""

    infcode: Literal[0, -1]
    inf_refmsgid: str
    refmsg_time: str
    respond_time: str
    err_msg: str = ""
    err_code: str = ""
    warn_msg: str = ""
    output: dict[str, Any] = Field(default_factory=dict)


# -- 9001 / 9002 ---------------------------------------------------------------------------

class SignInData(Strict):
    opter_no: Text
    mac: str = ""
    ip: str = ""


class In9001(Strict):
    signIn: SignInData


class SignOutData(Strict):
    sign_no: Text
    opter_no: Text


class In9002(Strict):
    signOut: SignOutData


# -- 1101 ------------------------------------------------------------------------------

class Data1101(Strict):
    mdtrt_cert_type: CertType
    mdtrt_cert_no: Text
    card_sn: str = ""
    begntime: str = ""
    psn_cert_type: str = "01"
    certno: str = ""
    psn_name: OptText = ""


class In1101(Strict):
    data: Data1101


# -- pharmacy 2101 / 2102 / 2103 --------------------------------------------------------

class BankAuth(Strict):
    """A bank-account debit authorised by the card (spec/card.md §11): the CDOL1 data the
    terminal sent in GENERATE AC, the card's answer (ATC, ARQC); see ledger/bank.py."""

    pan: Annotated[str, StringConstraints(pattern=r"^\d{13,19}$")]
    pan_seq: Annotated[str, StringConstraints(pattern=r"^\d{2}$")] = "01"
    cdol1: Annotated[str, StringConstraints(pattern=r"^[0-9A-Fa-f]{58}$")]
    atc: Annotated[str, StringConstraints(pattern=r"^[0-9A-Fa-f]{4}$")]
    arqc: Annotated[str, StringConstraints(pattern=r"^[0-9A-Fa-f]{16}$")]


class DrugInfo(Strict):
    psn_no: Text
    mdtrt_cert_type: CertType
    mdtrt_cert_no: Text
    card_sn: str = ""
    med_type: Code4 | Annotated[str, StringConstraints(pattern=r"^\d{2}$")] = "41"
    medfee_sumamt: Yuan
    insutype: Annotated[str, StringConstraints(pattern=r"^\d{3}$")]
    acct_used_flag: Flag = "1"
    psn_setlway: str = "01"
    cash_src: Literal["cash", "bank"] = "cash"
    bank_auth: BankAuth | None = None


class FeeLine(Strict):
    feedetl_sn: Annotated[str, StringConstraints(min_length=1, max_length=30)]
    med_list_codg: Annotated[str, StringConstraints(min_length=1, max_length=50)]
    medins_list_codg: str = ""
    cnt: Qty
    pric: Yuan
    det_item_fee_sumamt: Yuan


class In2101(Strict):
    druginfo: DrugInfo
    drugdetail: Annotated[list[FeeLine], Field(min_length=1, max_length=500)]


class Data2103(Strict):
    setl_id: Text
    mdtrt_id: Text
    psn_no: Text


class In2103(Strict):
    data: Data2103


# -- inpatient --------------------------------------------------------------------------

class MdtrtInfo(Strict):
    psn_no: Text
    mdtrt_cert_type: CertType
    mdtrt_cert_no: Text
    card_sn: str = ""
    insutype: Annotated[str, StringConstraints(pattern=r"^\d{3}$")]
    med_type: Annotated[str, StringConstraints(pattern=r"^\d{2,4}$")] = "21"
    begntime: Time
    ipt_no: Note = ""
    dept_name: Note = ""
    dise_name: Note = ""


class In2401(Strict):
    mdtrtinfo: MdtrtInfo


class DscgInfo(Strict):
    mdtrt_id: Text
    psn_no: Text
    endtime: Time
    dscg_way: str = "1"
    dise_name: Note = ""


class In2402(Strict):
    dscginfo: DscgInfo


class Data24xx(Strict):
    mdtrt_id: Text
    psn_no: Text


class In2404(Strict):
    data: Data24xx


class FeeDetail(FeeLine):
    mdtrt_id: Text
    psn_no: Text
    fee_ocur_time: str = ""


class In2301(Strict):
    feedetail: Annotated[list[FeeDetail], Field(min_length=1, max_length=2000)]


class Data2302(Strict):
    mdtrt_id: Text
    psn_no: Text
    feedetl_sn: str = "0000"   # "0000" cancels every uploaded detail (NHSA convention)


class In2302(Strict):
    data: Data2302


class Data2303(Strict):
    mdtrt_id: Text
    psn_no: Text
    mdtrt_cert_type: CertType = "03"
    mdtrt_cert_no: str = ""
    card_sn: str = ""
    medfee_sumamt: Yuan
    acct_used_flag: Flag = "1"
    cash_src: Literal["cash", "bank"] = "cash"
    bank_auth: BankAuth | None = None


class In2303(Strict):
    data: Data2303


class Data2305(Strict):
    setl_id: Text
    mdtrt_id: Text
    psn_no: Text


class In2305(Strict):
    data: Data2305


# -- reversal, reconciliation, cumulative -------------------------------------------------

class Data2601(Strict):
    psn_no: Text
    omsgid: Msgid
    oinfno: Code4


class In2601(Strict):
    data: Data2601


class Data3201(Strict):
    setl_optins: Area = Field(default="000000")
    stmt_begndate: Date
    stmt_enddate: Date
    medfee_sumamt: Yuan
    fund_pay_sumamt: Yuan
    acct_pay: Yuan
    fixmedins_setl_cnt: Annotated[int, Field(ge=0)]
    clr_type: str = "41"
    insutype: str = ""


class In3201(Strict):
    data: Data3201


class Detail3202(Strict):
    setl_id: Text
    medfee_sumamt: Yuan
    fund_pay_sumamt: Yuan
    acct_pay: Yuan
    refd_setl_flag: Flag = "0"


class Data3202(Strict):
    stmt_begndate: Date
    stmt_enddate: Date
    details: Annotated[list[Detail3202], Field(max_length=100_000)]


class In3202(Strict):
    data: Data3202


class Data5206(Strict):
    psn_no: Text
    cum_ym: Annotated[str, StringConstraints(pattern=r"^\d{6}$")]


class In5206(Strict):
    data: Data5206


# -- counter operations (sscard, named in the same style) ---------------------------------

Bank = Literal["CCB", "ICBC", "ABC", "BOC"]


class Data8101(Strict):
    certno: CertNo
    psn_name: Text
    gend: Literal["1", "2"]
    naty: Naty = "01"
    brdy: Date
    insutype: Annotated[str, StringConstraints(pattern=r"^\d{3}$")] = "310"
    psn_type: PsnType = "11"
    insuplc_admdvs: Area
    emp_name: OptText = ""
    bank: Bank
    generation: Literal["2.00", "3.00"] = "3.00"


class In8101(Strict):
    data: Data8101


class Data8102(Strict):
    card_no: Text
    certno: Text
    pin_changed: bool


class In8102(Strict):
    data: Data8102


class Data8103(Strict):
    card_no: Text
    certno: Text
    loss_type: Literal["1", "2"]   # 1 temporary (口头/临时), 2 formal (书面/正式)


class In8103(Strict):
    data: Data8103


class Data8104(Strict):
    card_no: Text
    certno: Text


class In8104(Strict):
    data: Data8104


class Data8105(Strict):
    card_no: Text
    certno: Text
    reason: Literal["lost", "damaged_by_holder", "damaged_not_holder", "data_error"]
    fee_src: Literal["cash", "bank"] = "cash"
    certificate_no: str = ""


class In8105(Strict):
    data: Data8105


class Data8106(Strict):
    card_no: Text
    certno: Text
    op: Literal["unlock", "reset"] = "reset"


class In8106(Strict):
    data: Data8106


class Data8107(Strict):
    psn_no: Text
    certno: Text
    psn_name: OptText = ""
    gend: Literal["", "1", "2"] = ""
    naty: OptNaty = ""
    brdy: OptDate = ""
    emp_name: OptText | None = None
    new_certno: OptCertNo = ""


class In8107(Strict):
    data: Data8107


class Data8108(Strict):
    mdtrt_cert_type: CertType = "03"
    mdtrt_cert_no: Text
    card_sn: str = ""


class In8108(Strict):
    data: Data8108


class Data8109(Strict):
    psn_no: Text
    amount: Yuan
    target: Literal["medical", "old", "bank"] = "medical"
    old_card_no: str = ""
    card_no: str = ""


class In8109(Strict):
    data: Data8109


class Data8110(Strict):
    """A card personalised elsewhere (a card bureau, a fixture image) and its holder: either
    ``psn_no`` of a person the host knows, or the person's data as for 8101."""

    psn_no: str = ""
    certno: OptCertNo = ""
    psn_name: OptText = ""
    gend: Literal["", "1", "2"] = ""
    naty: Naty = "01"
    brdy: OptDate = ""
    insutype: Annotated[str, StringConstraints(pattern=r"^\d{3}$")] = "310"
    psn_type: PsnType = "11"
    insuplc_admdvs: Annotated[str, StringConstraints(pattern=r"^(\d{6})?$")] = ""
    emp_name: OptText = ""
    card_no: Annotated[str, StringConstraints(pattern=r"^[0-9A-Z]{8}[0-9X]$")]
    card_sn: Annotated[str, StringConstraints(pattern=r"^[0-9A-F]{32}$")]
    pan: Annotated[str, StringConstraints(pattern=r"^\d{16,19}$")]
    pan_seq: Annotated[str, StringConstraints(pattern=r"^\d{2}$")] = "01"
    bank: Bank
    generation: Literal["2.00", "3.00"] = "3.00"
    algorithm: Literal["", "SM4", "3DES"] = ""
    card_stas: Literal["issued", "activated"]


class In8110(Strict):
    data: Data8110


class Data8201(Strict):
    batch_size: Annotated[int, Field(ge=1, le=100_000)] = 1000


class In8201(Strict):
    data: Data8201


class Data8202(Strict):
    transition: Literal["open", "closed"]


class In8202(Strict):
    data: Data8202


class Data8203(Strict):
    psn_no: Text
    old_card_no: Annotated[str, StringConstraints(pattern=r"^[0-9A-Z]{6,20}$")]
    balance: Yuan


class In8203(Strict):
    data: Data8203


INPUT_MODELS: dict[str, type[BaseModel]] = {
    "9001": In9001, "9002": In9002, "1101": In1101,
    "2101": In2101, "2102": In2101, "2103": In2103,
    "2401": In2401, "2402": In2402, "2404": In2404, "2405": In2404,
    "2301": In2301, "2302": In2302, "2303": In2303, "2304": In2303, "2305": In2305,
    "2601": In2601, "3201": In3201, "3202": In3202, "5206": In5206,
    "8101": In8101, "8102": In8102, "8103": In8103, "8104": In8104, "8105": In8105,
    "8106": In8106, "8107": In8107, "8108": In8108, "8109": In8109,
    "8110": In8110,
    "8201": In8201, "8202": In8202, "8203": In8203,
}


def describe_validation(exc: ValidationError, prefix: str) -> str:
    """One precise line for a pydantic validation error: which field, what is wrong."""
    parts = []
    for err in exc.errors()[:5]:
        loc = ".".join(str(p) for p in err["loc"] if not str(p).startswith("function-"))
        loc = re.sub(r"\.(\d+)(?=\.|$)", r"[\1]", loc)
        where = f"{prefix}.{loc}" if loc else prefix
        kind = err["type"]
        if kind == "missing":
            parts.append(f"{where} is missing")
        elif kind == "value_error":
            parts.append(f"{where}: {err['msg'].removeprefix('Value error, ')}")
        elif kind in ("string_type", "int_type", "dict_type", "list_type", "bool_type",
                      "model_type", "literal_error", "string_pattern_mismatch",
                      "value_error", "too_short", "too_long", "string_too_short",
                      "string_too_long", "greater_than_equal", "less_than_equal"):
            got = err.get("input")
            shown = repr(got) if not isinstance(got, dict | list) else type(got).__name__
            parts.append(f"{where}: {err['msg'].removeprefix('Value error, ')} (got {shown})")
        else:
            parts.append(f"{where}: {err['msg']}")
    more = len(exc.errors()) - 5
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


def validate(model: type[BaseModel], data: Any, prefix: str) -> Any:
    """Validate ``data`` against ``model`` or raise :class:`BadRequest` with a precise text."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise BadRequest(describe_validation(exc, prefix)) from None

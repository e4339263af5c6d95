"""Hospital admission (seed rule U2): the card proves who the patient is.

::

    READ_CARD ─▶ IDENTITY ─▶ IDENTIFY ─▶ COMPARE ─▶ ADMIT ─▶ DONE
                                            └──────▶ REJECTED (the clerk saw a mismatch)

READ_CARD reads the basics and authenticates the card with the PSAM (spec/card.md §5);
IDENTITY reads the holder file EF06 and the photo (spec/card.md §3, §4); IDENTIFY is the
person lookup 1101; COMPARE waits for the clerk, who compares name, sex, ID number, birth
date and photo with the patient, then :meth:`Admission.confirm` registers the admission
(2401, spec/host.md §2). A 2401 without an answer is reversed (2601) before the flow says so.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from terminal.core.common import (
    CardFlow,
    Clock,
    card_failure,
    host_failure,
    now,
)
from terminal.core.machine import Awaiting, Failure, FailureKind
from terminal.core.model import TerminalConfig
from terminal.core.ports import (
    CardError,
    CardPort,
    HolderIdentity,
    HostError,
    HostPort,
    HostTimeout,
)


class AdmissionState(enum.Enum):
    READ_CARD = "read_card"
    IDENTITY = "identity"
    IDENTIFY = "identify"
    COMPARE = "compare"
    ADMIT = "admit"
    REVERSE = "reverse"
    DONE = "done"
    FAILED = "failed"
    REJECTED = "rejected"


@dataclass(frozen=True)
class AdmissionData:
    """What the admission desk types: department, ward/bed, diagnosis, doctor."""

    dept_code: str = "0301"
    dept_name: str = "内科"
    bed: str = ""
    diag_code: str = ""
    diag_name: str = ""
    doctor: str = ""
    ipt_no: str = ""
    med_type: str = "21"


@dataclass(frozen=True)
class AdmissionResult:
    mdtrt_id: str
    psn_no: str
    card_number: str
    name: str
    ipt_no: str
    admitted_at: datetime

    def to_dict(self) -> dict[str, str]:
        return {"mdtrt_id": self.mdtrt_id, "psn_no": self.psn_no,
                "card_number": self.card_number, "name": self.name, "ipt_no": self.ipt_no,
                "admitted_at": self.admitted_at.isoformat()}


A = AdmissionState


class Admission(CardFlow[AdmissionState]):
    """Admission of an inpatient with their card."""

    name = "admission"
    TRANSITIONS: ClassVar[Mapping[Any, frozenset[Any]]] = {
        A.READ_CARD: frozenset({A.IDENTITY, A.FAILED}),
        A.IDENTITY: frozenset({A.IDENTIFY, A.FAILED}),
        A.IDENTIFY: frozenset({A.COMPARE, A.FAILED}),
        A.COMPARE: frozenset({A.ADMIT, A.REJECTED}),
        A.ADMIT: frozenset({A.DONE, A.FAILED, A.REVERSE}),
        A.REVERSE: frozenset({A.FAILED}),
    }
    AWAITING: ClassVar[Mapping[Any, Awaiting]] = {A.COMPARE: Awaiting.CONFIRM}
    TERMINAL = frozenset({A.DONE, A.FAILED, A.REJECTED})

    def __init__(self, card: CardPort, host: HostPort, config: TerminalConfig | None = None,
                 *, clock: Clock = now) -> None:
        super().__init__(A.READ_CARD)
        self.card = card
        self.host = host
        self.config = config or TerminalConfig()
        self.clock = clock
        self.identity: HolderIdentity | None = None
        self.data = AdmissionData()
        self.result: AdmissionResult | None = None

    def _do_read_card(self) -> None:
        info = self._read_card(self.card, A.FAILED)
        if info is not None:
            self._go(A.IDENTITY, f"card {info.masked_number}")

    def _do_identity(self) -> None:
        try:
            self.identity = self.card.read_identity(with_photo=True)
        except CardError as exc:
            self._fail(A.FAILED, card_failure(exc, doing="reading the holder data"))
            return
        self._go(A.IDENTIFY, f"{self.identity.name}, {self.identity.sex.label}, "
                 f"{self.identity.ssn}", photo=self.identity.photo_kind)

    def _do_identify(self) -> None:
        assert self.identity is not None
        person = self._identify(A.FAILED)
        if person is None:
            return
        warn = ""
        if person.certno and person.certno != self.identity.ssn:
            warn = " — the host's ID number differs from the card's: check the ID card"
        self._go(A.COMPARE, "compare the patient with the card: name, sex, ID number, birth "
                 "date, photo" + warn, mismatch=bool(warn))

    def confirm(self, data: AdmissionData | None = None) -> None:
        """The clerk saw that the patient matches the card: register the admission."""
        self._require(A.COMPARE)
        if data is not None:
            self.data = data
        self._go(A.ADMIT, "registering the admission (2401)")

    def reject(self, reason: str = "the patient does not match the card") -> None:
        """The clerk saw a mismatch: nothing is registered."""
        self._require(A.COMPARE)
        self._fail(A.REJECTED, Failure(FailureKind.CANCELLED, f"admission refused: {reason}"))

    def _do_admit(self) -> None:
        assert self.person is not None and self.card_info is not None
        when = self.clock()
        d = self.data
        ipt_no = d.ipt_no or f"ZY{when:%Y%m%d%H%M%S}"
        try:
            reply = self.host.call("2401", {"mdtrtinfo": {
                "psn_no": self.person.psn_no,
                "insutype": self.person.insutype or self.config.insutype,
                "mdtrt_cert_type": "03",
                "mdtrt_cert_no": self.card_info.card_number,
                "card_sn": self.card_info.card_id_code,
                "med_type": d.med_type,
                "ipt_no": ipt_no,
                "begntime": when.strftime("%Y-%m-%d %H:%M:%S"),
                "dept_name": d.dept_name,
                "dise_name": d.diag_name,
                "adm_dept_codg": d.dept_code,
                "adm_bed": d.bed,
                "atddr_no": d.doctor,
                "adm_diag_dscr": d.diag_name,
                "dscg_maindiag_code": d.diag_code,
            }}, insuplc_admdvs=self.person.insuplc_admdvs)
        except HostTimeout as exc:
            self._timed_out(exc, "the admission (2401)", failed=A.FAILED, reverse=A.REVERSE)
            return
        except HostError as exc:
            self._fail(A.FAILED, host_failure(exc, doing="the admission (2401)"))
            return
        out = reply.output
        mdtrt_id = str(out.get("mdtrt_id") or (out.get("result") or {}).get("mdtrt_id") or "")
        self.result = AdmissionResult(mdtrt_id, self.person.psn_no, self.card_info.card_number,
                                      self.person.name, ipt_no, when)
        self._go(A.DONE, f"admitted: {mdtrt_id}", mdtrt_id=mdtrt_id)

    def _do_reverse(self) -> None:
        assert self.person is not None
        self._reverse_timeout(
            self.person.psn_no, "the admission (2401)", failed=A.FAILED,
            subject="the admission", advice="check the patient's admissions at the host "
            "before registering again")


def run_admission(flow: Admission, data: AdmissionData | None = None,
                  *, accept: bool = True) -> Admission:
    """Drive an admission without a UI; ``accept`` is the clerk's identity decision."""
    flow.run_until_input()
    if flow.state is A.COMPARE:
        if accept:
            flow.confirm(data)
        else:
            flow.reject()
    flow.run_until_input()
    return flow

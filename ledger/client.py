"""``HostClient``: how terminals talk to the host (spec/host.md §1, §4).

Usage::

    from ledger.client import HostClient, drug_line
    host = HostClient.connect("sqlite:///var/host.db",            # embedded, in-process
                              fixmedins_code="P37080000001", fixmedins_name="太白湖大药房")
    # or HostClient.connect("http://127.0.0.1:8700", fixmedins_code=…, terminal_id="01",
    #                       key=bytes.fromhex("…"))               # remote, signed
    who = host.person_by_card(card_no, card_sn)                   # 1101 output
    psn_no = who["baseinfo"]["psn_no"]
    lines = [drug_line("1", "XJ01CAA040A001010101445", 2, 1250)]  # cnt 2 × 12.50 yuan
    trial = host.trial(psn_no=psn_no, card_no=card_no, card_sn=card_sn, lines=lines)
    done = host.settle(psn_no=psn_no, card_no=card_no, card_sn=card_sn, lines=lines)
    host.cancel(done["setlinfo"]["setl_id"], done["setlinfo"]["mdtrt_id"], psn_no)

Connection: ``connect(url)`` accepts ``sqlite:///path`` or ``postgresql://…`` (an embedded
:class:`~ledger.service.HostService` in this process) or ``http(s)://host:port`` (the
server of ``sscard host serve``; every request signed with the terminal key). The client
signs in (9001) on connect and signs out (9002) on :meth:`close`.

Every method returns the ``output`` object of the answer; a refusal (``infcode -1``)
raises a :class:`~ledger.errors.HostError` subclass carrying the host's ``err_msg``
(:class:`~ledger.errors.InsufficientFunds`, :class:`~ledger.errors.Refused`,
:class:`~ledger.errors.NotFound`, :class:`~ledger.errors.BadRequest`…); ``exc.code`` is the
host's ``err_code``. Amounts on the wire are yuan strings ("12.34"); helpers take fen.

**Paying the rest from the card's bank account** (seed U3, spec/card.md §11): run the
trial with ``cash_src="bank"``, read ``setlinfo.psn_cash_pay``, ask the card for an ARQC
(GENERATE AC) over CDOL1 data built with :func:`ledger.bank.build_cdol1` for that amount,
then settle with ``cash_src="bank"`` and ``bank_auth=bank_auth(pan, "01", cdol1, atc,
arqc)``; the answer carries ``arpc`` for the card.

**Reversal rule** (spec/host.md §4): when a reversible request (2102, 2103, 2304, 2305,
2401) gets no answer (timeout, broken connection), the client sends 2601 for it before
doing anything else and then raises :class:`~ledger.errors.Unavailable`: the terminal knows
nothing was charged. If the reversal cannot be delivered either, it stays in
:attr:`HostClient.pending_reversals` and is sent before the next request; until it is
delivered, every call raises :class:`~ledger.errors.Unavailable`. Other requests are
retried with the same msgid (idempotent) and then raise :class:`Unavailable`.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any, ClassVar, Protocol

from ledger import errors
from ledger.errors import HostError, Unavailable
from ledger.money import line_amount, parse_qty, qty_text, yuan
from ledger.store.base import safe_url

REVERSIBLE = frozenset({"2102", "2103", "2304", "2305", "2401"})
_ERRORS: dict[str, type[HostError]] = {
    "bad_request": errors.BadRequest, "not_found": errors.NotFound,
    "insufficient_funds": errors.InsufficientFunds, "msgid_conflict": errors.MsgidConflict,
    "auth": errors.AuthError, "busy": errors.StoreBusy, "policy": errors.PolicyError,
}


class Transport(Protocol):
    """Moves one envelope to the host and back; raises :class:`Unavailable` when no
    answer came."""

    def send(self, envelope: dict[str, Any], timeout: float) -> dict[str, Any]: ...

    def close(self) -> None: ...


class LocalTransport:
    """The host in this process (embedded terminal)."""

    def __init__(self, service: Any, *, own: bool = False) -> None:
        self.service = service
        self.own = own

    def send(self, envelope: dict[str, Any], timeout: float) -> dict[str, Any]:
        answer: dict[str, Any] = self.service.call(envelope)
        return answer

    def close(self) -> None:
        if self.own:
            self.service.close()


class HttpTransport:
    """The host over HTTP, each request signed (see :mod:`ledger.auth`)."""

    PATH = "/fsi/api/rsfComIfsService/callService"

    def __init__(self, base_url: str, *, paasid: str, key: bytes) -> None:
        import httpx
        self.httpx = httpx
        self.paasid = paasid
        self.key = key
        try:
            self.client = httpx.Client(base_url=base_url.rstrip("/"))
        except httpx.InvalidURL as exc:
            raise errors.BadRequest(f"bad host URL {safe_url(base_url)}: {exc}; expected "
                                    "http://HOST:PORT") from None
        if not self.client.base_url.host:
            self.client.close()
            raise errors.BadRequest(f"bad host URL {safe_url(base_url)}: no host name; "
                                    "expected http://HOST:PORT")

    def send(self, envelope: dict[str, Any], timeout: float) -> dict[str, Any]:
        from ledger.auth import sign_headers
        body = json.dumps(envelope, ensure_ascii=False).encode()
        headers = {"content-type": "application/json", **sign_headers(self.key, self.paasid,
                                                                      body)}
        try:
            r = self.client.post(self.PATH, content=body, headers=headers, timeout=timeout)
        except self.httpx.TimeoutException:
            raise Unavailable(f"no answer from the host within {timeout:g} s") from None
        except self.httpx.TransportError as exc:
            raise Unavailable(f"cannot reach the host: {exc}") from None
        try:
            answer: dict[str, Any] = r.json()
        except ValueError:
            raise Unavailable(f"the host answered HTTP {r.status_code} without JSON") from None
        return answer

    def close(self) -> None:
        self.client.close()




def drug_line(feedetl_sn: str, med_list_codg: str, cnt: int | str, pric_fen: int,
              **extra: Any) -> dict[str, Any]:
    """One ``drugdetail`` / ``feedetail`` line with its amount computed the host's way
    (price × quantity rounded half up to the fen)."""
    q = parse_qty(cnt)
    return {"feedetl_sn": feedetl_sn, "med_list_codg": med_list_codg, "cnt": qty_text(q),
            "pric": yuan(pric_fen), "det_item_fee_sumamt": yuan(line_amount(pric_fen, q)),
            **extra}


def bank_auth(pan: str, pan_seq: str, cdol1: bytes, atc: int, arqc: bytes) -> dict[str, Any]:
    """The ``bank_auth`` object of a settlement paid from the card's bank account."""
    return {"pan": pan, "pan_seq": pan_seq, "cdol1": cdol1.hex().upper(),
            "atc": f"{atc:04X}", "arqc": arqc.hex().upper()}


def terminal_slot(terminal_id: str | None) -> int:
    """The msgid slot 00–99 of a terminal (see :class:`MsgidSequence`).

    A terminal id of digits is its own slot (``"01"`` → 1; ids 00–99 map one-to-one, larger
    ones modulo 100); any other id is hashed to a slot. A client without a terminal id takes
    the slot of its process (process id modulo 100).
    """
    if not terminal_id:
        return os.getpid() % 100
    if terminal_id.isdigit():
        return int(terminal_id) % 100
    return int.from_bytes(hashlib.sha256(terminal_id.encode()).digest()[:4], "big") % 100


class MsgidSequence:
    """The last four characters of the msgids of one terminal slot (spec/host.md §1).

    ``msgid = institution(12) ‖ yyyyMMddHHmmss ‖ slot(2) ‖ counter(2)``: the slot (00–99)
    comes from the terminal id the host knows from the sign-in (9001, paasid
    ``institution-terminal``), the counter (00–99) restarts every second. Terminals of one
    institution with different slots can never mint the same msgid; clients of the same
    institution and slot inside one process share one sequence, so they cannot either.

    The pairs (second, counter) of a sequence only ever increase, so its msgids never
    repeat: a slot that has used its 100 msgids of a second goes on with the next second
    instead of making the caller wait (the time part then runs ahead of the clock, only
    under a load no counter produces: more than 100 messages a second from one terminal),
    and if the clock goes back, the sequence carries on from the last second it used.

    With ``subsecond`` (the sequences of :meth:`shared`) the counter never falls behind the
    hundredths of the current second, so a process that starts within the same second as
    an earlier one of the same terminal ended (``sscard checkout`` run twice) goes on after
    the msgids that one used instead of minting them again (unless it minted faster than
    one every hundredth of a second, which one terminal does not). The host would answer a
    repeated msgid with the first answer: a sale not made, a sign-in already closed.
    """

    PER_SECOND = 100

    def __init__(self, prefix: str, slot: int,
                 clock: Callable[[], datetime] | None = None, *,
                 subsecond: bool = False) -> None:
        if not 0 <= slot <= 99:
            raise ValueError("a msgid slot is 00..99")
        self.prefix = prefix
        self.slot = slot
        self.subsecond = subsecond
        self._clock = clock or datetime.now
        self._lock = threading.Lock()
        self._second: datetime | None = None
        self._n = 0

    def next(self) -> str:
        with self._lock:
            t = self._clock()
            now = t.replace(microsecond=0)
            floor = t.microsecond // 10_000 if self.subsecond else 0
            if self._second is None or now > self._second:
                self._second, self._n = now, floor
            elif now == self._second and self._n < floor:
                self._n = floor
            elif self._n >= self.PER_SECOND:
                self._second, self._n = self._second + timedelta(seconds=1), 0
            n, self._n = self._n, self._n + 1
            return f"{self.prefix}{self._second:%Y%m%d%H%M%S}{self.slot:02d}{n:02d}"

    _shared: ClassVar[dict[tuple[str, int], MsgidSequence]] = {}
    _shared_lock: ClassVar[threading.Lock] = threading.Lock()

    @classmethod
    def shared(cls, prefix: str, slot: int) -> MsgidSequence:
        """The one sequence of ``(institution, slot)`` in this process."""
        with cls._shared_lock:
            seq = cls._shared.get((prefix, slot))
            if seq is None:
                seq = cls._shared[(prefix, slot)] = cls(prefix, slot, subsecond=True)
            return seq


def _find_psn(obj: Any) -> str:
    if isinstance(obj, Mapping):
        if isinstance(obj.get("psn_no"), str):
            return str(obj["psn_no"])
        for v in obj.values():
            found = _find_psn(v)
            if found:
                return found
    elif isinstance(obj, list):
        for v in obj:
            found = _find_psn(v)
            if found:
                return found
    return ""


class HostClient:
    """A terminal's connection to the host. Thread-safe; one sign-in per client.

    ``terminal_id`` is the terminal's number at its institution (the ``paasid`` of its
    sign-in is ``institution-terminal``); it picks the slot of the msgids the client mints
    (:class:`MsgidSequence`), so give every terminal of an institution its own id (00–99).
    """

    def __init__(self, transport: Transport, *, fixmedins_code: str,
                 fixmedins_name: str = "", mdtrtarea_admvs: str | None = None,
                 terminal_id: str | None = None,
                 opter: str = "0001", opter_name: str = "收款员", opter_type: str = "1",
                 timeout: float = 10.0, retries: int = 2, sign_in: bool = True) -> None:
        self.transport = transport
        self.fixmedins_code = fixmedins_code
        self.fixmedins_name = fixmedins_name or fixmedins_code
        self.mdtrtarea_admvs = mdtrtarea_admvs or fixmedins_code[1:7]
        self.opter, self.opter_name, self.opter_type = opter, opter_name, opter_type
        self.timeout = timeout
        self.retries = retries
        self.sign_no = ""
        self.pending_reversals: list[tuple[str, str, str]] = []
        self.terminal_id = terminal_id
        self._lock = threading.Lock()
        self._call_lock = threading.RLock()
        self._msgids = MsgidSequence.shared(fixmedins_code, terminal_slot(terminal_id))
        self._reversal_ids: dict[str, str] = {}
        if sign_in:
            try:
                self.sign_in()
            except BaseException:
                self.transport.close()
                raise

    # -- construction ----------------------------------------------------------------------

    @classmethod
    def connect(cls, url: str, *, fixmedins_code: str, terminal_id: str | None = None,
                key: bytes | None = None, secret: bytes | None = None,
                **kw: Any) -> HostClient:
        """Connect to the host at ``url`` (see the module docstring).

        For ``http(s)://`` the terminal key is ``key``; for tests and single-machine setups
        it may instead be derived from the host ``secret`` (default: the TEST secret).
        ``terminal_id`` (default ``"01"`` in the paasid) also picks the msgid slot (see
        :class:`MsgidSequence`); without it an embedded client takes its process's slot.
        """
        if url.startswith(("http://", "https://")):
            from ledger.auth import TEST_SECRET, terminal_key
            paasid = f"{fixmedins_code}-{terminal_id or '01'}"
            k = key if key is not None else terminal_key(secret or TEST_SECRET, paasid)
            return cls(HttpTransport(url, paasid=paasid, key=k),
                       fixmedins_code=fixmedins_code, terminal_id=terminal_id or "01", **kw)
        from ledger.service import HostService
        return cls(LocalTransport(HostService.open(url), own=True),
                   fixmedins_code=fixmedins_code, terminal_id=terminal_id, **kw)

    def close(self) -> None:
        """Sign out (if the host is reachable) and release the connection."""
        try:
            if self.sign_no:
                self.call("9002", {"signOut": {"sign_no": self.sign_no,
                                               "opter_no": self.opter}})
                self.sign_no = ""
        except HostError:
            pass
        finally:
            self.transport.close()

    def __enter__(self) -> HostClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- envelopes -------------------------------------------------------------------------

    def new_msgid(self) -> str:
        """``fixmedins_code(12) ‖ yyyyMMddHHmmss ‖ slot(2) ‖ counter(2)`` (spec/host.md §1;
        :class:`MsgidSequence`). A retry of a request re-sends its msgid; only a new
        request takes a new one."""
        return self._msgids.next()

    def envelope(self, infno: str, input: dict[str, Any], msgid: str | None = None,
                 insuplc_admdvs: str = "") -> dict[str, Any]:
        return {"infno": infno, "msgid": msgid or self.new_msgid(),
                "mdtrtarea_admvs": self.mdtrtarea_admvs, "insuplc_admdvs": insuplc_admdvs,
                "recer_sys_code": "SSCARD", "dev_no": "", "dev_safe_info": "", "cainfo": "",
                "signtype": "", "infver": "V1.0", "opter_type": self.opter_type,
                "opter": self.opter, "opter_name": self.opter_name,
                "inf_time": datetime.now().strftime("%Y-%m-%d %H:%M:%S"),
                "fixmedins_code": self.fixmedins_code, "fixmedins_name": self.fixmedins_name,
                "sign_no": self.sign_no, "input": input}

    def _send(self, env: dict[str, Any]) -> dict[str, Any]:
        return self.transport.send(env, self.timeout)

    def flush_reversals(self) -> None:
        """Deliver pending reversals; raise :class:`Unavailable` if the host is still away."""
        while self.pending_reversals:
            omsgid, oinfno, psn_no = self.pending_reversals[0]
            env = self.envelope("2601", {"data": {"psn_no": psn_no, "omsgid": omsgid,
                                                  "oinfno": oinfno}},
                                msgid=self._reversal_msgid(omsgid))
            answer = self._send(env)  # raises Unavailable: the reversal stays pending
            self.pending_reversals.pop(0)
            self._reversal_ids.pop(omsgid, None)
            if answer.get("infcode") != 0:
                raise _error(answer)

    def _reversal_msgid(self, omsgid: str) -> str:
        # minted once from this terminal's own sequence and kept until delivered, so every
        # attempt at the reversal is the same message (idempotent)
        with self._lock:
            if omsgid not in self._reversal_ids:
                self._reversal_ids[omsgid] = self.new_msgid()
            return self._reversal_ids[omsgid]

    def call_envelope(self, infno: str, input: dict[str, Any],
                      msgid: str | None = None) -> dict[str, Any]:
        """Send one request and return the whole answer envelope (infcode 0 or -1)."""
        with self._call_lock:
            answer = self._call_envelope(infno, input, msgid)
            if msgid is None and answer.get("err_code") == "msgid_conflict":
                # another terminal of the institution used the same msgid: a new one
                answer = self._call_envelope(infno, input, None)
                if answer.get("err_code") == "msgid_conflict":
                    answer = {**answer, "err_msg": self.terminal_clash()}
            return answer

    def terminal_clash(self) -> str:
        """Why a msgid this terminal has just minted is taken at the host, and what to do:
        another terminal of the institution mints from the same terminal id."""
        return (f"another terminal is using terminal id {self._msgids.slot:02d} at this "
                "institution: give each terminal its own --terminal-id")

    def _call_envelope(self, infno: str, input: dict[str, Any],
                       msgid: str | None) -> dict[str, Any]:
        self.flush_reversals()
        env = self.envelope(infno, input, msgid)
        attempts = 1 if infno in REVERSIBLE else 1 + self.retries
        for attempt in range(attempts):
            try:
                return self._send(env)
            except Unavailable as exc:
                if infno in REVERSIBLE:
                    self.pending_reversals.append((env["msgid"], infno, _find_psn(input)))
                    try:
                        self.flush_reversals()
                    except Unavailable:
                        raise Unavailable(
                            f"{exc}; {infno} {env['msgid']} may or may not have been applied: "
                            "its reversal (2601) is pending and will be sent before the next "
                            "request") from None
                    raise Unavailable(f"{exc}; {infno} {env['msgid']} was reversed (2601): "
                                      "nothing was charged, try again") from None
                if attempt == attempts - 1:
                    raise
        raise AssertionError("unreachable")

    def call(self, infno: str, input: dict[str, Any], msgid: str | None = None) -> dict[str, Any]:
        """Send one request; return its ``output`` or raise the host's refusal."""
        answer = self.call_envelope(infno, input, msgid)
        if answer.get("infcode") != 0:
            raise _error(answer)
        out: dict[str, Any] = answer.get("output", {})
        return out

    # -- 9001 / 9002 -----------------------------------------------------------------------

    def sign_in(self, mac: str = "", ip: str = "") -> str:
        out = self.call("9001", {"signIn": {"opter_no": self.opter, "mac": mac, "ip": ip}})
        self.sign_no = str(out["signinoutb"]["sign_no"])
        return self.sign_no

    # -- lookups ---------------------------------------------------------------------------

    def person_by_card(self, card_no: str, card_sn: str) -> dict[str, Any]:
        """1101 with the card: ``baseinfo``, ``insuinfo`` (balance), ``cardinfo``."""
        return self.call("1101", {"data": {"mdtrt_cert_type": "03", "mdtrt_cert_no": card_no,
                                           "card_sn": card_sn}})

    def person_by_certno(self, certno: str) -> dict[str, Any]:
        return self.call("1101", {"data": {"mdtrt_cert_type": "02", "mdtrt_cert_no": certno}})

    def balance(self, card_no: str, card_sn: str) -> dict[str, Any]:
        """8108: ``balc`` (medical account) and ``bank_balc``."""
        return self.call("8108", {"data": {"mdtrt_cert_type": "03", "mdtrt_cert_no": card_no,
                                           "card_sn": card_sn}})

    def cumulative(self, psn_no: str, cum_ym: str) -> dict[str, Any]:
        return self.call("5206", {"data": {"psn_no": psn_no, "cum_ym": cum_ym}})

    # -- pharmacy --------------------------------------------------------------------------

    @staticmethod
    def druginfo(*, psn_no: str, lines: list[dict[str, Any]], card_no: str = "",
                 card_sn: str = "", certno: str = "", old_card_no: str = "",
                 insutype: str = "310", med_type: str = "41", use_account: bool = True,
                 cash_src: str = "cash", bank_auth: dict[str, Any] | None = None
                 ) -> dict[str, Any]:
        """Build the 2101/2102 input from fee lines (see :func:`drug_line`)."""
        if card_no:
            cert = ("03", card_no)
        elif old_card_no:
            cert = ("04", old_card_no)
        else:
            cert = ("02", certno)
        total = sum(int(ln["det_item_fee_sumamt"].replace(".", "")) for ln in lines)
        info: dict[str, Any] = {
            "psn_no": psn_no, "mdtrt_cert_type": cert[0], "mdtrt_cert_no": cert[1],
            "card_sn": card_sn, "med_type": med_type, "medfee_sumamt": yuan(total),
            "insutype": insutype, "acct_used_flag": "1" if use_account else "0",
            "psn_setlway": "01", "cash_src": cash_src}
        if bank_auth is not None:
            info["bank_auth"] = bank_auth
        return {"druginfo": info, "drugdetail": lines}

    def trial(self, **kw: Any) -> dict[str, Any]:
        """2101: the split without settling (``setlinfo``, ``setldetail``, ``detlcutinfo``)."""
        return self.call("2101", self.druginfo(**kw))

    def settle(self, msgid: str | None = None, **kw: Any) -> dict[str, Any]:
        """2102: settle; ``setlinfo`` has ``setl_id``, ``mdtrt_id``, ``acct_pay``,
        ``psn_cash_pay``, ``balc`` (and ``arpc`` when the bank account paid)."""
        return self.call("2102", self.druginfo(**kw), msgid)

    def cancel(self, setl_id: str, mdtrt_id: str, psn_no: str) -> dict[str, Any]:
        """2103: cancel a pharmacy settlement (an opposite entry)."""
        return self.call("2103", {"data": {"setl_id": setl_id, "mdtrt_id": mdtrt_id,
                                           "psn_no": psn_no}})

    def reverse(self, omsgid: str, oinfno: str, psn_no: str) -> dict[str, Any]:
        """2601: reverse an earlier message (``rvs_result``)."""
        return self.call("2601", {"data": {"psn_no": psn_no, "omsgid": omsgid,
                                           "oinfno": oinfno}})

    # -- inpatient -------------------------------------------------------------------------

    def admit(self, *, psn_no: str, card_no: str = "", card_sn: str = "", certno: str = "",
              insutype: str = "310", med_type: str = "21", begntime: str = "",
              **extra: Any) -> dict[str, Any]:
        """2401 → ``result.mdtrt_id``."""
        cert = ("03", card_no) if card_no else ("02", certno)
        return self.call("2401", {"mdtrtinfo": {
            "psn_no": psn_no, "mdtrt_cert_type": cert[0], "mdtrt_cert_no": cert[1],
            "card_sn": card_sn, "insutype": insutype, "med_type": med_type,
            "begntime": begntime or datetime.now().strftime("%Y-%m-%d %H:%M:%S"), **extra}})

    def upload_fees(self, mdtrt_id: str, psn_no: str,
                    lines: list[dict[str, Any]]) -> dict[str, Any]:
        """2301: upload fee detail lines (see :func:`drug_line`)."""
        return self.call("2301", {"feedetail": [{**ln, "mdtrt_id": mdtrt_id, "psn_no": psn_no}
                                                for ln in lines]})

    def cancel_fees(self, mdtrt_id: str, psn_no: str, feedetl_sn: str = "0000") -> dict[str, Any]:
        """2302: cancel one uploaded line, or all (``"0000"``)."""
        return self.call("2302", {"data": {"mdtrt_id": mdtrt_id, "psn_no": psn_no,
                                           "feedetl_sn": feedetl_sn}})

    def discharge(self, mdtrt_id: str, psn_no: str, endtime: str = "") -> dict[str, Any]:
        """2402."""
        return self.call("2402", {"dscginfo": {
            "mdtrt_id": mdtrt_id, "psn_no": psn_no,
            "endtime": endtime or datetime.now().strftime("%Y-%m-%d %H:%M:%S")}})

    def cancel_admission(self, mdtrt_id: str, psn_no: str) -> dict[str, Any]:
        """2404."""
        return self.call("2404", {"data": {"mdtrt_id": mdtrt_id, "psn_no": psn_no}})

    def cancel_discharge(self, mdtrt_id: str, psn_no: str) -> dict[str, Any]:
        """2405."""
        return self.call("2405", {"data": {"mdtrt_id": mdtrt_id, "psn_no": psn_no}})

    @staticmethod
    def _inpatient(mdtrt_id: str, psn_no: str, total_fen: int, use_account: bool,
                   cash_src: str, bank_auth: dict[str, Any] | None,
                   card: tuple[str, str] | None) -> dict[str, Any]:
        data: dict[str, Any] = {"mdtrt_id": mdtrt_id, "psn_no": psn_no,
                                "medfee_sumamt": yuan(total_fen),
                                "acct_used_flag": "1" if use_account else "0",
                                "cash_src": cash_src}
        if card is not None:
            data.update({"mdtrt_cert_type": "03", "mdtrt_cert_no": card[0],
                         "card_sn": card[1]})
        if bank_auth is not None:
            data["bank_auth"] = bank_auth
        return {"data": data}

    def inpatient_trial(self, mdtrt_id: str, psn_no: str, total_fen: int, *,
                        use_account: bool = True, cash_src: str = "cash",
                        card: tuple[str, str] | None = None) -> dict[str, Any]:
        """2303: the discharge split without settling."""
        return self.call("2303", self._inpatient(mdtrt_id, psn_no, total_fen, use_account,
                                                 cash_src, None, card))

    def inpatient_settle(self, mdtrt_id: str, psn_no: str, total_fen: int, *,
                         use_account: bool = True, cash_src: str = "cash",
                         bank_auth: dict[str, Any] | None = None,
                         card: tuple[str, str] | None = None) -> dict[str, Any]:
        """2304: discharge settlement (seed U3: account, bank account or cash)."""
        return self.call("2304", self._inpatient(mdtrt_id, psn_no, total_fen, use_account,
                                                 cash_src, bank_auth, card))

    def inpatient_cancel(self, setl_id: str, mdtrt_id: str, psn_no: str) -> dict[str, Any]:
        """2305."""
        return self.call("2305", {"data": {"setl_id": setl_id, "mdtrt_id": mdtrt_id,
                                           "psn_no": psn_no}})

    # -- reconciliation --------------------------------------------------------------------

    def reconcile(self, day: str, *, count: int, total_fen: int, fund_fen: int,
                  acct_fen: int, clr_type: str = "41") -> dict[str, Any]:
        """3201 for one day (``stmtinfo.stmt_rslt`` "0" match, "1" mismatch)."""
        return self.call("3201", {"data": {
            "setl_optins": self.mdtrtarea_admvs, "stmt_begndate": day, "stmt_enddate": day,
            "medfee_sumamt": yuan(total_fen), "fund_pay_sumamt": yuan(fund_fen),
            "acct_pay": yuan(acct_fen), "fixmedins_setl_cnt": count, "clr_type": clr_type}})

    def reconcile_details(self, day: str, details: list[dict[str, Any]]) -> dict[str, Any]:
        """3202: ``details`` = [{setl_id, medfee_sumamt, fund_pay_sumamt, acct_pay,
        refd_setl_flag}] (yuan strings)."""
        return self.call("3202", {"data": {"stmt_begndate": day, "stmt_enddate": day,
                                           "details": details}})

    # -- counter operations ----------------------------------------------------------------

    def issue_card(self, *, certno: str, psn_name: str, gend: str, brdy: str, bank: str,
                   insuplc_admdvs: str = "", insutype: str = "310", psn_type: str = "11",
                   emp_name: str = "", naty: str = "01",
                   generation: str = "3.00") -> dict[str, Any]:
        """8101 → ``cardinfo`` {psn_no, card_no, card_sn, pan, pan_seq, bank, card_stas,
        generation, algorithm, area_code, initial_pin_envelope}."""
        return self.call("8101", {"data": {
            "certno": certno, "psn_name": psn_name, "gend": gend, "brdy": brdy, "bank": bank,
            "insuplc_admdvs": insuplc_admdvs or self.mdtrtarea_admvs, "insutype": insutype,
            "psn_type": psn_type, "emp_name": emp_name, "naty": naty,
            "generation": generation}})

    def activate(self, card_no: str, certno: str, pin_changed: bool = True) -> dict[str, Any]:
        """8102 at the issuing bank's counter (after the card accepted the new PIN)."""
        return self.call("8102", {"data": {"card_no": card_no, "certno": certno,
                                           "pin_changed": pin_changed}})

    def report_loss(self, card_no: str, certno: str, formal: bool = False) -> dict[str, Any]:
        """8103: temporary (lapses after the policy's days) or formal."""
        return self.call("8103", {"data": {"card_no": card_no, "certno": certno,
                                           "loss_type": "2" if formal else "1"}})

    def lift_loss(self, card_no: str, certno: str) -> dict[str, Any]:
        """8104."""
        return self.call("8104", {"data": {"card_no": card_no, "certno": certno}})

    def replace_card(self, card_no: str, certno: str, reason: str, *, fee_src: str = "cash",
                     certificate_no: str = "") -> dict[str, Any]:
        """8105: ``reason`` lost | damaged_by_holder | damaged_not_holder | data_error."""
        return self.call("8105", {"data": {"card_no": card_no, "certno": certno,
                                           "reason": reason, "fee_src": fee_src,
                                           "certificate_no": certificate_no}})

    def record_pin_reset(self, card_no: str, certno: str, op: str = "reset") -> dict[str, Any]:
        """8106: record a PIN unlock/reset done on the card at the bank counter (free)."""
        return self.call("8106", {"data": {"card_no": card_no, "certno": certno, "op": op}})

    def change_holder(self, psn_no: str, certno: str, **changes: Any) -> dict[str, Any]:
        """8107: psn_name, gend, naty, brdy, emp_name, new_certno."""
        return self.call("8107", {"data": {"psn_no": psn_no, "certno": certno, **changes}})

    def credit(self, psn_no: str, amount_fen: int, target: str = "medical", *,
               old_card_no: str = "", card_no: str = "") -> dict[str, Any]:
        """8109: credit the personal account (office), an old card (office) or deposit into
        the bank account (bank counter)."""
        return self.call("8109", {"data": {"psn_no": psn_no, "amount": yuan(amount_fen),
                                           "target": target, "old_card_no": old_card_no,
                                           "card_no": card_no}})

    def register_card(self, *, card_no: str, card_sn: str, pan: str, bank: str,
                      card_stas: str, pan_seq: str = "01", generation: str = "3.00",
                      algorithm: str = "", psn_no: str = "", certno: str = "",
                      psn_name: str = "", gend: str = "", brdy: str = "", naty: str = "01",
                      insutype: str = "310", psn_type: str = "11", insuplc_admdvs: str = "",
                      emp_name: str = "") -> dict[str, Any]:
        """8110: register a card personalised elsewhere under its own numbers, for the
        person ``psn_no`` or the person described (certno, psn_name, gend, brdy …; the C4 ID
        check applies); ``card_stas`` is ``issued`` or ``activated`` (CCB: activated, A3).
        → ``cardinfo`` as for 8101."""
        return self.call("8110", {"data": {
            "psn_no": psn_no, "certno": certno, "psn_name": psn_name, "gend": gend,
            "brdy": brdy, "naty": naty, "insutype": insutype, "psn_type": psn_type,
            "insuplc_admdvs": insuplc_admdvs, "emp_name": emp_name, "card_no": card_no,
            "card_sn": card_sn, "pan": pan, "pan_seq": pan_seq, "bank": bank,
            "generation": generation, "algorithm": algorithm, "card_stas": card_stas}})

    def register_old_card(self, psn_no: str, old_card_no: str,
                          balance_fen: int) -> dict[str, Any]:
        """8203."""
        return self.call("8203", {"data": {"psn_no": psn_no, "old_card_no": old_card_no,
                                           "balance": yuan(balance_fen)}})

    def set_transition(self, open_: bool) -> dict[str, Any]:
        """8202: open or close the old-card transition period."""
        return self.call("8202", {"data": {"transition": "open" if open_ else "closed"}})

    def migrate_batch(self, batch_size: int = 1000) -> dict[str, Any]:
        """8201: migrate one batch of old medical cards."""
        return self.call("8201", {"data": {"batch_size": batch_size}})


def _error(answer: Mapping[str, Any]) -> HostError:
    code = str(answer.get("err_code") or "refused")
    msg = str(answer.get("err_msg") or "the host refused the request")
    cls = _ERRORS.get(code, errors.Refused)
    return cls(msg, code=code)

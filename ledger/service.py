"""The host service: the NHSA-shaped transaction dispatcher (spec/host.md §1–§2).

``HostService.call(request) -> response`` is the in-process API; the HTTP server
(:mod:`ledger.http`) and the terminal client (:mod:`ledger.client`) both go through it.

For every request, in this order:

1. parse the JSON and validate the envelope (:class:`~ledger.schemas.Envelope`);
2. find the transaction code and validate its ``input`` with that code's model;
3. check the institution and the terminal's sign-in (``sign_no`` from 9001);
4. in ONE database transaction: claim the ``msgid`` (a plain insert into ``requests``),
   run the handler, record the answer (``answers``) and commit. If the msgid was already
   claimed, the request had its effect before: a second, read-only transaction returns the
   first answer — or refuses if the content differs or the message was reversed (2601).
   Concurrent duplicates meet at the msgid's primary key: one commits, the other retries
   and takes the duplicate path; a crash before the commit leaves nothing.

A failure at any step answers ``infcode = -1`` with a precise ``err_msg`` and writes
nothing; ``call`` never raises and never leaks a traceback.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson

from ledger import books
from ledger.errors import AuthError, BadRequest, HostError, MsgidConflict, NotFound, Refused
from ledger.policy import Policy, load_policies, policy_from_text
from ledger.registry import OPS, Ctx
from ledger.schemas import Envelope, validate
from ledger.store.base import Claimed, Store, Tx, open_store
from ledger.verify import IdVerifier, default_verifier

log = logging.getLogger("sscard.host")

CST = timezone(timedelta(hours=8), "CST")
"""China Standard Time: the host's business day."""

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_POLICY_DIR = REPO_ROOT / "fixtures" / "policies"


def now_cst() -> datetime:
    return datetime.now(CST)


def _load_handlers() -> None:
    # imported for their registrations
    from ledger import lifecycle, queries, settle  # noqa: F401


TOO_DEEP = ("the request body nests objects and arrays too deep to read: no transaction "
            "code takes such input")


def _no_constant(name: str) -> Any:
    raise json.JSONDecodeError(f"{name} is not a JSON number", name, 0)


def digest(env: Mapping[str, Any]) -> str:
    """The idempotency fingerprint of a request: what it asks, not when or by which session.

    The fingerprint is the SHA-256 of compact, key-sorted UTF-8 JSON written by orjson
    (for strings, integers and booleans, byte for byte what ``json.dumps(sort_keys=True,
    ensure_ascii=False, separators=(",", ":"))`` writes), or by :mod:`json` for what
    orjson cannot encode (integers beyond 64 bits)."""
    core = {k: env.get(k) for k in ("infno", "fixmedins_code", "mdtrtarea_admvs",
                                    "insuplc_admdvs", "input")}
    try:
        raw = orjson.dumps(core, option=orjson.OPT_SORT_KEYS)
    except TypeError:   # orjson.JSONEncodeError
        raw = json.dumps(core, sort_keys=True, ensure_ascii=False,
                         separators=(",", ":")).encode()
    return hashlib.sha256(raw).hexdigest()


class HostService:
    """The host: books, policy, lifecycle behind one ``call`` (spec/host.md).

    ``clock`` returns the host's current time (timezone-aware); ``verifier`` is the
    national ID check of seed rule C4; ``require_sign_in`` makes every code but 9001 need
    an open sign-in (``sign_no``).
    """

    def __init__(self, store: Store, *, clock: Callable[[], datetime] | None = None,
                 verifier: IdVerifier | None = None, require_sign_in: bool = True) -> None:
        _load_handlers()
        self.store = store
        self.clock = clock or now_cst
        self.verifier = verifier or default_verifier()
        self.require_sign_in = require_sign_in
        self._policies: dict[str, Policy] | None = None
        self._institutions: dict[str, dict[str, Any]] | None = None
        self._pooled: dict[str, bool] = {}

    @classmethod
    def open(cls, url: str, **kw: Any) -> HostService:
        """Open the host on a prepared database (``sscard host init``)."""
        store = open_store(url, create=False)
        store.require_schema()
        return cls(store, **kw)

    def close(self) -> None:
        self.store.close()

    # -- configuration held in the database -----------------------------------------------

    @property
    def policies(self) -> dict[str, Policy]:
        if self._policies is None:
            rows = self.store.run(lambda tx: tx.all("SELECT admdvs, body FROM policies"))
            self._policies = {str(a): policy_from_text(str(b)) for a, b in rows}
        return self._policies

    def reload(self) -> None:
        """(Re)read the policies and institutions that ``sscard host init`` stored."""
        self._policies = None
        self._institutions = None
        self._pooled = {}
        _ = self.policies
        self._load_institutions()

    def pooled_somewhere(self, med_type: str) -> bool:
        """Whether some area's policy gives visit type ``med_type`` a pooled-fund share."""
        pooled = self._pooled.get(med_type)
        if pooled is None:
            pooled = any(v.pooling for pol in self.policies.values()
                         if (v := pol.visits.get(med_type)) is not None)
            self._pooled[med_type] = pooled
        return pooled

    def policy(self, admdvs: str) -> Policy:
        try:
            return self.policies[admdvs]
        except KeyError:
            raise Refused(f"no settlement policy for area {admdvs} at this host; "
                          f"known areas: {', '.join(sorted(self.policies))}") from None

    def _load_institutions(self) -> None:
        if self._institutions is None:
            rows = self.store.run(lambda tx: tx.all(
                "SELECT fixmedins_code, name, kind, admdvs, designated, bank FROM institutions"))
            self._institutions = {
                str(r[0]): {"code": r[0], "name": r[1], "kind": r[2], "admdvs": r[3],
                            "designated": bool(r[4]), "bank": r[5]} for r in rows}

    def institution(self, code: str) -> dict[str, Any]:
        if self._institutions is None:
            self._load_institutions()
        assert self._institutions is not None
        inst = self._institutions.get(code)
        if inst is None:
            raise Refused(f"institution {code} is not registered at this host: register it in "
                          "the area policy and run `sscard host init` again")
        return inst

    # -- the dispatcher -----------------------------------------------------------------

    def call(self, request: Mapping[str, Any] | bytes | str, *,
             paasid: str | None = None) -> dict[str, Any]:
        """Answer one request envelope; never raises (spec/host.md §1)."""
        now = self.clock()
        msgid = ""
        try:
            if self._policies is None or self._institutions is None:
                self.reload()
            if isinstance(request, bytes | str):
                try:
                    request = json.loads(request, parse_constant=_no_constant)
                except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                    raise BadRequest(f"the request body is not valid JSON: {exc}") from None
                except RecursionError:
                    raise BadRequest(TOO_DEEP) from None
            if not isinstance(request, Mapping):
                raise BadRequest("the request body must be a JSON object (the envelope)")
            if isinstance(request.get("msgid"), str):
                msgid = request["msgid"]
            env: Envelope = validate(Envelope, request, "request")
            op = OPS.get(env.infno)
            if op is None:
                raise BadRequest(f"unknown infno {env.infno}: this host implements "
                                 f"{', '.join(sorted(OPS))}")
            if env.msgid[:12] != env.fixmedins_code:
                raise BadRequest(f"msgid {env.msgid} must start with the institution code "
                                 f"{env.fixmedins_code} (spec/host.md §1)")
            if paasid is not None and not paasid.startswith(env.fixmedins_code + "-"):
                raise AuthError(f"terminal {paasid} may not send requests for institution "
                                f"{env.fixmedins_code}")
            data = validate(op.model, env.input, "input")
            inst = self.institution(env.fixmedins_code)
            if inst["admdvs"] != env.mdtrtarea_admvs:
                raise BadRequest(f"mdtrtarea_admvs {env.mdtrtarea_admvs} is not the area of "
                                 f"institution {env.fixmedins_code} ({inst['admdvs']})")
            ctx = Ctx(service=self, infno=env.infno, msgid=env.msgid,
                      fixmedins_code=env.fixmedins_code, mdtrtarea_admvs=env.mdtrtarea_admvs,
                      opter=env.opter, now=now, inst=inst, paasid=paasid or "inproc",
                      opter_type=env.opter_type)
            fp = digest(request)

            def missing(tx: Tx) -> None:
                # the claim inserted no row: the sign-in is missing, closed or not this terminal
                self._check_sign_in(env, paasid, self._sign_row(tx, env))
                raise AuthError(f"sign_no {env.sign_no} is not valid for this terminal")

            def work(tx: Tx) -> tuple[dict[str, Any], str]:
                need_sign = env.infno != "9001" and self.require_sign_in
                if not op.writes:
                    if need_sign:
                        self._check_sign_in(env, paasid, self._sign_row(tx, env))
                    return op.fn(ctx, tx, data), ""
                # Claim the msgid first with a plain insert (guarded by the sign-in in the
                # same statement): no read of a missing key and no ON CONFLICT probe, so
                # concurrent requests take no predicate lock on the msgid index under
                # SERIALIZABLE. A duplicate is answered by a second, read-only transaction.
                # The claim may travel with the handler's first read (one round trip); it is
                # settled before that read's answer is used.
                claim = ("INSERT INTO requests (msgid, infno, digest, status, fixmedins_code, "
                         "created_at) SELECT ?, ?, ?, 'done', ?, ?")
                args: tuple[Any, ...] = (env.msgid, env.infno, fp, env.fixmedins_code,
                                         ctx.iso)
                if need_sign:
                    claim += (" WHERE EXISTS (SELECT 1 FROM signins WHERE sign_no = ? AND "
                              "fixmedins_code = ? AND signed_out_at = '' AND "
                              "(? = '' OR paasid = ?))")
                    args += (env.sign_no, env.fixmedins_code, paasid or "", paasid or "")
                tx.claim(claim, args, missing)
                try:
                    output = op.fn(ctx, tx, data)
                except HostError:
                    # a refusal raised before the claim went out: the duplicate or the
                    # sign-in is still answered first, as if the claim had run first
                    tx.settle_claim()
                    raise
                answer = self._ok(env.msgid, env.inf_time, now, output, ts=ctx.ts)
                tx.defer("INSERT INTO answers (msgid, response) VALUES (?, ?)",
                         (env.msgid, orjson.dumps(answer).decode()))
                return answer, "fresh"

            try:
                result, how = self.store.run(work)
            except Claimed:
                def replay(tx: Tx) -> dict[str, Any]:
                    row = tx.one("SELECT r.digest, r.status, a.response, r.infno FROM requests r "
                                 "LEFT JOIN answers a ON a.msgid = r.msgid WHERE r.msgid = ?",
                                 (env.msgid,))
                    assert row is not None
                    return self._replay(tx, env, fp, row)
                result, how = self.store.run(replay), "duplicate"
            if how == "duplicate":
                return result
            if how == "":
                return self._ok(env.msgid, env.inf_time, now, result)
            return result
        except HostError as exc:
            return self._fail(msgid, now, exc.message, exc.code)
        except RecursionError:   # nested past what the parser or the validation can walk
            return self._fail(msgid, now, TOO_DEEP, BadRequest.code)
        except Exception:
            ref = uuid.uuid4().hex[:12]
            log.exception("internal error %s answering msgid %s", ref, msgid)
            return self._fail(msgid, now, f"internal error (reference {ref}): nothing was "
                              "written; send the same request again or report the reference",
                              "internal")

    @staticmethod
    def _sign_row(tx: Tx, env: Envelope) -> tuple[Any, ...] | None:
        return tx.one("SELECT fixmedins_code, signed_out_at, paasid FROM signins "
                      "WHERE sign_no = ?", (env.sign_no,))

    @staticmethod
    def _check_sign_in(env: Envelope, paasid: str | None, row: tuple[Any, ...] | None) -> None:
        if not env.sign_no:
            raise AuthError("sign_no is missing: the terminal must sign in (9001) first")
        if row is None:
            raise AuthError(f"sign_no {env.sign_no} is unknown: sign in (9001) again")
        if row[0] != env.fixmedins_code:
            raise AuthError(f"sign_no {env.sign_no} belongs to another institution")
        if row[1]:
            raise AuthError(f"sign_no {env.sign_no} was signed out at {row[1]}: "
                            "sign in (9001) again")
        if paasid is not None and row[2] != paasid:
            raise AuthError(f"sign_no {env.sign_no} belongs to another terminal")

    def _replay(self, tx: Tx, env: Envelope, fp: str,
                row: tuple[Any, ...]) -> dict[str, Any]:
        stored_digest, status, response, infno = row
        if status == "reversed_unseen":
            raise Refused(f"msgid {env.msgid} was reversed (2601) before it arrived: it was "
                          "not applied; send a new request with a new msgid",
                          code="reversed")
        if stored_digest != fp:
            raise MsgidConflict(f"msgid {env.msgid} was already used for a different "
                                f"{infno} request: use a new msgid for a new request")
        rv = tx.one("SELECT msgid FROM reversals WHERE omsgid = ?", (env.msgid,))
        if rv is not None:
            raise Refused(f"msgid {env.msgid} was applied and then reversed by 2601 message "
                          f"{rv[0]}: its effect is undone; send a new request with a new msgid",
                          code="reversed")
        answer: dict[str, Any] = json.loads(response)
        if infno == "9001":
            # a sign-in already signed out cannot be the answer the terminal still waits
            # for: the msgid was reused by a new sign-in (the client then takes a new one)
            sign_no = str(answer.get("output", {}).get("signinoutb", {}).get("sign_no", ""))
            out = tx.one("SELECT signed_out_at FROM signins WHERE sign_no = ?", (sign_no,))
            if out is not None and out[0]:
                raise MsgidConflict(f"msgid {env.msgid} was already used by sign-in "
                                    f"{sign_no}, signed out at {out[0]}: use a new msgid "
                                    "for a new sign-in")
        return answer

    @staticmethod
    def _ok(msgid: str, inf_time: str, now: datetime, output: dict[str, Any], *,
            ts: str | None = None) -> dict[str, Any]:
        return {"infcode": 0, "inf_refmsgid": msgid, "refmsg_time": inf_time,
                "respond_time": ts or now.strftime("%Y-%m-%d %H:%M:%S"), "err_msg": "",
                "err_code": "", "warn_msg": "", "output": output}

    @staticmethod
    def _fail(msgid: str, now: datetime, message: str, code: str) -> dict[str, Any]:
        t = now.strftime("%Y-%m-%d %H:%M:%S")
        return {"infcode": -1, "inf_refmsgid": msgid, "refmsg_time": t, "respond_time": t,
                "err_msg": message, "err_code": code, "warn_msg": "", "output": {}}


# -- set-up ---------------------------------------------------------------------------------

def initialize(store: Store, policy_dir: str | Path | None = None) -> dict[str, Any]:
    """``sscard host init``: run the migrations, load the area policies and institutions,
    open the area and institution accounts, all in one transaction (a failure half way
    leaves the database as it was). Safe to run again (it updates the policies)."""
    policies = load_policies(policy_dir or DEFAULT_POLICY_DIR)   # first: a bad one changes nothing

    def load(tx: Tx) -> None:
        for pol in policies.values():
            tx.execute("INSERT INTO policies (admdvs, version, body) VALUES (?, ?, ?) "
                       "ON CONFLICT (admdvs) DO UPDATE SET version = excluded.version, "
                       "body = excluded.body", (pol.admdvs, pol.version, pol.raw))
            for acct in (books.fund(pol.admdvs), books.fee(pol.admdvs),
                         books.contrib(pol.admdvs)):
                books.open_account(tx, acct, pol.admdvs)
            for b in pol.banks:
                books.open_account(tx, books.deposits(b), b)
            for inst in pol.institutions:
                tx.execute(
                    "INSERT INTO institutions (fixmedins_code, name, kind, admdvs, designated, "
                    "bank) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (fixmedins_code) DO UPDATE SET "
                    "name = excluded.name, kind = excluded.kind, admdvs = excluded.admdvs, "
                    "designated = excluded.designated, bank = excluded.bank",
                    (inst.code, inst.name, inst.kind, pol.admdvs, int(inst.designated),
                     inst.bank))
                books.open_account(tx, books.clearing(inst.code), inst.code)
                books.open_account(tx, books.cash(inst.code), inst.code)
        books.open_account(tx, books.EXTERNAL_CASH, "-")
        tx.execute("INSERT INTO settings (key, value) VALUES ('old_card_transition', 'open') "
                   "ON CONFLICT (key) DO NOTHING")

    applied = store.migrate(then=load)     # one transaction: a failure leaves nothing
    return {"migrations": applied, "areas": sorted(policies),
            "institutions": sum(len(p.institutions) for p in policies.values())}


def require(cond: bool, exc: HostError) -> None:
    """Raise ``exc`` unless ``cond``."""
    if not cond:
        raise exc


__all__ = ["CST", "HostService", "NotFound", "initialize", "now_cst"]

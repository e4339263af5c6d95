"""Fuzzing the host's JSON interface (spec/host.md §1): the HTTP server and the in-process
service answer random and mutated envelopes with HTTP 200 and ``infcode -1`` plus a message
— never a 500, never an internal error, never a traceback — and a refused request writes
nothing (row counts and balances are compared before and after)."""

from __future__ import annotations

import copy
import itertools
import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ledger.auth import TEST_SECRET, sign_headers, terminal_key
from ledger.client import HostClient, drug_line
from ledger.http import PATH, create_app
from ledger.populate import holder, populate
from ledger.service import HostService, initialize
from ledger.store import open_store

INST = "P37080000001"
OFFICE = "S37080000001"
TABLES = ("entries", "postings", "requests", "settlements", "card_events", "accounts",
          "persons", "cards", "reversals")


class Host:
    def __init__(self, root: Path) -> None:
        url = f"sqlite:///{root / 'host.db'}"
        store = open_store(url)
        initialize(store)
        populate(store, 3)
        store.close()
        self.service = HostService.open(url)
        self.http = TestClient(create_app(self.service, secret=TEST_SECRET,
                                          require_signature=False))
        self.signed = TestClient(create_app(self.service, secret=TEST_SECRET))
        self._seq = itertools.count(1)
        self.sign_no: dict[str, str] = {}
        for inst in (INST, OFFICE):
            self.sign_no[inst] = self.service.call(self._env("9001", {"signIn": {
                "opter_no": "0001", "mac": "", "ip": ""}}, inst))["output"]["signinoutb"][
                "sign_no"]

    def msgid(self, inst: str = INST) -> str:
        n = next(self._seq) % 10000
        return f"{inst}{datetime.now():%Y%m%d%H%M%S}{n:04d}"

    def _env(self, infno: str, input: dict[str, Any], inst: str = INST) -> dict[str, Any]:
        c = HostClient.__new__(HostClient)
        c.fixmedins_code, c.fixmedins_name, c.mdtrtarea_admvs = inst, "机构", "370800"
        c.opter, c.opter_name, c.opter_type = "0001", "收款员", "1"
        c.sign_no = self.sign_no.get(inst, "") if hasattr(self, "sign_no") else ""
        return c.envelope(infno, input, msgid=self.msgid(inst))

    def base(self, kind: str) -> dict[str, Any]:
        h = holder(0, "370800")
        if kind == "2102":
            lines = [drug_line("1", "XJ01CAA040A001010101445", 2, 1250)]
            inp = HostClient.druginfo(psn_no=str(h["psn_no"]), lines=lines,
                                      card_no=str(h["card_no"]), card_sn=str(h["card_sn"]),
                                      insutype=str(h["insutype"]))
        elif kind == "2601":
            inp = {"data": {"psn_no": h["psn_no"], "omsgid": self.msgid(), "oinfno": "2102"}}
        elif kind == "1101":
            inp = {"data": {"mdtrt_cert_type": "02", "mdtrt_cert_no": h["certno"]}}
        else:
            inp = {"data": {"psn_no": h["psn_no"], "amount": "12.34", "target": "medical"}}
            return self._env(kind, inp, OFFICE)
        return self._env(kind, inp)

    def counts(self) -> tuple[Any, ...]:
        def work(tx: Any) -> tuple[Any, ...]:
            rows = [tx.one(f"SELECT COUNT(*) FROM {t}")[0] for t in TABLES]
            rows.append(tx.one("SELECT COALESCE(SUM(balance), 0) FROM accounts")[0])
            return tuple(rows)
        result: tuple[Any, ...] = self.service.store.run(work)
        return result


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Host]:
    h = Host(tmp_path_factory.mktemp("fuzz-host"))
    yield h
    h.service.close()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**20, 10**20) | st.floats(allow_nan=False)
    | st.text(max_size=40) | st.sampled_from(["", "2102", "-1.00", "1e999", "0.001", "NaN",
                                               "P37080000001", "370800", "\u0000", "𠀀"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                 max_size=3),
    max_leaves=8)


def _paths(obj: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += _paths(v, (*prefix, i))
    return out


@st.composite
def mutations(draw: st.DrawFn) -> tuple[str, list[tuple[str, tuple[Any, ...], Any]]]:
    kind = draw(st.sampled_from(("2102", "2601", "1101", "8109")))
    ops = draw(st.lists(st.tuples(st.sampled_from(("drop", "set", "add")),
                                  st.integers(0, 10_000), json_values), min_size=1, max_size=3))
    return kind, ops


def apply(env: dict[str, Any], ops: list[tuple[str, int, Any]]) -> dict[str, Any]:
    env = copy.deepcopy(env)
    for op, pick, value in ops:
        paths = [p for p in _paths(env) if p != ("msgid",)] or [("input",)]
        path = paths[pick % len(paths)]
        parent: Any = env
        for k in path[:-1]:
            parent = parent[k]
        key = path[-1]
        if op == "drop":
            del parent[key]
        elif op == "set":
            parent[key] = value
        elif isinstance(parent, dict):
            parent[f"x{pick}"] = value
    return env


def _check_refusal(ans: dict[str, Any]) -> None:
    assert ans["infcode"] in (0, -1)
    if ans["infcode"] == -1:
        assert isinstance(ans["err_msg"], str) and ans["err_msg"]
        assert ans.get("err_code") != "internal", ans["err_msg"]
        assert "Traceback" not in ans["err_msg"]


@given(mutations())
@settings(max_examples=250, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
def test_mutated_envelopes_over_http(host: Host, mutation: tuple[str, Any]) -> None:
    kind, ops = mutation
    env = apply(host.base(kind), ops)
    before = host.counts()
    r = host.http.post(PATH, content=json.dumps(env, ensure_ascii=False).encode(),
                       headers={"content-type": "application/json"})
    assert r.status_code == 200, r.text
    ans = r.json()
    _check_refusal(ans)
    if ans["infcode"] == -1:
        assert host.counts() == before, f"refused {kind} wrote something: {ans['err_msg']}"


@given(st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@example(b"")
@example(b"[]")
@example(b'{"infno": 2102}')
@example(b'{"infno": "2102", "msgid": null, "input": []}')
@example(b'{"a": ' * 400 + b"1" + b"}" * 400)       # deeply nested
@example(b'{"infno": "2102", "input": {"druginfo": {"medfee_sumamt": 1e999}}}')
@example('{"infno": "\ud800"}'.encode("utf-8", "surrogatepass"))
def test_random_bodies(host: Host, body: bytes) -> None:
    before = host.counts()
    for client in (host.http, host.signed):
        r = client.post(PATH, content=body, headers={"content-type": "application/json"})
        assert r.status_code == 200, r.text
        ans = r.json()
        assert ans["infcode"] == -1
        _check_refusal(ans)
    _check_refusal(host.service.call(body))
    assert host.counts() == before


def test_signed_request_with_a_tampered_body_writes_nothing(host: Host) -> None:
    env = host.base("2102")
    body = json.dumps(env).encode()
    paasid = f"{INST}-01"
    headers = sign_headers(terminal_key(TEST_SECRET, paasid), paasid, body)
    before = host.counts()
    r = host.signed.post(PATH, content=body.replace(b"25.00", b"2.50"),
                         headers={"content-type": "application/json", **headers})
    assert r.status_code == 200 and r.json()["infcode"] == -1
    assert host.counts() == before

"""The dispatcher: envelope validation, precise refusals that write nothing, idempotency,
sign-in (spec/host.md §1, §4)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.service import HostService, digest
from tests.ledger.helpers import (
    AMOXICILLIN,
    OFFICE,
    PHARMACY,
    World,
    balances,
    count_rows,
    envelope,
    terminal,
    verify,
)


@pytest.fixture
def world(host: HostService) -> World:
    return World(host)


def _settle_input(w: World, h: Any, amount_items: int = 2) -> dict[str, Any]:
    return w.pharmacy.druginfo(psn_no=h.psn_no, card_no=h.card_no, card_sn=h.card_sn,
                               lines=w.lines((AMOXICILLIN, amount_items, 1250)))


BAD_ENVELOPES = [
    (b"{not json", "not valid JSON"),
    (b"[1, 2]", "must be a JSON object"),
    (b'{"infno": "2102", "input": {"x": NaN}}', "NaN is not a JSON number"),
    ({"infno": "2102"}, "request.msgid is missing"),
]


@pytest.mark.parametrize("body, message", BAD_ENVELOPES)
def test_malformed_requests(world: World, body: Any, message: str) -> None:
    before = count_rows(world.host)
    r = world.host.call(body)
    assert r["infcode"] == -1 and message in r["err_msg"]
    assert count_rows(world.host) == before


def test_precise_refusals_write_nothing(world: World) -> None:
    host = world.host
    h = world.person()
    sign = world.pharmacy.sign_no
    good = _settle_input(world, h)
    cases: list[tuple[str, Any, str]] = [
        ("9999", good, "unknown infno 9999"),
        ("2102", {"druginfo": {**good["druginfo"], "insutype": 310},
                  "drugdetail": good["drugdetail"]},
         "input.druginfo.insutype: Input should be a valid string (got 310)"),
        ("2102", {"drugdetail": good["drugdetail"]}, "input.druginfo is missing"),
        ("2102", {**good, "druginfo": {**good["druginfo"], "medfee_sumamt": "1.234"}},
         "medfee_sumamt: expected yuan with at most 2 decimals"),
        ("2102", {**good, "druginfo": {**good["druginfo"], "medfee_sumamt": "99.00"}},
         "medfee_sumamt 99.00 is not the sum of the fee lines 25.00"),
        ("2102", {**good, "druginfo": {**good["druginfo"], "psn_no": "nobody"}},
         "psn_no nobody is not the holder"),
        ("2102", {**good, "druginfo": {**good["druginfo"], "mdtrt_cert_no": "X00000019"}},
         "card X00000019 is unknown"),
        ("2102", {**good, "druginfo": {**good["druginfo"], "mdtrt_cert_no": "X00000018"}},
         "not a valid social security card number"),
        ("2102", {**good, "druginfo": {**good["druginfo"], "card_sn": "0" * 32}},
         "card identification code does not match"),
        ("2103", {"data": {"setl_id": "S1", "mdtrt_id": "M1", "psn_no": h.psn_no}},
         "settlement S1 does not exist"),
        ("1101", {"data": {"mdtrt_cert_type": "02", "mdtrt_cert_no": "11010519491231002X"}},
         "no insured person with ID number 11010519491231002X"),
    ]
    for infno, inp, message in cases:
        before = count_rows(host), balances(host)
        r = host.call(envelope(PHARMACY, infno, inp, sign_no=sign))
        assert r["infcode"] == -1, (infno, r)
        assert message in r["err_msg"], (message, r["err_msg"])
        assert r["output"] == {}
        assert (count_rows(host), balances(host)) == before
    bad = envelope(PHARMACY, "2102", good, sign_no=sign)
    bad["msgid"] = "S37080000001" + bad["msgid"][12:]
    assert "must start with the institution code" in host.call(bad)["err_msg"]
    bad = envelope(PHARMACY, "2102", good, sign_no=sign)
    bad["mdtrtarea_admvs"] = "371100"
    assert "is not the area of institution" in host.call(bad)["err_msg"]


def test_same_msgid_twice_one_effect_first_answer(world: World) -> None:
    host = world.host
    h = world.person()
    env = envelope(PHARMACY, "2102", _settle_input(world, h), sign_no=world.pharmacy.sign_no)
    first = host.call(env)
    assert first["infcode"] == 0
    again = host.call(json.dumps(env).encode())
    assert again == first
    assert balances(host)[f"medical:{h.psn_no}"] == 50_000 - 2500
    other = dict(env, input=_settle_input(world, h, 3))
    r = host.call(other)
    assert r["infcode"] == -1 and r["err_code"] == "msgid_conflict"
    assert "already used for a different 2102 request" in r["err_msg"]
    assert balances(host)[f"medical:{h.psn_no}"] == 50_000 - 2500
    assert verify(host) == []


def test_sign_in_is_required_and_sign_out_ends_it(world: World) -> None:
    host = world.host
    h = world.person()
    inp = {"data": {"mdtrt_cert_type": "03", "mdtrt_cert_no": h.card_no, "card_sn": h.card_sn}}
    r = host.call(envelope(PHARMACY, "1101", inp))
    assert r["infcode"] == -1 and "must sign in (9001) first" in r["err_msg"]
    r = host.call(envelope(PHARMACY, "1101", inp, sign_no="SNbogus"))
    assert "sign_no SNbogus is unknown" in r["err_msg"]
    r = host.call(envelope(PHARMACY, "1101", inp, sign_no=world.office.sign_no))
    assert "belongs to another institution" in r["err_msg"]
    t = terminal(host, PHARMACY)
    assert host.call(envelope(PHARMACY, "1101", inp, sign_no=t.sign_no))["infcode"] == 0
    old = t.sign_no
    t.close()
    r = host.call(envelope(PHARMACY, "1101", inp, sign_no=old))
    assert r["infcode"] == -1 and "was signed out" in r["err_msg"]


def test_unknown_institution(world: World) -> None:
    r = world.host.call(envelope("P37089999999", "9001", {"signIn": {"opter_no": "1"}}))
    assert r["infcode"] == -1 and "not registered" in r["err_msg"]


def test_internal_errors_never_escape(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    from ledger import registry

    def boom(*a: Any) -> dict[str, Any]:
        raise ZeroDivisionError("x")
    op = registry.OPS["5206"]
    monkeypatch.setitem(registry.OPS, "5206", registry.Op("5206", op.name, op.model, boom,
                                                          False, False))
    r = world.host.call(envelope(OFFICE, "5206", {"data": {"psn_no": "x", "cum_ym": "202611"}},
                                 sign_no=world.office.sign_no))
    assert r["infcode"] == -1 and r["err_msg"].startswith("internal error (reference")
    assert "Traceback" not in r["err_msg"]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**63, 2**64 - 1) | st.text(),
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(), kids, max_size=4),
    max_leaves=12)


@given(st.dictionaries(st.sampled_from(["infno", "fixmedins_code", "mdtrtarea_admvs",
                                         "insuplc_admdvs", "input", "msgid", "inf_time"]),
                       json_values))
def test_digest_is_the_sorted_compact_json_of_what_is_asked(env: dict[str, Any]) -> None:
    core = {k: env.get(k) for k in ("infno", "fixmedins_code", "mdtrtarea_admvs",
                                    "insuplc_admdvs", "input")}
    canonical = json.dumps(core, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    assert digest(env) == hashlib.sha256(canonical.encode()).hexdigest()


def test_digest_of_integers_beyond_64_bits() -> None:
    env = {"infno": "2102", "input": {"x": 10**30}}
    assert digest(env) != digest({"infno": "2102", "input": {"x": 10**30 + 1}})

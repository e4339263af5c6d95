"""The settlement's saved round trips keep their meaning, on both back ends: the
year-to-date totals read together with the card equal the separate read, and the msgid
claim sent together with the first read still detects a duplicate, a missing sign-in and
an overdraft (spec/host.md §1, §3–§4)."""

from __future__ import annotations

import pytest

from ledger.errors import Refused
from ledger.holders import resolve
from ledger.registry import Ctx
from ledger.service import HostService
from ledger.settle import year_to_date
from ledger.store.base import Tx
from tests.ledger.helpers import (
    AMOXICILLIN,
    APPENDIX,
    BED,
    HOSPITAL,
    PHARMACY,
    World,
    balances,
    count_rows,
    envelope,
    verify,
)


@pytest.fixture
def world(host: HostService) -> World:
    return World(host)


def _ctx(host: HostService) -> Ctx:
    return Ctx(service=host, infno="1101", msgid=HOSPITAL + "20261128100000" + "9999",
               fixmedins_code=HOSPITAL, mdtrtarea_admvs="370800", opter="0001",
               now=host.clock(), inst=host.institution(HOSPITAL))


def test_year_to_date_read_with_the_card_equals_the_separate_read(world: World) -> None:
    host = world.host
    h = world.person(medical_fen=20_000, insutype="310")
    hos = world.hospital
    mdtrt_id = hos.admit(psn_no=h.psn_no, card_no=h.card_no, card_sn=h.card_sn,
                         begntime="2026-11-20 09:00:00")["result"]["mdtrt_id"]
    lines = world.lines((BED, 8, 3500), (APPENDIX, 1, 120_000))
    hos.upload_fees(mdtrt_id, h.psn_no, lines)
    hos.discharge(mdtrt_id, h.psn_no, "2026-11-28 09:00:00")
    info = hos.inpatient_settle(mdtrt_id, h.psn_no, 8 * 3500 + 120_000)["setlinfo"]
    year = host.clock().year

    def both(tx: Tx) -> tuple[tuple[int, int, int] | None, tuple[int, int], tuple[int, int]]:
        payer = resolve(_ctx(host), tx, "03", h.card_no, h.card_sn, h.psn_no, payment=False,
                        ytd_year=year)
        assert resolve(_ctx(host), tx, "03", h.card_no, h.card_sn, h.psn_no,
                       payment=False).ytd is None
        return (payer.ytd, year_to_date(tx, h.psn_no, year, "310"),
                year_to_date(tx, h.psn_no, year - 1, "310"))

    ytd, separate, last_year = host.store.run(both)
    assert ytd is not None and ytd[0] == year
    assert ytd[1:] == separate
    assert separate == (80_000, int(info["hifp_pay"].replace(".", "")))
    assert last_year == (0, 0)
    # once cancelled, the settlement no longer counts
    hos.inpatient_cancel(info["setl_id"], mdtrt_id, h.psn_no)
    ytd2, separate2, _ = host.store.run(both)
    assert ytd2 is not None and ytd2[1:] == separate2 == (0, 0)


def test_claim_with_the_first_read_keeps_every_refusal(world: World) -> None:
    host = world.host
    h = world.person(medical_fen=1_000)
    ph = world.pharmacy
    line = world.lines((AMOXICILLIN, 1, 1250))
    inp = {"druginfo": {"psn_no": h.psn_no, "mdtrt_cert_type": "03",
                        "mdtrt_cert_no": h.card_no, "card_sn": h.card_sn, "med_type": "41",
                        "medfee_sumamt": "12.50", "insutype": "310", "acct_used_flag": "1",
                        "cash_src": "cash"}, "drugdetail": line}
    before = count_rows(host)
    # no sign-in: refused, nothing written
    bad = host.call(envelope(PHARMACY, "2102", inp, sign_no="999999999"))
    assert bad["infcode"] == -1 and "sign_no" in bad["err_msg"]
    assert count_rows(host) == before
    env = envelope(PHARMACY, "2102", inp, sign_no=ph.sign_no)
    first = host.call(env)
    assert first["infcode"] == 0, first["err_msg"]
    assert first["output"]["setlinfo"]["acct_pay"] == "10.00"
    after = count_rows(host)
    # the same msgid again: the first answer, nothing written
    assert host.call(env) == first
    assert count_rows(host) == after
    # the same msgid with other content: refused
    other = dict(env, input={**inp, "druginfo": {**inp["druginfo"], "acct_used_flag": "0"}})
    conflict = host.call(other)
    assert conflict["infcode"] == -1 and "already used" in conflict["err_msg"]
    assert balances(host)[f"medical:{h.psn_no}"] == 0
    assert verify(host) == []


def test_guarded_overdraft_still_refused_before_commit(world: World) -> None:
    host = world.host
    h = world.person(medical_fen=500, bank_fen=0)
    ph = world.pharmacy
    before = count_rows(host)
    # the split takes 5.00 from the account; the bank pays the rest but holds nothing
    with pytest.raises(Refused, match="insufficient balance: the bank account"):
        ph.settle(psn_no=h.psn_no, card_no=h.card_no, card_sn=h.card_sn,
                  lines=world.lines((AMOXICILLIN, 1, 1250)), cash_src="bank",
                  bank_auth=h.bank_auth(host, 750))
    assert count_rows(host) == before
    assert balances(host)[f"medical:{h.psn_no}"] == 500
    assert verify(host) == []


def test_sign_in_and_duplicate_answer_before_the_handler_refuses(world: World) -> None:
    """A refusal the handler raises before its first read still comes after the sign-in
    check and the duplicate check (the claim is settled first)."""
    host = world.host
    h = world.person(medical_fen=5_000)
    inp = {"druginfo": {"psn_no": h.psn_no, "mdtrt_cert_type": "03",
                        "mdtrt_cert_no": h.card_no, "card_sn": h.card_sn, "med_type": "41",
                        "medfee_sumamt": "12.50", "insutype": "310", "acct_used_flag": "1",
                        "cash_src": "cash"}, "drugdetail": world.lines((AMOXICILLIN, 1, 1250))}
    # a hospital may not send 2102, but an unknown sign-in is what it hears first
    bad = host.call(envelope(HOSPITAL, "2102", inp, sign_no="999999999"))
    assert bad["infcode"] == -1 and "sign_no 999999999" in bad["err_msg"], bad["err_msg"]
    wrong = host.call(envelope(HOSPITAL, "2102", inp, sign_no=world.hospital.sign_no))
    assert wrong["infcode"] == -1 and "is a hospital" in wrong["err_msg"], wrong["err_msg"]
    env = envelope(PHARMACY, "2102", inp, sign_no=world.pharmacy.sign_no)
    assert host.call(env)["infcode"] == 0
    before = count_rows(host)
    # the same msgid with a malformed card number: the msgid conflict answers first
    broken = dict(env, input={**inp, "druginfo": {**inp["druginfo"],
                                                   "mdtrt_cert_no": "NOTACARD1"}})
    out = host.call(broken)
    assert out["infcode"] == -1 and "already used" in out["err_msg"], out["err_msg"]
    assert count_rows(host) == before

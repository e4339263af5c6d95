"""Settlement, cancel, reversal, bank debits by ARQC, inpatient stays, reconciliation and
cumulative totals, on both back ends (spec/host.md §2–§4; spec/card.md §11)."""

from __future__ import annotations

import pytest

from ledger.errors import InsufficientFunds, Refused
from ledger.money import parse_yuan
from ledger.service import HostService
from tests.ledger.helpers import (
    AMOXICILLIN,
    APPENDIX,
    BED,
    CEFACLOR,
    PHARMACY,
    VITAMIN_D,
    World,
    balances,
    count_rows,
    envelope,
    msgid,
    verify,
)


@pytest.fixture
def world(host: HostService) -> World:
    return World(host)


def _parts_sum(info: dict[str, str]) -> None:
    f = {k: parse_yuan(v) for k, v in info.items()
         if k in ("medfee_sumamt", "fund_pay_sumamt", "acct_pay", "psn_cash_pay",
                  "fulamt_ownpay_amt", "overlmt_selfpay", "preselfpay_amt", "inscp_scp_amt")}
    assert f["medfee_sumamt"] == f["fund_pay_sumamt"] + f["acct_pay"] + f["psn_cash_pay"]
    assert f["medfee_sumamt"] == (f["inscp_scp_amt"] + f["fulamt_ownpay_amt"]
                                  + f["overlmt_selfpay"] + f["preselfpay_amt"])


def test_trial_equals_settlement(world: World) -> None:
    h = world.person(medical_fen=3000)
    lines = world.lines((AMOXICILLIN, 2, 1250), (CEFACLOR, 1, 3200), (VITAMIN_D, 1, 3600))
    kw = dict(psn_no=h.psn_no, card_no=h.card_no, card_sn=h.card_sn, lines=lines)
    trial = world.pharmacy.trial(**kw)
    done = world.pharmacy.settle(**kw)
    for k in ("medfee_sumamt", "fulamt_ownpay_amt", "overlmt_selfpay", "preselfpay_amt",
              "acct_pay", "psn_cash_pay", "balc"):
        assert trial["setlinfo"][k] == done["setlinfo"][k], k
    info = done["setlinfo"]
    _parts_sum(info)
    assert info["acct_pay"] == "30.00" and info["balc"] == "0.00"
    assert info["psn_cash_pay"] == "63.00"
    assert [d["chrgitm_lv"] for d in done["detlcutinfo"]] == ["01", "02", "03"]
    assert done["detlcutinfo"][1]["overlmt_amt"] == "2.00"
    assert info["setl_id"] and info["mdtrt_id"]
    assert verify(world.host) == []


def test_cancel_returns_the_money_and_cannot_repeat(world: World) -> None:
    h = world.person()
    lines = world.lines((AMOXICILLIN, 4, 1250))
    info = world.pharmacy.settle(psn_no=h.psn_no, card_no=h.card_no, card_sn=h.card_sn,
                                 lines=lines)["setlinfo"]
    assert balances(world.host)[f"medical:{h.psn_no}"] == 45_000
    out = world.pharmacy.cancel(info["setl_id"], info["mdtrt_id"], h.psn_no)["setlinfo"]
    assert out["medfee_sumamt"] == "-50.00" and out["balc"] == "500.00"
    with pytest.raises(Refused, match="already cancelled"):
        world.pharmacy.cancel(info["setl_id"], info["mdtrt_id"], h.psn_no)
    assert balances(world.host)[f"medical:{h.psn_no}"] == 50_000
    assert verify(world.host) == []


def test_insufficient_bank_balance_is_refused(world: World) -> None:
    h = world.person(medical_fen=0, bank_fen=1000)
    lines = world.lines((AMOXICILLIN, 1, 1250))
    before = count_rows(world.host), balances(world.host)
    with pytest.raises(InsufficientFunds, match=r"bank account holds 10.00 yuan"):
        world.pharmacy.settle(psn_no=h.psn_no, card_no=h.card_no, card_sn=h.card_sn,
                              lines=lines, cash_src="bank",
                              bank_auth=h.bank_auth(world.host, 1250))
    assert (count_rows(world.host), balances(world.host)) == before


def test_bank_debit_by_arqc(world: World) -> None:
    host = world.host
    h = world.person(medical_fen=1000, bank_fen=10_000)
    lines = world.lines((AMOXICILLIN, 2, 1250))
    kw = dict(psn_no=h.psn_no, card_no=h.card_no, card_sn=h.card_sn, lines=lines,
              cash_src="bank", use_account=False)
    rest = parse_yuan(world.pharmacy.trial(**kw)["setlinfo"]["psn_cash_pay"])
    assert rest == 2500
    auth = h.bank_auth(host, rest)
    info = world.pharmacy.settle(bank_auth=auth, **kw)["setlinfo"]
    assert info["psn_cash_pay"] == "25.00" and info["bank_balc"] == "75.00"
    assert info["acct_pay"] == "0.00" and info["balc"] == "10.00"
    assert len(info["arpc"]) == 16
    # the same cryptogram again (a replay, new msgid): refused, nothing charged
    before = count_rows(host), balances(host)
    with pytest.raises(Refused, match="replayed cryptogram"):
        world.pharmacy.settle(bank_auth=auth, **kw)
    forged = dict(h.bank_auth(host, rest))
    forged["arqc"] = ("0" if forged["arqc"][0] != "0" else "1") + forged["arqc"][1:]
    with pytest.raises(Refused, match="does not verify"):
        world.pharmacy.settle(bank_auth=forged, **kw)
    with pytest.raises(Refused, match=r"the card authorised 1.00 yuan"):
        world.pharmacy.settle(bank_auth=h.bank_auth(host, 100), **kw)
    with pytest.raises(Refused, match="replayed cryptogram"):
        world.pharmacy.settle(bank_auth=h.bank_auth(host, rest, atc=1), **kw)
    assert (count_rows(host), balances(host)) == before
    # a fresh cryptogram with a higher ATC goes through
    world.pharmacy.settle(bank_auth=h.bank_auth(host, rest), **kw)
    assert balances(host)[f"bank:{h.pan}"] == 10_000 - 2 * 2500
    assert verify(host) == []


@pytest.mark.parametrize("alg_generation", ["2.00", "3.00"])
def test_host_accepts_the_card_side_cryptogram(world: World, alg_generation: str) -> None:
    """The card's own ARQC recipe (card/pboc.py) verifies at the host: both sides agree."""
    keys = pytest.importorskip("card.keys")
    pboc = pytest.importorskip("card.pboc")
    from ledger import bank as bankmod
    h = world.person(medical_fen=0, generation=alg_generation)
    mk = keys.ac_master_key(h.alg, h.card_sn[:6], h.pan, 1)
    cdol1 = bankmod.build_cdol1(amount=1250, txn_date=world.host.clock().strftime("%y%m%d"),
                                un="00112233")
    arqc = pboc.application_cryptogram(mk, 1, cdol1, h.alg)
    auth = {"pan": h.pan, "pan_seq": "01", "cdol1": cdol1.hex(), "atc": "0001",
            "arqc": arqc.hex()}
    info = world.pharmacy.settle(psn_no=h.psn_no, card_no=h.card_no, card_sn=h.card_sn,
                                 lines=world.lines((AMOXICILLIN, 1, 1250)), cash_src="bank",
                                 bank_auth=auth)["setlinfo"]
    assert info["psn_cash_pay"] == "12.50"


def test_reversal_of_a_settlement(world: World) -> None:
    host = world.host
    h = world.person()
    inp = world.pharmacy.druginfo(psn_no=h.psn_no, card_no=h.card_no, card_sn=h.card_sn,
                                  lines=world.lines((AMOXICILLIN, 2, 1250)))
    env = envelope(PHARMACY, "2102", inp, sign_no=world.pharmacy.sign_no)
    assert host.call(env)["infcode"] == 0
    out = world.pharmacy.reverse(env["msgid"], "2102", h.psn_no)
    assert out["rvs_result"] == "reversed"
    assert balances(host)[f"medical:{h.psn_no}"] == 50_000
    again = world.pharmacy.reverse(env["msgid"], "2102", h.psn_no)
    assert again["rvs_result"] == "already_reversed"
    r = host.call(env)            # the original, resent: refused, not re-applied
    assert r["infcode"] == -1 and r["err_code"] == "reversed"
    assert balances(host)[f"medical:{h.psn_no}"] == 50_000
    assert verify(host) == []


def test_reversal_of_a_message_that_never_arrived(world: World) -> None:
    host = world.host
    h = world.person()
    inp = world.pharmacy.druginfo(psn_no=h.psn_no, card_no=h.card_no, card_sn=h.card_sn,
                                  lines=world.lines((AMOXICILLIN, 2, 1250)))
    lost = envelope(PHARMACY, "2102", inp, sign_no=world.pharmacy.sign_no)
    before = balances(host)
    out = world.pharmacy.reverse(lost["msgid"], "2102", h.psn_no)
    assert out["rvs_result"] == "not_received"
    assert balances(host) == before
    late = host.call(lost)        # the lost message finally arrives: refused
    assert late["infcode"] == -1 and "was reversed (2601) before it arrived" in late["err_msg"]
    assert balances(host) == before


def test_reversal_of_a_cancel_reinstates(world: World) -> None:
    host = world.host
    h = world.person()
    info = world.pharmacy.settle(psn_no=h.psn_no, card_no=h.card_no, card_sn=h.card_sn,
                                 lines=world.lines((AMOXICILLIN, 2, 1250)))["setlinfo"]
    cancel = envelope(PHARMACY, "2103", {"data": {"setl_id": info["setl_id"],
                                                  "mdtrt_id": info["mdtrt_id"],
                                                  "psn_no": h.psn_no}},
                      sign_no=world.pharmacy.sign_no)
    assert host.call(cancel)["infcode"] == 0
    assert balances(host)[f"medical:{h.psn_no}"] == 50_000
    assert world.pharmacy.reverse(cancel["msgid"], "2103", h.psn_no)["rvs_result"] == \
        "reinstated"
    assert balances(host)[f"medical:{h.psn_no}"] == 47_500
    with pytest.raises(Refused, match="cannot be reversed"):
        world.pharmacy.reverse(msgid(PHARMACY), "1101", h.psn_no)
    assert verify(host) == []


def test_inpatient_stay_deductible_ratio_and_cancel(world: World) -> None:
    host = world.host
    h = world.person(medical_fen=20_000, insutype="310")
    hos = world.hospital
    mdtrt_id = hos.admit(psn_no=h.psn_no, card_no=h.card_no, card_sn=h.card_sn,
                         begntime="2026-11-20 09:00:00")["result"]["mdtrt_id"]
    with pytest.raises(Refused, match="already has an open stay"):
        hos.admit(psn_no=h.psn_no, card_no=h.card_no, card_sn=h.card_sn,
                  begntime="2026-11-20 09:00:00")
    lines = world.lines((BED, 8, 3500), (APPENDIX, 1, 120_000))
    up = hos.upload_fees(mdtrt_id, h.psn_no, lines)["result"]
    assert [u["overlmt_amt"] for u in up] == ["40.00", "100.00"]
    with pytest.raises(Refused, match="already uploaded"):
        hos.upload_fees(mdtrt_id, h.psn_no, lines[:1])
    total = 8 * 3500 + 120_000
    with pytest.raises(Refused, match="discharge it"):
        hos.inpatient_settle(mdtrt_id, h.psn_no, total)
    trial = hos.inpatient_trial(mdtrt_id, h.psn_no, total)["setlinfo"]
    hos.discharge(mdtrt_id, h.psn_no, "2026-11-28 09:00:00")
    info = hos.inpatient_settle(mdtrt_id, h.psn_no, total)["setlinfo"]
    inscp = 8 * 3000 + 110_000
    assert info["act_pay_dedc"] == "800.00"
    assert parse_yuan(info["hifp_pay"]) == (inscp - 80_000) * 9 // 10
    assert info["hifp_pay"] == trial["hifp_pay"]
    assert info["acct_pay"] == "200.00" and info["balc"] == "0.00"
    _parts_sum(info)
    assert info["setl_id"]
    assert host.store.run(lambda tx: tx.one(
        "SELECT state FROM admissions WHERE mdtrt_id = ?", (mdtrt_id,)))[0] == "settled"
    out = hos.inpatient_cancel(info["setl_id"], mdtrt_id, h.psn_no)["setlinfo"]
    assert out["hifp_pay"] == "-" + info["hifp_pay"]
    assert balances(host)[f"medical:{h.psn_no}"] == 20_000
    hos.cancel_discharge(mdtrt_id, h.psn_no)
    hos.cancel_fees(mdtrt_id, h.psn_no)
    hos.cancel_admission(mdtrt_id, h.psn_no)
    assert verify(host) == []


def test_reconciliation_and_cumulative_totals(world: World) -> None:
    h = world.person()
    infos = [world.pharmacy.settle(psn_no=h.psn_no, card_no=h.card_no, card_sn=h.card_sn,
                                   lines=world.lines((AMOXICILLIN, n, 1250)))["setlinfo"]
             for n in (1, 2, 3)]
    world.pharmacy.cancel(infos[0]["setl_id"], infos[0]["mdtrt_id"], h.psn_no)
    day = "2026-11-28"
    ok = world.pharmacy.reconcile(day, count=2, total_fen=6250, fund_fen=0, acct_fen=6250)
    assert ok["stmtinfo"]["stmt_rslt"] == "0"
    bad = world.pharmacy.reconcile(day, count=3, total_fen=7500, fund_fen=0, acct_fen=7500)
    assert bad["stmtinfo"]["stmt_rslt"] == "1"
    assert "fixmedins_setl_cnt: host 2, institution 3" in bad["stmtinfo"]["stmt_rslt_dscr"]
    det = world.pharmacy.reconcile_details(day, [
        {"setl_id": infos[1]["setl_id"], "medfee_sumamt": "25.00", "fund_pay_sumamt": "0.00",
         "acct_pay": "25.00"},
        {"setl_id": infos[2]["setl_id"], "medfee_sumamt": "37.00", "fund_pay_sumamt": "0.00",
         "acct_pay": "37.50"},
        {"setl_id": "S-unknown", "medfee_sumamt": "1.00", "fund_pay_sumamt": "0.00",
         "acct_pay": "0.00"}])
    reasons = {m["setl_id"]: m["reason"] for m in det["mismatches"]}
    assert set(reasons) == {infos[2]["setl_id"], "S-unknown", infos[0]["setl_id"]}
    assert "amounts differ" in reasons[infos[2]["setl_id"]]
    cum = {c["cum_type_code"]: c["cum"] for c in
           world.office.cumulative(h.psn_no, "202611")["cuminfo"]}
    assert cum["C001"] == "62.50" and cum["C006"] == "2"
    from ledger.report import day_report
    rows, problems = day_report(world.host.store, day)
    ph = next(r for r in rows if r.fixmedins_code == PHARMACY)
    assert (ph.settled, ph.cancelled, ph.total) == (2, 1, 6250)
    assert ph.reconciliation == "MISMATCH" and problems == []

"""The seed rules at the host, one test each (seed/RULES.md; spec/host.md §5), on both
back ends."""

from __future__ import annotations

import pytest

from ledger.errors import BadRequest, Refused
from ledger.money import parse_yuan
from ledger.service import HostService
from tests.ledger.helpers import (
    AMOXICILLIN,
    BED,
    NOT_DESIGNATED,
    REGISTRY,
    Holder,
    World,
    balances,
    count_rows,
    terminal,
    verify,
)


@pytest.fixture
def world(host: HostService) -> World:
    return World(host)


def _pay(w: World, h: Holder, n: int = 1, **kw: object) -> dict[str, str]:
    return w.pharmacy.settle(psn_no=h.psn_no, card_no=h.card_no, card_sn=h.card_sn,
                             lines=w.lines((AMOXICILLIN, n, 1250)), **kw)["setlinfo"]


def test_C4_real_name_issuance(world: World) -> None:
    p = REGISTRY[5]
    before = count_rows(world.host)
    with pytest.raises(Refused, match=r"ID check failed: the name does not match.*rule C4"):
        world.office.issue_card(certno=p["certno"], psn_name="冒名顶替", gend=p["sex"],
                                brdy=p["brdy"], bank="CCB")
    with pytest.raises(Refused, match="not in the national register"):
        world.office.issue_card(certno="11010519491231002X", psn_name="张三", gend="1",
                                brdy="1949-12-31", bank="CCB")
    assert count_rows(world.host) == before           # no card, no person
    out = world.office.issue_card(certno=p["certno"], psn_name=p["name"], gend=p["sex"],
                                  brdy=p["brdy"], bank="CCB")["cardinfo"]
    assert out["card_stas"] == "activated"
    with pytest.raises(Refused, match="already holds card"):
        world.office.issue_card(certno=p["certno"], psn_name=p["name"], gend=p["sex"],
                                brdy=p["brdy"], bank="ICBC")


def test_A3_ccb_cards_arrive_activated(world: World) -> None:
    h = world.person("CCB", activate=False)
    assert world.pharmacy.person_by_card(h.card_no, h.card_sn)["cardinfo"]["card_stas"] == \
        "activated"
    with pytest.raises(Refused, match="rule A3"):
        world.banks["CCB"].activate(h.card_no, h.certno)
    assert _pay(world, h)["acct_pay"] == "12.50"


@pytest.mark.parametrize("bank", ["ICBC", "ABC", "BOC"])
def test_A4_other_banks_activate_at_their_counter(world: World, bank: str) -> None:
    h = world.person(bank, activate=False, bank_fen=0)
    with pytest.raises(Refused, match=rf"not activated: .*{bank}.*rule A4"):
        _pay(world, h)
    other = "CCB" if bank != "CCB" else "ICBC"
    with pytest.raises(Refused, match=f"go to a {bank}"):
        world.banks[other].activate(h.card_no, h.certno)
    with pytest.raises(Refused, match="initial PIN"):
        world.banks[bank].activate(h.card_no, h.certno, pin_changed=False)
    with pytest.raises(Refused, match="does not match the holder"):
        world.banks[bank].activate(h.card_no, REGISTRY[30]["certno"])
    out = world.banks[bank].activate(h.card_no, h.certno)["cardinfo"]
    assert out["card_stas"] == "activated"
    assert _pay(world, h)["acct_pay"] == "12.50"


def test_L1_loss_report_blocks_payment_everywhere(world: World, host: HostService) -> None:
    h = world.person()
    _pay(world, h)
    world.banks["CCB"].report_loss(h.card_no, h.certno)
    other = terminal(host, "P37080000002")
    before = balances(host)
    for t in (world.pharmacy, other):
        with pytest.raises(Refused, match=r"reported lost \(temporary.*rule L1"):
            t.settle(psn_no=h.psn_no, card_no=h.card_no, card_sn=h.card_sn,
                     lines=world.lines((AMOXICILLIN, 1, 1250)))
    with pytest.raises(Refused, match="reported lost"):
        world.hospital.admit(psn_no=h.psn_no, card_no=h.card_no, card_sn=h.card_sn)
    assert balances(host) == before
    # the temporary report lapses after the policy's days (5 in Jining) …
    host.clock.advance(days=5, seconds=1)  # type: ignore[attr-defined]
    _pay(world, h)
    # … a formal one does not; lifting it restores the card
    world.banks["CCB"].report_loss(h.card_no, h.certno, formal=True)
    host.clock.advance(days=30)  # type: ignore[attr-defined]
    with pytest.raises(Refused, match=r"reported lost \(formal\)"):
        _pay(world, h)
    world.office.lift_loss(h.card_no, h.certno)
    _pay(world, h)
    # replacing a lost card: 30 yuan, new number, bank balance moves, medical stays
    world.banks["CCB"].report_loss(h.card_no, h.certno, formal=True)
    medical = balances(host)[f"medical:{h.psn_no}"]
    out = world.banks["CCB"].replace_card(h.card_no, h.certno, "lost")["cardinfo"]
    assert out["fee"] == "30.00" and out["card_no"] != h.card_no
    assert out["card_sn"] != h.card_sn and out["pan"] != h.pan
    assert out["bank_balance_moved"] == "1000.00"
    assert balances(host)[f"bank:{out['pan']}"] == 100_000
    assert balances(host)[f"bank:{h.pan}"] == 0
    assert balances(host)[f"medical:{h.psn_no}"] == medical
    with pytest.raises(Refused, match=f"replaced by card {out['card_no']}"):
        _pay(world, h)
    fees = host.store.run(lambda tx: tx.one(
        "SELECT COALESCE(SUM(amount), 0) FROM postings WHERE account_id = 'fee:370800'"))[0]
    assert int(fees) == 3000
    assert verify(host) == []


def test_L1_replacement_needs_a_loss_report(world: World) -> None:
    h = world.person()
    with pytest.raises(Refused, match="report the loss"):
        world.banks["CCB"].replace_card(h.card_no, h.certno, "lost")


def test_L2_damaged_card_fee_or_free(world: World, host: HostService) -> None:
    h = world.person(bank_fen=10_000)
    paid = world.banks["CCB"].replace_card(h.card_no, h.certno, "damaged_by_holder",
                                           fee_src="bank")["cardinfo"]
    assert paid["fee"] == "30.00" and paid["bank_balc"] == "70.00"
    with pytest.raises(Refused, match="needs the certificate"):
        world.banks["CCB"].replace_card(paid["card_no"], h.certno, "damaged_not_holder")
    free = world.banks["CCB"].replace_card(paid["card_no"], h.certno, "damaged_not_holder",
                                           certificate_no="JN2026-0001")["cardinfo"]
    assert free["fee"] == "0.00" and free["bank_balc"] == "70.00"
    with pytest.raises(Refused, match="go to a CCB"):
        world.banks["ICBC"].replace_card(free["card_no"], h.certno, "damaged_by_holder")
    assert verify(host) == []


def test_C3_pin_reset_is_free_and_needs_the_holders_id(world: World, host: HostService) -> None:
    h = world.person()
    before = balances(host), host.store.run(lambda tx: tx.one("SELECT COUNT(*) FROM entries"))
    with pytest.raises(Refused, match="does not match the holder"):
        world.banks["CCB"].record_pin_reset(h.card_no, REGISTRY[20]["certno"])
    out = world.banks["CCB"].record_pin_reset(h.card_no, h.certno, "unlock")
    assert out["fee"] == "0.00"
    assert (balances(host), host.store.run(
        lambda tx: tx.one("SELECT COUNT(*) FROM entries"))) == before   # free: no entry
    kinds = host.store.run(lambda tx: tx.all(
        "SELECT kind FROM card_events WHERE card_no = ?", (h.card_no,)))
    assert ("pin_unlock",) in [tuple(k) for k in kinds]
    with pytest.raises(Refused, match="go to a CCB"):
        world.banks["BOC"].record_pin_reset(h.card_no, h.certno)


def test_U3_discharge_self_pay_from_account_bank_or_cash(world: World,
                                                        host: HostService) -> None:
    hos = world.hospital
    results = {}
    for src, use_account in (("account", True), ("bank", False), ("cash", False)):
        h = world.person(medical_fen=300_000 if src == "account" else 0, bank_fen=300_000)
        mid = hos.admit(psn_no=h.psn_no, card_no=h.card_no, card_sn=h.card_sn,
                        begntime="2026-11-25 08:00:00")["result"]["mdtrt_id"]
        hos.upload_fees(mid, h.psn_no, world.lines((BED, 3, 3000)))
        hos.discharge(mid, h.psn_no, "2026-11-28 08:00:00")
        total = 9000
        cash_src = "bank" if src == "bank" else "cash"
        trial = hos.inpatient_trial(mid, h.psn_no, total, use_account=use_account,
                                    cash_src=cash_src)["setlinfo"]
        auth = h.bank_auth(host, parse_yuan(trial["psn_cash_pay"])) if src == "bank" else None
        results[src] = hos.inpatient_settle(mid, h.psn_no, total, use_account=use_account,
                                            cash_src=cash_src, bank_auth=auth,
                                            card=(h.card_no, h.card_sn))["setlinfo"]
        results[src]["_pan"] = h.pan
    assert results["account"]["acct_pay"] == "90.00"
    assert results["bank"]["psn_cash_pay"] == "90.00" and results["bank"]["bank_balc"] == \
        "2910.00"
    assert results["cash"]["psn_cash_pay"] == "90.00" and results["cash"]["cash_src"] == "cash"
    drawer = host.store.run(lambda tx: tx.one(
        "SELECT SUM(amount) FROM postings WHERE account_id = 'cash:H37080000001'"))[0]
    assert int(drawer) == 9000
    assert verify(host) == []


def test_U4_only_designated_institutions(world: World, host: HostService) -> None:
    h = world.person()
    t = terminal(host, NOT_DESIGNATED)
    before = balances(host)
    with pytest.raises(Refused, match=r"not a designated institution.*rule U4"):
        t.settle(psn_no=h.psn_no, card_no=h.card_no, card_sn=h.card_sn,
                 lines=world.lines((AMOXICILLIN, 1, 1250)))
    with pytest.raises(Refused, match="is a pharmacy transaction but institution"):
        world.office.settle(psn_no=h.psn_no, card_no=h.card_no, card_sn=h.card_sn,
                            lines=world.lines((AMOXICILLIN, 1, 1250)))
    assert balances(host) == before


def test_U5_balance_on_the_slip_and_at_the_counter(world: World) -> None:
    h = world.person(medical_fen=10_000, bank_fen=20_000)
    slip = _pay(world, h, 2)
    assert slip["balc"] == "75.00"
    at_bank = world.banks["CCB"].balance(h.card_no, h.card_sn)
    assert at_bank["balc"] == "75.00" and at_bank["bank_balc"] == "200.00"
    lookup = world.pharmacy.person_by_card(h.card_no, h.card_sn)
    assert lookup["insuinfo"][0]["balc"] == "75.00"


def _old_card_setup(world: World) -> tuple[str, dict[str, str]]:
    p = REGISTRY[12]
    office = world.office
    # a person known from the old system, with an old medical card, before the new card
    out = office.issue_card(certno=p["certno"], psn_name=p["name"], gend=p["sex"],
                            brdy=p["brdy"], bank="CCB")["cardinfo"]
    h_psn = out["psn_no"]
    office.register_old_card(h_psn, "JNOLD0000001", 12_345)
    return h_psn, out


def test_M1_no_more_credits_to_the_old_card(world: World, host: HostService) -> None:
    psn_no, _ = _old_card_setup(world)
    before = balances(host)
    with pytest.raises(Refused, match="rule M1"):
        world.office.credit(psn_no, 1000, "old", old_card_no="JNOLD0000001")
    assert balances(host) == before
    world.office.credit(psn_no, 1000, "medical")
    assert balances(host)[f"medical:{psn_no}"] == 1000


def test_M2_transition_then_batch_migration(world: World, host: HostService) -> None:
    psn_no, card = _old_card_setup(world)
    old_input = {"psn_no": psn_no, "lines": world.lines((AMOXICILLIN, 1, 1250)),
                 "old_card_no": "JNOLD0000001"}
    # during the transition both cards pay: the old card from its own balance
    info = world.pharmacy.settle(**old_input)["setlinfo"]
    assert info["acct_pay"] == "12.50" and info["balc"] == "110.95"
    with pytest.raises(Refused, match="still open"):
        world.office.migrate_batch()
    # more old cards, one whose holder has no new card yet
    for i, p in enumerate(REGISTRY[13:16]):
        if i < 2:
            psn = world.office.issue_card(certno=p["certno"], psn_name=p["name"],
                                          gend=p["sex"], brdy=p["brdy"],
                                          bank="BOC")["cardinfo"]["psn_no"]
            world.office.register_old_card(psn, f"JNOLD000001{i}", 1000 * (i + 1))
    world.office.set_transition(False)
    with pytest.raises(Refused, match="stopped working at the cut-over"):
        world.pharmacy.settle(**old_input)
    first = world.office.migrate_batch(batch_size=2)
    assert first["migrated"] == 2 and first["remaining"] == 1
    second = world.office.migrate_batch(batch_size=2)
    assert second["migrated"] == 1 and second["remaining"] == 0
    assert balances(host)[f"medical:{psn_no}"] == 11_095
    assert balances(host)["oldmed:JNOLD0000001"] == 0
    world.office.set_transition(True)       # even reopened, a migrated card stays stopped
    with pytest.raises(Refused, match="migrated into the personal account"):
        world.pharmacy.settle(**old_input)
    assert card["card_stas"] == "activated"
    assert verify(host) == []


def test_A5_C7_holder_data_changes(world: World, host: HostService) -> None:
    h = world.person("ICBC")
    # C7: a job change needs no new card
    out = world.office.change_holder(h.psn_no, h.certno, emp_name="济宁市新单位")
    assert out["changed"] == ["emp_name"] and not out["card_replacement_needed"]
    assert _pay(world, h)["acct_pay"] == "12.50"
    # A5: a wrong name is corrected only if the ID check passes …
    with pytest.raises(Refused, match="ID check failed"):
        world.office.change_holder(h.psn_no, h.certno, psn_name="别人")
    # … the office then issues a certificate and the bank replaces the card for free
    registry_name = h.name
    out = world.office.change_holder(h.psn_no, h.certno, psn_name=registry_name)
    assert out["changed"] == []
    with pytest.raises(Refused, match=r"only a live card|go to a ICBC"):
        world.banks["CCB"].replace_card(h.card_no, h.certno, "data_error",
                                        certificate_no="A5-1")
    new = world.banks["ICBC"].replace_card(h.card_no, h.certno, "data_error",
                                           certificate_no="A5-1")["cardinfo"]
    assert new["fee"] == "0.00" and new["card_stas"] == "issued"     # ICBC: activate (A4)
    assert verify(host) == []


def test_pins_never_reach_the_books(world: World, host: HostService) -> None:
    h = world.person("ABC", activate=False)
    world.banks["ABC"].call("8102", {"data": {"card_no": h.card_no, "certno": h.certno,
                                              "pin_changed": True, "pin": "604817"}})

    def dump(tx: object) -> str:
        out = []
        for t in ("requests", "answers", "card_events", "entries", "cards", "signins"):
            out += [repr(r) for r in tx.all(f"SELECT * FROM {t}")]  # type: ignore[attr-defined]
        return "\n".join(out)
    assert "604817" not in host.store.run(dump)


@pytest.mark.parametrize("field, value, message", [
    ("psn_name", "王\n五", "contains a control character (U+000A)"),
    ("emp_name", "单位\x1b[2J", "contains a control character (U+001B)"),
    ("emp_name", "x" * 101, "String should have at most 100 characters"),
    ("naty", "0\n", "String should match pattern"),
    ("brdy", "1980-02-30", "1980-02-30 is no calendar date"),
    ("new_certno", "37080019800101001", "String should match pattern"),
])
def test_holder_data_changes_are_checked(world: World, host: HostService, field: str,
                                         value: str, message: str) -> None:
    h = world.person("ICBC")
    before = count_rows(host)
    with pytest.raises(BadRequest) as caught:
        world.office.change_holder(h.psn_no, h.certno, **{field: value})
    assert f"input.data.{field}: {message}" in str(caught.value)
    assert count_rows(host) == before
    row = host.store.run(lambda tx: tx.one("SELECT psn_name, naty, brdy, emp_name FROM persons "
                                           "WHERE psn_no = ?", (h.psn_no,)))
    assert row is not None and "\n" not in row[0] and row[1] == "01"


@pytest.mark.parametrize("field, value", [("emp_name", "a\rb"), ("naty", "Han"),
                                          ("psn_type", "1\n"), ("brdy", "1980-13-01")])
def test_issuing_checks_the_holder_data(world: World, host: HostService, field: str,
                                        value: str) -> None:
    p = REGISTRY[7]
    before = count_rows(host)
    kw = {"certno": p["certno"], "psn_name": p["name"], "gend": p["sex"], "brdy": p["brdy"],
          "bank": "CCB", field: value}
    with pytest.raises(BadRequest, match=f"input.data.{field}: "):
        world.office.issue_card(**kw)
    assert count_rows(host) == before

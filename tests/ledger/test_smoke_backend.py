"""Both back ends run the migrations and the basic flow."""

from __future__ import annotations

from ledger.service import HostService
from tests.ledger.helpers import AMOXICILLIN, World, verify


def test_pharmacy_settlement_end_to_end(host: HostService) -> None:
    w = World(host)
    h = w.person()
    lines = w.lines((AMOXICILLIN, 2, 1250))
    out = w.pharmacy.settle(psn_no=h.psn_no, card_no=h.card_no, card_sn=h.card_sn,
                            lines=lines)["setlinfo"]
    assert out["medfee_sumamt"] == "25.00"
    assert out["acct_pay"] == "25.00"
    assert out["balc"] == "475.00"
    assert verify(host) == []

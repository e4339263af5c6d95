"""A fake card carrying the numbers the embedded host issued, with real ARQCs (tests only).

The card side of these tests is the in-memory :class:`~tests.core.fakes.FakeCard`; its bank
application computes the ARQC the way a real card does (ledger/bank.py, spec/card.md §11)
so that the real host accepts or refuses it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from terminal.core.ports import BankCryptogram, CardInfo, build_cdol1
from tests.core.fakes import FakeCard


class HostIssuedCard(FakeCard):
    def __init__(self, cardinfo: Mapping[str, Any], holder: Mapping[str, str], **kw: Any):
        super().__init__(number=str(cardinfo["card_no"]), **kw)
        self.cardinfo = dict(cardinfo)
        self.info = CardInfo(
            area_code=str(cardinfo["card_sn"])[:6], ssn=holder["certno"],
            card_number=str(cardinfo["card_no"]), card_id_code=str(cardinfo["card_sn"]),
            name=holder["psn_name"], spec_version="3.00", terminal_number="370800000042")

    def _cryptogram(self, amount_fen: int, when: datetime) -> BankCryptogram:
        from ledger import bank
        from ledger.policy import load_policy
        from terminal.core.adapters import POLICY_DIR

        ci = self.cardinfo
        alg = 3 if ci["algorithm"] == "SM4" else 1
        area = str(ci["card_sn"])[:6]
        root = load_policy(POLICY_DIR / f"{area}.toml").banks[ci["bank"]].root_ac[alg]
        mk = bank.card_key(root, alg, area, ci["pan"], int(ci["pan_seq"]))
        cdol1 = build_cdol1(amount_fen, when.strftime("%y%m%d"), "1A2B3C4D")
        arqc = bank.cryptogram(mk, self.atc, bytes.fromhex(cdol1), alg)
        return BankCryptogram(pan=ci["pan"], pan_seq=ci["pan_seq"], amount_fen=amount_fen,
                              cdol1=cdol1, atc=f"{self.atc:04X}", arqc=arqc.hex().upper())

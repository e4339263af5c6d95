"""Fixtures for the transaction-core tests: fake ports and a fixed clock."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from terminal.core.model import TerminalConfig
from tests.core.fakes import FakeCard, FakeCatalogue, FakeHost

CST = timezone(timedelta(hours=8))


class StepClock:
    """A clock that advances one second per reading (distinct record times)."""

    def __init__(self) -> None:
        self.t = datetime(2026, 11, 28, 10, 0, 0, tzinfo=CST)

    def __call__(self) -> datetime:
        self.t += timedelta(seconds=1)
        return self.t


@pytest.fixture
def card() -> FakeCard:
    return FakeCard()


@pytest.fixture
def host() -> FakeHost:
    return FakeHost()


@pytest.fixture
def catalogue() -> FakeCatalogue:
    return FakeCatalogue()


@pytest.fixture
def clock() -> StepClock:
    return StepClock()


@pytest.fixture
def config() -> TerminalConfig:
    return TerminalConfig(institution_code="P37080000001", institution_name="济宁市太白湖大药房",
                          area_code="370800")


@pytest.fixture
def events() -> Iterator[list[object]]:
    yield []


# --------------------------------------------------------------------------- embedded host


PHARMACY = "P37080000001"
HOSPITAL = "H37080000001"
OFFICE = "S37080000001"
HOLDER = {"certno": "370811199812169475", "psn_name": "王伟", "gend": "1",
          "brdy": "1998-12-16"}


@dataclass
class EmbeddedHost:
    """A SQLite host in tmp_path with one insured person holding one card."""

    url: str
    cardinfo: dict[str, Any]
    psn_no: str

    def client(self, code: str) -> Any:
        from ledger.client import HostClient

        return HostClient.connect(self.url, fixmedins_code=code, fixmedins_name=code)

    def books_problems(self) -> list[str]:
        from ledger import books
        from ledger.store.base import open_store

        store = open_store(self.url)
        try:
            return list(store.run(books.verify))
        finally:
            store.close()

    def balances(self) -> tuple[int, int]:
        from ledger import books
        from ledger.store.base import open_store

        store = open_store(self.url)
        try:
            return store.run(lambda tx: (books.balance(tx, books.medical(self.psn_no)),
                                         books.balance(tx, books.bank(self.cardinfo["pan"]))))
        finally:
            store.close()

    def settlements(self) -> list[tuple[Any, ...]]:
        from ledger.store.base import open_store

        store = open_store(self.url)
        try:
            return list(store.run(lambda tx: tx.all(
                "SELECT setl_id, state, acct_pay, psn_cash_pay, hifp_pay, cash_src "
                "FROM settlements ORDER BY created_at")))
        finally:
            store.close()


def make_embedded_host(tmp: Path, *, balance: int = 50000, bank_deposit: int = 100000,
                       bank: str = "CCB", holder: dict[str, str] | None = None
                       ) -> EmbeddedHost:
    from ledger.client import HostClient
    from ledger.service import initialize
    from ledger.store.base import open_store

    url = f"sqlite:///{tmp}/host.db"
    store = open_store(url)
    initialize(store)
    store.close()
    with HostClient.connect(url, fixmedins_code=OFFICE, fixmedins_name="office") as office:
        ci = office.issue_card(bank=bank, **(holder or HOLDER))["cardinfo"]
        if balance:
            office.credit(ci["psn_no"], balance)
    if bank_deposit:
        bank_code = {"CCB": "B37080000CCB", "ICBC": "B3708000ICBC"}[bank]
        with HostClient.connect(url, fixmedins_code=bank_code) as counter:
            counter.credit(ci["psn_no"], bank_deposit, "bank", card_no=ci["card_no"])
    return EmbeddedHost(url, ci, ci["psn_no"])


@pytest.fixture
def embedded(tmp_path: Path) -> EmbeddedHost:
    return make_embedded_host(tmp_path)

"""Fixtures for the transaction-core tests: fake ports and a fixed clock."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

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

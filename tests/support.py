"""Helpers shared by the test suite."""

from __future__ import annotations

import os

import pytest

#: For a test that runs for a fixed time and then counts what got done (the bank tests, the
#: city day): under pytest-xdist (scripts/test.sh) these share one worker, one after the
#: other, so that they never starve each other of the machine.
TIMED = pytest.mark.xdist_group("timed")


def require(service: str, reason: str) -> None:
    """Skip a test whose service is missing, with ``reason`` telling the user what to do.

    Under CI (``CI`` set) or with ``SSCARD_REQUIRE_<SERVICE>=1`` the test fails instead:
    CI proves everything, so nothing may quietly skip there.
    """
    key = "SSCARD_REQUIRE_" + service.upper().replace("-", "_")
    if os.environ.get("CI") or os.environ.get(key) == "1":
        pytest.fail(f"{service} is required here but unavailable: {reason}", pytrace=False)
    pytest.skip(f"{service} unavailable: {reason}")

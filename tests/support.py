"""Helpers shared by the test suite."""

from __future__ import annotations

import os

import pytest


def require(service: str, reason: str) -> None:
    """Skip a test whose service is missing, with ``reason`` telling the user what to do.

    Under CI (``CI`` set) or with ``SSCARD_REQUIRE_<SERVICE>=1`` the test fails instead:
    CI proves everything, so nothing may quietly skip there.
    """
    key = "SSCARD_REQUIRE_" + service.upper().replace("-", "_")
    if os.environ.get("CI") or os.environ.get(key) == "1":
        pytest.fail(f"{service} is required here but unavailable: {reason}", pytrace=False)
    pytest.skip(f"{service} unavailable: {reason}")

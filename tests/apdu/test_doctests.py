"""Run the doctest examples of every ``apdu`` module."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import apdu

MODULES = sorted(m.name for m in pkgutil.iter_modules(apdu.__path__, "apdu."))


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0


def test_modules_with_examples_have_them() -> None:
    with_examples = {
        name for name in MODULES
        if doctest.DocTestFinder().find(importlib.import_module(name))
        and any(t.examples for t in doctest.DocTestFinder().find(importlib.import_module(name)))
    }
    assert {"apdu.sw", "apdu.tlv", "apdu.atr", "apdu.t0", "apdu.codec", "apdu.cardbas",
            "apdu.commands", "apdu.command", "apdu.response"} <= with_examples

"""The examples in the serial modules' docstrings are true."""

from __future__ import annotations

import doctest
from types import ModuleType

import pytest

import reader.iso7816_3
import reader.serial
import reader.serial_device


@pytest.mark.parametrize("module", [reader.iso7816_3, reader.serial, reader.serial_device],
                         ids=lambda m: m.__name__)
def test_doctests(module: ModuleType) -> None:
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0

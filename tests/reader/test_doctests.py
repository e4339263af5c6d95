"""The doctest examples of the reader modules, and the QUICKACK rule of the vpcd reader."""

from __future__ import annotations

import doctest
import importlib
import socket

import pytest

from reader.vpcd import _TCP_QUICKACK, recv_exact

MODULES = ["reader.echo", "reader.vpcd", "reader.trace"]


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


class ChunkySocket:
    """Hands out data a few bytes per recv and records the calls in order."""

    def __init__(self, data: bytes, chunk: int) -> None:
        self.data, self.chunk = data, chunk
        self.calls: list[str] = []

    def setsockopt(self, level: int, option: int, value: int) -> None:
        assert (level, option, value) == (socket.IPPROTO_TCP, _TCP_QUICKACK, 1)
        self.calls.append("quickack")

    def recv(self, n: int) -> bytes:
        self.calls.append("recv")
        out, self.data = self.data[: min(n, self.chunk)], self.data[min(n, self.chunk):]
        return out


def test_quickack_is_rearmed_before_every_recv() -> None:
    """TCP_QUICKACK is not sticky on Linux: set it before each recv (spec/pcsc-lab.md)."""
    sock = ChunkySocket(bytes(10), chunk=3)
    assert recv_exact(sock, 10) == bytes(10)  # type: ignore[arg-type]
    assert sock.calls == ["quickack", "recv"] * 4


def test_quickack_can_be_left_off() -> None:
    sock = ChunkySocket(bytes(4), chunk=4)
    recv_exact(sock, 4, quickack=False)  # type: ignore[arg-type]
    assert sock.calls == ["recv"]

"""Fixtures: a card served as an RFC 2217 serial device on 127.0.0.1, and readers on it."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from apdu.iface import CardLike
from reader.serial import SerialConnection, SerialTransport
from reader.serial_device import serve_in_thread
from tests.serial.tinycard import TinyCard

Serve = Callable[..., str]


@pytest.fixture
def serve_card() -> Iterator[Serve]:
    """``serve_card(card=None, url="rfc2217://127.0.0.1:0", **options) -> ready URL``."""
    running: list[tuple[threading.Event, threading.Thread]] = []

    def start(card: CardLike | None = None, url: str = "rfc2217://127.0.0.1:0",
              **options: Any) -> str:
        ready, stop, thread = serve_in_thread(card or TinyCard(), url, **options)
        running.append((stop, thread))
        return ready

    yield start
    for stop, thread in running:
        stop.set()
        thread.join(5)


@pytest.fixture
def open_reader() -> Iterator[Callable[..., SerialConnection]]:
    """``open_reader(url, **transport options) -> connection`` (disconnected afterwards)."""
    opened: list[SerialConnection] = []

    def connect(url: str, **options: Any) -> SerialConnection:
        transport = SerialTransport(url, **options)
        conn = transport.connect(transport.name)
        opened.append(conn)
        return conn

    yield connect
    for conn in opened:
        conn.disconnect()


_SERIAL_DIR = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """pyserial's RFC 2217 client calls the deprecated Thread.setDaemon/setName: not ours."""
    for item in items:
        if _SERIAL_DIR in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.filterwarnings("ignore:setDaemon:DeprecationWarning"))
            item.add_marker(pytest.mark.filterwarnings("ignore:setName:DeprecationWarning"))

"""The reader suite's card-reading tests (tests/reader/test_card_reading.py), run over a serial
reader: the user card is served as an RFC 2217 serial device and read by SerialTransport at
the ISO 7816-3 character level (T=0) at 115200 baud; the PSAM sits in an in-process reader,
as in a PIN pad next to a serial card reader.

The tests are imported unchanged; only the ``rig`` fixture below is this module's own.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from apdu.iface import CardLike
from reader.base import Connection
from reader.serial import SerialTransport
from reader.serial_device import serve_in_thread
from reader.virtual import VirtualTransport
from tests.reader.test_card_reading import *  # noqa: F403 - the suite, re-collected here
from tests.reader.test_card_reading import Rig

pytestmark = [pytest.mark.timeout(120), pytest.mark.slow]
#: A reader clocked for 115200 baud at F=372, D=1 keeps the 4 KB photo read short; the
#: 9600-baud line is covered by the other serial tests and bench/serial_bench.py.
BAUD = 115200


@pytest.fixture  # type: ignore[no-redef]  # replaces the suite's own transports
def rig(tmp_path: Path) -> Iterator[Rig]:
    opened: list[Connection] = []
    servers: list[tuple[threading.Event, threading.Thread]] = []

    def open_pair(card: CardLike, psam: CardLike | None) -> tuple[Connection, Connection | None]:
        for conn in opened:  # one pair at a time
            conn.disconnect()
        opened.clear()
        for stop, thread in servers:
            stop.set()
            thread.join(5)
        servers.clear()
        url, stop, thread = serve_in_thread(card, "rfc2217://127.0.0.1:0", baud=BAUD)
        servers.append((stop, thread))
        transport = SerialTransport(url, baud=BAUD)
        user = transport.connect(transport.name)
        opened.append(user)
        sam = None
        if psam is not None:
            sam = VirtualTransport.with_cards(None, psam).connect("Virtual PSAM 0")
            opened.append(sam)
        return user, sam

    yield Rig("serial", open_pair, True, tmp_path)
    for conn in opened:
        conn.disconnect()
    for stop, thread in servers:
        stop.set()
        thread.join(5)

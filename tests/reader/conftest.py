"""Fixtures for the reader tests: the real pcscd (tests/reader/pcsclab.py) and served cards."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest

from apdu.iface import CardLike
from reader.vpcd import VpcdServer
from tests.reader.pcsclab import INSTALL_HINT, PcscdLab, missing_tools, running_pid
from tests.support import require


@pytest.fixture(scope="session")
def pcscd_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PcscdLab]:
    """The machine's pcscd with vpcd, started by this session and stopped at its end."""
    missing = missing_tools()
    if missing:
        require("pcscd", f"missing {', '.join(missing)}; {INSTALL_HINT}")
    lab = PcscdLab(tmp_path_factory.mktemp("pcscd") / "pcscd.log")
    try:
        lab.acquire()
    except TimeoutError as exc:
        require("pcscd", str(exc))
    lab.reap_orphan()
    other = running_pid()
    if other is not None:
        lab.release()
        require("pcscd", f"another pcscd (pid {other}) runs on this machine; stop it so the "
                "tests can start their own")
    try:
        lab.start()
    except (RuntimeError, TimeoutError) as exc:
        lab.close()
        require("pcscd", f"pcscd did not start: {exc}")
    yield lab
    lab.close()


@pytest.fixture
def pcscd(pcscd_lab: PcscdLab) -> PcscdLab:
    """pcscd running at the start of the test (restarted if an earlier test stopped it)."""
    pcscd_lab.ensure_running()
    return pcscd_lab


@pytest.fixture
def pcsc(pcscd: PcscdLab) -> Iterator[object]:
    from reader.pcsc import PcscTransport

    transport = PcscTransport()
    yield transport
    transport.close()


def card_present(reader: str) -> bool | None:
    """Whether pcscd sees a card in ``reader`` (None while pcscd does not answer)."""
    from reader.errors import ReaderError
    from reader.pcsc import PcscTransport

    t = PcscTransport()
    try:
        for info in t.readers():
            if info.name == reader:
                return info.card_present
        return False
    except ReaderError:
        return None
    finally:
        t.close()


def wait_card(reader: str, present: bool = True, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if card_present(reader) is present:
            return
        time.sleep(0.05)
    raise AssertionError(f"pcscd did not see the card {'arrive in' if present else 'leave'} "
                         f"{reader!r} within {timeout}s")


SLOT_READERS = ("Virtual PCD 00 00", "Virtual PCD 00 01")

ServeFn = Callable[..., VpcdServer]


@pytest.fixture
def serve(pcscd: PcscdLab) -> Iterator[ServeFn]:
    """``serve(card, slot=0)`` → a started VpcdServer whose card pcscd already sees.

    At the end every served card is removed and pcscd is given time to notice, so the next
    test starts with empty slots.
    """
    servers: list[tuple[VpcdServer, int]] = []

    def _serve(card: CardLike, slot: int = 0, wait: bool = True, **opts: object) -> VpcdServer:
        server = VpcdServer(card, port=35963 + slot, **opts)  # type: ignore[arg-type]
        server.start()
        servers.append((server, slot))
        if wait:
            assert server.wait_connected(5), server.last_error
            wait_card(SLOT_READERS[slot], True)
        return server

    yield _serve
    for server, _slot in servers:
        server.stop()
    if pcscd.owned:
        for _server, slot in servers:
            wait_card(SLOT_READERS[slot], False)

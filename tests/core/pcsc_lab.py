"""The pharmacy station over the real stack: pcscd with vpcd (the card and the PSAM served on
the two vpcd slots) and the HTTP host (uvicorn in a thread), for tests and the benchmark.

pcscd is shared with the reader tests' lab (tests/reader/pcsclab.py): when this process
already runs it (the reader tests' session fixture), it is reused; otherwise it is started
here under the same machine-wide lock and stopped again by :meth:`PcscStack.close`.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from pathlib import Path
from typing import Any

from card.cos import VirtualCard
from card.psam import VirtualPsam
from reader.vpcd import VpcdServer
from tests.reader.pcsclab import (
    INSTALL_HINT,
    OWNERFILE,
    PcscdLab,
    missing_tools,
    readers_now,
    running_pid,
)

CARD_READER, PSAM_READER = "Virtual PCD 00 00", "Virtual PCD 00 01"
PORTS = (35963, 35964)


def _parent_of(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def why_unavailable() -> str | None:
    missing = missing_tools()
    return f"missing {', '.join(missing)}; {INSTALL_HINT}" if missing else None


class HttpHost:
    """The host's HTTP server on a free local port (ledger.http)."""

    def __init__(self, url: str) -> None:
        import uvicorn

        from ledger.auth import TEST_SECRET
        from ledger.http import create_app
        from ledger.service import HostService

        self.db_url = url
        self.service = HostService.open(url)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        app = create_app(self.service, secret=TEST_SECRET)
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port,
                                                    log_level="error", access_log=False))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        for _ in range(250):
            if self.server.started:
                return
            time.sleep(0.02)
        raise RuntimeError("the HTTP host did not start")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self.server.should_exit = True
        self.thread.join(5)
        self.service.close()


class PcscStack:
    """pcscd (owned or shared), the served card and PSAM."""

    def __init__(self, log_dir: Path) -> None:
        self.lab: PcscdLab | None = None
        self.servers: list[VpcdServer] = []
        pid = running_pid()
        try:
            owner = int(OWNERFILE.read_text().strip())
        except (OSError, ValueError):
            owner = None
        if pid is not None and pid == owner and _parent_of(pid) == os.getpid():
            return  # this process's reader-test lab runs it: share it
        lab = PcscdLab(log_dir / "pcscd.log")
        lab.acquire()  # other test sessions on this machine take turns
        lab.reap_orphan()
        other = running_pid()
        if other is not None:
            lab.release()
            raise RuntimeError(f"another pcscd (pid {other}) runs on this machine; stop it")
        try:
            lab.start()
        except BaseException:
            lab.close()
            raise
        self.lab = lab

    def serve(self, card_image: Path, psam_image: Path) -> tuple[VirtualCard, VirtualPsam]:
        card = VirtualCard.from_image(card_image, t0=True)
        psam = VirtualPsam.from_image(psam_image, t0=True)
        for dev, port in ((card, PORTS[0]), (psam, PORTS[1])):
            server = VpcdServer(dev, port=port)
            server.start()
            self.servers.append(server)
            if not server.wait_connected(5):
                raise RuntimeError(f"vpcd did not take the card: {server.last_error}")
        self.wait_cards(True)
        return card, psam

    def wait_cards(self, present: bool, timeout: float = 5.0) -> None:
        from reader.errors import ReaderError
        from reader.pcsc import PcscTransport

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            t = PcscTransport()
            try:
                seen = {r.name: r.card_present for r in t.readers()}
            except ReaderError:
                seen = {}
            finally:
                t.close()
            if all(seen.get(r) is present for r in (CARD_READER, PSAM_READER)):
                return
            time.sleep(0.05)
        raise RuntimeError(f"pcscd did not see the cards {'arrive' if present else 'leave'}")

    def close(self) -> None:
        for server in self.servers:
            server.stop()
        if self.servers and readers_now() is not None:
            with contextlib.suppress(RuntimeError):
                self.wait_cards(False)
        self.servers.clear()
        if self.lab is not None:
            self.lab.close()
            self.lab = None


def open_stack(log_dir: Path) -> Any:
    return PcscStack(log_dir)

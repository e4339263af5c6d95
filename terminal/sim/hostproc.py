"""Processes the fault harnesses start, kill and restart: ``sscard host serve`` and a private
PostgreSQL cluster.

:class:`HostProcess` runs ``python -m terminal host serve --db URL --listen 127.0.0.1:PORT``
as a child in its own session, waits until it answers, kills it with SIGKILL (the nemesis of
the bank test) and starts it again on the same port. :class:`PrivateCluster` is a throwaway
PostgreSQL cluster (``initdb`` + ``pg_ctl`` in a temporary directory, on a free loopback
port, run as the ``postgres`` OS user when we are root); :meth:`PrivateCluster.crash` stops
it with ``pg_ctl -m immediate`` (no shutdown checkpoint: recovery replays the WAL at the next
start, as after a crash). Nothing here touches a server it did not start.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


class ProcessError(RuntimeError):
    """A harness process did not start or stop as expected; the message says why."""


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where Ctrl-C would be: the same clean-up, then exit status 143
    (128 + SIGTERM) where Ctrl-C gives 130."""


def raise_interrupt(signum: int, frame: object) -> None:
    """A SIGTERM handler that stops the main thread as Ctrl-C does, once: a second SIGTERM
    (``timeout`` signals the process and then its whole group) must not cut short the
    clean-up the first one started."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise Terminated


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM raises :class:`KeyboardInterrupt` as Ctrl-C does, so a
    harness stopped with ``kill`` or ``timeout`` runs the same clean-up (its child servers
    stopped, its temporary directories removed). Only the main thread can do this; elsewhere
    the block runs unchanged."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, raise_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def free_port() -> int:
    """A free TCP port on the loopback interface."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


class HostProcess:
    """``sscard host serve`` as a child process (loopback only)."""

    def __init__(self, db_url: str, *, port: int | None = None,
                 log_path: Path | None = None, workers: int = 1) -> None:
        self.db_url = db_url
        self.workers = workers
        self.port = port or free_port()
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.kills = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> None:
        """Start the server and wait until its port accepts connections."""
        if self.alive():
            return
        cmd = [sys.executable, "-m", "terminal", "host", "serve", "--db", self.db_url,
               "--listen", f"127.0.0.1:{self.port}"]
        if self.workers > 1:
            cmd += ["--workers", str(self.workers)]
        if self.log_path is not None:
            with open(self.log_path, "ab") as log:
                self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=log,
                                             stdin=subprocess.DEVNULL, start_new_session=True)
        else:
            self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
                                         start_new_session=True)
        self.starts += 1
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ProcessError(f"sscard host serve exited with {self.proc.returncode} "
                                   f"(log: {self.log_path or 'not kept'})")
            if _port_open(self.port):
                return
            time.sleep(0.05)
        self.kill()
        raise ProcessError(f"sscard host serve did not listen on {self.port} within "
                           f"{timeout:g} s")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL the server and its worker processes (no shutdown of any kind) and reap
        it."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)   # its own session: workers included
            self.kills += 1
        self.proc.wait(10)
        self.proc = None

    def stop(self) -> None:
        """A polite stop (SIGTERM, then SIGKILL after 10 s)."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()
                return
        self.proc = None


def postgres_bin() -> Path | None:
    """The directory of the newest PostgreSQL server binaries, if installed."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


class PrivateCluster:
    """A throwaway PostgreSQL cluster this process owns (never the machine's own server)."""

    def __init__(self) -> None:
        bindir = postgres_bin()
        if bindir is None:
            raise ProcessError("PostgreSQL server binaries (initdb, pg_ctl) are not installed: "
                               "apt-get install postgresql")
        self.bin = bindir
        self.dir = Path(tempfile.mkdtemp(prefix="sscard-sim-pg-"))
        self.port = free_port()
        self.as_postgres = os.geteuid() == 0
        if self.as_postgres:
            shutil.chown(self.dir, "postgres", "postgres")
        self.restarts = 0

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str, timeout: float = 120) -> None:
        cmd = [str(self.bin / args[0]), *args[1:]]
        if self.as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        done = subprocess.run(cmd, capture_output=True, timeout=timeout, check=False)
        if done.returncode != 0:
            raise ProcessError(f"{args[0]} failed: {done.stderr.decode(errors='replace')[-300:]}")

    def start(self) -> str:
        data = self.dir / "data"
        if not data.exists():
            self._run("initdb", "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync")
        self._run("pg_ctl", "-D", str(data), "-w", "-t", "60", "-l", str(self.dir / "log"),
                  "-o", f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 "
                  "-c max_connections=200", "start")
        return self.url

    def crash(self) -> None:
        """Stop without a shutdown checkpoint (``-m immediate``): the next start recovers."""
        self._run("pg_ctl", "-D", str(self.dir / "data"), "-m", "immediate", "-w", "stop")

    def restart(self) -> None:
        """Crash and start again (the nemesis' database restart)."""
        self.crash()
        self.start()
        self.restarts += 1

    def stop(self, remove: bool = True) -> None:
        """Stop the server; remove its directory unless ``remove`` is false (post-mortem:
        start it again with ``pg_ctl -D <dir>/data start``)."""
        try:
            if (self.dir / "data" / "postmaster.pid").exists():
                self._run("pg_ctl", "-D", str(self.dir / "data"), "-m", "fast", "stop")
        finally:
            if remove:
                shutil.rmtree(self.dir, ignore_errors=True)

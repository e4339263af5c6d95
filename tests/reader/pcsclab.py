"""The pcscd lab for tests: the real daemon with the vpcd driver, started as a direct child.

spec/pcsc-lab.md: one pcscd per machine (fixed socket ``/run/pcscd/pcscd.comm``); start it
as a direct child and *wait* for it after stopping it (a killed but unreaped pcscd keeps its
pid alive and the next start refuses). Ready = the socket exists and listing readers
succeeds. Test sessions on the same machine take turns through a file lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import IO

SOCKET = Path("/run/pcscd/pcscd.comm")
PIDFILE = Path("/run/pcscd/pcscd.pid")
LOCKFILE = Path("/tmp/sscard-pcscd.lock")
OWNERFILE = Path("/tmp/sscard-pcscd.owner")
VPCD_DRIVER = Path("/usr/lib/pcsc/drivers/serial/libifdvpcd.so")
VPCD_READERS = ("Virtual PCD 00 00", "Virtual PCD 00 01")
INSTALL_HINT = (
    "install the PC/SC lab: apt-get install -y --no-install-recommends pcscd "
    "vsmartcard-vpcd pcsc-tools opensc libpcsclite-dev (scripts/bootstrap.sh does it), "
    "and pip install pyscard"
)


def missing_tools() -> list[str]:
    """What the lab needs that this machine lacks."""
    out = []
    if shutil.which("pcscd") is None:
        out.append("pcscd")
    if not VPCD_DRIVER.exists() and not any(Path("/etc/reader.conf.d").glob("*vpcd*")):
        out.append("vsmartcard-vpcd")
    try:
        import smartcard.scard  # noqa: F401
    except ImportError:
        out.append("pyscard")
    return out


def _alive(pid: int) -> bool:
    """True for a running (not zombie) process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def running_pid() -> int | None:
    """The pid of a live pcscd per its pid file (the file ends in a NUL byte), else None."""
    try:
        text = PIDFILE.read_bytes().replace(b"\x00", b"").strip()
        pid = int(text)
    except (OSError, ValueError):
        return None
    if not _alive(pid):
        return None
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return pid if b"pcscd" in cmd else None


def readers_now() -> list[str] | None:
    """The PC/SC readers, or None while pcscd does not answer (fresh context each call)."""
    from smartcard import scard

    hr, ctx = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    if hr != 0:
        return None
    try:
        hr, names = scard.SCardListReaders(ctx, [])
        if hr == 0:
            return list(names)
        if hr & 0xFFFFFFFF == 0x8010002E:  # no readers available
            return []
        return None
    finally:
        scard.SCardReleaseContext(ctx)


class PcscdLab:
    """Start, stop, kill and restart the machine's pcscd for a test session."""

    def __init__(self, log_path: Path) -> None:
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None
        self.external_pid: int | None = None
        self._lock_fd: IO[str] | None = None
        self._log: IO[bytes] | None = None
        self.starts = 0

    # -- the machine-wide lock -------------------------------------------------------------
    def acquire(self, timeout: float = 240.0) -> None:
        """Take the lab lock (another test session on this machine may hold it)."""
        fd = LOCKFILE.open("a+")
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    fd.close()
                    raise TimeoutError("another test session holds the pcscd lab lock") from None
                time.sleep(0.2)
        self._lock_fd = fd

    def release(self) -> None:
        if self._lock_fd is not None:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            self._lock_fd.close()
            self._lock_fd = None

    def reap_orphan(self) -> None:
        """Stop a pcscd left by an earlier lab session that died (its pid is recorded)."""
        pid = running_pid()
        try:
            recorded = int(OWNERFILE.read_text().strip())
        except (OSError, ValueError):
            return
        if pid is not None and pid == recorded:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 5
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.05)
        with contextlib.suppress(OSError):
            OWNERFILE.unlink()

    # -- the daemon ------------------------------------------------------------------------
    @property
    def owned(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout: float = 10.0) -> None:
        """Start pcscd in the foreground as a child and wait until it answers."""
        if self.owned:
            return
        other = running_pid()
        if other is not None:
            raise RuntimeError(f"another pcscd (pid {other}) is running; stop it first")
        if PIDFILE.exists():
            # a pcscd that died (or a zombie nobody reaped yet) leaves its pid file: pcscd
            # refuses to start while that pid looks alive, so clear the stale files first
            with contextlib.suppress(OSError):
                PIDFILE.unlink()
            with contextlib.suppress(OSError):
                SOCKET.unlink()
        args = ["pcscd", "--foreground"]
        help_text = subprocess.run(["pcscd", "--help"], capture_output=True, text=True).stdout
        if "--disable-polkit" in help_text:
            args.append("--disable-polkit")
        if self._log is None:
            self._log = self.log_path.open("ab")
        self.proc = subprocess.Popen(args, stdout=self._log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        OWNERFILE.write_text(str(self.proc.pid))
        self.starts += 1
        self.wait_ready(timeout)

    def wait_ready(self, timeout: float = 10.0) -> list[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"pcscd exited with {self.proc.returncode}: "
                                   f"{self.log_tail()}")
            if SOCKET.exists():
                names = readers_now()
                if names is not None and all(r in names for r in VPCD_READERS):
                    return names
            time.sleep(0.02)
        raise TimeoutError(f"pcscd not ready after {timeout}s: {self.log_tail()}")

    def stop(self) -> None:
        """SIGTERM, then wait (reap) so the next start is accepted."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None
        with contextlib.suppress(OSError):
            OWNERFILE.unlink()

    def kill(self) -> None:
        """SIGKILL (as a crash would), and reap; the socket and pid files stay behind."""
        if self.proc is None:
            return
        self.proc.kill()
        self.proc.wait(5)
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def ensure_running(self) -> None:
        if not self.owned:
            self.start()

    def log_tail(self, lines: int = 15) -> str:
        try:
            return " | ".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def close(self) -> None:
        self.stop()
        if self._log is not None:
            self._log.close()
            self._log = None
        self.release()

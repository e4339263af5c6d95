"""A background monitor turning a transport's card events into callbacks.

It never dies silently: a failure of the transport (pcscd gone, a reader unplugged) is
logged, counted in :attr:`ReaderMonitor.errors`, and retried with a growing pause, while the
transport itself reports readers leaving and coming back (``reader_removed`` /
``reader_added``) — see :meth:`reader.pcsc.PcscTransport.wait_for_event`.
"""

from __future__ import annotations

import logging
import threading

from reader.base import CardEvent, EventCallback, Transport
from reader.errors import ReaderError

log = logging.getLogger(__name__)


class ReaderMonitor:
    """Run ``transport.wait_for_event`` in a thread and pass each event to ``callback``."""

    def __init__(self, transport: Transport, callback: EventCallback, *, poll: float = 0.25,
                 backoff: tuple[float, float] = (0.1, 2.0)) -> None:
        self.transport = transport
        self.callback = callback
        self.poll = poll
        self._backoff = backoff
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.errors = 0
        self.last_error = ""
        self.events: list[CardEvent] = []
        """Every event delivered so far (newest last)."""

    def start(self) -> ReaderMonitor:
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="reader-monitor", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def __enter__(self) -> ReaderMonitor:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        delay = self._backoff[0]
        while not self._stop.is_set():
            try:
                events = self.transport.wait_for_event(self.poll)
                delay = self._backoff[0]
            except ReaderError as exc:
                self._failed(exc, logging.INFO)
                self._stop.wait(delay)
                delay = min(delay * 2, self._backoff[1])
                continue
            except Exception as exc:  # keep watching whatever happens; say what went wrong
                self._failed(exc, logging.ERROR)
                self._stop.wait(delay)
                delay = min(delay * 2, self._backoff[1])
                continue
            for event in events:
                self.events.append(event)
                try:
                    self.callback(event)
                except Exception:
                    log.exception("reader monitor callback failed on %s", event)

    def _failed(self, exc: BaseException, level: int) -> None:
        self.errors += 1
        self.last_error = f"{type(exc).__name__}: {exc}"
        log.log(level, "reader monitor: %s (retrying)", self.last_error)

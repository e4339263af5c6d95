"""The T=0 transport rules, in one place (ISO 7816-3 §10.3 and §12.2, spec/card.md §2).

Terminal side: :class:`T0Exchange` turns one command APDU into the TPDUs T=0 needs and folds
the card's answers back into one response APDU; :func:`transceive` drives it over any
``send(tpdu) -> answer`` callable. Card side: :class:`T0CardAdapter` turns a card's complete
answer into what a T=0 card says (``61xx`` / ``6Cxx``) and serves GET RESPONSE.

Rules implemented (each cited where it is applied):

* TPDU mapping (ISO 7816-3 §12.2.2–12.2.5): case 1 sends P3 = 00; case 2 sends P3 = Le;
  cases 3 and 4 send Lc ‖ data (Le is not transmitted).
* ``61xx`` (ISO 7816-4 §5.1.3, ISO 7816-3 §12.2.5, spec/card.md §2): GET RESPONSE with the
  same CLA and P3 = xx, repeated while the card keeps answering ``61xx``; the data is
  accumulated.
* ``6Cxx`` (ISO 7816-4 §5.1.3, ISO 7816-3 §12.2.3): resend the same header with P3 = xx,
  once per request.
* Case 4 warning (EMV Book 1 §9.3.1, case 4): a ``62xx``/``63xx`` answer to a case-4
  header+data is followed by GET RESPONSE with P3 = 00; data then returned carries the
  warning status.
  When the card has nothing to give (ISO 7816-3:2006 case 4S.4 cards pass the warning on
  unchanged), the fetch fails and the warning alone is the answer, so both behaviours work.

>>> card = T0CardAdapter()
>>> def send(tpdu: bytes) -> bytes:
...     served = card.intercept(tpdu)
...     if served is not None:
...         return served
...     cmd = CommandApdu.from_bytes(tpdu)
...     return card.respond(cmd, ResponseApdu(b"\\x01\\x02\\x03", 0x9000))
>>> transceive(bytes.fromhex("00B2070400"), send).hex()
'0102039000'
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum

from apdu.command import CommandApdu
from apdu.errors import ApduError
from apdu.response import ResponseApdu

INS_GET_RESPONSE = 0xC0
SW_OK = 0x9000
SW_CONDITIONS_NOT_SATISFIED = 0x6985
SW_WRONG_LENGTH = 0x6700
DEFAULT_MAX_ROUNDS = 300


class _Phase(Enum):
    COMMAND = "command"  # the command's own TPDU is outstanding
    FETCH = "fetch"  # a GET RESPONSE after 61xx is outstanding
    WARNING_FETCH = "warning"  # a GET RESPONSE after a case-4 warning is outstanding
    DONE = "done"


def _p3(n: int) -> int:
    return n & 0xFF  # 256 → 00 (ISO 7816-3 §10.3.2)


class T0Exchange:
    """Pure state machine for one command APDU over T=0.

    Use: ``while (tpdu := ex.next_tpdu()) is not None: ex.feed(send(tpdu))``; then
    ``ex.result`` holds the response APDU. ``get_response_cla`` is the class byte of the
    GET RESPONSE commands (default: the command's own class). ``max_rounds`` bounds the
    number of TPDUs (a card that answers ``61xx`` forever raises :class:`ApduError`).
    """

    def __init__(self, command: CommandApdu | bytes, *, get_response_cla: int | None = None,
                 max_rounds: int = DEFAULT_MAX_ROUNDS) -> None:
        cmd = command if isinstance(command, CommandApdu) else CommandApdu.from_bytes(command)
        if len(cmd.data) > 255:
            raise ApduError(f"{len(cmd.data)} bytes of command data need ENVELOPE under T=0, "
                            "which is not supported", SW_WRONG_LENGTH)
        self.command = cmd
        self.gr_cla = cmd.cla if get_response_cla is None else get_response_cla
        self.max_rounds = max_rounds
        self.rounds = 0
        self._data = bytearray()
        self._warning: int | None = None
        self._resent = False
        self._result: ResponseApdu | None = None
        self._phase = _Phase.COMMAND
        self._pending: bytes | None = self._first_tpdu()

    # ISO 7816-3 §12.2.2-12.2.5: the command TPDU of each case
    def _first_tpdu(self) -> bytes:
        c = self.command
        if c.data:
            return c.header + bytes((len(c.data),)) + c.data
        if c.le is None:
            return c.header + b"\x00"
        return c.header + bytes((_p3(min(c.le, 256)),))

    def _get_response(self, n: int) -> bytes:
        return bytes((self.gr_cla, INS_GET_RESPONSE, 0x00, 0x00, _p3(n)))

    @property
    def done(self) -> bool:
        return self._phase is _Phase.DONE

    @property
    def result(self) -> ResponseApdu | None:
        """The response APDU once the exchange is finished, else None."""
        return self._result

    def next_tpdu(self) -> bytes | None:
        """The TPDU to send now; None when the exchange is finished."""
        return self._pending

    def _finish(self, sw: int) -> None:
        self._result = ResponseApdu(bytes(self._data), sw)
        self._phase = _Phase.DONE
        self._pending = None

    def feed(self, response: bytes) -> None:
        """Take the card's answer to the TPDU from :meth:`next_tpdu`."""
        if self._pending is None:
            raise ApduError("T=0 exchange is finished; nothing was sent to answer")
        rsp = ResponseApdu.from_bytes(response)
        self.rounds += 1
        self._step(self._pending, rsp)
        if self._pending is not None and self.rounds >= self.max_rounds:
            self._phase = _Phase.DONE
            self._pending = None
            raise ApduError(f"T=0 exchange gave up after {self.rounds} rounds "
                            f"(last status {rsp.sw:04X})")

    def _step(self, sent: bytes, rsp: ResponseApdu) -> None:
        sw1, sw2 = rsp.sw1, rsp.sw2
        if sw1 == 0x6C and not self._resent:
            # ISO 7816-3 §12.2.3: wrong P3; resend the same header with P3 = SW2, once.
            self._resent = True
            if sent[1] == INS_GET_RESPONSE and self._phase is not _Phase.COMMAND:
                self._pending = sent[:4] + bytes((sw2,))
                return
            if not self.command.data:
                self._pending = sent[:4] + bytes((sw2,))
                return
        self._resent = False
        self._data += rsp.data
        if sw1 == 0x61:
            # ISO 7816-4 §5.1.3 / spec/card.md §2: fetch the waiting bytes with GET RESPONSE.
            self._phase = _Phase.FETCH
            self._pending = self._get_response(sw2 or 256)
            return
        if (self._phase is _Phase.COMMAND and self.command.data and self.command.le is not None
                and sw1 in (0x62, 0x63) and not rsp.data):
            # EMV Book 1 §9.3.1, case 4: a warning to a case-4 command; data may be waiting.
            self._warning = rsp.sw
            self._phase = _Phase.WARNING_FETCH
            self._pending = self._get_response(256)
            return
        if self._warning is not None and (rsp.sw == SW_OK or not self._data):
            # After a case-4 warning the final status is the warning, whether the fetch
            # brought data with 9000 or failed with nothing to give.
            self._finish(self._warning)
            return
        self._finish(rsp.sw)


def transceive(command: bytes | CommandApdu, send: Callable[[bytes], bytes], *,
               get_response_cla: int | None = None,
               max_rounds: int = DEFAULT_MAX_ROUNDS) -> bytes:
    """Exchange one command APDU over T=0 through ``send`` and return the response APDU bytes.

    ``send`` moves one TPDU and returns the card's answer (data ‖ SW1 SW2).
    """
    ex = T0Exchange(command, get_response_cla=get_response_cla, max_rounds=max_rounds)
    while (tpdu := ex.next_tpdu()) is not None:
        ex.feed(send(tpdu))
    result = ex.result
    assert result is not None
    return result.to_bytes()


class T0CardAdapter:
    """Card side of T=0: wraps a card's complete answer into T=0 behaviour.

    A card computes the full response to a command as if the transport were T=1; the
    adapter decides what goes on the wire (ISO 7816-3 §12.2, spec/card.md §2, §4):

    1. For every incoming TPDU call :meth:`intercept` first. If it returns bytes, that is
       the answer (a GET RESPONSE served from the buffer); send it and stop. Otherwise the
       TPDU is a new command: any buffered data is discarded.
    2. Process the command normally, then call :meth:`respond` with the parsed command and
       the complete :class:`ResponseApdu`; send what it returns.

    What :meth:`respond` answers:

    * no response data → the status word as is;
    * command without data (case 1/2, P3 = Le): P3 equal to the data length → data ‖ SW
      directly; otherwise ``6Cxx`` with the exact length, nothing buffered (the terminal
      resends the same command; the card recomputes the answer);
    * command with data (case 3/4): the data is buffered; a ``62xx``/``63xx`` warning is
      answered as is (the data comes with ``9000`` on GET RESPONSE), any other status as
      ``61xx``; GET RESPONSE then serves P3 bytes followed by ``61yy`` while more is left
      and by the final status word at the end; a P3 larger than what is left gets ``6Cxx``.

    GET RESPONSE is recognised by INS C0 under any class. With nothing buffered it answers
    ``6985``. Call :meth:`reset` on power-off and reset.
    """

    def __init__(self) -> None:
        self._buffer = b""
        self._final_sw: int | None = None

    def reset(self) -> None:
        self._buffer = b""
        self._final_sw = None

    @property
    def pending(self) -> int:
        """Number of buffered bytes waiting for GET RESPONSE."""
        return len(self._buffer) if self._final_sw is not None else 0

    def intercept(self, tpdu: bytes) -> bytes | None:
        """Serve a GET RESPONSE TPDU; None for any other command (which clears the buffer)."""
        raw = bytes(tpdu)
        if len(raw) >= 2 and raw[1] == INS_GET_RESPONSE:
            if len(raw) != 5:
                return SW_WRONG_LENGTH.to_bytes(2, "big")
            return self._serve(raw[4] or 256)
        self.reset()
        return None

    def _serve(self, p3: int) -> bytes:
        if self._final_sw is None:
            return SW_CONDITIONS_NOT_SATISFIED.to_bytes(2, "big")
        left = len(self._buffer)
        if p3 > left:
            return (0x6C00 | (left & 0xFF)).to_bytes(2, "big")
        chunk, self._buffer = self._buffer[:p3], self._buffer[p3:]
        if self._buffer:
            return chunk + (0x6100 | (min(len(self._buffer), 256) & 0xFF)).to_bytes(2, "big")
        sw = self._final_sw
        self.reset()
        return chunk + sw.to_bytes(2, "big")

    def respond(self, command: CommandApdu, full: ResponseApdu) -> bytes:
        """What the card sends for ``command`` given its complete answer ``full``."""
        self.reset()
        if not full.data:
            return full.to_bytes()
        n = len(full.data)
        if not command.data:
            p3 = command.le if command.le is not None else 256
            if p3 == n:
                return full.to_bytes()
            if n > 256 and p3 == 256:
                self._buffer, self._final_sw = full.data[256:], full.sw
                left = len(self._buffer)
                return full.data[:256] + (0x6100 | (min(left, 256) & 0xFF)).to_bytes(2, "big")
            if n > 256:
                return (0x6C00).to_bytes(2, "big")
            return (0x6C00 | (n & 0xFF)).to_bytes(2, "big")
        if full.sw >> 8 in (0x62, 0x63):
            self._buffer, self._final_sw = full.data, SW_OK
            return full.sw.to_bytes(2, "big")
        self._buffer, self._final_sw = full.data, full.sw
        return (0x6100 | (min(n, 256) & 0xFF)).to_bytes(2, "big")

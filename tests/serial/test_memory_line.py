"""SerialConnection against the served card's line engine in memory, under hypothesis.

A :class:`MemoryPort` stands in for the UART: what the reader writes goes to a
:class:`reader.serial_device.CardLine`, what the card emits comes back in random chunk sizes.
Random valid ATRs (both conventions, TA1 with and without PPS, any WI), random procedure-byte
styles and echo settings must all give the same answers.
"""

from __future__ import annotations

import random
import threading
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apdu import atr as atr_codec
from apdu import commands as C
from reader.iso7816_3 import rate_for
from reader.serial import SerialConnection, SerialTransport
from reader.serial_device import CardLine, Faults, LineOptions
from tests.serial.tinycard import FCI, RECORDS, TinyCard

pytestmark = pytest.mark.timeout(120)
BAUD = 115200


class MemoryPort:
    """The parts of a pyserial port that SerialConnection uses, wired to a CardLine."""

    def __init__(self, card: TinyCard, options: LineOptions, seed: int) -> None:
        self._cond = threading.Condition()
        self._rx = bytearray()
        self._rng = random.Random(seed)
        self.timeout = 0.02
        self._baudrate = options.baud
        self._parity = "E"
        self.stopbits = 2
        self._rts = False
        self.line = CardLine(card, self._emit, options, Faults(), lambda: None)
        self.line.settings(baud=self._baudrate, parity=self._parity)

    def _emit(self, data: bytes) -> None:
        with self._cond:
            self._rx += data
            self._cond.notify_all()

    @property
    def baudrate(self) -> int:
        return self._baudrate

    @baudrate.setter
    def baudrate(self, value: int) -> None:
        self._baudrate = value
        self.line.settings(baud=value)

    @property
    def parity(self) -> str:
        return self._parity

    @parity.setter
    def parity(self, value: str) -> None:
        self._parity = value
        self.line.settings(parity=value)

    @property
    def rts(self) -> bool:
        return self._rts

    @rts.setter
    def rts(self, value: bool) -> None:
        self._rts = value
        self.line.set_reset(value)

    def read(self, n: int) -> bytes:
        with self._cond:
            if not self._rx:
                self._cond.wait(self.timeout)
            take = min(n, len(self._rx), self._rng.randint(1, 7))
            out = bytes(self._rx[:take])
            del self._rx[:take]
            return out

    def write(self, data: bytes) -> int:
        for byte in data:
            self.line.receive(byte)
        return len(data)

    def flush(self) -> None:
        """Writes are delivered at once."""

    def reset_input_buffer(self) -> None:
        with self._cond:
            self._rx.clear()

    def reset_output_buffer(self) -> None:
        """Nothing is buffered for output."""

    def close(self) -> None:
        self.line.close()


class MemoryTransport(SerialTransport):
    def __init__(self, port: MemoryPort, **options: Any) -> None:
        super().__init__("memory://card", baud=BAUD, latency=0.05, **options)
        self.port = port

    def _open_port(self, exclusive: bool = True) -> Any:
        return self.port


_TA1 = st.none() | st.sampled_from([0x11, 0x12, 0x13, 0x18, 0x94, 0x95, 0x96, 0x32])


@st.composite
def t0_atrs(draw: st.DrawFn) -> bytes:
    return atr_codec.build(
        draw(st.binary(max_size=15)),
        draw(st.sampled_from([(0,), (0, 1)])),
        ta1=draw(_TA1),
        tc1=draw(st.none() | st.integers(0, 255)),
        tc2=draw(st.none() | st.integers(1, 255)),
        convention=draw(st.sampled_from(["direct", "inverse"])),
    )


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(atr=t0_atrs(), byte_by_byte=st.booleans(), echo=st.booleans(),
       reader_echo=st.sampled_from(["auto", "match"]), pps=st.booleans(),
       seed=st.integers(0, 2**32 - 1))
def test_any_card_line_reads_the_same(atr: bytes, byte_by_byte: bool, echo: bool,
                                      reader_echo: str, pps: bool, seed: int) -> None:
    card = TinyCard(atr)
    options = LineOptions(baud=BAUD, echo=echo, byte_by_byte=byte_by_byte, pps=True)
    port = MemoryPort(card, options, seed)
    transport = MemoryTransport(port, pps=pps, echo="auto" if reader_echo == "auto" else echo)
    conn: SerialConnection = transport.connect(transport.name)
    try:
        assert conn.atr() == atr
        parsed = atr_codec.parse(atr)
        ta1 = parsed.ta(1)
        negotiated = pps and ta1 is not None and ta1 != 0x11
        assert conn.rate == (rate_for(BAUD, parsed.fi, parsed.di) if negotiated else BAUD)
        assert conn.transmit(C.select_ssse()).data == FCI
        assert conn.transmit(C.select_ef(C.EF05)).sw == 0x9000
        tag, value = RECORDS[0xEF05][2]
        assert conn.transmit(C.read_record_by_tag(tag)).data == bytes([tag, len(value)]) + value
        assert conn.transmit(C.verify("999999")).sw == 0x63C2
    finally:
        conn.disconnect()

"""``sscard card serve FILE --serial URL`` serves a card image that SerialTransport reads."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from apdu import commands as C
from reader.serial import SerialTransport

pytestmark = pytest.mark.timeout(60)
FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "cards" / "wang-wu.json"


@pytest.mark.parametrize("where", ["rfc2217://127.0.0.1:0", "pty"])
def test_cli_serves_a_card_image_on_a_serial_line(where: str, tmp_path: Path) -> None:
    image = tmp_path / "card.json"
    shutil.copy(FIXTURE, image)  # the served image records PIN counters: use a copy
    proc = subprocess.Popen(
        [sys.executable, "-m", "terminal", "card", "serve", str(image), "--serial", where,
         "--remove-after", "30"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout is not None and proc.stderr is not None
        line = proc.stdout.readline()
        assert line.startswith("serving 王五"), line + proc.stderr.read()
        url = line.split()[-1]
        name = f"serial:{url}" + ("?reset=flush" if where == "pty" else "")
        transport = SerialTransport.from_name(name)
        with transport.connect(transport.name) as conn:
            assert conn.transmit(C.select_ssse()).sw == 0x9000
            assert conn.transmit(C.select_ef(C.EF06)).sw == 0x9000
            assert conn.transmit(C.read_record_by_tag(0x08)).data[2:] == b"370826195507080016"
            assert conn.transmit(C.verify("000000")).sw == 0x63C2
    finally:
        proc.terminate()
        proc.wait(10)

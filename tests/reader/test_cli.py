"""The reader commands of the CLI over in-process virtual readers, and the name resolver."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pytest

from reader.echo import EchoCard
from reader.errors import NoReader
from reader.virtual import VirtualTransport
from terminal.cli import main
from terminal.core import readers as R

ROOT = Path(__file__).resolve().parents[2]
CARDS = ROOT / "fixtures" / "cards"
SELECT = "00A404000F7378312E73682EC9E7BBE1B1A3D5CF"


@pytest.fixture
def card(tmp_path: Path) -> str:
    shutil.copy(CARDS / "zhang-san.json", tmp_path / "zs.json")
    return f"virtual:{tmp_path / 'zs.json'}"


def run(argv: list[str], capsys: pytest.CaptureFixture[str], stdin: str = "",
        monkeypatch: pytest.MonkeyPatch | None = None) -> tuple[int, str, str]:
    if monkeypatch is not None:
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    rc = main(argv)
    out, err = capsys.readouterr()
    return rc, out, err


def test_read_line_and_json(card: str, capsys: pytest.CaptureFixture[str],
                            tmp_path: Path) -> None:
    rc, out, _ = run(["read", "-r", card, "--device", "T1"], capsys)
    assert rc == 0
    assert out.strip() == ("370800|370802198001011235|J00000017|370800D156000005000000013534A81B"
                           "|张三|00814A44468660370800000001|3.00|20240506|20340506|"
                           "370800000001|T1|")
    photo = tmp_path / "p.jpg"
    rc, out, _ = run(["read", "-r", card, "--json", "--photo", str(photo)], capsys)
    doc = json.loads(out)
    assert rc == 0 and doc["name"] == "张三" and doc["authenticated"] is True
    assert doc["holder"]["birth_date"] == "19800101"
    assert photo.read_bytes()[:2] == b"\xff\xd8"


def test_read_without_psam_is_a_clear_error(card: str,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = run(["read", "-r", card, "--psam", "none"], capsys)
    assert rc == 1 and out == ""
    assert err.startswith("sscard: ") and "(code -2201)" in err and "Traceback" not in err


def test_bad_reader_names(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    rc, _, err = run(["read", "-r", f"virtual:{tmp_path / 'nope.json'}"], capsys)
    assert rc == 1 and "cannot load the card image" in err and "does not exist" in err
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    rc, _, err = run(["read", "-r", f"virtual:{broken}"], capsys)
    assert rc == 1 and "cannot" in err
    rc, _, err = run(["read", "-r", "virtual:"], capsys)
    assert rc == 1 and "needs a card image path" in err


def test_apdu_command_line_and_script(card: str, capsys: pytest.CaptureFixture[str],
                                      tmp_path: Path) -> None:
    rc, out, _ = run(["apdu", "-r", card, SELECT, "00 84 00 00 04", "00200000 03 123456"],
                     capsys)
    assert rc == 3  # the wrong PIN answered 63C2
    assert "(SELECT)" in out and "< 6F 1C 84 0F" in out and "9000  success" in out
    assert "> 00 20 00 00 03 00 00 00  (VERIFY)" in out  # the PIN is not echoed
    assert "63C2  wrong PIN, 2 tries left" in out
    script = tmp_path / "s.apdu"
    script.write_text(f"# select\n{SELECT}\nreset\n00A4020002EF05  # no DF selected now\n")
    rc, out, _ = run(["apdu", "-r", card, "--script", str(script)], capsys)
    assert rc == 3 and "reset -> ATR" in out
    assert out.rstrip().endswith("6A82  file not found") or "6A82" in out
    rc, out, _ = run(["apdu", "-r", card, "--raw", "00A404000F" + SELECT[10:]], capsys)
    assert "< 6F 1C" in out  # an in-process card answers whole responses even raw


def test_apdu_rejects_bad_input(card: str, capsys: pytest.CaptureFixture[str],
                                tmp_path: Path) -> None:
    script = tmp_path / "bad.apdu"
    script.write_text("00A4\n")
    rc, _, err = run(["apdu", "-r", card, "--script", str(script)], capsys)
    assert rc == 1 and "line 1: not a command APDU" in err
    rc, _, err = run(["apdu", "-r", card, "zz"], capsys)
    assert rc == 1 and "not a command APDU" in err
    rc, _, err = run(["apdu", "-r", card], capsys)
    assert rc == 1 and "no APDU given" in err


def test_pin_commands(card: str, capsys: pytest.CaptureFixture[str],
                      monkeypatch: pytest.MonkeyPatch) -> None:
    rc, out, _ = run(["pin", "tries", "-r", card], capsys)
    assert rc == 0 and out.strip() == "3 tries left"
    rc, _, err = run(["pin", "verify", "-r", card], capsys, "000000\n", monkeypatch)
    assert rc == 1 and "2 tries left" in err and "(code -51)" in err
    rc, out, _ = run(["pin", "verify", "-r", card], capsys, "246810\n", monkeypatch)
    assert rc == 0 and "PIN verified" in out
    rc, _, err = run(["pin", "change", "-r", card], capsys, "246810\n111111\n111112\n",
                     monkeypatch)
    assert rc == 1 and "(code -34)" in err
    rc, out, _ = run(["pin", "change", "-r", card], capsys, "246810\n111111\n111111\n",
                     monkeypatch)
    assert rc == 0 and "PIN changed" in out
    rc, out, _ = run(["pin", "reload", "-r", card], capsys, "222222\n222222\n", monkeypatch)
    assert rc == 0 and "PIN reloaded" in out
    rc, out, _ = run(["pin", "verify", "-r", card], capsys, "222222\n", monkeypatch)
    assert rc == 0
    rc, _, err = run(["pin", "verify", "-r", card], capsys, "", monkeypatch)
    assert rc == 1 and "(code -31)" in err


def test_pin_is_not_a_command_line_argument(card: str) -> None:
    with pytest.raises(SystemExit):
        main(["pin", "verify", "-r", card, "246810"])


def test_readers_and_watch_on_a_virtual_reader(card: str,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = run(["readers", "-r", card], capsys)
    assert rc == 0 and "Virtual Card 0" in out and "Virtual PSAM 0" in out
    assert "3B ED 00 00" in out
    rc, out, _ = run(["readers", "-r", card, "--json"], capsys)
    assert json.loads(out)[0]["card_present"] is True
    rc, out, _ = run(["watch", "-r", card, "--timeout", "0.5"], capsys)
    assert rc == 0 and "Virtual Card 0: inserted  ATR 3B ED" in out


def test_replay_command(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                        tmp_path: Path) -> None:
    shutil.copy(CARDS / "wang-wu.json", tmp_path / "ww.json")
    trace = str(ROOT / "fixtures" / "reader" / "wang-wu-read.trace")
    rc, out, _ = run(["replay", trace, "-r", f"virtual:{tmp_path / 'ww.json'}"], capsys,
                     "135790\n", monkeypatch)
    assert rc == 0 and "21 exchanges replayed, all responses as expected" in out
    bad = tmp_path / "bad.trace"
    bad.write_text("0.0 >> 00A4\n")
    rc, _, err = run(["replay", str(bad), "-r", f"virtual:{tmp_path / 'ww.json'}"], capsys)
    assert rc == 1 and "line 1" in err


def test_serve_errors(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    rc, _, err = run(["card", "serve"], capsys)
    assert rc == 1 and "nothing to serve" in err
    rc, _, err = run(["card", "serve", str(tmp_path / "missing.json")], capsys)
    assert rc == 1 and "does not exist" in err
    rc, _, err = run(["card", "serve", "--echo", "--vpcd", "host:port"], capsys)
    assert rc == 1 and "bad vpcd port" in err


def test_trace_option_writes_a_masked_trace(card: str, capsys: pytest.CaptureFixture[str],
                                            monkeypatch: pytest.MonkeyPatch,
                                            tmp_path: Path) -> None:
    trace = tmp_path / "t.trace"
    rc, _, _ = run(["pin", "verify", "-r", card, "--trace", str(trace)], capsys, "246810\n",
                   monkeypatch)
    assert rc == 0
    text = trace.read_text()
    assert "00200000 03XXXXXX ; VERIFY" in text and "246810" not in text


def test_resolver_virtual_reader_gets_the_area_psam(card: str) -> None:
    transport, name = R.open_reader(card)
    assert name == "Virtual Card 0" and isinstance(transport, VirtualTransport)
    assert transport.card("Virtual PSAM 0") is not None
    lone, _ = R.open_reader(card, no_psam=True)
    assert isinstance(lone, VirtualTransport) and lone.card("Virtual PSAM 0") is None


def test_resolver_matches_pcsc_names_by_substring() -> None:
    t = VirtualTransport()
    for n in ("Virtual PCD 00 00", "Virtual PCD 00 01", "ACS ACR38U 01 00"):
        t.add_reader(n, EchoCard())
    assert R.match_pcsc(t, "PCD 00 01") == "Virtual PCD 00 01"
    assert R.match_pcsc(t, "acr38") == "ACS ACR38U 01 00"
    with pytest.raises(NoReader, match="matches several readers"):
        R.match_pcsc(t, "Virtual PCD")
    with pytest.raises(NoReader, match="readers: 'Virtual PCD 00 00'"):
        R.match_pcsc(t, "Gemalto")


def test_resolver_serial_names_go_to_the_serial_transport() -> None:
    transport, name = R.open_reader("serial:loop://")
    assert name == "serial:loop://" and type(transport).__name__ == "SerialTransport"


def test_serve_on_a_serial_line_and_read_it(tmp_path: Path) -> None:
    """``card serve --serial`` (reader.serial_device) read back through ``serial:URL``."""
    import subprocess
    import sys

    shutil.copy(CARDS / "wang-wu.json", tmp_path / "ww.json")
    proc = subprocess.Popen([sys.executable, "-m", "terminal", "card", "serve",
                             str(tmp_path / "ww.json"), "--serial", "rfc2217://127.0.0.1:0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=ROOT, stdin=subprocess.DEVNULL)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("serving 王五 J00000033 on rfc2217://127.0.0.1:"), line
        url = line.split(" on ", 1)[1].strip()
        out = subprocess.run([sys.executable, "-m", "terminal", "read", "-r", f"serial:{url}",
                              "--psam", f"virtual:{CARDS / 'psam-370800.json'}"],
                             capture_output=True, text=True, timeout=60, cwd=ROOT)
        assert out.returncode == 0, out.stderr
        assert out.stdout.startswith("370800|370826195507080016|J00000033|")
    finally:
        proc.terminate()
        proc.wait(10)

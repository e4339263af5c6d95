"""Bad input to the reader commands: one clear line, a non-zero exit, nothing lost, no secret
echoed (output files, malformed APDUs, broken traces, dead readers, binary scripts)."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from terminal.cli import main

ROOT = Path(__file__).resolve().parents[2]
CARDS = ROOT / "fixtures" / "cards"
TRACE = ROOT / "fixtures" / "reader" / "wang-wu-read.trace"
WANG_WU_PIN = "135790"


@pytest.fixture
def image(tmp_path: Path) -> Path:
    """A copy of zhang-san's card image, with its area PSAM beside it."""
    shutil.copy(CARDS / "psam-370800.json", tmp_path / "psam-370800.json")
    return Path(shutil.copy(CARDS / "zhang-san.json", tmp_path / "zs.json"))


@pytest.fixture
def wang_wu(tmp_path: Path) -> Path:
    """A copy of wang-wu's card image: the card of the fixture trace."""
    return Path(shutil.copy(CARDS / "wang-wu.json", tmp_path / "ww.json"))


def run(argv: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
        stdin: str = "") -> tuple[int, str, str]:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    rc = main(argv)
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return rc, out, err


def one_error(err: str) -> str:
    """The single ``sscard:`` line of a failed command."""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("sscard: "), err
    return lines[0]


# -- 1. output files never replace an input or an existing file --------------------------------
@pytest.mark.parametrize("argv", [
    ["read", "--photo", "{card}"],
    ["read", "--photo", "{card}", "--force"],
    ["read", "--trace", "{card}", "--force"],
    ["apdu", "--trace", "{card}", "0084000008"],
    ["apdu", "--trace", "{card}", "--force", "0084000008"],
    ["pin", "tries", "--trace", "{card}", "--force"],
    ["read", "--trace", "{psam}", "--force"],  # the area PSAM beside the image is an input too
    ["pin", "tries", "--psam", "virtual:{psam}", "--trace", "{psam}", "--force"],
])
def test_an_output_option_never_overwrites_the_card_or_psam_image(
        argv: list[str], image: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    psam = image.with_name("psam-370800.json")
    before = image.read_bytes(), psam.read_bytes()
    argv = [a.format(card=image, psam=psam) for a in argv]
    rc, out, err = run([*argv, "-r", f"virtual:{image}"], capsys, monkeypatch)
    assert rc == 1 and out == ""
    assert "is the command's own input file" in one_error(err)
    assert (image.read_bytes(), psam.read_bytes()) == before


def test_trace_over_an_existing_file_needs_force(image: Path, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    other = tmp_path / "other.json"
    other.write_text("keep me\n")
    rc, out, err = run(["read", "-r", f"virtual:{image}", "--trace", str(other)], capsys,
                       monkeypatch)
    assert rc == 1 and out == "" and "already exists" in one_error(err) and "--force" in err
    assert other.read_text() == "keep me\n"
    rc, _, _ = run(["read", "-r", f"virtual:{image}", "--trace", str(other), "--force"],
                   capsys, monkeypatch)
    assert rc == 0 and other.read_text().startswith("# sscard-trace 1\n")


def test_photo_into_a_missing_directory_or_a_directory(image: Path, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    rc, out, err = run(["read", "-r", f"virtual:{image}", "--photo",
                        str(tmp_path / "nodir" / "p.jpg")], capsys, monkeypatch)
    assert rc == 1 and out == "" and "does not exist; create it first" in one_error(err)
    rc, out, err = run(["read", "-r", f"virtual:{image}", "--photo", str(tmp_path)], capsys,
                       monkeypatch)
    assert rc == 1 and out == "" and "is a directory" in one_error(err)
    same = str(tmp_path / "p.out")
    rc, out, err = run(["read", "-r", f"virtual:{image}", "--photo", same, "--trace", same],
                       capsys, monkeypatch)
    assert rc == 1 and "name the same file" in one_error(err)
    assert not (tmp_path / "p.out").exists()


def test_a_trace_never_overwrites_the_script(image: Path, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    script = tmp_path / "s.apdu"
    script.write_text("0084000008\n")
    rc, _, err = run(["apdu", "-r", f"virtual:{image}", "--script", str(script), "--trace",
                      str(script), "--force"], capsys, monkeypatch)
    assert rc == 1 and "own input file" in one_error(err)
    assert script.read_text() == "0084000008\n"


# -- 2. no secret (and no megabyte line) in an error --------------------------------------------
def test_a_malformed_verify_never_echoes_the_pin(image: Path, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    rc, out, err = run(["apdu", "-r", f"virtual:{image}", "0020000004573161"], capsys,
                       monkeypatch)
    line = one_error(err)
    assert rc == 1 and out == "" and "573161" not in line
    assert "'00200000'… (8 bytes)" in line and "Lc=4" in line
    rc, _, err = run(["apdu", "-r", f"virtual:{image}", "00200000 03 12345G"], capsys,
                     monkeypatch)
    assert rc == 1 and "12345" not in one_error(err)
    script = tmp_path / "pin.apdu"
    script.write_text("# verify\n0084000008\n00 20 00 00 04 57 31 61\n")
    rc, out, err = run(["apdu", "-r", f"virtual:{image}", "--script", str(script)], capsys,
                       monkeypatch)
    line = one_error(err)
    assert rc == 1 and out == "" and f"{script} line 3" in line
    assert "573161" not in line.replace(" ", "") and "(8 bytes)" in line


def test_a_huge_bad_script_line_is_not_echoed(image: Path, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    script = tmp_path / "big.apdu"
    script.write_text("00" * 2_500_000 + "\n")
    rc, _, err = run(["apdu", "-r", f"virtual:{image}", "--script", str(script)], capsys,
                     monkeypatch)
    assert rc == 1 and len(one_error(err)) < 300 and "(2500000 bytes)" in err


def test_a_trace_line_with_a_pin_is_not_echoed(wang_wu: Path, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    trace = tmp_path / "pin.trace"
    trace.write_text("# atr: 3B6D000000814A44468660370800000003\n"
                     "0.1 >> 00200000 03 13579G\n0.2 << 9000\n")
    rc, _, err = run(["replay", str(trace), "-r", f"virtual:{wang_wu}"], capsys, monkeypatch)
    line = one_error(err)
    assert rc == 1 and "line 2: not hex bytes" in line and "1357" not in line


# -- 3. replay refuses what it cannot replay ----------------------------------------------------
def test_replay_of_the_fixture_trace_still_passes(wang_wu: Path,
                                                  capsys: pytest.CaptureFixture[str],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    rc, out, _ = run(["replay", str(TRACE), "-r", f"virtual:{wang_wu}"], capsys, monkeypatch,
                     stdin=WANG_WU_PIN + "\n")
    assert rc == 0 and "all responses as expected" in out


@pytest.mark.parametrize("text, message", [
    pytest.param("", "the trace holds no exchanges", id="empty"),
    pytest.param("# sscard-trace 1\n# only comments\n\n", "the trace holds no exchanges",
                 id="comments-only"),
    pytest.param("# sscard-trace 99\n# atr: 3B00\n0.1 >> 0084000008\n"
                 "0.2 << 11223344556677889000\n",
                 "unsupported trace format 'sscard-trace 99'; this sscard reads "
                 "'sscard-trace 1'", id="version-99"),
    pytest.param(TRACE.read_text().rsplit("\n", 2)[0] + "\n",  # ends with the VERIFY
                 "the last command (VERIFY) has no recorded answer", id="unanswered"),
    pytest.param(TRACE.read_text()[:-20],
                 "the last line has no line end: the trace was cut short", id="truncated"),
])
def test_replay_refuses_a_broken_trace(text: str, message: str, wang_wu: Path,
                                       tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    trace = tmp_path / "broken.trace"
    trace.write_text(text)
    before = wang_wu.read_bytes()
    rc, out, err = run(["replay", str(trace), "-r", f"virtual:{wang_wu}"], capsys,
                       monkeypatch, stdin=WANG_WU_PIN + "\n")
    line = one_error(err)
    assert rc == 1 and out == "" and message in line and str(trace) in line
    assert wang_wu.read_bytes() == before


def test_replay_of_an_unknown_channel_lists_the_channels(
        wang_wu: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    rc, out, err = run(["replay", str(TRACE), "-r", f"virtual:{wang_wu}", "--channel",
                        "nosuch"], capsys, monkeypatch, stdin=WANG_WU_PIN + "\n")
    line = one_error(err)
    assert rc == 1 and out == "" and "'nosuch'" in line
    assert "the main card (no --channel), 'psam'" in line


@pytest.mark.parametrize("pin", ["12", "abc", "1234567890123"])
def test_replay_refuses_a_malformed_pin_before_the_card_sees_it(
        pin: str, wang_wu: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    before = wang_wu.read_bytes()  # the PIN try counter lives in the image
    rc, out, err = run(["replay", str(TRACE), "-r", f"virtual:{wang_wu}"], capsys,
                       monkeypatch, stdin=pin + "\n")
    assert rc == 1 and out == ""
    assert wang_wu.read_bytes() == before
    rc_pin, _, err_pin = run(["pin", "verify", "-r", f"virtual:{wang_wu}"], capsys,
                             monkeypatch, stdin=pin + "\n")
    assert rc_pin == rc and one_error(err) == one_error(err_pin)
    assert "PIN must be 4 to 12 digits" in err and "(code -33)" in err


# -- 4. a dead reader is an error, not an empty success -------------------------------------------
def test_readers_names_a_serial_port_that_does_not_open(tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    spec = f"serial:{tmp_path / 'nope'}"
    rc, out, err = run(["readers", "-r", spec], capsys, monkeypatch)
    assert rc == 1 and out == "" and "cannot open the serial port" in one_error(err)
    rc, out, err = run(["watch", "-r", spec, "--timeout", "0.5"], capsys, monkeypatch)
    assert rc == 1 and out == "" and "cannot open the serial port" in one_error(err)


def _cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    code = "import sys; from terminal.cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)


def test_watch_reports_pcscd_down_as_readers_does(tmp_path: Path) -> None:
    # libpcsclite finds pcscd through PCSCLITE_CSOCK_NAME (read once per process, hence a
    # subprocess): an empty directory stands for a stopped pcscd, the real one untouched
    env = {**os.environ, "PCSCLITE_CSOCK_NAME": str(tmp_path / "pcscd.comm")}
    env.pop("SSCARD_READER", None)
    readers = _cli(["readers"], env)
    watch = _cli(["watch", "--timeout", "2"], env)
    assert readers.returncode == 1 and readers.stdout == ""
    assert watch.returncode == 1 and watch.stdout == ""
    assert one_error(watch.stderr) == one_error(readers.stderr)
    if "pyscard is not installed" not in watch.stderr:
        assert "pcscd is not running" in watch.stderr


@pytest.mark.parametrize("argv", [
    ["--timeout", "-1"], ["--timeout", "nan"], ["--timeout", "0"], ["--timeout", "inf"],
    ["--count", "0"], ["--count", "-3"],
])
def test_watch_refuses_a_bad_timeout_or_count(argv: list[str],
                                              capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["watch", *argv])
    assert stop.value.code == 2 and argv[0] in capsys.readouterr().err


# -- 5. a binary script ------------------------------------------------------------------------
def test_a_binary_script_names_the_file_and_line(image: Path, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    script = tmp_path / "bin.apdu"
    script.write_bytes(b"0084000008\n\xb5\xff\x00\x81binary\n")
    rc, out, err = run(["apdu", "-r", f"virtual:{image}", "--script", str(script)], capsys,
                       monkeypatch)
    line = one_error(err)
    assert rc == 1 and out == "" and f"{script} line 2: not UTF-8 text" in line
    assert "UnicodeDecodeError" not in line


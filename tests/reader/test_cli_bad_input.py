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
    assert "a VERIFY of 8 bytes" in line and "Lc=4" in line and "00200000" not in line
    rc, _, err = run(["apdu", "-r", f"virtual:{image}", "00200000 03 12345G"], capsys,
                     monkeypatch)
    assert rc == 1 and "12345" not in one_error(err)
    script = tmp_path / "pin.apdu"
    script.write_text("# verify\n0084000008\n00 20 00 00 04 57 31 61\n")
    rc, out, err = run(["apdu", "-r", f"virtual:{image}", "--script", str(script)], capsys,
                       monkeypatch)
    line = one_error(err)
    assert rc == 1 and out == "" and f"{script} line 3" in line
    assert "573161" not in line.replace(" ", "") and "a VERIFY of 8 bytes" in line


def test_a_huge_bad_script_line_is_not_echoed(image: Path, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    script = tmp_path / "big.apdu"
    script.write_text("00" * 2_500_000 + "\n")
    rc, _, err = run(["apdu", "-r", f"virtual:{image}", "--script", str(script)], capsys,
                     monkeypatch)
    assert rc == 1 and len(one_error(err)) < 300 and "2500000 bytes" in err


def test_a_trace_line_with_a_pin_is_not_echoed(wang_wu: Path, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    trace = tmp_path / "pin.trace"
    trace.write_text("# sscard-trace 1\n# atr: 3B6D000000814A44468660370800000003\n"
                     "0.1 >> 00200000 03 13579G\n0.2 << 9000\n")
    rc, _, err = run(["replay", str(trace), "-r", f"virtual:{wang_wu}"], capsys, monkeypatch)
    line = one_error(err)
    assert rc == 1 and "line 3: not hex bytes" in line and "1357" not in line


# -- 3. replay refuses what it cannot replay ----------------------------------------------------
def test_replay_of_the_fixture_trace_still_passes(wang_wu: Path,
                                                  capsys: pytest.CaptureFixture[str],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    rc, out, _ = run(["replay", str(TRACE), "-r", f"virtual:{wang_wu}"], capsys, monkeypatch,
                     stdin=WANG_WU_PIN + "\n")
    assert rc == 0 and "all responses as expected" in out


@pytest.mark.parametrize("text, message", [
    pytest.param("", "is empty and no '# sscard-trace 1' header", id="empty"),
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



# -- 6. an argument that is not an APDU may be a PIN: never echoed --------------------------------
@pytest.mark.parametrize("argv, shown", [
    pytest.param(["0020000003", "858706"], "argument 2: not a command APDU in hex (3 bytes",
                 id="pin-as-second-argument"),
    pytest.param(["85870G"], "(6 characters, not hex digits)", id="not-hex"),
    pytest.param(["85870"], "(5 characters, an odd number of hex digits)", id="odd"),
    pytest.param(["0020000004858706"], "a VERIFY of 8 bytes", id="verify"),
    pytest.param(["0024000004858706"], "a CHANGE REFERENCE DATA of 8 bytes", id="change-ref"),
    pytest.param(["002C000004858706"], "a INS 2C of 8 bytes", id="reset-retry-counter"),
    pytest.param(["805E010004858706"], "a CHANGE PIN of 8 bytes", id="change-pin"),
    pytest.param(["8424000104858706"], "a PIN RELOAD of 8 bytes", id="pin-reload"),
    pytest.param(["80FA000004858706"], "a CIPHER DATA of 8 bytes", id="cipher-data"),
])
def test_a_bad_apdu_argument_is_shown_by_its_length_only(
        argv: list[str], shown: str, image: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    before = image.read_bytes()
    rc, out, err = run(["apdu", "-r", f"virtual:{image}", *argv], capsys, monkeypatch)
    line = one_error(err)
    assert rc == 1 and out == "" and shown in line
    assert "858706" not in line and "85870" not in line and "8587" not in line
    head = argv[-1][:8]
    assert len(head) < 8 or head not in line  # not even a PIN command's header
    assert image.read_bytes() == before


def test_a_bad_apdu_that_is_no_pin_command_shows_its_header(
        image: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    rc, _, err = run(["apdu", "-r", f"virtual:{image}", "00A404000F1122"], capsys, monkeypatch)
    line = one_error(err)
    assert rc == 1 and "header 00A40400, 7 bytes: Lc=15" in line and "1122" not in line


# -- 7. replay refuses a PIN whose length cannot match the recorded VERIFY -------------------------
@pytest.mark.parametrize("pin", ["1234", "1357901", "123456789012"])
def test_replay_refuses_a_pin_of_the_wrong_length_before_it_costs_a_try(
        pin: str, wang_wu: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    before = wang_wu.read_bytes()  # the PIN try counter lives in the image
    rc, out, err = run(["replay", str(TRACE), "-r", f"virtual:{wang_wu}"], capsys,
                       monkeypatch, stdin=pin + "\n")
    line = one_error(err)
    assert rc == 1 and out == "" and pin not in line
    assert f"{TRACE} line 52: the trace's VERIFY carries a PIN of 5 or 6 digits" in line
    assert wang_wu.read_bytes() == before


def test_replay_check_fills_every_pin_before_sending_anything() -> None:
    from reader.facade import PinFormatError
    from reader.trace import load_trace, pin_filler, replay_check

    sent: list[bytes] = []

    class Recorder:
        def atr(self) -> bytes:
            return b"\x3b\x00"

        def power_on(self) -> bytes:
            return self.atr()

        def power_off(self) -> None:
            pass

        def reset(self) -> bytes:
            return self.atr()

        def transmit(self, command: bytes) -> bytes:
            sent.append(command)
            return b"\x90\x00"

    with pytest.raises(PinFormatError, match="carries a PIN of 5 or 6 digits, not 4"):
        replay_check(load_trace(TRACE), Recorder(), secrets=pin_filler("1234"))
    assert sent == []


# -- 8. a trace without its '# sscard-trace 1' header is refused ---------------------------------
def test_a_trace_without_the_header_is_refused(wang_wu: Path, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    trace = tmp_path / "nohdr.trace"
    trace.write_text("".join(line + "\n" for line in TRACE.read_text().splitlines()
                             if "sscard-trace" not in line))
    before = wang_wu.read_bytes()
    rc, out, err = run(["replay", str(trace), "-r", f"virtual:{wang_wu}"], capsys,
                       monkeypatch, stdin=WANG_WU_PIN + "\n")
    line = one_error(err)
    assert rc == 1 and out == "" and str(trace) in line
    assert "a record before the '# sscard-trace 1' header: not an sscard trace" in line
    assert wang_wu.read_bytes() == before


def test_every_fixture_trace_carries_the_header() -> None:
    from reader.trace import load_trace

    traces = sorted((ROOT / "fixtures").rglob("*.trace"))
    assert traces
    for path in traces:
        assert load_trace(path).exchanges(), path


# -- 9. --trace under a file that is no directory --------------------------------------------------
@pytest.mark.parametrize("argv", [["read"], ["apdu", "0084000008"], ["pin", "tries"]])
def test_trace_under_the_card_file_says_it_is_a_file(
        argv: list[str], image: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    before = image.read_bytes()
    rc, out, err = run([*argv, "-r", f"virtual:{image}", "--trace", f"{image}/x"], capsys,
                       monkeypatch)
    line = one_error(err)
    assert rc == 1 and out == "" and f"{image} is a file, not a directory" in line
    assert "does not exist" not in line
    assert image.read_bytes() == before


# -- 10. a PIN is never read where it would be echoed ----------------------------------------------
class _EchoingTerminal(io.StringIO):
    """Standard input that claims to be a terminal whose echo cannot be turned off."""

    def isatty(self) -> bool:
        return True


def test_a_terminal_that_cannot_hide_the_pin_is_refused(
        wang_wu: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    import getpass

    # getpass falls back to an echoing read, with a GetPassWarning, when it cannot turn the
    # terminal's echo off: fallback_getpass is what it then runs
    monkeypatch.setattr(getpass, "getpass", getpass.fallback_getpass)
    stdin = _EchoingTerminal(WANG_WU_PIN + "\n")
    monkeypatch.setattr("sys.stdin", stdin)
    before = wang_wu.read_bytes()
    rc = main(["pin", "verify", "-r", f"virtual:{wang_wu}"])
    out, err = capsys.readouterr()
    line = one_error(err)
    assert rc == 1 and out == "" and "cannot hide the PIN on this terminal" in line
    assert "pipe the PIN on standard input" in line and "GetPassWarning" not in err
    assert stdin.read() == WANG_WU_PIN + "\n"  # never read, so never echoed
    assert wang_wu.read_bytes() == before


@pytest.mark.parametrize("argv", [["pin", "verify"], ["pin", "change"], ["replay", str(TRACE)]])
def test_no_standard_input_for_the_pin_is_one_clear_line(
        argv: list[str], wang_wu: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", None)  # started with standard input closed (<&-)
    before = wang_wu.read_bytes()
    rc = main([*argv, "-r", f"virtual:{wang_wu}"])
    out, err = capsys.readouterr()
    line = one_error(err)
    assert rc == 1 and out == "" and "no standard input to read the PIN from" in line
    assert "AttributeError" not in line
    assert wang_wu.read_bytes() == before


@pytest.mark.parametrize("record, message", [
    pytest.param("135790", "line 3: expected 'SECONDS KIND PAYLOAD' (6 characters)",
                 id="a-stray-pin-line"),
    pytest.param("0.1 >> 13579G", "line 3: not hex bytes (6 characters)", id="short-payload"),
    pytest.param("1357x9 >> 0084000008", "line 3: bad time (6 characters", id="bad-time"),
    pytest.param("0.1 135790 135790", "line 3: expected >>, <<, <~ or **", id="pin-as-kind"),
])
def test_a_short_bad_trace_line_is_never_echoed(
        record: str, message: str, wang_wu: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    trace = tmp_path / "short.trace"
    trace.write_text(f"# sscard-trace 1\n# atr: 3B00\n{record}\n0.2 << 9000\n")
    rc, _, err = run(["replay", str(trace), "-r", f"virtual:{wang_wu}"], capsys, monkeypatch)
    line = one_error(err)
    assert rc == 1 and message in line and "1357" not in line

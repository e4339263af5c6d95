"""Bad input and failing files around the card commands: one clear line, a non-zero exit,
no traceback, nothing lost (card/, terminal/cli/cmd_card.py, card_serve.py, load_psam)."""

from __future__ import annotations

import importlib
import io
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from card.cos import VirtualCard
from card.image import read_document, seal
from terminal.cli import main
from terminal.core import readers as R
from tests.support import require

ROOT = Path(__file__).resolve().parents[2]
CARDS = ROOT / "fixtures" / "cards"
ZHANG = "370802198001011235"
PIN = "246810"  # zhang-san's envelope PIN (fixtures/cards/README.md)
ISSUE = ["card", "issue", "--name", "张三", "--id", ZHANG, "--bank", "CCB"]


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    rc = main(argv)
    out, err = capsys.readouterr()
    return rc, out, err


def tries_left(path: Path) -> int:
    return int(read_document(path)["pins"]["ssse"]["tries_left"])


# -- 1. a card pulled (its image unwritable) while a command waits for the PIN ----------------

PULL_SCRIPT = """
import io, shutil, sys
from pathlib import Path
from terminal.cli import main

folder = Path(sys.argv[1])

class PullingStdin(io.StringIO):
    def readline(self, *args):
        shutil.rmtree(folder)  # the card image's directory goes while the PIN is typed
        return super().readline(*args)

sys.stdin = PullingStdin(sys.argv[2] + "\\n")
sys.exit(main(["pin", "verify", "-r", f"virtual:{folder / 'zs.json'}"]))
"""


@pytest.mark.parametrize("pin", [PIN, "000000"])
def test_pulled_card_gives_lines_not_tracebacks(tmp_path: Path, pin: str) -> None:
    folder = tmp_path / "pull"
    folder.mkdir()
    shutil.copy(CARDS / "zhang-san.json", folder / "zs.json")
    done = subprocess.run([sys.executable, "-c", PULL_SCRIPT, str(folder), pin], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "Traceback" not in done.stderr + done.stdout
    lines = done.stderr.strip().splitlines()
    assert "memory failure (6581)" in lines[0] and "cannot be written" in lines[0]
    assert lines[-1].startswith("sscard: ") and "6581" in lines[-1]
    assert pin not in done.stderr + done.stdout


def test_memory_failure_is_one_warning_with_traceback_only_at_debug(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    image = tmp_path / "zs.json"
    shutil.copy(CARDS / "zhang-san.json", image)
    card = VirtualCard.from_image(image)
    card.transmit(bytes.fromhex("00A404000F7378312E73682EC9E7BBE1B1A3D5CF"))

    def full(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("card.image.atomic_write", full)
    caplog.set_level(logging.DEBUG, logger="card")
    answer = card.transmit(bytes.fromhex("0020000003") + bytes.fromhex(PIN))
    assert answer[-2:] == b"\x65\x81"
    loud = [r for r in caplog.records if r.levelno >= logging.INFO]
    assert len(loud) == 1 and loud[0].levelno == logging.WARNING
    assert "No space left on device" in loud[0].getMessage()
    assert all(r.exc_info is None for r in loud)
    assert any(r.exc_info for r in caplog.records if r.levelno == logging.DEBUG)
    assert tries_left(image) == 3  # nothing of the failed command was kept


def test_internal_error_says_so_without_traceback(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    card = VirtualCard.from_doc(read_document(CARDS / "zhang-san.json"))

    def bug(self: VirtualCard, cmd: object) -> tuple[bytes, int]:
        raise KeyError("oops")

    monkeypatch.setattr(VirtualCard, "dispatch", bug)
    caplog.set_level(logging.DEBUG, logger="card")
    assert card.transmit(bytes.fromhex("00A40000023F00"))[-2:] == b"\x6f\x00"
    loud = [r for r in caplog.records if r.levelno >= logging.INFO]
    assert len(loud) == 1 and "internal error" in loud[0].getMessage()
    assert loud[0].exc_info is None
    assert any(r.exc_info for r in caplog.records if r.levelno == logging.DEBUG)


# -- 2. card issue: --out checked first, the issuer file records only written cards -----------

@pytest.fixture
def issuer(tmp_path: Path) -> Path:
    path = tmp_path / "issued.json"
    path.write_text(json.dumps({"areas": {"370800": {
        "next": 3, "card_numbers": ["J00000017", "J00000025"],
        "card_id_codes": []}}}, indent=1))
    return path


def test_issue_into_a_directory_records_nothing(tmp_path: Path, issuer: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    before = issuer.read_bytes()
    (tmp_path / "adir").mkdir()
    rc, _, err = run([*ISSUE, "--issuer-file", str(issuer), "--out", str(tmp_path / "adir"),
                      "--force"], capsys)
    assert rc == 1 and "is a directory" in err and "Error" not in err
    assert issuer.read_bytes() == before


def test_force_never_replaces_a_symlink_to_a_fifo(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    link = tmp_path / "card.json"
    link.symlink_to(fifo)
    rc, _, err = run([*ISSUE, "--out", str(link), "--force"], capsys)
    assert rc == 1 and "not a regular file" in err
    assert link.is_symlink() and fifo.is_fifo()


def test_out_equal_to_a_new_issuer_file_is_refused(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "both.json"
    rc, _, err = run([*ISSUE, "--issuer-file", str(path), "--out", str(path)], capsys)
    assert rc == 1 and "issuer-file" in err and not path.exists()


def test_failed_rename_takes_the_registration_back(tmp_path: Path, issuer: Path,
                                                  monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    before = json.loads(issuer.read_text())
    out = tmp_path / "z.json"
    real_replace = os.replace

    def replace(src: str, dst: str | Path) -> None:
        if Path(dst).name == out.name:
            raise OSError(5, "Input/output error")
        real_replace(src, dst)

    monkeypatch.setattr("card.image.os.replace", replace)
    rc, stdout, err = run([*ISSUE, "--issuer-file", str(issuer), "--out", str(out)], capsys)
    assert rc == 1 and f"cannot write {out}: Input/output error" in err
    assert not out.exists() and "initial PIN" not in stdout
    after = json.loads(issuer.read_text())
    assert after["areas"]["370800"]["card_numbers"] == before["areas"]["370800"]["card_numbers"]
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_unwritable_issuer_file_writes_no_card(tmp_path: Path, issuer: Path,
                                               monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    module = importlib.import_module("card.issue")  # the package exports a function "issue"
    real_write = module.atomic_write

    def refuse(path: object, *args: Any, **kwargs: Any) -> None:
        if Path(str(path)) == issuer:
            raise PermissionError(13, "Permission denied")
        real_write(path, *args, **kwargs)

    monkeypatch.setattr(module, "atomic_write", refuse)
    out = tmp_path / "z.json"
    rc, _, err = run([*ISSUE, "--issuer-file", str(issuer), "--out", str(out)], capsys)
    assert rc == 1 and "cannot be written: Permission denied" in err
    assert "no card was issued" in err and not out.exists()


def test_issue_records_the_card_after_writing_it(tmp_path: Path, issuer: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "z.toml"
    rc, _, _ = run([*ISSUE, "--issuer-file", str(issuer), "--out", str(out)], capsys)
    assert rc == 0
    number = read_document(out)["identity"]["card_number"]
    assert number in json.loads(issuer.read_text())["areas"]["370800"]["card_numbers"]


@pytest.mark.parametrize(("content", "message"), [
    ("[]", "has no 'areas' object"),
    ("null", "has no 'areas' object"),
    ('{"serials": "x"}', "has no 'areas' object"),
    ('{"areas": {"370800": []}}', "area 370800 is not an object"),
    ('{"areas": {"370800": {"next": "1"}}}', "'next' must be a whole number"),
    ('{"areas": {"370800": {"next": 1, "card_numbers": 5}}}', "'card_numbers' must be"),
    ("{bad", "is not valid JSON"),
])
def test_bad_issuer_file_is_one_clear_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                           content: str, message: str) -> None:
    reg = tmp_path / "iss.json"
    reg.write_text(content)
    out = tmp_path / "z.json"
    rc, _, err = run([*ISSUE, "--issuer-file", str(reg), "--out", str(out)], capsys)
    assert rc == 1 and message in err and str(reg) in err
    assert "AttributeError" not in err and "TypeError" not in err
    assert reg.read_text() == content and not out.exists()


def test_issuer_file_in_a_missing_directory(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "z.json"
    rc, _, err = run([*ISSUE, "--issuer-file", str(tmp_path / "no" / "x.json"),
                      "--out", str(out)], capsys)
    assert rc == 1 and "does not exist; create it first" in err
    assert "FileNotFoundError" not in err and not out.exists()


@pytest.mark.parametrize("name", ["a\nb", "张\t三", "张三\x00", "张\u200b三"])
def test_control_characters_in_the_name_are_refused(tmp_path: Path, name: str,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "z.json"
    rc, _, err = run(["card", "issue", "--name", name, "--id", ZHANG, "--bank", "CCB",
                      "--out", str(out)], capsys)
    assert rc == 1 and "control character" in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_psam_out_is_checked_and_serial_is_bounded(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    rc, _, err = run(["card", "psam", "--out", str(tmp_path), "--force"], capsys)
    assert rc == 1 and "is a directory" in err
    with pytest.raises(SystemExit) as exited:
        main(["card", "psam", "--serial", "-1", "--out", str(tmp_path / "p.json")])
    assert exited.value.code == 2
    rc, _, err = run(["card", "psam", "--area", "٣٧٠٨٠٠", "--out", str(tmp_path / "p.json")],
                     capsys)
    assert rc == 1 and "area code must be 6 digits" in err
    assert not (tmp_path / "p.json").exists()


# -- 3. a card image behind a symbolic link -------------------------------------------------

def test_wrong_pin_through_a_symlink_counts_in_the_target(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "zhang.json"
    shutil.copy(CARDS / "zhang-san.json", target)
    link = tmp_path / "link.json"
    link.symlink_to(target.name)
    monkeypatch.setattr("sys.stdin", io.StringIO("000000\n"))
    rc, _, err = run(["pin", "verify", "-r", f"virtual:{link}"], capsys)
    assert rc != 0 and "2 tries left" in err
    assert link.is_symlink() and os.readlink(link) == target.name
    assert tries_left(target) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.json", "zhang.json"]


# -- 4. --psam virtual:FILE is checked like `card show` --------------------------------------

@pytest.fixture
def card_reader(tmp_path: Path) -> str:
    shutil.copy(CARDS / "zhang-san.json", tmp_path / "zs.json")
    return f"virtual:{tmp_path / 'zs.json'}"


def test_toml_psam_made_by_card_psam_loads(tmp_path: Path, card_reader: str,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    psam = tmp_path / "p.toml"
    assert run(["card", "psam", "--out", str(psam)], capsys)[0] == 0
    rc, out, err = run(["pin", "tries", "-r", card_reader, "--psam", f"virtual:{psam}"],
                       capsys)
    assert rc == 0 and "3 tries left" in out, err
    assert R.load_psam(psam).atr() == R.load_psam(CARDS / "psam-370800.json").atr()


def _psam_variants(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    doc = read_document(CARDS / "psam-370800.json")
    edited = dict(doc, counter=7)  # counter changed by hand, seal left as it was
    unsealed = {k: v for k, v in doc.items() if k != "integrity"}
    card = read_document(CARDS / "zhang-san.json")
    texts = {
        "edited.json": (json.dumps(edited), "integrity seal"),
        "unsealed.json": (json.dumps(unsealed), "integrity seal"),
        "list.json": ("[]", "does not hold an object"),
        "null.json": ("null", "does not hold an object"),
        "string.json": ('"psam"', "does not hold an object"),
        "broken.toml": ("format = ", "not a valid TOML"),
        "card.json": (json.dumps(seal(card)), "expected 'sscard-psam'"),
    }
    out = {}
    for name, (text, message) in texts.items():
        (tmp_path / name).write_text(text)
        out[name] = (tmp_path / name, message)
    return out


def test_bad_psam_images_are_refused_with_the_file_named(
        tmp_path: Path, card_reader: str, capsys: pytest.CaptureFixture[str]) -> None:
    for path, message in _psam_variants(tmp_path).values():
        with pytest.raises(R.ReaderNameError) as info:
            R.load_psam(path)
        assert message in str(info.value) and str(path) in str(info.value)
        before = path.read_bytes()
        rc, _, err = run(["pin", "tries", "-r", card_reader, "--psam", f"virtual:{path}"],
                         capsys)
        assert rc == 1 and message in err and str(path) in err, err
        assert "AttributeError" not in err and "Traceback" not in err
        assert path.read_bytes() == before


# -- 5. card serve: vpcd address and timing checked, a card never inserted is an error -------

@pytest.fixture
def refusing_port() -> Iterator[int]:
    """A local port bound but not listening: every connection is refused."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    yield sock.getsockname()[1]
    sock.close()


def test_serve_to_an_unreachable_vpcd_fails(card_reader: str, refusing_port: int,
                                            monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    image = card_reader.removeprefix("virtual:")
    rc, out, err = run(["card", "serve", image, "--vpcd", f"127.0.0.1:{refusing_port}",
                        "--remove-after", "0.3"], capsys)
    assert rc == 1 and "never inserted" in err and "refused" in err
    assert "card removed" not in out


def test_serve_with_a_garbage_vpcd_fails_at_once(card_reader: str,
                                                 monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    image = card_reader.removeprefix("virtual:")
    rc, out, err = run(["card", "serve", image, "--vpcd", "no such host!",
                        "--remove-after", "30"], capsys)
    assert rc == 1 and "cannot resolve the host" in err and "serving" not in out


@pytest.mark.parametrize("argv", [["--remove-after", "-1"], ["--remove-after", "0"],
                                  ["--insert-after", "nan"], ["--insert-after", "-2"],
                                  ["--remove-after", "inf"], ["--slot", "-1"]])
def test_serve_times_must_be_finite_and_positive(card_reader: str, argv: list[str],
                                                capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["card", "serve", card_reader.removeprefix("virtual:"), *argv])
    assert exited.value.code == 2
    assert "Traceback" not in capsys.readouterr().err


def test_serve_to_a_listening_vpcd_still_ends_cleanly(card_reader: str,
                                                      monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    threading.Thread(target=lambda: accepted.append(listener.accept()[0]), daemon=True).start()
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    try:
        rc, out, err = run(["card", "serve", card_reader.removeprefix("virtual:"), "--vpcd",
                            f"127.0.0.1:{listener.getsockname()[1]}", "--remove-after", "0.5"],
                           capsys)
    finally:
        for conn in accepted:
            conn.close()
        listener.close()
    assert rc == 0 and "card removed" in out, err


# -- 6. card serve --trace never overwrites an input; images served once; long waits --------

@pytest.fixture
def served(tmp_path: Path) -> Path:
    """A card image with its area PSAM beside it (the PSAM ``virtual:`` readers load)."""
    shutil.copy(CARDS / "zhang-san.json", tmp_path / "c.json")
    shutil.copy(CARDS / "psam-370800.json", tmp_path / "psam-370800.json")
    return tmp_path / "c.json"


def _serve(argv: list[str], monkeypatch: pytest.MonkeyPatch,
           capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    return run(["card", "serve", *argv, "--vpcd", "127.0.0.1:1", "--remove-after", "0.2"],
               capsys)


@pytest.mark.parametrize("target", ["c.json", "psam-370800.json", "replay.trace"])
def test_serve_trace_over_an_input_is_refused(served: Path, target: str,
                                              monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    replay = served.parent / "replay.trace"
    shutil.copy(ROOT / "fixtures" / "reader" / "wang-wu-read.trace", replay)
    files = {p: p.read_bytes() for p in served.parent.iterdir()}
    for extra in ([], ["--force"]):
        rc, out, err = _serve([str(served), "--replay", str(replay), "--trace",
                               str(served.parent / target), *extra], monkeypatch, capsys)
        assert rc == 1 and "is the command's own input file" in err and "serving" not in out
        assert {p: p.read_bytes() for p in served.parent.iterdir()} == files


def test_serve_trace_needs_force_and_a_regular_file(served: Path,
                                                    monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    old = served.parent / "old.trace"
    old.write_text("keep me\n")
    rc, _, err = _serve([str(served), "--trace", str(old)], monkeypatch, capsys)
    assert rc == 1 and "add --force" in err and old.read_text() == "keep me\n"
    fifo = served.parent / "fifo"
    os.mkfifo(fifo)
    rc, _, err = _serve([str(served), "--trace", str(fifo), "--force"], monkeypatch, capsys)
    assert rc == 1 and "not a regular file" in err and fifo.is_fifo()
    rc, _, err = _serve([str(served), "--trace", str(old), "--force"], monkeypatch, capsys)
    assert "never inserted" in err and old.read_text().startswith("# sscard-trace")


def test_serve_refuses_one_image_named_twice(served: Path, monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    (served.parent / "link.json").symlink_to("c.json")
    before = served.read_bytes()
    for second in (served.parent / ".." / served.parent.name / "c.json",
                   served.parent / "link.json"):
        rc, out, err = _serve([str(served), str(second)], monkeypatch, capsys)
        assert rc == 1 and "are the same card image" in err and "serving" not in out
    assert served.read_bytes() == before


def test_serve_wait_longer_than_a_lock_timeout_does_not_fail(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from terminal.cli import card_serve

    monkeypatch.setattr(threading, "TIMEOUT_MAX", 0.01)  # Event.wait(1e7) would overflow
    stop = threading.Event()
    failed: list[BaseException] = []
    monkeypatch.setattr(threading, "excepthook", lambda hook: failed.append(hook.exc_value))
    card_serve._after(10_000_000.0, stop)
    assert not stop.wait(0.1) and not failed
    stop.set()
    assert card_serve._wait(stop, 10_000_000.0)


SERVE_SCRIPT = "import sys; from terminal.cli import main; sys.exit(main(sys.argv[1:]))"


def test_serial_serve_with_a_long_remove_after_stops_on_ctrl_c(served: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", SERVE_SCRIPT, "card", "serve", str(served),
                             "--serial", "pty", "--remove-after", "9999999"], cwd=ROOT,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        if "serving" not in first:
            proc.kill()
            require("pty", f"a pseudo-terminal could not be opened "
                           f"({proc.communicate()[1].strip()}); mount /dev/pts")
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=10)  # a pending timer thread kept it alive
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0 and "card removed" in out and "Traceback" not in err


# -- 7. deeply nested documents: a clear line naming the file ---------------------------------

def _deep(tmp_path: Path, name: str, depth: int = 100_000) -> Path:
    path = tmp_path / name
    if name.endswith(".toml"):
        path.write_text("a = " + "[" * depth + "]" * depth + "\n")
    else:
        path.write_text('{"a":' * depth + "1" + "}" * depth)
    return path


@pytest.mark.parametrize("name", ["deep.json", "deep.toml"])
def test_deeply_nested_images_are_refused_by_name(tmp_path: Path, name: str,
                                                  card_reader: str,
                                                  monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    deep = _deep(tmp_path, name)
    before = deep.read_bytes()
    for argv in (["card", "show", str(deep)], ["read", "-r", f"virtual:{deep}"],
                 ["pin", "tries", "-r", card_reader, "--psam", f"virtual:{deep}"]):
        rc, _, err = run(argv, capsys)
        assert rc == 1 and "nested too deep" in err and str(deep) in err, (argv, err)
        assert "RecursionError" not in err and len(err.strip().splitlines()) == 1
    rc, _, err = _serve([str(deep)], monkeypatch, capsys)
    assert rc == 1 and "nested too deep" in err
    assert deep.read_bytes() == before


def test_nesting_that_parses_but_is_too_deep_is_refused(tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]
                                                        ) -> None:
    doc = read_document(CARDS / "zhang-san.json")
    nested: Any = 1
    for _ in range(500):
        nested = [nested]
    doc["files"]["extra"] = nested
    path = tmp_path / "mid.json"
    path.write_text(json.dumps(doc))
    rc, _, err = run(["card", "show", str(path)], capsys)
    assert rc == 1 and "nested too deep" in err and "RecursionError" not in err


def test_deeply_nested_issuer_file_is_one_line(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    deep = _deep(tmp_path, "issued.json")
    out = tmp_path / "z.json"
    rc, _, err = run([*ISSUE, "--issuer-file", str(deep), "--out", str(out)], capsys)
    assert rc == 1 and "nested too deep" in err and str(deep) in err
    assert "RecursionError" not in err and not out.exists()


# -- 8. hard-linked images are refused before any PIN is tried -----------------------------

def test_hard_linked_image_is_refused_and_both_names_stay_one_card(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    first = tmp_path / "a.json"
    shutil.copy(CARDS / "zhang-san.json", first)
    second = tmp_path / "b.json"
    os.link(first, second)
    before = first.read_bytes()
    monkeypatch.setattr("sys.stdin", io.StringIO("000000\n"))
    rc, _, err = run(["pin", "verify", "-r", f"virtual:{first}"], capsys)
    assert rc == 1 and "has 2 hard links" in err and "wrong PIN" not in err
    rc, _, err = _serve([str(second)], monkeypatch, capsys)
    assert rc == 1 and "has 2 hard links" in err
    from card.image import atomic_write

    with pytest.raises(OSError, match="2 hard links"):
        atomic_write(first, "{}")
    rc, _, err = run([*ISSUE, "--out", str(second), "--force"], capsys)
    assert rc == 1 and "2 hard links" in err
    assert first.read_bytes() == second.read_bytes() == before
    assert os.stat(first).st_ino == os.stat(second).st_ino


def test_single_and_symlinked_images_still_count_pin_tries(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    image = tmp_path / "one.json"
    shutil.copy(CARDS / "zhang-san.json", image)
    link = tmp_path / "link.json"
    link.symlink_to(image)
    for name, left in ((image, 2), (link, 1)):
        monkeypatch.setattr("sys.stdin", io.StringIO("000000\n"))
        rc, _, err = run(["pin", "verify", "-r", f"virtual:{name}"], capsys)
        assert rc == 1 and "wrong PIN" in err and "hard links" not in err
        assert tries_left(image) == left
    assert link.is_symlink()


# -- 9. card issue refuses what a terminal could not use -------------------------------------

def test_issue_refuses_a_name_the_reader_rejects(tmp_path: Path, issuer: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "z.json"
    before = issuer.read_bytes()
    rc, _, err = run(["card", "issue", "--name", "李|四", "--id", ZHANG, "--bank", "CCB",
                      "--issuer-file", str(issuer), "--out", str(out)], capsys)
    assert rc == 1 and "may not contain '|'" in err and len(err.strip().splitlines()) == 1
    assert not out.exists() and issuer.read_bytes() == before


@pytest.mark.parametrize("area, message", [
    ("000000", "not a province code"), ("990800", "not a province code"),
    ("100800", "not a province code"), ("370000", "names a province, not a city")])
def test_issue_and_psam_refuse_an_implausible_area(tmp_path: Path, area: str, message: str,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "z.json"
    rc, _, err = run([*ISSUE, "--area", area, "--out", str(out)], capsys)
    assert rc == 1 and message in err and not out.exists()
    rc, _, err = run(["card", "psam", "--area", area, "--out", str(out)], capsys)
    assert rc == 1 and message in err and not out.exists()


@pytest.mark.parametrize("area", ["370100", "639900", "110100"])
def test_issue_accepts_city_areas(tmp_path: Path, area: str,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "z.toml"
    rc, _, err = run([*ISSUE, "--area", area, "--out", str(out)], capsys)
    assert rc == 0, err
    assert read_document(out)["identity"]["area_code"] == area


@pytest.mark.parametrize("name", ["x.txt", "x", "x.json.bak"])
def test_image_out_must_end_in_json_or_toml(tmp_path: Path, name: str,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / name
    for argv in ([*ISSUE, "--out", str(out)], ["card", "psam", "--out", str(out)]):
        rc, _, err = run(argv, capsys)
        assert rc == 1 and "ends in .json or .toml" in err and not out.exists()
    rc, _, err = run([*ISSUE, "--out", str(tmp_path / "UPPER.JSON")], capsys)
    assert rc == 0, err

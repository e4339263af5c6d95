"""Coverage-guided fuzzing with atheris (optional; ``pip install atheris``).

Targets (the same properties as the hypothesis tests of this directory, run for as long as
you like, guided by coverage of the card OS and the parsers):

* ``card``: one command APDU (or a sequence split on a ``|`` byte) to a fresh virtual card
  (T=1 or T=0 by the first byte): never an exception, always a status word, never 6F00;
* ``apdu``: the command, response, TLV, simple-TLV and ATR parsers: ApduError or a value;
* ``host``: a request body to the in-process host service: an envelope, never an exception,
  never an internal error.

Run: ``python -m tests.proof.atheris_fuzz card -atheris_runs=200000`` (libFuzzer flags
after the target name). A crashing input is written by libFuzzer as ``crash-*``; add it to
the ``@example`` list of the matching ``test_fuzz_*.py`` so it stays a regression test.
"""

from __future__ import annotations

import contextlib
import sys
import tempfile
from pathlib import Path


def _card_target() -> object:
    from card.cos import VirtualCard
    from tests.proof.test_fuzz_card import _DOCS

    def target(data: bytes) -> None:
        card = VirtualCard.from_doc(_DOCS["3.00"], t0=bool(data[:1]) and data[0] & 1 == 1)
        for cmd in data[1:].split(b"|")[:8]:
            out = card.transmit(cmd)
            sw = int.from_bytes(out[-2:], "big")
            if len(out) < 2 or not (0x6100 <= sw <= 0x6FFF or 0x9000 <= sw <= 0x9FFF):
                raise AssertionError(f"no status word for {cmd.hex()}: {out.hex()}")
            if sw == 0x6F00:
                raise AssertionError(f"internal error on {cmd.hex()}")
    return target


def _apdu_target() -> object:
    from apdu import ApduError, CommandApdu, ResponseApdu, atr, tlv

    parsers = (CommandApdu.from_bytes, ResponseApdu.from_bytes, tlv.decode,
               tlv.decode_simple, atr.parse)

    def target(data: bytes) -> None:
        for parse in parsers:
            with contextlib.suppress(ApduError):
                parse(data)
    return target


def _host_target() -> object:
    from ledger.populate import populate
    from ledger.service import HostService, initialize
    from ledger.store import open_store

    root = Path(tempfile.mkdtemp(prefix="sscard-atheris-"))
    url = f"sqlite:///{root / 'host.db'}"
    store = open_store(url)
    initialize(store)
    populate(store, 3)
    store.close()
    service = HostService.open(url)

    def target(data: bytes) -> None:
        ans = service.call(data)
        if ans.get("err_code") == "internal":
            raise AssertionError(ans["err_msg"])
    return target


def main() -> int:
    try:
        import atheris
    except ImportError:
        print("atheris is not installed: pip install atheris", file=sys.stderr)
        return 2
    targets = {"card": _card_target, "apdu": _apdu_target, "host": _host_target}
    if len(sys.argv) < 2 or sys.argv[1] not in targets:
        print(f"usage: python -m tests.proof.atheris_fuzz {{{'|'.join(targets)}}} "
              "[libFuzzer flags]", file=sys.stderr)
        return 2
    name = sys.argv.pop(1)
    with atheris.instrument_imports():
        import apdu  # noqa: F401
        import card  # noqa: F401
    atheris.Setup(sys.argv, targets[name]())
    atheris.Fuzz()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

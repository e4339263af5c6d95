"""Power-cut campaign on a card image file (spec/card.md §7, seed rule C3).

Thousands of VERIFY, CHANGE PIN and PIN RELOAD runs against a :class:`card.cos.VirtualCard`
stored in an image *file*; in each run power is cut (:meth:`card.faults.FaultPlan.power_cut_at`)
at a random checkpoint of the command under test, or not at all (one chance in n+1 for a
command that passes n checkpoints). After every run the image is read back from disk and a
fresh card is built from it, as a terminal would find the card after the holder pulled it out
and put it back. Checked after every run:

* **the image always loads**: the file parses and its integrity seal holds
  (:func:`card.image.load_card_image`), no temporary file is left beside it, and the
  reloaded card answers SELECT of the SSSE application;
* **never an extra PIN guess**: a wrong PIN that was compared (checkpoint ``pin.compared``
  passed) is durably counted; a wrong PIN never leaves more tries than before; across the
  campaign the wrong guesses evaluated since the last durable reset never exceed the tries
  the card has durably consumed (``spent ≤ max − tries_left``);
* **all or nothing**: after a cut CHANGE PIN or PIN RELOAD the card holds the old PIN (with
  the old or one-less counter) or the new one (with a full counter), never a mix;
* without a cut, the status word is the one spec/card.md §7 prescribes (9000, 63Cx, 6983).

PIN RELOAD is the counter's sequence through a virtual PSAM (card/psam.py: GET CHALLENGE,
DELIVERY SESSION KEY usage 03, CIPHER DATA encrypt and MAC); the cut is armed on the
``84 24 00 01`` command itself.

Run: ``python -m terminal.sim.powercut --runs 5000`` (or ``sscard simulate --power-cut
--runs 5000``); ``--seed`` replays a campaign exactly (the card's challenges and salts come
from the same seed; only the PIN salts of re-issued PINs use the OS generator).
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import json
import random
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from apdu import atr as atrmod
from apdu import codec
from apdu import commands as C
from card.cos import VirtualCard
from card.errors import ImageError, PowerCut
from card.faults import FaultPlan
from card.image import CardImage, atomic_write, dumps, load_card_image
from card.issue import Holder, issue
from card.psam import VirtualPsam, make_psam_doc

OPS = ("verify_ok", "verify_wrong", "change_ok", "change_wrong", "reload", "verify_blocked")
HOLDER_SSN_BODY = "37080219800101123"
INITIAL_PIN = "123456"


@dataclass
class CampaignResult:
    """What a campaign did and what it found (``violations`` empty = the card held up)."""

    seed: int
    algorithm: str
    runs: int = 0
    cuts: int = 0
    completed: int = 0
    wrong_guesses_compared: int = 0
    blocked_reached: int = 0
    by_op: collections.Counter[str] = field(default_factory=collections.Counter)
    cut_at: collections.Counter[str] = field(default_factory=collections.Counter)
    violations: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.violations

    def to_dict(self) -> dict[str, Any]:
        return {"seed": self.seed, "algorithm": self.algorithm, "runs": self.runs,
                "cuts": self.cuts, "completed": self.completed,
                "wrong_guesses_compared": self.wrong_guesses_compared,
                "blocked_reached": self.blocked_reached, "by_op": dict(self.by_op),
                "cut_at": dict(self.cut_at), "violations": self.violations[:50],
                "violation_count": len(self.violations), "seconds": round(self.seconds, 2)}


def _ssn() -> str:
    return HOLDER_SSN_BODY + codec.id_check_digit(HOLDER_SSN_BODY)


def new_card_file(directory: Path, algorithm: str = "SM4", max_tries: int = 3) -> Path:
    """Issue a CCB card (activated, PIN :data:`INITIAL_PIN`) into ``directory/card.json``."""
    generation = "3.00" if algorithm == "SM4" else "2.00"
    issued = issue(Holder("张三", _ssn()), bank="CCB", generation=generation,
                   algorithm=algorithm, pin=INITIAL_PIN, pin_max_tries=max_tries,
                   issue_date=dt.date(2024, 5, 6))
    path = directory / "card.json"
    atomic_write(path, dumps(issued.doc))
    return path


class _Counter:
    """The counter terminal's side of PIN RELOAD (card/psam.py sequence)."""

    def __init__(self, psam: VirtualPsam) -> None:
        self.psam = psam

    @staticmethod
    def _tx(device: VirtualCard | VirtualPsam, cmd: bytes) -> tuple[bytes, int]:
        out = device.transmit(cmd)
        return out[:-2], int.from_bytes(out[-2:], "big")

    def prepare_reload(self, card: VirtualCard, new_pin: str) -> bytes:
        """Everything before the reload command; returns the command ``84 24 00 01 …``."""
        fci, sw = self._tx(card, bytes(C.select_ssse()))
        if sw != 0x9000:
            raise RuntimeError(f"SELECT SSSE answered {sw:04X}")
        alg = fci[-1]
        factor = atrmod.diversification_factor(card.atr())
        challenge, sw = self._tx(card, bytes(C.get_challenge(8)))
        if sw != 0x9000:
            raise RuntimeError(f"GET CHALLENGE answered {sw:04X}")
        p1 = alg << 4 | 0x03
        _, sw = self._tx(self.psam, bytes(C.delivery_session_key(p1, 0x01, factor, challenge)))
        if sw != 0x9000:
            raise RuntimeError(f"PSAM DELIVERY SESSION KEY answered {sw:04X}")
        body = bytes([len(new_pin)]) + codec.pin_encode(new_pin)
        enc, sw = self._tx(self.psam, bytes(C.cipher_data(0x00, body)))
        if sw != 0x9000:
            raise RuntimeError(f"PSAM CIPHER DATA answered {sw:04X}")
        header = bytes.fromhex("84240001")
        mac, sw = self._tx(self.psam, bytes(C.cipher_data(
            0x05, header + bytes([len(enc) + 4]) + enc)))
        if sw != 0x9000:
            raise RuntimeError(f"PSAM MAC answered {sw:04X}")
        return header + bytes([len(enc) + 4]) + enc + mac


def _other_pin(rng: random.Random, current: str) -> str:
    while True:
        pin = f"{rng.randrange(10 ** 6):06d}"
        if pin != current:
            return pin


class Campaign:
    """One card file, many runs. :meth:`run_one` is one run; :meth:`run` the campaign."""

    def __init__(self, directory: Path, *, seed: int = 0, algorithm: str = "SM4",
                 max_tries: int = 3) -> None:
        self.dir = directory
        self.rng = random.Random(seed)
        self.max_tries = max_tries
        self.path = new_card_file(directory, algorithm, max_tries)
        self.pin = INITIAL_PIN
        self.spent = 0  # wrong guesses compared since the last durable reset
        self.hits_seen: dict[str, int] = {}
        self.counter = _Counter(VirtualPsam.from_doc(make_psam_doc("370800", 7)))
        self.result = CampaignResult(seed=seed, algorithm=algorithm)

    def _card(self, plan: FaultPlan) -> VirtualCard:
        return VirtualCard.from_image(self.path, faults=plan, rng=self.rng.randbytes)

    def _load(self, where: str) -> CardImage | None:
        try:
            return load_card_image(self.path)
        except ImageError as exc:
            self.result.violations.append(f"run {self.result.runs}: image unreadable {where}: "
                                          f"{exc}")
            return None

    def _choose(self, tries: int) -> str:
        if tries == 0:
            return self.rng.choice(("reload", "reload", "verify_blocked"))
        return self.rng.choices(OPS[:5], weights=(3, 4, 2, 2, 1))[0]

    def run_one(self) -> None:
        res = self.result
        before = self._load("before the run")
        if before is None:
            return
        rec = before.pins["ssse"]
        tries0 = rec.tries_left
        op = self._choose(tries0)
        new_pin = _other_pin(self.rng, self.pin)
        wrong = _other_pin(self.rng, self.pin)
        plan = FaultPlan()
        card = self._card(plan)
        if op == "reload":
            command = self.counter.prepare_reload(card, new_pin)
        else:
            out = card.transmit(bytes(C.select_ssse()))
            if out[-2:] != b"\x90\x00":
                res.violations.append(f"run {res.runs}: SELECT SSSE answered {out[-2:].hex()}")
            if op == "verify_ok":
                command = bytes(C.verify(self.pin))
            elif op in ("verify_wrong", "verify_blocked"):
                command = bytes(C.verify(wrong if op == "verify_wrong" or self.rng.random() < .5
                                         else self.pin))
            elif op == "change_ok":
                command = bytes(C.change_pin(self.pin, new_pin))
            else:
                command = bytes(C.change_pin(wrong, new_pin))
        start = len(plan.hits)
        span = self.hits_seen.get(op, 16)
        step = self.rng.randrange(span + 1)
        plan.power_cut_at(step)
        cut = False
        sw = 0
        try:
            out = card.transmit(command)
            sw = int.from_bytes(out[-2:], "big")
        except PowerCut:
            cut = True
        hits = plan.hits[start:]
        if not cut:
            self.hits_seen[op] = len(hits)
            res.completed += 1
        else:
            res.cuts += 1
            res.cut_at[hits[-1] if hits else "?"] += 1
        res.by_op[op] += 1
        res.runs += 1
        self._check(op, cut, sw, hits, tries0, new_pin)

    def _check(self, op: str, cut: bool, sw: int, hits: list[str], tries0: int,
               new_pin: str) -> None:
        res = self.result
        n = res.runs
        leftovers = [p.name for p in self.dir.iterdir() if p.name.endswith(".tmp")]
        if leftovers:
            res.violations.append(f"run {n} ({op}): temporary files left: {leftovers}")
            for name in leftovers:
                (self.dir / name).unlink()
        after = self._load(f"after {op} {'cut at ' + hits[-1] if cut and hits else ''}")
        if after is None:
            return
        rec = after.pins["ssse"]
        tries = rec.tries_left
        has_old, has_new = rec.matches(self.pin), rec.matches(new_pin)
        compared = "pin.compared" in hits
        where = f"run {n} ({op}, {'cut at ' + hits[-1] if cut and hits else 'no cut'})"
        bad = res.violations.append
        mx = self.max_tries

        if op in ("verify_wrong", "change_wrong", "verify_blocked"):
            if not has_old:
                bad(f"{where}: the PIN changed")
            if op == "verify_blocked":
                if compared or tries != 0 or (not cut and sw != 0x6983):
                    bad(f"{where}: a blocked PIN was evaluated (tries {tries}, sw {sw:04X})")
            elif compared and tries != tries0 - 1:
                bad(f"{where}: wrong PIN compared but tries went {tries0} -> {tries}")
            elif tries not in (tries0, tries0 - 1):
                bad(f"{where}: tries went {tries0} -> {tries}")
            if not cut and op != "verify_blocked" and sw != (0x63C0 | (tries0 - 1)):
                bad(f"{where}: answered {sw:04X}, expected 63C{tries0 - 1:X}")
            if compared and op != "verify_blocked":
                self.spent += 1
                res.wrong_guesses_compared += 1
        elif op == "verify_ok":
            if not has_old:
                bad(f"{where}: the PIN changed")
            if tries not in (tries0, tries0 - 1, mx):
                bad(f"{where}: tries went {tries0} -> {tries}")
            if "pin.restored" in hits and tries != mx:
                bad(f"{where}: counter not restored after a correct PIN")
            if not cut and (sw != 0x9000 or tries != mx):
                bad(f"{where}: answered {sw:04X} with tries {tries}")
        elif op in ("change_ok", "reload"):
            if has_old == has_new:
                bad(f"{where}: the card holds neither the old nor the new PIN")
            if has_new and tries != mx:
                bad(f"{where}: new PIN stored with tries {tries} (expected {mx})")
            allowed = (tries0,) if op == "reload" else (tries0, tries0 - 1, mx)
            if has_old and tries not in allowed:
                bad(f"{where}: old PIN kept but tries went {tries0} -> {tries}")
            if not cut and (sw != 0x9000 or not has_new):
                bad(f"{where}: answered {sw:04X}, new PIN stored: {has_new}")
            if has_new:
                self.pin = new_pin
        if tries > tries0 or (tries == mx and tries0 < mx):
            self.spent = 0
        if self.spent > mx - tries:
            bad(f"{where}: {self.spent} wrong guesses evaluated since the last reset but only "
                f"{mx - tries} tries consumed: an extra guess")
        if tries == 0 and tries0 > 0:
            res.blocked_reached += 1
        try:
            fresh = VirtualCard.from_image(self.path)
            out = fresh.transmit(bytes(C.select_ssse()))
            if out[-2:] != b"\x90\x00":
                bad(f"{where}: reloaded card answers SELECT SSSE with {out[-2:].hex()}")
        except ImageError as exc:
            bad(f"{where}: reloaded card does not start: {exc}")

    def run(self, runs: int, progress: bool = False) -> CampaignResult:
        t0 = time.perf_counter()
        every = max(1, runs // 20)
        for i in range(runs):
            self.run_one()
            if progress and (i + 1) % every == 0:
                r = self.result
                print(f"\rpower-cut campaign: {i + 1}/{runs} runs, {r.cuts} cuts, "
                      f"{len(r.violations)} violations", end="", file=sys.stderr, flush=True)
        if progress:
            print(file=sys.stderr)
        self.result.seconds = time.perf_counter() - t0
        return self.result


def run_campaign(runs: int, *, seed: int = 0, algorithm: str = "SM4",
                 directory: Path | None = None, progress: bool = False) -> CampaignResult:
    """Run ``runs`` runs on a fresh card image in ``directory`` (a temporary one if None)."""
    if directory is not None:
        directory.mkdir(parents=True, exist_ok=True)
        return Campaign(directory, seed=seed, algorithm=algorithm).run(runs, progress)
    with tempfile.TemporaryDirectory(prefix="sscard-powercut-") as tmp:
        return Campaign(Path(tmp), seed=seed, algorithm=algorithm).run(runs, progress)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m terminal.sim.powercut",
        description="Power-cut campaign: VERIFY / CHANGE PIN / PIN RELOAD with power cut at a "
                    "random step; checks that no cut buys an extra PIN guess and that the card "
                    "image always loads (spec/card.md §7).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  python -m terminal.sim.powercut --runs 5000\n"
               "  python -m terminal.sim.powercut --runs 2000 --algorithm 3DES --seed 7")
    add_arguments(parser)
    args = parser.parse_args(argv)
    return run_cli(args)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--runs", type=int, default=5000, help="runs per algorithm")
    parser.add_argument("--seed", type=int, default=None, help="replay a campaign")
    parser.add_argument("--algorithm", choices=("SM4", "3DES", "both"), default="both")
    parser.add_argument("--dir", type=Path, default=None,
                        help="keep the card image here (default: a temporary directory)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def run_cli(args: argparse.Namespace) -> int:
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2 ** 32)
    algs = ("SM4", "3DES") if args.algorithm == "both" else (args.algorithm,)
    results = []
    for alg in algs:
        d = args.dir / alg if args.dir is not None else None
        results.append(run_campaign(args.runs, seed=seed, algorithm=alg, directory=d,
                                    progress=not args.json))
    if args.json:
        print(json.dumps([r.to_dict() for r in results], indent=2, ensure_ascii=False))
    else:
        for r in results:
            print(f"{r.algorithm}: {r.runs} runs in {r.seconds:.1f} s, {r.cuts} power cuts, "
                  f"{r.completed} completed, {r.wrong_guesses_compared} wrong PINs compared, "
                  f"PIN blocked {r.blocked_reached} times; cuts by checkpoint: "
                  + ", ".join(f"{k} {v}" for k, v in sorted(r.cut_at.items())))
            for v in r.violations[:20]:
                print(f"  VIOLATION {v}")
        print(f"seed {seed}: " + ("no violation" if all(r.ok for r in results)
                                  else "VIOLATIONS FOUND (replay with --seed)"))
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())

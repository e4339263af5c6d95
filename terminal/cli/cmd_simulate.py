"""``sscard simulate``: the city simulator, the bank test and the power-cut campaign.

* ``sscard simulate --terminals N --minutes M`` plays a day of the seed city
  (:mod:`terminal.sim.city`: host-level load through signed HTTP clients; the card is
  modelled, not emulated) and prints a closing report;
* ``sscard simulate --bank-test --minutes M`` runs the Jepsen-style bank test
  (:mod:`terminal.sim.banktest`) on SQLite and PostgreSQL;
* ``sscard simulate --power-cut --runs N`` runs the card power-cut campaign
  (:mod:`terminal.sim.powercut`).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from terminal.cli import CliError
from terminal.cli.args import check_output, count, minutes, seconds

EPILOG = """examples:
  sscard simulate --terminals 8 --minutes 2
        a two-minute city day with 8 terminals on a private host (SQLite)
  sscard simulate --terminals 4 --minutes 1 --host http://127.0.0.1:8700
        load an existing host (populated with sscard host populate)
  sscard simulate --bank-test --minutes 5
        the bank test: terminals, host kills, a checker of the books (SQLite and PostgreSQL)
  sscard simulate --power-cut --runs 5000
        power cut at a random step of VERIFY / CHANGE PIN / PIN RELOAD, 5000 runs per cipher
"""


def register(sub: Any) -> None:
    p = sub.add_parser(
        "simulate", help="city simulator, bank test, power-cut campaign",
        description="Play a day of Jining's pharmacies and hospitals against a host, or run "
                    "the bank test (--bank-test) or the card power-cut campaign (--power-cut).",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--bank-test", action="store_true",
                      help="run the Jepsen-style bank test instead of the city")
    mode.add_argument("--power-cut", action="store_true",
                      help="run the card power-cut campaign instead of the city")
    p.add_argument("--terminals", type=count(1), default=4,
                   help="terminals (city) or terminal processes (bank test, 1..10)")
    p.add_argument("--minutes", type=minutes, default=1.0, help="how long to run")
    p.add_argument("--host", default=None, help="an existing host (http://HOST:PORT); default: "
                   "start a private one")
    p.add_argument("--db", default=None,
                   help="database of the private host (default: a temporary SQLite file)")
    p.add_argument("--holders", type=count(1, 4_000_000), default=2000,
                   help="card holders to draw from (1 to 4000000)")
    p.add_argument("--seed", type=int, default=None, help="random seed (replay)")
    p.add_argument("--think", type=seconds(zero=True), default=0.02,
                   help="mean pause between visits per terminal, seconds (0 = flat out)")
    p.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both",
                   help="bank test: which store")
    p.add_argument("--runs", type=count(1), default=5000,
                   help="power-cut campaign: runs per cipher")
    p.add_argument("--json", type=Path, default=None, metavar="FILE",
                   help="city: also write the closing report as JSON to FILE (a new file, "
                        "see --force)")
    p.add_argument("--force", action="store_true",
                   help="let --json replace an existing file")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from terminal.sim.hostproc import sigterm_as_interrupt

    mode = "--bank-test" if args.bank_test else "--power-cut" if args.power_cut else ""
    if mode:
        given = [opt for opt, v in (("--host", args.host), ("--db", args.db),
                                    ("--json", args.json),
                                    ("--force", args.force or None)) if v is not None]
        if given:
            one = len(given) == 1
            it = "it" if one else "them"
            why = ("it makes its own host and databases" if args.bank_test else
                   "it runs on virtual cards, without a host")
            raise CliError(f"{' and '.join(given)} {'is' if one else 'are'} for the city "
                           f"simulation only: {mode} does not use {it} ({why}); leave {it} "
                           "out")
    else:
        if args.host is not None and args.db is not None:
            raise CliError("--db is the database of a private host: with --host the "
                           "simulation uses that host's own database; give one or the other")
        if args.json is not None:
            _check_json(args)
        if args.db is not None:
            _check_db(args.db)
    with sigterm_as_interrupt():   # `kill`/`timeout` clean up as Ctrl-C does
        if args.power_cut:
            return _power_cut(args)
        if args.bank_test:
            return _bank_test(args)
        return _city(args)


def _check_json(args: argparse.Namespace) -> None:
    """Refuse a ``--json`` file whose writing would lose something: the private host's
    database (even one the simulation is yet to create), a policy file the simulation
    reads, a directory, an existing file without ``--force``."""
    import os

    from ledger.service import DEFAULT_POLICY_DIR
    from terminal.cli.cmd_checkout import database_files

    inputs = [*database_files(args.db), *sorted(DEFAULT_POLICY_DIR.glob("*.toml"))]
    target = os.path.realpath(args.json)
    for src in inputs:   # a database not created yet is a file the run will write
        if os.path.realpath(src) == target:
            raise CliError(f"--json {args.json} is the command's own input file: choose "
                           "another file")
    check_output(args.json, force=args.force, inputs=inputs, option="--json")


def _check_db(url: str) -> None:
    """Reach the private host's database up front (its directory exists, the server
    answers), before anything is started."""
    from ledger.errors import HostError
    from ledger.store import open_store

    try:
        store = open_store(url)
        try:
            store.run(lambda tx: tx.one("SELECT 1"))
        finally:
            store.close()
    except HostError as exc:
        raise CliError(f"--db: {exc}") from None


def _city(args: argparse.Namespace) -> int:
    from terminal.sim.city import SimulationError, simulate
    from terminal.sim.hostproc import ProcessError, Terminated

    try:
        report = simulate(terminals=args.terminals, seconds=args.minutes * 60, host=args.host,
                          db=args.db, holders=args.holders, seed=args.seed or 0,
                          think=args.think)
    except (SimulationError, ProcessError) as exc:
        raise CliError(str(exc)) from None
    print(report.text())
    if args.json is not None:
        args.json.write_text(json.dumps(report.to_dict(), ensure_ascii=False, indent=2) + "\n",
                             "utf-8")
    if report.interrupted:   # Ctrl-C or SIGTERM: the report of what was done, then 130/143
        raise Terminated if report.terminated else KeyboardInterrupt
    return 0


def _bank_test(args: argparse.Namespace) -> int:
    from terminal.sim import banktest
    from terminal.sim.hostproc import ProcessError

    if not 1 <= args.terminals <= banktest.MAX_WORKERS:
        raise CliError(f"--terminals must be 1..{banktest.MAX_WORKERS} for the bank test")
    ns = argparse.Namespace(backend=args.backend, workers=args.terminals,
                            holders=min(args.holders, 200), seed=args.seed, no_nemesis=False,
                            keep=False, json=False)
    try:
        rc = banktest.run_cli(ns, args.minutes * 60)
    except ProcessError as exc:
        raise CliError(f"{exc}") from None
    return rc


def _power_cut(args: argparse.Namespace) -> int:
    from terminal.sim import powercut

    ns = argparse.Namespace(runs=args.runs, seed=args.seed, algorithm="both", dir=None,
                            json=False)
    return powercut.run_cli(ns)

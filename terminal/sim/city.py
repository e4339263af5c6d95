"""``sscard simulate``: a day of the seed city's pharmacies and hospitals (seed rule C6).

**What it drives, honestly.** The simulator is host-level load: each terminal is a thread
with its own signed HTTP client (:class:`terminal.sim.banktest.SimClient`) that sends the
requests a real checkout or admission desk sends — 1101 person lookup (the card was read),
2101 trial, 2102 settlement, 2103 cancel, 2401/2301/2402/2303/2304 for an inpatient stay,
8103/8105/8102 for a lost card and its replacement. The *card* is not emulated here: the
holders come from ``sscard host populate`` (which creates host records, not card images),
so PIN entry is modelled — a wrong PIN costs the holder a retry and time, three wrong PINs
lock the card and the sale is abandoned (seed C3) — and no APDU is exchanged. The card and
reader sides are measured by the card, reader and checkout benchmarks.

**The city.** Jining (济宁市, 370800): the city office (市直) and eleven districts and
counties, the twelve service offices listed at the end of the seed article. Unless
``--host`` is given, the simulator starts its own host (``sscard host serve`` on a
temporary SQLite database, or ``--db URL``) initialised with the fixture policy plus, per
district, two designated pharmacies, one hospital, the social security card office and the
four issuing banks' counters (seed A2), and populates ``--holders`` synthetic holders.
With ``--host URL`` it uses the fixture policy's institutions (at most 10 terminals) and
assumes the host was populated with at least ``--holders`` holders.

**The mix**: pharmacy terminals sell (1101, 2101, 2102), hospital terminals run stays
(2401, 2301, 2402, 2303, 2304); two of three terminals are pharmacies. Most carts are small
(one or two boxes), one in ten is large; 4 % of holders mistype the PIN at
least once, 0.3 % lock their card; 1.5 % of sales are cancelled at the counter; 0.5 % of
visits are a lost card reported and replaced. Live progress goes to stderr every second;
the closing report gives throughput, latency percentiles per transaction code and errors by
reason.
"""

from __future__ import annotations

import collections
import contextlib
import json
import multiprocessing as mp
import os
import queue as queue_mod
import random
import re
import shutil
import signal
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ledger.client import drug_line
from ledger.policy import load_policies
from ledger.populate import holder
from ledger.service import DEFAULT_POLICY_DIR
from ledger.store.base import safe_url
from terminal.sim.banktest import BANK_COUNTERS, MAX_WORKERS, SimClient, connect, psn_of, send
from terminal.sim.hostproc import Terminated

AREA = "370800"

#: The twelve service areas of the seed article: (code suffix, name, office address).
DISTRICTS: tuple[tuple[str, str, str], ...] = (
    ("00", "市直", "济宁市红星中路36号"),
    ("11", "任城区", "济宁市建设路34号"),
    ("12", "兖州区", "兖州区建设东路210号"),
    ("81", "曲阜市", "曲阜市裕隆路96号"),
    ("83", "邹城市", "邹城市太平东路2666号"),
    ("26", "微山县", "微山县东风东路65号"),
    ("27", "鱼台县", "鱼台县工业路京港汽车城"),
    ("28", "金乡县", "金乡县文峰东路智慧产业园"),
    ("29", "嘉祥县", "嘉祥县机场路8号"),
    ("30", "汶上县", "汶上县泉河路288号"),
    ("31", "泗水县", "泗水县中兴路"),
    ("32", "梁山县", "梁山县人民北路"),
)
BANK_SHORT = {"CCB": "CCB", "ICBC": "ICB", "ABC": "ABC", "BOC": "BOC"}
BANK_NAMES = {"CCB": "建设银行", "ICBC": "工商银行", "ABC": "农业银行", "BOC": "中国银行"}
PHARMACIES_PER_DISTRICT = 2


class SimulationError(Exception):
    """The simulation cannot run as asked; the message says why and what to do."""


@dataclass(frozen=True)
class Site:
    """Where a terminal stands: its institution and the district's counters."""

    district: str
    code: str
    kind: str            # pharmacy | hospital
    office: str
    banks: dict[str, str]


def city_sites() -> list[Site]:
    """The simulated institutions, district by district (codes are 12 characters)."""
    sites = []
    for dd, name, _ in DISTRICTS:
        office = f"S{AREA}{dd}001"
        banks = {b: f"B{AREA}{dd}{BANK_SHORT[b]}" for b in BANK_SHORT}
        for n in range(1, PHARMACIES_PER_DISTRICT + 1):
            sites.append(Site(name, f"P{AREA}{dd}{n:03d}", "pharmacy", office, banks))
        sites.append(Site(name, f"H{AREA}{dd}001", "hospital", office, banks))
    return sites


def fixture_sites() -> list[Site]:
    """The fixture policy's institutions (for ``--host``: a host we did not initialise)."""
    return [Site("市直", "P37080000001", "pharmacy", "S37080000001", BANK_COUNTERS),
            Site("任城区", "P37080000002", "pharmacy", "S37080000001", BANK_COUNTERS),
            Site("市直", "H37080000001", "hospital", "S37080000001", BANK_COUNTERS),
            Site("任城区", "H37080000002", "hospital", "S37080000001", BANK_COUNTERS)]


def write_policy_dir(target: Path) -> Path:
    """Copy the fixture policies and add the simulated institutions to the seed city's."""
    target.mkdir(parents=True, exist_ok=True)
    for p in DEFAULT_POLICY_DIR.glob("*.toml"):
        shutil.copy(p, target / p.name)
    blocks = ["", "# -- institutions added by sscard simulate (one set per district) --"]
    for dd, name, addr in DISTRICTS:
        blocks += ["[[institutions]]", f'code = "S{AREA}{dd}001"',
                   f'name = "{name}社保卡办公室（{addr}）"', 'kind = "office"']
        for n in range(1, PHARMACIES_PER_DISTRICT + 1):
            blocks += ["[[institutions]]", f'code = "P{AREA}{dd}{n:03d}"',
                       f'name = "{name}第{n}定点药房"', 'kind = "pharmacy"']
        blocks += ["[[institutions]]", f'code = "H{AREA}{dd}001"',
                   f'name = "{name}人民医院"', 'kind = "hospital"']
        for bank, short in BANK_SHORT.items():
            blocks += ["[[institutions]]", f'code = "B{AREA}{dd}{short}"',
                       f'name = "{BANK_NAMES[bank]}{name}支行"', 'kind = "bank"',
                       f'bank = "{bank}"']
    path = target / f"{AREA}.toml"
    path.write_text(path.read_text("utf-8") + "\n".join(blocks) + "\n", "utf-8")
    return target


# -- statistics -----------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile of ``values`` (``q`` in 0..100)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


@dataclass
class Stats:
    """What the terminals did; shared by all terminal threads (guarded by ``lock``)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    latency: dict[str, list[float]] = field(
        default_factory=lambda: collections.defaultdict(list))
    outcomes: collections.Counter[str] = field(default_factory=collections.Counter)
    errors: collections.Counter[str] = field(default_factory=collections.Counter)
    visits: collections.Counter[str] = field(default_factory=collections.Counter)
    by_district: collections.Counter[str] = field(default_factory=collections.Counter)
    settlements: int = 0
    amount_fen: int = 0

    def request(self, infno: str, seconds: float, outcome: str, err: str = "") -> None:
        with self.lock:
            self.latency[infno].append(seconds)
            self.outcomes[outcome] += 1
            if err:
                self.errors[err] += 1

    def drain(self) -> dict[str, Any]:
        """What was counted since the last drain (picklable), and forget it."""
        with self.lock:
            delta = {"latency": dict(self.latency), "outcomes": dict(self.outcomes),
                     "errors": dict(self.errors), "visits": dict(self.visits),
                     "by_district": dict(self.by_district), "settlements": self.settlements,
                     "amount_fen": self.amount_fen}
            self.latency = collections.defaultdict(list)
            for c in (self.outcomes, self.errors, self.visits, self.by_district):
                c.clear()
            self.settlements = 0
            self.amount_fen = 0
        return delta

    def merge(self, delta: dict[str, Any]) -> None:
        """Add a :meth:`drain` result from another process."""
        with self.lock:
            for k, v in delta["latency"].items():
                self.latency[k].extend(v)
            self.outcomes.update(delta["outcomes"])
            self.errors.update(delta["errors"])
            self.visits.update(delta["visits"])
            self.by_district.update(delta["by_district"])
            self.settlements += delta["settlements"]
            self.amount_fen += delta["amount_fen"]

    def visit(self, kind: str, district: str) -> None:
        with self.lock:
            self.visits[kind] += 1
            self.by_district[district] += 1

    def settled(self, fen: int) -> None:
        with self.lock:
            self.settlements += 1
            self.amount_fen += fen


def _reason(ans: dict[str, Any]) -> str:
    code = str(ans.get("err_code") or "refused")
    msg = str(ans.get("err_msg") or ans.get("error") or "")
    short = re.sub(r"\b[A-Z]?\d[\dA-Z.]*\b", "#", msg.split(":")[0].split("(")[0]).strip()[:60]
    return f"{code}: {short}" if short else code


# -- a terminal -------------------------------------------------------------------------------


class CityTerminal:
    """One terminal at one site, playing visits until ``deadline``."""

    def __init__(self, url: str, site: Site, slot: int, holders: int, seed: int,
                 stats: Stats, items: list[tuple[str, int]], think: float) -> None:
        self.url, self.site, self.slot = url, site, slot
        self.rng = random.Random(seed)
        self.holders = holders
        self.stats = stats
        self.items = items
        self.think = think
        self.clients: dict[str, SimClient] = {}
        self.cards: dict[int, tuple[str, str, str]] = {}
        self.locked: set[int] = set()

    def client(self, code: str) -> SimClient:
        if code not in self.clients:
            self.clients[code] = connect(self.url, code, self.slot, timeout=10.0)
        return self.clients[code]

    def call(self, code: str, infno: str, input: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        c = self.client(code)
        env = c.envelope(infno, input)
        t0 = time.perf_counter()
        outcome, ans = send(c, env)
        if outcome == "unknown" and infno in ("2102", "2103", "2304", "2401"):
            psn = psn_of(input)
            send(c, c.envelope("2601", {"data": {"psn_no": psn, "omsgid": env["msgid"],
                                                 "oinfno": infno}}))
        self.stats.request(infno, time.perf_counter() - t0, outcome,
                           "" if outcome == "ok" else _reason(ans))
        return outcome, ans

    def card(self, i: int) -> tuple[str, str, str]:
        if i not in self.cards:
            h = holder(i, AREA)
            self.cards[i] = (str(h["card_no"]), str(h["card_sn"]), str(h["bank"]))
        return self.cards[i]

    def refresh(self, i: int) -> None:
        h = holder(i, AREA)
        outcome, ans = self.call(self.site.office, "1101", {"data": {
            "mdtrt_cert_type": "02", "mdtrt_cert_no": h["certno"]}})
        ci = ans.get("output", {}).get("cardinfo") or {} if outcome == "ok" else {}
        if ci.get("card_no"):
            self.cards[i] = (ci["card_no"], ci["card_sn"], ci.get("bank", ""))

    def cart(self) -> list[dict[str, Any]]:
        big = self.rng.random() < 0.10
        n = self.rng.randint(3, 6) if big else self.rng.choice((1, 1, 1, 2))
        lines = []
        for k in range(n):
            code, price = self.rng.choice(self.items)
            qty = self.rng.randint(1, 3) if big else 1
            lines.append(drug_line(str(k + 1), code, qty, price))
        return lines

    def pin_entry(self, i: int) -> bool:
        """Model the holder typing the PIN (the card is not emulated; see the module doc)."""
        if i in self.locked:
            self.stats.request("pin", 0.0, "failed", "card: PIN locked (seed C3)")
            return False
        if self.rng.random() < 0.04:
            wrong = 3 if self.rng.random() < 0.075 else 1
            self.stats.request("pin", 0.0, "failed", "card: wrong PIN")
            if wrong == 3:
                self.locked.add(i)
                self.stats.request("pin", 0.0, "failed", "card: PIN locked (seed C3)")
                return False
        return True

    def pharmacy_visit(self) -> None:
        i = self.rng.randrange(self.holders)
        h = holder(i, AREA)
        self.stats.visit("pharmacy", self.site.district)
        card_no, card_sn, _ = self.card(i)
        outcome, ans = self.call(self.site.code, "1101", {"data": {
            "mdtrt_cert_type": "03", "mdtrt_cert_no": card_no, "card_sn": card_sn}})
        if outcome != "ok":
            if ans.get("err_code") in ("card_state", "card_mismatch", "not_found"):
                self.refresh(i)
            return
        lines = self.cart()
        info = SimClient.druginfo(psn_no=str(h["psn_no"]), lines=lines, card_no=card_no,
                                  card_sn=card_sn, insutype=str(h["insutype"]))
        outcome, ans = self.call(self.site.code, "2101", info)
        if outcome != "ok" or not self.pin_entry(i):
            return
        outcome, ans = self.call(self.site.code, "2102", info)
        if outcome != "ok":
            return
        s = ans["output"]["setlinfo"]
        self.stats.settled(sum(int(ln["det_item_fee_sumamt"].replace(".", "")) for ln in lines))
        if self.rng.random() < 0.015:
            self.call(self.site.code, "2103", {"data": {
                "setl_id": s["setl_id"], "mdtrt_id": s["mdtrt_id"], "psn_no": h["psn_no"]}})

    def hospital_visit(self) -> None:
        i = self.rng.randrange(self.holders)
        h = holder(i, AREA)
        self.stats.visit("hospital stay", self.site.district)
        card_no, card_sn, _ = self.card(i)
        code, psn = self.site.code, str(h["psn_no"])
        outcome, ans = self.call(code, "2401", {"mdtrtinfo": {
            "psn_no": psn, "mdtrt_cert_type": "03", "mdtrt_cert_no": card_no,
            "card_sn": card_sn, "insutype": h["insutype"], "med_type": "21",
            "begntime": time.strftime("%Y-%m-%d %H:%M:%S")}})
        if outcome != "ok":
            if ans.get("err_code") in ("card_state", "card_mismatch"):
                self.refresh(i)
            return
        mdtrt_id = ans["output"]["result"]["mdtrt_id"]
        lines = self.cart()
        outcome, _ = self.call(code, "2301", {"feedetail": [
            {**ln, "mdtrt_id": mdtrt_id, "psn_no": psn} for ln in lines]})
        if outcome != "ok":
            return
        outcome, _ = self.call(code, "2402", {"dscginfo": {
            "mdtrt_id": mdtrt_id, "psn_no": psn, "endtime": time.strftime("%Y-%m-%d %H:%M:%S")}})
        if outcome != "ok":
            return
        total = sum(int(ln["det_item_fee_sumamt"].replace(".", "")) for ln in lines)
        data = {"mdtrt_id": mdtrt_id, "psn_no": psn, "medfee_sumamt": f"{total / 100:.2f}",
                "acct_used_flag": "1", "cash_src": "cash"}
        outcome, _ = self.call(code, "2303", {"data": data})
        if outcome == "ok" and self.pin_entry(i):
            outcome, _ = self.call(code, "2304", {"data": data})
            if outcome == "ok":
                self.stats.settled(total)

    def lost_card(self) -> None:
        i = self.rng.randrange(self.holders)
        h = holder(i, AREA)
        self.stats.visit("lost card", self.site.district)
        card_no, _, bank = self.card(i)
        counter = self.site.banks[bank or str(h["bank"])]
        outcome, _ = self.call(counter, "8103", {"data": {
            "card_no": card_no, "certno": h["certno"], "loss_type": "2"}})
        outcome, _ = self.call(counter, "8105", {"data": {
            "card_no": card_no, "certno": h["certno"], "reason": "lost", "fee_src": "cash",
            "certificate_no": ""}})
        self.refresh(i)
        new_no, _, bank = self.card(i)
        if outcome == "ok" and bank != "CCB":
            self.call(counter, "8102", {"data": {"card_no": new_no, "certno": h["certno"],
                                                 "pin_changed": True}})
        self.locked.discard(i)

    def run(self, deadline: float, stop: threading.Event) -> None:
        while time.time() < deadline and not stop.is_set():
            r = self.rng.random()
            try:
                if r < 0.005:
                    self.lost_card()
                elif self.site.kind == "hospital":
                    self.hospital_visit()
                else:
                    self.pharmacy_visit()
            except Exception as exc:  # a terminal that cannot reach the host keeps trying
                self.stats.request("terminal", 0.0, "failed", f"terminal: {type(exc).__name__}")
                time.sleep(0.2)
            if self.think:
                time.sleep(self.rng.expovariate(1 / self.think))


def _site_for(sites: list[Site], t: int) -> Site:
    """Terminal ``t``: districts in turn, and within a district its pharmacies and hospital
    in turn, so that any number of terminals covers both kinds and many districts."""
    per = PHARMACIES_PER_DISTRICT + 1
    if len(sites) != len(DISTRICTS) * per:
        return sites[t % len(sites)]
    district = t % len(DISTRICTS)
    return sites[district * per + (t // len(DISTRICTS) + t) % per]


# -- the run ----------------------------------------------------------------------------------


@dataclass
class CityReport:
    """The closing report (also the benchmark's data)."""

    terminals: int
    seconds: float
    holders: int
    stats: Stats
    interrupted: bool = False
    """Ctrl-C or SIGTERM stopped the run early: the report covers what was done."""
    terminated: bool = False
    """It was SIGTERM."""

    def to_dict(self) -> dict[str, Any]:
        s = self.stats
        requests = sum(len(v) for k, v in s.latency.items() if k not in ("pin", "terminal"))
        lat = {k: {"count": len(v), "median": statistics.median(v) if v else 0.0,
                   "p90": percentile(v, 90), "p99": percentile(v, 99),
                   "samples": v[-2000:]}
               for k, v in sorted(s.latency.items()) if k not in ("pin", "terminal")}
        return {
            "terminals": self.terminals, "seconds": round(self.seconds, 2),
            "holders": self.holders, "requests": requests,
            "requests_per_s": requests / self.seconds if self.seconds else 0.0,
            "settlements": s.settlements,
            "settlements_per_s": s.settlements / self.seconds if self.seconds else 0.0,
            "amount_yuan": round(s.amount_fen / 100, 2), "visits": dict(s.visits),
            "by_district": dict(s.by_district), "outcomes": dict(s.outcomes),
            "errors": dict(s.errors.most_common()), "latency_seconds": lat,
        }

    def text(self) -> str:
        d = self.to_dict()
        out = [f"city simulation: {d['terminals']} terminals, {d['seconds']:g} s, "
               f"{d['holders']} holders",
               "  visits: " + ", ".join(f"{k} {v}" for k, v in sorted(d["visits"].items())),
               f"  settlements: {d['settlements']} ({d['settlements_per_s']:.1f}/s), "
               f"{d['amount_yuan']:.2f} yuan; requests {d['requests']} "
               f"({d['requests_per_s']:.1f}/s)",
               "  latency by transaction code (ms):  count  median    p90    p99"]
        for k, v in d["latency_seconds"].items():
            out.append(f"    {k:<6} {v['count']:>26} {v['median'] * 1000:7.1f} "
                       f"{v['p90'] * 1000:6.1f} {v['p99'] * 1000:6.1f}")
        out.append("  by district: " + ", ".join(f"{k} {v}" for k, v in
                                                 d["by_district"].items()))
        if d["errors"]:
            out.append("  errors by reason:")
            out += [f"    {n:>6}  {r}" for r, n in d["errors"].items()]
        else:
            out.append("  errors: none")
        return "\n".join(out)


def _progress(stats: Stats, t0: float, seconds: float, stop: threading.Event,
              stream: Any) -> None:
    tty = stream.isatty()
    last = -1e9
    while not stop.wait(1.0):
        now = time.time() - t0
        if now < 0:
            continue
        with stats.lock:
            n = sum(len(v) for k, v in stats.latency.items() if k not in ("pin", "terminal"))
            settle = stats.latency.get("2102", [])[-500:]
            errs = sum(stats.errors.values())
            done = stats.settlements
        p50, p99 = percentile(settle, 50) * 1000, percentile(settle, 99) * 1000
        line = (f"simulate: {now:5.0f}/{seconds:.0f} s  requests {n} "
                f"({n / max(now, 1e-9):.0f}/s)  settlements {done}  errors {errs}  "
                f"2102 p50 {p50:.0f} ms p99 {p99:.0f} ms")
        if tty:
            print("\r" + line, end="", file=stream, flush=True)
        elif now - last >= 5:
            print(line, file=stream, flush=True)
            last = now
    if tty:
        print(file=stream)


def simulate(*, terminals: int, seconds: float, host: str | None = None,
             db: str | None = None, holders: int = 2000, seed: int = 0, think: float = 0.02,
             progress: bool = True, stream: Any = sys.stderr, warmup: float = 0.0,
             processes: int | None = None) -> CityReport:
    """Run the city for ``seconds`` with ``terminals`` terminals; return the report.

    The terminals are threads spread over ``processes`` load-generator processes (default:
    half the CPU cores, leaving the other half to the host; at most one per terminal).
    ``warmup`` seconds run first and are not counted (connections, sign-ins, caches)."""
    from ledger.service import initialize
    from ledger.store import open_store
    from terminal.sim.hostproc import HostProcess

    tmp: Path | None = None
    server: HostProcess | None = None
    procs: list[Any] = []
    stats = Stats()
    stop = threading.Event()
    mon: threading.Thread | None = None
    done = nproc = 0
    t0 = deadline = time.time()
    interrupted = terminated = False
    try:   # whatever stops the run (an error, Ctrl-C, SIGTERM): nothing is left behind
        if host is None:
            sites = city_sites()
            if terminals > len(sites) * MAX_WORKERS // 3:
                raise SimulationError(f"at most {len(sites) * MAX_WORKERS // 3} terminals; "
                                      "use fewer terminals")
            tmp = Path(tempfile.mkdtemp(prefix="sscard-simulate-"))
            url = db or f"sqlite:///{tmp / 'city.db'}"
            store = open_store(url)
            try:
                initialize(store, write_policy_dir(tmp / "policies"))
                row = store.run(lambda tx: tx.one(
                    "SELECT COUNT(*) FROM cards WHERE card_no >= 'Y' AND card_no < 'Z'"))
                have = int(row[0]) if row else 0
                if int(have) < holders:
                    from ledger.populate import populate
                    populate(store, holders - int(have))
            finally:
                store.close()
            server = HostProcess(url, log_path=tmp / "host.log")
            server.start()
            base = server.url
        else:
            sites = fixture_sites()
            if terminals > MAX_WORKERS:
                raise SimulationError(f"with --host at most {MAX_WORKERS} terminals (the "
                                      "fixture institutions); use fewer terminals")
            try:
                connect(host, sites[0].code, MAX_WORKERS - 1, timeout=5.0,
                        sign_in_within=5.0).close()
            except Exception as exc:
                raise SimulationError(f"cannot use the host at {safe_url(host)}: {exc}; start "
                                      "it with `sscard host serve` or leave out --host") from None
            base = host
        pol = load_policies(DEFAULT_POLICY_DIR)[AREA]
        items = [(it.code, it.price) for it in pol.items.values() if 0 < it.price <= 20000]
        rng = random.Random(seed)
        # terminals spread over the districts: the k-th terminal of a district gets slot k
        per_district: collections.Counter[str] = collections.Counter()
        specs: list[tuple[Site, int, int]] = []
        for t in range(terminals):
            site = _site_for(sites, t)
            # a slot keeps msgids apart where terminals share an institution code: within a
            # district (its office and bank counters), or everywhere with --host (shared
            # counters)
            slot = per_district[site.district] if host is None else t
            per_district[site.district] += 1
            specs.append((site, slot % MAX_WORKERS, rng.randrange(2 ** 32)))
        nproc = max(1, min(terminals, processes or (os.cpu_count() or 2) // 2))
        t0 = time.time() + 2.0 + warmup   # processes start, sign in and warm up before t0
        deadline = t0 + seconds
        ctx = mp.get_context("spawn")
        queue: Any = ctx.Queue()
        procs = [ctx.Process(target=_group_main, daemon=True, args=({
            "url": base, "holders": holders, "items": items, "think": think, "t0": t0,
            "deadline": deadline, "terminals": specs[g::nproc]}, queue)) for g in range(nproc)]
        mon = threading.Thread(target=_progress, args=(stats, t0, seconds, stop, stream),
                               daemon=True) if progress else None
        try:
            for p in procs:
                p.start()
            if mon:
                mon.start()
            while done < nproc and time.time() < deadline + 45:
                try:
                    kind, delta = queue.get(timeout=0.5)
                except queue_mod.Empty:
                    if not any(p.is_alive() for p in procs):
                        break
                    continue
                if kind == "stats":
                    stats.merge(delta)
                else:
                    done += 1
        except KeyboardInterrupt as exc:   # the run stops early: report what was done
            interrupted, terminated = True, isinstance(exc, Terminated)
    finally:
        stop.set()
        if mon and mon.is_alive():
            mon.join(2)
        elapsed = min(time.time(), deadline) - t0
        for p in procs:
            if p.pid is None:       # never started
                continue
            p.join(5)
            if p.is_alive():
                p.kill()
        if server is not None:
            server.stop()
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    if done < nproc and not stats.latency:
        if interrupted:
            raise Terminated if terminated else KeyboardInterrupt
        codes = ", ".join(str(p.exitcode) for p in procs)
        raise SimulationError(f"the load-generator processes stopped without results (exit codes "
                           f"{codes}); run with SSCARD_DEBUG=1 for details")
    return CityReport(terminals, max(elapsed, 1e-9), holders, stats, interrupted, terminated)


def _group_main(spec: dict[str, Any], queue: Any) -> None:
    """A load-generator process: some terminals as threads, stats sent back twice a second."""
    from terminal.sim.hostproc import raise_interrupt

    signal.signal(signal.SIGTERM, raise_interrupt)   # stop as cleanly as on Ctrl-C
    stats = Stats()
    stop = threading.Event()
    terms = [CityTerminal(spec["url"], site, slot, spec["holders"], seed, stats,
                          [(str(c), int(p)) for c, p in spec["items"]], spec["think"])
             for site, slot, seed in spec["terminals"]]
    threads = [threading.Thread(target=t.run, args=(spec["deadline"], stop), daemon=True)
               for t in terms]
    try:
        for th in threads:
            th.start()
        while time.time() < spec["t0"]:
            time.sleep(0.02)
        stats.drain()                      # the warm-up does not count
        while any(th.is_alive() for th in threads):
            time.sleep(0.5)
            queue.put(("stats", stats.drain()))
            if time.time() > spec["deadline"] + 30:
                stop.set()
                break
        for th in threads:
            th.join(5)
        queue.put(("stats", stats.drain()))
    except KeyboardInterrupt:
        stop.set()
    finally:
        for term in terms:
            for c in term.clients.values():
                with contextlib.suppress(Exception):  # signing out is a courtesy
                    c.close()
        queue.put(("done", None))


def sweep(concurrency: list[int], seconds: float, *, holders: int = 500,
          seed: int = 0) -> list[dict[str, Any]]:
    """Throughput against the number of terminals (one fresh host per point; no think time)."""
    rows = []
    for n in concurrency:
        rep = simulate(terminals=n, seconds=seconds, holders=holders, seed=seed, think=0.0,
                       progress=False, warmup=1.0).to_dict()
        lat = rep["latency_seconds"].get("2102", {})
        rows.append({"terminals": n, "settlements_per_s": rep["settlements_per_s"],
                     "requests_per_s": rep["requests_per_s"],
                     "settle_latency_seconds": {"median": lat.get("median", 0.0),
                                                "p99": lat.get("p99", 0.0)},
                     "samples_2102": lat.get("samples", [])[-500:],
                     "errors": sum(rep["errors"].values())})
    return rows


def report_json(report: CityReport) -> str:
    return json.dumps(report.to_dict(), ensure_ascii=False, indent=2)


def bench_result(quick: bool) -> dict[str, Any]:
    """The simulator as a benchmark (``python -m bench`` stage ``city``).

    Settlements per second with N terminals flat out (no think time) on a private SQLite
    host over HTTP, each against the same run's one-terminal throughput (the scaling
    ratio), and the 2102 latency at N terminals against one terminal's.
    """
    points = [1, 4] if quick else [1, 2, 4, 8, 16]
    seconds = 4.0 if quick else 20.0
    rows = sweep(points, seconds, holders=300 if quick else 2000)
    base = rows[0]
    figures = []
    for r in rows[1:]:
        n = r["terminals"]
        figures.append({
            "name": f"settlements/s, {n} terminals vs 1", "unit": "/s",
            "value": r["settlements_per_s"], "baseline": base["settlements_per_s"],
            "baseline_name": "1 terminal",
            "ratio": r["settlements_per_s"] / base["settlements_per_s"]
            if base["settlements_per_s"] else None})
        lat, lat1 = r["settle_latency_seconds"], base["settle_latency_seconds"]
        figures.append({
            "name": f"2102 latency, {n} terminals vs 1", "unit": "s",
            "median": lat["median"], "p99": lat["p99"], "baseline": lat1["median"],
            "baseline_name": "1 terminal",
            "ratio": lat["median"] / lat1["median"] if lat1["median"] else None,
            "ratio_p99": lat["p99"] / lat1["p99"] if lat1["p99"] else None})
    return {"benchmark": "city simulator over HTTP (sscard host serve, SQLite)",
            "seconds_per_point": seconds, "sweep": rows, "figures": figures}

"""One chaos run: a seeded workload on two projects (``local:`` and the fake Drive), faults on
Drive, ``kill -9`` and restart at random moments, and the invariants at every checkpoint.

A run is a sequence of rounds.  In a round the workload runs with random pauses,
the daemon is killed and restarted at the planned moments, and Drive fails
requests (5xx, 429, rate-limit 403s, dropped connections, lost responses,
stalls).  At the end of a round the faults are cleared and the runner waits for
quiescence (`status` idle with nothing pending), checks, asks for `sync` (a full
walk), waits again and checks again.  Both checks count; the first one is what a
user sees while `status` says idle.

``SYNCD_CHAOS_SEED`` replays one seed; the seed is printed first.
"""

from __future__ import annotations

import json
import random
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.fakes.drive_server import FakeDrive

from .control import Daemon, isolated_env, write_config
from .invariants import Counts, check
from .targets import DriveTarget, LocalTarget, drive_section, md5_bytes, write_drive_credentials
from .workload import Workload

NAMES = {"local": "plocal", "gdrive": "pdrive"}
FOREIGN = {  # seeded on each target by "someone else"; syncd must never touch them
    "FOREIGN-notes.md": b"notes a person keeps next to the mirror\n",
    "colab-outputs/run1/metrics.csv": b"epoch,loss\n1,0.5\n",
}


FIRST_MIRROR_S = 60.0  # the longest wait for the first mirror (see _run)


@dataclass
class Settings:
    seed: int
    rounds: int = 2
    ops_per_round: int = 60
    kills: int = 2
    remotes: tuple[str, ...] = ("local", "gdrive")
    fault_rate: float = 0.05
    targeted_faults: bool = True  # drops, lost responses, a stall, a broken chunk per round
    delay: str = "200ms"
    quiet_timeout: float = 45.0
    budget_s: float | None = None  # stop starting rounds after this long
    big_files: bool = True
    seed_files: int = 40
    only: tuple[str, ...] | None = None  # restrict the workload to these operations
    trace: bool = False  # keep every operation and the paths it changed (Report.trace)
    # Drive's creation pace (files and folders a second); None: the fake's own, as Drive
    # (tests/fakes/drive_limits.py).  The short CI run raises it: it is about faults and
    # kills, and syncd at Drive's pace has its own tests (test_e2e_gdrive.py).
    drive_create_rate: float | None = None


@dataclass
class Round:
    number: int
    ops: int
    kills: int
    quiet_s: dict[str, float | None]
    sync_s: dict[str, float | None]
    idle: dict[str, Counts]  # checked when status said idle
    final: dict[str, Counts]  # checked after `sync` and idle again
    stuck: dict[str, str] = field(default_factory=dict)  # not quiet: state, reason, pending


@dataclass
class Report:
    settings: Settings
    rounds: list[Round] = field(default_factory=list)
    ops: int = 0
    kills: int = 0
    op_counts: dict[str, int] = field(default_factory=dict)
    requests: int = 0
    faults: int = 0
    seconds: float = 0.0
    log_tail: str = ""
    watcher_restarts: int = 0  # "the file watcher stopped" in the daemon log (watchdog died)
    trace: list[str] = field(default_factory=list)

    def totals(self, which: str) -> dict[str, Counts]:
        out = {r: Counts() for r in self.settings.remotes}
        for rnd in self.rounds:
            for remote, counts in getattr(rnd, which).items():
                out[remote].add(counts)
        return out

    def clean(self) -> bool:
        complete = len(self.rounds) == self.settings.rounds
        quiet = all(None not in {**r.quiet_s, **r.sync_s}.values() for r in self.rounds)
        counted = all(c.total() == 0 for w in ("idle", "final") for c in self.totals(w).values())
        return complete and quiet and counted

    def quiet_times(self) -> list[float]:
        return [t for r in self.rounds for t in r.quiet_s.values() if t is not None]

    def describe(self) -> str:
        s = self.settings
        times = self.quiet_times()
        lines = [
            f"chaos seed {s.seed} (replay: SYNCD_CHAOS_SEED={s.seed})",
            f"  operations {self.ops}, kills {self.kills}, Drive requests {self.requests}, "
            f"faults {self.faults}, rounds {len(self.rounds)}/{s.rounds}, {self.seconds:.0f} s",
            "  time to quiescence: "
            + (
                f"median {statistics.median(times):.1f} s, max {max(times):.1f} s"
                if times
                else "never quiet"
            ),
        ]
        never = [
            f"round {r.number} {name}"
            for r in self.rounds
            for name, t in {**r.quiet_s}.items()
            if t is None
        ]
        if never:
            lines.append(f"  not quiet within {s.quiet_timeout:.0f} s: {', '.join(never)}")
        for which, label in (("idle", "while idle"), ("final", "after sync")):
            for remote, counts in self.totals(which).items():
                lines.append(f"  {remote:6} {label:10}: {counts.summary()}")
        return "\n".join(lines)


class ChaosRun:
    """Everything one seed needs, under ``base``; ``run()`` returns the report."""

    def __init__(self, settings: Settings, base: Path, say: Callable[[str], None] = print) -> None:
        self.s = settings
        self.base = base
        self.say = say
        self.rng = random.Random(settings.seed ^ 0x5EED)  # kills and pauses
        self.fault_rng = random.Random(settings.seed ^ 0xFA17)  # apart: same ops on any remote
        self.fake: FakeDrive | None = None
        self.report = Report(settings)
        self.roots = {r: base / f"src-{r}" for r in settings.remotes}
        self.workload = Workload(
            settings.seed,
            [self.roots[r] for r in settings.remotes],
            big_files=settings.big_files,
            only=settings.only,
            trace=settings.trace,
        )
        self.targets: dict[str, LocalTarget | DriveTarget] = {}
        self.verified: dict[str, set[int]] = {r: set() for r in settings.remotes}
        self.foreign: dict[str, dict[str, str]] = {r: {} for r in settings.remotes}
        self.daemon: Daemon | None = None

    # --- set-up ------------------------------------------------------------------------------

    def _config(self) -> Path:
        env = isolated_env(self.base / "home")
        projects, top = [], {}
        for remote in self.s.remotes:
            if remote == "local":
                target: LocalTarget | DriveTarget = LocalTarget(self.base / "mirror-local")
            else:
                assert self.fake is not None
                creds = write_drive_credentials(
                    self.fake, self.base / "home/.config/syncd/drive-credentials.json"
                )
                top["drive"] = drive_section(self.fake, creds)
                target = DriveTarget(self.fake, f"syncd/{NAMES[remote]}")
            self.targets[remote] = target
            projects.append(
                {
                    "name": NAMES[remote],
                    "path": str(self.roots[remote]),
                    "mirror": {"to": target.address(), "delay": self.s.delay, "workers": 4},
                }
            )
        self.env = env
        return write_config(self.base / "chaos.yaml", projects, **top)

    def _seed_foreign(self) -> None:
        for remote, target in self.targets.items():
            for rel, data in FOREIGN.items():
                target.put(rel, data)
                self.foreign[remote][rel] = md5_bytes(data)

    # --- the run -----------------------------------------------------------------------------

    def run(self) -> Report:
        start = time.monotonic()
        self.say(f"chaos seed {self.s.seed} (replay: SYNCD_CHAOS_SEED={self.s.seed})")
        if "gdrive" in self.s.remotes:
            self.fake = FakeDrive().start()
            if self.s.drive_create_rate is not None:
                self.fake.throttle.configure(self.s.drive_create_rate)
        try:
            self._run(start)
        finally:
            if self.daemon is not None:
                log = self.daemon.log
                self.report.log_tail = log[-4000:]
                self.report.watcher_restarts = log.count("the file watcher stopped")
                self.daemon.kill()
            if self.fake is not None:
                self.report.requests = len(self.fake.requests)
                self.report.faults = sum(1 for r in self.fake.requests if r.fault)
                self.fake.stop()
            self.report.seconds = time.monotonic() - start
            self.report.ops = self.workload.ops
            self.report.op_counts = dict(self.workload.counts)
            self.report.trace = list(self.workload.trace or [])
        return self.report

    def _run(self, start: float) -> None:
        self.base.mkdir(parents=True, exist_ok=True)
        self.workload.seed_files(self.s.seed_files)
        cfg = self._config()
        self.daemon = Daemon(cfg, self.env, self.base / "daemon.log").start()
        self.daemon.wait_up()
        # The first mirror creates every seed file and folder: at Drive's creation pace
        # (the fake's 3/s after a burst of 10, tests/fakes/drive_limits.py) that alone
        # takes ~15 s, whatever the rounds' own timeout is.
        quiet = self._wait_quiet(max(self.s.quiet_timeout * 2, FIRST_MIRROR_S))
        if None in quiet.values():
            raise AssertionError(f"the first mirror never finished: {quiet}\n{self.daemon.log}")
        self._seed_foreign()
        for remote in self.s.remotes:
            _, self.verified[remote] = self._check(remote)
        self.workload.checkpoint()
        total = self.s.rounds * self.s.ops_per_round
        kill_at = set(self.rng.sample(range(3, total), min(self.s.kills, total - 3)))
        done = 0
        for number in range(1, self.s.rounds + 1):
            if self.s.budget_s and time.monotonic() - start > self.s.budget_s:
                self.say(f"  budget of {self.s.budget_s:.0f} s spent after {number - 1} rounds")
                break
            kills = 0
            self._faults_on()
            for _ in range(self.s.ops_per_round):
                self.workload.step()
                done += 1
                if done in kill_at:
                    self._kill_and_restart()
                    kills += 1
                self._pause()
            self._faults_off()
            self.report.kills += kills
            self.report.rounds.append(self._settle(number, kills))
            self.workload.checkpoint()

    def _pause(self) -> None:
        roll = self.rng.random()
        if roll < 0.7:
            time.sleep(self.rng.uniform(0, 0.02))
        elif roll < 0.95:
            time.sleep(self.rng.uniform(0.02, 0.15))
        else:
            time.sleep(self.rng.uniform(0.3, 1.0))  # let a batch or two go out mid-run

    def _kill_and_restart(self) -> None:
        assert self.daemon is not None
        self.daemon.kill()
        for _ in range(self.rng.choice([0, 0, 1, 3])):  # edits made while syncd is down
            self.workload.step()
        self.daemon.start()

    def _faults_on(self) -> None:
        if self.fake is None:
            return
        rng = self.fault_rng
        self.fake.inject_random(
            self.s.fault_rate, [500, 503, 500, 503, 429, 403], seed=rng.randrange(2**31)
        )
        if not self.s.targeted_faults:
            return
        for _ in range(2):
            self.fake.inject(drop=True, count=rng.randrange(1, 3), after=rng.randrange(0, 40))
            self.fake.inject(lose_response=True, method="POST", count=1, after=rng.randrange(0, 40))
        self.fake.inject(delay=rng.uniform(1, 4), count=1, after=rng.randrange(0, 60))
        self.fake.drop_upload_after(rng.randrange(1, 4) * 2**20)

    def _faults_off(self) -> None:
        if self.fake is not None:
            self.fake.clear_faults()

    # --- quiescence and checks ---------------------------------------------------------------

    def _wait_quiet(self, timeout: float, settle: float = 0.6) -> dict[str, float | None]:
        """Per project: seconds until idle with nothing pending (for `settle` s), or None."""
        assert self.daemon is not None
        t0 = time.monotonic()
        time.sleep(0.5)
        since: dict[str, float | None] = {NAMES[r]: None for r in self.s.remotes}
        done: dict[str, float | None] = {}
        self._last_status: dict[str, Any] = {}
        while time.monotonic() - t0 < timeout and len(done) < len(since):
            st = self.daemon.status()
            self._last_status = st or {}
            now = time.monotonic()
            for p in st["projects"] if st else []:
                name = p["name"]
                if name in done or name not in since:
                    continue
                m = p["mirror"]
                if p["state"] == "idle" and not m["pending"] and not m["in_flight"]:
                    since[name] = since[name] or now
                    if now - since[name] >= settle:  # type: ignore[operator]
                        done[name] = now - t0
                else:
                    since[name] = None
            time.sleep(0.05)
        return {r: done.get(NAMES[r]) for r in self.s.remotes}

    def _check(self, remote: str) -> tuple[Counts, set[int]]:
        return check(
            self.roots[remote],
            self.targets[remote],
            self.workload.lineage,
            self.verified[remote],
            self.foreign[remote],
        )

    def _settle(self, number: int, kills: int) -> Round:
        assert self.daemon is not None
        if not self.daemon.alive():
            self.daemon.start()
        self.daemon.wait_up()
        quiet = self._wait_quiet(self.s.quiet_timeout)
        idle = {r: self._check(r)[0] for r in self.s.remotes}
        try:
            self.daemon.ask("sync")
        except (OSError, ValueError):
            pass
        synced = self._wait_quiet(self.s.quiet_timeout)
        final = {}
        for remote in self.s.remotes:
            final[remote], self.verified[remote] = self._check(remote)
        stuck = {}
        for remote in self.s.remotes:
            if synced[remote] is None:
                p = next(
                    (
                        p
                        for p in self._last_status.get("projects", [])
                        if p["name"] == NAMES[remote]
                    ),
                    None,
                )
                stuck[remote] = (
                    f"{p['state']} ({p['reason']}), pending {p['mirror']['pending']}"
                    if p
                    else "no answer"
                )
                if p and p["state"] == "paused" and "--confirm-deletes" in (p["reason"] or ""):
                    # What a user would do: confirm, so that the run goes on (still counted).
                    self.daemon.ask("resume", project=NAMES[remote], confirm_deletes=True)
        rnd = Round(number, self.s.ops_per_round, kills, quiet, synced, idle, final, stuck)
        self.say(self._round_line(rnd))
        return rnd

    def _round_line(self, r: Round) -> str:
        parts = [f"  round {r.number}: kills {r.kills}"]
        for remote in self.s.remotes:
            q, s = r.quiet_s[remote], r.sync_s[remote]
            parts.append(
                f"{remote} quiet {'-' if q is None else f'{q:.1f}s'}"
                f"/{'-' if s is None else f'{s:.1f}s'} "
                f"idle[{r.idle[remote].total()}] final[{r.final[remote].total()}]"
                + (f" stuck: {r.stuck[remote][:160]}" if remote in r.stuck else "")
            )
        return "; ".join(parts)


def report_json(report: Report) -> dict[str, Any]:
    """The figures, for `bench/chaos.py --json` and the CI test's failure message."""
    return {
        "seed": report.settings.seed,
        "operations": report.ops,
        "kills": report.kills,
        "requests": report.requests,
        "faults": report.faults,
        "watcher_restarts": report.watcher_restarts,
        "seconds": round(report.seconds, 1),
        "quiet_s": report.quiet_times(),
        "ops": report.op_counts,
        "idle": {r: c.__dict__ for r, c in report.totals("idle").items()},
        "final": {r: c.__dict__ for r, c in report.totals("final").items()},
    }


def dumps(report: Report) -> str:
    return json.dumps(report_json(report), indent=2, ensure_ascii=False)

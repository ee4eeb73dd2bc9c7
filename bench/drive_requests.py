"""Drive requests per edited file, and edit → Drive latency, before and after #14, in one run.

    .venv/bin/python -m bench.drive_requests                 # 3 runs per path, ~6 min
    .venv/bin/python -m bench.drive_requests --runs 5 --latency 0.3

The real ``syncd run`` (a subprocess, through pydrive2 / googleapiclient)
mirrors a 60-file project into a FakeDrive served from this process with
``--latency`` seconds added to every request (default 0.15 s: a real network's
round trip, not loopback's).  Then, on the already mirrored files:

- single edits: append a line to one file, wait until the fake holds the new
  md5 (polled in-process every ~1 ms, no HTTP), pause, next (``--edits``);
- a batch: rewrite 50 files at once (a ``git checkout``), wait for all of them.

Printed per path: Drive requests per edited file for both (every request the
fake answered in that phase, divided by the files edited; no manifest writes
exist on this branch), and the single edits' edit → Drive p50/p95 at the
default ``delay`` (1 s).  Target (#14): ≤ 1.05 requests per edited file, and
p95 ≤ delay + one request's latency + 100 ms.

The two paths run from the same code: ``before`` sets
``SYNCD_BENCH_DRIVE_PER_FILE_CHECK=1`` in the daemon's environment, which
brings back the per-file ``files.get`` before every write over a known file
and an unconditional upload (the code before #14, kept selectable for this
bench only: ``remotes/gdrive/remote_edits.py``); ``after`` is the shipped
path (a conditional upload, ``If-Match``).  Runs alternate between the paths
so machine load hits both alike; figures are medians over ``--runs``.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from syncd.remotes.gdrive.remote_edits import PER_FILE_ENV
from tests.fakes.drive_server import FakeDrive

from .benchlib import machine, med, pct, source_version
from .drive_fake import Daemon, write_config

FILES = 60
BATCH = 50
DELAY = 1.0  # mirror.delay's default: the config below leaves it out


@dataclass
class Figures:
    single: float  # requests per edited file, single edits
    batch: float  # requests per edited file, one batch of BATCH files
    lat: list[float]  # seconds, edit → Drive, single edits
    missed: int


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def wait_until(check: object, timeout: float) -> bool:
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        if check():  # type: ignore[operator]
            return True
        time.sleep(0.001)
    return False


def holds(fake: FakeDrive, ids: dict[str, str], src: Path, paths: list[str]) -> bool:
    return all(fake.get(ids[p]).get("md5Checksum") == md5((src / p).read_bytes()) for p in paths)


def one_run(before: bool, latency: float, edits: int, rps: float) -> Figures:
    base = Path(tempfile.mkdtemp(prefix="syncd-bench-requests-"))
    src, home = base / "src", base / "home"
    paths = [f"d{i % 3}/f{i:03d}.py" for i in range(FILES)]
    for p in paths:
        (src / p).parent.mkdir(parents=True, exist_ok=True)
        (src / p).write_text(f"# {p}\n" + "x = 1\n" * 50)
    home.mkdir()
    if before:
        os.environ[PER_FILE_ENV] = "1"
    else:
        os.environ.pop(PER_FILE_ENV, None)
    try:
        with FakeDrive() as fake:
            fake.set_write_limit(None)  # creations are not measured; edits are updates
            fake.latency = latency
            daemon = Daemon(home, write_config(home, src, fake, rps, workers=4))
            try:
                daemon.start()
                daemon.wait_idle(300)
                root = fake.find("syncd/p")
                ids = fake.ids(root["id"]) if root else {}
                assert len(ids) == FILES, f"{len(ids)} of {FILES} files on the fake"
                time.sleep(1.0)
                return measure(fake, daemon, src, ids, paths, edits)
            finally:
                daemon.stop()
    finally:
        os.environ.pop(PER_FILE_ENV, None)
        shutil.rmtree(base, ignore_errors=True)


def measure(
    fake: FakeDrive, daemon: Daemon, src: Path, ids: dict[str, str], paths: list[str], edits: int
) -> Figures:
    rng = random.Random(1)
    fake.reset_log()
    lat: list[float] = []
    missed = 0
    for i in range(edits):
        rel = rng.choice(paths[:10])
        t0 = time.perf_counter()
        with open(src / rel, "a") as f:
            f.write(f"# edit {i}\n")
        if wait_until(lambda r=rel: holds(fake, ids, src, [r]), 30.0):
            lat.append(time.perf_counter() - t0)
        else:
            missed += 1
        time.sleep(0.3)  # the next edit is its own batch
    time.sleep(1.0)
    single = fake.count() / edits

    fake.reset_log()
    changed = paths[FILES - BATCH :]
    for p in changed:
        (src / p).write_text(f"# {p} after a checkout\n")
    if not wait_until(lambda: holds(fake, ids, src, changed), 120.0):
        missed += 1
    time.sleep(1.5)
    batch = fake.count() / BATCH
    for line in daemon.problems()[:3]:
        print(f"  syncd said: {line}", flush=True)
    return Figures(single, batch, lat, missed)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=3, help="runs per path (default 3)")
    ap.add_argument("--edits", type=int, default=20, help="single edits per run (default 20)")
    ap.add_argument("--latency", type=float, default=0.15, help="seconds per request (0.15)")
    ap.add_argument("--rps", type=float, default=8.0, help="drive.requests_per_second (8)")
    args = ap.parse_args()
    print(f"# Drive requests per edited file (fake, {args.latency * 1000:g} ms per request)")
    print(f"{machine()}; code {source_version()}")
    print(
        f"{FILES} files mirrored, then {args.edits} single edits and one batch of {BATCH}; "
        f"delay={DELAY:g}s (default), requests_per_second={args.rps:g}, workers=4"
    )
    results: dict[str, list[Figures]] = {"before": [], "after": []}
    for run in range(args.runs):
        for name in ("before", "after"):
            fig = one_run(name == "before", args.latency, args.edits, args.rps)
            results[name].append(fig)
            print(
                f"run {run + 1} {name:6}: single {fig.single:.2f} req/file, "
                f"batch {fig.batch:.2f} req/file, edit → Drive p50 {med(fig.lat):.3f} s "
                f"p95 {pct(fig.lat, 95):.3f} s{f', {fig.missed} missed' if fig.missed else ''}",
                flush=True,
            )
    target = DELAY + args.latency + 0.1
    print(f"\nmedians of {args.runs} runs (target: ≤ 1.05 req/file; p95 ≤ {target:.2f} s)")
    print("| path | req/file, single edits | req/file, 50-file batch | p50 | p95 |")
    print("|---|---|---|---|---|")
    for name, figs in results.items():
        print(
            f"| {name} | {med([f.single for f in figs]):.2f} | {med([f.batch for f in figs]):.2f}"
            f" | {med([med(f.lat) for f in figs]):.3f} s"
            f" | {med([pct(f.lat, 95) for f in figs]):.3f} s |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

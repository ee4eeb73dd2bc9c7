"""Prints figures for the ``gdrive:`` target against FakeDrive on loopback.

    .venv/bin/python -m bench.drive_fake                     # Drive's write limit on: ~13 min
    .venv/bin/python -m bench.drive_fake --throttle off      # the limit off: ~6 min
    .venv/bin/python -m bench.drive_fake --throttle off --rps 1000   # pacer out of the way too

The real ``syncd run`` (a subprocess) mirrors a generated tree into a
FakeDrive served from this process, through the real pydrive2 /
googleapiclient / oauth2client stack.  Printed: the first mirror of the tree
(files/s, API requests per file), edit → Drive latency (append a line to a
random file, poll the fake every ~1 ms until that file's md5 on "Drive"
matches; 50 edits at the default 1 s delay), and a restart with nothing
changed (seconds from spawn to idle, API requests, uploads).

``--rps`` is ``drive.requests_per_second`` (default 8, as shipped).
``--throttle`` is the fake's write limit in creations per second per user
(default 3, the fake's own default, after rclone's "about 2 files per second";
bursts of ``--burst``, default 10; ``off`` removes it): beyond it the fake
answers ``403 userRateLimitExceeded`` as Drive does, and the figures show what
a first mirror really costs.  ``--latency`` adds that many seconds to every
request (loopback has none).  Printed for the first mirror: files/s, the 403s
met, and requests per file (all, and answered ones).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from tests.fakes.drive_server import FakeDrive
from tests.gdrive_support import write_credentials

from .benchlib import REPO, machine, make_tree, med, pct

IDLE = re.compile(r"INFO p: \w+ → idle")


class Daemon:
    """``python -m syncd run`` with its own HOME; stderr lines are kept with arrival times."""

    def __init__(self, home: Path, config: Path) -> None:
        self.home, self.config = home, config
        self.lines: list[tuple[float, str]] = []
        self.started = 0.0
        self.proc: subprocess.Popen[str] | None = None
        self._cond = threading.Condition()

    def start(self) -> None:
        env = dict(os.environ, PYTHONPATH=str(REPO / "daemon"), HOME=str(self.home))
        env.update(NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost")
        for var, sub in (("XDG_STATE_HOME", "state"), ("XDG_CONFIG_HOME", "config")):
            env[var] = str(self.home / sub)
        env["XDG_RUNTIME_DIR"] = str(self.home / "run")
        (self.home / "run").mkdir(mode=0o700, exist_ok=True)
        self.lines = []
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "syncd", "run", "-c", str(self.config)],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        for line in self.proc.stderr:
            with self._cond:
                self.lines.append((time.perf_counter(), line.rstrip("\n")))
                self._cond.notify_all()

    def wait_idle(self, timeout: float) -> float:
        """Seconds from spawn to the first "→ idle" log line."""
        deadline = time.perf_counter() + timeout
        with self._cond:
            while True:
                for at, line in self.lines:
                    if IDLE.search(line):
                        return at - self.started
                if time.perf_counter() > deadline or self.proc.poll() is not None:
                    tail = "\n".join(line for _, line in self.lines[-8:])
                    raise TimeoutError(f"syncd never went idle; last lines:\n{tail}")
                self._cond.wait(0.5)

    def problems(self) -> list[str]:
        return [line for _, line in self.lines if " WARNING " in line or " ERROR " in line]

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(30)


def write_config(home: Path, src: Path, fake: FakeDrive, rps: float, workers: int) -> Path:
    # The bench's own credentials: a drive.file grant, as `syncd auth drive` leaves it.
    creds = write_credentials(fake, home / "config/syncd/drive-credentials.json")
    config = home / "syncd.yaml"
    config.write_text(
        f"drive:\n  credentials: {creds}\n  endpoint: {fake.url}\n"
        f"  requests_per_second: {rps}\n"
        f"projects:\n  - name: p\n    path: {src}\n    mirror:\n"
        f"      to: gdrive:/syncd/p\n      workers: {workers}\n"  # delay: the default, 1 s
    )
    return config


def edit_latencies(
    src: Path, fake: FakeDrive, ids: dict[str, str], n: int, timeout: float
) -> tuple[list[float], int]:
    """Append a line to ``n`` random files; seconds until the fake holds each new content."""
    rng = random.Random(1)
    lat: list[float] = []
    missed = 0
    paths = sorted(ids)
    for i in range(n):
        rel = rng.choice(paths)
        line = f"# edit {i} {time.time():.6f}\n".encode()
        want = hashlib.md5((src / rel).read_bytes() + line).hexdigest()
        t0 = time.perf_counter()
        with open(src / rel, "ab") as f:
            f.write(line)
        while fake.get(ids[rel]).get("md5Checksum") != want:
            if time.perf_counter() - t0 > timeout:
                missed += 1
                break
            time.sleep(0.001)
        else:
            lat.append(time.perf_counter() - t0)
        time.sleep(rng.uniform(0.02, 0.08))
    return lat, missed


def say(text: str) -> None:
    print(text, flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--files", type=int, default=2000)
    ap.add_argument("--folders", type=int, default=50)
    ap.add_argument("--edits", type=int, default=50)
    ap.add_argument("--rps", type=float, default=8.0, help="drive.requests_per_second")
    ap.add_argument("--workers", type=int, default=4, help="mirror.workers")
    ap.add_argument("--timeout", type=float, default=1800.0, help="per wait for idle, seconds")
    ap.add_argument(
        "--throttle", default="3", help="fake's creations/s per user, or 'off' (default 3)"
    )
    ap.add_argument("--burst", type=float, default=10.0, help="fake's write burst (default 10)")
    ap.add_argument("--latency", type=float, default=0.0, help="seconds added per request")
    args = ap.parse_args()
    throttle = None if args.throttle == "off" else float(args.throttle)

    base = Path(tempfile.mkdtemp(prefix="syncd-bench-drive-"))
    src, home = base / "src", base / "home"
    src.mkdir()
    home.mkdir()
    make_tree(src, args.files, args.folders)
    say(f"# Google Drive (fake, loopback) — {machine()}")
    say(
        f"tree: {args.files} files (1–4 KB) in {args.folders} folders; "
        f"requests_per_second={args.rps:g}, workers={args.workers}, delay=1s (default)"
    )
    limit = "off" if throttle is None else f"{throttle:g} creations/s, burst {args.burst:g}"
    say(f"fake Drive: write limit {limit}; latency {args.latency * 1000:g} ms per request")
    with FakeDrive() as fake:
        fake.set_write_limit(throttle, args.burst)
        fake.latency = args.latency
        daemon = Daemon(home, write_config(home, src, fake, args.rps, args.workers))
        try:
            daemon.start()
            took = daemon.wait_idle(args.timeout)
            root = fake.find("syncd/p")
            ids = fake.ids(root["id"]) if root else {}
            assert len(ids) == args.files, f"{len(ids)} of {args.files} files on the fake"
            requests, ups = fake.count(), fake.count(path_contains="/upload/")
            limited = fake.count(reason="userRateLimitExceeded")
            say(
                f"first mirror: {took:.1f} s, {args.files / took:.2f} files/s, "
                f"{limited} × 403 userRateLimitExceeded, {requests} requests "
                f"({requests / args.files:.3f} per file; answered: "
                f"{(requests - limited) / args.files:.3f}), {ups} uploads — spawn to idle"
            )

            fake.reset_log()
            lat, missed = edit_latencies(src, fake, ids, args.edits, timeout=30.0)
            per_edit = fake.count() / max(1, args.edits)
            say(
                f"edit → Drive latency over {args.edits} edits: p50 {med(lat):.3f} s, "
                f"p95 {pct(lat, 95):.3f} s, max {max(lat, default=float('nan')):.3f} s"
                f"{f', {missed} missed' if missed else ''}; {per_edit:.2f} requests per edit"
            )
            daemon.stop()

            fake.reset_log()
            daemon.start()
            took = daemon.wait_idle(args.timeout)
            time.sleep(1.0)  # anything that would still follow the idle line
            say(
                f"restart with nothing changed: {took:.2f} s spawn to idle, "
                f"{fake.count()} requests, {fake.count(path_contains='/upload/')} uploads"
            )
            for line in daemon.problems()[:5]:
                say(f"  syncd said: {line}")
        finally:
            daemon.stop()
            shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

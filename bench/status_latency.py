"""How fast `syncd status` answers while the daemon tracks many files.

Creates a project of N small files (default 20,000 in 2,000 folders), starts
the daemon on it with a local target, waits until the first mirror is done,
then times `syncd status` and `syncd status --json` end to end (a new process
each time, as a person or script runs it) and the bare socket round trip.

    .venv/bin/python -m bench.status_latency [--files 20000] [--runs 30]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--files", type=int, default=20000)
    ap.add_argument("--runs", type=int, default=30)
    args = ap.parse_args()

    base = Path(tempfile.mkdtemp(prefix="syncd-status-", dir="/dev/shm"))
    env = dict(os.environ)
    for var, sub in (("HOME", "home"), ("XDG_STATE_HOME", "state"), ("XDG_RUNTIME_DIR", "run")):
        (base / sub).mkdir(mode=0o700)
        env[var] = str(base / sub)
    env["PYTHONPATH"] = str(REPO / "daemon")
    src = base / "src"
    for i in range(args.files):
        folder = src / f"d{i % max(1, args.files // 10):05d}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"f{i}.txt").write_text(f"{i}\n" * 50)
    cfg = base / "c.yaml"
    cfg.write_text(
        f"projects:\n  - name: p\n    path: {src}\n    mirror: {{to: 'local:{base / 'dst'}'}}\n"
    )
    exe = shutil.which("syncd", path=str(Path(sys.executable).parent)) or "syncd"
    cmd = [exe, "status", "-c", str(cfg)]
    daemon = subprocess.Popen(
        [sys.executable, "-m", "syncd", "run", "-c", str(cfg)],
        env=env,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            r = subprocess.run([*cmd, "--json"], env=env, capture_output=True, text=True)
            if r.returncode == 0:
                p = json.loads(r.stdout)["projects"][0]
                if p["state"] == "idle" and p["mirror"]["files"] == args.files:
                    break
            time.sleep(0.5)
        else:
            raise SystemExit("the daemon never finished the first mirror")

        from syncd.service.ipc import request, socket_path

        os.environ.update(env)  # the socket lives in this run's XDG_RUNTIME_DIR
        sock = socket_path(cfg)
        figures = {}
        for label, argv in (("syncd status", cmd), ("syncd status --json", [*cmd, "--json"])):
            times = []
            for _ in range(args.runs):
                t0 = time.perf_counter()
                subprocess.run(argv, env=env, capture_output=True, check=True)
                times.append(time.perf_counter() - t0)
            figures[label] = times
        times = []
        for _ in range(args.runs * 10):
            t0 = time.perf_counter()
            request(sock, "status")
            times.append(time.perf_counter() - t0)
        figures["socket round trip (in-process)"] = times
    finally:
        daemon.terminate()
        daemon.wait(30)
        shutil.rmtree(base, ignore_errors=True)

    print(f"status latency with {args.files} tracked files ({os.cpu_count()} cores)")
    print(f"{'what':34} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}")
    for label, times in figures.items():
        print(
            f"{label:34} {statistics.median(times) * 1e3:8.1f} {pct(times, 0.95) * 1e3:8.1f} "
            f"{max(times) * 1e3:8.1f}"
        )


if __name__ == "__main__":
    main()

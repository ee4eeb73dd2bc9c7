"""`syncd train` against the fake Kaggle on loopback: time to the push, and outputs home.

    .venv/bin/python -m bench.train_bench            # full run (~2 min)
    .venv/bin/python -m bench.train_bench --quick    # one rep, smaller outputs

1. Time from `syncd train PROJECT` (the CLI starting) to the kernel push (the fake
   receiving SaveKernel) on a 1,000-file project (990 source files of 1-4 KB, 10 random
   "weights" of 0.25 MB: 5 MB), with the daemon running (the usual case: the CLI asks it)
   and without one (the CLI snapshots and pushes itself): the folder unchanged since the
   last snapshot (reused, nothing uploaded), and with one file edited (a new dataset
   version is zipped, uploaded and processed first). The fake answers "ready" on the
   first status poll (real Kaggle processing takes minutes and is not syncd's to measure).
2. Bringing a finished run's outputs home (one 100 MB file and 50 files of 1 MB), on the
   same fake in the same run, alternating: `kaggle kernels output REF -p DIR` (the kaggle
   CLI, through the fake as an HTTP proxy) and syncd's fetch (``train.outputs``, in a
   process of its own, as the daemon does it): wall time with and without process start,
   throughput, and the peak RSS of each process.

Figures are medians over ``--reps`` runs.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from .benchlib import REPO, fresh_dir, machine, make_tree, med, scratch_base
from .benchlib import source_version as code_version
from .snapshot_bench import backdate, isolate, new_fake

REF = "alice/bench-code"
OUT_KERNEL = "alice/bench-outputs"
MB = 2**20


# --- section 1: syncd train → push --------------------------------------------------------


def project_1000(root: Path) -> None:
    make_tree(root, 990, 30)
    (root / "weights").mkdir()
    for i in range(10):
        (root / "weights" / f"layer{i}.npy").write_bytes(os.urandom(MB // 4))
    (root / "train.py").write_text("print('training')\n")
    backdate(root)


def config(base: Path, fake: Any, root: Path) -> Path:
    cfg = base / "train-bench.yaml"
    project = {
        "name": "bench",
        "path": str(root),
        "snapshot": {"dataset": REF, "title": "bench code"},
        "train": {"poll": "30s", "notify": False},
    }
    cfg.write_text(json.dumps({"kaggle": {"endpoint": fake.url}, "projects": [project]}))
    return cfg


def timed_train(cfg: Path, env: dict[str, str], fake: Any) -> float:
    """Seconds from starting `syncd train` to the fake receiving its SaveKernel."""
    before = fake.count("SaveKernel")
    pushed: list[float] = []
    watcher = threading.Thread(
        target=lambda: (
            fake.wait_for("SaveKernel", before + 1, 120) and pushed.append(time.perf_counter())
        )
    )
    watcher.start()
    started = time.perf_counter()
    args = [sys.executable, "-m", "syncd", "train", "bench", "-c", str(cfg)]
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300)
    watcher.join()
    assert done.returncode == 0 and pushed, done.stdout + done.stderr
    return pushed[0] - started


def edit_one(root: Path, n: int) -> None:
    target = next(iter(sorted(root.glob("t000/*.py"))))
    with open(target, "a") as f:
        f.write(f"# edit {n}\n")
    past = time.time() - 10
    os.utime(target, (past, past))


def train_to_push(base: Path, env: dict[str, str], reps: int) -> dict[str, float]:
    root = fresh_dir("train-p1000", scratch_base(50 * MB))
    project_1000(root)
    fake = new_fake()
    fake.max_gpu_sessions = 10**6  # every push stays queued: no cap, no quota in the way
    fake.gpu_quota_seconds = 1e12
    fake.hold_queue = True
    cfg = config(base, fake, root)
    syncd_env = {**os.environ, **env, "PYTHONPATH": str(REPO / "daemon")}
    rows: dict[str, list[float]] = {}
    edits = 0

    def measure(label: str, changed: bool) -> None:
        nonlocal edits
        if changed:
            edits += 1
            edit_one(root, edits)
        versions = len(fake.dataset(REF).versions) if fake.count("CreateDataset") else 0
        rows.setdefault(label, []).append(timed_train(cfg, syncd_env, fake))
        now = len(fake.dataset(REF).versions)
        assert now == versions + (1 if changed else 0), (label, versions, now)

    rows["first"] = [timed_train(cfg, syncd_env, fake)]  # creates the dataset: not measured
    for _ in range(reps):  # no daemon: the CLI snapshots and pushes itself
        measure("cli_unchanged", False)
        measure("cli_changed", True)
    daemon = subprocess.Popen(
        [sys.executable, "-m", "syncd", "run", "-c", str(cfg)],
        env=syncd_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            probe = [sys.executable, "-m", "syncd", "status", "-c", str(cfg)]
            if subprocess.run(probe, env=syncd_env, capture_output=True).returncode == 0:
                break
            time.sleep(0.2)
        for _ in range(reps):
            measure("daemon_unchanged", False)
            measure("daemon_changed", True)
    finally:
        daemon.terminate()
        daemon.wait(30)
        fake.stop()
        shutil.rmtree(root, ignore_errors=True)
    return (
        {k: med(v) for k, v in rows.items()}
        | {k + "_min": min(v) for k, v in rows.items()}
        | {k + "_max": max(v) for k, v in rows.items()}
    )


# --- section 2: outputs home --------------------------------------------------------------

WRITER = """
import os
chunk = bytes(range(256)) * 4096  # 1 MiB
with open("model.bin", "wb") as f:
    for _ in range({big}):
        f.write(chunk)
os.makedirs("ckpt", exist_ok=True)
for i in range({small}):
    with open(f"ckpt/part{{i:03d}}.bin", "wb") as f:
        f.write(chunk)
"""


def finished_kernel(fake: Any, big: int, small: int) -> None:
    from syncd.config import KaggleConfig
    from syncd.remotes.kaggle.kernels import KaggleKernels, KernelSpec

    kernels = KaggleKernels(KaggleConfig(endpoint=fake.url))
    spec = KernelSpec(OUT_KERNEL, "bench-outputs", WRITER.format(big=big, small=small), None, False)
    kernels.push(spec)
    fake.wait_kernel(OUT_KERNEL, ("complete",), timeout=300)


def fetch_here(endpoint: str, dest: str) -> None:
    """``--fetch-into``: syncd's fetch of OUT_KERNEL v1, in this process; prints JSON."""
    from syncd.config import KaggleConfig
    from syncd.db.statedb import StateDB
    from syncd.remotes.kaggle.kernels import KaggleKernels
    from syncd.train.model import RunRecord
    from syncd.train.outputs import fetch_outputs
    from syncd.train.store import RunStore

    t0 = time.perf_counter()
    kernels = KaggleKernels(KaggleConfig(endpoint=endpoint))
    store = RunStore(StateDB(Path(dest).parent / f"{Path(dest).name}.db"))
    record = RunRecord(
        seq=1,
        project="bench",
        kernel=OUT_KERNEL,
        kernel_before=0,
        command="",
        machine_shape="",
        internet=False,
        dataset=REF,
        snapshot_version=1,
        manifest_hash="",
        folder=dest,
        created_at=time.time(),
        version=1,
    )
    t1 = time.perf_counter()
    got = fetch_outputs(kernels, record, store)
    t2 = time.perf_counter()
    print(json.dumps({"setup": t1 - t0, "fetch": t2 - t1, "files": got.files, "bytes": got.bytes}))


# Runs the command and reports its peak RSS (KB) on stderr's last line. A wrapper of its
# own, because a child's ru_maxrss also counts the memory of the process it was forked (or
# vforked) from before exec: measured from this bench process, both tools would show the
# bench's own size. The wrapper is small, so its child's figure is the tool's.
PEAK = (
    "import resource, subprocess, sys\n"
    "code = subprocess.call(sys.argv[1:])\n"
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr)\n"
    "sys.exit(code)\n"
)


def run_measured(args: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """(wall seconds, peak RSS in MB, stdout) of a child process."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", PEAK, *args], env=env, capture_output=True, text=True, timeout=600
    )
    wall = time.perf_counter() - started
    assert done.returncode == 0, done.stdout + done.stderr
    return wall, int(done.stderr.strip().splitlines()[-1]) / 1024, done.stdout


def outputs_home(
    base: Path, env: dict[str, str], reps: int, big: int, small: int
) -> dict[str, float]:
    fake = new_fake()
    finished_kernel(fake, big, small)
    total = (big + small) * MB
    cli_env = fake.client_env(home=Path(env["HOME"]), via_proxy=True, base={**os.environ, **env})
    kaggle_bin = str(Path(sys.executable).with_name("kaggle"))
    syncd_env = {**os.environ, **env, "PYTHONPATH": f"{REPO / 'daemon'}{os.pathsep}{REPO}"}
    rows: dict[str, list[float]] = {}
    scratch = scratch_base(4 * total)
    startup = run_measured([kaggle_bin, "--version"], cli_env)[0]
    for _ in range(reps):
        dest = fresh_dir("out-cli", scratch)
        wall, peak, _ = run_measured(
            [kaggle_bin, "kernels", "output", OUT_KERNEL, "-p", str(dest)], cli_env
        )
        assert sum(f.stat().st_size for f in dest.rglob("*.bin")) == total
        rows.setdefault("cli_wall", []).append(wall)
        rows.setdefault("cli_rss", []).append(peak)
        shutil.rmtree(dest, ignore_errors=True)

        dest = fresh_dir("out-syncd", scratch)
        args = [sys.executable, "-m", "bench.train_bench", "--fetch-into", str(dest), fake.url]
        wall, peak, out = run_measured(args, syncd_env)
        inner = json.loads(out.strip().splitlines()[-1])
        assert inner["bytes"] == total, inner
        rows.setdefault("syncd_wall", []).append(wall)
        rows.setdefault("syncd_fetch", []).append(inner["fetch"])
        rows.setdefault("syncd_rss", []).append(peak)
        shutil.rmtree(dest, ignore_errors=True)
        Path(f"{dest}.db").unlink(missing_ok=True)
    fake.stop()
    medians = {k: med(v) for k, v in rows.items()}
    medians["cli_startup"] = startup
    medians["total"] = total
    return medians


# --- the report ---------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="one rep, 20 MB of outputs")
    ap.add_argument("--fetch-into", nargs=2, metavar=("DEST", "ENDPOINT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.fetch_into:
        fetch_here(args.fetch_into[1], args.fetch_into[0])
        return
    reps = 1 if args.quick else max(3, args.reps)
    base = fresh_dir("train", tempfile.gettempdir())
    env = isolate(base)
    print(f"# syncd train vs the fake Kaggle on loopback ({machine()})")
    print(f"# code: {code_version()}; medians of {reps} run(s)\n")

    push = train_to_push(base, env, reps)
    print("`syncd train` until Kaggle has the kernel push, 1,000 files / 5 MB:")
    for label, key in (
        ("daemon running, folder unchanged", "daemon_unchanged"),
        ("daemon running, one file edited", "daemon_changed"),
        ("no daemon, folder unchanged", "cli_unchanged"),
        ("no daemon, one file edited", "cli_changed"),
    ):
        print(
            f"  {label:34} {push[key]:6.2f} s  (min {push[key + '_min']:.2f}, "
            f"max {push[key + '_max']:.2f})"
        )
    print()

    big, small = (10, 10) if args.quick else (100, 50)
    out = outputs_home(base, env, reps, big, small)
    size = out["total"] / MB
    print(f"outputs home: 1 file of {big} MB + {small} files of 1 MB ({size:.0f} MB), same fake:")
    print(
        f"  kaggle kernels output -p DIR     {out['cli_wall']:6.2f} s  "
        f"{size / out['cli_wall']:6.1f} MB/s  peak RSS {out['cli_rss']:5.0f} MB  "
        f"(process start alone {out['cli_startup']:.2f} s)"
    )
    print(
        f"  syncd fetch (own process)        {out['syncd_wall']:6.2f} s  "
        f"{size / out['syncd_wall']:6.1f} MB/s  peak RSS {out['syncd_rss']:5.0f} MB  "
        f"(fetch alone {out['syncd_fetch']:.2f} s, {size / out['syncd_fetch']:.0f} MB/s)"
    )
    shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()

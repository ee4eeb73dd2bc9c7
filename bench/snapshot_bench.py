"""Kaggle snapshots against the fake Kaggle on loopback: prints times and bytes.

    .venv/bin/python -m bench.snapshot_bench            # full run (~1-2 min)
    .venv/bin/python -m bench.snapshot_bench --quick    # smaller trees, one rep

1. First snapshot of a 1,000-file / 50 MB project (990 source files of 1-4 KB,
   10 random 4.8 MB "weights" files): the whole ``SnapshotService.take`` until
   the version is ready, then the same steps timed one by one (select, stage,
   upload + create + poll), with the bytes staged and the bytes sent.
2. Deciding "unchanged" on a 20,000-file project (2,000 folders): with md5s from
   syncd's snapshot hash cache, from the mirror's index only, and, for contrast,
   after every file's mtime changed (every file must be read again).
3. Side by side on the same fake: ``kaggle datasets version -p <staged folder>
   --dir-mode zip`` (the kaggle CLI, through the fake as an HTTP proxy) and
   syncd's upload of the same staged folder, each making a new version, plus a
   whole ``syncd snapshot --force`` command (no daemon: process start, walk,
   staging copy, upload).

The fake answers "ready" on the first status poll (``processing_polls = 0``):
real Kaggle processing takes minutes and is not syncd's to measure.  Figures
are medians over ``--reps`` runs, each on a fresh fake, state db and tree.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .benchlib import REPO, fresh_dir, machine, make_tree, med, scratch_base, source_version

USER, KEY, REF = "alice", "key123", "alice/bench-code"


def isolate(base: Path) -> dict[str, str]:
    """This process (and its children) get their own HOME, state dir, temp dir and key."""
    home = base / "home"
    (home / "tmp").mkdir(parents=True, exist_ok=True)
    env = {
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_STATE_HOME": str(home / ".state"),
        "XDG_RUNTIME_DIR": str(home / "run"),
        "KAGGLE_CONFIG_DIR": str(home / ".kaggle"),
        "KAGGLE_USERNAME": USER,
        "KAGGLE_KEY": KEY,
        "NO_PROXY": "127.0.0.1,localhost",
        "SYNCD_KAGGLE_POLL_S": "0.05",
        "TMPDIR": str(home / "tmp"),
    }
    for var in list(os.environ):
        if var.startswith("KAGGLE_") or var.lower().endswith("_proxy"):
            del os.environ[var]
    os.environ.update(env)
    tempfile.tempdir = str(home / "tmp")
    return env


def backdate(root: Path) -> None:
    """An existing project: nothing was written in the last second (no quiet-time wait)."""
    past = time.time() - 3600
    for dirpath, _, names in os.walk(root):
        for name in names:
            os.utime(os.path.join(dirpath, name), (past, past))


def project_1000(root: Path, weights: int = 10, total: int = 50 * 2**20) -> int:
    make_tree(root, 1000 - weights, 30)
    text = sum(f.stat().st_size for f in root.rglob("*") if f.is_file())
    rng = random.Random(1)
    each = (total - text) // weights
    (root / "weights").mkdir()
    for i in range(weights):
        (root / "weights" / f"layer{i}.npy").write_bytes(rng.randbytes(each))
    backdate(root)
    return sum(f.stat().st_size for f in root.rglob("*") if f.is_file())


def service(root: Path, db_path: Path, fake, *, mirror: bool = False):
    from syncd.config import (
        KaggleConfig,
        MirrorConfig,
        ProjectConfig,
        SnapshotConfig,
        parse_address,
    )
    from syncd.db.statedb import StateDB
    from syncd.snapshot.service import SnapshotService

    to = MirrorConfig(parse_address(f"local:{root}-mirror", root.parent)) if mirror else None
    snap = SnapshotConfig(dataset=REF, title="bench code")
    pc = ProjectConfig("bench", root, to, (), snap)
    db = StateDB(db_path)
    return SnapshotService(pc, db, KaggleConfig(endpoint=fake.url)), db


def new_fake():
    from tests.fakes.kaggle_server import FakeKaggle

    fake = FakeKaggle().start()
    fake.add_user(USER, KEY)
    fake.processing_polls = 0
    return fake


def first_snapshot(base: Path, reps: int, files_total: int) -> tuple[dict[str, float], Path]:
    """Section 1; returns medians and a staged folder (kept) for section 3."""
    from syncd.config import KaggleConfig
    from syncd.localfs.ignore import IgnoreRules
    from syncd.remotes.kaggle import client as kaggle
    from syncd.remotes.kaggle import rules as kaggle_rules
    from syncd.snapshot.manifest import SnapshotManifest
    from syncd.snapshot.select import SnapshotSelection
    from syncd.snapshot.stage import stage

    rows: dict[str, list[float]] = {}
    staged_keep: Path | None = None
    for rep in range(reps):
        root = fresh_dir(f"p1000-{rep}", scratch_base(200 * 2**20))
        size = project_1000(root, total=files_total)
        fake = new_fake()
        svc, db = service(root, base / f"first-{rep}.db", fake)
        started = time.perf_counter()
        result = svc.take("manual", "bench", wait=True)
        rows.setdefault("take", []).append(time.perf_counter() - started)
        assert result.status == "ready", result
        rows.setdefault("files", []).append(result.files)
        rows.setdefault("bytes", []).append(size)
        rows.setdefault("sent", []).append(fake.upload_bytes())
        rows.setdefault("requests", []).append(len(fake.requests))
        svc.close()
        db.close()
        fake.stop()

        # The same steps one by one, on a fresh fake.
        fake = new_fake()
        t0 = time.perf_counter()
        selection = SnapshotSelection(
            root,
            IgnoreRules(root),
            extra_exclude=kaggle_rules.CLIENT_SKIPS,
            reserved=kaggle_rules.RESERVED_TOP_LEVEL,
        )
        files = selection.files()
        t1 = time.perf_counter()
        staged = stage(root, files)
        t2 = time.perf_counter()
        meta = kaggle_rules.DatasetMetadata("alice", "bench-code", "bench code", "other", True)
        SnapshotManifest("bench", time.time(), "manual", staged.files).write(staged.folder)
        meta.write(staged.folder)
        client = kaggle.KaggleDatasets(KaggleConfig(endpoint=fake.url))
        t3 = time.perf_counter()
        done = client.publish(staged.folder, meta, "bench", wait=True)
        t4 = time.perf_counter()
        assert done.status == "ready"
        rows.setdefault("select", []).append(t1 - t0)
        rows.setdefault("stage", []).append(t2 - t1)
        rows.setdefault("upload", []).append(t4 - t3)
        fake.stop()
        if staged_keep is None:
            staged_keep = staged.folder
        else:
            staged.cleanup()
        shutil.rmtree(root, ignore_errors=True)
    assert staged_keep is not None
    return {k: med(v) for k, v in rows.items()}, staged_keep


def unchanged_20000(base: Path, reps: int, count: int) -> dict[str, float]:
    """Section 2."""
    import syncd.snapshot.manifest as snap
    from syncd.db.statedb import FileRecord

    hashed = {"files": 0}
    real_md5 = snap.md5_file

    def counting_md5(path):  # the bench counts reads; nothing else changes
        hashed["files"] += 1
        return real_md5(path)

    snap.md5_file = counting_md5
    root = fresh_dir("p20000", scratch_base(200 * 2**20))
    make_tree(root, count, count // 10)
    backdate(root)
    fake = new_fake()
    svc, db = service(root, base / "unchanged.db", fake, mirror=True)
    out: dict[str, float] = {}
    started = time.perf_counter()
    first = svc.take("manual", wait=True)
    out["first"] = time.perf_counter() - started
    out["first_sent"] = fake.upload_bytes()
    assert first.status == "ready" and first.files == count, first

    def timed_unchanged() -> tuple[float, int]:
        hashed["files"] = 0
        fake.reset_log()
        t = time.perf_counter()
        result = svc.take("schedule", wait=True)
        took = time.perf_counter() - t
        assert result.status == "unchanged" and not fake.requests, result
        return took, hashed["files"]

    runs = [timed_unchanged() for _ in range(reps)]
    out["cache"], out["cache_hashed"] = med([r[0] for r in runs]), max(r[1] for r in runs)

    # As if only the mirror had seen these files: its index has size, mtime and md5.
    for rel, entry in first_manifest(svc).items():
        st = (root / rel).stat()
        db.put_file("bench", FileRecord(rel, entry.size, st.st_mtime_ns, entry.md5, rel, None, 0))
    with db.transaction() as c:
        c.execute("DELETE FROM snapshot_hashes WHERE project = 'bench'")
    runs = [timed_unchanged() for _ in range(reps)]
    out["index"], out["index_hashed"] = med([r[0] for r in runs]), max(r[1] for r in runs)

    times = []
    for i in range(reps):
        stamp = time.time() - 600 - i
        for dirpath, _, names in os.walk(root):
            for name in names:
                os.utime(os.path.join(dirpath, name), (stamp, stamp))
        took, n = timed_unchanged()
        times.append(took)
        out["touched_hashed"] = n
    out["touched"] = med(times)
    svc.close()
    db.close()
    fake.stop()
    shutil.rmtree(root, ignore_errors=True)
    snap.md5_file = real_md5
    return out


def first_manifest(svc) -> dict:
    last = svc.store.last_uploaded()
    assert last is not None
    return last[1]


def side_by_side(base: Path, staged: Path, env: dict[str, str], reps: int) -> dict[str, float]:
    """Section 3: the kaggle CLI and syncd upload the same staged folder to the same fake."""
    from syncd.config import KaggleConfig
    from syncd.remotes.kaggle import client as kaggle
    from syncd.remotes.kaggle import rules as kaggle_rules

    fake = new_fake()
    meta = kaggle_rules.DatasetMetadata("alice", "bench-code", "bench code", "other", True)
    client = kaggle.KaggleDatasets(KaggleConfig(endpoint=fake.url))
    assert client.publish(staged, meta, "seed", wait=True).status == "ready"
    cli_env = fake.client_env(home=Path(env["HOME"]), via_proxy=True, base={**os.environ, **env})
    kaggle_bin = str(Path(sys.executable).with_name("kaggle"))
    out: dict[str, list[float]] = {}

    def measure(label: str, action) -> None:
        fake.finish_processing(REF)
        before_bytes, before_requests = fake.upload_bytes(), len(fake.requests)
        versions = len(fake.dataset(REF).versions)
        t = time.perf_counter()
        action()
        out.setdefault(label, []).append(time.perf_counter() - t)
        assert len(fake.dataset(REF).versions) == versions + 1, label
        out.setdefault(label + "_sent", []).append(fake.upload_bytes() - before_bytes)
        out.setdefault(label + "_requests", []).append(len(fake.requests) - before_requests)

    def kaggle_cli() -> None:
        args = ["datasets", "version", "-p", str(staged), "-m", "cli", "--dir-mode", "zip"]
        done = subprocess.run([kaggle_bin, *args], env=cli_env, capture_output=True, text=True)
        assert done.returncode == 0 and "error" not in done.stdout.lower(), done

    def syncd_upload() -> None:
        assert client.publish(staged, meta, "syncd", wait=False).status == "pending"

    cfg = base / "bench.yaml"
    project = staged.parent / "cli-project"
    if not project.exists():
        shutil.copytree(staged, project, ignore=shutil.ignore_patterns("*.json"))
        backdate(project)
    cfg.write_text(
        json.dumps(
            {
                "kaggle": {"endpoint": fake.url},
                "projects": [
                    {"name": "bench", "path": str(project), "snapshot": {"dataset": REF}},
                ],
            }
        )
    )
    syncd_env = {**os.environ, **env, "PYTHONPATH": str(REPO / "daemon")}

    def syncd_command() -> None:
        args = [sys.executable, "-m", "syncd", "snapshot", "--force", "-c", str(cfg)]
        done = subprocess.run(args, env=syncd_env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr

    t = time.perf_counter()
    subprocess.run([kaggle_bin, "--version"], env=cli_env, capture_output=True, check=True)
    startup = time.perf_counter() - t
    for _ in range(reps):
        measure("cli", kaggle_cli)
        measure("syncd", syncd_upload)
        measure("command", syncd_command)
    fake.stop()
    medians = {k: med(v) for k, v in out.items()}
    medians["cli_startup"] = startup
    return medians


def mb(n: float) -> str:
    return f"{n / 2**20:.1f} MB"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="10 MB / 5,000 files, one rep")
    args = ap.parse_args()
    reps = 1 if args.quick else args.reps
    base = fresh_dir("snapshot", tempfile.gettempdir())
    env = isolate(base)
    print(f"# syncd Kaggle snapshots vs the fake on loopback ({machine()})")
    print(f"# code: {source_version()}; medians of {reps} run(s)\n")

    first, staged = first_snapshot(base, reps, (10 if args.quick else 50) * 2**20)
    print(f"first snapshot, {first['files']:.0f} files / {mb(first['bytes'])}:")
    print(f"  whole take() until ready     {first['take']:6.2f} s")
    print(f"    select (walk + rules)      {first['select']:6.2f} s")
    print(f"    stage (copy + md5)         {first['stage']:6.2f} s")
    print(f"    upload + create + ready    {first['upload']:6.2f} s")
    print(f"  bytes sent {mb(first['sent'])} in {first['requests']:.0f} requests\n")

    count = 5000 if args.quick else 20000
    un = unchanged_20000(base, max(3, reps), count)
    print(f'deciding "unchanged", {count:,} files (first snapshot {un["first"]:.2f} s, ', end="")
    print(f"{mb(un['first_sent'])} sent):")
    for label, key in (
        ("md5s from the snapshot cache", "cache"),
        ("md5s from the mirror index", "index"),
    ):
        print(f"  {label:28} {un[key]:6.2f} s   files read: {un[key + '_hashed']:.0f}")
    print(
        f"  every mtime changed          {un['touched']:6.2f} s   files read: "
        f"{un['touched_hashed']:.0f}\n"
    )

    side = side_by_side(base, staged, env, reps)
    print(f"new version of the same staged folder ({first['files']:.0f} files), same fake:")
    print(
        f"  kaggle datasets version -p … --dir-mode zip  {side['cli']:6.2f} s  "
        f"{mb(side['cli_sent'])} in {side['cli_requests']:.0f} requests "
        f"(process start alone {side['cli_startup']:.2f} s)"
    )
    print(
        f"  syncd upload (in the daemon, no wait)         {side['syncd']:6.2f} s  "
        f"{mb(side['syncd_sent'])} in {side['syncd_requests']:.0f} requests"
    )
    print(
        f"  syncd snapshot --force (CLI, no daemon)       {side['command']:6.2f} s  "
        f"{mb(side['command_sent'])} in {side['command_requests']:.0f} requests "
        "(incl. walk + staging copy)"
    )
    shutil.rmtree(staged.parent, ignore_errors=True)
    shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()

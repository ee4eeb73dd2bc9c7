"""Split snapshots (issue #14, Done-when 2): bytes uploaded after a one-line code edit.

    .venv/bin/python -m bench.snapshot_split               # 500 MB under data/, 3 edits (~3 min)
    .venv/bin/python -m bench.snapshot_split --data-mb 50  # a smaller smoke run

One project folder: 200 code files (1-4 KB, 20 folders) and ``--data-mb`` MB of random
bytes under ``data/`` (50 files; random so zip cannot shrink them). The same fake Kaggle
serves both tools, in the same run:

* syncd: ``syncd snapshot --wait`` (the real CLI, no daemon) with ``snapshot.data:
  [data/]``, so data/ lives in ``<slug>-data``;
* the kaggle CLI: ``kaggle datasets version -p <folder> --dir-mode zip`` on the same
  folder (a ``dataset-metadata.json`` there names its own dataset; syncd leaves that
  reserved name out of its snapshots).

Each tool first makes its dataset(s) from the folder; then, ``--reps`` times, one line is
appended to one code file and each tool makes a new version. Bytes are what the fake
received in blob uploads (``PUT`` bodies); requests are every HTTP request of the step.
The fake answers "ready" on the first status poll. Medians over the edits.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .benchlib import REPO, fresh_dir, machine, make_tree, med, scratch_base, source_version
from .snapshot_bench import backdate, isolate, new_fake

SYNCD_REF, CLI_REF = "alice/bench-split", "alice/bench-cli"
DATA_FILES = 50


def make_project(root: Path, data_mb: int) -> tuple[int, int, Path]:
    """200 code files and ``data_mb`` MB of random data; (code bytes, data bytes, the code
    file the edits go to)."""
    paths = make_tree(root, 200, 20)
    code = sum((root / p).stat().st_size for p in paths)
    (root / "data").mkdir()
    each = data_mb * 2**20 // DATA_FILES
    for i in range(DATA_FILES):
        (root / "data" / f"shard{i:02d}.bin").write_bytes(os.urandom(each))
    meta = {"title": "bench cli copy", "id": CLI_REF, "licenses": [{"name": "other"}]}
    (root / "dataset-metadata.json").write_text(json.dumps(meta))
    backdate(root)
    return code, each * DATA_FILES, root / paths[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-mb", type=int, default=500)
    ap.add_argument("--reps", type=int, default=3, help="one-line edits (default 3)")
    args = ap.parse_args()

    base = fresh_dir("snapsplit", tempfile.gettempdir())
    env = isolate(base)
    root = fresh_dir("split-project", scratch_base(args.data_mb * 2**20)) / "project"
    fake = new_fake()
    try:
        run(base, root, env, fake, args.data_mb, args.reps)
    finally:
        fake.stop()
        shutil.rmtree(root.parent, ignore_errors=True)
        shutil.rmtree(base, ignore_errors=True)


def run(base: Path, root: Path, env: dict[str, str], fake, data_mb: int, reps: int) -> None:
    root.mkdir()
    code_bytes, data_bytes, code_file = make_project(root, data_mb)
    cfg = base / "syncd.yaml"
    project = {
        "name": "bench",
        "path": str(root),
        "snapshot": {"dataset": SYNCD_REF, "title": "bench split", "data": ["data/"]},
    }
    cfg.write_text(json.dumps({"kaggle": {"endpoint": fake.url}, "projects": [project]}))
    syncd_env = {**os.environ, **env, "PYTHONPATH": str(REPO / "daemon")}
    cli_env = fake.client_env(home=Path(env["HOME"]), via_proxy=True, base={**os.environ, **env})
    kaggle_bin = str(Path(sys.executable).with_name("kaggle"))

    def measure(label: str, argv: list[str], run_env: dict[str, str], out: dict) -> None:
        try:  # the CLI never polls: its last version may still be "processing"
            fake.finish_processing(CLI_REF)
        except KeyError:
            pass  # not created yet
        before_bytes, before_requests = fake.upload_bytes(), len(fake.requests)
        started = time.perf_counter()
        done = subprocess.run(argv, env=run_env, capture_output=True, text=True)
        took = time.perf_counter() - started
        if done.returncode != 0 or "error" in done.stdout.lower():
            raise SystemExit(f"{label} failed: {done.stdout}{done.stderr}")
        out.setdefault(label, []).append(took)
        out.setdefault(label + "_sent", []).append(fake.upload_bytes() - before_bytes)
        out.setdefault(label + "_requests", []).append(len(fake.requests) - before_requests)
        fake.release_memory()

    syncd = [sys.executable, "-m", "syncd", "snapshot", "--wait", "-c", str(cfg)]
    cli_create = [kaggle_bin, "datasets", "create", "-p", str(root), "--dir-mode", "zip"]
    cli_version = [kaggle_bin, "datasets", "version", "-p", str(root), "--dir-mode", "zip"]
    first: dict[str, list[float]] = {}
    measure("syncd", [*syncd, "-m", "first"], syncd_env, first)
    measure("cli", cli_create, cli_env, first)
    edits: dict[str, list[float]] = {}
    for i in range(reps):
        with open(code_file, "a") as f:
            f.write(f"# edit {i}\n")
        backdate_one(code_file)
        measure("syncd", [*syncd, "-m", f"edit {i}"], syncd_env, edits)
        measure("cli", [*cli_version, "-m", f"edit {i}"], cli_env, edits)

    data_versions = len(fake.dataset(f"{SYNCD_REF}-data").versions)
    code_versions = len(fake.dataset(SYNCD_REF).versions)
    cli_versions = len(fake.dataset(CLI_REF).versions)
    assert (data_versions, code_versions, cli_versions) == (1, reps + 1, reps + 1), (
        data_versions,
        code_versions,
        cli_versions,
    )
    syncd_sent, cli_sent = med(edits["syncd_sent"]), med(edits["cli_sent"])

    print(f"# syncd split snapshots vs the kaggle CLI, same folder, same fake ({machine()})")
    print(f"# code: {source_version()}; medians of {reps} one-line edits\n")
    print(f"project: 200 code files ({kb(code_bytes)}) + {DATA_FILES} random files under")
    print(f"data/ ({mb(data_bytes)}); syncd config snapshot.data: [data/]\n")
    print(f"{'':44}{'time':>8}  {'uploaded':>12}  {'requests':>8}")
    rows = (
        ("first: syncd snapshot --wait (both datasets)", first, "syncd"),
        ("first: kaggle datasets create --dir-mode zip", first, "cli"),
        ("edit: syncd snapshot --wait", edits, "syncd"),
        ("edit: kaggle datasets version --dir-mode zip", edits, "cli"),
    )
    for label, table, key in rows:
        print(
            f"{label:44}{med(table[key]):7.2f}s  {sent(med(table[key + '_sent'])):>12}  "
            f"{med(table[key + '_requests']):8.0f}"
        )
    print(
        f"\nafter a one-line edit syncd uploaded {syncd_sent / cli_sent * 100:.3f} % of the "
        f"kaggle CLI's bytes ({sent(syncd_sent)} vs {sent(cli_sent)}); target < 1 %"
    )
    print(f"versions: {SYNCD_REF} {code_versions}, {SYNCD_REF}-data {data_versions}, ", end="")
    print(f"{CLI_REF} {cli_versions}")


def backdate_one(path: Path) -> None:
    """The edit was made a few seconds ago (no quiet-time wait in the figures)."""
    past = time.time() - 5
    os.utime(path, (past, past))


def kb(n: float) -> str:
    return f"{n / 1024:.0f} KB"


def mb(n: float) -> str:
    return f"{n / 2**20:.1f} MB"


def sent(n: float) -> str:
    return mb(n) if n >= 2**20 else kb(n)


if __name__ == "__main__":
    main()

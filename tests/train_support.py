"""Helpers shared by the training tests: a project that trains, its config, run folders.

The project's ``train.py`` is what a student's script does: it prints, writes
``runs/exp1/metrics.json`` relative to its folder (the project's outputs folder, which
leads to the run's outputs on Kaggle) and a 5 MB checkpoint into ``$SYNCD_OUTPUT_DIR``.
Options make it misbehave on demand: ``--fail N`` exits N, ``--hold`` prints a line every
0.2 s until a file ``go`` appears in its output folder, ``--big MB`` writes a large output.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import textwrap
from pathlib import Path
from typing import Any

from tests.fakes.kaggle_server import FakeKaggle

from .conftest import write_config
from .kaggle_support import DATASET, FAST, USER, settle

PROJECT = "cifar"


def kernel_of(seq: int, project: str = PROJECT) -> str:
    """The kernel of run r<seq>: one kernel per run."""
    return f"{USER}/{project}-run-{seq}"


TRAIN_PY = textwrap.dedent(
    """
    import hashlib, json, os, sys, time

    args = sys.argv[1:]
    out = os.environ["SYNCD_OUTPUT_DIR"]
    print("epoch 1 loss 0.9", flush=True)
    print("warming up", file=sys.stderr, flush=True)
    if "--hold" in args:
        while not os.path.exists(os.path.join(out, "go")):
            print("still training", flush=True)
            time.sleep(0.2)
        os.remove(os.path.join(out, "go"))
    os.makedirs("runs/exp1", exist_ok=True)
    with open("runs/exp1/metrics.json", "w") as f:
        lr = open("lr.txt").read().strip()
        json.dump({"loss": 0.25, "run": os.environ["SYNCD_RUN_ID"], "lr": lr}, f)
    block = hashlib.sha256(b"seed").digest() * 32
    with open(os.path.join(out, "model.ckpt"), "wb") as f:
        for _ in range(5 * 1024 * 1024 // len(block)):
            f.write(block)
    if "--big" in args:
        mb = int(args[args.index("--big") + 1])
        chunk = hashlib.sha256(b"big").digest() * 32768  # 1 MiB
        with open(os.path.join(out, "big.bin"), "wb") as f:
            for _ in range(mb):
                f.write(chunk)
    if "--fail" in args:
        print("CUDA out of memory", file=sys.stderr, flush=True)
        sys.exit(int(args[args.index("--fail") + 1]))
    print("done", flush=True)
    """
)

CHECKPOINT = hashlib.sha256(b"seed").digest() * 32 * (5 * 1024 * 1024 // (32 * 32))


def make_train_project(root: Path) -> Path:
    files = {
        "train.py": TRAIN_PY,
        "lr.txt": "3e-4\n",
        "models/net.py": "class Net: ...\n",
        "data/labels.csv": "id,label\n1,cat\n",
        ".env": "WANDB_API_KEY=secret\n",
    }
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    settle(root)
    return root


def git(repo: Path, *args: str) -> str:
    who = {"GIT_AUTHOR_NAME": "a", "GIT_AUTHOR_EMAIL": "a@x", "GIT_COMMITTER_NAME": "a"}
    env = {**os.environ, **who, "GIT_COMMITTER_EMAIL": "a@x"}
    done = subprocess.run(["git", "-C", str(repo), *args], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def commit_all(root: Path) -> str:
    if not (root / ".git").exists():
        git(root, "init", "-q", "-b", "main")
    git(root, "add", "train.py", "lr.txt", "models", "data")
    git(root, "commit", "-q", "-m", "work")
    return git(root, "rev-parse", "HEAD")


def config_file(
    tmp_path: Path,
    fake: FakeKaggle,
    root: Path,
    *,
    train: dict[str, Any] | None = None,
    mirror: bool = False,
) -> Path:
    project: dict[str, Any] = {
        "name": PROJECT,
        "path": str(root),
        "ignore": ["*.ckpt"],
        "snapshot": {"dataset": DATASET, "title": "CIFAR code"},
        "train": {"poll": "1s", "notify": False, **(train or {})},
    }
    if mirror:
        project["mirror"] = {"to": f"local:{tmp_path / 'mirror'}", "delay": "100ms"}
    return write_config(tmp_path / "c.yaml", [project], kaggle={"endpoint": fake.url})


def subprocess_env(fake: FakeKaggle, home: Path, **extra: str) -> dict[str, str]:
    env = fake.client_env(home=home, via_proxy=False, auth="env_key")
    env.update(FAST, **extra)
    return env


def sandbox_working(fake: FakeKaggle, kernel: str, version: int = 1) -> Path:
    run = fake.kernel(kernel).versions[version - 1]
    assert run.sandbox is not None, f"{kernel} v{version} has not started"
    return run.sandbox / "kaggle" / "working"


def files_under(folder: Path) -> dict[str, bytes]:
    """Relative path → content of every regular file (symlinks and partials left out)."""
    out = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file() and not path.is_symlink() and not path.name.startswith(".syncd-tmp-"):
            out[path.relative_to(folder).as_posix()] = path.read_bytes()
    return out


def run_summary(folder: Path) -> dict[str, Any]:
    return json.loads((folder / "syncd-run.json").read_text())

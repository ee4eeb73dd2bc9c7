"""End to end, issue #14: a project with ``snapshot.data`` through the real CLI and daemon,
against the fake Kaggle (which really runs the generated kernel script).

`syncd snapshot` uploads the data folder once and afterwards only the code; `syncd
snapshots` and `syncd status` show both datasets; `syncd train` attaches both and the
student's `python train.py` reads `data/...` by relative paths on "Kaggle"."""

from __future__ import annotations

import hashlib
import json
import random
import subprocess
import textwrap
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.kaggle_server import FakeKaggle

from .conftest import run_cli, wait_for, write_config
from .kaggle_support import DATASET, settle
from .train_support import PROJECT, files_under, kernel_of, run_summary, subprocess_env

pytestmark = pytest.mark.e2e  # every test here runs syncd as a subprocess

DATA = f"{DATASET}-data"
IMAGES = random.Random(14).randbytes(2 * 2**20)  # zip cannot shrink it

TRAIN_PY = textwrap.dedent(
    """
    import hashlib, json, os
    out = os.environ["SYNCD_OUTPUT_DIR"]
    labels = open("data/labels.csv").read().splitlines()
    images = hashlib.md5(open("data/images/0.bin", "rb").read()).hexdigest()
    weights = open(os.path.join("weights", "init.txt")).read().strip()
    lr = open("lr.txt").read().strip()
    with open(os.path.join(out, "seen.json"), "w") as f:
        json.dump({"labels": labels, "images": images, "weights": weights, "lr": lr,
                   "data_dir": os.environ["SYNCD_DATA_DIR"],
                   "linked": os.path.islink("data")}, f)
    print("trained on", len(labels) - 1, "labels", flush=True)
    """
)


def make_split_project(root: Path) -> Path:
    files: dict[str, str | bytes] = {
        "train.py": TRAIN_PY,
        "lr.txt": "3e-4\n",
        "models/net.py": "class Net: ...\n",
        "data/labels.csv": "id,label\n1,cat\n",
        "data/images/0.bin": IMAGES,
        "weights/init.txt": "w0\n",
    }
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    settle(root)
    return root


def config(tmp_path: Path, fake: FakeKaggle, root: Path, train: bool = False) -> Path:
    project: dict[str, Any] = {
        "name": PROJECT,
        "path": str(root),
        "snapshot": {"dataset": DATASET, "title": "CIFAR code", "data": ["data/", "weights/"]},
    }
    if train:
        project["train"] = {"poll": "1s", "notify": False}
    return write_config(tmp_path / "c.yaml", [project], kaggle={"endpoint": fake.url})


def cli(cfg: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, "-c", str(cfg), env=env, timeout=120)


def test_snapshot_uploads_the_data_once_then_only_the_code(
    tmp_path: Path, home: Path, fake: FakeKaggle
) -> None:
    root = make_split_project(tmp_path / PROJECT)
    cfg = config(tmp_path, fake, root)
    env = subprocess_env(fake, home)

    first = cli(cfg, env, "snapshot", "--wait", "-m", "start")
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith(f"{DATASET} v1 is ready (3 files, ")
    assert f"; data {DATA} v1 uploaded (3 files, 2.0 MB)" in first.stdout
    first_bytes = fake.upload_bytes()
    assert first_bytes > len(IMAGES)

    (root / "lr.txt").write_text("1e-3\n")
    settle(root)
    second = cli(cfg, env, "snapshot", "--wait", "-m", "lower lr")
    assert second.returncode == 0, second.stderr
    assert f"{DATASET} v2 is ready" in second.stdout
    assert f"; data {DATA} v1 unchanged (3 files, 2.0 MB)" in second.stdout
    code_bytes = fake.upload_bytes() - first_bytes
    assert 0 < code_bytes < len(IMAGES) // 100, code_bytes  # the 1 % of issue #14
    assert len(fake.dataset(DATA).versions) == 1 and len(fake.dataset(DATASET).versions) == 2

    listed = cli(cfg, env, "snapshots")
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[0].split()[-2:] == ["data", "notes"]
    assert lines[1].split()[0] == "v2" and "v1 2.0 MB" in lines[1]
    assert lines[2].split()[0] == "v1" and "v1 2.0 MB" in lines[2]
    assert lines[-1] == f"data: the version of {DATA} (snapshot.data) each code version goes with"
    history = json.loads(cli(cfg, env, "snapshots", "--json").stdout)
    assert [(h["version"], h["data"]["version"]) for h in history] == [(2, 1), (1, 1)]

    shown = cli(cfg, env, "status", "--json")  # no daemon: the last state from disk
    assert shown.returncode == 3, shown.stderr
    block = json.loads(shown.stdout)["projects"][0]["snapshot"]
    assert (block["dataset"], block["last_version"]) == (DATASET, 2)
    assert block["data"]["dataset"] == DATA
    assert (block["data"]["last_version"], block["data"]["status"]) == (1, "ready")
    text = cli(cfg, env, "status").stdout
    assert f"  data     {DATA}: v1 (ready, 3 files, 2.0 MB)" in text


def test_train_attaches_both_datasets_and_the_script_reads_data_by_relative_paths(
    tmp_path: Path, home: Path, fake: FakeKaggle, run_daemon
) -> None:
    root = make_split_project(tmp_path / PROJECT)
    cfg = config(tmp_path, fake, root, train=True)
    env = subprocess_env(fake, home)
    d = run_daemon(cfg, env=env)
    wait_for(lambda: cli(cfg, env, "status", "--json").returncode == 0, 30, "daemon socket")

    done = cli(cfg, env, "train", PROJECT, "--wait")

    assert done.returncode == 0, done.stderr + d.log
    assert f"data {DATA} v1 uploaded" in done.stdout
    sent = fake.kernel(kernel_of(1)).versions[0].request
    assert sent["datasetDataSources"] == [DATASET, DATA]
    seen = json.loads((root / "runs" / "r1" / "seen.json").read_text())
    assert seen["labels"] == ["id,label", "1,cat"] and seen["weights"] == "w0"
    assert seen["linked"] is True and seen["data_dir"].endswith(f"datasets/{DATA}")
    assert seen["images"] == hashlib.md5(IMAGES).hexdigest()
    summary = run_summary(root / "runs" / "r1")
    assert summary["data"] == {"dataset": DATA, "version": 1}
    assert "syncd: linked data → " in files_under(root / "runs" / "r1")["syncd-kernel.log"].decode()

    # A code edit: a new code version, the same data version, and the run sees both.
    (root / "lr.txt").write_text("1e-3\n")
    settle(root)
    again = cli(cfg, env, "train", PROJECT, "--wait")
    assert again.returncode == 0, again.stderr + d.log
    assert f"data {DATA} v1 unchanged" in again.stdout
    assert len(fake.dataset(DATA).versions) == 1
    seen2 = json.loads((root / "runs" / "r2" / "seen.json").read_text())
    assert (seen2["lr"], seen2["labels"]) == ("1e-3", ["id,label", "1,cat"])
    # `syncd runs` says which data version each run attached, beside the code's.
    runs = json.loads(cli(cfg, env, "runs", PROJECT, "--json").stdout)
    assert [(r["snapshot_version"], r["data"]) for r in runs] == [
        (2, {"dataset": DATA, "version": 1}),
        (1, {"dataset": DATA, "version": 1}),
    ]
    table = cli(cfg, env, "runs", PROJECT).stdout
    assert "v2+d1" in table and "v1+d1" in table, table

    # Data changed after the push but before the session started: the run refuses.
    fake.tamper_mount(DATA, {"data/labels.csv": b"id,label\n1,dog\n"})
    (root / "lr.txt").write_text("1e-4\n")
    settle(root)
    bad = cli(cfg, env, "train", PROJECT, "--wait")
    assert bad.returncode == 1, bad.stdout
    assert "the mounted data differs from its manifest in 1 file(s): data/labels.csv" in (
        bad.stderr
    )


def test_gitignored_data_ships_through_the_daemon_and_an_entry_left_empty_fails_plainly(
    tmp_path: Path, home: Path, fake: FakeKaggle, run_daemon
) -> None:
    """Students gitignore data/ (too big for git): listing it under snapshot.data still
    ships it; the mirror and the code dataset keep following .gitignore. An entry that
    yields nothing (here: .syncignore) fails the snapshot with one sentence, uploading
    nothing, and doctor says the same."""
    root = make_split_project(tmp_path / PROJECT)
    (root / ".gitignore").write_text("data/\nweights/\n")
    settle(root)
    mirror = tmp_path / "mirror"
    project: dict[str, Any] = {
        "name": PROJECT,
        "path": str(root),
        "mirror": {"to": f"local:{mirror}"},
        "snapshot": {"dataset": DATASET, "title": "CIFAR code", "data": ["data/", "weights/"]},
    }
    cfg = write_config(tmp_path / "c.yaml", [project], kaggle={"endpoint": fake.url})
    env = subprocess_env(fake, home)
    d = run_daemon(cfg, env=env)
    wait_for(lambda: cli(cfg, env, "status", "--json").returncode == 0, 30, "daemon socket")
    wait_for(lambda: (mirror / "train.py").exists(), 30, "first mirror")

    first = cli(cfg, env, "snapshot", "--wait")
    assert first.returncode == 0, first.stderr + d.log
    assert f"; data {DATA} v1 uploaded (3 files, 2.0 MB)" in first.stdout
    assert set(fake.dataset(DATA).versions[0].files) == {
        "syncd-data.json",
        "data/labels.csv",
        "data/images/0.bin",
        "weights/init.txt",
    }
    code = set(fake.dataset(DATASET).versions[0].files)
    assert code == {"syncd-snapshot.json", ".gitignore", "train.py", "lr.txt", "models/net.py"}
    assert not (mirror / "data").exists() and not (mirror / "weights").exists()

    (root / ".syncignore").write_text("weights/\n")
    (root / "lr.txt").write_text("1e-3\n")
    settle(root)
    fake.reset_log()
    refused = cli(cfg, env, "snapshot", "--wait")
    assert refused.returncode == 1, refused.stdout
    assert refused.stderr.strip() == (
        f"syncd: {PROJECT}: snapshot.data: weights/ has no files: it is ignored by .syncignore "
        "(remove the rule that matches it from .syncignore, or remove weights/ from "
        "snapshot.data)"
    ), refused.stderr
    assert not fake.requests, fake.requests  # not even a look at Kaggle
    assert len(fake.dataset(DATASET).versions) == 1 and len(fake.dataset(DATA).versions) == 1
    shown = json.loads(cli(cfg, env, "status", "--json").stdout)["projects"][0]["snapshot"]
    assert (shown["status"], shown["last_version"]) == ("error", 1)

    checked = cli(cfg, env, "doctor")
    assert checked.returncode == 1
    assert f"[fail] {PROJECT}: snapshot.data: weights/ has no files" in checked.stdout
    assert f"[ok] {PROJECT}: snapshot.data data/ has 2 files" in checked.stdout

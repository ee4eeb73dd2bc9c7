"""End to end: `syncd train` through the real daemon and CLI, against the fake Kaggle, which
really runs the generated kernel script (issue #12, Done-when 1, 3 and 5).

The daemon is a subprocess with `kaggle.endpoint: <fake>`; it and the CLI run the real
kaggle client with the fake's credentials in an isolated HOME."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.kaggle_server import FakeKaggle

from .conftest import run_cli, wait_for
from .kaggle_support import DATASET, settle
from .train_support import (
    CHECKPOINT,
    PROJECT,
    commit_all,
    config_file,
    files_under,
    kernel_of,
    make_train_project,
    run_summary,
    sandbox_working,
    subprocess_env,
)

pytestmark = pytest.mark.e2e  # every test here runs syncd as a subprocess

UPLOADS = ("StartBlobUpload", "upload", "CreateDataset", "CreateDatasetVersion", "SaveKernel")


def cli(cfg: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, "-c", str(cfg), env=env, timeout=120)


def status(cfg: Path, env: dict[str, str]) -> dict[str, Any]:
    done = cli(cfg, env, "status", "--json")
    assert done.returncode in (0, 3), done.stderr
    return json.loads(done.stdout)


def runs_of(cfg: Path, env: dict[str, str]) -> list[dict[str, Any]]:
    runs = status(cfg, env)["projects"][0]["runs"]
    assert isinstance(runs, list)
    return runs


def run_state(cfg: Path, env: dict[str, str], run_id: str) -> dict[str, Any] | None:
    return next((r for r in runs_of(cfg, env) if r["id"] == run_id), None)


def up(cfg: Path, env: dict[str, str]) -> None:
    wait_for(lambda: cli(cfg, env, "status", "--json").returncode == 0, 30, "daemon socket")


def kaggle_log(fake: FakeKaggle, kernel: str) -> str:
    return "".join(e["data"] for e in fake.kernel(kernel).versions[0].log)


def test_train_wait_snapshots_pushes_runs_and_brings_the_outputs_home(
    tmp_path: Path, home: Path, fake: FakeKaggle, run_daemon
) -> None:
    root = make_train_project(tmp_path / PROJECT)
    commit = commit_all(root)
    cfg = config_file(tmp_path, fake, root, mirror=True)
    env = subprocess_env(fake, home)
    d = run_daemon(cfg, env=env)
    up(cfg, env)

    done = cli(cfg, env, "train", PROJECT, "--wait", "-m", "baseline")

    assert done.returncode == 0, done.stderr + d.log
    assert done.stdout.startswith(f"snapshot: {DATASET} v1 is ready (4 files, ")
    assert f"r1: pushed {kernel_of(1)} v1 (NvidiaTeslaT4): " in done.stdout
    assert "epoch 1 loss 0.9\n" in done.stdout and "warming up\n" in done.stderr
    assert done.stdout.rstrip().endswith(f"r1 COMPLETE: 3 output file(s) in {root / 'runs' / 'r1'}")
    sent = fake.kernel(kernel_of(1)).versions[0].request
    assert (sent["machineShape"], sent["enableInternet"]) == ("NvidiaTeslaT4", False)
    assert sent["datasetDataSources"] == [DATASET]
    assert sent["text"].count("def main(run") == 1  # one self-contained code file

    home_files = files_under(root / "runs" / "r1")
    log = home_files.pop("syncd-kernel.log").decode()
    assert home_files == files_under(sandbox_working(fake, kernel_of(1)))  # byte-equal
    assert home_files["model.ckpt"] == CHECKPOINT
    assert json.loads(home_files["exp1/metrics.json"])["run"] == "r1"
    assert log == kaggle_log(fake, kernel_of(1))
    summary = run_summary(root / "runs" / "r1")
    assert (summary["snapshot_version"], summary["git_commit"]) == (1, commit)

    # An edit, and the second run trains on a new snapshot version.
    (root / "lr.txt").write_text("1e-3\n")
    settle(root)
    again = cli(cfg, env, "train", PROJECT, "--wait")
    assert again.returncode == 0, again.stderr + d.log
    assert again.stdout.startswith(f"snapshot: {DATASET} v2 is ready")
    assert json.loads((root / "runs/r2/exp1/metrics.json").read_text())["lr"] == "1e-3"
    assert run_summary(root / "runs" / "r2")["snapshot_version"] == 2

    listed = cli(cfg, env, "runs")
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[1].split()[:5] == ["r2", PROJECT, "v2", "NvidiaTeslaT4", "complete"]
    assert lines[2].split()[:5] == ["r1", PROJECT, "v1", "NvidiaTeslaT4", "complete"]
    assert lines[1].endswith("3 files, 5.0 MB")
    block = runs_of(cfg, env)
    assert [r["id"] for r in block] == ["r2", "r1"]
    first = block[1]
    assert {k: first[k] for k in ("id", "kernel", "snapshot_version", "machine_shape")} == {
        "id": "r1",
        "kernel": kernel_of(1),
        "snapshot_version": 1,
        "machine_shape": "NvidiaTeslaT4",
    }
    assert (first["state"], first["failure"]) == ("complete", None)
    assert first["started_at"] is not None
    # The runs folder is the mirror's and the snapshots' business no more.
    assert (tmp_path / "mirror" / "train.py").exists()
    assert not (tmp_path / "mirror" / "runs").exists()
    assert not [p for p in fake.dataset(DATASET).versions[1].files if p.startswith("runs/")]


def test_the_daemon_killed_mid_run_keeps_following_and_fetches_once(
    tmp_path: Path, home: Path, fake: FakeKaggle, run_daemon
) -> None:
    root = make_train_project(tmp_path / PROJECT)
    cfg = config_file(tmp_path, fake, root)
    env = subprocess_env(fake, home)
    d = run_daemon(cfg, env=env)
    up(cfg, env)
    started = cli(cfg, env, "train", PROJECT, "--command", "python train.py --hold")
    assert started.returncode == 0, started.stderr + d.log
    assert "r1 is queued; the daemon follows it" in started.stdout
    wait_for(lambda: (run_state(cfg, env, "r1") or {}).get("state") == "running", 30, "running")

    d.kill()  # kill -9 while RUNNING
    (sandbox_working(fake, kernel_of(1)) / "go").write_text("")  # it finishes meanwhile
    fake.wait_kernel(kernel_of(1), ("complete",))
    d2 = run_daemon(cfg, env=env)
    up(cfg, env)
    wait_for(
        lambda: (run_state(cfg, env, "r1") or {}).get("outputs", {}).get("state") == "fetched",
        60,
        "outputs fetched after the restart",
    )

    downloads = [r.path for r in fake.requests if r.rpc == "download"]
    assert len(downloads) == 3 and len(set(downloads)) == 3  # each output exactly once
    assert files_under(root / "runs" / "r1")["model.ckpt"] == CHECKPOINT
    assert len(fake.kernel(kernel_of(1)).versions) == 1
    d2.stop()
    assert "r1 is complete" in d2.log


def test_error_and_stalled_runs_say_so_in_status_and_runs(
    tmp_path: Path, home: Path, fake: FakeKaggle, run_daemon
) -> None:
    root = make_train_project(tmp_path / PROJECT)
    cfg = config_file(tmp_path, fake, root, train={"stalled_after": "2s", "timeout": "2h"})
    env = subprocess_env(fake, home)
    d = run_daemon(cfg, env=env)
    up(cfg, env)

    failed = cli(cfg, env, "train", PROJECT, "--wait", "--command", "python train.py --fail 3")

    assert failed.returncode == 1, failed.stderr + d.log
    reason = "`python train.py --fail 3` exited with code 3"
    assert f"r1 ERROR: {reason}" in failed.stderr
    assert "CUDA out of memory" in failed.stderr  # the log streamed, stderr to stderr
    assert (run_state(cfg, env, "r1") or {})["failure"] == reason
    assert f"— {reason}" in cli(cfg, env, "status").stdout
    assert f"       {reason}" in cli(cfg, env, "runs", PROJECT).stdout.splitlines()

    fake.stall_kernel(kernel_of(2))  # RUNNING for good, its log never moving again
    assert cli(cfg, env, "train", PROJECT).returncode == 0
    wait_for(lambda: (run_state(cfg, env, "r2") or {}).get("state") == "stalled", 60, "stalled")
    assert "r2 " in cli(cfg, env, "status").stdout and ": stalled — no new log line" in (
        cli(cfg, env, "status").stdout
    )

    refused = cli(cfg, env, "runs", "stop", "r2")  # no terminal: no silent stop
    assert refused.returncode == 1
    assert "not stopping r2 without a confirmation (run it again with --yes)" in refused.stderr
    stopped = cli(cfg, env, "runs", "stop", "r2", "--yes")
    assert stopped.returncode == 0, stopped.stderr + d.log
    assert stopped.stdout.startswith(f"Stopping r2 deletes its Kaggle kernel {kernel_of(2)}")
    assert "everything it wrote so far in /kaggle/working is lost" in stopped.stdout
    assert (run_state(cfg, env, "r2") or {})["state"] == "stopped"
    with pytest.raises(KeyError):
        fake.kernel(kernel_of(2))


def test_refusals_before_upload_a_dropped_dataset_and_html_throttling(
    tmp_path: Path, home: Path, fake: FakeKaggle, run_daemon
) -> None:
    root = make_train_project(tmp_path / PROJECT)
    cfg = config_file(tmp_path, fake, root, train={"timeout": "10h"})
    env = subprocess_env(fake, home)
    d = run_daemon(cfg, env=env)
    up(cfg, env)

    p100 = cli(cfg, env, "train", PROJECT, "--gpu", "NvidiaTeslaP100")
    assert p100.returncode == 2
    assert "Kaggle's current default image cannot use a P100" in p100.stderr
    fake.gpu_used_seconds = 22 * 3600  # 8 h left of 30
    fake.quota_refresh_at = 1_900_000_000.0
    low = cli(cfg, env, "train", PROJECT)
    assert low.returncode == 1
    assert "Kaggle has 8 h of GPU time left this week, less than the run's timeout of 10 h" in (
        low.stderr
    )
    assert "the quota refreshes at 2030-03-17T17:46:40Z" in low.stderr
    assert not [r.rpc for r in fake.requests if r.rpc in UPLOADS]  # refused before any upload
    assert "Traceback" not in low.stderr + p100.stderr

    fake.gpu_used_seconds = 0
    fake.inject(429, rpc="GetKernelSessionStatus", count=6, html=True)  # beyond one call's retries
    fake.inject(503, rpc="ListKernelSessionOutput", count=6, html=True)
    throttled = cli(cfg, env, "train", PROJECT, "--wait")
    assert throttled.returncode == 0, throttled.stderr + d.log
    assert "r1 COMPLETE" in throttled.stdout
    assert "Kaggle is throttling requests (HTTP 429)" in throttled.stderr  # said, then retried

    fake.delete_dataset(DATASET)
    dropped = cli(cfg, env, "train", PROJECT)
    assert dropped.returncode == 1
    assert dropped.stdout.startswith("snapshot: unchanged since v1")
    assert f"r2 FAILED: Kaggle dropped dataset sources {DATASET} from {kernel_of(2)} v1" in (
        dropped.stderr
    )
    assert (run_state(cfg, env, "r2") or {})["state"] == "failed"


def test_train_without_a_daemon_follows_in_process(
    tmp_path: Path, home: Path, fake: FakeKaggle
) -> None:
    root = make_train_project(tmp_path / PROJECT)
    cfg = config_file(tmp_path, fake, root)
    env = subprocess_env(fake, home)

    done = cli(cfg, env, "train", PROJECT, "--wait")

    assert done.returncode == 0, done.stderr
    assert "r1 COMPLETE" in done.stdout and "epoch 1 loss 0.9" in done.stdout
    assert files_under(root / "runs" / "r1")["model.ckpt"] == CHECKPOINT
    listed = cli(cfg, env, "runs", "--json")
    assert [r["state"] for r in json.loads(listed.stdout)] == ["complete"]
    offline = status(cfg, env)
    assert offline["running"] is False
    assert offline["projects"][0]["runs"][0]["outputs"]["state"] == "fetched"
    assert os.listdir(root / "runs" / "r1" / "exp1") == ["metrics.json"]

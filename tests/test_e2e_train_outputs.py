"""End to end: a run's outputs brought home by the real daemon (issue #12, Done-when 4):
hostile names refused and reported with nothing written outside the run folder, and a
200 MB output streamed to disk without the daemon's memory growing with it."""

from __future__ import annotations

import hashlib
import json
import subprocess
import threading
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.fakes.kaggle_server import FakeKaggle

from .conftest import run_cli, wait_for
from .train_support import (
    CHECKPOINT,
    PROJECT,
    config_file,
    files_under,
    kernel_of,
    make_train_project,
    subprocess_env,
)

pytestmark = pytest.mark.e2e

MB = 1024 * 1024


def cli(cfg: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, "-c", str(cfg), env=env, timeout=120)


def run_state(cfg: Path, env: dict[str, str], run_id: str) -> dict[str, Any]:
    done = cli(cfg, env, "status", "--json")
    assert done.returncode == 0, done.stderr
    runs = json.loads(done.stdout)["projects"][0]["runs"]
    return next((r for r in runs if r["id"] == run_id), {})


def fetched(cfg: Path, env: dict[str, str], run_id: str) -> bool:
    return run_state(cfg, env, run_id).get("outputs", {}).get("state") == "fetched"


def test_hostile_output_names_are_refused_and_reported(
    tmp_path: Path, home: Path, fake: FakeKaggle, run_daemon
) -> None:
    root = make_train_project(tmp_path / PROJECT)
    cfg = config_file(tmp_path, fake, root)
    env = subprocess_env(fake, home)
    d = run_daemon(cfg, env=env)
    wait_for(lambda: cli(cfg, env, "status").returncode == 0, 30, "daemon socket")
    outside = tmp_path / "outside"
    outside.mkdir()
    fake.hostile_outputs(kernel_of(1))  # ../../evil, /etc/x and link/evil
    fake.hold_queue = True
    assert cli(cfg, env, "train", PROJECT).returncode == 0
    folder = root / "runs" / "r1"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "link").symlink_to(outside)  # what link/evil would write through
    etc_x = Path("/etc/x")
    etc_before = etc_x.read_bytes() if etc_x.exists() else None
    fake.release_queue()

    wait_for(lambda: fetched(cfg, env, "r1"), 60, "outputs fetched")

    run = run_state(cfg, env, "r1")
    assert run["state"] == "complete"
    refused = run["outputs"]["refused"]
    assert [r.split(": ")[0] for r in refused] == ["../../evil", "/etc/x", "link/evil"]
    assert list(outside.iterdir()) == []
    assert not (root / "evil").exists() and not (tmp_path / "evil").exists()
    assert not (root / "runs" / "evil").exists()
    assert (etc_x.read_bytes() if etc_x.exists() else None) == etc_before
    assert files_under(folder)["model.ckpt"] == CHECKPOINT  # the rest came home
    table = cli(cfg, env, "runs").stdout
    assert "3 files, 5.0 MB, 3 refused" in table
    assert "refused output ../../evil: refused the output name '../../evil'" in table
    assert "refused the output name '/etc/x': not a relative path" in d.log


def test_a_200_mb_output_is_streamed_without_the_daemon_growing(
    tmp_path: Path, home: Path, fake: FakeKaggle, run_daemon
) -> None:
    root = make_train_project(tmp_path / PROJECT)
    cfg = config_file(tmp_path, fake, root)
    env = subprocess_env(fake, home)
    d = run_daemon(cfg, env=env)
    wait_for(lambda: cli(cfg, env, "status").returncode == 0, 30, "daemon socket")
    warm = cli(cfg, env, "train", PROJECT, "--wait")  # the client and its imports loaded
    assert warm.returncode == 0, warm.stderr + d.log
    assert d.proc is not None
    daemon = psutil.Process(d.proc.pid)
    baseline = daemon.memory_info().rss
    peak = [baseline]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.02):
            peak[0] = max(peak[0], daemon.memory_info().rss)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        big = cli(cfg, env, "train", PROJECT, "--wait", "--command", "python train.py --big 200")
    finally:
        done.set()
        sampler.join()

    assert big.returncode == 0, big.stderr + d.log
    got = root / "runs" / "r2" / "big.bin"
    assert got.stat().st_size == 200 * MB
    chunk = hashlib.sha256(b"big").digest() * 32768
    expected = hashlib.sha256()
    for _ in range(200):
        expected.update(chunk)
    actual = hashlib.sha256()
    with open(got, "rb") as f:
        while block := f.read(MB):
            actual.update(block)
    assert actual.hexdigest() == expected.hexdigest()
    grew = (peak[0] - baseline) / MB
    print(f"daemon RSS {baseline / MB:.0f} MB before, peak {peak[0] / MB:.0f} MB while fetching")
    assert grew < 50, f"the daemon grew by {grew:.0f} MB while fetching 200 MB"

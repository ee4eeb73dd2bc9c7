"""The kernel script syncd generates (train/on_kaggle.py), run for real by the fake Kaggle:
it finds the run's snapshot under either mount layout, refuses a mounted copy that differs
from the manifest before running anything, and runs the command in a verified copy.

Also the script alone, run with the standard library only (`python -I -S`) on folders made
here: a future mount layout, another project's snapshot, another version of this one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from syncd.config import load_config
from syncd.db.statedb import StateDB
from syncd.service.training import train_service
from syncd.snapshot.manifest import FileEntry, manifest_hash
from syncd.snapshot.service import SnapshotService
from syncd.train.kernel_script import kernel_source
from syncd.train.model import KernelParams
from syncd.train.service import TrainService
from tests.fakes.kaggle_server import FakeKaggle

from .kaggle_support import DATASET
from .train_support import PROJECT, config_file, files_under, make_train_project, run_summary

Make = Callable[..., TrainService]


@pytest.fixture
def make(tmp_path: Path, fake: FakeKaggle, kaggle_env: Path, db: StateDB) -> Iterator[Make]:
    made: list[tuple[TrainService, SnapshotService]] = []

    def build(**train: object) -> TrainService:
        root = tmp_path / PROJECT
        if not root.exists():
            make_train_project(root)
        config = load_config(config_file(tmp_path, fake, root, train=train))
        pc = config.project(PROJECT)
        snapshots = SnapshotService(pc, db, config.kaggle)
        service = train_service(pc, db, config.kaggle, snapshots)
        made.append((service, snapshots))
        return service

    yield build
    for service, snapshots in made:
        service.close()
        snapshots.close()


def test_a_tampered_mount_is_refused_before_the_command_runs(
    make: Make, fake: FakeKaggle, tmp_path: Path
) -> None:
    service = make()
    fake.tamper_mount(DATASET, {"train.py": b"print('not the snapshot')\n"})
    record = service.train()
    done = service.follow_until_done(record.id, lambda e: None)

    assert done.state == "error"
    assert done.failure is not None
    assert done.failure.startswith(
        "the mounted snapshot differs from its manifest in 1 file(s), so it is not the code "
        "this run was pushed for: train.py: 26 bytes, md5 "
    )
    folder = tmp_path / PROJECT / "runs" / "r1"
    assert set(files_under(folder)) == {"syncd-run.json", "syncd-kernel.log"}  # nothing ran
    summary = run_summary(folder)
    assert (summary["exit_code"], summary["error"]) == (4, done.failure)
    log = (folder / "syncd-kernel.log").read_text()
    assert "syncd: ERROR: the mounted snapshot differs" in log
    assert "not the snapshot" not in log and "epoch 1" not in log


def test_a_missing_file_and_a_missing_snapshot_are_refused_too(
    make: Make, fake: FakeKaggle
) -> None:
    service = make()
    fake.tamper_mount(DATASET, {"models/net.py": None})
    done = service.follow_until_done(service.train().id, lambda e: None)
    assert done.state == "error" and "models/net.py: " in (done.failure or "")

    fake.tamper_mount(DATASET, {"syncd-snapshot.json": None})
    done = service.follow_until_done(service.train().id, lambda e: None)
    assert done.state == "error"
    assert (done.failure or "").startswith(
        f"the snapshot this run was pushed for ({DATASET} v1, manifest "
    )
    assert "found no syncd snapshot at all" in (done.failure or "")


def test_the_old_mount_layout_is_found(make: Make, fake: FakeKaggle, tmp_path: Path) -> None:
    fake.mount_layout = "legacy"
    service = make()
    done = service.follow_until_done(service.train().id, lambda e: None)
    assert done.state == "complete", done.failure
    summary = run_summary(tmp_path / PROJECT / "runs" / "r1")
    assert summary["snapshot"] == "input/cifar-code"
    assert json.loads((tmp_path / PROJECT / "runs/r1/exp1/metrics.json").read_text())["run"] == "r1"


# --- the script on its own ------------------------------------------------------------------


def _snapshot(folder: Path, project: str, files: dict[str, bytes]) -> str:
    import hashlib

    entries = {p: FileEntry(len(d), hashlib.md5(d).hexdigest()) for p, d in files.items()}
    for rel, data in files.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(data)
    digest = manifest_hash(entries)
    manifest = {
        "project": project,
        "manifest_hash": digest,
        "git": {"commit": "c0ffee" * 6 + "beef", "describe": "v1", "branch": "main"},
        "files": {p: {"size": e.size, "md5": e.md5} for p, e in entries.items()},
    }
    (folder / "syncd-snapshot.json").write_text(json.dumps(manifest))
    return digest


def _run_script(
    root: Path, digest: str, command: str, path: str | None = None
) -> subprocess.CompletedProcess[str]:
    params = KernelParams(
        run_id="r7",
        project=PROJECT,
        dataset=DATASET,
        snapshot_version=3,
        manifest_hash=digest,
        manifest_name="syncd-snapshot.json",
        git_commit="abc123",
        command=command,
        outputs="runs",
    )
    script = root / "script.py"
    script.write_text(kernel_source(params))
    env = {"PATH": path or os.environ["PATH"], "SYNCD_KAGGLE_ROOT": str(root / "kaggle")}
    return subprocess.run(
        [sys.executable, "-I", "-S", str(script)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_script_finds_its_snapshot_among_others_in_a_future_layout(tmp_path: Path) -> None:
    files = {"train.py": b"import os\nprint('trained', os.environ['SYNCD_RUN_ID'])\n"}
    digest = _snapshot(tmp_path / "kaggle/input/models/v9/alice/x/cifar-code", PROJECT, files)
    _snapshot(tmp_path / "kaggle/input/datasets/bob/other", "other", files)  # another project
    _snapshot(tmp_path / "kaggle/input/datasets/alice/old", PROJECT, {"train.py": b"old\n"})
    (tmp_path / "kaggle/working").mkdir(parents=True)

    done = _run_script(tmp_path, digest, "python3 train.py > runs/out.txt")

    assert done.returncode == 0, done.stderr
    assert (tmp_path / "kaggle/working/out.txt").read_text() == "trained r7\n"
    summary = run_summary(tmp_path / "kaggle/working")
    assert summary["snapshot"] == "input/models/v9/alice/x/cifar-code"
    assert summary["git_commit"] == "c0ffee" * 6 + "beef"  # the snapshot's, in full
    assert (summary["snapshot_version"], summary["exit_code"]) == (3, 0)
    assert summary["gpu"] is None  # no nvidia-smi here
    # the code ran from a copy outside working/: only outputs are left there
    assert set(os.listdir(tmp_path / "kaggle/working")) == {"out.txt", "syncd-run.json"}


def test_the_script_names_what_it_found_when_its_snapshot_is_not_there(tmp_path: Path) -> None:
    _snapshot(tmp_path / "kaggle/input/datasets/alice/cifar-code", PROJECT, {"a.py": b"1\n"})
    (tmp_path / "kaggle/working").mkdir(parents=True)

    done = _run_script(tmp_path, "f" * 64, "touch ran")

    assert done.returncode == 3
    assert "another snapshot of cifar in input/datasets/alice/cifar-code" in done.stderr
    assert "do not take a new snapshot while a run waits to start" in done.stderr
    assert not (tmp_path / "kaggle/working/ran").exists()
    assert run_summary(tmp_path / "kaggle/working")["exit_code"] == 3


def test_the_script_hashes_manifests_as_syncd_does() -> None:
    from syncd.train import on_kaggle

    files = {"b/x.py": FileEntry(3, "0" * 32), "a.py": FileEntry(10, "f" * 32)}
    as_json = {p: {"size": e.size, "md5": e.md5} for p, e in files.items()}
    assert on_kaggle.manifest_hash(as_json) == manifest_hash(files)


def test_the_script_records_the_gpus_nvidia_smi_sees(tmp_path: Path) -> None:
    digest = _snapshot(tmp_path / "kaggle/input/datasets/alice/c", PROJECT, {"a.py": b"1\n"})
    (tmp_path / "kaggle/working").mkdir(parents=True)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    smi = bin_dir / "nvidia-smi"  # what the T4 x2 machines answer
    smi.write_text('#!/bin/sh\necho "Tesla T4, 15360 MiB"\necho "Tesla T4, 15360 MiB"\n')
    smi.chmod(0o755)

    done = _run_script(tmp_path, digest, "true", path=f"{bin_dir}:{os.environ['PATH']}")

    assert done.returncode == 0, done.stderr
    gpu = run_summary(tmp_path / "kaggle/working")["gpu"]
    assert gpu == ["Tesla T4, 15360 MiB", "Tesla T4, 15360 MiB"]

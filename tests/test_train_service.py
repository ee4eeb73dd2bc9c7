"""syncd.train in-process against the fake Kaggle, which really runs the generated script:
snapshot → push → follow → outputs home, and each way a run can go wrong before or after.

The real SnapshotService, the real kaggle client over HTTP, a real state db; the daemon
and the CLI as subprocesses are in test_e2e_train*.py."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from syncd.config import load_config
from syncd.db.statedb import StateDB
from syncd.errors import ConfigError
from syncd.service.training import train_service
from syncd.snapshot.service import SnapshotService
from syncd.train.events import RunEvent
from syncd.train.model import TrainError
from syncd.train.service import TrainService
from tests.fakes.kaggle_server import FakeKaggle

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
)

Make = Callable[..., TrainService]
UPLOADS = ("StartBlobUpload", "upload", "CreateDataset", "CreateDatasetVersion", "SaveKernel")


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


def finish(service: TrainService, run_id: str) -> tuple[object, list[RunEvent]]:
    events: list[RunEvent] = []
    return service.follow_until_done(run_id, events.append), events


def test_a_run_trains_on_the_snapshot_and_its_outputs_come_home(
    make: Make, fake: FakeKaggle, tmp_path: Path
) -> None:
    root = tmp_path / PROJECT
    make_train_project(root)
    commit = commit_all(root)
    service = make()
    said: list[str] = []

    record = service.train("try lr 3e-4", say=said.append)

    assert (record.id, record.state, record.kernel, record.version) == (
        "r1",
        "queued",
        kernel_of(1),
        1,
    )
    assert said[0].startswith(f"snapshot: {DATASET} v1 is ready")
    sent = fake.kernel(kernel_of(1)).versions[0].request
    assert sent["datasetDataSources"] == [DATASET]
    assert (sent["machineShape"], sent["enableInternet"], sent["isPrivate"]) == (
        "NvidiaTeslaT4",
        False,
        True,
    )
    done, events = finish(service, "r1")
    assert done.state == "complete", done  # type: ignore[attr-defined]

    folder = root / "runs" / "r1"
    working = files_under(folder)
    assert set(working) == {"exp1/metrics.json", "model.ckpt", "syncd-run.json", "syncd-kernel.log"}
    assert json.loads(working["exp1/metrics.json"]) == {"loss": 0.25, "run": "r1", "lr": "3e-4"}
    assert working["model.ckpt"] == CHECKPOINT
    summary = run_summary(folder)
    assert (summary["run_id"], summary["snapshot_version"], summary["git_commit"]) == (
        "r1",
        1,
        commit,
    )
    assert (summary["exit_code"], summary["error"], summary["dataset"]) == (0, None, DATASET)
    assert summary["snapshot"] == f"input/datasets/{DATASET}"
    log = (folder / "syncd-kernel.log").read_text()
    assert "epoch 1 loss 0.9\n" in log and "warming up\n" in log and "done\n" in log
    assert "syncd: all 4 files match the manifest (md5)" in log
    states = [e.text for e in events if e.kind == "state"]
    assert states[-1] == "complete"
    assert [e.text for e in events if e.kind == "log" and e.text == "done\n"] == ["done\n"]
    again = service.store.find("r1")
    assert (again.outputs, again.output_files, again.exit_code) == ("fetched", 3, 0)
    assert again.git_commit == commit

    # Unchanged folder: the snapshot is reused; an edit: a new version.
    fake.reset_log()
    second = service.train()
    assert second.snapshot_version == 1
    assert not {r.rpc for r in fake.requests} & {"StartBlobUpload", "CreateDatasetVersion"}
    finish(service, second.id)
    (root / "lr.txt").write_text("1e-3\n")
    settle(root)
    third = service.train("lr 1e-3")
    assert (third.id, third.snapshot_version) == ("r3", 2)
    done, _ = finish(service, "r3")
    assert json.loads((root / "runs/r3/exp1/metrics.json").read_text())["lr"] == "1e-3"
    assert [r.id for r in service.runs()] == ["r3", "r2", "r1"]
    # runs/ is the outputs folder: never in a snapshot
    assert not [p for p in fake.dataset(DATASET).versions[1].files if p.startswith("runs/")]


def test_a_new_snapshot_warns_about_runs_still_waiting_for_a_gpu(
    make: Make, fake: FakeKaggle, tmp_path: Path
) -> None:
    service = make(timeout="1h")
    fake.hold_queue = True
    service.train()
    (tmp_path / PROJECT / "lr.txt").write_text("1e-2\n")
    settle(tmp_path / PROJECT)
    said: list[str] = []
    service.train(say=said.append)
    assert said[1] == (
        "warning: r1 has not started yet: it will find v2 mounted instead of v1, and refuse to run"
    )
    fake.release_queue()
    done = service.follow_until_done("r1", lambda e: None)
    assert done.state == "error" and "another snapshot of cifar" in (done.failure or "")


def test_settings_are_refused_before_any_upload(make: Make, fake: FakeKaggle) -> None:
    service = make()
    with pytest.raises(ConfigError, match="'T4' is not a Kaggle accelerator id"):
        service.train(gpu="T4")
    with pytest.raises(ConfigError, match="Kaggle's current default image cannot use a P100"):
        service.train(gpu="NvidiaTeslaP100")
    with pytest.raises(ConfigError, match="longer than Kaggle's 12 h session limit"):
        make(timeout="13h").train()
    assert fake.requests == []


def test_low_quota_is_refused_naming_the_hours_left_and_the_refresh(
    make: Make, fake: FakeKaggle
) -> None:
    fake.gpu_used_seconds = 27.5 * 3600  # 2.5 h left of 30
    fake.quota_refresh_at = 1_900_000_000.0  # 2030-03-17T17:46:40Z
    with pytest.raises(TrainError) as refused:
        make(timeout="4h").train()
    text = str(refused.value)
    assert "Kaggle has 2.5 h of GPU time left this week, less than the run's timeout of 4 h" in text
    assert "the quota refreshes at 2030-03-17T17:46:40Z" in text
    assert not {r.rpc for r in fake.requests} & set(UPLOADS)
    make(timeout="2h").train()  # fits

"""Following runs against the fake Kaggle, in-process: failures and their sentences, retries
on throttling and outages, stalls, stops, hostile output names, lost push replies, the
notification and kernel tidying. The real client over HTTP, the real kernel script."""

from __future__ import annotations

import json
import os
import stat
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from syncd.config import KaggleConfig, load_config
from syncd.db.statedb import StateDB
from syncd.remotes.kaggle.kernels import KaggleKernels
from syncd.service.training import train_service
from syncd.snapshot.service import SnapshotService
from syncd.train.model import TrainError
from syncd.train.service import TrainService
from tests.fakes.kaggle_server import FakeKaggle

from .conftest import wait_for
from .kaggle_support import DATASET
from .train_support import (
    CHECKPOINT,
    PROJECT,
    config_file,
    files_under,
    kernel_of,
    make_train_project,
)

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


def follow(service: TrainService, run_id: str) -> object:
    return service.follow_until_done(run_id, lambda e: None)


def test_an_error_run_brings_its_log_and_partial_outputs_home_with_the_reason(
    make: Make, tmp_path: Path
) -> None:
    service = make()
    done = follow(service, service.train(command="python train.py --fail 2").id)
    assert done.state == "error"  # type: ignore[attr-defined]
    assert done.failure == "`python train.py --fail 2` exited with code 2"  # type: ignore[attr-defined]
    folder = tmp_path / PROJECT / "runs" / "r1"
    got = files_under(folder)
    assert got["model.ckpt"] == CHECKPOINT
    assert "CUDA out of memory" in got["syncd-kernel.log"].decode()
    assert json.loads(got["syncd-run.json"])["exit_code"] == 2


def test_a_dataset_kaggle_drops_from_the_push_fails_the_run_with_that_reason(
    make: Make, fake: FakeKaggle
) -> None:
    service = make()
    assert follow(service, service.train().id).state == "complete"  # type: ignore[attr-defined]
    fake.delete_dataset(DATASET)  # gone on Kaggle; syncd still has v1 as its last snapshot

    record = service.train()

    assert (record.id, record.state, record.outputs) == ("r2", "failed", "none")
    assert record.failure == (
        f"Kaggle dropped dataset sources {DATASET} from {kernel_of(2)} v1 (not found, or not "
        "visible to alice), so the run would not see them"
    )
    assert record.kernel_deleted  # it would have run without its code, on GPU time
    with pytest.raises(KeyError):
        fake.kernel(kernel_of(2))


def test_the_two_gpu_session_cap_is_one_sentence(make: Make, fake: FakeKaggle) -> None:
    service = make(timeout="1h")  # two held 12 h sessions would exhaust the quota first
    fake.hold_queue = True
    service.train()
    service.train()
    third = service.train()
    assert third.state == "failed"
    assert (
        third.failure == "Kaggle already runs 2 GPU sessions for alice, the most it allows at once"
    )
    fake.release_queue()


def test_throttling_and_outages_as_html_pages_are_retried(make: Make, fake: FakeKaggle) -> None:
    service = make()
    record = service.train()
    fake.inject(429, rpc="GetKernelSessionStatus", count=2, html=True)
    fake.inject(503, rpc="ListKernelSessionOutput", count=2, html=True)
    fake.inject(503, rpc="download", count=1, html=True)
    # then the connection breaks after 2 MiB (the first file, metrics.json, is smaller: it
    # arrives whole; the 5 MB checkpoint is cut)
    fake.inject(rpc="download", partial=2 * 1024 * 1024, count=2)
    fake.inject(rpc="GetKernelSessionStatus", drop=True, count=2)  # the network goes away
    done = follow(service, record.id)
    assert done.state == "complete"  # type: ignore[attr-defined]
    assert done.output_files == 3  # type: ignore[attr-defined]
    ranges = [r.headers.get("Range") for r in fake.requests if r.rpc == "download"]
    assert ranges == [None, None, None, "bytes=2097152-", None]  # resumed, not started over
    assert files_under(Path(done.folder))["model.ckpt"] == CHECKPOINT  # type: ignore[attr-defined]
    metrics = json.loads((Path(done.folder) / "exp1/metrics.json").read_text())  # type: ignore[attr-defined]
    assert metrics["run"] == "r1"

    # Longer than one call's retries: the poll fails, says why, and the next one goes on.
    record = service.train()
    fake.inject(503, rpc="GetKernelSessionStatus", count=6, html=True)

    def failed_look() -> str | None:
        # (a turn may find the run's lock busy for a moment: a process the fake forks for
        # the session holds a copy of the launcher's lock until it execs; it looks again)
        service.follower.turn()
        return service.store.find(record.id).last_error

    seen = wait_for(failed_look, 20, "a poll that failed")
    assert "Kaggle is unavailable (HTTP 503)" in str(seen)
    done = follow(service, record.id)
    assert (done.state, done.last_error) == ("complete", None)  # type: ignore[attr-defined]


def test_a_run_without_log_progress_is_stalled_then_stopped(
    make: Make, fake: FakeKaggle, tmp_path: Path
) -> None:
    service = make(stalled_after="2s")
    fake.stall_kernel(kernel_of(1))  # RUNNING for good once the script is done
    record = service.train()
    service.start()
    stalled = wait_for(
        lambda: (r := service.store.find(record.id)).state == "stalled" and r, 30, "stalled"
    )
    assert "no new log line for" in stalled.failure  # type: ignore[attr-defined]
    assert service.status_block()[0]["state"] == "stalled"

    stopped = service.stop(record.id)

    assert (stopped.state, stopped.failure, stopped.kernel_deleted) == (
        "stopped",
        "stopped by the user",
        True,
    )
    with pytest.raises(KeyError):
        fake.kernel(kernel_of(1))
    log = (tmp_path / PROJECT / "runs" / "r1" / "syncd-kernel.log").read_text()
    assert "epoch 1 loss 0.9" in log  # the log so far was kept
    with pytest.raises(TrainError, match="r1 is not running: it is stopped"):
        service.stop("r1")


def test_stopping_a_running_run_ends_its_session_and_billing(
    make: Make, fake: FakeKaggle, kaggle_env: Path
) -> None:
    service = make()
    record = service.train(command="python train.py --hold")
    service.start()
    wait_for(lambda: service.store.find(record.id).state == "running", 30, "running")
    kernels = KaggleKernels(KaggleConfig(endpoint=fake.url))
    assert kernels.quota().reserved_s > 0  # a GPU session holds quota while it runs

    service.stop(record.id)

    before = kernels.quota()
    time.sleep(0.5)
    after = kernels.quota()
    assert (after.reserved_s, after.used_s) == (0.0, before.used_s)  # billing stopped
    assert service.store.find(record.id).state == "stopped"


def test_hostile_output_names_are_refused_and_nothing_leaves_the_run_folder(
    make: Make, fake: FakeKaggle, tmp_path: Path
) -> None:
    service = make()
    outside = tmp_path / "outside"
    outside.mkdir()
    fake.hostile_outputs(kernel_of(1))
    fake.hold_queue = True
    record = service.train()
    folder = Path(record.folder)
    folder.mkdir(parents=True)
    (folder / "link").symlink_to(outside)  # a symlink inside the run folder, leading out
    fake.release_queue()

    done = follow(service, record.id)

    assert done.state == "complete"  # type: ignore[attr-defined]
    refused = done.refused  # type: ignore[attr-defined]
    assert [r.split(":")[0] for r in refused] == ["../../evil", "/etc/x", "link/evil"]
    assert "not a relative path" in refused[1] and "would leave the run folder" in refused[0]
    assert "link is a symlink or a file" in refused[2]
    assert list(outside.iterdir()) == []
    assert not (tmp_path / "evil").exists() and not (tmp_path / PROJECT / "evil").exists()
    assert files_under(folder)["model.ckpt"] == CHECKPOINT  # the others still came home


def test_a_push_whose_reply_was_lost_is_settled_by_the_follower(
    make: Make, fake: FakeKaggle
) -> None:
    service = make()
    # The push lands but its reply is lost, and the kernel's version cannot be read either
    # (4 attempts): syncd cannot know, so it must neither push again nor give up.
    fake.inject(rpc="SaveKernel", drop="after", delay=0.5)
    armed = threading.Thread(
        target=lambda: (
            fake.wait_for("SaveKernel", timeout=60) and fake.inject(500, rpc="GetKernel", count=4)
        )
    )
    armed.start()
    with pytest.raises(TrainError, match="could not confirm the push of alice/cifar-run-1"):
        service.train()
    armed.join()
    assert service.store.find("r1").state == "pushing"

    done = follow(service, "r1")

    assert (done.state, done.version) == ("complete", 1)  # type: ignore[attr-defined]
    assert len(fake.kernel(kernel_of(1)).versions) == 1  # never pushed twice


def test_the_end_of_a_run_is_a_desktop_notification(
    make: Make, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    said = tmp_path / "notified.txt"
    notifier = bin_dir / "notify-send"
    notifier.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" >> "{said}"\n')
    notifier.chmod(notifier.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")

    service = make(notify=True)
    follow(service, service.train().id)
    lines = said.read_text().splitlines()
    assert lines[:2] == ["--app-name=syncd", "syncd: cifar r1 COMPLETE"]
    assert lines[2] == f"outputs in {tmp_path / PROJECT / 'runs' / 'r1'}"

    quiet = make(notify=False)
    follow(quiet, quiet.train().id)
    assert len(said.read_text().splitlines()) == 3


def test_kernels_of_older_runs_are_deleted_once_their_outputs_are_home(
    make: Make, fake: FakeKaggle
) -> None:
    service = make(keep_kernels=1)
    follow(service, service.train().id)
    follow(service, service.train().id)
    with pytest.raises(KeyError):
        fake.kernel(kernel_of(1))
    assert fake.kernel(kernel_of(2)).versions  # the newest is kept
    assert [r.kernel_deleted for r in service.runs()] == [False, True]

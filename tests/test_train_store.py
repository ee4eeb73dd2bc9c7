"""Run records in the state db (train/store.py): ids never reused, endings written once,
what still needs following, which kernels may go, which outputs are home."""

from __future__ import annotations

import time

import pytest

from syncd.db.statedb import StateDB
from syncd.train.model import RunRecord, TrainError
from syncd.train.store import RunStore, parse_run_id


def draft(project: str = "cifar") -> RunRecord:
    return RunRecord(
        seq=0,
        project=project,
        kernel="",
        kernel_before=0,
        command="python train.py",
        machine_shape="NvidiaTeslaT4",
        internet=False,
        dataset="alice/cifar-code",
        snapshot_version=3,
        manifest_hash="ab" * 32,
        folder="",
        created_at=time.time(),
    )


def test_runs_get_ids_that_are_never_reused_and_survive_a_reopen(db: StateDB) -> None:
    store = RunStore(db)
    first = store.create(draft(), lambda run_id: f"/p/runs/{run_id}")
    second = store.create(draft("other"), lambda run_id: f"/q/runs/{run_id}")
    assert (first.id, first.folder, second.id) == ("r1", "/p/runs/r1", "r2")
    with db.transaction() as c:
        c.execute("DELETE FROM train_runs WHERE seq = 2")
    assert store.create(draft(), str).id == "r3"
    again = RunStore(StateDB(db.path))
    assert [r.id for r in again.runs()] == ["r3", "r1"]
    assert [r.id for r in again.runs("cifar", limit=1)] == ["r3"]
    assert again.find("r1") == first


def test_an_ending_is_written_once(db: StateDB) -> None:
    store = RunStore(db)
    run = store.create(draft(), str)
    store.update(run.seq, state="stopped", failure="stopped by the user", outputs="none")
    late = store.update(run.seq, state="running", started_at=12.0)  # a poll that was under way
    assert (late.state, late.started_at) == ("stopped", 12.0)
    later = store.update(run.seq, state="stopped", failure="its kernel was deleted on Kaggle")
    assert later.failure == "stopped by the user"
    assert store.update(run.seq, gpu="Tesla T4").gpu == "Tesla T4"  # other fields still change


def test_what_needs_work_and_which_kernels_may_go(db: StateDB) -> None:
    store = RunStore(db)
    runs = [store.create(draft(), str) for _ in range(4)]
    store.update(runs[0].seq, version=1, state="complete", outputs="fetched")
    store.update(runs[1].seq, version=1, state="error", outputs="pending")
    store.update(runs[2].seq, version=1, state="complete", outputs="fetched")
    store.update(runs[3].seq, version=1, state="running")
    assert [r.id for r in store.needing_work("cifar")] == ["r2", "r4"]
    assert [r.id for r in store.kernels_to_tidy("cifar", keep=1)] == ["r1"]
    store.update(runs[0].seq, kernel_deleted=True)
    assert store.kernels_to_tidy("cifar", keep=1) == []
    assert [r.id for r in store.kernels_to_tidy("cifar", keep=0)] == ["r3"]


def test_fetched_outputs_are_remembered(db: StateDB) -> None:
    store = RunStore(db)
    run = store.create(draft(), str)
    store.mark_fetched(run.seq, "exp1/metrics.json", 60)
    store.mark_fetched(run.seq, "model.ckpt", 5 << 20)
    assert store.fetched(run.seq) == {"exp1/metrics.json": 60, "model.ckpt": 5 << 20}
    assert store.fetched(run.seq + 1) == {}


@pytest.mark.parametrize(("text", "seq"), [("r12", 12), ("12", 12), (" r3 ", 3)])
def test_run_ids(text: str, seq: int) -> None:
    assert parse_run_id(text) == seq


def test_a_bad_or_unknown_run_id_is_one_sentence(db: StateDB) -> None:
    with pytest.raises(TrainError, match="'x12' is not a run id"):
        parse_run_id("x12")
    with pytest.raises(TrainError, match="there is no run r9"):
        RunStore(db).find("r9")

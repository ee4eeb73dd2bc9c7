"""Where training meets snapshots: the one place that knows both ``train`` and ``snapshot``.

``train`` may not import ``snapshot`` (they are siblings in the layers), so the snapshot a
run needs comes from here: ``snapshot_source`` turns a project's ``SnapshotService`` into
the ``SnapshotSource`` callable ``train`` asks (take a snapshot if the folder changed,
reuse the last one if not, wait until Kaggle has it ready). The daemon and the CLI (no
daemon) build a project's ``TrainService`` with ``train_service``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ..config import KaggleConfig, ProjectConfig
from ..db.statedb import StateDB
from ..snapshot.manifest import MANIFEST_NAME
from ..snapshot.service import SnapshotService
from ..train.model import SnapshotRef, SnapshotSource, TrainError
from ..train.service import TrainService

_COMMIT = re.compile(r"\bcommit ([0-9a-f]{7,40})\b")


def snapshot_source(snapshots: SnapshotService) -> SnapshotSource:
    """The snapshot a run trains on, from this project's snapshots."""

    def current(message: str | None) -> SnapshotRef:
        result = snapshots.take("train", message, wait=True)
        if result.status == "unchanged":
            snapshots.settle_pending()  # the version it reuses may still be processing
        elif result.status != "ready":
            raise TrainError(f"{snapshots.name}: no snapshot to train on: {result.message}")
        last = snapshots.store.last_uploaded()
        record = last[0] if last is not None else None
        if record is None or record.status != "ready" or record.version is None:
            state = record.status if record else "missing"
            raise TrainError(
                f"{snapshots.name}: the snapshot to train on is not ready on Kaggle ({state})",
                "see `syncd snapshots`, then try again",
            )
        commit = _COMMIT.search(record.notes)
        return SnapshotRef(
            dataset=snapshots.cfg.dataset,
            version=record.version,
            manifest_hash=record.manifest_hash,
            manifest_name=MANIFEST_NAME,
            git_commit=commit.group(1) if commit else None,
            message=result.message,
            data=record.data,  # which data version the code goes with (snapshot.data)
        )

    return current


def lock_dir(db: StateDB) -> Path:
    """Where run locks live: next to the state db (one per config)."""
    return db.path.parent / f"{db.path.stem}-runs"


def train_service(
    pc: ProjectConfig, db: StateDB, kaggle: KaggleConfig, snapshots: SnapshotService
) -> TrainService:
    return TrainService(pc, db, kaggle, snapshot_source(snapshots), lock_dir(db))


# --- the daemon's commands (``train``, ``runs``, ``runs_stop``) ------------------------------


def _trainer(trainers: dict[str, TrainService], project: str | None) -> TrainService:
    if project is None:
        if len(trainers) != 1:
            raise TrainError("name the project to train (syncd train PROJECT)")
        return next(iter(trainers.values()))
    service = trainers.get(project)
    if service is None:
        raise TrainError(
            f"the daemon knows no project {project!r} with a `train:` section",
            "add one under a project with a snapshot section; after editing the config, "
            "run `syncd reload`",
        )
    return service


def train_command(
    trainers: dict[str, TrainService], project: str | None, request: dict[str, Any]
) -> dict[str, Any]:
    said: list[str] = []
    record = _trainer(trainers, project).train(
        request.get("message"),
        gpu=request.get("gpu"),
        command=request.get("command"),
        say=said.append,
    )
    return {"run": record.to_dict(), "said": said}


def _owner(trainers: dict[str, TrainService], run_id: str) -> TrainService:
    if not trainers:
        raise TrainError("no project has a `train:` section in the config")
    record = next(iter(trainers.values())).store.find(run_id)  # one store: every project's
    return _trainer(trainers, record.project)


def runs_command(
    trainers: dict[str, TrainService], project: str | None, request: dict[str, Any]
) -> Any:
    """A run's events for ``--wait`` (``run``, ``after``, ``wait``), or the run list."""
    run = request.get("run")
    if run is not None:
        wait = min(25.0, max(0.0, float(request.get("wait") or 0)))
        return _owner(trainers, str(run)).watch(str(run), int(request.get("after") or 1), wait)
    chosen = [_trainer(trainers, project)] if project is not None else trainers.values()
    return [r.to_dict() for service in chosen for r in service.runs(limit=200)]


def stop_command(trainers: dict[str, TrainService], request: dict[str, Any]) -> dict[str, Any]:
    run = str(request.get("run") or "")
    return _owner(trainers, run).stop(run).to_dict()

"""What a training run is, as the rest of ``train`` and the service layer see it.

Owns the run record (``RunRecord``: one row of ``store``), the run states and what each
means, the snapshot a run trains on (``SnapshotRef``) with the callable that provides it
(``SnapshotSource``: the service layer injects it, since ``train`` never imports
``snapshot``), the parameters baked into the kernel script (``KernelParams``) and the
errors ``syncd train`` reports.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from ..errors import SyncdError

# States, in the order a run normally goes through them.
PUSHING = "pushing"  # recorded, push not confirmed: a crash here is settled at the next poll
QUEUED = "queued"
RUNNING = "running"
STALLED = "stalled"  # RUNNING, but no new log line for `train.stalled_after`
COMPLETE = "complete"  # Kaggle's verdicts
ERROR = "error"
FAILED = "failed"  # syncd could not start it: the push was refused or lost its dataset
STOPPED = "stopped"  # `syncd runs stop`, a cancel on Kaggle, or the kernel deleted there
ACTIVE = (PUSHING, QUEUED, RUNNING, STALLED)
ENDED = (COMPLETE, ERROR, FAILED, STOPPED)

# What became of the outputs
OUTPUTS_WAITING = None  # the run has not ended
OUTPUTS_PENDING = "pending"  # ended: to be fetched (retried at each poll until done)
OUTPUTS_FETCHED = "fetched"
OUTPUTS_NONE = "none"  # nothing to fetch: the run never ran, or its kernel was deleted

LOG_NAME = "syncd-kernel.log"  # the kernel's log, next to its outputs in the run folder
RUN_FILE = "syncd-run.json"  # what the kernel script leaves next to the outputs


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class TrainError(SyncdError):
    """``syncd train`` cannot go on: one sentence, with what to do."""

    title = "syncd train"


@dataclass(frozen=True)
class SnapshotRef:
    """The snapshot a run trains on: a ready version of the project's Kaggle dataset."""

    dataset: str  # owner/slug
    version: int
    manifest_hash: str  # what the kernel script looks for in the mounted manifest
    manifest_name: str  # "syncd-snapshot.json"
    git_commit: str | None  # as the snapshot's notes record it (the manifest has it whole)
    message: str  # what the snapshot step said ("unchanged since v3", "v4 is ready ...")
    # With snapshot.data: the data dataset's version the code goes with (its manifest's
    # "data" object: dataset, version, manifest_hash, manifest_name, paths, files, bytes).
    data: dict[str, Any] | None = None

    @property
    def sources(self) -> tuple[str, ...]:
        """The datasets the kernel attaches: the code's, and the data's when split."""
        return (self.dataset, self.data["dataset"]) if self.data else (self.dataset,)


class SnapshotSource(Protocol):
    """Take a snapshot if the folder changed, reuse the last one if not, and return it once
    Kaggle has it ready; raise a SyncdError otherwise. ``message`` goes into new notes."""

    def __call__(self, message: str | None) -> SnapshotRef: ...


@dataclass(frozen=True)
class KernelParams:
    """Everything the kernel script needs to know, baked into it as JSON."""

    run_id: str
    project: str
    dataset: str
    snapshot_version: int
    manifest_hash: str
    manifest_name: str
    git_commit: str | None
    command: str
    outputs: str  # the project's outputs folder name ("runs"): in the code copy it leads home
    data: dict[str, Any] | None = None  # SnapshotRef.data: linked into the code copy


@dataclass(frozen=True)
class RunRecord:
    """One run of one project: a row of ``train_runs``."""

    seq: int
    project: str
    kernel: str  # owner/slug: one kernel per run
    kernel_before: int  # the kernel's version before the push (0: new), to settle a lost reply
    command: str
    machine_shape: str
    internet: bool
    dataset: str
    snapshot_version: int
    manifest_hash: str
    folder: str  # where outputs come home: <project>/<outputs>/<run-id>
    created_at: float
    message: str | None = None
    git_commit: str | None = None
    version: int | None = None  # the kernel version this run is (status is asked about it)
    url: str | None = None
    state: str = PUSHING
    failure: str | None = None
    started_at: float | None = None  # first seen RUNNING
    finished_at: float | None = None
    log_entries: int = 0  # log lines seen so far
    progress_at: float | None = None  # when the log last grew (stall detection)
    last_error: str | None = None  # why the last poll failed (cleared by the next good one)
    outputs: str | None = OUTPUTS_WAITING
    output_files: int = 0
    output_bytes: int = 0
    refused: tuple[str, ...] = ()  # output names refused, each with the reason
    exit_code: int | None = None  # from syncd-run.json
    gpu: str | None = None  # what nvidia-smi saw on Kaggle
    # With snapshot.data: the data dataset and version attached beside the code's.
    data_dataset: str | None = None
    data_version: int | None = None
    notified: bool = False
    kernel_deleted: bool = False
    extra: dict[str, Any] = field(default_factory=dict)  # room for later fields

    @property
    def id(self) -> str:
        return f"r{self.seq}"

    @property
    def active(self) -> bool:
        return self.state in ACTIVE

    @property
    def needs_work(self) -> bool:
        """Still something to follow or fetch."""
        return self.active or self.outputs == OUTPUTS_PENDING

    @property
    def duration_s(self) -> float | None:
        if self.started_at is None:
            return None
        return (self.finished_at or time.time()) - self.started_at

    def replace(self, **changes: Any) -> RunRecord:
        return dataclasses.replace(self, **changes)

    def to_json(self) -> dict[str, Any]:
        """The stored form (every field)."""
        data = dataclasses.asdict(self)
        data["refused"] = list(self.refused)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunRecord:
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["refused"] = tuple(values.get("refused") or ())
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """The ``runs`` entries of ``status --json`` and ``syncd runs --json``: the design's
        keys (id, kernel, snapshot_version, machine_shape, state, started_at, failure) first,
        then additions."""
        duration = self.duration_s
        return {
            "id": self.id,
            "kernel": self.kernel,
            "snapshot_version": self.snapshot_version,
            "machine_shape": self.machine_shape,
            "state": self.state,
            "started_at": iso(self.started_at),
            "failure": self.failure,
            "project": self.project,
            "version": self.version,
            "url": self.url,
            "dataset": self.dataset,
            "data": (
                {"dataset": self.data_dataset, "version": self.data_version}
                if self.data_dataset
                else None
            ),
            "command": self.command,
            "message": self.message,
            "git_commit": self.git_commit,
            "created_at": iso(self.created_at),
            "finished_at": iso(self.finished_at),
            "duration_s": None if duration is None else round(duration, 1),
            "last_log_at": iso(self.progress_at),
            "last_error": self.last_error,
            "exit_code": self.exit_code,
            "gpu": self.gpu,
            "outputs": {
                "state": self.outputs,
                "folder": self.folder,
                "files": self.output_files,
                "bytes": self.output_bytes,
                "refused": list(self.refused),
            },
        }

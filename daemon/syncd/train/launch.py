"""Starting a run: from ``syncd train`` to a pushed kernel version, in this order.

1. the settings (``preflight.check_settings``): nothing has been uploaded yet;
2. Kaggle: credentials, the kernel name's rules (``KernelSpec.problems``), the GPU quota;
3. the snapshot (injected ``SnapshotSource``): a new version if the folder changed, the
   last one if not, ready on Kaggle either way;
4. the run record (state ``pushing``), then the push of the generated script with the
   snapshot's dataset as its source (and the ``<slug>-data`` dataset too when the project
   splits off ``snapshot.data``: the script links its folders into the code copy),
   ``machine_shape`` and ``enable_internet`` explicit;
5. Kaggle's answer: a version (``queued``), or a refusal or a dropped dataset (``failed``,
   with Kaggle's reason; a version that would run without its dataset is deleted at once).

A push whose reply never came stays ``pushing``: the follower learns from the kernel's
version number whether it landed (a blind retry could start a second session).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

from ..config import ProjectConfig, TrainConfig
from ..errors import SyncdError
from ..remotes.kaggle.kernels import KaggleKernels, KernelPushError, KernelSpec
from .follow import RunLock
from .kernel_script import kernel_source
from .model import (
    FAILED,
    OUTPUTS_NONE,
    PUSHING,
    QUEUED,
    KernelParams,
    RunRecord,
    SnapshotRef,
    SnapshotSource,
    TrainError,
)
from .preflight import check_quota, check_settings, kernel_identity, run_timeout
from .store import RunStore

log = logging.getLogger("syncd.train")

Say = Callable[[str], None]


def train_config(project: ProjectConfig) -> TrainConfig:
    if project.snapshot is None or project.train is None:
        raise TrainError(
            f"project {project.name!r} has no `train:` section in the config",
            "add one (`train: {}` takes every default) under a project with a snapshot section",
        )
    return project.train


class Launcher:
    """Starts runs of one project."""

    def __init__(
        self,
        project: ProjectConfig,
        store: RunStore,
        kernels: Callable[[], KaggleKernels],
        snapshot: SnapshotSource,
        lock_dir: Path,
    ) -> None:
        self.project = project
        self.store = store
        self._kernels = kernels
        self._snapshot = snapshot
        self._lock_dir = lock_dir

    def launch(
        self,
        message: str | None = None,
        *,
        gpu: str | None = None,
        command: str | None = None,
        say: Say = lambda text: None,
    ) -> RunRecord:
        """Preflight, snapshot, push: the run's record (``queued``, or ``failed`` with Kaggle's
        reason). Refusals before anything was recorded raise a SyncdError."""
        cfg = train_config(self.project)
        shape = gpu or cfg.machine_shape
        command = (command or cfg.command).strip()
        check_settings(self.project.name, cfg, shape, command)
        kernels = self._kernels()
        newest = self.store.runs(limit=1)  # every project's: sequence numbers are shared
        ref, title = kernel_identity(
            kernels.username, self.project.name, newest[0].seq + 1 if newest else 1
        )
        probe = KernelSpec(ref, title, "#", shape, cfg.internet)
        if problems := probe.problems():
            raise TrainError(f"{self.project.name}: cannot name the kernel: {'; '.join(problems)}")
        if shape.startswith("Nvidia"):
            check_quota(kernels.quota(), run_timeout(cfg, shape))
        snap = self._snapshot(message)
        say(f"snapshot: {snap.message}")
        self._warn_waiting(snap, say)
        record = self._record(kernels, cfg, shape, command, message, snap)
        # A follower (this process's or another's) leaves a run alone while its push is on.
        lock = RunLock(self._lock_dir, record.seq)
        lock.acquire()
        try:
            return self._push(kernels, cfg, record, snap, say)
        finally:
            lock.release()

    def _warn_waiting(self, snap: SnapshotRef, say: Say) -> None:
        """Kaggle mounts a dataset's newest version when a session starts: runs still waiting
        for a GPU now get this snapshot, and refuse to run (it is not theirs)."""
        for run in self.store.runs(self.project.name, limit=20):
            if run.state in (PUSHING, QUEUED) and run.snapshot_version != snap.version:
                text = (
                    f"{run.id} has not started yet: it will find v{snap.version} mounted instead "
                    f"of v{run.snapshot_version}, and refuse to run"
                )
                say(f"warning: {text}")
                log.warning("%s: %s", self.project.name, text)

    def _record(
        self,
        kernels: KaggleKernels,
        cfg: TrainConfig,
        shape: str,
        command: str,
        message: str | None,
        snap: SnapshotRef,
    ) -> RunRecord:
        outputs = self.project.path / cfg.outputs
        draft = RunRecord(
            seq=0,
            project=self.project.name,
            kernel="",
            kernel_before=0,
            command=command,
            machine_shape=shape,
            internet=cfg.internet,
            dataset=snap.dataset,
            snapshot_version=snap.version,
            manifest_hash=snap.manifest_hash,
            data_dataset=snap.data["dataset"] if snap.data else None,
            data_version=snap.data["version"] if snap.data else None,
            folder="",
            created_at=time.time(),
            message=message,
            git_commit=snap.git_commit,
            state=PUSHING,
        )
        record = self.store.create(draft, lambda run_id: str(outputs / run_id))
        ref, _ = kernel_identity(kernels.username, self.project.name, record.seq)
        try:
            before = kernels.current_version(ref)
        except SyncdError as exc:
            self.store.update(record.seq, state=FAILED, failure=str(exc), outputs=OUTPUTS_NONE)
            raise
        return self.store.update(record.seq, kernel=ref, kernel_before=before)

    def _push(
        self,
        kernels: KaggleKernels,
        cfg: TrainConfig,
        record: RunRecord,
        snap: SnapshotRef,
        say: Say,
    ) -> RunRecord:
        params = KernelParams(
            run_id=record.id,
            project=self.project.name,
            dataset=snap.dataset,
            snapshot_version=snap.version,
            manifest_hash=snap.manifest_hash,
            manifest_name=snap.manifest_name,
            git_commit=snap.git_commit,
            command=record.command,
            outputs=cfg.outputs.rstrip("/"),
            data=snap.data,
        )
        _, title = kernel_identity(kernels.username, self.project.name, record.seq)
        spec = KernelSpec(
            ref=record.kernel,
            title=title,
            code=kernel_source(params),
            machine_shape=record.machine_shape,
            enable_internet=cfg.internet,
            dataset_sources=snap.sources,
            docker_image=cfg.docker_image,
            private=True,
            timeout_s=int(run_timeout(cfg, record.machine_shape)),
        )
        Path(record.folder).parent.mkdir(parents=True, exist_ok=True)
        try:
            pushed = kernels.push(spec)
        except KernelPushError as exc:
            return self._refused(kernels, record, exc)
        except SyncdError as exc:
            # The reply was lost and the kernel's version could not be read either: the
            # follower finds out whether it landed.
            self.store.update(record.seq, last_error=str(exc))
            raise TrainError(
                f"{record.id}: could not confirm the push of {record.kernel}: {exc.message}",
                "syncd checks at the next poll whether it landed (`syncd runs`)",
            ) from None
        record = self.store.update(
            record.seq, version=pushed.version, url=pushed.url, state=QUEUED, last_error=None
        )
        what = f"{record.kernel} v{pushed.version}"
        say(f"{record.id}: pushed {what} ({record.machine_shape}): {pushed.url}")
        log.info("%s: %s pushed as %s", self.project.name, record.id, what)
        return record

    def _refused(
        self, kernels: KaggleKernels, record: RunRecord, exc: KernelPushError
    ) -> RunRecord:
        deleted = False
        if exc.pushed is not None:
            # A version that lost its dataset would run without the code and burn GPU time.
            try:
                deleted = kernels.delete(record.kernel)
            except SyncdError as problem:
                log.warning("%s: could not delete %s: %s", record.id, record.kernel, problem)
        log.error("%s: %s: %s", self.project.name, record.id, exc)
        return self.store.update(
            record.seq,
            state=FAILED,
            failure=exc.message,
            finished_at=time.time(),
            outputs=OUTPUTS_NONE,
            version=exc.pushed.version if exc.pushed else None,
            kernel_deleted=deleted,
            notified=True,  # the person who ran `syncd train` reads it right there
        )

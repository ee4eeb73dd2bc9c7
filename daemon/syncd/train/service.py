"""Training runs of one project: start one, follow them, stop one, say how they are.

The order of a run and nothing below it: ``launch`` (preflight, snapshot, push),
``follow`` (the loop that polls each run with backoff until its outputs are home) with
``poll`` (one look at one run) and ``outputs`` (bringing files home), ``store`` (the
records), ``events`` (the play-by-play for ``--wait``), ``notify``. The snapshot step is
a callable the service layer injects (``SnapshotSource``): this package never imports
``snapshot`` or ``mirror``.

One kernel per run (``<owner>/<project>-run-<n>``), so a run's status, outputs and log
are about that run alone, and stopping one (deleting its kernel: Kaggle has no cancel
call for users) touches no other. Kaggle stays tidy: once a run's outputs are home, the
kernels of all but the newest ``train.keep_kernels`` finished runs are deleted.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..config import KaggleConfig, ProjectConfig
from ..db.statedb import StateDB
from ..remotes.kaggle.kernels import KaggleKernels
from .events import RunEvent, RunEvents
from .follow import RunFollower
from .launch import Launcher, Say, train_config
from .model import ACTIVE, OUTPUTS_NONE, STOPPED, RunRecord, SnapshotSource, TrainError
from .notify import notify
from .outputs import save_live_log
from .store import RunStore

log = logging.getLogger("syncd.train")

RECENT = 5  # ended runs shown in status besides the active ones


def stop_warning(record: RunRecord) -> str:
    """What stopping a run loses, for the confirmation."""
    return (
        f"Stopping {record.id} deletes its Kaggle kernel {record.kernel or '(not pushed yet)'}, "
        "the only way to stop a run on Kaggle: the session ends now and its billing with it, "
        "everything it wrote so far in /kaggle/working is lost (Kaggle keeps outputs of "
        "finished sessions only), and so is the kernel's page on Kaggle; the log so far is "
        f"saved in {record.folder}."
    )


class TrainService:
    """``syncd train`` and ``syncd runs`` for one project with a ``train:`` section."""

    def __init__(
        self,
        project: ProjectConfig,
        db: StateDB,
        kaggle: KaggleConfig,
        snapshot: SnapshotSource,
        lock_dir: Path,
        *,
        notifier: Callable[[str, str], bool] = notify,
    ) -> None:
        train_config(project)
        self.project = project
        self.kaggle_config = kaggle
        self.store = RunStore(db)
        self.events = RunEvents()
        self._closed = threading.Event()
        self.follower = RunFollower(
            project, self.store, self._kernels, self.events, lock_dir, notifier
        )
        self.launcher = Launcher(
            project, self.store, lambda: self._kernels(self._closed), snapshot, lock_dir
        )

    @property
    def name(self) -> str:
        return self.project.name

    def _kernels(self, cancel: threading.Event) -> KaggleKernels:
        return KaggleKernels(self.kaggle_config, cancel=cancel)

    # --- commands ---------------------------------------------------------------------

    def train(
        self,
        message: str | None = None,
        *,
        gpu: str | None = None,
        command: str | None = None,
        say: Say = lambda text: None,
    ) -> RunRecord:
        """Start a run (``launch``); the follower looks at it right away."""
        record = self.launcher.launch(message, gpu=gpu, command=command, say=say)
        self.events.add(
            record.id, "state", record.state + (f": {record.failure}" if record.failure else "")
        )
        self.follower.wake(record.seq)
        return record

    def runs(self, limit: int | None = None) -> list[RunRecord]:
        return self.store.runs(self.name, limit)

    def stop(self, run_id: str) -> RunRecord:
        """Stop a run by deleting its kernel; its log so far is saved first."""
        record = self.store.find(run_id)
        if record.project != self.name:
            raise TrainError(f"{run_id} is a run of {record.project}, not {self.name}")
        if record.state not in ACTIVE:
            raise TrainError(f"{record.id} is not running: it is {record.state}")
        kernels = self._kernels(self._closed)
        saved = save_live_log(kernels, record, seconds=3.0)
        deleted = kernels.delete(record.kernel) if record.kernel else False
        record = self.store.update(
            record.seq,
            state=STOPPED,
            failure="stopped by the user",
            finished_at=time.time(),
            outputs=OUTPUTS_NONE,
            kernel_deleted=True,
            notified=True,
        )
        self.events.add(record.id, "state", f"{STOPPED}: stopped by the user")
        log.info(
            "%s: stopped %s (%s %s; log so far %s)",
            self.name,
            record.id,
            record.kernel,
            "deleted" if deleted else "was already gone",
            "saved" if saved else "not available",
        )
        return record

    def watch(self, run_id: str, cursor: int, wait: float) -> dict[str, Any]:
        """For ``--wait`` through the daemon: the run, and its events from ``cursor`` on
        (waiting up to ``wait`` s for one while the run still needs work)."""
        record = self.store.find(run_id)
        found, after = self.events.after(record.id, cursor, wait if record.needs_work else 0.0)
        record = self.store.get(record.seq) or record
        return {
            "run": record.to_dict(),
            "done": not record.needs_work,
            "events": [e.to_dict() for e in found],
            "cursor": after,
        }

    def follow_until_done(self, run_id: str, on_event: Callable[[RunEvent], None]) -> RunRecord:
        return self.follower.follow_until_done(self.store.find(run_id).seq, on_event)

    # --- status and lifecycle ----------------------------------------------------------

    def status_block(self) -> list[dict[str, Any]]:
        return runs_block(self.store, self.name)

    def start(self) -> None:
        """Follow the project's runs in a thread, from where the last process left them."""
        self.follower.start()

    def close(self) -> None:
        self._closed.set()
        self.follower.close()


def runs_block(store: RunStore, project: str) -> list[dict[str, Any]]:
    """The ``runs`` list of ``status --json``: active runs and the last few ended ones."""
    runs = store.runs(project, limit=50)
    active = [r for r in runs if r.needs_work]
    ended = [r for r in runs if not r.needs_work][:RECENT]
    return [r.to_dict() for r in sorted(active + ended, key=lambda r: -r.seq)]

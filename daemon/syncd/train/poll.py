"""One look at one run: what Kaggle says about *that* kernel version, and what follows.

* ``pushing`` (the push's reply was lost, or syncd died meanwhile): the kernel's version
  number says whether the push landed; after the grace Kaggle needs to show a new kernel,
  a push that never landed is ``failed``.
* ``queued``/``running``/``stalled``: the status of the run's own version (never the
  kernel's newest). While it runs, the live log tells whether it makes progress: no new
  line for ``train.stalled_after`` makes it ``stalled`` (crashed kernels have been seen
  staying RUNNING for hours), a new line makes it ``running`` again. A kernel that is
  gone (deleted on Kaggle) ends the run as ``stopped``.
* ended (COMPLETE, ERROR, a cancel): the outputs and log come home (``outputs``), the
  failure is the kernel script's own sentence when it left one, the person is notified,
  and kernels of older runs beyond ``train.keep_kernels`` are deleted.

Every change goes to the store first, then to the event stream for ``--wait``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from ..config import ProjectConfig, TrainConfig
from ..errors import SyncdError, TransientError
from ..remotes.kaggle.kernels import KaggleKernels, KernelStatus, LogEntry
from ..remotes.kaggle.rules import pending_grace
from .events import RunEvents
from .model import (
    COMPLETE,
    ERROR,
    FAILED,
    OUTPUTS_FETCHED,
    OUTPUTS_NONE,
    OUTPUTS_PENDING,
    PUSHING,
    QUEUED,
    RUNNING,
    STALLED,
    STOPPED,
    RunRecord,
)
from .outputs import fetch_outputs
from .store import RunStore

log = logging.getLogger("syncd.train")

LIVE_LOG_S = 2.0  # how long one poll reads the live log stream at most
# Kaggle's session states → ours (the rest keep the run as it is and ask again later)
ENDINGS = {"complete": COMPLETE, "error": ERROR, "cancel_acknowledged": STOPPED}
Notify = Callable[[str, str], bool]


class RunPoller:
    def __init__(
        self, project: ProjectConfig, store: RunStore, events: RunEvents, notify: Notify
    ) -> None:
        assert project.train is not None
        self.project = project
        self.cfg: TrainConfig = project.train
        self.store = store
        self.events = events
        self._notify = notify

    def poll(self, kernels: KaggleKernels, record: RunRecord) -> bool:
        """One look; True if something changed (the follower then looks again soon)."""
        before = record
        if record.state == PUSHING:
            record = self._settle_push(kernels, record)
        elif record.active:
            record = self._follow(kernels, record)
        if record.outputs == OUTPUTS_PENDING:
            record = self._bring_home(kernels, record)
        return record != before

    # --- states ------------------------------------------------------------------------

    def _set(self, record: RunRecord, **changes: Any) -> RunRecord:
        new = self.store.update(record.seq, **changes)
        if new.state != record.state:
            why = f": {new.failure}" if new.failure and new.state != COMPLETE else ""
            log.info("%s: %s is %s%s", self.project.name, record.id, new.state, why)
            self.events.add(record.id, "state", new.state + why)
        return new

    def _settle_push(self, kernels: KaggleKernels, record: RunRecord) -> RunRecord:
        now = kernels.current_version(record.kernel) if record.kernel else 0
        if now > record.kernel_before:
            log.info("%s: %s: the push landed as v%d", self.project.name, record.id, now)
            url = f"https://www.kaggle.com/code/{record.kernel}"
            return self._set(record, version=now, url=url, state=QUEUED)
        if time.time() - record.created_at < pending_grace():
            return record  # being pushed, or Kaggle does not show the new kernel yet
        return self._end(
            record, FAILED, "the push never reached Kaggle (syncd stopped or lost the connection)"
        )

    def _follow(self, kernels: KaggleKernels, record: RunRecord) -> RunRecord:
        assert record.version is not None
        try:
            status = kernels.status(record.kernel, record.version)
        except TransientError:
            raise
        except SyncdError:
            if kernels.current_version(record.kernel) == 0:
                return self._end(record, STOPPED, "its kernel was deleted on Kaggle", fetch=False)
            raise
        ending = ENDINGS.get(status.state)
        if status.state == "new_script":
            return self._end(record, ERROR, "Kaggle saved the kernel without running it")
        if ending is not None:
            return self._end(record, ending, self._failure(status, ending))
        if status.state == "running":
            return self._running(kernels, record)
        if status.state == "queued" and record.state != QUEUED:
            return self._set(record, state=QUEUED)
        return record

    @staticmethod
    def _failure(status: KernelStatus, ending: str) -> str | None:
        if ending == COMPLETE:
            return None
        if ending == STOPPED:
            return "cancelled on Kaggle"
        return status.failure or "Kaggle ended the session with an error"

    def _running(self, kernels: KaggleKernels, record: RunRecord) -> RunRecord:
        now = time.time()
        if record.started_at is None:
            record = self._set(record, state=RUNNING, started_at=now, progress_at=now)
        new = self._new_log(kernels, record)
        if new:
            self._emit_log(record, new)
            return self._set(
                record,
                state=RUNNING,
                failure=None,
                log_entries=record.log_entries + len(new),
                progress_at=now,
            )
        quiet = now - (record.progress_at or record.started_at or now)
        if new is not None and record.state == RUNNING and quiet >= self.cfg.stalled_after:
            log.warning(
                "%s: %s has printed nothing for %.0f s while RUNNING",
                self.project.name,
                record.id,
                quiet,
            )
            return self._set(
                record,
                state=STALLED,
                failure=f"no new log line for {quiet / 60:.0f} min while RUNNING",
            )
        return record

    def _new_log(self, kernels: KaggleKernels, record: RunRecord) -> list[LogEntry] | None:
        """Log lines not seen yet ([] when none), None when the log could not be read."""
        assert record.version is not None
        try:
            live = kernels.live_log(record.kernel, record.version, min(LIVE_LOG_S, self.cfg.poll))
        except SyncdError as exc:
            log.debug("%s: %s: live log unavailable: %s", self.project.name, record.id, exc)
            return None
        if len(live.entries) < record.log_entries:
            return None  # the replay was cut before it caught up: that says nothing
        return list(live.entries[record.log_entries :])

    def _emit_log(self, record: RunRecord, entries: list[LogEntry]) -> None:
        for entry in entries:
            self.events.add(record.id, "log", entry.data, entry.stream)

    def _end(
        self, record: RunRecord, state: str, failure: str | None, fetch: bool = True
    ) -> RunRecord:
        outputs = OUTPUTS_PENDING if fetch and record.version is not None else OUTPUTS_NONE
        record = self._set(
            record,
            state=state,
            failure=failure,
            finished_at=time.time(),
            outputs=outputs,
            # never seen RUNNING (it ran between two polls): the push time until the kernel
            # script's own start time comes home with its outputs
            started_at=record.started_at or record.created_at,
        )
        if outputs == OUTPUTS_NONE:
            self._tell(record)
        return record

    # --- outputs, notification, tidying --------------------------------------------------

    def _bring_home(self, kernels: KaggleKernels, record: RunRecord) -> RunRecord:
        got = fetch_outputs(kernels, record, self.store)
        self._emit_log(record, list(got.log[record.log_entries :]))
        summary = got.summary or {}
        changes: dict[str, Any] = {
            "outputs": OUTPUTS_FETCHED,
            "output_files": got.files,
            "output_bytes": got.bytes,
            "refused": got.refused,
            "log_entries": max(record.log_entries, len(got.log)),
        }
        if isinstance(summary.get("exit_code"), int):
            changes["exit_code"] = summary["exit_code"]
        gpu = summary.get("gpu")
        if isinstance(gpu, list) and gpu:
            changes["gpu"] = "; ".join(str(g) for g in gpu)
        if isinstance(summary.get("git_commit"), str):
            changes["git_commit"] = summary["git_commit"]
        changes.update(_script_times(summary))
        if record.state == ERROR and isinstance(summary.get("error"), str):
            changes["failure"] = summary["error"]  # the script's sentence, not "exit code 4"
        record = self._set(record, **changes)
        refused = f"; refused {len(got.refused)}: {'; '.join(got.refused)}" if got.refused else ""
        self.events.add(
            record.id,
            "outputs",
            f"{got.files} file(s), {got.bytes} bytes in {record.folder}{refused}",
        )
        self._tell(record)
        self._tidy(kernels)
        return record

    def _tell(self, record: RunRecord) -> None:
        if record.notified:
            return
        if self.cfg.notify:
            what = record.state.upper() if record.state in (COMPLETE, ERROR) else record.state
            body = record.failure or f"outputs in {record.folder}"
            self._notify(f"syncd: {self.project.name} {record.id} {what}", body)
        self.store.update(record.seq, notified=True)

    def _tidy(self, kernels: KaggleKernels) -> None:
        """Keep the kernels of the newest ``keep_kernels`` finished runs; delete the others'
        (their outputs and logs are home)."""
        for old in self.store.kernels_to_tidy(self.project.name, self.cfg.keep_kernels):
            try:
                kernels.delete(old.kernel)
            except SyncdError as exc:
                log.warning("%s: could not delete the kernel of %s: %s", old.project, old.id, exc)
                return
            self.store.update(old.seq, kernel_deleted=True)
            log.info(
                "%s: deleted %s (the kernel of %s; its outputs are home)",
                old.project,
                old.kernel,
                old.id,
            )


def _script_times(summary: dict[str, object]) -> dict[str, float]:
    """The run's start and end by the kernel script's own clock (``syncd-run.json``): more
    exact than what the polls saw (they may come minutes apart, or after a laptop's sleep)."""
    try:
        started = datetime.strptime(str(summary["started_at"]), "%Y-%m-%dT%H:%M:%SZ")
        duration = float(summary["duration_s"])  # type: ignore[arg-type]
    except (KeyError, ValueError, TypeError):
        return {}
    start = started.replace(tzinfo=UTC).timestamp()
    return {"started_at": start, "finished_at": start + duration}

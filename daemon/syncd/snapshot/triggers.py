"""When snapshots happen by themselves: cron and interval jobs and new git tags.

Owns one project's jobs on the daemon's APScheduler and the git tag poll; what
a trigger does is the service's (``fire``: one snapshot, or a share of the
running one).  A run missed while the machine slept runs once when it wakes.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from datetime import UTC
from pathlib import Path
from typing import Any

from ..config import SnapshotConfig
from . import gitinfo
from .manifest import iso
from .store import SnapshotStore

log = logging.getLogger("syncd.snapshots")

WAKE_JOB = "snapshot-wake"
WAKE_INTERVAL_S = 30  # the scheduler's own sleep does not count suspend time: see install

# fire(trigger, message, tag): a tag gets a version of its own, other triggers share one.
Fire = Callable[[str, str | None, bool], None]
Spawn = Callable[[Callable[[], None], str], None]


def tag_poll_seconds() -> float:
    try:
        return float(os.environ.get("SYNCD_GIT_TAG_POLL_S", 10.0))
    except ValueError:
        return 10.0


def _noop() -> None:
    """The wake job: its only effect is that the scheduler looks at its clock again."""


class SnapshotTriggers:
    """The scheduled jobs and the tag poll of one project with a ``snapshot:`` section."""

    def __init__(
        self,
        name: str,
        cfg: SnapshotConfig,
        folder: Path,
        store: SnapshotStore,
        *,
        fire: Fire,
        busy: Callable[[], bool],
        spawn: Spawn,
    ) -> None:
        self.name = name
        self.cfg = cfg
        self.folder = folder
        self.store = store
        self._fire = fire
        self._busy = busy  # a snapshot is running, or the service is closed
        self._spawn = spawn
        self._scheduler: Any = None
        self._timed_jobs: list[str] = []
        self._jobs: list[str] = []

    def install(self, scheduler: Any) -> None:
        """Cron and interval snapshots and the git tag poll, on the daemon's scheduler.

        A run missed while the machine slept runs once when it wakes: coalesce folds
        the missed runs into one, and no grace limit drops it for being late.  The
        scheduler sleeps on a monotonic clock that stops during suspend, so a small
        job every 30 s makes it look at the wall clock soon after waking.
        """
        from apscheduler.triggers.cron import CronTrigger
        from apscheduler.triggers.interval import IntervalTrigger

        self._scheduler = scheduler
        once = {"coalesce": True, "max_instances": 1, "replace_existing": True}
        late_ok = {**once, "misfire_grace_time": None}
        timed = []
        if self.cfg.schedule:
            timed.append(("schedule", CronTrigger.from_crontab(self.cfg.schedule)))
        if self.cfg.every:
            timed.append(("every", IntervalTrigger(seconds=self.cfg.every)))
        for kind, trigger in timed:
            job_id = f"snapshot:{self.name}:{kind}"
            scheduler.add_job(self.fire, trigger, args=["schedule"], id=job_id, **late_ok)
            self._timed_jobs.append(job_id)
            self._jobs.append(job_id)
        if timed:
            wake = IntervalTrigger(seconds=WAKE_INTERVAL_S)
            scheduler.add_job(_noop, wake, id=WAKE_JOB, **once)
        if self.cfg.on_git_tag:
            job_id = f"snapshot:{self.name}:git-tags"
            every = IntervalTrigger(seconds=tag_poll_seconds())
            scheduler.add_job(self.poll_tags, every, id=job_id, **once)
            self._jobs.append(job_id)
            self.poll_tags()  # remembers the tags that exist now, or catches up after downtime

    def fire(self, trigger: str, message: str | None = None, tag: bool = False) -> None:
        self._fire(trigger, message, tag)

    def next_at(self) -> str | None:
        """When the next scheduled snapshot runs (UTC ISO-8601), or None."""
        if self._scheduler is None:
            return None
        times = []
        for job_id in self._timed_jobs:
            job = self._scheduler.get_job(job_id)
            when = getattr(job, "next_run_time", None) if job is not None else None
            if when is not None:
                times.append(when.astimezone(UTC).timestamp())
        return iso(min(times)) if times else None

    def poll_tags(self) -> None:
        """Snapshot when a git tag appears (or moves); the first look only remembers the tags."""
        if self._busy():
            return  # a tag made during a snapshot is seen once it is over, and gets its own
        tags = gitinfo.list_tags(self.folder)
        if tags is None:
            return
        known = self.store.get("git_tags")
        if tags == known:
            return
        self.store.set("git_tags", tags)
        if known is None:
            return
        new = [name for name, target in tags.items() if known.get(name) != target]
        if not new:
            return
        details = gitinfo.tag_details(self.folder, new)
        tag = details[0] if details else gitinfo.GitTag(new[0], tags[new[0]], "")
        trigger = f"git tag {tag.name}" + (f" (+{len(new) - 1} more)" if len(new) > 1 else "")
        log.info("%s: new %s", self.name, trigger)
        self._spawn(lambda: self.fire(trigger, tag.message or None, True), "snapshot-tag")

    def remove(self) -> None:
        """Take this project's jobs off the scheduler (the shared wake job stays)."""
        if self._scheduler is None:
            return
        for job_id in self._jobs:
            try:
                self._scheduler.remove_job(job_id)
            except Exception:  # noqa: BLE001 - already gone, or the scheduler is shut down
                pass

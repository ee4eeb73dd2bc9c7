"""Following a project's runs until their outputs are home: the loop, its backoff, its locks.

The runs to follow come from the state db at every turn (``RunStore.needing_work``), so
a daemon restarted after a crash, a reboot or a laptop's sleep picks up where the last
one stopped: nothing about a run lives only in memory.

Each run has its own schedule: the first look ``train.poll`` after it was seen, then
1.5x longer after each look that found nothing new, up to ten times ``train.poll`` (at
most 5 min); anything new brings it back to ``train.poll``. A failed look (429, 5xx,
HTML pages, a lost connection, after the client's own retries) doubles the wait up to
the same cap, records the sentence on the run, and is tried again.

One process follows a run at a time: an ``flock`` per run (released by the kernel when a
process dies, ``kill -9`` included) keeps the daemon and an in-process
``syncd train --wait`` from fetching the same outputs twice.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

from ..config import ProjectConfig
from ..errors import AuthRequired, SyncdError
from ..remotes.kaggle.kernels import KaggleKernels
from .events import RunEvent, RunEvents
from .model import RunRecord
from .poll import Notify, RunPoller
from .store import RunStore

log = logging.getLogger("syncd.train")

MAX_POLL_S = 300.0
IDLE_S = 60.0  # how often an idle follower looks at the db (a new run also wakes it)


class RunLock:
    """An exclusive, non-blocking ``flock`` on ``<dir>/run-<seq>.lock``. A child forked by
    another thread while it is held keeps it until that child execs: a taker then finds it
    busy for a moment, and simply looks again at the run's next turn."""

    def __init__(self, folder: Path, seq: int) -> None:
        self.path = folder / f"run-{seq}.lock"
        self._file: IO[bytes] | None = None

    def acquire(self) -> bool:
        if self._file is not None:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        handle = open(self.path, "ab")  # noqa: SIM115 - held until release()
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            return False
        self._file = handle
        return True

    def release(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def discard(self) -> None:
        """Release, and remove the file: for a run nobody needs to follow any more (whoever
        takes a lock re-reads the run first, so a late taker of a new file does no harm)."""
        self.release()
        with contextlib.suppress(OSError):
            os.unlink(self.path)


class RunFollower:
    """Follows one project's runs, in a thread (``start``) or in the foreground."""

    def __init__(
        self,
        project: ProjectConfig,
        store: RunStore,
        kernels: Callable[[threading.Event], KaggleKernels],
        events: RunEvents,
        lock_dir: Path,
        notify: Notify,
    ) -> None:
        assert project.train is not None
        self.project = project
        self.poll_s = project.train.poll
        self.cap_s = max(self.poll_s, min(MAX_POLL_S, 10 * self.poll_s))
        self.store = store
        self.events = events
        self.poller = RunPoller(project, store, events, notify)
        self._new_kernels = kernels
        self._kernels: KaggleKernels | None = None
        self._lock_dir = lock_dir
        self._locks: dict[int, RunLock] = {}
        self._due: dict[int, tuple[float, float]] = {}  # seq → (when, current interval)
        self._said: dict[int, str] = {}  # the last failure logged per run (logged once)
        self._urgent: set[int] = set()  # runs to look at now (``wake``)
        self._closed = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    # --- the thread -------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._loop, name=f"train-{self.project.name}", daemon=True
        )
        self._thread.start()

    def wake(self, seq: int | None = None) -> None:
        """Look now (at run ``seq``, or at the db for new runs)."""
        if seq is not None:
            self._urgent = self._urgent | {seq}  # a new set: the loop takes it whole
        self._wake.set()

    def close(self, timeout: float = 5.0) -> None:
        self._closed.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        for lock in self._locks.values():
            lock.release()
        self._locks.clear()

    def _loop(self) -> None:
        while not self._closed.is_set():
            try:
                wait = self.turn()
            except Exception:  # a bug must not end following for good
                log.exception("%s: following runs failed", self.project.name)
                wait = self.cap_s
            self._wake.wait(wait)
            self._wake.clear()

    def turn(self) -> float:
        """Look at every run that is due; the seconds until the next one is."""
        runs = {r.seq for r in self.store.needing_work(self.project.name)}
        for seq in [s for s in self._due if s not in runs]:
            self._forget(seq)
        now = time.monotonic()
        urgent, self._urgent = self._urgent, set()
        for seq in urgent:
            self._due[seq] = (now, self.poll_s)
        for seq in sorted(runs):
            when, interval = self._due.setdefault(seq, (now, self.poll_s))
            if self._closed.is_set():
                break
            if when > time.monotonic():
                continue
            if not self._lock(seq).acquire():
                self._due[seq] = (time.monotonic() + self.poll_s, self.poll_s)
                continue  # another process follows it
            fresh = self.store.get(seq)  # it may have moved on while another process held it
            if fresh is None or not fresh.needs_work:
                continue
            interval = self._look(fresh, interval)
            self._due[seq] = (time.monotonic() + interval, interval)
        if not self._due:
            return IDLE_S
        return max(0.05, min(when for when, _ in self._due.values()) - time.monotonic())

    def _lock(self, seq: int) -> RunLock:
        return self._locks.setdefault(seq, RunLock(self._lock_dir, seq))

    def _forget(self, seq: int) -> None:
        self._due.pop(seq, None)
        self._said.pop(seq, None)
        lock = self._locks.pop(seq, None)
        if lock is not None:
            lock.discard()

    # --- one look ---------------------------------------------------------------------

    def _session(self) -> KaggleKernels:
        if self._kernels is None:
            self._kernels = self._new_kernels(self._closed)
        return self._kernels

    def _look(self, record: RunRecord, interval: float) -> float:
        """Poll one run; the interval until its next look."""
        try:
            changed = self.poller.poll(self._session(), record)
        except SyncdError as exc:
            if self._closed.is_set():
                return interval
            if isinstance(exc, AuthRequired):
                self._kernels = None  # new credentials are read at the next try
            text = str(exc)
            if self._said.get(record.seq) != text:
                log.warning("%s: %s: %s", self.project.name, record.id, text)
                self.events.add(record.id, "note", text)
                self._said[record.seq] = text
            self.store.update(record.seq, last_error=text)
            return min(self.cap_s, interval * 2)
        if record.last_error is not None or record.seq in self._said:
            self._said.pop(record.seq, None)
            self.store.update(record.seq, last_error=None)
        return self.poll_s if changed else min(self.cap_s, interval * 1.5)

    # --- the foreground, for `syncd train --wait` without a daemon ---------------------

    def follow_until_done(self, seq: int, on_event: Callable[[RunEvent], None]) -> RunRecord:
        """Follow run ``seq`` here until its outputs are home (or it ended without any);
        every event is handed to ``on_event`` as it happens."""
        cursor = 1
        lock = self._lock(seq)
        interval = self.poll_s
        last_state = ""
        try:
            while True:
                record = self.store.get(seq)
                assert record is not None
                if record.needs_work and lock.acquire():
                    record = self.store.get(seq) or record  # as it is now that it is ours
                    if record.needs_work:
                        interval = self._look(record, interval)
                        record = self.store.get(seq) or record
                elif record.needs_work:  # another process follows it: watch the db
                    interval = self.poll_s
                    if record.state != last_state:
                        self.events.add(record.id, "state", record.state)
                last_state = record.state
                found, cursor = self.events.after(record.id, cursor)
                for event in found:
                    on_event(event)
                if not record.needs_work:
                    return record
                if self._closed.wait(interval):
                    return record
        finally:
            lock.release()
            self._locks.pop(seq, None)

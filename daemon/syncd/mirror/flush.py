"""``syncd flush``: wait until every edit made before the call is on the target.

A flush takes a ticket; the runner answers it with a walk of the folder (so
edits whose events have not arrived, or still sit in the coalescer's quiet
window, are found), mirrors what the walk found and writes the manifest.  A
walk *covers* every ticket taken before it began; the flush returns once its
ticket is covered, or gives up at its timeout — at once when the project is
paused, since nothing moves then.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .manifest import ManifestWriter
from .model import ProjectState

if TYPE_CHECKING:
    from pathlib import Path

    from ..db.statedb import StateDB
    from ..remotes.base import Remote
    from .coalescer import Coalescer
    from .model import PauseKind
    from .tracker import StateTracker


@dataclass(frozen=True)
class FlushOutcome:
    """How one project's flush ended; ``done`` False says why in ``state``/``reason``."""

    done: bool
    seq: int | None  # the manifest covering the edits (when done), or the last one written
    at: float | None
    state: str
    reason: str | None
    # files the walk could not bring over (path → why): their edits are not on the target
    file_errors: dict[str, str] = field(default_factory=dict)
    paused_by: str | None = None  # the PauseKind's value when paused: whose word resumes it


class FlushTickets:
    """Tickets asked by flushes and the walks that cover them (thread-safe)."""

    def __init__(self, mark: Callable[[], int] = lambda: 0) -> None:
        self._cond = threading.Condition()
        self._asked = 0
        self._covered = 0
        self._mark = mark  # read as a walk begins (the manifest writes so far)
        self.begun_at_mark = 0

    def ask(self) -> int:
        with self._cond:
            self._asked += 1
            return self._asked

    @property
    def pending(self) -> bool:
        with self._cond:
            return self._asked > self._covered

    @property
    def covered_upto(self) -> int:
        with self._cond:
            return self._covered

    def begin(self) -> int:
        """Called as a walk starts: the tickets it will cover if it completes."""
        with self._cond:
            self.begun_at_mark = self._mark()
            return self._asked

    def covered(self, upto: int) -> None:
        with self._cond:
            if upto > self._covered:
                self._covered = upto
                self._cond.notify_all()

    def wait(self, ticket: int, timeout: float, give_up: Callable[[], bool]) -> bool:
        """True once ``ticket`` is covered; False at the timeout or as soon as ``give_up()``."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._covered < ticket:
                left = deadline - time.monotonic()
                if left <= 0 or give_up():
                    return False
                self._cond.wait(min(left, 0.1))
            return True


class FlushingRunner:
    """The runner's flush half (``MirrorRunner`` inherits it): asking, and answering tickets.

    The runner's loop answers a pending ticket with a light walk (``poll_scan``) and
    calls ``_covered`` after every walk that ended with everything mirrored.
    """

    flushes: FlushTickets
    manifest: ManifestWriter
    tracker: StateTracker
    coalescer: Coalescer
    _wake: threading.Event
    _pause: PauseKind | None
    _needs_scan: bool

    def _cancelled(self) -> bool:
        raise NotImplementedError

    def _beat(self) -> None:
        raise NotImplementedError

    def _init_flushing(self, name: str, root: Path, remote: Remote, db: StateDB) -> None:
        self.manifest = ManifestWriter(name, root, remote, db, beat=self._beat)  # each batch
        self.flushes = FlushTickets(lambda: self.manifest.writes)

    def flush(self, timeout: float) -> FlushOutcome:
        """Block until every edit made before this call is on the remote and in the manifest.

        Not done when a file could not be mirrored (unreadable, a name the target refuses):
        the tracker still holds its error after the walk, so its edit is not on the target.
        Gives up at once when the project is paused or in ``error`` (nothing moves then).
        """
        ticket = self.flushes.ask()
        self._wake.set()
        self.coalescer.wake()
        done = self.flushes.wait(ticket, timeout, give_up=self._stuck)
        rec = self.manifest.record
        t = self.tracker.snapshot()
        errors = t.file_errors if done else {}
        return FlushOutcome(
            done and not errors,
            rec.seq if rec else None,
            rec.at if rec else None,
            t.state.value,
            t.reason,
            errors,
            None if self._pause is None else self._pause.value,
        )

    def _stuck(self) -> bool:
        return self._pause is not None or self.tracker.state is ProjectState.ERROR

    def _covered(self, covers: int, write: bool = False) -> None:
        """A walk that began after these flushes ended with everything mirrored.

        ``write``: the walk mirrored nothing, so no batch wrote the manifest; make sure
        the one standing is current (a no-op when it is).  When flushes wait for this
        walk and it wrote no manifest, the one standing is checked on the target (one
        request): one deleted or trashed by hand is written anew, so what the flush
        answers really is there.  (A write in this walk already made sure: it is
        conditional on the version syncd knew, and makes a new file when that is gone.)
        """
        if self._cancelled() or self._needs_scan:
            return
        waiting = covers > self.flushes.covered_upto
        if write or waiting:
            wrote = self.manifest.writes != self.flushes.begun_at_mark
            self.manifest.write(check=waiting and not wrote)
        self.flushes.covered(covers)

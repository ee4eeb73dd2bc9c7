"""One project's mirror thread: the loop, pause/resume/stop, recovery and the heartbeat.

Every batch is reconciled against the disk and the index, never replayed from events: the
planner turns changed paths into a plan, the applier carries it out, and the tracker holds the
state that ``status`` shows. The runner only decides *when*: a full walk at start, after
recovery and on request; settled batches from the coalescer in between; a light walk every few
seconds where the folder cannot be watched (``poll_every``). After the remote failed as a whole
it waits (``retry.ENGINE_RECOVERY_REMOTE``) and starts again with a full walk — whatever
happened meanwhile, the walk finds it.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from ..db.statedb import StateDB
from ..errors import AuthRequired, RemoteError
from ..localfs.ignore import IgnoreRules
from ..remotes.base import Remote
from ..retry import ENGINE_RECOVERY_REMOTE, ENGINE_RECOVERY_UNEXPECTED
from .apply import Applier
from .coalescer import Coalescer, Pending
from .flush import FlushingRunner
from .model import MirrorStatus, PauseKind, ProjectState
from .overtaken import hold_overtaken
from .plan import Hold, Planner
from .tracker import TROUBLE, StateTracker

log = logging.getLogger("syncd.mirror")

ROOT_CHECK_S = 2.0  # how often the loop checks that the project folder is still the same one
POLL_MIN_S = 2.0  # polling (no inotify): a light walk at least this far apart...
POLL_WORK_SHARE = 0.1  # ...and at most this share of the time spent walking


class MirrorRunner(FlushingRunner):
    """Mirrors one project folder to one remote; ``run`` is the project's thread."""

    def __init__(
        self,
        name: str,
        root: Path,
        rules: IgnoreRules,
        remote: Remote,
        db: StateDB,
        coalescer: Coalescer,
        *,
        deletions: str = "trash",
        workers: int = 4,
        on_folder_back: Callable[[], None] | None = None,
        after: MirrorRunner | None = None,
    ) -> None:
        self.name = name
        self.root = root
        self.rules = rules
        self.remote = remote
        self.db = db
        self.coalescer = coalescer
        self.on_folder_back = on_folder_back
        self.on_root_replaced: Callable[[], None] | None = None
        self.heartbeat = time.monotonic()  # the loop's last sign of life: a stale one means hung
        self.finished = threading.Event()  # run() returned and its upload workers are done
        self.watch = "inotify"  # how changes are noticed (status); set by the daemon
        self.poll_every: float | None = None  # set when the folder cannot be watched
        self._after = after  # the previous runner of this project (a reload): it goes first
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._needs_scan = True
        self._confirm_deletes = False
        self._waiting = 0  # changes the last walk found that the remote has not taken yet
        self._next_poll = 0.0
        self._next_root_check = 0.0
        rec = db.project(name)
        self._pause = PauseKind(rec.paused) if rec.paused else None
        initial = ProjectState.PAUSED if self._pause else ProjectState.STARTING
        reason = rec.pause_reason if self._pause else None
        self.tracker = StateTracker(name, log, self._persist, initial, reason)
        self.planner = Planner(name, root, rules, db, self.tracker, self._beat)
        self.applier = Applier(
            name,
            root,
            remote,
            db,
            self.tracker,
            keep_deletions=deletions == "keep",
            workers=workers,
            cancelled=self._cancelled,
            beat=self._beat,
            requeue=coalescer.requeue,
        )
        self._init_flushing(name, root, remote, db)  # the manifest, flush tickets (mirror.flush)

    def _beat(self) -> None:
        self.heartbeat = time.monotonic()

    def _cancelled(self) -> bool:
        return self._stop.is_set() or self._pause is not None

    def _persist(self, state: ProjectState, error: str | None) -> None:
        try:
            self.db.set_state(self.name, state.value, error)
        except sqlite3.Error as exc:  # the state must change even if the db can't record it
            log.warning("%s: cannot record the state in the state db: %s", self.name, exc)

    @property
    def state(self) -> ProjectState:
        return self.tracker.state

    def status(self) -> MirrorStatus:
        files, size = self.db.count(self.name)
        rec = self.db.project(self.name)
        t = self.tracker.snapshot()
        return MirrorStatus(
            state=t.state,
            reason=t.reason,
            pending=len(self.coalescer) + self.applier.left + self._waiting,
            in_flight=self.applier.in_flight,
            files=files,
            bytes=size,
            last_sync=rec.last_sync,
            last_error=t.last_error,
            conflicts=self.db.conflict_count(self.name),
            file_errors=t.file_errors,
            watch=self.watch,
        )

    def wait_settled(self, timeout: float) -> bool:
        """Block until no local change is pending or being copied (a snapshot waits for this)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._pause is not None:
                return False  # nothing moves while paused; don't wait for it
            busy = (
                self._needs_scan
                or len(self.coalescer)
                or self.applier.left
                or self.applier.in_flight
                or self._waiting
            )
            if not busy and self.tracker.state is not ProjectState.SCANNING:
                return True
            time.sleep(0.05)
        return False

    def alive(self, max_silence: float) -> bool:
        """The loop turned recently, or copies are in flight (each bounded by its own timeout)."""
        return self.applier.in_flight > 0 or time.monotonic() - self.heartbeat < max_silence

    # --- control (called from other threads) ---------------------------------

    def pause(self, reason: str = "paused by the user", kind: PauseKind = PauseKind.USER) -> None:
        self._pause = kind
        if kind is not PauseKind.FOLDER:
            self.db.set_paused(self.name, kind.value, reason)
        self.tracker.set(ProjectState.PAUSED, reason)
        self._wake.set()

    def resume(self, confirm_deletes: bool = False) -> None:
        self._confirm_deletes = confirm_deletes
        self._pause = None
        self.db.set_paused(self.name, None)
        self._needs_scan = True
        self._wake.set()
        self.coalescer.wake()

    def request_scan(self) -> None:
        self._needs_scan = True
        self._wake.set()
        self.coalescer.wake()

    def poll(self, every: float, why: str) -> None:
        """Notice changes by light walks instead of events (the folder cannot be watched)."""
        self.poll_every = every
        self.watch = f"polling every {every:g} s or more: {why}"
        self.request_scan()

    def watched(self) -> None:
        """Events arrive again (a watch was set up): no more polling."""
        self.poll_every = None
        self.watch = "inotify"

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self.coalescer.wake()

    # --- the loop ------------------------------------------------------------

    def run(self) -> None:
        """Until ``stop()``: scan, then mirror settled batches; recover from remote trouble."""
        try:
            if self._after is not None and not self._wait_for_predecessor():
                return
            failures = 0
            if self._pause is not None:
                self.tracker.set(ProjectState.PAUSED, self.tracker.reason)
            while not self._stop.is_set():
                self._beat()
                self._check_root()
                if self._pause is not None:
                    self._wait_paused()
                    continue
                try:
                    self._turn()
                    failures = 0
                except RemoteError as exc:
                    failures += 1
                    self._remote_trouble(exc, failures)
                except Exception as exc:
                    # Anything else (a full disk under the state db, a bug) must not silently
                    # end this project's mirroring while status keeps answering.
                    failures += 1
                    log.exception("%s: unexpected error; retrying with a full scan", self.name)
                    self.tracker.unexpected(f"unexpected error: {exc}")
                    self._needs_scan = True
                    self._sleep(ENGINE_RECOVERY_UNEXPECTED.delay(failures))
        finally:
            self._finish()

    def _finish(self) -> None:
        """After the loop: let uploads (daemon threads) end, free the remote, tell a successor."""
        try:
            self.applier.idle()
            self.remote.close()
        finally:
            self.finished.set()

    def _wait_for_predecessor(self) -> bool:
        """A reload restarted this project: never two runners writing to one target."""
        assert self._after is not None
        if not self._after.finished.is_set():
            self.tracker.set(
                ProjectState.STARTING, "waiting for the previous run to finish its uploads"
            )
        while not self._after.finished.wait(0.5):
            self._beat()
            if self._stop.is_set():
                return False
        self._after = None
        return True

    def _sleep(self, seconds: float) -> None:
        self._wake.clear()
        self._wake.wait(seconds)

    def _turn(self) -> None:
        # A folder moved away sends no event (the watch follows it): the walk's guard pauses.
        if self._needs_scan or not self.root.is_dir():
            self.full_scan()
            return
        poll_due = self.poll_every is not None and time.monotonic() >= self._next_poll
        if self.flushes.pending or poll_due:
            self.poll_scan()
            return
        batch = self.coalescer.take_ready(timeout=0.5)
        if self._pause is not None or self._stop.is_set():
            self.coalescer.put_back(batch)  # paused while we waited
            return
        if batch.rescan:
            self._needs_scan = True
        if batch.dirty or batch.moves:
            self.tracker.set(ProjectState.SYNCING)
            self._mirror(set(batch.dirty), batch.moves, seen=batch.dirty)
        self._settle()

    def _settle(self) -> None:
        if self._pause is None and not self._needs_scan and not len(self.coalescer):
            self.tracker.set(ProjectState.IDLE)

    def _wait_paused(self) -> None:
        self._wake.wait(1.0)
        self._wake.clear()
        if self._pause is PauseKind.FOLDER and self.planner.folder_usable():
            log.info("%s: project folder is back; resuming", self.name)
            if self.on_folder_back is not None:
                self.on_folder_back()
            self.resume()

    def _remote_trouble(self, exc: RemoteError, failures: int) -> None:
        state = (
            ProjectState.AUTH_REQUIRED if isinstance(exc, AuthRequired) else ProjectState.OFFLINE
        )
        self.tracker.set(state, str(exc))
        self.tracker.remind(len(self.coalescer) + self._waiting)
        self._needs_scan = True  # whatever happened meanwhile, the walk finds it
        self._sleep(ENGINE_RECOVERY_REMOTE.delay(failures))

    def _check_root(self) -> None:
        """The project folder replaced in place: watch it again, and walk it."""
        now = time.monotonic()
        if now < self._next_root_check:
            return
        self._next_root_check = now + ROOT_CHECK_S
        if self.planner.root_replaced():
            log.info("%s: the project folder was replaced in place; watching it again", self.name)
            if self.on_root_replaced is not None:
                self.on_root_replaced()
            self._needs_scan = True

    def full_scan(self) -> None:
        """Walk the folder and the remote, and mirror every difference."""
        self._needs_scan = False
        covers = self.flushes.begin()
        recovering = self.tracker.state in TROUBLE
        if not recovering:
            self.tracker.set(ProjectState.SCANNING)
        if not self.root.is_dir() and self.db.count(self.name)[0] == 0:
            # Never mirrored and not there: a wrong path. Wait for it, in state `error`.
            self._pause = PauseKind.FOLDER
            self.tracker.set(
                ProjectState.ERROR,
                f"project folder {self.root} does not exist (fix `path` in the config)",
            )
            return
        if self._hold(self.planner.folder_hold()):
            return
        self.rules.reload()
        changes = self.planner.scan()  # before asking the remote: status counts what waits
        self._waiting = len(changes.dirty)
        tracked = self.db.count(self.name)[0]
        self.remote.check(create=tracked == 0)
        if recovering:
            self.tracker.set(ProjectState.SCANNING)
        self.applier.idle()  # a paused batch's last uploads must not race this scan
        self.applier.clean_leftovers()
        if tracked:
            lost = self.planner.lost_on_remote(e.path for e in self.remote.list_all())
            if lost:
                log.info(
                    "%s: %d files are missing on the remote; re-uploading", self.name, len(lost)
                )
                changes.dirty.update(lost)
        self.tracker.set(ProjectState.SYNCING)
        self._mirror(changes.dirty, [(s, d, False) for s, d in changes.moves])
        if self._pause is None:
            self.tracker.set(ProjectState.IDLE)
            self._covered(covers)

    def poll_scan(self) -> None:
        """A light walk (no remote listing) where events cannot be had, or for a flush."""
        covers = self.flushes.begin() if self.flushes.pending else 0
        started = time.monotonic()
        changes = self.planner.scan()
        took = time.monotonic() - started
        self._next_poll = time.monotonic() + max(
            self.poll_every or POLL_MIN_S, took / POLL_WORK_SHARE
        )
        if changes.dirty:
            self.tracker.set(ProjectState.SYNCING)
            self._mirror(changes.dirty, [(s, d, False) for s, d in changes.moves])
        self.coalescer.drop_seen_by(started)  # so status says idle once a flush is done
        if covers and self._pause is None:
            self._covered(covers, write=True)
        self._settle()

    def _hold(self, hold: Hold | None) -> bool:
        if hold is None:
            return False
        self.pause(hold.reason, hold.kind)
        return True

    def _mirror(
        self,
        dirty: set[str],
        moves: list[tuple[str, str, bool]],
        seen: Mapping[str, Pending] | None = None,
    ) -> None:
        """Moves first, then the plan of every path involved; one summary line at the end.

        ``seen``: the events' view of the batch, to tell what changed again meanwhile."""
        summary = self.applier.new_batch()
        try:
            dirty |= self.applier.moves(moves)
            plan = self.planner.plan(dirty)
            if seen:
                hold_overtaken(self.name, self.root, seen, moves, plan, self.coalescer)
            self._waiting = 0
            if self._hold(self.planner.hold(plan, self._confirm_deletes)):
                return
            self._confirm_deletes = False
            self.applier.start(plan.size)
            self.applier.deletes(plan.clears)  # what stands in the way goes first
            self.applier.uploads(plan.uploads)
            self.applier.deletes(plan.deletes)
            if not self._cancelled():
                self.manifest.write()  # after the batch's files, one request (mirror.manifest)
        except RemoteError:
            # Put everything back; the scan after recovery re-derives the rest.
            self.coalescer.requeue(sorted(dirty))
            raise
        finally:
            self.applier.finish()
            line = summary.line()
            if line:
                log.info("%s: %s", self.name, line)

"""File events → coalesced, settled change sets (no watchdog here: ``service.watcher`` feeds it).

Events only schedule work; they never carry it out.  Each path collects its
events in a ``Pending`` entry (see ``combine`` for the table).  The pending
paths become ready together once the *project* has been quiet for ``delay``
(the config's "quiet time after the last change"), so one burst of edits — a
save-all, a ``git checkout`` — is one batch and one summary line; a path that
never stops changing still goes once ``max_delay`` has passed since its first
event.  The engine re-checks every ready path against the disk and the index,
so a stale or extra event costs a little work but never a wrong result — while a path the coalescer
*forgot* would stay wrong on the target until the next full walk.  So no
event ever makes a touched path leave the set: "create then delete" stays
dirty (the path may have been on the target before the create), and a move
keeps its source dirty next to its destination.

The engine may find a path gone that its batch saw present: the folder moved
on while the batch was applied (see ``mirror.overtaken``).  ``carry_on`` then
keeps the file's index path dirty and, until the path's own event arrives,
holds it back (up to ``max_delay``) so that event's move starts where the
index has the file.
"""

from __future__ import annotations

import enum
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

log = logging.getLogger("syncd.watch")

# Past this many pending paths, tracking each one costs more than a walk.
OVERFLOW_PATHS = 4096


class Kind(enum.Enum):
    CREATED = "created"
    MODIFIED = "modified"
    DELETED = "deleted"


def combine(prev: Kind | None, new: Kind) -> Kind:
    """The combine table: what one pending path becomes when another event arrives.

    Never "nothing": an event for a path the coalescer had not seen (a temp file
    renamed over a mirrored one) may concern a file the target holds.
    """
    if prev is None:
        return new
    table = {
        (Kind.CREATED, Kind.CREATED): Kind.CREATED,
        (Kind.CREATED, Kind.MODIFIED): Kind.CREATED,
        (Kind.CREATED, Kind.DELETED): Kind.DELETED,  # the engine finds nothing to do, or a trash
        (Kind.MODIFIED, Kind.CREATED): Kind.MODIFIED,
        (Kind.MODIFIED, Kind.MODIFIED): Kind.MODIFIED,
        (Kind.MODIFIED, Kind.DELETED): Kind.DELETED,
        (Kind.DELETED, Kind.CREATED): Kind.MODIFIED,  # replaced: an update, not delete+create
        (Kind.DELETED, Kind.MODIFIED): Kind.MODIFIED,
        (Kind.DELETED, Kind.DELETED): Kind.DELETED,
    }
    return table[(prev, new)]


@dataclass
class Pending:
    kind: Kind
    first: float
    last: float
    is_dir: bool = False
    moved_from: str | None = None  # set when the path is the end of a move whose start is known


@dataclass
class Batch:
    """Settled changes handed to the engine: paths to reconcile and moves to try first."""

    dirty: dict[str, Pending] = field(default_factory=dict)
    moves: list[tuple[str, str, bool]] = field(default_factory=list)  # (src, dst, is_dir)
    rescan: bool = False

    def __bool__(self) -> bool:
        return bool(self.dirty or self.moves or self.rescan)


class Coalescer:
    """Thread-safe collection of pending paths with a quiet window and a cap."""

    def __init__(
        self, delay: float, max_delay: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.delay = delay
        self.max_delay = max_delay
        self._clock = clock
        self._pending: dict[str, Pending] = {}
        self._rescan = False
        self._last_event = float("-inf")  # the project's latest event: the quiet window's start
        self._awaiting: set[str] = set()  # found gone by the engine; their event is on its way
        self._cond = threading.Condition()
        self._woken = False  # wake() ends the current take_ready wait

    def __len__(self) -> int:
        with self._cond:
            return len(self._pending)

    def add(self, path: str, kind: Kind, *, is_dir: bool = False) -> None:
        now = self._clock()
        with self._cond:
            self._last_event = now
            self._heard(path)
            old = self._pending.get(path)
            new_kind = combine(old.kind if old else None, kind)
            if old is None:
                self._pending[path] = Pending(new_kind, now, now, is_dir)
            else:
                old.kind, old.last, old.is_dir = new_kind, now, is_dir
                if new_kind is Kind.DELETED:
                    old.moved_from = None
            self._check_overflow()
            self._cond.notify_all()

    def move(self, src: str, dst: str, *, is_dir: bool) -> None:
        """A rename: the destination inherits the source's pending state (and its origin,
        so a chain of renames is one move); the source itself stays dirty as deleted."""
        now = self._clock()
        with self._cond:
            self._last_event = now
            self._heard(src)
            self._heard(dst)
            old = self._pending.get(src)
            if old is not None and old.kind is Kind.CREATED:
                # Made within this window: a plain create at the destination (the source's
                # own entry still makes the engine look at the source).
                entry = Pending(Kind.CREATED, old.first, now, is_dir)
            else:
                origin = old.moved_from if old and old.moved_from else src
                entry = Pending(Kind.MODIFIED, old.first if old else now, now, is_dir, origin)
            prev_dst = self._pending.get(dst)
            if prev_dst is not None:
                entry.first = min(entry.first, prev_dst.first)
            if is_dir:
                self._rebase_children(src, dst)
            first = old.first if old else now
            self._pending[src] = Pending(Kind.DELETED, first, now, is_dir)
            self._pending[dst] = entry
            self._check_overflow()
            self._cond.notify_all()

    def _rebase_children(self, src: str, dst: str) -> None:
        old_prefix, new_prefix = src + "/", dst + "/"
        for path in [p for p in self._pending if p.startswith(old_prefix)]:
            entry = self._pending.pop(path)
            if entry.moved_from and entry.moved_from.startswith(old_prefix):
                entry.moved_from = None  # the folder move carries it
            self._pending[new_prefix + path[len(old_prefix) :]] = entry

    def carry_on(self, origin: str, path: str, *, is_dir: bool) -> None:
        """``path``, seen present by the batch just applied, is gone: it moved on meanwhile.

        The index still has its file at ``origin`` (``path`` itself, or the source of the
        batch's move that could not be made).  ``origin`` stays dirty, and a move of
        ``path`` — already here or still on its way — starts at ``origin``.  Until its
        event arrives (or ``max_delay`` passes), ``path`` and every deletion wait: the
        next batch must not trash what the event will show was moved.
        """
        now = self._clock()
        with self._cond:
            if origin != path:  # the event came first: its move started at ``path``
                for entry in self._pending.values():
                    if entry.moved_from == path:
                        entry.moved_from = origin
                    elif is_dir and entry.moved_from and entry.moved_from.startswith(path + "/"):
                        entry.moved_from = origin + entry.moved_from[len(path) :]
                self._pending.setdefault(origin, Pending(Kind.DELETED, now, now, is_dir))
            parts = path.split("/")
            heard = any("/".join(parts[:i]) in self._pending for i in range(1, len(parts) + 1))
            if not heard:
                moved_from = origin if origin != path else None
                self._pending[path] = Pending(Kind.DELETED, now, now, is_dir, moved_from)
                self._awaiting.add(path)
            self._cond.notify_all()

    def _heard(self, path: str) -> None:
        """An event for ``path``: it (and whatever below it waited) is no longer awaited."""
        if self._awaiting:
            below = path + "/"
            self._awaiting = {a for a in self._awaiting if a != path and not a.startswith(below)}

    def request_rescan(self) -> None:
        with self._cond:
            self._rescan = True
            self._cond.notify_all()

    def wake(self) -> None:
        """End a ``take_ready`` wait now (a flush, a resume or a stop is waiting on the runner)."""
        with self._cond:
            self._woken = True
            self._cond.notify_all()

    def _check_overflow(self) -> None:
        if len(self._pending) > OVERFLOW_PATHS:
            log.info("more than %d pending paths: falling back to a full scan", OVERFLOW_PATHS)
            self._pending.clear()
            self._awaiting.clear()
            self._rescan = True

    def _is_ready(self, path: str, p: Pending, now: float) -> bool:
        if path in self._awaiting:  # its event is late: don't decide without it before the cap
            return now - p.first >= self.max_delay
        return now - self._last_event >= self.delay or now - p.first >= self.max_delay

    def _ready_at(self, path: str, p: Pending) -> float:
        """When ``_is_ready`` turns true for this entry, if nothing else happens."""
        cap = p.first + self.max_delay
        return cap if path in self._awaiting else min(self._last_event + self.delay, cap)

    def _next_due(self, now: float) -> float | None:
        if not self._pending:
            return None
        due, deletions = float("inf"), float("-inf")
        for path, p in self._pending.items():
            if p.kind is Kind.DELETED:  # they leave together, with the last of them
                deletions = max(deletions, self._ready_at(path, p))
            else:
                due = min(due, self._ready_at(path, p))
        return min(due, deletions) if deletions > float("-inf") else due

    def take_ready(self, timeout: float) -> Batch:
        """Wait up to ``timeout`` seconds until something is ready, and take it."""
        deadline = self._clock() + timeout
        with self._cond:
            while True:
                now = self._clock()
                batch = self._take(now)
                if batch or now >= deadline or self._woken:
                    self._woken = False
                    return batch
                due = self._next_due(now)
                until = deadline if due is None else min(due, deadline)
                self._cond.wait(max(0.0, until - now))

    def _take(self, now: float) -> Batch:
        batch = Batch(rescan=self._rescan)
        self._rescan = False
        # Deletions leave together, once the last of them has settled: a storm (rm -r,
        # an unmount) then reaches the mass-deletion guard whole, not slice by slice.
        deletions_ready = all(
            self._is_ready(path, p, now)
            for path, p in self._pending.items()
            if p.kind is Kind.DELETED
        )
        for path, p in list(self._pending.items()):
            if p.kind is Kind.DELETED and not deletions_ready:
                continue
            if self._is_ready(path, p, now):
                self._awaiting.discard(path)
                batch.dirty[path] = self._pending.pop(path)
                if p.moved_from and p.moved_from != path:
                    batch.moves.append((p.moved_from, path, p.is_dir))
        return batch

    def drop_seen_by(self, started: float) -> None:
        """A walk that started after these paths' last events (a flush's) saw and mirrored
        their final state: the quiet window has nothing left to do for them."""
        with self._cond:
            for path in [p for p, e in self._pending.items() if e.last < started]:
                del self._pending[path]

    def put_back(self, batch: Batch) -> None:
        """Return a taken batch untouched (the project was paused meanwhile)."""
        with self._cond:
            for path, entry in batch.dirty.items():
                self._pending.setdefault(path, entry)
            self._rescan = self._rescan or batch.rescan

    def requeue(self, paths: list[str]) -> None:
        """Paths whose work failed or saw the file change: try again after the quiet window."""
        for path in paths:
            self.add(path, Kind.MODIFIED)

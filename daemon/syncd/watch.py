"""Watchdog events → coalesced, settled change sets.

Events only schedule work; they never carry it out.  Each path collects its
events in a ``Pending`` entry (see ``combine`` for the table), and becomes
ready once it has been quiet for ``delay`` — or, if it never stops changing,
once ``max_delay`` has passed since its first event.  The engine re-checks
every ready path against the disk and the index, so a stale or missing event
can cost a little work but never a wrong result.
"""

from __future__ import annotations

import enum
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from watchdog.events import (
    DirCreatedEvent,
    DirDeletedEvent,
    DirModifiedEvent,
    DirMovedEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver, ObservedWatch

from .ignore import IgnoreRules

log = logging.getLogger("syncd.watch")

# Without this mask, watchdog's inotify observer also subscribes to "opened" and
# "closed without writing": its own walks (and ours, and git's) then flood the
# kernel queue on big trees, the overflow triggers a rescan that floods it
# again, and no edit is ever delivered.  The Created events must stay in, or new
# subfolders are not watched (watchdog #990).
EVENT_FILTER = [
    FileModifiedEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileMovedEvent,
    DirCreatedEvent,
    DirDeletedEvent,
    DirMovedEvent,
    DirModifiedEvent,
]

# Past this many pending paths, tracking each one costs more than a walk.
OVERFLOW_PATHS = 4096


class Kind(enum.Enum):
    CREATED = "created"
    MODIFIED = "modified"
    DELETED = "deleted"


def combine(prev: Kind | None, new: Kind) -> Kind | None:
    """The combine table: what one pending path becomes when another event arrives.

    ``None`` means nothing is left to do for the path.
    """
    if prev is None:
        return new
    table = {
        (Kind.CREATED, Kind.CREATED): Kind.CREATED,
        (Kind.CREATED, Kind.MODIFIED): Kind.CREATED,
        (Kind.CREATED, Kind.DELETED): None,  # never reached the remote
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
        self._cond = threading.Condition()

    def __len__(self) -> int:
        with self._cond:
            return len(self._pending)

    def add(self, path: str, kind: Kind, *, is_dir: bool = False) -> None:
        now = self._clock()
        with self._cond:
            old = self._pending.get(path)
            new_kind = combine(old.kind if old else None, kind)
            if new_kind is None:
                del self._pending[path]
            elif old is None:
                self._pending[path] = Pending(new_kind, now, now, is_dir)
            else:
                old.kind, old.last, old.is_dir = new_kind, now, is_dir
                if new_kind is Kind.DELETED:
                    old.moved_from = None
            self._check_overflow()
            self._cond.notify_all()

    def move(self, src: str, dst: str, *, is_dir: bool) -> None:
        """A rename: the destination inherits the source's pending state."""
        now = self._clock()
        with self._cond:
            old = self._pending.pop(src, None)
            if old is not None and old.kind is Kind.CREATED:
                # The source never reached the remote: the destination is simply new.
                entry = Pending(Kind.CREATED, old.first, now, is_dir)
            else:
                origin = old.moved_from if old and old.moved_from else src
                entry = Pending(Kind.MODIFIED, old.first if old else now, now, is_dir, origin)
            prev_dst = self._pending.get(dst)
            if prev_dst is not None:
                entry.first = min(entry.first, prev_dst.first)
            self._pending[dst] = entry
            if is_dir:
                self._rebase_children(src, dst)
            self._check_overflow()
            self._cond.notify_all()

    def _rebase_children(self, src: str, dst: str) -> None:
        old_prefix, new_prefix = src + "/", dst + "/"
        for path in [p for p in self._pending if p.startswith(old_prefix)]:
            entry = self._pending.pop(path)
            if entry.moved_from and entry.moved_from.startswith(old_prefix):
                entry.moved_from = None  # the folder move carries it
            self._pending[new_prefix + path[len(old_prefix) :]] = entry

    def request_rescan(self) -> None:
        with self._cond:
            self._rescan = True
            self._cond.notify_all()

    def wake(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def _check_overflow(self) -> None:
        if len(self._pending) > OVERFLOW_PATHS:
            log.info("more than %d pending paths: falling back to a full scan", OVERFLOW_PATHS)
            self._pending.clear()
            self._rescan = True

    def _is_ready(self, p: Pending, now: float) -> bool:
        return now - p.last >= self.delay or now - p.first >= self.max_delay

    def _next_due(self, now: float) -> float | None:
        if not self._pending:
            return None
        return min(
            min(p.last + self.delay, p.first + self.max_delay) for p in self._pending.values()
        )

    def take_ready(self, timeout: float) -> Batch:
        """Wait up to ``timeout`` seconds until something is ready, and take it."""
        deadline = self._clock() + timeout
        with self._cond:
            while True:
                now = self._clock()
                batch = self._take(now)
                if batch or now >= deadline:
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
            self._is_ready(p, now) for p in self._pending.values() if p.kind is Kind.DELETED
        )
        for path, p in list(self._pending.items()):
            if p.kind is Kind.DELETED and not deletions_ready:
                continue
            if self._is_ready(p, now):
                batch.dirty[path] = self._pending.pop(path)
                if p.moved_from and p.moved_from != path:
                    batch.moves.append((p.moved_from, path, p.is_dir))
        return batch

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


class _Handler(FileSystemEventHandler):
    def __init__(
        self,
        root: Path,
        rules: IgnoreRules,
        sink: Coalescer,
        on_rules_changed: Callable[[], None],
        on_root_gone: Callable[[], None],
    ) -> None:
        self.root = str(root)
        self.rules = rules
        self.sink = sink
        self.on_rules_changed = on_rules_changed
        self.on_root_gone = on_root_gone

    def _rel(self, path: str | bytes) -> str | None:
        path = path.decode() if isinstance(path, bytes) else path
        if path == self.root:
            return ""
        if not path.startswith(self.root + "/"):
            return None
        return path[len(self.root) + 1 :]

    def on_any_event(self, event: FileSystemEvent) -> None:
        if isinstance(event, DirModifiedEvent):
            return
        rel = self._rel(event.src_path)
        if rel is None:
            return
        if rel == "":
            if isinstance(event, DirDeletedEvent | DirMovedEvent):
                self.on_root_gone()
            return
        if IgnoreRules.is_rules_file(rel):
            self.on_rules_changed()
        is_dir = event.is_directory
        if isinstance(event, FileMovedEvent | DirMovedEvent):
            dst = self._rel(event.dest_path)
            src_ignored = self.rules.is_ignored(rel, is_dir)
            dst_ignored = dst is None or self.rules.is_ignored(dst, is_dir)
            if dst is not None and IgnoreRules.is_rules_file(dst):
                self.on_rules_changed()
            if not src_ignored and not dst_ignored:
                self.sink.move(rel, dst, is_dir=is_dir)
            elif not src_ignored:
                self.sink.add(rel, Kind.DELETED, is_dir=is_dir)
            elif not dst_ignored:
                self.sink.add(dst, Kind.CREATED, is_dir=is_dir)
            return
        if self.rules.is_ignored(rel, is_dir):
            return
        if isinstance(event, FileCreatedEvent | DirCreatedEvent):
            self.sink.add(rel, Kind.CREATED, is_dir=is_dir)
        elif isinstance(event, FileDeletedEvent | DirDeletedEvent):
            self.sink.add(rel, Kind.DELETED, is_dir=is_dir)
        elif isinstance(event, FileModifiedEvent | FileClosedEvent):
            self.sink.add(rel, Kind.MODIFIED)


class _OverflowSignal(logging.Filter):
    """watchdog reports a kernel queue overflow only in a log line; turn it into rescans.

    Removing the watches of a big tree (unwatch on reload, shutdown) queues one
    event per folder and overflows the queue by itself.  The rescans still run
    then (another project's real events may have been lost meanwhile), but the
    "events were lost" warning would only alarm the user, so it is dropped.
    """

    def __init__(self) -> None:
        super().__init__()
        self.listeners: list[Callable[[], None]] = []
        self.quiet_until = 0.0

    def filter(self, record: logging.LogRecord) -> bool:
        if "overflow" not in record.getMessage():
            return True
        for listener in list(self.listeners):
            listener()
        return time.monotonic() >= self.quiet_until

    def expect_overflow(self, seconds: float = 5.0) -> None:
        self.quiet_until = time.monotonic() + seconds


_overflow = _OverflowSignal()
for _name in ("watchdog.observers.inotify", "watchdog.observers.inotify_c"):
    logging.getLogger(_name).addFilter(_overflow)


class Watcher:
    """One watchdog observer shared by all projects of a daemon."""

    def __init__(self) -> None:
        self._observer: BaseObserver = Observer()
        self._observer.daemon = True
        self._observer.start()

    def watch(
        self,
        root: Path,
        rules: IgnoreRules,
        sink: Coalescer,
        on_rules_changed: Callable[[], None],
        on_root_gone: Callable[[], None],
    ) -> ObservedWatch:
        handler = _Handler(root, rules, sink, on_rules_changed, on_root_gone)
        _overflow.listeners.append(sink.request_rescan)
        watch = self._observer.schedule(
            handler, str(root), recursive=True, event_filter=EVENT_FILTER
        )
        watch.syncd_sink = sink  # type: ignore[attr-defined]
        return watch

    def unwatch(self, watch: ObservedWatch) -> None:
        sink = getattr(watch, "syncd_sink", None)
        if sink is not None and sink.request_rescan in _overflow.listeners:
            _overflow.listeners.remove(sink.request_rescan)
        _overflow.expect_overflow()
        try:
            self._observer.unschedule(watch)
        except (KeyError, OSError):
            pass  # the folder is already gone

    def stop(self) -> None:
        _overflow.listeners.clear()
        _overflow.expect_overflow()
        self._observer.stop()
        self._observer.join(timeout=5)

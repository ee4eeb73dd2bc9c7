"""The watchdog half of watching: one observer per daemon, events → each project's coalescer.

Owns watchdog: the event mask, the handler that turns events into
``mirror.coalescer`` calls (relative paths, ignore rules, moves, the project
root vanishing, rules files changing) and the kernel-queue overflow signal that
turns into rescans.  Nothing else in syncd imports watchdog.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
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

from ..localfs.ignore import IgnoreRules
from ..mirror.coalescer import Coalescer, Kind

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

    def _moved(self, rel: str, dst: str | None, is_dir: bool) -> None:
        """A rename inside the project is a move; into or out of what is ignored, half of one."""
        src_ignored = self.rules.is_ignored(rel, is_dir)
        dst_kept = dst is not None and not self.rules.is_ignored(dst, is_dir)
        if dst is not None and IgnoreRules.is_rules_file(dst):
            self.on_rules_changed()  # after both verdicts: it reloads the rules
        if dst is not None and dst_kept:
            if src_ignored:
                self.sink.add(dst, Kind.CREATED, is_dir=is_dir)
            else:
                self.sink.move(rel, dst, is_dir=is_dir)
        elif not src_ignored:
            self.sink.add(rel, Kind.DELETED, is_dir=is_dir)

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
            self._moved(rel, self._rel(event.dest_path), is_dir)
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


Watch = ObservedWatch  # what ``Watcher.watch`` returns and ``unwatch`` takes back


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

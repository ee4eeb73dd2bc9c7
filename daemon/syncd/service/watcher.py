"""The watchdog half of watching: one observer per daemon, events → each project's coalescer.

Owns watchdog: the event mask, the handler that turns events into
``mirror.coalescer`` calls (relative paths, ignore rules, moves, the project
root vanishing, rules files changing) and the kernel-queue overflow signal that
turns into rescans.  Nothing else in syncd imports watchdog.

When inotify cannot be had — no instance left (``fs.inotify.max_user_instances``)
or too few watches for the tree (``fs.inotify.max_user_watches``) — ``watch``
raises ``WatchUnavailable`` with the sentence to show and the sysctl line that
fixes it; the daemon then has the project polled by light walks instead.
``SYNCD_TEST_INOTIFY_FAIL=1`` makes inotify "fail" at start, for tests and for
trying the fallback on a machine where the limits are fine.
"""

from __future__ import annotations

import errno
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

from watchdog.events import (
    DirAttribEvent,
    DirCreatedEvent,
    DirDeletedEvent,
    DirModifiedEvent,
    DirMovedEvent,
    FileAttribEvent,
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
# subfolders are not watched (watchdog #990).  The Attrib events carry chmod: a file
# made readable again changes nothing else, and must be looked at again.
EVENT_FILTER = [
    FileAttribEvent,
    DirAttribEvent,
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
        elif isinstance(event, FileModifiedEvent | FileClosedEvent | FileAttribEvent):
            self.sink.add(rel, Kind.MODIFIED)
        elif isinstance(event, DirAttribEvent):  # permissions of a folder: walk it again
            self.sink.add(rel, Kind.MODIFIED, is_dir=True)


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

FAIL_SWITCH = "SYNCD_TEST_INOTIFY_FAIL"  # "1": behave as if inotify could not start
WATCHES_SYSCTL = "sudo sysctl fs.inotify.max_user_watches=524288"
INSTANCES_SYSCTL = "sudo sysctl fs.inotify.max_user_instances=1024"


class WatchUnavailable(Exception):
    """A folder cannot be watched with inotify; ``str()`` says why and how to fix it."""


class PartialWatch(WatchUnavailable):
    """Watched, but not every subfolder (the watch limit ran out part way): ``watch`` is
    kept for the folders it covers, and the project is polled for the rest."""

    def __init__(self, message: str, watch: ObservedWatch) -> None:
        super().__init__(message)
        self.watch = watch


def describe_inotify_failure(exc: OSError) -> str:
    """One sentence for an inotify failure, with the sysctl line that fixes it."""
    text = str(exc)
    if exc.errno == errno.ENOSPC or "watch limit" in text:
        return f"inotify watch limit reached (raise it: {WATCHES_SYSCTL})"
    if exc.errno == errno.EMFILE or "instance limit" in text:
        return f"inotify cannot start: no instance left (raise it: {INSTANCES_SYSCTL})"
    return f"inotify cannot watch it: {exc.strerror or text}"


def inotify_problem() -> str | None:
    """Why inotify cannot start in this process (the test switch included), or None.

    For ``syncd doctor``: it opens one inotify instance and closes it again.
    """
    try:
        observer = _make_observer()
    except OSError as exc:
        return describe_inotify_failure(exc)
    observer.stop()
    return None


def _make_observer() -> BaseObserver:
    if os.environ.get(FAIL_SWITCH) == "1":
        raise OSError(errno.EMFILE, f"inotify instance limit reached ({FAIL_SWITCH}=1)")
    return Observer()


class _ThreadDeaths:
    """An uncaught exception in one of watchdog's threads, turned into a signal.

    Each observer reads inotify in one thread of its own (watchdog 7's
    ``InotifyFD``).  watchdog 7.1 can raise in it when watched folders are
    removed and renamed fast, as a git branch switch does (``KeyError`` in
    ``InotifyWatchGroup._remove_watch_internally``: the path was already
    re-keyed; gorakhargosh/watchdog#600 and #701 are earlier forms of this
    race).  The thread then ends and no event ever arrives again, while every
    project says idle: the chaos run (issue #8) saw 160-177 paths silently
    wrong until a `syncd sync`.  The owner of the dying thread's observer is
    told, so that it can start a new observer and rescan.
    """

    def __init__(self) -> None:
        self.watchers: list[Watcher] = []
        self._previous = threading.excepthook
        self._lock = threading.Lock()

    def hook(self, args: threading.ExceptHookArgs) -> None:
        with self._lock:
            owners = [w for w in self.watchers if args.thread in w.threads()]
        if not owners:
            self._previous(args)
            return
        why = f"the file watcher stopped ({args.exc_type.__name__}: {args.exc_value} in watchdog)"
        # The traceback only with --debug (the brief: no traceback without it).
        logging.getLogger("syncd.daemon").debug(
            "watchdog thread %s died", args.thread, exc_info=args.exc_value
        )
        for watcher in owners:
            watcher.died(why)


_deaths = _ThreadDeaths()
threading.excepthook = _deaths.hook


class Watcher:
    """One watchdog observer shared by all projects of a daemon (none if inotify failed).

    ``on_dead(why)``: called (from the dying thread) if watchdog's threads stop on an
    error of their own; this watcher delivers nothing any more, and ``watch`` refuses.
    """

    def __init__(self, on_dead: Callable[[str], None] | None = None) -> None:
        self.problem: str | None = None  # why nothing can be watched, or None
        self.on_dead = on_dead
        self._observer: BaseObserver | None = None
        try:
            observer = _make_observer()
            observer.daemon = True
            observer.start()
        except OSError as exc:
            self.problem = describe_inotify_failure(exc)
            logging.getLogger("syncd.daemon").warning(
                "%s; every project is polled instead", self.problem
            )
            return
        self._observer = observer
        with _deaths._lock:
            _deaths.watchers.append(self)

    def threads(self) -> list[threading.Thread]:
        """The observer's threads: its dispatcher, its inotify reader, one emitter per watch."""
        if self._observer is None:
            return []
        emitters = list(getattr(self._observer, "emitters", []))
        reader = getattr(self._observer, "_inotify_fd", None)
        return [self._observer, *emitters, *([reader] if reader is not None else [])]

    def died(self, why: str) -> None:
        if self.problem is not None:
            return  # told once
        self.problem = why
        logging.getLogger("syncd.daemon").warning("%s; starting it again and rescanning", why)
        if self.on_dead is not None:
            self.on_dead(why)

    def watch(
        self,
        root: Path,
        rules: IgnoreRules,
        sink: Coalescer,
        on_rules_changed: Callable[[], None],
        on_root_gone: Callable[[], None],
    ) -> ObservedWatch:
        """Watch ``root`` recursively; ``WatchUnavailable`` if inotify cannot (see module)."""
        if self._observer is None or self.problem is not None:
            raise WatchUnavailable(self.problem or "inotify is not available")
        handler = _Handler(root, rules, sink, on_rules_changed, on_root_gone)
        try:
            watch = self._observer.schedule(
                handler, str(root), recursive=True, event_filter=EVENT_FILTER
            )
        except OSError as exc:
            raise WatchUnavailable(describe_inotify_failure(exc)) from exc
        _overflow.listeners.append(sink.request_rescan)
        watch.syncd_sink = sink  # type: ignore[attr-defined]
        missing = self.unwatched(watch, root)
        if missing:
            raise PartialWatch(
                f"{missing} folders could not be watched: "
                f"inotify watch limit reached (raise it: {WATCHES_SYSCTL})",
                watch,
            )
        return watch

    def unwatched(self, watch: ObservedWatch, root: Path) -> int:
        """How many folders below ``root`` the watch does not cover (0 if unknown).

        watchdog ignores a failed watch on a subfolder (only the root's failure is
        raised), so the limit running out part way is found by counting: the
        folders present against the watches its inotify group holds.
        """
        emitter = getattr(self._observer, "_emitter_for_watch", {}).get(watch)
        held = getattr(getattr(emitter, "_inotify", None), "_active_callbacks_by_path", None)
        if not isinstance(held, dict):
            return 0  # another watchdog: nothing to count with
        for attempt in range(2):
            present = {os.fsencode(d) for d, _, _ in os.walk(root)}
            missing = len(present - set(held))
            if not missing or attempt:
                return missing
            time.sleep(0.5)  # folders made during the count get their watch meanwhile
        return 0

    def unwatch(self, watch: ObservedWatch) -> None:
        sink = getattr(watch, "syncd_sink", None)
        if sink is not None and sink.request_rescan in _overflow.listeners:
            _overflow.listeners.remove(sink.request_rescan)
        _overflow.expect_overflow()
        if self._observer is None:
            return
        try:
            self._observer.unschedule(watch)
        except (KeyError, OSError):
            pass  # the folder is already gone

    def stop(self) -> None:
        with _deaths._lock:
            if self in _deaths.watchers:
                _deaths.watchers.remove(self)
        _overflow.listeners.clear()
        _overflow.expect_overflow()
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=5)

"""The file watcher's thread dying is never silent (issue #8, "nothing silently different").

watchdog 7.1 reads inotify in one thread per observer; its own ``KeyError`` in
``InotifyWatchGroup._remove_watch_internally`` (a watched folder removed after
its path was re-keyed, as fast folder renames and removals by a git branch switch
do) ends that thread, and no event ever arrives again while syncd says idle.  The
chaos run with seed 4242 showed it as 160-177 paths wrong after a quiet round,
with this traceback in the daemon's log.  Here the real watchdog thread dies on
the real code path: the race's outcome (the path already gone from the group's
book-keeping) is set up directly, then the folder is removed.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from syncd.localfs.ignore import IgnoreRules
from syncd.mirror.coalescer import Coalescer
from syncd.service.watcher import Watcher, WatchUnavailable


def wait_for(cond: Callable[[], object], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.02)
    return False


def watched_paths(watcher: Watcher, watch: object) -> dict[bytes, object]:
    """The folders the watch's inotify group holds (watchdog 7 internals, as ``unwatched``)."""
    emitter = watcher._observer._emitter_for_watch[watch]  # type: ignore[union-attr]
    return emitter._inotify._active_callbacks_by_path  # type: ignore[no-any-return]


def test_a_dead_watchdog_thread_is_reported_and_a_new_watcher_delivers_again(
    tmp_path: Path,
) -> None:
    root = tmp_path / "p"
    (root / "d").mkdir(parents=True)
    rules = IgnoreRules(root)
    sink = Coalescer(0.0, 1.0)
    deaths: list[str] = []
    watcher = Watcher(on_dead=deaths.append)
    try:
        watch = watcher.watch(root, rules, sink, lambda: None, lambda: None)
        held = watched_paths(watcher, watch)
        d = os.fsencode(str(root / "d"))
        assert wait_for(lambda: d in held), "watchdog never watched the subfolder"
        del held[d]  # what the rename race leaves: the path re-keyed before IN_IGNORED
        (root / "d").rmdir()
        assert wait_for(lambda: deaths), "the watchdog thread died and nobody was told"
        assert "the file watcher stopped" in deaths[0] and "KeyError" in deaths[0]
        # Dead for good: a new edit is not delivered, and this watcher refuses new watches.
        (root / "lost.txt").write_text("x")
        time.sleep(0.5)
        assert len(sink) == 0 or "lost.txt" not in sink.take_ready(0.1).dirty
        with pytest.raises(WatchUnavailable, match="the file watcher stopped"):
            watcher.watch(root, rules, sink, lambda: None, lambda: None)
    finally:
        watcher.stop()
    # A new observer has an inotify thread of its own: events arrive again.
    again = Watcher()
    try:
        again.watch(root, rules, sink, lambda: None, lambda: None)
        (root / "new.txt").write_text("y")
        got: set[str] = set()
        assert wait_for(lambda: got.update(sink.take_ready(0.05).dirty) or "new.txt" in got)
    finally:
        again.stop()

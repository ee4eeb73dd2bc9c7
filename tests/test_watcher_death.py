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
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from syncd.config import load_config
from syncd.db.statedb import StateDB, state_db_path
from syncd.localfs.ignore import IgnoreRules
from syncd.mirror.coalescer import Coalescer
from syncd.service.daemon import Daemon
from syncd.service.hosts import claim_instance
from syncd.service.watcher import Watcher, WatchUnavailable
from tests.conftest import wait_for as conftest_wait
from tests.conftest import write_config


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


def test_the_daemon_starts_a_new_watcher_and_mirrors_what_changed_meanwhile(
    tmp_path: Path, home: Path
) -> None:
    """The daemon in-process with a ``local:`` project: after the watchdog thread dies, an
    edit still reaches the mirror (a new observer, and a rescan for the edits in between)."""
    src, dst = tmp_path / "p", tmp_path / "p-mirror"
    (src / "d").mkdir(parents=True)
    (src / "a.txt").write_text("a\n")
    cfg = write_config(
        tmp_path / "c.yaml",
        [{"name": "p", "path": str(src), "mirror": {"to": f"local:{dst}", "delay": "100ms"}}],
    )
    config = load_config(cfg)
    lock = claim_instance(config.path)
    db = StateDB(state_db_path(config.path))
    daemon = Daemon(config, db)
    daemon.start()
    loop = threading.Thread(target=daemon.wait, daemon=True)  # the main loop restarts it
    loop.start()
    try:
        conftest_wait(lambda: (dst / "a.txt").exists(), what="the first mirror")
        old = daemon._watcher
        assert old is not None
        rt = daemon.projects["p"]
        held = watched_paths(old, rt.watch)
        d = os.fsencode(str(src / "d"))
        conftest_wait(lambda: d in held, what="the subfolder watched")
        del held[d]  # what the rename race leaves (see the module docstring)
        (src / "d").rmdir()
        (src / "b.txt").write_text("written while no event could arrive\n")
        conftest_wait(lambda: (dst / "b.txt").exists(), what="b.txt mirrored while idle")
        assert daemon._watcher is not old
        assert rt.engine.watch == "inotify"  # events again, not polling
        (src / "c.txt").write_text("an edit after the restart\n")
        conftest_wait(lambda: (dst / "c.txt").exists(), what="c.txt mirrored by its event")
    finally:
        daemon.request_stop()
        loop.join(timeout=10)
        daemon.stop()
        db.close()
        lock.release()

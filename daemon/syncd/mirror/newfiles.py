"""A large batch's new files, copied in bulk where the target can (``remotes.bulk``).

A first mirror on ``local:`` is tens of thousands of new files whose copy is a few
microseconds of syscalls each; the per-file path around it (the decision, the retry
wrapper, the facts as frozen objects, a hand-over between upload threads after every
syscall) cost several times the copy.  Here the feeding thread gives the target each run's
new paths (no index row) at once; what the target placed is recorded exactly as an
``upload`` is (journaled right after the file landed, so a ``kill -9`` loses no row), and
every path it handed back goes on to the worker pool's per-file path, which decides about
it as it always did: a file that appeared on the target meanwhile, a symlink, an
unreadable or changing file, a big one.  On one thread: on this kind of target the work
holds the GIL, and more threads only add hand-overs (bench/README.md, issue #14).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from ..db.statedb import FileRecord
from ..remotes.bulk import Created, CreatesNew
from .workers import runs_with_rows

if TYPE_CHECKING:
    from .apply import Applier

log = logging.getLogger("syncd.mirror")

BULK_MIN = 64  # paths in a batch from which its new files are copied in bulk
FLUSH_EVERY_S = 0.2  # the index (status's file count) catches up at least this often

Run = list[tuple[str, FileRecord | None]]


def runs_for(applier: Applier, paths: list[str], cancelled: Callable[[], bool]) -> Iterator[Run]:
    """A batch's paths with their index rows as the worker pool takes them
    (``runs_with_rows``); for a batch of ``BULK_MIN`` paths or more on a target that copies
    in bulk, less the new files copied here on the way."""
    runs = runs_with_rows(
        paths, applier.pool.workers, lambda part: applier.db.files_in(applier.name, part)
    )
    remote = applier.remote
    if len(paths) < BULK_MIN or not isinstance(remote, CreatesNew):
        return runs
    return NewFiles(applier, remote).filter(runs, cancelled)


class NewFiles:
    """Feeds a batch's runs through ``remote.create_new`` on the way to the worker pool."""

    def __init__(self, applier: Applier, remote: CreatesNew) -> None:
        self.applier = applier
        self.remote = remote
        self.debug = log.isEnabledFor(logging.DEBUG)

    def _created(self, c: Created) -> None:
        """A new file is in place: its row, journaled now (``Applier._record``)."""
        st = c.source
        self.applier._record(
            FileRecord(
                c.path,
                st.st_size,
                st.st_mtime_ns,
                c.md5,
                c.id,
                c.rev,
                time.time(),
                st.st_ino,
                st.st_ctime_ns,
            )  # fmt: skip
        )
        if self.debug:
            log.debug("%s: uploaded %s", self.applier.name, c.path)

    def _placed(self, paths: list[str]) -> None:
        """The per-file bookkeeping of what was copied here, at once."""
        self.applier.tracker.files_ok(paths)
        self.applier.summary.add("up", len(paths))
        self.applier.count_done(len(paths))

    def filter(self, runs: Iterator[Run], cancelled: Callable[[], bool]) -> Iterator[Run]:
        """``runs`` less the new files copied here; stops when ``cancelled()``."""
        applier = self.applier
        flushed = time.monotonic()
        for run in runs:
            if cancelled():
                return
            new = [p for p, rec in run if rec is None]
            if new:
                left = set(self.remote.create_new(applier.root, new, self._created))
                placed = [p for p in new if p not in left]
                if placed:
                    self._placed(placed)
                run = [(p, rec) for p, rec in run if rec is not None or p in left]
            applier.beat()
            if time.monotonic() - flushed > FLUSH_EVERY_S:
                applier.db.flush_files()
                flushed = time.monotonic()
            if run:
                yield run

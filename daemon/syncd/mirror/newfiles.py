"""A large batch's new files, copied in bulk where the target can (``remotes.bulk``).

A first mirror on ``local:`` is tens of thousands of new files whose copy is a few
microseconds of syscalls each; the per-file path around it (the decision, the retry
wrapper, the facts as frozen objects, the lock and counter traffic of every file) cost
several times the copy.  Here each upload thread gives the target its run's new paths
(no index row) at once; what the target placed is recorded exactly as an ``upload`` is
(journaled right after the file landed, so a ``kill -9`` loses no row), and every path
it handed back goes on through the per-file path on the same thread, which decides
about it as it always did: a file that appeared on the target meanwhile, a symlink, an
unreadable or changing file, a big one.  The threads stay (``workers``): while one is in
a syscall another runs, a disk's waits overlap, and a busy machine gives each runnable
thread its share (bench/README.md, issue #14).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

from ..db.statedb import FileRecord
from ..remotes.bulk import Created, CreatesNew
from .workers import runs_with_rows

if TYPE_CHECKING:
    from .apply import Applier

log = logging.getLogger("syncd.mirror")

BULK_MIN = 64  # paths in a batch from which its new files are copied in bulk

Run = list[tuple[str, FileRecord | None]]


def batch_runs(applier: Applier, paths: list[str]) -> tuple[Iterator[Run], NewFiles | None]:
    """A batch's paths with their index rows as the worker pool takes them
    (``runs_with_rows``), and the bulk copy for its new files: for a batch of
    ``BULK_MIN`` paths or more on a target that copies in bulk, else None."""
    runs = runs_with_rows(
        paths, applier.pool.workers, lambda part: applier.db.files_in(applier.name, part)
    )
    remote = applier.remote
    if len(paths) < BULK_MIN or not isinstance(remote, CreatesNew):
        return runs, None
    return runs, NewFiles(applier, remote)


class NewFiles:
    """Copies a run's new files through ``remote.create_new`` (on an upload thread)."""

    def __init__(self, applier: Applier, remote: CreatesNew) -> None:
        self.applier = applier
        self.remote = remote
        self.debug = log.isEnabledFor(logging.DEBUG)

    def copy(self, run: Run) -> Run:
        """Copy the run's new files; the rest of the run, for the per-file path."""
        new = [p for p, rec in run if rec is None]
        if not new:
            return run
        left = set(self.remote.create_new(self.applier.root, new, self._created))
        placed = [p for p in new if p not in left]
        if placed:
            self._placed(placed)
        return [(p, rec) for p, rec in run if rec is not None or p in left]

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

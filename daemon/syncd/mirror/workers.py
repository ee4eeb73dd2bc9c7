"""The upload workers: a few daemon threads fed from a bounded queue.

Not ``concurrent.futures.ThreadPoolExecutor``: its threads are joined when the
interpreter exits, so one upload held by a slow server kept ``syncd`` alive past
systemd's stop timeout.  These threads are daemons: at shutdown the daemon waits
for them only as long as its grace allows, and whatever was cut short is found
again by the next start's walk (the index is written only after the remote
confirmed, and a ``local:`` target's temporary files are swept).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

_DONE = object()
T = TypeVar("T")
R = TypeVar("R")
LOOKUP_ROWS = 512  # index rows read in one query while feeding a batch to the workers


class WorkerPool:
    """Run ``task(item)`` for items on ``workers`` daemon threads; ``run`` blocks until done."""

    def __init__(self, workers: int, name: str) -> None:
        self.workers = max(1, workers)
        self.name = name

    def run(
        self,
        task: Callable[[T], None],
        items: Iterable[T],
        *,
        cancelled: Callable[[], bool],
        wait: Callable[[threading.Event], None] | None = None,
    ) -> threading.Event:
        """Feed ``items`` to ``task`` until they run out or ``cancelled()``; wait for the workers.

        ``wait(done)`` replaces the plain wait for the workers, so the caller can keep its
        heartbeat going meanwhile, or stop waiting when it is told to stop; the returned
        event is set once the last worker has finished.
        """
        # Bounded: the feeder stays a few items ahead, so a batch of 200,000 files is never
        # queued (or turned into objects) all at once.
        jobs: queue.Queue[object] = queue.Queue(maxsize=self.workers * 4)
        left = [self.workers]
        lock = threading.Lock()
        done = threading.Event()

        def worker() -> None:
            try:
                while (item := jobs.get()) is not _DONE:
                    if not cancelled():
                        task(item)  # type: ignore[arg-type]
            finally:
                with lock:
                    left[0] -= 1
                    if left[0] == 0:
                        done.set()

        for i in range(self.workers):
            threading.Thread(target=worker, name=f"{self.name}-{i}", daemon=True).start()
        try:
            for item in items:
                if cancelled():
                    break
                jobs.put(item)
        finally:
            for _ in range(self.workers):
                jobs.put(_DONE)
        if wait is not None:
            wait(done)
        else:
            done.wait()
        return done


def runs_with_rows(
    paths: list[str], workers: int, rows_of: Callable[[list[str]], dict[str, R]]
) -> Iterator[list[tuple[str, R | None]]]:
    """A batch as the workers take it: each path with its index row, the rows of
    ``LOOKUP_ROWS`` paths read in one query, handed over in runs of a few paths (one queue
    hand-over per run, not per file; short runs for a short batch, so every worker gets
    some)."""
    run = max(1, min(32, len(paths) // (workers * 8)))
    for i in range(0, len(paths), LOOKUP_ROWS):
        part = paths[i : i + LOOKUP_ROWS]
        known = rows_of(part)
        for j in range(0, len(part), run):
            yield [(p, known.get(p)) for p in part[j : j + run]]

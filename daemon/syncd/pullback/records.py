"""What the return path remembers, in the state db's key/value table (per project).

- ``pull:token``: the changes-feed page token, saved only once every change it
  covers is applied (a kill -9 re-applies changes, never skips them).
- ``pulled:<path>``: one JSON record per file brought down — the Drive id, md5,
  revision, and the downloaded file's inode, size and mtime taken from the temp
  file before the rename (they survive it), which is how "edited locally since
  it was pulled" is told.
- ``pull:pending``: files that should be here but did not come down (a quota
  or transient refusal of the download, a local path in the way, a local write
  error), by Drive id with their path and the reason: retried at every poll
  until they land or leave Drive.
- ``pull:stats``: counters and the last poll for ``status`` (also when no daemon
  runs).
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import asdict, dataclass
from typing import Any

from ..db.statedb import StateDB

TOKEN = "pull:token"
STATS = "pull:stats"
PENDING = "pull:pending"
PULLED = "pulled:"


@dataclass(frozen=True)
class Pulled:
    """One file as it was when it came down."""

    id: str  # Drive file id
    md5: str
    rev: str | None
    size: int
    ino: int
    mtime_ns: int
    parent: str | None = None  # the Drive folder it was in (None: pulled by an older syncd)

    def same_local(self, st: os.stat_result) -> bool:
        """The local file is still the one syncd wrote (not edited, not replaced)."""
        return (st.st_ino, st.st_size, st.st_mtime_ns) == (self.ino, self.size, self.mtime_ns)


class PullRecords:
    """One project's return-path state; safe to use from the poller and status threads."""

    def __init__(self, db: StateDB, project: str) -> None:
        self.db = db
        self.project = project
        self._lock = threading.Lock()
        self._ids: dict[str, str] | None = None  # Drive id → path, built at first use

    # --- the page token -------------------------------------------------------------

    def token(self) -> str | None:
        return self.db.kv_get(self.project, TOKEN)

    def save_token(self, token: str | None) -> None:
        self.db.kv_set(self.project, TOKEN, token)

    # --- pulled files ---------------------------------------------------------------

    def all(self) -> dict[str, Pulled]:
        raw = self.db.kv_items(self.project, PULLED)
        return {key[len(PULLED) :]: Pulled(**json.loads(value)) for key, value in raw.items()}

    def get(self, path: str) -> Pulled | None:
        raw = self.db.kv_get(self.project, PULLED + path)
        return Pulled(**json.loads(raw)) if raw else None

    def put(self, path: str, rec: Pulled) -> None:
        self._unindex(path)
        self.db.kv_set(self.project, PULLED + path, json.dumps(asdict(rec)))
        if self._ids is not None:
            self._ids[rec.id] = path

    def forget(self, path: str) -> None:
        self._unindex(path)
        self.db.kv_set(self.project, PULLED + path, None)

    def where(self, file_id: str) -> str | None:
        """The path the file ``file_id`` was pulled to, if any.

        Kept as an index updated by ``put``/``forget`` (this object is the only writer
        of its project's records while the daemon runs), not rebuilt per lookup: a feed
        batch of N changes reading every record per change was quadratic.
        """
        if self._ids is None:
            self._ids = {rec.id: path for path, rec in self.all().items()}
        return self._ids.get(file_id)

    def _unindex(self, path: str) -> None:
        if self._ids is None:
            return
        old = self.get(path)
        if old is not None and self._ids.get(old.id) == path:
            del self._ids[old.id]

    # --- files waiting for another try ----------------------------------------------

    def pending(self) -> dict[str, dict[str, str]]:
        """Drive id → {"path", "error"} of every file still to come down."""
        raw = self.db.kv_get(self.project, PENDING)
        return dict(json.loads(raw)) if raw else {}

    def pend(self, file_id: str, path: str, error: str) -> None:
        with self._lock:
            waiting = self.pending()
            waiting[file_id] = {"path": path, "error": error}
            self.db.kv_set(self.project, PENDING, json.dumps(waiting))

    def unpend(self, file_id: str) -> None:
        with self._lock:
            waiting = self.pending()
            if waiting.pop(file_id, None) is not None:
                self.db.kv_set(self.project, PENDING, json.dumps(waiting) if waiting else None)

    def pending_note(self) -> str | None:
        """``last_error`` after a poll that reached Drive: what is still pending, and why."""
        waiting = sorted(self.pending().values(), key=lambda w: w["path"])
        if not waiting:
            return None
        first = waiting[0]
        more = f" (and {len(waiting) - 1} more)" if len(waiting) > 1 else ""
        return f"not pulled yet: {first['path']}: {first['error']}{more}; trying again each poll"

    # --- counters for status --------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        raw = self.db.kv_get(self.project, STATS)
        base: dict[str, Any] = {
            "last_poll": None,
            "files_pulled": 0,
            "conflicts": 0,
            "trashed": 0,
            "last_error": None,
        }
        return {**base, **json.loads(raw)} if raw else base

    def count(self, key: str, n: int = 1) -> None:
        with self._lock:
            stats = self.stats()
            stats[key] += n
            self.db.kv_set(self.project, STATS, json.dumps(stats))

    def polled(self, error: str | None, reached: bool = False) -> None:
        """A poll ended (``error``: why it failed, or what is still pending after a poll
        that ``reached`` Drive; None when everything went through)."""
        with self._lock:
            stats = self.stats()
            if error is None or reached:
                stats["last_poll"] = time.time()
            stats["last_error"] = error
            self.db.kv_set(self.project, STATS, json.dumps(stats))

"""Index rows on their way into SQLite: kept in memory, appended to a journal file meanwhile.

A first mirror confirms thousands of uploads a second; one SQLite transaction
each was a third of the work.  ``StateDB.record_file`` now keeps the row in
memory and appends it to this journal (one ``write``), and the next
transaction on the index writes every kept row in one go and empties the
journal.  The journal is what keeps the old promise "the index row is written
right after the remote confirmed": a ``kill -9`` loses no journal line (the
kernel has the write), and the next ``StateDB`` to open the index replays it.
Without it, a file copied just before a crash and deleted locally while syncd
was down would stay live on the remote, unknown to the index.

One writer at a time: the process that records rows holds an exclusive
``flock`` on the journal; a process that opens the index meanwhile (the CLI)
finds it taken and leaves the journal to its owner.
"""

from __future__ import annotations

import fcntl
import logging
import marshal
import os
import sqlite3
import struct
import threading
import time
from pathlib import Path

from .schema import FILE_COLUMNS, FileRecord

log = logging.getLogger("syncd.state")

Row = tuple[str, FileRecord]  # (project, row)
# A journal entry: its length, then the marshalled (project, *row fields).  marshal
# (version 4, stable since Python 3.4) is ~10× cheaper than json here, and a length
# prefix makes an entry cut short by a power loss visible as such.
_LEN = struct.Struct("<I")
_LOCK_TRIES = 40  # × 50 ms


class RowJournal:
    """The kept rows of one index, and their journal file ``path``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock = threading.Lock()  # taken inside StateDB's lock, never around it
        self.rows: list[Row] = []
        self._fd: int | None = None

    def leftovers(self) -> list[Row]:
        """Rows a process that ended without writing them left in the journal; the caller
        writes them to the index, then ``clear``s and ``close``s.  Nothing while another
        process owns the journal."""
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CLOEXEC)
        except FileNotFoundError:
            return []
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)  # a running daemon records rows: they are its own to write
            return []
        self._fd = fd
        with os.fdopen(os.dup(fd), "rb") as f:
            data = f.read()
        rows: list[Row] = []
        at = 0
        while at + _LEN.size <= len(data):
            (size,) = _LEN.unpack_from(data, at)
            blob = data[at + _LEN.size : at + _LEN.size + size]
            at += _LEN.size + size
            try:
                project, *fields = marshal.loads(blob)
                rows.append((project, FileRecord(*fields)))
            except (ValueError, EOFError, TypeError):
                log.warning("state journal %s: skipped a damaged entry", self.path)
        return rows

    def append(self, project: str, rec: FileRecord) -> int:
        """Keep ``rec``; the number of rows kept."""
        blob = marshal.dumps(
            (project, rec.path, rec.size, rec.mtime_ns, rec.md5, rec.remote_id)
            + (rec.remote_rev, rec.synced_at, rec.ino, rec.ctime_ns),
            4,
        )
        with self.lock:
            os.write(self._open(), _LEN.pack(len(blob)) + blob)
            self.rows.append((project, rec))
            return len(self.rows)

    def clear(self) -> None:
        """The kept rows are in the index now (call with ``lock`` held)."""
        self.rows = []
        if self._fd is not None:
            os.ftruncate(self._fd, 0)

    def close(self) -> None:
        with self.lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None

    def _open(self) -> int:
        if self._fd is None:
            fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
            for _ in range(_LOCK_TRIES):  # a CLI replaying the journal holds it briefly
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    time.sleep(0.05)
            else:
                # Another StateDB on this file records too (two in one process): never hang
                # a worker for it.  Entries stay whole (one O_APPEND write each); only the
                # other's emptying may drop some of ours, which costs a re-read, not a file.
                log.debug("state journal %s: shared with another writer", self.path)
            self._fd = fd
        return self._fd


def write_rows(conn: sqlite3.Connection, rows: list[Row]) -> None:
    """Insert or replace ``rows`` (inside the caller's transaction); each project's
    ``last_sync`` becomes its newest row's time."""
    conn.executemany(
        f"INSERT OR REPLACE INTO files(project, {FILE_COLUMNS}) "
        "VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            (project, r.path, r.size, r.mtime_ns, r.md5, r.remote_id, r.remote_rev)
            + (r.synced_at, r.ino, r.ctime_ns)
            for project, r in rows
        ),
    )
    last: dict[str, float] = {}
    for project, r in rows:
        last[project] = max(last.get(project, 0.0), r.synced_at)
    conn.executemany(
        "INSERT INTO projects(project, last_sync) VALUES(?, ?) "
        "ON CONFLICT(project) DO UPDATE SET last_sync = excluded.last_sync",
        last.items(),
    )

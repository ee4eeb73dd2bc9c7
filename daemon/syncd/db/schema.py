"""The index's tables, its rows as dataclasses, and how an older index is brought up to date.

``statedb`` holds the queries; this module what they run on.  The schema
grows in place (``migrate``): an index is never thrown away for a new column.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

SCHEMA_VERSION = 2  # 2: files.ino and files.ctime_ns (a file is known by more than size+mtime)

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS files(
    project TEXT NOT NULL,
    path TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    md5 TEXT NOT NULL,
    remote_id TEXT NOT NULL,
    remote_rev TEXT,
    synced_at REAL NOT NULL,
    ino INTEGER NOT NULL DEFAULT 0,
    ctime_ns INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY(project, path)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS projects(
    project TEXT PRIMARY KEY,
    target TEXT,
    paused TEXT,
    pause_reason TEXT,
    last_sync REAL,
    last_error TEXT,
    state TEXT
);
CREATE TABLE IF NOT EXISTS conflicts(
    project TEXT NOT NULL,
    path TEXT NOT NULL,
    kept_as TEXT NOT NULL,
    at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS remote_kv(
    project TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY(project, key)
) WITHOUT ROWID;
"""


@dataclass(frozen=True, slots=True)  # slots: a full walk compares with 200,000 of these
class FileRecord:
    """A file the remote confirmed: the local stat and md5 it had, and the remote's id/rev.

    ``ino``/``ctime_ns`` are 0 when unknown (rows from schema 1): any stat then differs,
    so the file is hashed once and the row completed, never uploaded for that alone.
    """

    path: str
    size: int
    mtime_ns: int
    md5: str
    remote_id: str
    remote_rev: str | None
    synced_at: float
    ino: int = 0
    ctime_ns: int = 0

    @property
    def key(self) -> tuple[int, int, int, int]:
        """(inode, size, mtime, ctime) as recorded (``fileio.stat_key``)."""
        return (self.ino, self.size, self.mtime_ns, self.ctime_ns)


FILE_COLUMNS = "path, size, mtime_ns, md5, remote_id, remote_rev, synced_at, ino, ctime_ns"


@dataclass(frozen=True)
class ProjectRecord:
    """What survives a restart about a project besides its files."""

    project: str
    target: str | None
    paused: str | None  # why it is paused ("user", "deletes"), None when running
    pause_reason: str | None
    last_sync: float | None
    last_error: str | None
    state: str | None


def is_corruption(exc: sqlite3.DatabaseError) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    if code in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB):
        return True
    return "integrity check failed" in str(exc) or "not a database" in str(exc)


def migrate(conn: sqlite3.Connection) -> None:
    """Bring an older index up to ``SCHEMA_VERSION`` in place (nothing is thrown away)."""
    columns = {row[1] for row in conn.execute("PRAGMA table_info(files)")}
    for name in ("ino", "ctime_ns"):
        if name not in columns:  # schema 1: every row is hashed once at the next walk
            conn.execute(f"ALTER TABLE files ADD COLUMN {name} INTEGER NOT NULL DEFAULT 0")

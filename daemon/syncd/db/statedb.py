"""The SQLite index: what syncd knows it has written, per project.

One database (WAL) per config file in the platform state dir.  A row in
``files`` means "the remote confirmed it holds this content": rows are written
only after the remote answered, so after any crash a walk of the folder
compared with these rows is enough to converge (the only recovery path).

A corrupt database is moved aside and a new, empty one is created; the next
full scan then adopts whatever is already on the remote by md5 instead of
re-uploading it.
"""

from __future__ import annotations

import hashlib
import logging
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import platformdirs

from ..errors import SyncdError
from .journal import RowJournal, write_rows
from .schema import (
    FILE_COLUMNS,
    SCHEMA,
    SCHEMA_VERSION,
    FileRecord,
    ProjectRecord,
    is_corruption,
    migrate,
)

__all__ = ["FileRecord", "ProjectRecord", "StateDB", "state_db_path"]

log = logging.getLogger("syncd.state")
_IN_CHUNK = 500  # paths per ``IN (…)`` query, well under SQLite's limit on parameters


def state_db_path(config_path: Path) -> Path:
    """One database per config file, named after it so two configs never share an index."""
    digest = hashlib.sha1(str(config_path.resolve()).encode()).hexdigest()[:10]
    base = Path(platformdirs.user_state_dir("syncd"))
    return base / f"{config_path.stem}-{digest}.db"


class StateDB:
    """Thread-safe access to the index; every method is one short transaction."""

    def __init__(self, path: Path, *, busy_timeout: float = 5.0) -> None:
        """``busy_timeout``: how long a statement waits for another process's lock before
        it fails (sqlite's own default, 5 s; a test of the failure need not wait it out)."""
        self.path = path
        self._busy_timeout = busy_timeout
        self._lock = threading.RLock()
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            self._conn = self._open()
        except sqlite3.DatabaseError as exc:
            if not is_corruption(exc):
                # Locked, unreadable, disk full: the index is fine, don't throw it away.
                raise SyncdError(
                    f"cannot open the state database {path}: {exc}",
                    "check that no other syncd uses it and that its disk is writable",
                ) from exc
            aside = path.with_name(f"{path.name}.corrupt-{int(time.time())}")
            log.error(
                "state database %s is unreadable (%s); moved it to %s and starting a fresh "
                "index (a full scan will adopt what is already on the remote)",
                path,
                exc,
                aside,
            )
            for suffix in ("", "-wal", "-shm"):
                src = Path(f"{path}{suffix}")
                if src.exists():
                    src.rename(Path(f"{aside}{suffix}"))
            self._conn = self._open()
        self._journal = RowJournal(Path(f"{path}-rows"))
        self._journal.rows = self._journal.leftovers()
        if self._journal.rows:
            log.info(
                "state db: wrote %d rows an interrupted run left in its journal",
                len(self._journal.rows),
            )
        self._write_kept()
        with self._journal.lock:
            self._journal.clear()  # also a journal whose lines were all damaged
        self._journal.close()

    def _open(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path, timeout=self._busy_timeout, check_same_thread=False, isolation_level=None
        )
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            row = conn.execute("PRAGMA quick_check").fetchone()
            if row is None or row[0] != "ok":
                raise sqlite3.DatabaseError(f"integrity check failed: {row}")
            conn.executescript(SCHEMA)
            migrate(conn)
            conn.execute(
                "INSERT OR REPLACE INTO meta(key, value) VALUES('schema', ?)",
                (str(SCHEMA_VERSION),),
            )
        except sqlite3.DatabaseError:
            conn.close()
            raise
        self.path.chmod(0o600)
        return conn

    def close(self) -> None:
        with self._lock:
            self._write_kept()
            self._conn.close()
            self._journal.close()

    @contextmanager
    def transaction(self, write: bool = True) -> Iterator[sqlite3.Connection]:
        """One short transaction on this database, for modules that keep their own tables in
        it (``snapshot.store``): the connection, under the lock, committed on exit.  A read
        (``write=False``) takes no write lock, so other processes' writers do not wait."""
        if write:
            with self._tx() as conn:
                yield conn
            return
        with self._lock:
            self._conn.execute("BEGIN")
            try:
                yield self._conn
            finally:
                self._conn.execute("COMMIT")

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """A write transaction; the rows ``record_file`` kept go first, in it (so every
        write lands after them, as it happened after them)."""
        with self._lock, self._journal.lock:
            kept = self._journal.rows
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                if kept:
                    write_rows(self._conn, kept)
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")
            if kept:
                self._journal.clear()

    def _write_kept(self) -> None:
        if self._journal.rows:
            with self._tx():
                pass

    # --- files ---------------------------------------------------------------

    def files(self, project: str) -> dict[str, FileRecord]:
        with self._lock:
            rows = self._conn.execute(
                f"SELECT {FILE_COLUMNS} FROM files WHERE project = ?",
                (project,),
            ).fetchall()
        return {r[0]: FileRecord(*r) for r in rows}

    def file(self, project: str, path: str) -> FileRecord | None:
        with self._lock:
            row = self._conn.execute(
                f"SELECT {FILE_COLUMNS} FROM files WHERE project = ? AND path = ?",
                (project, path),
            ).fetchone()
        return FileRecord(*row) if row else None

    def files_under(self, project: str, folder: str) -> list[FileRecord]:
        prefix = folder.rstrip("/") + "/"
        with self._lock:
            rows = self._conn.execute(
                f"SELECT {FILE_COLUMNS} FROM files WHERE project = ? AND path >= ? AND path < ?",
                (project, prefix, prefix[:-1] + "0"),  # "0" sorts right after "/"
            ).fetchall()
        return [FileRecord(*r) for r in rows]

    def files_in(self, project: str, paths: list[str]) -> dict[str, FileRecord]:
        """The rows of ``paths`` that exist, in a few queries (a batch's lookups at once)."""
        out: dict[str, FileRecord] = {}
        with self._lock:
            for i in range(0, len(paths), _IN_CHUNK):
                part = paths[i : i + _IN_CHUNK]
                rows = self._conn.execute(
                    f"SELECT {FILE_COLUMNS} FROM files WHERE project = ? "
                    f"AND path IN ({','.join('?' * len(part))})",
                    (project, *part),
                ).fetchall()
                out.update((r[0], FileRecord(*r)) for r in rows)
        return out

    def paths(self, project: str) -> list[str]:
        """Every indexed path of a project, sorted (the planner's view of a big batch)."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT path FROM files WHERE project = ? ORDER BY path", (project,)
            ).fetchall()
        return [r[0] for r in rows]

    def count(self, project: str) -> tuple[int, int]:
        """(files, bytes) tracked for a project."""
        with self._lock:
            row = self._conn.execute(
                "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM files WHERE project = ?", (project,)
            ).fetchone()
        return int(row[0]), int(row[1])

    def put_file(self, project: str, rec: FileRecord) -> None:
        self.put_files(project, [rec])

    def record_file(self, project: str, rec: FileRecord) -> int:
        """``put_file`` for a stream of uploads: the row is kept (and journaled) until the
        next write transaction, or ``flush_files``.  Returns how many rows are kept."""
        return self._journal.append(project, rec)

    def flush_files(self) -> None:
        """Write the rows ``record_file`` kept, in one transaction."""
        self._write_kept()

    def put_files(self, project: str, recs: list[FileRecord]) -> None:
        """Record files the remote confirmed, all in one transaction."""
        if recs:
            with self._tx():
                write_rows(self._conn, [(project, rec) for rec in recs])

    def touch_file(self, project: str, path: str, key: tuple[int, int, int, int]) -> None:
        """The content is unchanged (same md5) but the stat moved: remember the new stat.

        ``key`` is ``fileio.stat_key``: (inode, size, mtime, ctime).
        """
        ino, size, mtime_ns, ctime_ns = key
        with self._tx() as c:
            c.execute(
                "UPDATE files SET ino = ?, size = ?, mtime_ns = ?, ctime_ns = ? "
                "WHERE project = ? AND path = ?",
                (ino, size, mtime_ns, ctime_ns, project, path),
            )

    def forget_files(self, project: str, paths: Iterable[str]) -> None:
        with self._tx() as c:
            c.executemany(
                "DELETE FROM files WHERE project = ? AND path = ?", ((project, p) for p in paths)
            )

    def move_files(
        self,
        project: str,
        src: str,
        dst: str,
        *,
        is_dir: bool,
        remote_id: str | None,
        remote_rev: str | None,
        ids_are_paths: bool = False,
    ) -> None:
        """Re-key one file (or a folder's whole subtree) after the remote confirmed the move.

        ``ids_are_paths``: the remote's ids are its paths (``Features.stable_ids`` false),
        so every moved row's ``remote_id`` becomes its new path too.
        """
        with self._tx() as c:
            if not is_dir:
                c.execute("DELETE FROM files WHERE project = ? AND path = ?", (project, dst))
                c.execute(
                    "UPDATE files SET path = ?, remote_id = COALESCE(?, remote_id), "
                    "remote_rev = COALESCE(?, remote_rev) WHERE project = ? AND path = ?",
                    (dst, remote_id, remote_rev, project, src),
                )
                return
            old, new = src.rstrip("/") + "/", dst.rstrip("/") + "/"
            rows = c.execute(
                "SELECT path FROM files WHERE project = ? AND path >= ? AND path < ?",
                (project, old, old[:-1] + "0"),
            ).fetchall()
            for (path,) in rows:
                target = new + path[len(old) :]
                c.execute("DELETE FROM files WHERE project = ? AND path = ?", (project, target))
                c.execute(
                    "UPDATE files SET path = ?, remote_id = CASE WHEN ? THEN ? ELSE remote_id END "
                    "WHERE project = ? AND path = ?",
                    (target, ids_are_paths, target, project, path),
                )

    # --- projects ------------------------------------------------------------

    def project(self, project: str) -> ProjectRecord:
        with self._lock:
            row = self._conn.execute(
                "SELECT project, target, paused, pause_reason, last_sync, last_error, state "
                "FROM projects WHERE project = ?",
                (project,),
            ).fetchone()
        if row is None:
            return ProjectRecord(project, None, None, None, None, None, None)
        return ProjectRecord(*row)

    def bind_target(self, project: str, target: str) -> bool:
        """Remember the project's target; if it changed, the old index means nothing: drop it.

        Returns True when the index was dropped.
        """
        with self._tx() as c:
            row = c.execute("SELECT target FROM projects WHERE project = ?", (project,)).fetchone()
            if row is not None and row[0] == target:
                return False
            c.execute(
                "INSERT INTO projects(project, target) VALUES(?, ?) "
                "ON CONFLICT(project) DO UPDATE SET target = excluded.target",
                (project, target),
            )
            if row is None or row[0] is None:
                return False
            c.execute("DELETE FROM files WHERE project = ?", (project,))
            c.execute("DELETE FROM remote_kv WHERE project = ?", (project,))
            return True

    def set_paused(self, project: str, kind: str | None, reason: str | None = None) -> None:
        with self._tx() as c:
            c.execute(
                "INSERT INTO projects(project, paused, pause_reason) VALUES(?, ?, ?) "
                "ON CONFLICT(project) DO UPDATE SET paused = excluded.paused, "
                "pause_reason = excluded.pause_reason",
                (project, kind, reason if kind else None),
            )

    def set_state(self, project: str, state: str, last_error: str | None) -> None:
        with self._tx() as c:
            c.execute(
                "INSERT INTO projects(project, state, last_error) VALUES(?, ?, ?) "
                "ON CONFLICT(project) DO UPDATE SET state = excluded.state, "
                "last_error = excluded.last_error",
                (project, state, last_error),
            )

    # --- conflicts -----------------------------------------------------------

    def add_conflict(self, project: str, path: str, kept_as: str) -> None:
        with self._tx() as c:
            c.execute(
                "INSERT INTO conflicts VALUES(?, ?, ?, ?)", (project, path, kept_as, time.time())
            )

    def conflict_count(self, project: str) -> int:
        with self._lock:
            row = self._conn.execute(
                "SELECT COUNT(*) FROM conflicts WHERE project = ?", (project,)
            ).fetchone()
        return int(row[0])

    def conflicts(self, project: str) -> list[tuple[str, str, float]]:
        with self._lock:
            return self._conn.execute(
                "SELECT path, kept_as, at FROM conflicts WHERE project = ? ORDER BY at",
                (project,),
            ).fetchall()

    # --- per-remote bookkeeping (folder ids, create intents) ------------------

    def kv_get(self, project: str, key: str) -> str | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT value FROM remote_kv WHERE project = ? AND key = ?", (project, key)
            ).fetchone()
        return row[0] if row else None

    def kv_set(self, project: str, key: str, value: str | None) -> None:
        with self._tx() as c:
            if value is None:
                c.execute("DELETE FROM remote_kv WHERE project = ? AND key = ?", (project, key))
            else:
                c.execute("INSERT OR REPLACE INTO remote_kv VALUES(?, ?, ?)", (project, key, value))

    def kv_items(self, project: str, prefix: str) -> dict[str, str]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT key, value FROM remote_kv WHERE project = ? AND key >= ? AND key < ?",
                (project, prefix, prefix + "\uffff"),
            ).fetchall()
        return dict(rows)

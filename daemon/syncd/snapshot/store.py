"""Snapshot history and bookkeeping, in the state database's own connection.

Owns three tables next to the mirror's index (same file, same lock, same
crash-safety): ``snapshots`` (one row per upload: version, time, trigger,
notes, size, manifest hash, status, and the full manifest for the newest few,
which the "unchanged" decision and the change list of the next notes need),
A project with ``snapshot.data`` keeps the rows of its data dataset in the same
table under that dataset's ref; each row of the code dataset records, in its
``data`` column, which data version it goes with (``parts.DataPart``).
``snapshot_hashes`` (path → size, mtime, md5 of the last staged copy, so a
project without a mirror is not re-hashed either) and ``snapshot_kv`` (the
git tags already seen, the last attempt's outcome).  These survive a change of
mirror target, unlike the mirror's ``remote_kv``.
"""

from __future__ import annotations

import json
import time
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..db.statedb import StateDB
from .manifest import FileEntry, Md5Cache, files_from_json, files_to_json

SCHEMA = """
CREATE TABLE IF NOT EXISTS snapshots(
    id INTEGER PRIMARY KEY,
    project TEXT NOT NULL,
    dataset TEXT NOT NULL,
    version INTEGER,
    at REAL NOT NULL,
    trigger TEXT NOT NULL,
    notes TEXT NOT NULL,
    files INTEGER NOT NULL,
    bytes INTEGER NOT NULL,
    manifest_hash TEXT NOT NULL,
    status TEXT NOT NULL,
    url TEXT,
    manifest BLOB
);
CREATE INDEX IF NOT EXISTS snapshots_by_project ON snapshots(project, dataset, id);
CREATE TABLE IF NOT EXISTS snapshot_hashes(
    project TEXT NOT NULL,
    path TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    md5 TEXT NOT NULL,
    PRIMARY KEY(project, path)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS snapshot_kv(
    project TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY(project, key)
) WITHOUT ROWID;
"""

# Added after the first release: older databases get the column on open.
MIGRATIONS = (("data", "ALTER TABLE snapshots ADD COLUMN data TEXT"),)

KEEP_MANIFESTS = 3  # rows that keep their full manifest; older ones keep only the hash
UPLOADED = ("ready", "pending")  # what "unchanged since" compares against

_COLUMNS = "id, version, at, trigger, notes, files, bytes, manifest_hash, status, url, data"


@dataclass(frozen=True)
class SnapshotRecord:
    id: int
    version: int | None
    at: float
    trigger: str
    notes: str
    files: int
    bytes: int
    manifest_hash: str
    status: str  # "uploading" | "pending" (processing) | "ready" | "failed" | "error"
    url: str | None
    data_json: str | None = None  # the data part this code version goes with, as JSON

    @property
    def data(self) -> dict[str, Any] | None:
        return json.loads(self.data_json) if self.data_json else None

    def to_dict(self) -> dict[str, Any]:
        from .manifest import iso

        return {
            "version": self.version,
            "at": iso(self.at),
            "trigger": self.trigger,
            "notes": self.notes,
            "files": self.files,
            "bytes": self.bytes,
            "status": self.status,
            "manifest_hash": self.manifest_hash,
            "data": self.data,
        }


class SnapshotStore:
    """The snapshot tables of one project and dataset."""

    def __init__(self, db: StateDB, project: str, dataset: str) -> None:
        self.db = db
        self.project = project
        self.dataset = dataset
        with db.transaction() as c:
            for statement in _statements(SCHEMA):
                c.execute(statement)
            have = {row[1] for row in c.execute("PRAGMA table_info(snapshots)")}
            for column, statement in MIGRATIONS:
                if column not in have:
                    c.execute(statement)

    # --- history -------------------------------------------------------------------------------

    def add(
        self,
        *,
        trigger: str,
        notes: str,
        files: Mapping[str, FileEntry],
        manifest_hash: str,
        status: str,
        at: float | None = None,
        data: Mapping[str, Any] | None = None,
    ) -> int:
        blob = zlib.compress(files_to_json(files).encode(), 6)
        with self.db.transaction() as c:
            cur = c.execute(
                "INSERT INTO snapshots(project, dataset, version, at, trigger, notes, files, "
                "bytes, manifest_hash, status, url, manifest, data) "
                "VALUES(?, ?, NULL, ?, ?, ?, ?, ?, ?, ?, NULL, ?, ?)",
                (
                    self.project,
                    self.dataset,
                    time.time() if at is None else at,
                    trigger,
                    notes,
                    len(files),
                    sum(e.size for e in files.values()),
                    manifest_hash,
                    status,
                    blob,
                    json.dumps(dict(data), sort_keys=True) if data is not None else None,
                ),
            )
            row_id = int(cur.lastrowid or 0)
            # Per dataset: the data dataset's last manifest must outlive many code versions.
            c.execute(
                "UPDATE snapshots SET manifest = NULL WHERE project = ? AND dataset = ? "
                "AND manifest IS NOT NULL AND id NOT IN (SELECT id FROM snapshots "
                "WHERE project = ? AND dataset = ? AND manifest IS NOT NULL "
                "ORDER BY id DESC LIMIT ?)",
                (self.project, self.dataset, self.project, self.dataset, KEEP_MANIFESTS),
            )
        return row_id

    def update(
        self,
        row_id: int,
        *,
        status: str,
        version: int | None = None,
        url: str | None = None,
    ) -> None:
        with self.db.transaction() as c:
            c.execute(
                "UPDATE snapshots SET status = ?, version = COALESCE(?, version), "
                "url = COALESCE(?, url) WHERE id = ?",
                (status, version, url, row_id),
            )

    def _rows(
        self, where: str = "", args: tuple[Any, ...] = (), limit: int | None = None
    ) -> list[SnapshotRecord]:
        sql = f"SELECT {_COLUMNS} FROM snapshots WHERE project = ? AND dataset = ? {where} "
        sql += "ORDER BY id DESC" + (f" LIMIT {int(limit)}" if limit else "")
        with self.db.transaction(write=False) as c:
            rows = c.execute(sql, (self.project, self.dataset, *args)).fetchall()
        return [SnapshotRecord(*row) for row in rows]

    def history(self, limit: int | None = None) -> list[SnapshotRecord]:
        """Newest first."""
        return self._rows(limit=limit)

    def latest(self) -> SnapshotRecord | None:
        rows = self._rows(limit=1)
        return rows[0] if rows else None

    def last_ready(self) -> SnapshotRecord | None:
        rows = self._rows("AND status = 'ready' AND version IS NOT NULL", limit=1)
        return rows[0] if rows else None

    def pending(self) -> list[SnapshotRecord]:
        return self._rows("AND status = 'pending'")

    def interrupted(self) -> None:
        """Uploads a previous process never finished: not a baseline for "unchanged"."""
        with self.db.transaction() as c:
            c.execute(
                "UPDATE snapshots SET status = 'error' WHERE project = ? AND status = 'uploading'",
                (self.project,),
            )

    def last_uploaded(self) -> tuple[SnapshotRecord, dict[str, FileEntry]] | None:
        """The newest ready-or-processing upload and its manifest: "unchanged" means equal to it."""
        marks = ", ".join("?" * len(UPLOADED))
        with self.db.transaction(write=False) as c:
            row = c.execute(
                f"SELECT {_COLUMNS}, manifest FROM snapshots WHERE project = ? AND dataset = ? "
                f"AND status IN ({marks}) AND manifest IS NOT NULL ORDER BY id DESC LIMIT 1",
                (self.project, self.dataset, *UPLOADED),
            ).fetchone()
        if row is None:
            return None
        files = files_from_json(zlib.decompress(row[-1]).decode())
        return SnapshotRecord(*row[:-1]), files

    def status_block(self, data: SnapshotStore | None = None) -> dict[str, Any]:
        """The ``snapshot`` object of ``syncd status --json`` as the database remembers it
        (``next_at`` is the scheduler's: None here); with ``data`` (the data dataset's
        store), a ``data`` object too."""
        from .manifest import iso

        ready = self.last_ready()
        status = (self.get("last_attempt") or {}).get("status")
        if status is None:
            latest = self.latest()
            status = latest.status if latest else None
        block: dict[str, Any] = {
            "dataset": self.dataset,
            "last_version": ready.version if ready else None,
            "last_at": iso(ready.at) if ready else None,
            "status": status,
            "next_at": None,
        }
        if data is not None:
            block["data"] = data.data_block()
        return block

    def data_block(self) -> dict[str, Any]:
        """A data dataset's part of the status: its newest ready version and last upload."""
        from .manifest import iso

        ready, latest = self.last_ready(), self.latest()
        return {
            "dataset": self.dataset,
            "last_version": ready.version if ready else None,
            "last_at": iso(ready.at) if ready else None,
            "status": latest.status if latest else None,
            "files": ready.files if ready else None,
            "bytes": ready.bytes if ready else None,
        }

    # --- md5 cache -----------------------------------------------------------------------------

    def hash_cache(self) -> Md5Cache:
        with self.db.transaction(write=False) as c:
            rows = c.execute(
                "SELECT path, size, mtime_ns, md5 FROM snapshot_hashes WHERE project = ?",
                (self.project,),
            ).fetchall()
        return {r[0]: (r[1], r[2], r[3]) for r in rows}

    def save_hashes(
        self, current: Mapping[str, tuple[int, int, str]], old: Md5Cache, keep: Iterable[str]
    ) -> None:
        """Store the md5s just computed; forget paths no longer in the snapshot selection."""
        kept = set(keep)
        changed = [
            (self.project, p, *row) for p, row in current.items() if old.get(p) != tuple(row)
        ]
        gone = [(self.project, p) for p in old if p not in kept]
        if not changed and not gone:
            return
        with self.db.transaction() as c:
            c.executemany("INSERT OR REPLACE INTO snapshot_hashes VALUES(?, ?, ?, ?, ?)", changed)
            c.executemany("DELETE FROM snapshot_hashes WHERE project = ? AND path = ?", gone)

    # --- small values --------------------------------------------------------------------------

    def get(self, key: str) -> Any:
        with self.db.transaction(write=False) as c:
            row = c.execute(
                "SELECT value FROM snapshot_kv WHERE project = ? AND key = ?", (self.project, key)
            ).fetchone()
        return json.loads(row[0]) if row else None

    def set(self, key: str, value: Any) -> None:
        with self.db.transaction() as c:
            c.execute(
                "INSERT OR REPLACE INTO snapshot_kv VALUES(?, ?, ?)",
                (self.project, key, json.dumps(value)),
            )


def _statements(script: str) -> list[str]:
    # executescript() would COMMIT the open transaction first; one statement at a time keeps
    # the schema creation inside it.
    return [s.strip() for s in script.split(";") if s.strip()]

"""The facts the per-file decisions are taken on, in ``decide``'s terms, and the index row
an upload leaves: conversions between the index, the remote and ``decide`` (no policy here).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from ..db.statedb import FileRecord
from ..errors import FileError
from ..fileio import md5_file, open_source
from ..remotes.base import RemoteEntry
from .decide import Known, There


def entry_of(rec: FileRecord | None) -> RemoteEntry | None:
    """What syncd last recorded of a path, as the remote's ``known`` argument."""
    if rec is None:
        return None
    return RemoteEntry(rec.path, rec.remote_id, rec.size, rec.md5, rec.remote_rev)


def known_of(rec: FileRecord | None) -> Known | None:
    return None if rec is None else Known(rec.size, rec.md5, rec.remote_id)


def there_of(entry: RemoteEntry | None) -> There | None:
    return None if entry is None else There(entry.is_dir, entry.id, entry.md5)


def hash_local(root: Path, path: str) -> str:
    """md5 of a project file, read without following a symlink."""
    with os.fdopen(open_source(root / path, path), "rb") as f:
        try:
            return md5_file(f)
        except OSError as exc:
            raise FileError(path, f"cannot read it: {exc.strerror}") from exc


def record(
    path: str, st: os.stat_result, size: int, mtime_ns: int, md5: str, entry: RemoteEntry
) -> FileRecord:
    """The index row for a version the remote confirmed.

    The inode and ctime are those stat'ed before the upload only if the version sent
    is that one (same size and mtime); else 0, so the next look reads the file again.
    """
    same = (size, mtime_ns) == (st.st_size, st.st_mtime_ns)
    ino, ctime_ns = (st.st_ino, st.st_ctime_ns) if same else (0, 0)
    return FileRecord(path, size, mtime_ns, md5, entry.id, entry.rev, time.time(), ino, ctime_ns)

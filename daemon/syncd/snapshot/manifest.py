"""A snapshot's manifest and the "unchanged" decision.

Owns ``syncd-snapshot.json`` (path → size, md5 of every file, with project,
time, trigger, message and git state) and its hash over paths, sizes and md5s
only, so two snapshots of the same content have the same hash whatever the
time, trigger or git state; and the "unchanged" decision, made without
re-reading files whose size and mtime match a known md5 (the mirror's index or
the snapshot hash cache).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..fileio import md5_file
from ..localfs.walk import LocalFile
from .gitinfo import GitInfo

MANIFEST_NAME = "syncd-snapshot.json"
# The data dataset's own manifest: another name, so a kernel looking for the code's
# manifest never mistakes the data dataset for a snapshot of the code.
DATA_MANIFEST_NAME = "syncd-data.json"
MANIFEST_FORMAT = 1


@dataclass(frozen=True)
class FileEntry:
    size: int
    md5: str


def manifest_hash(files: Mapping[str, FileEntry]) -> str:
    """sha256 over sorted (path, size, md5): equal content, equal hash."""
    rows = [[path, files[path].size, files[path].md5] for path in sorted(files)]
    return hashlib.sha256(json.dumps(rows, separators=(",", ":")).encode()).hexdigest()


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class SnapshotManifest:
    """``syncd-snapshot.json``: what a snapshot holds and where it came from."""

    project: str
    created_at: float
    trigger: str
    files: dict[str, FileEntry]
    message: str | None = None
    git: GitInfo | None = None
    # The code's manifest: which dataset and version hold the data part (``parts.DataPart``).
    data: Mapping[str, Any] | None = None
    part: str = "code"  # "code" (syncd-snapshot.json) or "data" (syncd-data.json)

    @property
    def hash(self) -> str:
        return manifest_hash(self.files)

    @property
    def total_bytes(self) -> int:
        return sum(entry.size for entry in self.files.values())

    def to_json(self) -> dict[str, Any]:
        return {
            "format": MANIFEST_FORMAT,
            "project": self.project,
            "created_at": iso(self.created_at),
            "trigger": self.trigger,
            "message": self.message,
            "git": self.git.to_dict() if self.git else None,
            "file_count": len(self.files),
            "bytes": self.total_bytes,
            "manifest_hash": self.hash,
            **({"part": self.part} if self.part != "code" else {}),
            **({"data": dict(self.data)} if self.data is not None else {}),
            "files": {
                path: {"size": self.files[path].size, "md5": self.files[path].md5}
                for path in sorted(self.files)
            },
        }

    def write(self, folder: Path) -> Path:
        path = folder / (DATA_MANIFEST_NAME if self.part == "data" else MANIFEST_NAME)
        path.write_text(json.dumps(self.to_json(), indent=1) + "\n", encoding="utf-8")
        return path


def files_to_json(files: Mapping[str, FileEntry]) -> str:
    return json.dumps({p: [e.size, e.md5] for p, e in files.items()}, separators=(",", ":"))


def files_from_json(text: str) -> dict[str, FileEntry]:
    return {p: FileEntry(int(v[0]), str(v[1])) for p, v in json.loads(text).items()}


# --- unchanged decision ---------------------------------------------------------------------------

Md5Cache = Mapping[str, tuple[int, int, str]]  # path → (size, mtime_ns, md5)


def known_md5s(files: Mapping[str, LocalFile], *caches: Md5Cache) -> dict[str, str]:
    """md5s that can be trusted without reading: the cache row has the file's size and mtime."""
    known: dict[str, str] = {}
    for rel, lf in files.items():
        for cache in caches:
            row = cache.get(rel)
            if row is not None and row[0] == lf.size and row[1] == lf.mtime_ns:
                known[rel] = row[2]
                break
    return known


def same_as(
    root: Path,
    files: Mapping[str, LocalFile],
    known: Mapping[str, str],
    last: Mapping[str, FileEntry],
) -> tuple[bool, dict[str, str]]:
    """Whether ``files`` hold exactly ``last``'s content, and the md5s computed to find out.

    Paths and sizes are compared first; only when they all match are md5s needed,
    and only files without a known md5 are read.
    """
    if len(files) != len(last) or any(
        (entry := last.get(rel)) is None or entry.size != lf.size for rel, lf in files.items()
    ):
        return False, {}
    hashed: dict[str, str] = {}
    for rel in files:
        md5 = known.get(rel)
        if md5 is None:
            try:
                md5 = hashed[rel] = md5_file(root / rel)
            except OSError:
                return False, hashed
        if md5 != last[rel].md5:
            return False, hashed
    return True, hashed

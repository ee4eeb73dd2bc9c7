"""A full walk of a project folder compared with the index → the paths that need work.

This is the only recovery mechanism (startup, hourly, after a watcher
overflow, after coming back online): whatever happened while syncd was not
looking, the walk finds it.  A file is "unchanged" only while its inode, size,
mtime and ctime all equal the index's (``fileio.stat_key``): a swap through a
temporary name or a chmod changes the inode or the ctime, and the file is then
read again (the md5 decides whether anything is sent).  A walk of an untouched
tree reads no file contents.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..db.statedb import FileRecord
from ..fileio import md5_file
from ..localfs.walk import Walk


@dataclass
class ScanChanges:
    """Paths whose local state differs from the index, and moves recognised by content."""

    dirty: set[str] = field(default_factory=set)
    moves: list[tuple[str, str]] = field(default_factory=list)


def compare(root: Path, found: Walk, index: dict[str, FileRecord]) -> ScanChanges:
    """Which paths differ from the index; a deleted+created pair with equal md5 is a move."""
    changes = ScanChanges()
    created: list[str] = []
    for rel, lf in found.files.items():
        rec = index.get(rel)
        if rec is None:
            created.append(rel)
            changes.dirty.add(rel)
        elif rec.key != lf.key:
            changes.dirty.add(rel)
    # A file or folder we could not read is not a deletion: keep its remote copy.
    unreadable = tuple("" if p == "." else p + "/" for p in found.skipped)
    deleted = [
        p
        for p in index
        if p not in found.files
        and p not in found.skipped
        and p not in found.links
        and not p.startswith(unreadable)
    ]
    changes.dirty.update(deleted)
    changes.moves = _moves_by_content(root, found, created, [index[p] for p in deleted])
    return changes


def _moves_by_content(
    root: Path, found: Walk, created: list[str], deleted: list[FileRecord]
) -> list[tuple[str, str]]:
    """Pair vanished and new files of equal size and md5, so the remote moves instead of copies.

    Only candidates whose size matches a vanished file are hashed.  Empty files are
    never paired: any two are "equal", and the deleted one must go to the trash.
    """
    by_size: dict[int, list[FileRecord]] = {}
    for rec in deleted:
        if rec.size > 0:  # every empty file has one md5: pairing them says nothing
            by_size.setdefault(rec.size, []).append(rec)
    moves: list[tuple[str, str]] = []
    for rel in created:
        candidates = by_size.get(found.files[rel].size)
        if not candidates:
            continue
        try:
            digest = md5_file(root / rel)
        except OSError:
            continue
        for rec in candidates:
            if rec.md5 == digest:
                candidates.remove(rec)
                moves.append((rec.path, rel))
                break
    return moves

"""A full walk of a project folder compared with the index → the paths that need work.

This is the only recovery mechanism (startup, hourly, after a watcher
overflow, after coming back online): whatever happened while syncd was not
looking, the walk finds it.  md5 is computed only when size or mtime changed,
so a walk of an unchanged tree reads no file contents.
"""

from __future__ import annotations

import logging
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from .fsutil import md5_file
from .ignore import IgnoreRules
from .state import FileRecord

log = logging.getLogger("syncd.scan")


@dataclass(frozen=True)
class LocalFile:
    path: str
    size: int
    mtime_ns: int


@dataclass
class Walk:
    """Regular files found (not ignored, not behind a symlink) and what was skipped."""

    files: dict[str, LocalFile] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)  # unreadable: path → why
    links: set[str] = field(default_factory=set)  # symlinks: never followed, never mirrored


@dataclass
class ScanChanges:
    """Paths whose local state differs from the index, and moves recognised by content."""

    dirty: set[str] = field(default_factory=set)
    moves: list[tuple[str, str]] = field(default_factory=list)


def walk(root: Path, rules: IgnoreRules, under: str = "") -> Walk:
    """Walk ``root`` (or its subfolder ``under``) without following symlinks."""
    result = Walk()
    stack = [under.strip("/")]
    while stack:
        rel_dir = stack.pop()
        abs_dir = os.path.join(root, rel_dir) if rel_dir else str(root)
        try:
            entries = list(os.scandir(abs_dir))
        except OSError as exc:
            result.skipped[rel_dir or "."] = f"cannot list folder: {exc.strerror}"
            continue
        for entry in entries:
            rel = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
            try:
                if entry.is_symlink():
                    # Never followed: a link may point out of the project or loop.
                    result.links.add(rel)
                    continue
                if entry.is_dir(follow_symlinks=False):
                    if not rules.is_ignored(rel, True):
                        stack.append(rel)
                    continue
                st = entry.stat(follow_symlinks=False)
            except OSError as exc:
                result.skipped[rel] = f"cannot read: {exc.strerror}"
                continue
            if not stat.S_ISREG(st.st_mode):
                continue  # sockets, fifos, devices: nothing to mirror
            if rules.is_ignored(rel, False):
                continue
            result.files[rel] = LocalFile(rel, st.st_size, st.st_mtime_ns)
    return result


def compare(root: Path, found: Walk, index: dict[str, FileRecord]) -> ScanChanges:
    """Which paths differ from the index; a deleted+created pair with equal md5 is a move."""
    changes = ScanChanges()
    created: list[str] = []
    for rel, lf in found.files.items():
        rec = index.get(rel)
        if rec is None:
            created.append(rel)
            changes.dirty.add(rel)
        elif rec.size != lf.size or rec.mtime_ns != lf.mtime_ns:
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

    Only candidates whose size matches a vanished file are hashed.
    """
    by_size: dict[int, list[FileRecord]] = {}
    for rec in deleted:
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

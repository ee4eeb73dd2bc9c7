"""A walk of a project folder: its regular files, what could not be read, its symlinks.

The mirror's full scan (``mirror.compare``) and the snapshot selection both
start here, with the project's ignore rules, so they see the same files.  It
never follows a symlink and reads no file contents (only ``stat``).
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .ignore import IgnoreRules

log = logging.getLogger("syncd.scan")


@dataclass(frozen=True, slots=True)  # slots: a 200,000-file walk holds 200,000 of these
class LocalFile:
    path: str
    size: int
    mtime_ns: int
    ino: int = 0
    ctime_ns: int = 0

    @property
    def key(self) -> tuple[int, int, int, int]:
        """(inode, size, mtime, ctime): what the index compares (``fileio.stat_key``)."""
        return (self.ino, self.size, self.mtime_ns, self.ctime_ns)


@dataclass
class Walk:
    """Regular files found (not ignored, not behind a symlink) and what was skipped."""

    files: dict[str, LocalFile] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)  # unreadable: path → why
    links: set[str] = field(default_factory=set)  # symlinks: never followed, never mirrored


# Linux hands names over as bytes; Python decodes bytes that are not UTF-8 to lone
# surrogates (PEP 383). Drive, Kaggle and SQLite (the index) take UTF-8 text only, so
# such a file cannot be mirrored: it is skipped with this reason, never the whole batch.
NOT_UTF8 = "its name is not valid UTF-8 (Drive, Kaggle and the index need UTF-8): rename it"


def not_utf8(rel: str) -> bool:
    """True for a path holding bytes that are not UTF-8 (see ``NOT_UTF8``)."""
    if rel.isascii():
        return False
    try:
        rel.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def shown(rel: str) -> str:
    """A path as text that can go anywhere (status, logs): bad bytes as ``\\xff``."""
    return rel.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def walk(
    root: Path, rules: IgnoreRules, under: str = "", tick: Callable[[], None] | None = None
) -> Walk:
    """Walk ``root`` (or its subfolder ``under``) without following symlinks.

    ``tick`` is called once per folder (the mirror's heartbeat: a long walk is work,
    not a hang).
    """
    result = Walk()
    stack = [under.strip("/")]
    while stack:
        if tick is not None:
            tick()
        rel_dir = stack.pop()
        abs_dir = os.path.join(root, rel_dir) if rel_dir else str(root)
        try:
            entries = list(os.scandir(abs_dir))
        except OSError as exc:
            result.skipped[rel_dir or "."] = f"cannot list folder: {exc.strerror}"
            continue
        for entry in entries:
            rel = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
            if not_utf8(entry.name):
                result.skipped[shown(rel)] = NOT_UTF8  # a folder: everything below it too
                continue
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
            result.files[rel] = LocalFile(
                rel, st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns
            )
    return result

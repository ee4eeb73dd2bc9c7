"""Reading project files safely: no symlinks, md5 while reading, "same version" checks.

A leaf below both ``remotes`` and ``localfs`` (which must not import each
other): the mirror engine, both remotes and the snapshot staging copy read
project files through these, so errno becomes ``FileChanged``/``FileError`` in
one place.  Also the name a displaced remote copy gets (``conflict_name``).
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
import time
from pathlib import Path
from typing import BinaryIO

from .errors import FileChanged, FileError

CHUNK = 1024 * 1024


def md5_file(path: Path | str | BinaryIO) -> str:
    """md5 of a file, given by path or as an open binary file (read to its end)."""
    if not isinstance(path, str | Path):
        return _md5_stream(path)
    with open(path, "rb") as f:
        return _md5_stream(f)


def _md5_stream(f: BinaryIO) -> str:
    h = hashlib.md5()
    while chunk := f.read(CHUNK):
        h.update(chunk)
    return h.hexdigest()


def open_source(path: Path | str, rel: str) -> int:
    """Open a project file for reading; errno becomes the engine's per-file vocabulary.

    Never through a symlink (O_NOFOLLOW): a file swapped for a link after the walk
    is refused, not read from wherever the link points.  Parent folders are the
    engine's check (it knows the project root).
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError as exc:
        raise FileChanged(rel, "the file vanished before it could be read") from exc
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise FileError(rel, "symlink (symlinks are not followed)") from exc
        raise FileError(rel, f"cannot read it: {exc.strerror}", "check its permissions") from exc
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise FileError(rel, "not a regular file any more")
    return fd


def same_version(a: os.stat_result, b: os.stat_result) -> bool:
    """True when two stats describe the same content version of one file."""
    return (a.st_ino, a.st_size, a.st_mtime_ns) == (b.st_ino, b.st_size, b.st_mtime_ns)


def conflict_name(path: str, when: float | None = None) -> str:
    """``dir/NAME (conflict YYYY-MM-DD HHMMSS).EXT`` — the name a displaced remote copy gets."""
    stamp = time.strftime("%Y-%m-%d %H%M%S", time.localtime(when))
    head, _, name = path.rpartition("/")
    stem, dot, ext = name.rpartition(".")
    if not stem:  # ".bashrc" or "Makefile": no extension to keep at the end
        stem, dot, ext = name, "", ""
    new = f"{stem} (conflict {stamp}){dot}{ext}"
    return f"{head}/{new}" if head else new

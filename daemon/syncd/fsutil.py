"""Small file helpers shared by the scanner, the remotes and the snapshotter."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

CHUNK = 1024 * 1024


def md5_file(path: Path | str) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


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

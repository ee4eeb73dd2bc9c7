"""Reading project files safely: no symlinks, md5 while reading, "same version" checks.

A leaf below both ``remotes`` and ``localfs`` (which must not import each
other): the mirror engine, both remotes and the snapshot staging copy read
project files through these, so errno becomes ``FileChanged``/``FileError`` in
one place.  Also the names syncd makes up (``conflict_name``, ``fit_name``),
always within NAME_MAX bytes.
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
NAME_MAX = 255  # bytes in one file name (Linux, macOS APFS in UTF-8)


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
    return open_source_stat(path, rel)[0]


def open_source_stat(path: Path | str, rel: str) -> tuple[int, os.stat_result]:
    """``open_source``, and the open file's stat (the one taken to check it is a file)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError as exc:
        raise FileChanged(rel, "the file vanished before it could be read") from exc
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise FileError(rel, "symlink (symlinks are not followed)") from exc
        raise FileError(rel, f"cannot read it: {exc.strerror}", "check its permissions") from exc
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise FileError(rel, "not a regular file any more")
    return fd, st


def same_version(a: os.stat_result, b: os.stat_result) -> bool:
    """True when two stats describe the same content version of one file."""
    return (a.st_ino, a.st_size, a.st_mtime_ns) == (b.st_ino, b.st_size, b.st_mtime_ns)


def stat_key(st: os.stat_result) -> tuple[int, int, int, int]:
    """What the index remembers of a file's stat: (inode, size, mtime, ctime), ns.

    Size and mtime alone cannot tell two files swapped through a temporary name
    (``mv a t; mv b a; mv t b``) or a file made readable again: the inode changes with
    the first, the ctime with both (rename and chmod set it).  Any difference means
    "read it again"; the md5 then decides whether anything is sent.
    """
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def fit_name(head: str, tail: str = "", limit: int = NAME_MAX) -> str:
    """``head + tail`` in at most ``limit`` bytes: ``head`` is cut, never mid-character.

    Length limits are in bytes (NAME_MAX is 255 bytes on Linux filesystems), and a
    UTF-8 name of 128 characters may already fill them.
    """
    room = limit - len(os.fsencode(tail))
    raw = os.fsencode(head)
    if len(raw) <= room:
        return head + tail
    cut = max(0, room)
    while cut > 0 and (raw[cut] & 0xC0) == 0x80:  # a UTF-8 continuation byte: back off
        cut -= 1
    return os.fsdecode(raw[:cut]) + tail


def conflict_name(path: str, when: float | None = None, n: int = 1) -> str:
    """``dir/NAME (conflict YYYY-MM-DD HHMMSS.mmm).EXT`` — the name a displaced remote copy gets.

    Milliseconds keep two conflicts of one second apart; ``n`` > 1 adds a counter for
    the caller that finds the name taken anyway.  The name fits NAME_MAX bytes.
    """
    when = time.time() if when is None else when
    stamp = time.strftime("%Y-%m-%d %H%M%S", time.localtime(when))
    stamp += f".{int(when * 1000) % 1000:03d}" + (f" {n}" if n > 1 else "")
    head, _, name = path.rpartition("/")
    stem, dot, ext = name.rpartition(".")
    if not stem:  # ".bashrc" or "Makefile": no extension to keep at the end
        stem, dot, ext = name, "", ""
    tail = f" (conflict {stamp}){dot}{ext}"
    if len(os.fsencode(tail)) > NAME_MAX // 2:  # an absurdly long extension: keep it whole
        stem, tail = name, f" (conflict {stamp})"
    new = fit_name(stem, tail)
    return f"{head}/{new}" if head else new


def copy_with_md5(src: int, dst: int, size: int) -> tuple[str, int]:
    """Copy the first ``size`` bytes of open file ``src`` into ``dst``, hashing them on the way.

    Each byte is read once: small files with one ``read`` (md5 of that buffer, then one
    ``write``), large ones in ``CHUNK``s through ``copy_file_range`` (done in the kernel:
    a reflink where the filesystem can) and a ``pread`` of the same range for the md5.
    It stops at ``size`` (or at an earlier end of file) without the extra read that
    would confirm the end: the caller's ``same_version`` check afterwards is what says
    the file still has exactly ``size`` bytes.  Returns (md5, bytes copied).
    """
    h = hashlib.md5()
    done = 0
    kernel_copy = size > CHUNK and hasattr(os, "copy_file_range")
    while done < size:
        want = min(CHUNK, size - done)
        if kernel_copy:
            try:
                n = os.copy_file_range(src, dst, want, done, done)
            except OSError as exc:
                if exc.errno not in _NO_KERNEL_COPY:
                    raise
                kernel_copy = False  # across filesystems on old kernels, some FUSE: plain copy
                os.lseek(src, done, os.SEEK_SET)
                os.lseek(dst, done, os.SEEK_SET)
                continue
            if n == 0:
                break
            h.update(os.pread(src, n, done))
            done += n
            continue
        chunk = os.read(src, want)
        if not chunk:
            break
        h.update(chunk)
        _write_all(dst, chunk)
        done += len(chunk)
    return h.hexdigest(), done


_NO_KERNEL_COPY = {errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.ENOTSUP}


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]

"""``local:``'s file operations that never replace a name, and its bulk copy of new files.

A create lands with ``link`` of a temporary file (which fails on an existing name), not
``rename``; a move checks the same way.  ``copy_new`` is the first mirror's fast path: the
plain case of many new files — nothing at the target path, a regular file of at most
``fileio.CHUNK`` bytes, unchanged while it was copied — done in one tight loop, with the
same temporary file, md5, mtime and "same version" checks as ``LocalRemote.upload``.  Any
path where anything goes otherwise is handed back untouched for the per-file path, which
decides about it (conflict copy, error, retry) as it always does.
"""

from __future__ import annotations

import errno
import hashlib
import os
import random
import re
import secrets
import stat
from collections.abc import Callable, Iterable
from pathlib import Path

from ..fileio import CHUNK, NAME_MAX, fit_name, same_version
from .bulk import Created

TMP_PREFIX = ".syncd-tmp-"
_TMP_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW
_SRC_FLAGS = os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK  # as fileio.open_source
# Temporary names need to be unlikely to meet, not secret (O_EXCL settles a meeting):
# a seeded generator spares the getrandom() call per file that ``secrets`` makes.
_TMP_RNG = random.Random(secrets.randbits(64))
_SURELY_FITS = NAME_MAX // 4  # characters that fit NAME_MAX bytes in any UTF-8
_UTIME_FD = os.utime in os.supports_fd  # futimens: the mtime set on the open file
_NO_LINKS = (errno.EPERM, errno.ENOTSUP, errno.EXDEV, errno.EMLINK)


# Filesystems where a file operation waits on a network or on another process (FUSE: an
# rclone or google-drive-ocamlfuse mount of Drive, sshfs): there the per-file path's
# upload threads overlap the waits, which one loop would add up.  Local disks (USB ones
# too: writes land in the page cache) are CPU work under the GIL, where one loop is best.
MOUNTINFO = "/proc/self/mountinfo"
WAITING_FS = ("fuse", "nfs", "cifs", "smb", "9p", "afs", "ceph", "glusterfs", "davfs", "lustre")


def fs_type(path: str, mountinfo: str | None = None) -> str:
    """The type of the filesystem ``path`` is on, from ``/proc/self/mountinfo`` (Linux;
    "" where there is none): the longest mount point that contains the path wins."""
    if mountinfo is None:
        try:
            with open(MOUNTINFO, encoding="utf-8", errors="replace") as f:
                mountinfo = f.read()
        except OSError:
            return ""
    real = os.path.realpath(path)
    best, kind = -1, ""
    for line in mountinfo.splitlines():
        head, _, tail = line.partition(" - ")
        fields = head.split(" ")
        if len(fields) < 5 or not tail:
            continue
        mount = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m[1], 8)), fields[4])  # \040: space
        inside = real == mount or real.startswith(mount.rstrip("/") + "/")
        if inside and len(mount) > best:
            best, kind = len(mount), tail.split(" ")[0]
    return kind


def waits(path: str, mountinfo: str | None = None) -> bool:
    """``path`` is on a network or FUSE filesystem (``WAITING_FS``)."""
    return fs_type(path, mountinfo).startswith(WAITING_FS)


def _rev(st: os.stat_result) -> str:
    return f"{st.st_size}:{st.st_mtime_ns}"


def tmp_name(parent: str, name: str) -> str:
    """``.syncd-tmp-XXXXXXXX-NAME`` beside the target, cut to NAME_MAX bytes when long."""
    tmp = f"{TMP_PREFIX}{_TMP_RNG.getrandbits(32):08x}-{name}"
    if len(tmp) > _SURELY_FITS:  # at most 4 bytes a character: only a long name needs encoding
        tmp = fit_name(tmp)
    return f"{parent}/{tmp}"


class LinkGuard:
    """Never write through a symlink on the target: a user's link to a folder there would
    lead out of it (``O_NOFOLLOW`` guards only a path's last part).  Each folder between
    the root and a path is ``lstat``-ed once per batch (``reset``)."""

    def __init__(self, root: str) -> None:
        self.root = root
        self._plain: set[str] = set()

    def reset(self) -> None:
        self._plain.clear()

    def link_above(self, path: str) -> str | None:
        """The first folder above ``path`` that is a symlink, relative; None if none is."""
        cur = ""
        for part in path.split("/")[:-1]:
            cur = f"{cur}/{part}" if cur else part
            if cur in self._plain:
                continue
            try:
                st = os.lstat(f"{self.root}/{cur}")
            except OSError:
                return None  # missing (made as a folder later) or unreadable: nothing to follow
            if stat.S_ISLNK(st.st_mode):
                return cur
            self._plain.add(cur)
        return None


def copy_new(
    src_root: str,
    dst_root: str,
    paths: Iterable[str],
    created: Callable[[Created], None],
    guard: LinkGuard,
) -> list[str]:
    """Copy the files at ``paths`` (new: no index row) from ``src_root`` to ``dst_root``;
    ``created`` is called right after each one is in place (the caller's index row goes
    to its journal then, as after ``upload``).  Returns the paths not done here."""
    left: list[str] = []
    if not os.path.isdir(dst_root):
        return list(paths)  # the per-file path says "not there (unmounted disk?)"
    for path in paths:
        target = f"{dst_root}/{path}"
        if guard.link_above(path) is not None:
            left.append(path)  # the per-file path refuses it, as one file's error
            continue
        try:
            os.lstat(target)
        except FileNotFoundError:
            done = _copy_one(f"{src_root}/{path}", target, dst_root)
            if done is not None:
                created(Created(path, done[0], done[1], path, done[2]))  # the id is the path
                continue
        except OSError:
            pass
        left.append(path)  # something at the target path, or the copy went otherwise
    return left


def _copy_one(src: str, target: str, dst_root: str) -> tuple[os.stat_result, str, str] | None:
    """One new small file through a temporary file; None (and nothing left behind) when
    anything differs from the plain case."""
    try:
        fd = os.open(src, _SRC_FLAGS)
    except OSError:
        return None
    tmp = None
    try:
        before = os.fstat(fd)
        if not stat.S_ISREG(before.st_mode) or before.st_size > CHUNK:
            return None
        data = os.read(fd, before.st_size)
        tmp, out = _open_tmp(target, dst_root)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(out, view) :]
            after = os.stat(src)
            if len(data) != after.st_size or not same_version(before, after):
                return None  # changed while copied: the per-file path says so, and requeues
            os.utime(out if _UTIME_FD else tmp, ns=(after.st_atime_ns, after.st_mtime_ns))
            written = os.fstat(out)
        finally:
            os.close(out)
        os.link(tmp, target, follow_symlinks=False)  # never over a file that appeared meanwhile
        os.unlink(tmp)
        tmp = None
        return before, hashlib.md5(data).hexdigest(), _rev(written)
    except OSError:
        return None
    finally:
        os.close(fd)
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass  # swept by the next start


def _open_tmp(target: str, dst_root: str) -> tuple[str, int]:
    """A new temporary file beside ``target``; its folders made when missing, below a
    root that still exists (OSError otherwise, and on a name already taken)."""
    parent, _, name = target.rpartition("/")
    tmp = tmp_name(parent, name)
    try:
        return tmp, os.open(tmp, _TMP_FLAGS, 0o666)
    except FileNotFoundError:
        if not os.path.isdir(dst_root):
            raise
    os.makedirs(parent, exist_ok=True)
    return tmp, os.open(tmp, _TMP_FLAGS, 0o666)


def _link_noreplace(src: str, dst: str) -> None:
    """``_rename_noreplace`` for syncd's own temporary file (no checks on what ``src`` is)."""
    try:
        os.link(src, dst, follow_symlinks=False)
    except OSError as exc:
        if exc.errno not in _NO_LINKS:
            raise
        _rename_noreplace(Path(src), Path(dst))  # no hard links on this filesystem
    else:
        os.unlink(src)


def _rename_noreplace(src: Path, dst: Path) -> None:
    """Rename ``src`` to ``dst`` unless ``dst`` exists (FileExistsError then).

    Files: ``link`` + ``unlink``, atomic about the name.  Folders, and filesystems
    without hard links: a check just before the rename (a folder cannot hide a
    rename onto a non-empty folder anyway: ENOTEMPTY).
    """
    if not src.is_dir() or src.is_symlink():
        try:
            os.link(src, dst, follow_symlinks=False)
        except FileExistsError:
            if not _same_file(src, dst):
                raise
            os.rename(src, dst)  # a case-only rename on a case-insensitive disk
            return
        except OSError as exc:
            if exc.errno not in _NO_LINKS:
                raise
        else:
            os.unlink(src)
            return
    if os.path.lexists(dst) and not _same_file(src, dst):
        raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(dst))
    os.rename(src, dst)


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samestat(os.lstat(a), os.lstat(b))
    except OSError:
        return False


def _stat_or_none(path: Path | str) -> os.stat_result | None:
    try:
        return os.stat(path)
    except OSError:
        return None

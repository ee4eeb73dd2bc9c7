"""``local:`` — a plain folder as a mirror target (a FUSE-mounted Drive, a USB disk, a test).

Writes go to a temporary file in the destination folder and are renamed into
place, so a reader never sees a half-written file.  Deletions go to a
``.syncd-trash/`` folder inside the target, the local analogue of Drive's
trash.  A file's ``rev`` is ``size:mtime_ns`` of the target copy: cheap to
compare, and it changes when anyone else writes the file.
"""

from __future__ import annotations

import errno
import hashlib
import os
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from ..errors import FileChanged, FileError, TargetUnavailable, TransientError
from ..fileio import CHUNK, md5_file, open_source, same_version
from .base import RemoteEntry, UploadResult

TRASH = ".syncd-trash"
TMP_PREFIX = ".syncd-tmp-"

_FULL = {errno.ENOSPC, errno.EDQUOT}
_NAME_REJECTED = {errno.ENAMETOOLONG, errno.EINVAL, errno.EILSEQ}


def _rev(st: os.stat_result) -> str:
    return f"{st.st_size}:{st.st_mtime_ns}"


class LocalRemote:
    """A target folder on a mounted filesystem."""

    def __init__(self, address: str, root: Path) -> None:
        self.address = address
        self.root = root

    # --- helpers -------------------------------------------------------------

    def _abs(self, path: str) -> Path:
        return self.root / path

    def _target_error(self, path: str, exc: OSError) -> Exception:
        """Convert an errno from the target side into the engine's vocabulary."""
        if exc.errno in _FULL:
            return TargetUnavailable(
                f"the target disk of {self.address} is full", "free some space; syncd retries"
            )
        if exc.errno in _NAME_REJECTED:
            return FileError(path, f"the target rejected the name: {exc.strerror}")
        if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            return TargetUnavailable(
                f"cannot write to {self.address}: {exc.strerror}",
                "check the target folder's permissions",
            )
        if not self.root.is_dir():
            return TargetUnavailable(
                f"target folder {self.root} is not there (unmounted disk?)", "syncd retries"
            )
        return TransientError(f"writing {path} to {self.address} failed: {exc.strerror}")

    def _require_root(self) -> None:
        """Never recreate a vanished root as a side effect of writing into it."""
        if not self.root.is_dir():
            raise TargetUnavailable(
                f"target folder {self.root} is not there (unmounted disk?)", "syncd retries"
            )

    # --- Remote protocol -----------------------------------------------------

    def check(self, create: bool = False) -> None:
        if self.root.is_dir():
            if not os.access(self.root, os.W_OK | os.X_OK):
                raise TargetUnavailable(
                    f"cannot write to target folder {self.root}", "check its permissions"
                )
            return
        if create and not self.root.exists():
            try:
                self.root.mkdir(parents=True)
                return
            except OSError as exc:
                raise TargetUnavailable(
                    f"cannot create target folder {self.root}: {exc.strerror}"
                ) from exc
        raise TargetUnavailable(
            f"target folder {self.root} is not there (unmounted disk?)",
            "syncd waits for it to come back; create it to start over",
        )

    def list_all(self) -> Iterator[RemoteEntry]:
        self._require_root()
        stack = [""]
        while stack:
            rel_dir = stack.pop()
            try:
                entries = list(os.scandir(self.root / rel_dir if rel_dir else self.root))
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise self._target_error(rel_dir, exc) from exc
            for e in entries:
                rel = f"{rel_dir}/{e.name}" if rel_dir else e.name
                if rel == TRASH or e.name.startswith(TMP_PREFIX) or e.is_symlink():
                    continue
                if e.is_dir(follow_symlinks=False):
                    stack.append(rel)
                elif e.is_file(follow_symlinks=False):
                    st = e.stat(follow_symlinks=False)
                    yield RemoteEntry(rel, rel, st.st_size, None, _rev(st))

    def stat(self, path: str, known: RemoteEntry | None) -> RemoteEntry | None:
        self._require_root()  # "not there" must not be read as "this file is gone"
        target = self._abs(path)
        try:
            st = target.lstat()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise self._target_error(path, exc) from exc
        if os.path.isdir(target):
            return RemoteEntry(path, path, 0, None, None, True)
        rev = _rev(st)
        if known is not None and known.rev == rev and known.md5:
            return RemoteEntry(path, path, st.st_size, known.md5, rev)
        try:
            return RemoteEntry(path, path, st.st_size, md5_file(target), rev)
        except OSError as exc:
            raise self._target_error(path, exc) from exc

    def folder(self, path: str) -> RemoteEntry | None:
        target = self._abs(path)
        return RemoteEntry(path, path, 0, None, None, True) if target.is_dir() else None

    def upload(self, path: str, source: Path, replace: RemoteEntry | None) -> UploadResult:
        self._require_root()
        target = self._abs(path)
        src = os.fdopen(open_source(source, path), "rb")
        tmp: Path | None = None
        try:
            before = os.fstat(src.fileno())
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                tmp = target.with_name(f"{TMP_PREFIX}{secrets.token_hex(4)}-{target.name}"[:255])
                md5 = self._copy(src, tmp)
            except OSError as exc:
                raise self._target_error(path, exc) from exc
            after = _stat_or_none(source)
            if (
                after is None
                or not same_version(before, after)
                or not same_version(before, os.fstat(src.fileno()))
            ):
                raise FileChanged(path, "the file changed while it was being copied")
            try:
                os.utime(tmp, ns=(after.st_atime_ns, after.st_mtime_ns))
                os.replace(tmp, target)
                tmp = None
                st = target.stat()
            except OSError as exc:
                raise self._target_error(path, exc) from exc
            entry = RemoteEntry(path, path, st.st_size, md5, _rev(st))
            return UploadResult(entry, md5, before.st_size, before.st_mtime_ns)
        finally:
            src.close()
            if tmp is not None:
                tmp.unlink(missing_ok=True)

    @staticmethod
    def _copy(src: BinaryIO, tmp: Path) -> str:
        h = hashlib.md5()
        with open(tmp, "wb") as out:
            while chunk := src.read(CHUNK):
                h.update(chunk)
                out.write(chunk)
        return h.hexdigest()

    def move(self, entry: RemoteEntry, new_path: str) -> RemoteEntry:
        self._require_root()
        src, dst = self._abs(entry.path), self._abs(new_path)
        try:
            dst.parent.mkdir(parents=True, exist_ok=True)
            os.rename(src, dst)
            st = dst.stat()
        except FileNotFoundError as exc:
            raise FileError(entry.path, "it is no longer on the target") from exc
        except OSError as exc:
            raise self._target_error(new_path, exc) from exc
        return RemoteEntry(new_path, new_path, st.st_size, entry.md5, _rev(st), entry.is_dir)

    def trash(self, entry: RemoteEntry) -> None:
        self._require_root()
        dst = self.root / TRASH / entry.path
        if dst.exists():
            stamp = time.strftime("%Y-%m-%d %H%M%S")
            dst = dst.with_name(f"{dst.name} (deleted {stamp} {secrets.token_hex(2)})")
        try:
            dst.parent.mkdir(parents=True, exist_ok=True)
            os.rename(self._abs(entry.path), dst)
        except FileNotFoundError:
            return  # already gone: nothing left to keep
        except OSError as exc:
            raise self._target_error(entry.path, exc) from exc

    def prune_folder(self, path: str) -> None:
        """Remove ``path`` and its parents while they are empty (after their files were trashed)."""
        while path:
            try:
                os.rmdir(self._abs(path))
            except OSError:
                return
            path = path.rpartition("/")[0]

    def close(self) -> None:
        pass


def _stat_or_none(path: Path) -> os.stat_result | None:
    try:
        return os.stat(path)
    except OSError:
        return None

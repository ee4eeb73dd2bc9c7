"""``local:`` — a plain folder as a mirror target (a FUSE-mounted Drive, a USB disk, a test).

Writes go to a temporary file in the destination folder and are renamed into place, so a reader
never sees a half-written file; what a killed syncd left of such files is swept by the first
``check`` (only names of the form ``.syncd-tmp-XXXXXXXX-…``: one project per target, so they are
all ours). Deletions go to a ``.syncd-trash/`` folder inside the target, the local analogue of
Drive's trash. A file's ``rev`` is ``size:mtime_ns`` of the target copy: cheap to compare, and
it changes when anyone else writes the file.

Nothing here replaces what is already at a name it did not mean to replace: a create and a move
land with ``link`` (which fails on an existing name) rather than ``rename``, and every name
syncd makes up (temporary, trash, conflict) fits NAME_MAX in bytes.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import secrets
import stat
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from ..errors import FileChanged, FileError, TargetUnavailable, TransientError
from ..fileio import NAME_MAX, copy_with_md5, md5_file, open_source_stat, same_version
from .base import Features, OwnFileReads, RemoteEntry, UploadResult
from .bulk import Created
from .local_files import (
    _TMP_FLAGS,
    _UTIME_FD,
    TMP_PREFIX,
    LinkGuard,
    _link_noreplace,
    _rename_noreplace,
    _rev,
    _stat_or_none,
    copy_new,
    tmp_name,
    waits,
)

log = logging.getLogger("syncd.local")

TRASH = ".syncd-trash"
_OUR_TMP = re.compile(r"\.syncd-tmp-[0-9a-f]{8}-")
FEATURES = Features(
    stable_ids=False,  # the id is the path: a move changes it
    listing_md5=False,  # md5 means reading the target copy back
    prunes_folders=True,
    trash=True,  # .syncd-trash/
    duplicate_names=False,
    name_max_bytes=NAME_MAX,
)

_FULL = {errno.ENOSPC, errno.EDQUOT}
_NAME_REJECTED = {errno.ENAMETOOLONG, errno.EINVAL, errno.EILSEQ}
# Something of the wrong kind is at the name or on the way to it (a file where a folder
# should be, or the reverse): that path's problem, never the whole target's.
_IN_THE_WAY = {errno.ENOTDIR, errno.EEXIST, errno.EISDIR, errno.ENOTEMPTY}
_GONE = (FileNotFoundError, NotADirectoryError)


class LocalRemote(OwnFileReads):
    """A target folder on a mounted filesystem."""

    def __init__(self, address: str, root: Path) -> None:
        self.address = address
        self.root = root
        self._root = str(root)  # paths joined as strings: pathlib costs ~10 µs a join per file
        self.features = FEATURES
        self._swept = False
        self._bulk: bool | None = None  # copy new files in one loop (not on a waiting fs)
        self._links = LinkGuard(self._root)

    # --- helpers -------------------------------------------------------------

    def _abs(self, path: str) -> Path:
        return self.root / path

    def _no_link_above(self, *paths: str) -> None:
        for path in paths:
            link = self._links.link_above(path)
            if link is not None:
                raise FileError(path, f"{link}/ on the target is a symlink: never written through")

    def _target_error(self, path: str, exc: OSError) -> Exception:
        """Convert an errno from the target side into the engine's vocabulary."""
        if exc.errno in _FULL:
            return TargetUnavailable(
                f"the target disk of {self.address} is full", "free some space; syncd retries"
            )
        if exc.errno in _NAME_REJECTED:
            return FileError(path, f"the target rejected the name: {exc.strerror}")
        if exc.errno in _IN_THE_WAY:
            return FileError(path, f"something else is in the way on the target: {exc.strerror}")
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
        if not os.path.isdir(self._root):
            raise TargetUnavailable(
                f"target folder {self.root} is not there (unmounted disk?)", "syncd retries"
            )

    def check(self, create: bool = False) -> None:
        if self.root.is_dir():
            if not os.access(self.root, os.W_OK | os.X_OK):
                raise TargetUnavailable(
                    f"cannot write to target folder {self.root}", "check its permissions"
                )
            if not self._swept:
                self._sweep()
            self._bulk = None  # a mount may have come or gone: looked at again when needed
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

    def _sweep(self) -> None:
        """Remove the partial temporary files an interrupted run left (only syncd's names)."""
        removed = 0
        stack = [self.root]
        while stack:
            try:
                entries = list(os.scandir(stack.pop()))
            except OSError:
                continue
            for e in entries:
                if e.is_dir(follow_symlinks=False):
                    if e.path != str(self.root / TRASH):
                        stack.append(Path(e.path))
                elif _OUR_TMP.match(e.name):
                    try:
                        os.unlink(e.path)
                        removed += 1
                    except OSError:
                        pass
        if removed:
            log.info(
                "%s: removed %d partial temporary files of an earlier run", self.address, removed
            )
        self._swept = True

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
        self._no_link_above(path)
        target = os.path.join(self._root, path)
        try:
            st = os.lstat(target)
        except _GONE:  # NotADirectory: a parent is a file, so nothing is at this path
            self._require_root()  # "not there" must not be read as "this file is gone"
            return None
        except OSError as exc:
            raise self._target_error(path, exc) from exc
        if stat.S_ISDIR(st.st_mode):
            return RemoteEntry(path, path, 0, None, None, True)
        rev = _rev(st)
        if known is not None and known.rev == rev and known.md5:
            return RemoteEntry(path, path, st.st_size, known.md5, rev)
        try:
            return RemoteEntry(path, path, st.st_size, md5_file(target), rev)
        except OSError as exc:
            raise self._target_error(path, exc) from exc

    def folder(self, path: str) -> RemoteEntry | None:
        try:
            is_dir = stat.S_ISDIR(self._abs(path).lstat().st_mode)
        except OSError:
            is_dir = False
        return RemoteEntry(path, path, 0, None, None, True) if is_dir else None

    def upload(self, path: str, source: Path | str, replace: RemoteEntry | None) -> UploadResult:
        """Copy ``source`` to a temporary file beside ``path``, then rename it into place.

        The md5 is taken while copying (each byte read once), the temporary file gets the
        source's mtime, and the version copied is checked against the source's stat before
        and after (``FileChanged`` when it moved meanwhile: the copy is dropped).
        """
        self._no_link_above(path)
        target = os.path.join(self._root, path)
        source = os.fspath(source)
        fd, before = open_source_stat(source, path)
        tmp: str | None = None
        try:
            try:
                tmp, out = self._open_tmp(target)
                try:
                    md5, copied = copy_with_md5(fd, out, before.st_size)
                    after = _stat_or_none(source)
                    # ``after`` is the path's stat: same inode, size and mtime as the open
                    # file's ``before`` means the path still holds the version just copied.
                    if after is None or not same_version(before, after) or copied != after.st_size:
                        raise FileChanged(path, "the file changed while it was being copied")
                    times = (after.st_atime_ns, after.st_mtime_ns)
                    os.utime(out if _UTIME_FD else tmp, ns=times)
                    written = os.fstat(out)
                finally:
                    os.close(out)
            except OSError as exc:
                raise self._target_error(path, exc) from exc
            try:
                if replace is None:  # a new file: never over one that appeared meanwhile
                    _link_noreplace(tmp, target)
                else:
                    os.replace(tmp, target)
                tmp = None
            except FileExistsError as exc:
                if not os.path.isdir(target):  # someone wrote it since stat: look again
                    raise TransientError(f"{path} appeared on {self.address} meanwhile") from exc
                raise self._target_error(path, exc) from exc
            except OSError as exc:
                raise self._target_error(path, exc) from exc
            entry = RemoteEntry(path, path, written.st_size, md5, _rev(written))
            return UploadResult(entry, md5, before.st_size, before.st_mtime_ns)
        finally:
            os.close(fd)
            if tmp is not None:
                try:
                    os.unlink(tmp)
                except OSError:
                    pass  # swept by the next start

    def create_new(
        self, source_root: Path, paths: Iterable[str], created: Callable[[Created], None]
    ) -> list[str]:
        """``upload`` of many new files at once (``remotes.bulk.CreatesNew``): see
        ``local_files.copy_new``; returns the paths left to ``upload`` — all of them on a
        network or FUSE mount (``local_files.waits``), where upload threads overlap."""
        if self._bulk is None:
            self._bulk = not waits(self._root)
        if not self._bulk:
            return list(paths)
        return copy_new(os.fspath(source_root), self._root, paths, created, self._links)

    def _open_tmp(self, target: str) -> tuple[str, int]:
        """A new temporary file beside ``target`` (its folders made when missing, below a
        root that must exist: a vanished root is never recreated as a side effect)."""
        parent, name = os.path.split(target)
        made = False
        while True:
            tmp = tmp_name(parent, name)
            try:
                return tmp, os.open(tmp, _TMP_FLAGS, 0o666)
            except FileExistsError:
                continue  # another temporary file has that name: draw again
            except FileNotFoundError:
                if made:
                    raise
                self._require_root()
                os.makedirs(parent, exist_ok=True)
                made = True

    def move(self, entry: RemoteEntry, new_path: str) -> RemoteEntry:
        self._require_root()
        self._no_link_above(entry.path, new_path)
        src, dst = self._abs(entry.path), self._abs(new_path)
        try:
            dst.parent.mkdir(parents=True, exist_ok=True)
            _rename_noreplace(src, dst)
            st = dst.stat()
        except FileNotFoundError as exc:
            raise FileError(entry.path, "it is no longer on the target") from exc
        except OSError as exc:
            raise self._target_error(new_path, exc) from exc
        return RemoteEntry(new_path, new_path, st.st_size, entry.md5, _rev(st), entry.is_dir)

    def trash(self, entry: RemoteEntry) -> None:
        self._require_root()
        self._no_link_above(entry.path)
        try:
            dst = self._free_trash_path(entry.path)
            dst.parent.mkdir(parents=True, exist_ok=True)
            _rename_noreplace(self._abs(entry.path), dst)
        except _GONE:
            return  # already gone: nothing left to keep
        except OSError as exc:
            raise self._target_error(entry.path, exc) from exc

    def _free_trash_path(self, path: str) -> Path:
        """Where ``path`` goes in the trash: its own path there, unless a name on the way is
        taken (trashed before, or a file where a folder must be).  That name then gets a
        ``" (deleted STAMP)"`` suffix, or — when the suffix would not fit NAME_MAX bytes —
        goes whole into a ``"(deleted STAMP)"`` folder of its own."""
        stamp = f"(deleted {time.strftime('%Y-%m-%d %H%M%S')} {secrets.token_hex(2)})"
        parts = path.split("/")
        cur = self.root / TRASH
        for i, part in enumerate(parts):
            cand = cur / part
            last = i == len(parts) - 1
            taken = os.path.lexists(cand) and (last or not cand.is_dir() or cand.is_symlink())
            if not taken:
                cur = cand
            elif len(os.fsencode(f"{part} {stamp}")) <= NAME_MAX:
                cur = cur / f"{part} {stamp}"
            else:
                cur = cur / stamp / part
        return cur

    def folder_is_empty(self, path: str) -> bool:
        try:
            with os.scandir(self._abs(path)) as it:
                return not any(True for _ in it)
        except _GONE:
            return True
        except OSError as exc:
            raise self._target_error(path, exc) from exc

    def leftovers(self) -> Iterator[tuple[str, RemoteEntry | None]]:
        """Nothing beyond the partial temp files ``check`` sweeps: a create lands by one
        rename, microseconds before the engine's index row (a kill in between is not covered;
        Drive's create, a request in flight, is)."""
        return iter(())

    def forget_leftover(self, path: str) -> None:
        pass

    def prune_folder(self, path: str) -> None:
        """Remove ``path`` and its parents while they are empty (after their files were trashed)."""
        while path:
            try:
                os.rmdir(self._abs(path))
            except OSError:
                return
            path = path.rpartition("/")[0]

    def begin_batch(self) -> None:
        self._links.reset()  # every stat asks the folder itself; only links are remembered

    def close(self) -> None:
        pass

"""Putting a Drive file in place in the project folder, and taking one away: the local side.

A file comes down into a temp file in its own folder (``.syncd-tmp-pull-*``,
never mirrored), is checked against Drive's md5Checksum, fsynced, and renamed
over the path; only then is it recorded (``records``), so a kill at any point
leaves either the old file or the new one, and a restart either adopts the new
one (same md5) or fetches it again.

What is at the path decides what happens to it, and nothing local is ever
overwritten or deleted:

- nothing, or the file syncd pulled there, unchanged since (inode, size, mtime):
  replaced;
- a file with Drive's md5 already: recorded, not downloaded;
- anything else (edited since it was pulled, or never pulled): renamed to a
  conflict name (``fileio.conflict_name``, as the mirror names its conflicts)
  just before the new file takes the path;
- a symlink, a folder, or a symlink/file on the way: the file is not pulled
  (syncd never writes through a symlink, nor outside the project); it stays
  pending and is tried again at every poll.

A local write error (a full disk, a read-only folder, a file-size limit) is
said as "cannot write into PATH: reason" (``FileError``), never blamed on the
network; the file stays pending too.

A file deleted or trashed on Drive (the one with the Drive id recorded at the
path, never another file that took the path meanwhile) moves to
``<project>/.syncd-trash/<UTC time>/<path>`` (never mirrored, never
snapshotted), edited or not.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
import tempfile
import time
from pathlib import Path
from typing import BinaryIO, Protocol

from ..errors import FileError, TransientError
from ..fileio import conflict_name, md5_file
from .records import Pulled, PullRecords

log = logging.getLogger("syncd.pull")

TRASH = ".syncd-trash"
TMP_PREFIX = ".syncd-tmp-pull-"


def _file_mode() -> int:
    """The mode a new file gets from this process's umask (mkstemp's own is 0600).

    Read from /proc on Linux: ``os.umask`` can only be read by setting it, which
    would race with other threads creating files.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return 0o644


def _stamp(fd: int) -> os.stat_result:
    """The downloaded temp file's stat as recorded, its mtime set 1 ns back first.

    The kernel stamps writes with a coarse clock (one tick is milliseconds): an
    in-place, same-size edit right after the rename could get the very mtime the
    download's last write got, and look unedited.  One nanosecond back, any later
    write's mtime (this tick or a later one) differs from the record.
    """
    st = os.fstat(fd)
    os.utime(fd, ns=(st.st_atime_ns, st.st_mtime_ns - 1))
    os.fsync(fd)
    return os.fstat(fd)


class RemoteFile(Protocol):
    @property
    def id(self) -> str: ...

    @property
    def md5(self) -> str | None: ...

    @property
    def rev(self) -> str | None: ...

    @property
    def parent(self) -> str | None: ...


class Downloader(Protocol):
    def download(self, file_id: str, out: BinaryIO, path: str) -> str: ...


class Landing:
    """One project's folder, as the return path writes into it."""

    def __init__(self, name: str, root: Path, records: PullRecords, source: Downloader) -> None:
        self.name = name
        self.root = root
        self.records = records
        self.source = source
        self._told: set[str] = set()  # skipped paths already logged (once each)

    def skip(self, path: str, why: str) -> None:
        """Say once that ``path`` is not pulled, and why."""
        self._skip(path, why)

    def _skip(self, path: str, why: str) -> None:
        if path not in self._told:
            self._told.add(path)
            log.warning("%s: not pulling %s: %s", self.name, path, why)

    def _blocked(self, path: str) -> str | None:
        """Why ``path`` cannot be written safely, or None."""
        cur = self.root
        parts = path.split("/")
        for i, part in enumerate(parts):
            cur = cur / part
            try:
                st = os.lstat(cur)
            except FileNotFoundError:
                return None
            if stat.S_ISLNK(st.st_mode):
                return f"{cur.relative_to(self.root)} is a symlink (syncd never writes through one)"
            last = i == len(parts) - 1
            if not last and not stat.S_ISDIR(st.st_mode):
                return f"{cur.relative_to(self.root)} is a file where Drive has a folder"
            if last and not stat.S_ISREG(st.st_mode):
                return "a folder or special file is at that path locally"
        return None

    def _mkdirs(self, path: str) -> Path:
        folder = self.root
        for part in path.split("/")[:-1]:
            folder = folder / part
            with contextlib.suppress(FileExistsError):
                os.mkdir(folder)
        return folder

    # --- a file comes down ---------------------------------------------------------

    def land(self, path: str, item: RemoteFile) -> None:
        """Bring ``item`` to ``path`` unless it is there already (see the module docstring)."""
        if not item.md5:
            self._skip(path, "a Google Docs/Sheets file or shortcut has no content to download")
            return
        rec = self.records.get(path)
        if rec is not None and rec.id == item.id and rec.md5 == item.md5:
            return  # pulled already; a local edit since stays until Drive's file changes
        why = self._blocked(path)
        if why is not None:
            raise FileError(path, why)
        dest = self.root / path
        try:
            self._fetch(path, dest, item, rec)
        except OSError as exc:  # the local side; the temp file's name is not news
            raise FileError(path, f"cannot write into {path}: {exc.strerror or exc}") from exc

    def _fetch(self, path: str, dest: Path, item: RemoteFile, rec: Pulled | None) -> None:
        try:
            st: os.stat_result | None = os.lstat(dest)
        except FileNotFoundError:
            st = None
        if st is not None and md5_file(dest) == item.md5:
            self._record(path, item, os.lstat(dest))  # same bytes: nothing to download
            return
        folder = self._mkdirs(path)
        fd, tmp = tempfile.mkstemp(prefix=TMP_PREFIX, dir=folder)
        try:
            os.fchmod(fd, _file_mode())
            with os.fdopen(fd, "w+b") as out:
                got = self.source.download(item.id, out, path)
                mine = _stamp(out.fileno())
            if got != item.md5:
                raise TransientError(
                    f"{path}: the download's md5 differs from Drive's (it changed meanwhile)"
                )
            self._make_way(path, dest, rec)
            os.replace(tmp, dest)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        # Recorded from the temp file, not by an lstat of ``dest`` after the rename: an
        # edit between the rename and that lstat would have been taken for syncd's own
        # copy and overwritten later without a conflict copy (inode, size and mtime
        # survive the rename).
        self._record(path, item, mine)
        self.records.count("files_pulled")
        log.info("%s: pulled %s", self.name, path)

    def _make_way(self, path: str, dest: Path, rec: Pulled | None) -> None:
        """Move a local file that is not the one syncd pulled to a conflict name."""
        try:
            st = os.lstat(dest)
        except FileNotFoundError:
            return
        if rec is not None and rec.same_local(st):
            return  # syncd's own copy, unchanged: the new version replaces it
        when = time.time()
        n = 1
        kept = conflict_name(path, when)
        while os.path.lexists(self.root / kept):
            n += 1
            kept = conflict_name(path, when, n)
        os.rename(dest, self.root / kept)
        self.records.count("conflicts")
        what = "edited here since it was pulled" if rec is not None else "never pulled and differs"
        log.warning(
            "%s: %s changed on Drive, but the local file was %s: kept it as %s",
            self.name,
            path,
            what,
            kept,
        )

    def _record(self, path: str, item: RemoteFile, st: os.stat_result) -> None:
        assert item.md5 is not None
        rec = Pulled(
            item.id, item.md5, item.rev, st.st_size, st.st_ino, st.st_mtime_ns, item.parent
        )
        self.records.put(path, rec)

    # --- a file goes away on Drive -------------------------------------------------

    def trash(self, path: str, file_id: str, why: str = "deleted on Drive") -> None:
        """Move the local copy of the file ``file_id`` pulled to ``path`` to the local trash
        and forget the record; nothing when the path's record is another file's by now
        (an atomic save on Drive: the new file took the title before the old one left)."""
        rec = self.records.get(path)
        if rec is None or rec.id != file_id:
            return
        self.records.forget(path)
        dest = self.root / path
        if self._blocked(path) is not None or not os.path.lexists(dest):
            return
        if (
            os.path.islink(self.root / TRASH)
            or os.path.lexists(self.root / TRASH)
            and not (self.root / TRASH).is_dir()
        ):
            self._skip(path, f"{TRASH} is not a plain folder; the local copy stays where it is")
            return
        st = os.lstat(dest)
        edited = rec is None or not rec.same_local(st)
        stamp = time.strftime("%Y-%m-%dT%H%M%SZ", time.gmtime())
        target = self.root / TRASH / stamp / path
        target.parent.mkdir(parents=True, exist_ok=True)
        n = 1
        while os.path.lexists(target):
            n += 1
            target = self.root / TRASH / f"{stamp}-{n}" / path
            target.parent.mkdir(parents=True, exist_ok=True)
        os.rename(dest, target)
        self.records.count("trashed")
        note = " (it had local edits since it was pulled; they are in the trash copy)"
        log.info(
            "%s: %s was %s: moved to %s%s",
            self.name,
            path,
            why,
            target.relative_to(self.root),
            note if edited else "",
        )

    def clean_temps(self, folders: tuple[str, ...]) -> None:
        """Remove temp files a killed download left in the pull folders (never followed
        through a symlink)."""
        for folder in folders:
            top = self.root / folder.rstrip("/")
            if self._blocked(folder.rstrip("/") + "/x") is not None or not top.is_dir():
                continue
            for dirpath, _dirs, files in os.walk(top):
                for name in files:
                    if name.startswith(TMP_PREFIX):
                        with contextlib.suppress(FileNotFoundError):
                            os.unlink(os.path.join(dirpath, name))

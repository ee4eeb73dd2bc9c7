"""A consistent staging copy of the selected files, each one a complete version.

Every file is copied (never hard-linked: a later in-place edit would change the
snapshot) into a private temp folder, md5'd while copying and checked after
copying; a file that changed meanwhile, or was modified too recently to be sure
it is complete, is copied again once it is quiet.  A file that never settles
within the deadline is left out and named in the notes, never staged torn.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import stat
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import SyncdError
from ..fileio import CHUNK, same_version
from .manifest import FileEntry

log = logging.getLogger("syncd.snapshot")


def _env_float(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        return default


def quiet_seconds() -> float:
    """A file modified less than this long ago may still be being written: copy it later.

    Also the bound on mtime granularity the torn-copy check relies on: a write during the
    copy must move the mtime, which holds once the file is older than the clock tick
    (nanoseconds on ext4/tmpfs/APFS, 1 s on HFS+/ext3), so keep it at 1 s or more there.
    """
    return _env_float("SYNCD_SNAPSHOT_QUIET_S", 1.0)


def settle_seconds() -> float:
    """How long a snapshot waits for the mirror, and for files that keep changing."""
    return _env_float("SYNCD_SNAPSHOT_SETTLE_S", 60.0)


@dataclass
class StagedSnapshot:
    """A private folder holding a consistent copy of the selected files."""

    folder: Path
    files: dict[str, FileEntry] = field(default_factory=dict)
    mtimes: dict[str, int] = field(default_factory=dict)  # mtime_ns of each copied version
    left_out: dict[str, str] = field(default_factory=dict)  # path → why
    copies: int = 0  # files copied, counting the ones copied again

    def cleanup(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


@dataclass(frozen=True)
class _Retry:
    ready_ns: int  # wall-clock time (ns) after which copying again makes sense


_GONE = object()  # vanished between the walk and the copy: it is not in the project any more


def _staging_failed(folder: Path, exc: OSError) -> SyncdError:
    # The project's files are fine; the staging folder is not (full disk, quota).
    return SyncdError(
        f"cannot write the snapshot's staging copy in {folder.parent}: {exc.strerror}",
        "free some space there, or point TMPDIR at a roomier disk",
    )


def _copy_one(
    root: Path, folder: Path, rel: str, quiet_ns: int, progress: Callable[[int], None] | None
) -> tuple[FileEntry, int] | _Retry | str | object:
    """Copy one file; (entry, mtime_ns) if the copy is a complete version, else why not."""
    src = os.path.join(root, rel)
    now = time.time_ns()
    try:
        fd = os.open(src, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return _GONE
    except OSError as exc:
        return f"cannot read: {exc.strerror}"
    try:
        before = os.fstat(fd)
        if not stat.S_ISREG(before.st_mode):
            return _GONE
        # Modified just now: a writer may be between its truncate and its last write with
        # the same coarse mtime tick, which no before/after comparison can see.
        if abs(now - before.st_mtime_ns) < quiet_ns:
            return _Retry(before.st_mtime_ns + quiet_ns)
        dst = folder / rel
        digest = hashlib.md5()
        copied = 0
        try:
            dst.parent.mkdir(parents=True, exist_ok=True)
            out = open(dst, "wb")  # noqa: SIM115 - closed below; its errors are not read errors
        except OSError as exc:
            raise _staging_failed(folder, exc) from None
        with out:
            while chunk := os.read(fd, CHUNK):
                digest.update(chunk)
                try:
                    out.write(chunk)
                except OSError as exc:
                    raise _staging_failed(folder, exc) from None
                copied += len(chunk)
                if progress:
                    progress(len(chunk))
            try:
                out.flush()
            except OSError as exc:
                raise _staging_failed(folder, exc) from None
        after = os.fstat(fd)
    except OSError as exc:
        return f"cannot read: {exc.strerror}"
    finally:
        os.close(fd)
    try:
        now_at_path = os.stat(src, follow_symlinks=False)
    except FileNotFoundError:
        now_at_path = None
    if (
        copied != before.st_size
        or not same_version(before, after)
        or now_at_path is None
        or not same_version(before, now_at_path)
    ):
        if progress:
            progress(-copied)
        return _Retry(time.time_ns() + quiet_ns)
    os.utime(dst, ns=(before.st_atime_ns, before.st_mtime_ns))
    return FileEntry(copied, digest.hexdigest()), before.st_mtime_ns


def stage(
    root: Path,
    paths: Iterable[str],
    *,
    quiet_s: float | None = None,
    settle_s: float | None = None,
    progress: Callable[[int], None] | None = None,
    parent: Path | None = None,
) -> StagedSnapshot:
    """Copy ``paths`` of ``root`` into a new private folder, each as one complete version.

    Files modified within ``quiet_s`` or changed while being copied are copied
    again when they are quiet; after ``settle_s`` the ones still changing are left out.
    """
    quiet_ns = int((quiet_seconds() if quiet_s is None else quiet_s) * 1e9)
    deadline = time.monotonic() + (settle_seconds() if settle_s is None else settle_s)
    folder = Path(tempfile.mkdtemp(prefix="syncd-snapshot-", dir=parent))
    staged = StagedSnapshot(folder)
    pending = sorted(paths)
    try:
        while pending:
            waiting: list[tuple[str, int]] = []
            for rel in pending:
                outcome = _copy_one(root, folder, rel, quiet_ns, progress)
                staged.copies += isinstance(outcome, tuple)
                if isinstance(outcome, tuple):
                    staged.files[rel], staged.mtimes[rel] = outcome
                elif isinstance(outcome, _Retry):
                    waiting.append((rel, outcome.ready_ns))
                elif isinstance(outcome, str):
                    staged.left_out[rel] = outcome
                    log.warning("leaving %s out of the snapshot: %s", rel, outcome)
            if not waiting:
                break
            left = deadline - time.monotonic()
            if left <= 0:
                for rel, _ in waiting:
                    staged.left_out[rel] = "it kept changing while being copied"
                    log.warning("leaving %s out of the snapshot: it kept changing", rel)
                break
            first_ready = min(ready for _, ready in waiting)
            time.sleep(min(left, max(0.01, (first_ready - time.time_ns()) / 1e9)))
            pending = [rel for rel, _ in waiting]
    except BaseException:
        staged.cleanup()
        raise
    return staged

"""What goes into a snapshot, its manifest, a consistent staging copy, and its notes.

Owns, with no knowledge of where snapshots go:

* the selection: the files a mirror would see (ignore rules and the secrets
  guard, via ``scan.walk``), narrowed by the project's ``snapshot.include`` /
  ``snapshot.exclude`` and by names the caller reserves;
* the manifest (path → size, md5) and its hash over paths, sizes and md5s
  only, so two snapshots of the same content have the same hash whatever the
  time, trigger or git state;
* the "unchanged" decision without re-reading files whose size and mtime match
  a known md5 (the mirror's index or the snapshot hash cache);
* the staging copy: every file is copied (never hard-linked: a later in-place
  edit would change the snapshot) into a private temp folder and checked after
  copying; a file that changed meanwhile, or was modified too recently to be
  sure it is complete, is copied again once it is quiet.  A file that never
  settles within the deadline is left out and named in the notes, never staged
  torn;
* the version notes.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import stat
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pathspec import GitIgnoreSpec

from ..errors import SyncdError
from ..fileio import CHUNK, md5_file, same_version
from ..localfs.ignore import IgnoreRules
from ..localfs.walk import LocalFile, walk
from .gitinfo import GitInfo

log = logging.getLogger("syncd.snapshot")

MANIFEST_NAME = "syncd-snapshot.json"
MANIFEST_FORMAT = 1
MAX_NOTES_CHARS = 2000
MAX_LISTED_CHANGES = 10


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


@dataclass(frozen=True)
class FileEntry:
    size: int
    md5: str


def manifest_hash(files: Mapping[str, FileEntry]) -> str:
    """sha256 over sorted (path, size, md5): equal content, equal hash."""
    rows = [[path, files[path].size, files[path].md5] for path in sorted(files)]
    return hashlib.sha256(json.dumps(rows, separators=(",", ":")).encode()).hexdigest()


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def human_bytes(n: int) -> str:
    value = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1024 or unit == "TB":
            return f"{n} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


@dataclass
class SnapshotManifest:
    """``syncd-snapshot.json``: what a snapshot holds and where it came from."""

    project: str
    created_at: float
    trigger: str
    files: dict[str, FileEntry]
    message: str | None = None
    git: GitInfo | None = None

    @property
    def hash(self) -> str:
        return manifest_hash(self.files)

    @property
    def total_bytes(self) -> int:
        return sum(entry.size for entry in self.files.values())

    def to_json(self) -> dict[str, Any]:
        return {
            "format": MANIFEST_FORMAT,
            "project": self.project,
            "created_at": iso(self.created_at),
            "trigger": self.trigger,
            "message": self.message,
            "git": self.git.to_dict() if self.git else None,
            "file_count": len(self.files),
            "bytes": self.total_bytes,
            "manifest_hash": self.hash,
            "files": {
                path: {"size": self.files[path].size, "md5": self.files[path].md5}
                for path in sorted(self.files)
            },
        }

    def write(self, folder: Path) -> Path:
        path = folder / MANIFEST_NAME
        path.write_text(json.dumps(self.to_json(), indent=1) + "\n", encoding="utf-8")
        return path


def files_to_json(files: Mapping[str, FileEntry]) -> str:
    return json.dumps({p: [e.size, e.md5] for p, e in files.items()}, separators=(",", ":"))


def files_from_json(text: str) -> dict[str, FileEntry]:
    return {p: FileEntry(int(v[0]), str(v[1])) for p, v in json.loads(text).items()}


# --- selection ---------------------------------------------------------------------------------


class SnapshotSelection:
    """Which files of a project go into its snapshots.

    ``rules`` are the mirror's (shared with the daemon's watcher, so a changed
    .gitignore counts at once); ``include`` keeps only matching paths,
    ``exclude`` and ``extra_exclude`` (patterns of the destination's own) drop
    paths, and ``reserved`` top-level names are left out with a warning because
    the destination would silently drop or overwrite them.
    """

    def __init__(
        self,
        root: Path,
        rules: IgnoreRules,
        include: Iterable[str] = (),
        exclude: Iterable[str] = (),
        *,
        extra_exclude: Iterable[str] = (),
        reserved: Iterable[str] = (),
    ) -> None:
        self.root = Path(root)
        self.rules = rules
        include = [p for p in include if p.strip()]
        self._include = GitIgnoreSpec.from_lines(include) if include else None
        self._exclude = GitIgnoreSpec.from_lines([*extra_exclude, *exclude])
        self._reserved = {MANIFEST_NAME, *reserved}
        self._warned: set[str] = set()

    def wanted(self, rel: str) -> bool:
        if rel in self._reserved:
            if rel not in self._warned:
                self._warned.add(rel)
                log.warning("leaving %s out of snapshots: the name is reserved at the top", rel)
            return False
        if self._include is not None and not self._include.match_file(rel):
            return False
        return not self._exclude.match_file(rel)

    def files(self) -> dict[str, LocalFile]:
        """Regular files to snapshot, by relative path (symlinks are never followed)."""
        found = walk(self.root, self.rules)
        for rel, why in found.skipped.items():
            log.debug("snapshot skips %s: %s", rel, why)
        return {rel: lf for rel, lf in found.files.items() if self.wanted(rel)}


# --- unchanged decision ---------------------------------------------------------------------------

Md5Cache = Mapping[str, tuple[int, int, str]]  # path → (size, mtime_ns, md5)


def known_md5s(files: Mapping[str, LocalFile], *caches: Md5Cache) -> dict[str, str]:
    """md5s that can be trusted without reading: the cache row has the file's size and mtime."""
    known: dict[str, str] = {}
    for rel, lf in files.items():
        for cache in caches:
            row = cache.get(rel)
            if row is not None and row[0] == lf.size and row[1] == lf.mtime_ns:
                known[rel] = row[2]
                break
    return known


def same_as(
    root: Path,
    files: Mapping[str, LocalFile],
    known: Mapping[str, str],
    last: Mapping[str, FileEntry],
) -> tuple[bool, dict[str, str]]:
    """Whether ``files`` hold exactly ``last``'s content, and the md5s computed to find out.

    Paths and sizes are compared first; only when they all match are md5s needed,
    and only files without a known md5 are read.
    """
    if len(files) != len(last) or any(
        (entry := last.get(rel)) is None or entry.size != lf.size for rel, lf in files.items()
    ):
        return False, {}
    hashed: dict[str, str] = {}
    for rel in files:
        md5 = known.get(rel)
        if md5 is None:
            try:
                md5 = hashed[rel] = md5_file(root / rel)
            except OSError:
                return False, hashed
        if md5 != last[rel].md5:
            return False, hashed
    return True, hashed


# --- staging copy -------------------------------------------------------------------------------


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


# --- notes --------------------------------------------------------------------------------------


@dataclass
class Changes:
    added: list[str] = field(default_factory=list)
    modified: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.added) + len(self.modified) + len(self.removed)


def diff(old: Mapping[str, FileEntry], new: Mapping[str, FileEntry]) -> Changes:
    changes = Changes()
    for rel, entry in new.items():
        before = old.get(rel)
        if before is None:
            changes.added.append(rel)
        elif before != entry:
            changes.modified.append(rel)
    changes.removed = sorted(rel for rel in old if rel not in new)
    return changes


def _short(path: str, width: int = 80) -> str:
    return path if len(path) <= width else "…" + path[-(width - 1) :]


def compose_notes(
    *,
    message: str | None,
    trigger: str,
    git: GitInfo | None,
    files: Mapping[str, FileEntry],
    changes: Changes | None,
    since_version: int | None,
    mtimes: Mapping[str, int] | None = None,
    left_out: Mapping[str, str] | None = None,
) -> str:
    """Version notes: message, trigger, git, size, and the most recently edited changes first."""
    text = (message or "").strip()
    if len(text) > MAX_NOTES_CHARS // 2:  # keep room for what only syncd can say
        text = text[: MAX_NOTES_CHARS // 2 - 1] + "…"
    lines = [text] if text else []
    lines.append(f"trigger: {trigger}")
    if git is not None:
        where = f" on {git.branch}" if git.branch else " (detached HEAD)"
        lines.append(f"git: {git.describe}{where}, commit {git.commit[:12]}")
    total = sum(entry.size for entry in files.values())
    lines.append(f"files: {len(files)}, {human_bytes(total)}")
    if changes is None:
        lines.append("first snapshot")
    else:
        since = f"v{since_version}" if since_version is not None else "the last snapshot"
        lines.append(
            f"changed since {since}: {len(changes.modified)} modified, "
            f"{len(changes.added)} added, {len(changes.removed)} removed"
        )
        mt = mtimes or {}
        # The files edited last are the ones the person remembers: list those first.
        touched = sorted(
            [("M", p) for p in changes.modified] + [("A", p) for p in changes.added],
            key=lambda item: -mt.get(item[1], 0),
        ) + [("D", p) for p in changes.removed]
        for mark, path in touched[:MAX_LISTED_CHANGES]:
            lines.append(f"  {mark} {_short(path)}")
        if len(touched) > MAX_LISTED_CHANGES:
            lines.append(f"  … and {len(touched) - MAX_LISTED_CHANGES} more")
    if left_out:
        names = ", ".join(_short(p, 60) for p in sorted(left_out)[:5])
        more = f" and {len(left_out) - 5} more" if len(left_out) > 5 else ""
        lines.append(f"left out (changing or unreadable): {names}{more}")
    notes = "\n".join(lines)
    if len(notes) > MAX_NOTES_CHARS:
        notes = notes[: MAX_NOTES_CHARS - 2].rsplit("\n", 1)[0] + "\n…"
    return notes

"""The mirror engine: settled changes → operations on a remote, for one project.

Every batch is reconciled against the disk and the index, never replayed from
events: a path that exists locally and differs from the index is uploaded, a
path in the index that is gone locally is trashed, and a known move is a move.
The index is written only after the remote confirmed, so a crash at any point
leaves work that the next full scan finds (the only recovery mechanism).

Order within a batch: moves, then uploads (a bounded worker pool), then
deletions — a delete never runs before the upload that might have replaced it.
Per-file problems are recorded and skipped; problems with the remote as a
whole (offline, auth, missing target) stop the batch, put its paths back and
change the project's state until the remote answers again.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import stat
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ..db.statedb import FileRecord, StateDB
from ..errors import AuthRequired, FileChanged, FileError, RemoteError, TransientError
from ..fileio import conflict_name, md5_file, open_source
from ..localfs.ignore import IgnoreRules
from ..localfs.walk import walk
from ..remotes.base import Remote, RemoteEntry
from ..retry import ENGINE_OPERATIONS, ENGINE_RECOVERY_REMOTE, ENGINE_RECOVERY_UNEXPECTED
from .coalescer import Coalescer
from .compare import compare
from .model import MirrorStatus, PauseKind, ProjectState

log = logging.getLogger("syncd.mirror")

GUARD_MIN_FILES = 50  # mass-deletion guard: at least this many files...
GUARD_SHARE = 0.5  # ...and more than this share of the tracked files, in one batch
UPLOAD_SLICE = 512  # uploads handed to the pool at a time


def _entry(rec: FileRecord | None) -> RemoteEntry | None:
    if rec is None:
        return None
    return RemoteEntry(rec.path, rec.remote_id, rec.size, rec.md5, rec.remote_rev)


class MirrorEngine:
    """Mirrors one project folder to one remote; ``run`` is the project's thread."""

    def __init__(
        self,
        name: str,
        root: Path,
        rules: IgnoreRules,
        remote: Remote,
        db: StateDB,
        coalescer: Coalescer,
        *,
        deletions: str = "trash",
        workers: int = 4,
        on_folder_back: Callable[[], None] | None = None,
    ) -> None:
        self.name = name
        self.root = root
        self.rules = rules
        self.remote = remote
        self.db = db
        self.coalescer = coalescer
        self.deletions = deletions
        self.workers = workers
        self.on_folder_back = on_folder_back
        self.log = log
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._state = ProjectState.STARTING
        self._reason: str | None = None
        self._global_error: str | None = None
        self._file_errors: dict[str, str] = {}
        self._reported: set[tuple[str, str]] = set()
        self._in_flight = 0
        self._batch_left = 0
        self._needs_scan = True
        self._confirm_deletes = False
        self.heartbeat = time.monotonic()  # the loop's last turn: a stale one means hung
        rec = db.project(name)
        self._pause: PauseKind | None = None
        if rec.paused:
            self._pause = PauseKind(rec.paused)
            self._state, self._reason = ProjectState.PAUSED, rec.pause_reason

    # --- state ---------------------------------------------------------------

    def _set_state(self, state: ProjectState, reason: str | None = None) -> None:
        with self._lock:
            if state == self._state and reason == self._reason:
                return
            old, self._state, self._reason = self._state, state, reason
        self.log.info(
            "%s: %s → %s%s", self.name, old.value, state.value, f" ({reason})" if reason else ""
        )
        error = (
            reason
            if state in (ProjectState.OFFLINE, ProjectState.AUTH_REQUIRED, ProjectState.ERROR)
            else None
        )
        try:
            self.db.set_state(self.name, state.value, error)
        except sqlite3.Error as exc:  # the state must change even if the db can't record it
            self.log.warning("%s: cannot record the state in the state db: %s", self.name, exc)

    @property
    def state(self) -> ProjectState:
        return self._state

    def wait_settled(self, timeout: float) -> bool:
        """Block until no local change is pending or being copied (a snapshot waits for this)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._pause is not None:
                return False  # nothing moves while paused; don't wait for it
            busy = self._needs_scan or len(self.coalescer) or self._batch_left or self._in_flight
            if not busy and self._state is not ProjectState.SCANNING:
                return True
            time.sleep(0.05)
        return False

    def alive(self, max_silence: float) -> bool:
        """The loop turned recently, or copies are in flight (each bounded by its own timeout)."""
        return self._in_flight > 0 or time.monotonic() - self.heartbeat < max_silence

    def status(self) -> MirrorStatus:
        files, size = self.db.count(self.name)
        rec = self.db.project(self.name)
        with self._lock:
            errors = dict(self._file_errors)
            last_error = self._global_error or (next(reversed(errors.values())) if errors else None)
            return MirrorStatus(
                state=self._state,
                reason=self._reason,
                pending=len(self.coalescer) + self._batch_left,
                in_flight=self._in_flight,
                files=files,
                bytes=size,
                last_sync=rec.last_sync,
                last_error=last_error,
                conflicts=self.db.conflict_count(self.name),
                file_errors=errors,
            )

    def _file_error(self, path: str, message: str) -> None:
        with self._lock:
            self._file_errors[path] = message
        if (path, message) not in self._reported:
            self._reported.add((path, message))
            self.log.warning("%s: skipping %s: %s", self.name, path, message)

    def _skip_link(self, path: str) -> None:
        """Symlinks are a deliberate skip, not an error: say so once, keep status clean."""
        if (path, "link") not in self._reported:
            self._reported.add((path, "link"))
            self.log.info("%s: skipping %s: symlink (symlinks are not followed)", self.name, path)

    def _file_ok(self, path: str) -> None:
        with self._lock:
            self._file_errors.pop(path, None)

    # --- control (called from other threads) ---------------------------------

    def pause(self, reason: str = "paused by the user", kind: PauseKind = PauseKind.USER) -> None:
        self._pause = kind
        if kind is not PauseKind.FOLDER:
            self.db.set_paused(self.name, kind.value, reason)
        self._set_state(ProjectState.PAUSED, reason)
        self._wake.set()

    def resume(self, confirm_deletes: bool = False) -> None:
        self._confirm_deletes = confirm_deletes
        self._pause = None
        self.db.set_paused(self.name, None)
        self._needs_scan = True
        self._wake.set()
        self.coalescer.wake()

    def request_scan(self) -> None:
        self._needs_scan = True
        self._wake.set()
        self.coalescer.wake()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self.coalescer.wake()

    # --- the loop ------------------------------------------------------------

    def run(self) -> None:
        """Until ``stop()``: scan, then mirror settled batches; recover from remote trouble."""
        failures = 0
        if self._pause is not None:
            self._set_state(ProjectState.PAUSED, self._reason)
        while not self._stop.is_set():
            self.heartbeat = time.monotonic()
            if self._pause is not None:
                self._wait_paused()
                continue
            try:
                if self._needs_scan:
                    self.full_scan()
                else:
                    batch = self.coalescer.take_ready(timeout=0.5)
                    if self._pause is not None or self._stop.is_set():
                        self.coalescer.put_back(batch)  # paused while we waited
                        continue
                    if batch.rescan:
                        self._needs_scan = True
                    if batch.dirty or batch.moves:
                        self._set_state(ProjectState.SYNCING)
                        self._apply(set(batch.dirty), batch.moves)
                    if self._pause is None and not self._needs_scan and not len(self.coalescer):
                        self._set_state(ProjectState.IDLE)
                failures = 0
                self._global_error = None
            except RemoteError as exc:
                failures += 1
                self._remote_trouble(exc, failures)
            except Exception as exc:  # noqa: BLE001 - the loop must outlive any single bug
                # Anything else (a full disk under the state db, a bug) must not silently end
                # this project's mirroring while status keeps answering: report, back off, rescan.
                failures += 1
                self.log.exception("%s: unexpected error; retrying with a full scan", self.name)
                self._global_error = f"unexpected error: {exc}"
                self._set_state(ProjectState.ERROR, self._global_error)
                self._needs_scan = True
                self._wake.clear()
                self._wake.wait(ENGINE_RECOVERY_UNEXPECTED.delay(failures))

    def _wait_paused(self) -> None:
        self._wake.wait(1.0)
        self._wake.clear()
        if self._pause is PauseKind.FOLDER and self._folder_usable():
            self.log.info("%s: project folder is back; resuming", self.name)
            if self.on_folder_back is not None:
                self.on_folder_back()
            self.resume()

    def _remote_trouble(self, exc: RemoteError, failures: int) -> None:
        state = (
            ProjectState.AUTH_REQUIRED if isinstance(exc, AuthRequired) else (ProjectState.OFFLINE)
        )
        self._global_error = str(exc)
        self._set_state(state, str(exc))
        self._needs_scan = True  # whatever happened meanwhile, the walk finds it
        self._wake.clear()
        self._wake.wait(ENGINE_RECOVERY_REMOTE.delay(failures))

    # --- full scan -----------------------------------------------------------

    def _folder_usable(self) -> bool:
        try:
            with os.scandir(self.root) as it:
                return any(True for _ in it)
        except OSError:
            return False

    def _guard_folder(self) -> bool:
        """Pause (and trash nothing) when the folder vanished or emptied under a known index."""
        if self._folder_usable() or self.db.count(self.name)[0] == 0:
            return True
        what = "missing" if not self.root.exists() else "empty"
        self.pause(
            f"project folder {self.root} is {what} but {self.db.count(self.name)[0]} files were "
            "mirrored; nothing is deleted, syncd resumes when the folder is back",
            PauseKind.FOLDER,
        )
        return False

    def full_scan(self) -> None:
        """Walk the folder and the remote, and mirror every difference."""
        self._needs_scan = False
        self._set_state(ProjectState.SCANNING)
        if not self.root.is_dir() and self.db.count(self.name)[0] == 0:
            # Never mirrored and not there: a wrong path. Wait for it, in state `error`.
            self._pause = PauseKind.FOLDER
            self._set_state(
                ProjectState.ERROR,
                f"project folder {self.root} does not exist (fix `path` in the config)",
            )
            return
        if not self._guard_folder():
            return
        self.rules.reload()
        first = self.db.count(self.name)[0] == 0
        self.remote.check(create=first)
        found = walk(self.root, self.rules)
        for path, why in found.skipped.items():
            self._file_error(path, why)
        for path in found.links:
            self._skip_link(path)
        index = self.db.files(self.name)
        lost = self._lost_on_remote(index)
        if lost:
            self.log.info(
                "%s: %d files are missing on the remote; re-uploading", self.name, len(lost)
            )
            self.db.forget_files(self.name, lost)
            for p in lost:
                index.pop(p, None)
        changes = compare(self.root, found, index)
        for p in list(index):
            if p not in found.files and (
                p in found.skipped or p in found.links or self.rules.is_ignored(p, False)
            ):
                changes.dirty.discard(p)
        self._set_state(ProjectState.SYNCING)
        self._apply(changes.dirty, [(s, d, False) for s, d in changes.moves])
        if self._pause is None:
            self._set_state(ProjectState.IDLE)

    def _lost_on_remote(self, index: dict[str, FileRecord]) -> list[str]:
        """Files the index says are mirrored but the remote no longer has (deleted by hand)."""
        if not index:
            return []
        present = {e.path for e in self.remote.list_all()}
        return [p for p in index if p not in present]

    # --- one batch -----------------------------------------------------------

    def _apply(self, dirty: set[str], moves: list[tuple[str, str, bool]]) -> None:
        try:
            self._apply_batch(dirty, moves)
        except RemoteError:
            # Put everything back; the scan after recovery re-derives the rest.
            self.coalescer.requeue(sorted(dirty))
            raise
        finally:
            self._batch_left = 0

    def _apply_batch(self, dirty: set[str], moves: list[tuple[str, str, bool]]) -> None:
        for src, dst, is_dir in moves:
            dirty.update((src, dst))
            try:
                self._retry(lambda s=src, d=dst, i=is_dir: self._move(s, d, i))
            except FileError as exc:
                # The move could not be done as a move: the paths are reconciled below
                # (upload at the destination, trash at the source) instead.
                self.log.info("%s: moving %s → %s: %s", self.name, src, dst, exc.message)
        paths = self._expand(dirty)
        uploads, deletes = self._classify(paths)
        self._batch_left = len(uploads) + len(deletes)
        if deletes and not self._guard_folder():
            return
        if deletes and not self._confirm_deletes and self._mass_deletion():
            return
        self._confirm_deletes = False
        self._run_uploads(uploads)
        self._run_deletes(deletes)

    def _expand(self, dirty: Iterable[str]) -> set[str]:
        """Folders → the files below them, on disk and in the index."""
        paths: set[str] = set()
        for p in dirty:
            full = self.root / p
            if full.is_dir() and not full.is_symlink():
                if not self.rules.is_ignored(p, True):
                    found = walk(self.root, self.rules, under=p)
                    paths.update(found.files)
                    for sp, why in found.skipped.items():
                        self._file_error(sp, why)
                    for link in found.links:
                        self._skip_link(link)
            else:
                paths.add(p)
            paths.update(r.path for r in self.db.files_under(self.name, p))
        return paths

    def _classify(self, paths: set[str]) -> tuple[list[str], list[FileRecord]]:
        uploads: list[str] = []
        deletes: list[FileRecord] = []
        for p in sorted(paths):
            try:
                st = os.lstat(self.root / p)
            except FileNotFoundError:
                st = None
            except OSError as exc:
                self._file_error(p, f"cannot read it: {exc.strerror}")
                continue
            rec = self.db.file(self.name, p)
            if st is not None and self._behind_link(p):
                self._skip_link(p.rpartition("/")[0])
                continue  # neither upload through the link nor trash the remote copy
            if st is None:
                if rec is not None:
                    deletes.append(rec)
                continue
            if stat.S_ISLNK(st.st_mode):
                self._skip_link(p)
            elif not stat.S_ISREG(st.st_mode):
                continue
            elif self.rules.is_ignored(p, False):
                if rec is not None:
                    self.log.info(
                        "%s: %s is ignored now; its remote copy is left alone", self.name, p
                    )
                    self.db.forget_files(self.name, [p])
            elif rec is None or rec.size != st.st_size or rec.mtime_ns != st.st_mtime_ns:
                uploads.append(p)
        return uploads, deletes

    def _behind_link(self, path: str) -> bool:
        """True when a parent folder of ``path`` is a symlink (lstat follows parents)."""
        parent = os.path.dirname(os.path.join(self.root, path))
        return os.path.realpath(parent) != os.path.realpath(self.root) + (
            "/" + os.path.dirname(path) if os.path.dirname(path) else ""
        )

    def _mass_deletion(self) -> bool:
        """Pause when a large share of the mirrored files is gone from the disk right now.

        Counting what is missing (not what this batch deletes) also catches a
        deletion that trickles in over several batches.
        """
        index = self.db.files(self.name)
        tracked = len(index)
        count = sum(1 for p in index if not os.path.lexists(self.root / p))
        if count >= GUARD_MIN_FILES and count > tracked * GUARD_SHARE:
            self.pause(
                f"{count} of {tracked} mirrored files vanished at once; nothing was deleted. "
                f"If this is intended, confirm with: syncd resume {self.name} "
                f"--confirm-deletes (or, with no daemon running: syncd sync {self.name} --once "
                "--confirm-deletes)",
                PauseKind.DELETES,
            )
            return True
        return False

    # --- operations ----------------------------------------------------------

    def _retry(self, op: Callable[[], None]) -> None:
        """Operation-level retries (``retry.ENGINE_OPERATIONS``) on top of the transport's."""
        ENGINE_OPERATIONS.run(
            op,
            retry_if=lambda exc: isinstance(exc, TransientError),
            give_up=self._stop.is_set,
        )

    def _run_uploads(self, paths: list[str]) -> None:
        if not paths:
            return
        abort = threading.Event()
        failure: list[RemoteError] = []

        def task(p: str) -> None:
            if abort.is_set() or self._stop.is_set() or self._pause is not None:
                return
            with self._lock:
                self._in_flight += 1
            try:
                self._retry(lambda: self._upload(p))
                self._file_ok(p)
            except FileChanged as exc:
                self.log.info("%s: %s: %s; retrying once it settles", self.name, p, exc.message)
                self.coalescer.requeue([p])
            except FileError as exc:
                self._file_error(p, exc.message)
            except RemoteError as exc:
                failure.append(exc)
                abort.set()
            finally:
                self.heartbeat = time.monotonic()
                with self._lock:
                    self._in_flight -= 1
                    self._batch_left = max(0, self._batch_left - 1)

        with ThreadPoolExecutor(self.workers, thread_name_prefix=f"up-{self.name}") as pool:
            # In slices: map() makes every Future up front, ~1.5 KB each, which a
            # 200,000-file first mirror would keep as RSS for the daemon's lifetime.
            for start in range(0, len(paths), UPLOAD_SLICE):
                if abort.is_set() or self._stop.is_set() or self._pause is not None:
                    break
                list(pool.map(task, paths[start : start + UPLOAD_SLICE]))
        if failure:
            raise failure[0]
        if self._stop.is_set() or self._pause is not None:
            self.coalescer.requeue(paths)  # unfinished work: after resume or the next start

    def _upload(self, path: str) -> None:
        src = self.root / path
        rec = self.db.file(self.name, path)
        try:
            st = os.lstat(src)
        except FileNotFoundError:
            return  # deleted since classification: the next batch trashes it
        if rec is not None and (rec.size, rec.mtime_ns) == (st.st_size, st.st_mtime_ns):
            return
        if self._behind_link(path):
            raise FileError(path, "a parent folder is a symlink (symlinks are not followed)")
        local_md5: str | None = None
        if rec is not None and rec.size == st.st_size:
            local_md5 = self._hash(path)
            if local_md5 == rec.md5:
                self.db.touch_file(self.name, path, st.st_mtime_ns)
                return
        cur = self.remote.stat(path, _entry(rec))
        replace: RemoteEntry | None = None
        if cur is not None and cur.is_dir:
            raise FileError(path, "a folder with this name exists on the target")
        if cur is not None:
            if rec is not None and cur.id == rec.remote_id and cur.md5 == rec.md5:
                replace = cur
            else:
                local_md5 = local_md5 or self._hash(path)
                if cur.md5 == local_md5:  # already there (e.g. written just before a crash)
                    self._record(path, st.st_size, st.st_mtime_ns, local_md5, cur)
                    return
                self._keep_conflict(cur)
        result = self.remote.upload(path, src, replace)
        self._record(path, result.size, result.mtime_ns, result.md5, result.entry)

    def _hash(self, path: str) -> str:
        with os.fdopen(open_source(self.root / path, path), "rb") as f:
            try:
                return md5_file(f)
            except OSError as exc:
                raise FileError(path, f"cannot read it: {exc.strerror}") from exc

    def _record(self, path: str, size: int, mtime_ns: int, md5: str, entry: RemoteEntry) -> None:
        self.db.put_file(
            self.name, FileRecord(path, size, mtime_ns, md5, entry.id, entry.rev, time.time())
        )

    def _keep_conflict(self, cur: RemoteEntry) -> None:
        """A remote file syncd did not write (or that changed since) is renamed, never replaced."""
        kept = conflict_name(cur.path)
        self.remote.move(cur, kept)
        self.db.add_conflict(self.name, cur.path, kept)
        self.log.warning(
            "%s: conflict: %s was changed on the remote by someone else; kept it as %s",
            self.name,
            cur.path,
            kept,
        )

    def _move(self, src: str, dst: str, is_dir: bool) -> None:
        """Move on the remote when the index knows the source; otherwise upload+delete happen."""
        if src == dst or (self.root / src).exists() or not (self.root / dst).exists():
            return
        if is_dir:
            if not self.db.files_under(self.name, src):
                return
            entry = self.remote.folder(src)
            if entry is None or self.remote.stat(dst, None) is not None:
                return
            self.remote.move(entry, dst)
            self.db.move_files(self.name, src, dst, is_dir=True, remote_id=None, remote_rev=None)
            self.log.info("%s: moved folder %s → %s", self.name, src, dst)
            return
        rec = self.db.file(self.name, src)
        if rec is None:
            return
        cur = self.remote.stat(src, _entry(rec))
        if cur is None or cur.is_dir or cur.md5 != rec.md5:
            # Edited on the remote since syncd wrote it: moving it would carry that edit to
            # the new name as if it were ours; leave it, upload + conflict handling follow.
            return
        dst_rec = self.db.file(self.name, dst)
        existing = self.remote.stat(dst, _entry(dst_rec))
        if existing is not None:
            if existing.is_dir:
                return
            if dst_rec is not None and existing.md5 == dst_rec.md5:
                self.remote.trash(existing)  # our own copy, replaced by the moved file
            else:
                self._keep_conflict(existing)
        new = self.remote.move(cur, dst)
        self.db.move_files(self.name, src, dst, is_dir=False, remote_id=new.id, remote_rev=new.rev)
        self.log.info("%s: moved %s → %s", self.name, src, dst)

    def _run_deletes(self, recs: list[FileRecord]) -> None:
        folders: set[str] = set()
        for rec in recs:
            if self._stop.is_set():
                return
            self._retry(lambda r=rec: self._delete(r))
            self.heartbeat = time.monotonic()
            self._file_ok(rec.path)
            self._batch_left = max(0, self._batch_left - 1)
            folders.add(rec.path.rpartition("/")[0])
        for folder in sorted(folders, key=len, reverse=True):
            if folder and not (self.root / folder).exists():
                self.remote.prune_folder(folder)

    def _delete(self, rec: FileRecord) -> None:
        if self.deletions == "keep":
            self.db.forget_files(self.name, [rec.path])
            return
        cur = self.remote.stat(rec.path, _entry(rec))
        if cur is not None and not cur.is_dir:
            if cur.md5 == rec.md5:
                self.remote.trash(cur)
            else:
                self.log.warning(
                    "%s: %s was deleted locally but changed on the remote since syncd wrote it; "
                    "the remote copy is kept",
                    self.name,
                    rec.path,
                )
        self.db.forget_files(self.name, [rec.path])
        self.log.info("%s: deleted %s", self.name, rec.path)

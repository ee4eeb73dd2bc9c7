"""Carrying out a plan on the remote: moves, clears, uploads (on worker threads), deletes.

Each file's question "what now?" is answered by ``decide`` from the facts gathered here (the
index row, the local stat and md5, what the remote holds); this module only fetches those facts
and does what the answer says. One path's problem (``FileError``) is its error in the tracker,
never the others'; the remote's as a whole (``RemoteError`` after the operation retries) ends
the batch and is the runner's. The index is written only after the remote confirmed.
"""

from __future__ import annotations

import logging
import os
import stat
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from ..db.statedb import FileRecord, StateDB
from ..errors import FileChanged, FileError, TransientError
from ..fileio import conflict_name, stat_key
from ..localfs.walk import not_utf8
from ..remotes.base import Remote, RemoteEntry
from ..retry import ENGINE_OPERATIONS
from .decide import (
    NOT_LOOKED,
    Delete,
    Known,
    Move,
    Upload,
    decide_delete,
    decide_move,
    decide_upload,
)
from .facts import entry_of, hash_local, known_of, record, there_of
from .newfiles import runs_for
from .summary import BatchSummary
from .tracker import StateTracker
from .workers import WorkerPool

log = logging.getLogger("syncd.mirror")

_GONE = (FileNotFoundError, NotADirectoryError)
CONFLICT_TRIES = 50  # names tried for one conflict copy before giving up on the file
FLUSH_ROWS = 1024  # confirmed uploads written to the index in one transaction (at most)


class Applier:
    """Applies plans for one project; ``in_flight``/``left`` feed ``status``."""

    def __init__(
        self,
        name: str,
        root: Path,
        remote: Remote,
        db: StateDB,
        tracker: StateTracker,
        *,
        keep_deletions: bool,
        workers: int,
        cancelled: Callable[[], bool],
        beat: Callable[[], None],
        requeue: Callable[[list[str]], None],
    ) -> None:
        self.name = name
        self.root = root
        self._root = str(root)
        self.remote = remote
        self.db = db
        self.tracker = tracker
        self.keep_deletions = keep_deletions
        self.pool = WorkerPool(workers, f"up-{name}")
        self.cancelled = cancelled
        self.beat = beat
        self.requeue = requeue
        self._lock = threading.Lock()
        self.in_flight = 0
        self.left = 0
        self.summary = BatchSummary()
        self._workers: list[threading.Event] = []  # pools that may still be finishing

    def new_batch(self) -> BatchSummary:
        self.summary = BatchSummary()
        self.remote.begin_batch()  # what the remote learns once per batch is asked again
        return self.summary

    def _retry(self, op: Callable[[], None]) -> None:
        """Operation-level retries (``retry.ENGINE_OPERATIONS``) on top of the transport's."""
        ENGINE_OPERATIONS.run(
            op, retry_if=lambda exc: isinstance(exc, TransientError), give_up=self.cancelled
        )

    def count_done(self, n: int = 1, in_flight: int = 0) -> None:
        with self._lock:
            self.left = max(0, self.left - n)
            self.in_flight += in_flight
        self.beat()

    def idle(self, timeout: float | None = None) -> bool:
        """Wait until no upload worker of an earlier batch is still running."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for done in list(self._workers):
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not done.wait(left):
                return False
        self._workers = [d for d in self._workers if not d.is_set()]
        return True

    # --- moves ---------------------------------------------------------------

    def moves(self, moves: Iterable[tuple[str, str, bool]]) -> set[str]:
        """Carry out local renames on the remote; return every path involved. A rename that
        cannot be a move there is left to the plan: an upload here, a deletion there."""
        touched: set[str] = set()
        for src, dst, is_dir in moves:
            touched.update((src, dst))
            if not_utf8(src + dst):
                continue  # the plan trashes the source and reports the name it cannot take
            try:
                self._retry(lambda s=src, d=dst, i=is_dir: self._move(s, d, i))  # type: ignore[misc]
            except FileError as exc:
                log.info("%s: moving %s → %s: %s", self.name, src, dst, exc.message)
        return touched

    def _move(self, src: str, dst: str, is_dir: bool) -> None:
        if src == dst or os.path.lexists(self.root / src) or not os.path.lexists(self.root / dst):
            return
        if is_dir:
            self._move_folder(src, dst)
            return
        rec = self.db.file(self.name, src)
        if rec is None:
            return
        cur = self.remote.stat(src, entry_of(rec))
        dst_rec = self.db.file(self.name, dst)
        existing = self.remote.stat(dst, entry_of(dst_rec))
        action = decide_move(
            source=there_of(cur),
            known_source=Known(rec.size, rec.md5, rec.remote_id),
            destination=there_of(existing),
            known_destination=known_of(dst_rec),
        )
        if action is Move.SKIP or cur is None:
            return
        if action is Move.TRASH_DESTINATION and existing is not None:
            self.remote.trash(existing)  # our own copy, replaced by the moved file
        elif action is Move.CONFLICT_DESTINATION and existing is not None:
            self.keep_conflict(existing)
        new = self.remote.move(cur, dst)
        self.db.move_files(self.name, src, dst, is_dir=False, remote_id=new.id, remote_rev=new.rev)
        self._refresh_key(dst, rec)
        self.summary.add("moved")
        log.debug("%s: moved %s → %s", self.name, src, dst)

    def _move_folder(self, src: str, dst: str) -> None:
        if not self.db.files_under(self.name, src):
            return
        entry = self.remote.folder(src)
        if entry is None or self.remote.stat(dst, None) is not None:
            return
        self.remote.move(entry, dst)
        self.db.move_files(
            self.name,
            src,
            dst,
            is_dir=True,
            remote_id=None,
            remote_rev=None,
            ids_are_paths=not self.remote.features.stable_ids,
        )
        self.summary.add("moved")
        log.debug("%s: moved folder %s → %s", self.name, src, dst)

    def _refresh_key(self, path: str, rec: FileRecord) -> None:
        """A rename sets the file's ctime: the same file (inode, size, mtime) needs no re-read."""
        try:
            st = os.lstat(self.root / path)
        except OSError:
            return
        if (st.st_ino, st.st_size, st.st_mtime_ns) == (rec.ino, rec.size, rec.mtime_ns):
            self.db.touch_file(self.name, path, stat_key(st))

    def keep_conflict(self, cur: RemoteEntry) -> None:
        """A remote item syncd did not write (or that changed since) is renamed, never replaced.

        The name is one not taken on the remote (checked, and the remote's move never
        replaces), so two conflicts within one second are two copies.
        """
        when = time.time()
        for n in range(1, CONFLICT_TRIES + 1):
            kept = conflict_name(cur.path, when, n)
            if self.remote.stat(kept, None) is None:
                break
        else:
            raise FileError(cur.path, "no free name for its conflict copy")
        self.remote.move(cur, kept)
        self.db.add_conflict(self.name, cur.path, kept)
        self.summary.add("conflicts")
        log.warning(
            "%s: conflict: %s was changed on the remote by someone else; kept it as %s",
            self.name,
            cur.path,
            kept,
        )

    def clean_leftovers(self) -> None:
        """Files an interrupted run created on the remote but never recorded, at paths that
        are no longer wanted (deleted or renamed locally since): trashed, so they are not
        left live there.  A path still wanted is left to its upload, which adopts the file;
        a create not made (yet — a request may still be in flight) keeps its record, so the
        reserved id is used again and a late create is found next time."""
        for path, entry in list(self.remote.leftovers()):
            if entry is None or self.db.file(self.name, path) or os.path.lexists(self.root / path):
                continue
            self.remote.trash(entry)
            self.remote.forget_leftover(path)
            log.info("%s: trashed %s, left by an interrupted upload", self.name, path)

    # --- the plan ------------------------------------------------------------

    def start(self, size: int) -> None:
        with self._lock:
            self.left = size

    def finish(self) -> None:
        with self._lock:
            self.left = 0

    def deletes(self, recs: list[FileRecord], prune: bool = True) -> None:
        """Trash the remote copies of files deleted locally, each on its own."""
        folders: set[str] = set()
        for rec in recs:
            if self.cancelled():
                return
            try:
                self._retry(lambda r=rec: self._delete(r))  # type: ignore[misc]
                self.tracker.file_ok(rec.path)
            except FileError as exc:
                self.tracker.file_error(rec.path, exc.message)
                self.summary.add("skipped")
            self.count_done()
            folders.add(rec.path.rpartition("/")[0])
        if prune:
            self.prune(folders)

    def prune(self, folders: Iterable[str]) -> None:
        """Remove emptied folders whose local counterpart is gone, deepest first."""
        for folder in sorted(set(folders), key=len, reverse=True):
            if folder and not os.path.isdir(self.root / folder):
                self.remote.prune_folder(folder)

    def _delete(self, rec: FileRecord) -> None:
        cur = None if self.keep_deletions else self.remote.stat(rec.path, entry_of(rec))
        action = decide_delete(
            keep=self.keep_deletions,
            known=Known(rec.size, rec.md5, rec.remote_id),
            there=there_of(cur),
        )
        if action is Delete.TRASH and cur is not None:
            self.remote.trash(cur)
            self.summary.add("trashed")
            log.debug("%s: trashed %s", self.name, rec.path)
        elif action is Delete.KEEP_THEIRS:
            log.warning(
                "%s: %s was deleted locally but changed on the remote since syncd wrote it; "
                "the remote copy is kept",
                self.name,
                rec.path,
            )
        self.db.forget_files(self.name, [rec.path])

    def uploads(self, paths: list[str]) -> None:
        """Upload on the worker pool; a remote failure stops the rest and is raised.  Rows
        go to the index (``_record``) by ``FLUSH_ROWS``, every 0.2 s and before returning."""
        if not paths:
            return
        failure: list[BaseException] = []
        abort = threading.Event()

        def cancelled() -> bool:
            return abort.is_set() or self.cancelled()

        def task(items: list[tuple[str, FileRecord | None]]) -> None:
            for p, rec in items:
                if cancelled():
                    return
                if not self._upload_one(p, rec, failure):
                    abort.set()

        def wait(done: threading.Event) -> None:
            while not done.wait(0.2):
                self.beat()
                self.db.flush_files()  # status counts them
                if self.cancelled():
                    return  # stopping: in-flight copies finish (or die with the process)

        try:
            runs = runs_for(self, paths, cancelled)  # new files: copied in bulk where possible
            done = self.pool.run(task, runs, cancelled=cancelled, wait=wait)
        finally:
            self.db.flush_files()
        if not done.is_set():
            self._workers.append(done)
        if failure:
            raise failure[0]
        if self.cancelled():
            self.requeue(paths)  # unfinished work: after resume or at the next start

    def _upload_one(self, p: str, rec: FileRecord | None, failure: list[BaseException]) -> bool:
        """One file on a worker; False when the remote as a whole failed (see ``failure``)."""
        with self._lock:
            self.in_flight += 1
        try:
            self._retry(lambda: self.upload(p, rec, known=True))
            self.tracker.file_ok(p)
        except FileChanged as exc:
            log.info("%s: %s: %s; retrying once it settles", self.name, p, exc.message)
            self.requeue([p])
        except FileError as exc:
            self.tracker.file_error(p, exc.message)
            self.summary.add("skipped")
        except Exception as exc:  # noqa: BLE001 - handed to the runner's thread
            failure.append(exc)
            return False
        finally:
            self.count_done(in_flight=-1)
        return True

    def _record(self, rec: FileRecord) -> None:
        """A confirmed upload's row: journaled now, in SQLite by the next transaction."""
        if self.db.record_file(self.name, rec) >= FLUSH_ROWS:
            self.db.flush_files()

    # --- one file ------------------------------------------------------------

    def upload(self, path: str, rec: FileRecord | None = None, *, known: bool = False) -> None:
        """Bring one local file to the remote, as ``decide_upload`` says (``rec``: its index
        row, when ``known`` already)."""
        src = os.path.join(self._root, path)
        try:
            st = os.lstat(src)
        except _GONE:
            return  # deleted since it was planned: the next batch trashes it
        except OSError as exc:
            raise FileError(path, f"cannot read it: {exc.strerror}") from exc
        if not known:
            rec = self.db.file(self.name, path)
        if not stat.S_ISREG(st.st_mode) or (rec is not None and rec.key == stat_key(st)):
            return
        local_md5: str | None = None
        cur: RemoteEntry | None = None
        looked = False
        empty: bool | None = None
        while True:
            action = decide_upload(
                local_size=st.st_size,
                local_md5=local_md5,
                known=known_of(rec),
                there=there_of(cur) if looked else NOT_LOOKED,
                folder_empty=empty,
                stable_ids=self.remote.features.stable_ids,
            )
            if action is Upload.HASH:
                local_md5 = hash_local(self.root, path)
            elif action is Upload.LOOK:
                cur, looked = self.remote.stat(path, entry_of(rec)), True
            elif action is Upload.LOOK_INSIDE:
                empty = self.remote.folder_is_empty(path)
            else:
                break
        self._carry_out(action, path, st, local_md5, cur)

    def _carry_out(
        self,
        action: Upload,
        path: str,
        st: os.stat_result,
        local_md5: str | None,
        cur: RemoteEntry | None,
    ) -> None:
        if action is Upload.TOUCH:
            self.db.touch_file(self.name, path, stat_key(st))
            return
        if action is Upload.ADOPT and cur is not None and local_md5 is not None:
            self._record(record(path, st, st.st_size, st.st_mtime_ns, local_md5, cur))
            self.summary.add("adopted")
            return
        if action is Upload.CONFLICT and cur is not None:
            self.keep_conflict(cur)
        elif action is Upload.CLEAR and cur is not None:
            self.remote.trash(cur)  # an emptied folder (a local folder became this file)
            log.debug("%s: trashed the empty folder %s to make room for the file", self.name, path)
        replace = cur if action is Upload.UPDATE else None
        result = self.remote.upload(path, self.root / path, replace)
        self._record(record(path, st, result.size, result.mtime_ns, result.md5, result.entry))
        self.summary.add("up")
        log.debug("%s: uploaded %s", self.name, path)

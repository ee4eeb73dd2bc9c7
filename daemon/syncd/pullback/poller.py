"""One project's return path: a thread that polls Drive's changes feed every ``interval``.

At the first start (no saved page token) the poller takes a start token
*first*, then lists the pull subfolders and brings down what is missing or
different, then polls from that token: whatever is created in between shows
up in the feed, and applying it twice is harmless (same md5: nothing to do).
The token is saved only after every change it covers is applied, so a kill -9
re-applies changes instead of skipping them.  Every start lists the pull
folders again (one listing per folder), which also catches what happened
while syncd was not running.  A token Drive refuses means a fresh start token
and a full listing again.

Transient trouble (429, 403 rate limits, 5xx, dropped connections) is retried
with backoff by the transport; a poll that still fails keeps its token, shows
the reason as ``pull.last_error`` and is tried again at the next interval.
A file that did not come down (a quota or other refusal of its download, a
local path in the way, a local write error) is *pending*: kept by Drive id in
the state db and tried again at every poll until it lands or leaves Drive;
``status`` shows how many, and ``last_error`` names one with its reason.

Two live files with one title in one folder (Drive allows it): a listing puts
the oldest at the path, the feed the one that changed last; when the file at
the path goes away, the remaining one comes down in its place.

A paused project (``syncd pause``) does not poll: pause stops all of its Drive
traffic.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import FileError, SyncdError, TargetUnavailable, TransientError
from .landing import Landing
from .pull_tree import PullTree, usable_name
from .records import PullRecords

if TYPE_CHECKING:
    from ..config import DriveConfig, ProjectConfig
    from ..db.statedb import StateDB
    from ..remotes.gdrive.changes import FileChange
    from ..remotes.gdrive.tree import DriveItem
    from .source import PullSource

log = logging.getLogger("syncd.pull")


class PullPoller:
    """Polls one project's pull subfolders on Drive until stopped."""

    def __init__(
        self,
        name: str,
        root: Path,
        pull: tuple[str, ...],
        interval: float,
        db: StateDB,
        source: PullSource,
    ) -> None:
        self.name = name
        self.pull = pull
        self.interval = interval
        self.db = db
        self.source = source
        self.records = PullRecords(db, name)
        self.landing = Landing(name, root, self.records, source)
        self.tree: PullTree | None = None  # None: list everything again before polling
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._error: str | None = None
        self._said: dict[str, str] = {}  # path → the failure last logged for it
        self._tried: set[str] = set()  # ids tried in this poll: a pending one waits for the next
        self.thread = threading.Thread(target=self.run, name=f"pull-{name}", daemon=True)

    # --- the thread -----------------------------------------------------------------

    def start(self) -> None:
        log.info(
            "%s: pulling %s from Drive every %gs", self.name, ", ".join(self.pull), self.interval
        )
        self.thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def join(self, timeout: float) -> None:
        self.thread.join(timeout)

    def run(self) -> None:
        try:
            while not self._stop.is_set():
                if self.db.project(self.name).paused is None:
                    self._poll_safely()
                self._wake.wait(self.interval)
                self._wake.clear()
        finally:
            self.source.close()

    def _poll_safely(self) -> None:
        try:
            self.poll()
        except TargetUnavailable as exc:
            # At a project's very first start the mirror is still making the Drive folder.
            first = self.records.stats()["last_poll"] is None
            self._failed(str(exc), logging.INFO if first else logging.WARNING)
        except SyncdError as exc:
            self._failed(str(exc))
        except OSError as exc:  # the local side: a full disk, permissions
            self._failed(f"cannot write into {self.name}'s folder: {exc}")
        except Exception as exc:  # a bug: said in status; the traceback with --debug
            debug = log.isEnabledFor(logging.DEBUG)
            log.error("%s: the return path failed", self.name, exc_info=debug)
            self._failed(f"{type(exc).__name__}: {exc}")
        else:
            if self._error is not None:
                log.info("%s: the return path works again", self.name)
            self._error = None
            self.records.polled(self.records.pending_note(), reached=True)

    def _failed(self, why: str, level: int = logging.WARNING) -> None:
        if why != self._error:
            log.log(level, "%s: pull: %s; trying again in %gs", self.name, why, self.interval)
        self._error = why
        self.records.polled(why)

    # --- one poll -------------------------------------------------------------------

    def poll(self, fresh: bool = False) -> None:
        """Catch up with Drive once: a full listing when needed, then the feed.

        ``fresh``: the saved token was just refused; a new one refused as well is an error
        of this poll, not a reason to start over again.
        """
        from ..remotes.gdrive.changes import TokenRefused

        if not fresh:
            self._tried = set()
        token = self.records.token()
        if self.tree is None or token is None:
            if token is None:
                token = self.source.start_token()  # before the listing: nothing falls between
            self.resync()
            self.records.save_token(token)
        try:
            changes, new = self.source.changes(token)
        except TokenRefused as exc:
            if fresh:
                raise TransientError(f"Drive refused a change token it just gave: {exc}") from exc
            log.info(
                "%s: Drive no longer honours the saved change token (%s); "
                "listing the pull folders again",
                self.name,
                exc,
            )
            self.records.save_token(None)
            self.tree = None
            self.poll(fresh=True)
            return
        assert self.tree is not None
        self.apply(changes)
        self.records.save_token(new)
        if self.tree is not None:
            self.retry_pending()

    def resync(self) -> None:
        """List the pull subfolders; bring down what differs; trash what Drive no longer has."""
        root = self.source.root()
        self.landing.clean_temps(self.pull)
        tree = PullTree(root.id, self.pull)
        files: dict[str, DriveItem] = {}
        level = [root.id]
        while level:
            above = [f for f in level if not tree.inside(tree.dirs[f])]
            inside = [f for f in level if tree.inside(tree.dirs[f])]
            found = self.source.children(above, folders_only=True) if above else []
            found += self.source.children(inside) if inside else []
            level = []
            for item in sorted(found, key=lambda i: (i.created, i.id)):  # oldest wins a name
                path = self._path(tree, item)
                if path is None:
                    continue
                if item.is_dir and tree.wanted_dir(path):
                    tree.add(item.id, path, item.parent)  # folders sharing a title: each
                    level.append(item.id)
                elif not item.is_dir and tree.below(path) and path not in files:
                    files[path] = item
        self.tree = tree
        log.debug("%s: pull folders %s, files %s", self.name, tree.dirs, sorted(files))
        for path, rec in self.records.all().items():
            if not tree.below(path):
                # Its folder left mirror.pull: an ordinary mirrored file from now on (the
                # mirror adopts Drive's copy by md5); neither side's copy is trashed.
                self.records.forget(path)
            elif path not in files:
                self.landing.trash(path, rec.id, "deleted on Drive (or moved away)")
        for file_id, waiting in self.records.pending().items():
            if not tree.below(waiting["path"]):
                self.records.unpend(file_id)  # not pulled any more: not pending either
        for path, item in files.items():
            self._land(path, item)

    def _path(self, tree: PullTree, item: DriveItem) -> str | None:
        """The item's local path; a title that cannot be a local name is said once."""
        path = tree.path_of(item.parent, item.title)
        if path is None and item.parent in tree.dirs and not usable_name(item.title):
            where = tree.dirs[item.parent]
            if tree.inside(where):
                self.landing.skip(
                    f"{where}/{item.title!r}", "Drive's title cannot be a local file name"
                )
        return path

    def _land(self, path: str, item: DriveItem) -> None:
        """Bring one file down; a failure of this file alone leaves it pending."""
        self._tried.add(item.id)
        try:
            self.landing.land(path, item)
        except FileError as exc:
            why = str(exc)
            if self._said.get(path) != why:  # once per path and reason, not every poll
                self._said[path] = why
                log.warning("%s: not pulling %s yet: %s", self.name, path, why)
            self.records.pend(item.id, path, why)
        else:
            self._said.pop(path, None)
            self.records.unpend(item.id)

    def retry_pending(self) -> None:
        """Try the pending files again: those still live in their folder (one listing per
        folder); one gone from Drive or from the pull area is pending no more."""
        assert self.tree is not None
        by_folder: dict[str, list[str]] = {}
        for file_id, waiting in self.records.pending().items():
            if file_id in self._tried:
                continue  # it failed in this very poll: once per poll
            by_folder.setdefault(waiting["path"].rpartition("/")[0], []).append(file_id)
        for folder, file_ids in by_folder.items():
            ids = self.tree.folders_at(folder)
            live = {i.id: i for i in self.source.children(ids)} if ids else {}
            for file_id in file_ids:
                item = live.get(file_id)
                path = self._path(self.tree, item) if item and not item.is_dir else None
                if item is None or path is None or not self.tree.below(path):
                    self.records.unpend(file_id)
                    continue
                self._land(path, item)

    def _where(self, file_id: str) -> str | None:
        """The path the file ``file_id`` was pulled to, if any (an index the records keep
        up to date: reloading every record per change made a batch quadratic)."""
        return self.records.where(file_id)

    def _gone(self, file_id: str, path: str, why: str) -> None:
        """The file pulled to ``path`` left (trashed, deleted, moved away): its local copy
        goes to the local trash, and another live file with that title in that folder
        (Drive allows several) comes down in its place."""
        assert self.tree is not None
        self.records.unpend(file_id)
        self.landing.trash(path, file_id, why)
        folder, _, title = path.rpartition("/")
        ids = self.tree.folders_at(folder)
        if not ids or not self.tree.below(path):
            return
        rest = [
            i
            for i in self.source.named(ids, title)
            if not i.is_dir and i.id != file_id and not i.trashed
        ]
        if rest and self.records.get(path) is None:
            self._land(path, min(rest, key=lambda i: (i.created, i.id)))  # as a listing would

    # --- applying the feed ----------------------------------------------------------

    def apply(self, changes: list[FileChange]) -> None:
        assert self.tree is not None
        if changes and log.isEnabledFor(logging.DEBUG):
            log.debug(
                "%s: %d change(s) from Drive: %s",
                self.name,
                len(changes),
                [
                    (c.file_id, c.item.title if c.item else None, c.item.parent if c.item else None)
                    for c in changes
                ],
            )
        folders = [c for c in changes if c.item is None or c.item.is_dir]
        new_dirs = self._apply_folders(folders)
        if self.tree is None:  # the project folder left: the next poll lists it again
            return
        for change in changes:
            item = change.item
            if item is None or item.is_dir:
                old = self._where(change.file_id) if change.removed else None
                if old is not None:
                    self._gone(change.file_id, old, "deleted on Drive")
                continue
            # Where the file was is read afresh for each change: an earlier change of this
            # batch may have given its path to another file (an atomic save on Drive).
            old = self._where(change.file_id)
            path = None if item.trashed else self._path(self.tree, item)
            if path is not None and not self.tree.below(path):
                path = None
            if old is not None and old != path:
                why = "trashed on Drive" if item.trashed else "deleted, moved or renamed on Drive"
                self._gone(change.file_id, old, why)
            if path is not None:
                self._land(path, item)
        if new_dirs:
            self._list_new(new_dirs)

    def _apply_folders(self, folders: list[FileChange]) -> list[str]:
        """Track folders coming, going, moving; returns the ids of folders new to the area.

        Passes repeat while they resolve more: a folder made inside another folder made
        since the last poll may be reported before its parent.
        """
        assert self.tree is not None
        tree = self.tree
        new: list[str] = []
        todo = list(folders)
        progress = True
        while todo and progress:
            progress = False
            for change in list(todo):
                if change.file_id == tree.root_id:
                    # The project folder itself (renamed, moved, its metadata touched): the
                    # pull folders are followed by id below it, so nothing changes for them.
                    # Trashed or deleted: the next poll looks for it again, and says so.
                    if change.item is None or change.item.trashed:
                        self.tree = None
                    todo.remove(change)
                    continue
                item = change.item
                path = None
                if item is not None and not item.trashed:
                    path = tree.path_of(item.parent, item.title)
                    waiting = item.parent is not None and item.parent not in tree.dirs
                    if waiting and any(c.file_id == item.parent for c in todo):
                        continue  # its parent is still to come in this pass
                old = tree.dirs.get(change.file_id)
                todo.remove(change)
                progress = True
                if old is not None and old != path:
                    self._left(tree.drop(change.file_id), old)
                if path is not None and tree.wanted_dir(path) and old != path:
                    assert item is not None
                    tree.add(change.file_id, path, item.parent)
                    new.append(change.file_id)
        return new

    def _left(self, folder_ids: set[str], old: str) -> None:
        """Folders that left the pull area: the files pulled from them (by folder id, so a
        folder sharing their title keeps its files) go to the local trash."""
        assert self.tree is not None
        for path, rec in self.records.all().items():
            if rec.parent in folder_ids or (
                rec.parent is None  # recorded by an older syncd: by path, when unambiguous
                and path.startswith(old + "/")
                and not self.tree.folders_at(path.rpartition("/")[0])
            ):
                self._gone(rec.id, path, "in a folder removed from Drive's pull area")

    def _list_new(self, folder_ids: list[str]) -> None:
        """Folders that arrived (made, or moved in): their content may have no change of its
        own in the feed (a folder moved in is one change), so list them."""
        assert self.tree is not None
        level = [f for f in folder_ids if f in self.tree.dirs]
        while level:
            found = self.source.children(level)
            level = []
            for item in found:
                path = self._path(self.tree, item)
                if path is None:
                    continue
                if item.is_dir and self.tree.wanted_dir(path):
                    if item.id not in self.tree.dirs:
                        self.tree.add(item.id, path, item.parent)
                        level.append(item.id)
                elif not item.is_dir and self.tree.below(path) and item.id not in self._tried:
                    self._land(path, item)  # unless its own change came in this poll


def start_pull(pc: ProjectConfig, db: StateDB, drive: DriveConfig) -> PullPoller:
    """A running poller for a project with ``mirror.pull`` (the config checked the target
    is on Drive and the scope is full)."""
    from ..remotes.gdrive.pull_source import DrivePullSource

    assert pc.mirror is not None and pc.mirror.pull
    source = DrivePullSource(pc.mirror.to, drive, db, pc.name)
    poller = PullPoller(pc.name, pc.path, pc.mirror.pull.paths, pc.mirror.pull.interval, db, source)
    poller.start()
    return poller

"""From "these paths may have changed" to a plan of what to do on the remote, and its guards.

The planner reads only the project folder and the index, never the remote:
a full walk (``scan``), the expansion of changed folders into their files,
and the classification of every path into an upload, a deletion or nothing.
The plan is ordered so that the way is clear before anything is created:
deletions that stand in the way of an upload (a folder replaced by a file,
or a file replaced by a folder) go first, the other deletions last — a
deletion never runs before the upload that might replace it.

The guards refuse to guess when data is at risk (Syncthing's habit): a
folder that vanished or emptied, or a large share of the files gone at once,
pauses the project instead of trashing the remote.  The rule is in
``mass_deletion``.
"""

from __future__ import annotations

import bisect
import os
import stat
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ..db.statedb import FileRecord, StateDB
from ..fileio import stat_key
from ..localfs.ignore import IgnoreRules
from ..localfs.walk import NOT_UTF8, not_utf8, shown, walk
from .compare import ScanChanges, compare
from .model import PauseKind
from .tracker import StateTracker

INDEX_AT_ONCE = 256  # paths in a plan from which the index is read at once (``_IndexView``)
GUARD_MIN_FILES = 5  # mass-deletion guard: at least this many files gone...
GUARD_SHARE = 0.5  # ...and more than this share of the mirrored ones (or every one of them)
SYMLINK = "symlink (symlinks are not followed)"
_GONE = (FileNotFoundError, NotADirectoryError)  # a parent replaced by a file: gone as well


@dataclass
class Plan:
    """What one batch does on the remote, in this order: clears, uploads, deletes."""

    clears: list[FileRecord] = field(default_factory=list)  # deletions in an upload's way
    uploads: list[str] = field(default_factory=list)
    deletes: list[FileRecord] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.clears or self.uploads or self.deletes)

    @property
    def size(self) -> int:
        return len(self.clears) + len(self.uploads) + len(self.deletes)


@dataclass(frozen=True)
class Hold:
    """A guard's verdict: pause the project with this reason instead of applying the plan."""

    reason: str
    kind: PauseKind


def mass_deletion(missing: int, tracked: int, files_left: int) -> bool:
    """Too much vanished at once to trash it without asking.

    ``missing`` of the ``tracked`` mirrored files are gone from the folder, which
    holds ``files_left`` files to mirror.  At least ``GUARD_MIN_FILES`` and more
    than ``GUARD_SHARE`` of them, or every one of them with nothing left in their
    place (a project emptied except `.git`, an `rm *` in the wrong terminal) —
    not when they were all renamed.
    """
    if missing == 0:
        return False
    if missing >= GUARD_MIN_FILES and missing > tracked * GUARD_SHARE:
        return True
    return missing == tracked and files_left == 0


class Planner:
    """Scans, expands and classifies for one project; reports per-path trouble to the tracker."""

    def __init__(
        self,
        name: str,
        root: Path,
        rules: IgnoreRules,
        db: StateDB,
        tracker: StateTracker,
        tick: Callable[[], None],
    ) -> None:
        self.name = name
        self.root = root
        self.rules = rules
        self.db = db
        self.tracker = tracker
        self.tick = tick
        self._root = str(root)
        self._root_id: tuple[int, int] | None = None
        self._root_real = ""  # the root's realpath, read at the start of each plan

    # --- the full walk -------------------------------------------------------

    def scan(self) -> ScanChanges:
        """Walk the folder and compare it with the index (no remote involved)."""
        found = walk(self.root, self.rules, tick=self.tick)
        for path, why in found.skipped.items():
            self.tracker.file_error(path, why)
        for path in found.links:
            self.tracker.notice(path, SYMLINK)
        index = self.db.files(self.name)
        self.tick()
        changes = compare(self.root, found, index)
        for p in list(index):
            if p not in found.files and (
                p in found.skipped or p in found.links or self.rules.is_ignored(p, False)
            ):
                changes.dirty.discard(p)
        self.tracker.keep_errors_of(set(found.skipped) | changes.dirty)
        return changes

    def lost_on_remote(self, present: Iterable[str]) -> list[str]:
        """Index rows whose file the remote no longer has (deleted there by hand): forgotten,
        so the next plan uploads them again."""
        seen = set(present)
        lost = [p for p in self.db.paths(self.name) if p not in seen]  # paths, not rows
        if lost:
            self.db.forget_files(self.name, lost)
        return lost

    # --- one batch -----------------------------------------------------------

    def plan(self, dirty: Iterable[str]) -> Plan:
        """Expand the changed paths to files and classify each one.

        Each path is ``lstat``-ed once: a file is classified with that stat, a folder is
        expanded (its files are classified after).  What the index knows comes from one
        query for a big batch (``_IndexView``), and whether a folder is reached through a
        symlink is worked out once per folder.
        """
        dirty = list(dirty)
        self._root_real = os.path.realpath(self.root)  # once, for every folder's link check
        index = _IndexView(self.db, self.name, len(dirty))
        links: dict[str, bool] = {}
        plan = Plan()
        deletes: list[FileRecord] = []
        done: set[str] = set()
        below: set[str] = set()  # found by expanding folders
        for n, p in enumerate(dirty):
            if n % 256 == 0:
                self.tick()
            if p in done:
                continue
            done.add(p)
            if not_utf8(p):  # from an event: the walk never yields one
                self.tracker.file_error(shown(p), NOT_UTF8)
                continue
            below.update(index.under(p))
            readable, st = self._lstat(p)
            if st is not None and stat.S_ISDIR(st.st_mode):
                below.update(self._expand(p))
            if readable:
                self._classify(p, st, index, links, plan, deletes)
        for n, p in enumerate(below - done):
            if n % 256 == 0:
                self.tick()
            readable, st = self._lstat(p)
            if readable:
                self._classify(p, st, index, links, plan, deletes)
        plan.uploads.sort()
        deletes.sort(key=lambda rec: rec.path)
        self._order(plan, deletes)
        return plan

    def _lstat(self, p: str) -> tuple[bool, os.stat_result | None]:
        """(readable, the path's lstat or None when nothing is there); an unreadable path
        is a per-file error already."""
        try:
            return True, os.lstat(os.path.join(self._root, p))
        except _GONE:
            return True, None
        except OSError as exc:  # a name too long for the system, a folder we cannot enter
            self.tracker.file_error(p, f"cannot read it: {exc.strerror}")
            return False, None

    def _expand(self, p: str) -> Iterable[str]:
        """A folder → the files below it on disk (the index's are the caller's)."""
        if self.rules.is_ignored(p, True):
            return ()
        found = walk(self.root, self.rules, under=p, tick=self.tick)
        for sp, why in found.skipped.items():
            self.tracker.file_error(sp, why)
        for link in found.links:
            self.tracker.notice(link, SYMLINK)
        return found.files.keys()

    def _classify(
        self,
        p: str,
        st: os.stat_result | None,
        index: _IndexView,
        links: dict[str, bool],
        plan: Plan,
        deletes: list[FileRecord],
    ) -> None:
        rec = index.record(p)
        if st is not None:
            parent = p.rpartition("/")[0]
            behind = links.get(parent)
            if behind is None:
                behind = links[parent] = self.behind_link(p, self._root_real)
            if behind:
                self.tracker.notice(parent, SYMLINK)
                return  # neither upload through the link nor trash the remote copy
        if st is None:
            self.tracker.file_ok(p)
            if rec is not None:
                deletes.append(rec)
        elif stat.S_ISLNK(st.st_mode):
            self.tracker.notice(p, SYMLINK)
        elif not stat.S_ISREG(st.st_mode):
            if rec is not None:  # a file replaced by a folder (or a fifo): no longer mirrored
                deletes.append(rec)
        elif self.rules.is_ignored(p, False):
            if rec is not None:
                self.tracker.log.info(
                    "%s: %s is ignored now; its remote copy is left alone", self.name, p
                )
                self.db.forget_files(self.name, [p])
        elif rec is None or rec.key != stat_key(st):
            plan.uploads.append(p)

    def _order(self, plan: Plan, deletes: list[FileRecord]) -> None:
        """Deletions in the way of an upload become clears (they run first): a file below
        what is a file now, or a file where a folder of uploads is now."""
        uploads = set(plan.uploads)
        upload_folders: set[str] = set()
        for u in plan.uploads:
            upload_folders |= _ancestors(u)
        for rec in deletes:
            if _ancestors(rec.path) & uploads or rec.path in upload_folders:
                plan.clears.append(rec)
            else:
                plan.deletes.append(rec)

    def behind_link(self, path: str, root_real: str | None = None) -> bool:
        """True when a parent folder of ``path`` is a symlink (lstat follows parents).
        ``root_real``: the root's realpath, when the caller already has it."""
        parent = os.path.dirname(os.path.join(self.root, path))
        root_real = os.path.realpath(self.root) if root_real is None else root_real
        return os.path.realpath(parent) != root_real + (
            "/" + os.path.dirname(path) if os.path.dirname(path) else ""
        )

    def root_replaced(self) -> bool:
        """The folder at ``root`` is another one than last time (``mv p p.old && cp -a p.old
        p`` keeps the name, not the inode): a watch on it follows the old one."""
        try:
            st = os.stat(self.root)
        except OSError:
            return False  # missing: the full scan's guard handles that
        before, self._root_id = self._root_id, (st.st_dev, st.st_ino)
        return before is not None and before != self._root_id

    # --- guards --------------------------------------------------------------

    def folder_usable(self) -> bool:
        try:
            with os.scandir(self.root) as it:
                return any(True for _ in it)
        except OSError:
            return False

    def folder_hold(self) -> Hold | None:
        """The folder vanished or emptied under a known index: trash nothing."""
        tracked = self.db.count(self.name)[0]
        if tracked == 0 or self.folder_usable():
            return None
        what = "missing" if not self.root.exists() else "empty"
        return Hold(
            f"project folder {self.root} is {what} but {tracked} files were mirrored; "
            "nothing is deleted, syncd resumes when the folder is back",
            PauseKind.FOLDER,
        )

    def hold(self, plan: Plan, confirmed: bool) -> Hold | None:
        """Whether the deletions of this plan need a person's word first."""
        if not (plan.deletes or plan.clears):
            return None
        folder = self.folder_hold()
        if folder is not None or confirmed:
            return folder
        index = self.db.files(self.name)
        tracked = len(index)
        missing = sum(1 for p in index if not os.path.lexists(self.root / p))
        left = len(walk(self.root, self.rules, tick=self.tick).files) if missing == tracked else 1
        if not mass_deletion(missing, tracked, left):
            return None
        return Hold(
            f"{missing} of {tracked} mirrored files vanished at once; nothing was deleted. "
            f"If this is intended, confirm with: syncd resume {self.name} "
            f"--confirm-deletes (or, with no daemon running: syncd sync {self.name} --once "
            "--confirm-deletes)",
            PauseKind.DELETES,
        )


class _IndexView:
    """What the index knows about the paths of one plan.

    A small batch asks per path.  A big one (``INDEX_AT_ONCE`` paths or more: a first
    mirror, a full walk) reads the sorted list of indexed paths once and looks up
    records only for the paths in it: on a first mirror, no query per file at all.
    """

    def __init__(self, db: StateDB, name: str, size: int) -> None:
        self.db = db
        self.name = name
        self.sorted: list[str] | None = db.paths(name) if size >= INDEX_AT_ONCE else None
        self.known = None if self.sorted is None else set(self.sorted)

    def record(self, path: str) -> FileRecord | None:
        if self.known is not None and path not in self.known:
            return None
        return self.db.file(self.name, path)

    def under(self, folder: str) -> list[str]:
        """Indexed paths below ``folder`` (the index may know as a folder what is a file now)."""
        if self.sorted is None:
            return [r.path for r in self.db.files_under(self.name, folder)]
        prefix = folder.rstrip("/") + "/"
        start = bisect.bisect_left(self.sorted, prefix)
        end = bisect.bisect_left(self.sorted, prefix[:-1] + "0", start)  # "0" sorts after "/"
        return self.sorted[start:end]


def _ancestors(path: str) -> set[str]:
    parts = path.split("/")
    return {"/".join(parts[:i]) for i in range(1, len(parts))}

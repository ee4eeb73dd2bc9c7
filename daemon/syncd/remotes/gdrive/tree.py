"""What syncd knows about the Drive folder tree it mirrors into: paths → ids, and listings.

Drive has ids, not paths; titles may repeat inside a folder, and ``title =``
queries ignore case.  ``DriveTree`` keeps, per folder path, the folder's id and
(when it was listed recently) its children by exact title, so that asking
"what is at this path?" for a new file costs no request while the listing is
fresh.  Only the Drive remote writes to it: listings replace a folder's
children, syncd's own writes are applied as they are confirmed.

Folder ids are also kept in the state db (``dir:<path>`` keys), so a restart
does not look every folder up again.  The tree holds no network code.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from ..base import RemoteEntry

FOLDER_MIME = "application/vnd.google-apps.folder"


@dataclass(frozen=True)
class DriveItem:
    """One Drive file or folder, reduced to what syncd uses."""

    id: str
    title: str
    parent: str | None  # My Drive items have one parent since 2020
    is_dir: bool
    md5: str | None
    size: int
    rev: str | None  # headRevisionId (content) for files, version for folders
    trashed: bool
    created: str
    drive_id: str | None = None  # the Shared Drive holding it, if any
    etag: str | None = None  # changes with every change to the item: If-Match on writes

    @classmethod
    def of(cls, res: dict[str, Any]) -> DriveItem:
        parents = res.get("parents") or [{}]
        is_dir = res.get("mimeType") == FOLDER_MIME
        return cls(
            id=str(res["id"]),
            title=str(res.get("title", "")),
            parent=parents[0].get("id"),
            is_dir=is_dir,
            md5=res.get("md5Checksum"),
            size=int(res.get("fileSize") or 0),
            rev=str(res.get("headRevisionId") or res.get("version") or "") or None,
            trashed=bool((res.get("labels") or {}).get("trashed")),
            created=str(res.get("createdDate", "")),
            drive_id=res.get("driveId"),
            etag=res.get("etag"),
        )

    def entry(self, path: str) -> RemoteEntry:
        return RemoteEntry(path, self.id, self.size, self.md5, self.rev, self.is_dir)


def pick(items: list[DriveItem]) -> DriveItem:
    """The one item syncd deals with at a path Drive holds several at: files first, oldest."""
    return min(items, key=lambda i: (i.is_dir, i.created, i.id))


def usable_title(title: str) -> bool:
    """Titles that can be a path component (Drive allows "a/b", "" and "..")."""
    return bool(title) and "/" not in title and title not in (".", "..")


class Folder:
    """A folder's id and, once listed, its live children by exact title."""

    __slots__ = ("id", "children", "listed_at", "lock", "added_at")

    def __init__(self, folder_id: str, listed_at: float = 0.0) -> None:
        self.id = folder_id
        self.added_at = time.monotonic()
        self.children: dict[str, list[DriveItem]] = {}
        self.listed_at = listed_at  # monotonic time of the listing; 0: never listed
        # Held across a re-listing so that confirmed writes land after it, not under it.
        self.lock = threading.Lock()

    def fresh(self, ttl: float) -> bool:
        return self.listed_at > 0 and time.monotonic() - self.listed_at < ttl

    def put(self, item: DriveItem) -> None:
        same = [i for i in self.children.get(item.title, []) if i.id != item.id]
        self.children[item.title] = [*same, item]

    def drop(self, title: str, item_id: str) -> None:
        left = [i for i in self.children.get(title, []) if i.id != item_id]
        if left:
            self.children[title] = left
        else:
            self.children.pop(title, None)

    def replace(self, items: list[DriveItem], at: float) -> None:
        self.children = {}
        for item in items:
            if usable_title(item.title) and not item.trashed:
                self.children.setdefault(item.title, []).append(item)
        self.listed_at = at


def split(path: str) -> tuple[str, str]:
    """ "a/b/c.txt" → ("a/b", "c.txt"); "c.txt" → ("", "c.txt")."""
    head, _, tail = path.rpartition("/")
    return head, tail


class DriveTree:
    """Folder path → Folder ("" is the root); thread-safe for the dict, Folder.lock for children."""

    def __init__(self) -> None:
        self._folders: dict[str, Folder] = {}
        self._lock = threading.Lock()
        self.listed_at = 0.0  # last whole-tree listing (monotonic); 0: never in this process

    def get(self, path: str) -> Folder | None:
        with self._lock:
            return self._folders.get(path)

    def add(self, path: str, folder: Folder) -> Folder:
        """Register a folder unless another thread already did; returns the one kept."""
        with self._lock:
            return self._folders.setdefault(path, folder)

    def ids(self) -> dict[str, str]:
        with self._lock:
            return {p: f.id for p, f in self._folders.items()}

    def remember(self, path: str, item: DriveItem) -> None:
        """A confirmed write put ``item`` at ``path``."""
        parent = self.get(split(path)[0])
        if parent is not None:
            with parent.lock:
                parent.put(item)

    def forget(self, path: str, item_id: str) -> None:
        """``item_id`` is no longer at ``path`` (trashed, moved away, or found elsewhere)."""
        parent = self.get(split(path)[0])
        if parent is not None:
            with parent.lock:
                parent.drop(split(path)[1], item_id)

    def clear(self) -> list[str]:
        """Forget every folder (the root moved or vanished); returns the paths forgotten."""
        with self._lock:
            gone, self._folders, self.listed_at = list(self._folders), {}, 0.0
        return gone

    def drop_folders(self, path: str) -> list[str]:
        """Forget a folder and everything below it; returns the folder paths dropped."""
        prefix = path + "/"
        with self._lock:
            gone = [p for p in self._folders if p == path or p.startswith(prefix)]
            for p in gone:
                del self._folders[p]
        return gone

    def move_folders(self, old: str, new: str) -> list[tuple[str, str]]:
        """Re-key a moved folder's subtree; returns (old path, new path) pairs."""
        prefix = old + "/"
        with self._lock:
            moved = [p for p in self._folders if p == old or p.startswith(prefix)]
            pairs = [(p, new + p[len(old) :]) for p in moved]
            folders = {p: self._folders.pop(p) for p in moved}
            for p, q in pairs:
                self._folders[q] = folders[p]
        return pairs

    def install(
        self, folders: dict[str, str], children: dict[str, list[DriveItem]], started: float
    ) -> set[str]:
        """Replace everything with a whole-tree listing begun at ``started``.

        ``folders``: path → id; ``children``: folder id → its items.  A folder
        registered after the listing began (made meanwhile) is kept.  Returns
        the folder paths that are gone.
        """
        fresh: dict[str, Folder] = {}
        for path, folder_id in folders.items():
            folder = Folder(folder_id)
            folder.replace(children.get(folder_id, []), started)
            fresh[path] = folder
        with self._lock:
            for path, folder in self._folders.items():
                if path not in fresh and folder.added_at > started:
                    fresh[path] = folder
            gone = self._folders.keys() - fresh.keys()
            self._folders = fresh
            self.listed_at = started
        return gone

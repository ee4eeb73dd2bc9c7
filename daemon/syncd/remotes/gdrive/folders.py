"""Paths ↔ Drive ids below one target folder: the root, listings, folders made once.

This module owns the Drive side of syncd's paths for the ``gdrive:`` remote:
finding or creating the target folder (``gdrive:/a/b``) or checking a given
one (``gdrive:id=...``), finding and creating folders below it (one at a time,
so two upload workers never make the same folder twice), answering "what is
at this path?" from the ``DriveTree`` cache while a listing is fresh, and
listing the whole tree in as few calls as the scope allows.  The requests it
stands on are ``drive_calls``; creating exactly once is ``creates``;
``backend`` builds the ``Remote`` operations on it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from ...errors import TargetUnavailable
from ..base import RemoteEntry
from .creates import DriveCreates
from .drive_calls import ITEM_FIELDS, quote
from .transport import DriveApi
from .tree import FOLDER_MIME, DriveItem, DriveTree, Folder, pick, split, usable_title

if TYPE_CHECKING:
    from ...config import DriveConfig, RemoteAddress
    from ..base import RemoteState

log = logging.getLogger("syncd.gdrive")

LISTING_TTL_S = 60.0  # a folder listing answers "is anything at this path?" for this long
RELIST_MAX = 1000  # a stale folder with more children is asked by title instead
PARENTS_PER_QUERY = 40  # folders listed per files.list call when walking the tree


class DriveFolders(DriveCreates):
    """The target folder's tree on Drive as paths; shared by the remote's worker threads."""

    def __init__(
        self,
        address: RemoteAddress,
        cfg: DriveConfig,
        api: DriveApi,
        db: RemoteState,
        project: str,
        service_account: bool,
    ) -> None:
        super().__init__(address, cfg, api, db, project, service_account)
        self.tree = DriveTree()
        self._my_drive_id: str | None = None  # about.get's rootFolderId, once asked
        self._mkdir_lock = threading.Lock()  # two workers never create one folder twice
        self._listing_lock = threading.Lock()
        root = address.folder_id or db.kv_get(project, "root")
        if root is not None:
            self.tree.add("", Folder(root))
            for key, folder_id in db.kv_items(project, "dir:").items():
                self.tree.add(key[4:], Folder(folder_id))

    # --- the root ------------------------------------------------------------

    def resolve_root(self, create: bool) -> Folder:
        if self._addr.folder_id is not None:
            item = self.get(self._addr.folder_id)
            if item is None or not item.is_dir or item.trashed:
                raise TargetUnavailable(
                    f"Drive folder {self._addr.folder_id} is not there, in the trash, or not "
                    "visible to syncd",
                    "with the default drive.file scope syncd only sees folders it created: "
                    "set drive.scope: full, or use gdrive:/syncd/<project>",
                )
            return self._root_found(item, created=False)
        parts = [p for p in (self._addr.path or "/").split("/") if p]
        if not parts:  # gdrive:/ is My Drive itself, which drive.file may not even `get`
            return self._root_found(self._my_drive(), created=False)
        cached = self.tree.get("")
        if cached is not None:
            item = self.get(cached.id)
            same = item is not None and item.title == (parts[-1] if parts else item.title)
            if item is not None and same and item.is_dir and not item.trashed:
                return self._root_found(item, created=False)
            log.info(
                "%s: the Drive folder %s moved or is gone; looking it up",
                self.project,
                self.address,
            )
            self.forget_tree()
        parent = self._my_drive()
        created = False
        for i, name in enumerate(parts):
            found = []
            if not created:  # below a folder made just now there is nothing to find
                found = [
                    DriveItem.of(r) for r in self.query_children(parent.id, name, folders_only=True)
                ]
                found = [f for f in found if f.title == name and not f.trashed]
            if found:
                parent = pick(found)
                continue
            if not create:
                raise TargetUnavailable(
                    f"the Drive folder {self.address} is gone (deleted or in Drive's trash)",
                    "restore it from Drive's trash, or point mirror.to at a new folder",
                )
            parent = self._create_folder(parent.id, name, "newroot:" + "/".join(parts[: i + 1]))
            created = True
        return self._root_found(parent, created)

    def _my_drive(self) -> DriveItem:
        """My Drive's root, by its real id.

        Never ``files.get("root")``: under the default drive.file scope that is a 404
        (rclone backend/drive/drive.go, commit 1e423d21e).  ``about.get`` answers the id
        under every scope; the root itself is only used as a parent.
        """
        if self._my_drive_id is None:
            about = self.api.call(
                lambda: self.api.service.about().get(fields="rootFolderId"),
                "finding My Drive",
            )
            self._my_drive_id = str(about["rootFolderId"])
        return DriveItem(self._my_drive_id, "My Drive", None, True, None, 0, None, False, "")

    def _root_found(self, item: DriveItem, created: bool) -> Folder:
        self._drive_id = item.drive_id
        root = self.tree.get("")
        if root is None or root.id != item.id:
            self.forget_tree()
            root = self.tree.add("", Folder(item.id))
            if self._addr.folder_id is None:
                self.kv("root", item.id)
        if created:
            with root.lock:
                root.replace([], time.monotonic())
            self.tree.listed_at = time.monotonic()  # nothing below a folder made just now
        return root

    def forget_tree(self) -> None:
        for path in self.tree.clear():
            self.kv("dir:" + path if path else "root", None)

    def root(self) -> Folder:
        return self.tree.get("") or self.resolve_root(create=False)

    # --- listing -------------------------------------------------------------

    def list_files(
        self, seen: Callable[[list[DriveItem]], None] | None = None
    ) -> Iterator[RemoteEntry]:
        """Every file below the root (one per path); refreshes the whole tree cache.

        ``seen``: given every item listed, before the first path is yielded.
        """
        root = self.root()
        started = time.monotonic()
        items = self._list_tree(root.id)
        children: dict[str, list[DriveItem]] = {}
        for item in items:
            if item.parent is not None:
                children.setdefault(item.parent, []).append(item)
        folders: dict[str, str] = {"": root.id}
        files: dict[str, list[DriveItem]] = {}
        stack = [("", root.id)]
        while stack:
            prefix, folder_id = stack.pop()
            for item in children.get(folder_id, []):
                if not usable_title(item.title):
                    continue
                path = f"{prefix}/{item.title}" if prefix else item.title
                if item.is_dir:
                    if path not in folders:  # two folders with one title: the oldest wins
                        folders[path] = item.id
                        stack.append((path, item.id))
                else:
                    files.setdefault(path, []).append(item)
        self._install(folders, children, started)
        if seen is not None:
            seen(items)
        for path, found in files.items():
            yield pick(found).entry(path)

    def _list_tree(self, root_id: str) -> list[DriveItem]:
        """Every live item below the root, in as few calls as the scope allows.

        With drive.file everything syncd can see is its own: one flat listing
        (paged) plus parent links rebuilds the tree.  With full access that
        would be the whole Drive, so folders are walked level by level, many
        parents per query.
        """
        if self.cfg.scope == "file":
            return self.list_items("trashed = false", "listing the Drive folder")
        items: list[DriveItem] = []
        level = [root_id]
        while level:
            batch, level = level[:PARENTS_PER_QUERY], level[PARENTS_PER_QUERY:]
            parents = " or ".join(f"{quote(p)} in parents" for p in batch)
            found = self.list_items(f"({parents}) and trashed = false", "listing the Drive folder")
            if not found and len(batch) > 1:
                # "(A in parents) or (B in parents)" sometimes answers nothing (Google issue
                # tracker 149522397; rclone's fast_list_bug_fix): never conclude "empty,
                # upload everything again" from it; ask each folder on its own.
                for parent in batch:
                    q = f"{quote(parent)} in parents and trashed = false"
                    found.extend(self.list_items(q, "listing the Drive folder"))
            items.extend(found)
            level.extend(i.id for i in found if i.is_dir)
        return items

    def _install(
        self, folders: dict[str, str], children: dict[str, list[DriveItem]], started: float
    ) -> None:
        old = self.tree.ids()
        for path in self.tree.install(folders, children, started):
            self.kv("dir:" + path, None)
        for path, folder_id in folders.items():
            if path and old.get(path) != folder_id:
                self.kv("dir:" + path, folder_id)

    def named(self, folder: Folder, title: str) -> list[DriveItem]:
        """The live items called exactly ``title`` in ``folder``, from a fresh listing if any."""
        if self.tree.listed_at == 0 and not folder.fresh(LISTING_TTL_S):
            with self._listing_lock:  # first question of this process: list the whole tree once
                if self.tree.listed_at == 0:
                    for _ in self.list_files():
                        pass
                    folder = self.tree.get(self._path_of(folder)) or folder
        with folder.lock:
            if not folder.fresh(LISTING_TTL_S):
                started = time.monotonic()
                if folder.listed_at == 0 or len(folder.children) <= RELIST_MAX:
                    q = f"{quote(folder.id)} in parents and trashed = false"
                    folder.replace(self.list_items(q, "listing a Drive folder"), started)
                else:
                    found = [DriveItem.of(r) for r in self.query_children(folder.id, title)]
                    exact = [i for i in found if i.title == title]
                    folder.children.pop(title, None)
                    for item in exact:
                        folder.put(item)
            return list(folder.children.get(title, []))

    def _path_of(self, folder: Folder) -> str:
        for path, folder_id in self.tree.ids().items():
            if folder_id == folder.id:
                return path
        return ""

    def lookup(self, path: str) -> list[DriveItem]:
        parent_path, title = split(path)
        folder = self.folder(parent_path, create=False)
        return [] if folder is None else self.named(folder, title)

    # --- folders -------------------------------------------------------------

    def folder(self, path: str, create: bool) -> Folder | None:
        """The folder at ``path`` (made, with its parents, if ``create``), or None."""
        if not path:
            return self.root()
        known = self.tree.get(path)
        if known is not None:
            return known
        parent_path, name = split(path)
        parent = self.folder(parent_path, create)
        if parent is None:
            return None
        if not create:
            found = [i for i in self.named(parent, name) if i.is_dir]
            return self._add_folder(path, pick(found)) if found else None
        with self._mkdir_lock:
            known = self.tree.get(path)
            if known is not None:
                return known
            found = [i for i in self.named(parent, name) if i.is_dir]
            if found:
                return self._add_folder(path, pick(found))
            item = self._create_folder(parent.id, name, "newdir:" + path)
            folder = self._add_folder(path, item)
            with folder.lock:
                folder.replace([], time.monotonic())  # made just now: known empty
            with parent.lock:
                parent.put(item)
            return folder

    def _add_folder(self, path: str, item: DriveItem) -> Folder:
        folder = self.tree.add(path, Folder(item.id))
        if folder.id == item.id:
            self.kv("dir:" + path, item.id)
        return folder

    def _create_folder(self, parent_id: str, name: str, key: str) -> DriveItem:
        def ours(item: DriveItem) -> bool:
            return (
                item.is_dir
                and not item.trashed
                and item.parent == parent_id
                and (item.title == name)
            )

        body = {"title": name, "mimeType": FOLDER_MIME, "parents": [{"id": parent_id}]}
        item = self.insert_once(
            key,
            ours,
            lambda fid: self.api.call(
                lambda: self.files().insert(
                    body={**body, "id": fid}, fields=ITEM_FIELDS, supportsAllDrives=True
                ),
                f"creating folder {name}",
            ),
            None,
        )
        self.kv(key, None)
        return item

    def forget_folders(self, path: str) -> None:
        """The folder at ``path`` is gone (trashed, deleted): forget it and what is below it."""
        for gone in self.tree.drop_folders(path):
            self.kv("dir:" + gone, None)

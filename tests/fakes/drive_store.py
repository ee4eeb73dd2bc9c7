"""The fake Drive's data: items, who may see them, indexes, and the rules of writing.

Owns the items (files, folders, Google-native files, shortcuts), each user's
My Drive root (an id of its own, like ``0AB…``; ``root`` is only an alias),
Shared Drives, the parent and per-app indexes that keep every request
O(what it touches), reserved ids (``files.generateIds``, with a lifetime),
visibility (``can_see``: scope, owner, app) and the changes feed.  No HTTP
here: ``drive_protocol`` maps requests onto it, ``drive_render`` shapes
answers.  Callers hold FakeDrive's lock.
"""

from __future__ import annotations

import hashlib
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .drive_access import BY_HAND, USER, Access
from .drive_changes import Change, ChangeLog
from .drive_errors import (
    DriveApiError,
    invalid,
    new_file_id,
    new_root_id,
    not_found,
    now_rfc3339,
    storage_quota_exceeded,
)
from .drive_query import Query

FOLDER_MIME = "application/vnd.google-apps.folder"
SHORTCUT_MIME = "application/vnd.google-apps.shortcut"
DOC_MIME = "application/vnd.google-apps.document"
NATIVE_PREFIX = "application/vnd.google-apps."
ROOT_ID = "0ABfakeMyDriveRootUk9PVA"  # the fake user's My Drive (real ones look like this)
GENERATED_ID_TTL_S = 3600.0  # Google does not document one; ids must not be kept for ever


@dataclass(eq=False)
class Item:
    id: str
    title: str
    mime_type: str
    parents: list[str]  # at most one: "A file can only have one parent folder" (v2 reference)
    owner: str  # the owning user; "" inside a Shared Drive (the drive owns it)
    seq: int  # creation order: listings come out in it
    content: bytes = b""
    description: str | None = None
    created: str = field(default_factory=now_rfc3339)
    modified: str = field(default_factory=now_rfc3339)
    version: int = 1
    head_revision: int = 1
    explicitly_trashed: bool = False
    apps: set[str] = field(default_factory=set)  # apps that see it under drive.file
    drive_id: str | None = None  # the Shared Drive holding it
    shortcut_target: str | None = None
    md5: str = ""  # cached: listings render thousands of items, content can be large

    def __post_init__(self) -> None:
        self.md5 = hashlib.md5(self.content).hexdigest()

    def replace_content(self, data: bytes) -> None:
        self.content, self.md5 = data, hashlib.md5(data).hexdigest()

    @property
    def is_folder(self) -> bool:
        return self.mime_type == FOLDER_MIME

    @property
    def has_blob(self) -> bool:
        """Binary content (md5Checksum, fileSize, headRevisionId): not folders, Docs, shortcuts."""
        return not self.mime_type.startswith(NATIVE_PREFIX)

    def touch(self, content_changed: bool = False, modified: bool = True) -> None:
        self.version += 1
        if content_changed:
            self.head_revision += 1
        if modified:
            self.modified = now_rfc3339()


class Store:
    """Items, indexes and the changes feed. Callers hold FakeDrive's lock."""

    def __init__(self, user: str = USER) -> None:
        self.items: dict[str, Item] = {}
        self.children: defaultdict[str, dict[str, Item]] = defaultdict(dict)
        self.by_app: defaultdict[str, dict[str, Item]] = defaultdict(dict)
        self.roots: dict[str, str] = {}  # user → their My Drive's id
        self.drives: dict[str, set[str]] = {}  # Shared Drive id → member emails
        self.no_storage: set[str] = set()  # users (service accounts) without a storage quota
        self.reserved: dict[str, tuple[str, float]] = {}  # generated id → (user, reserved at)
        self.id_ttl = GENERATED_ID_TTL_S
        self.clock: Callable[[], float] = time.monotonic  # FakeDrive.set_clock: a frozen one
        self.changes = ChangeLog()
        self.last_scanned = 0
        self._seq = 0
        self.main_user = user
        self.root_of(user, ROOT_ID)

    # --------------------------------------------------------------- identity and visibility

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def root_of(self, user: str, root_id: str | None = None) -> str:
        """The id of ``user``'s My Drive (made on first use, as for a new account)."""
        if user not in self.roots:
            root = Item(root_id or new_root_id(), "My Drive", FOLDER_MIME, [], user, 0)
            self.items[root.id] = root
            self.roots[user] = root.id
        return self.roots[user]

    def is_root(self, item: Item) -> bool:
        return not item.parents and (item.id in self.roots.values() or item.id in self.drives)

    def resolve(self, file_id: str, access: Access | None) -> str:
        if file_id == "root":
            return self.root_of(access.user if access and access.user else self.main_user)
        return file_id

    def can_see(self, item: Item, access: Access | None) -> bool:
        if access is None:
            return True  # the fake itself
        if item.id in self.drives:
            return access.full and access.user in self.drives[item.id]
        if not item.parents:  # a My Drive root: `GET files/root` is a 404 under drive.file
            return access.full and self.roots.get(access.user) == item.id
        if item.drive_id is not None:
            member = access.user in self.drives.get(item.drive_id, ())
        else:
            member = item.owner == access.user
        return member and (access.full or access.app in item.apps)

    def could_see(self, change: Change, access: Access) -> bool:
        """Visibility of a change entry (for removed items, as they were when removed)."""
        item = self.items.get(change.file_id)
        if item is not None:
            return self.can_see(item, access)
        if change.drive_id is not None:
            member = access.user in self.drives.get(change.drive_id, ())
        else:
            member = change.owner == access.user
        return member and (access.full or access.app in change.apps)

    def find(self, file_id: str, access: Access | None, all_drives: bool = True) -> Item:
        """The item, or the 404 Drive answers for missing *and* for invisible items."""
        item = self.items.get(self.resolve(file_id, access))
        if item is None or not self.can_see(item, access):
            raise not_found(file_id)
        if item.drive_id is not None and not all_drives:
            raise not_found(file_id)  # Shared Drive items need supportsAllDrives=true
        return item

    def is_trashed(self, item: Item) -> bool:
        # Trashing a folder implicitly trashes everything below it (one parent: a chain).
        cur: Item | None = item
        while cur is not None and not cur.explicitly_trashed:
            cur = self.items.get(cur.parents[0]) if cur.parents else None
        return cur is not None

    # --------------------------------------------------------------- indexes and changes

    def _index(self, item: Item) -> None:
        self.items[item.id] = item
        for parent in item.parents:
            self.children[parent][item.id] = item
        for app in item.apps:
            self.by_app[app][item.id] = item

    def _unindex(self, item: Item) -> None:
        for parent in item.parents:
            self.children[parent].pop(item.id, None)
        for app in item.apps:
            self.by_app[app].pop(item.id, None)

    def changed(self, item: Item, removed: bool = False) -> None:
        self.changes.record(
            item.id,
            removed=removed,
            owner=item.owner,
            apps=frozenset(item.apps),
            drive_id=item.drive_id,
        )

    def grant_app(self, item: Item, app: str) -> None:
        """The user opened ``item`` with ``app`` (Picker, "Open with"): drive.file now sees it."""
        if app and app not in item.apps:
            item.apps.add(app)
            self.by_app[app][item.id] = item

    def live_children(self, folder_id: str) -> list[Item]:
        kids = self.children.get(folder_id, {})
        return sorted((i for i in kids.values() if not self.is_trashed(i)), key=lambda i: i.seq)

    # --------------------------------------------------------------- ids

    def reserve_ids(self, user: str, n: int) -> list[str]:
        ids = [new_file_id() for _ in range(n)]
        now = self.clock()
        for file_id in ids:
            self.reserved[file_id] = (user, now)
        return ids

    def _take_reserved(self, file_id: str, user: str) -> None:
        if file_id in self.items:
            raise DriveApiError(409, "duplicate", "A file already exists with the provided ID.")
        owner, at = self.reserved.get(file_id, ("", 0.0))
        if owner != user or self.clock() - at > self.id_ttl:
            raise invalid("The provided file ID is not usable.", "file.id")

    # --------------------------------------------------------------- writing

    def _parent(self, ref: Any, access: Access | None) -> Item:
        pid = self.resolve(ref.get("id", "") if isinstance(ref, dict) else str(ref), access)
        parent = self.items.get(pid)
        own_root = access is not None and self.roots.get(access.user) == pid
        if parent is None or not (own_root or self.can_see(parent, access)):
            raise not_found(pid)
        if not parent.is_folder:
            raise invalid(f"Parent is not a folder: {pid}", "parents")
        return parent

    def _parents(self, refs: list[Any], access: Access | None) -> list[Item]:
        parents = [self._parent(ref, access) for ref in refs]
        if len({p.id for p in parents}) > 1:
            raise DriveApiError(
                403, "cannotAddParent", "Increasing the number of parents is not allowed."
            )
        return parents[:1]

    def check_insert(self, meta: dict[str, Any], access: Access | None) -> Item:
        """Validation done when a resumable session starts, and again at commit; the parent."""
        user = access.user if access is not None and access.user else self.main_user
        if meta.get("id") is not None:
            self._take_reserved(str(meta["id"]), user)
        parents = self._parents(meta.get("parents") or [{"id": "root"}], access)
        return parents[0]

    def insert(
        self,
        meta: dict[str, Any],
        content: bytes | None,
        media_type: str | None,
        access: Access | None,
        app: str,
    ) -> Item:
        parent = self.check_insert(meta, access)
        user = access.user if access is not None and access.user else self.main_user
        mime = meta.get("mimeType") or media_type or "application/octet-stream"
        drive_id = parent.drive_id or (parent.id if parent.id in self.drives else None)
        if user in self.no_storage and drive_id is None and not mime.startswith(NATIVE_PREFIX):
            raise storage_quota_exceeded()
        target = None
        if mime == SHORTCUT_MIME:
            target = (meta.get("shortcutDetails") or {}).get("targetId")
            if not target:
                raise invalid("A shortcut needs shortcutDetails.targetId.", "shortcutDetails")
            self.find(target, access)
        file_id = str(meta.get("id") or new_file_id())
        self.reserved.pop(file_id, None)
        item = Item(
            id=file_id,
            title=meta.get("title") or "Untitled",
            mime_type=mime,
            parents=[parent.id],
            owner="" if drive_id else user,
            seq=self._next_seq(),
            content=(content or b"") if not mime.startswith(NATIVE_PREFIX) else b"",
            description=meta.get("description"),
            apps={app} if app != BY_HAND else set(),
            drive_id=drive_id,
            shortcut_target=target,
        )
        self._index(item)
        self.changed(item)
        return item

    def update(
        self,
        item: Item,
        meta: dict[str, Any],
        content: bytes | None,
        add_parents: str = "",
        remove_parents: str = "",
        access: Access | None = None,
    ) -> Item:
        if self.is_root(item):
            raise DriveApiError(403, "insufficientFilePermissions", "The root cannot be modified.")
        refs = [r.get("id", "") for r in meta["parents"]] if "parents" in meta else item.parents
        removed = {self.resolve(p, access) for p in csv_list(remove_parents)}
        wanted = [self.resolve(p, access) for p in refs if self.resolve(p, access) not in removed]
        added = [self.resolve(p, access) for p in csv_list(add_parents)]
        wanted += [p for p in added if p not in wanted]
        if wanted != item.parents:
            new_parents = [p.id for p in self._parents(wanted, access)]
            if not new_parents:
                raise invalid("An item must keep a parent.", "parents")
            self._unindex(item)
            item.parents = new_parents
            self._index(item)
        item.title = meta.get("title") or item.title
        item.mime_type = meta.get("mimeType") or item.mime_type
        item.description = meta.get("description", item.description)
        if "trashed" in (meta.get("labels") or {}):
            item.explicitly_trashed = bool(meta["labels"]["trashed"])
        if content is not None:
            if not item.has_blob:
                raise invalid("Only files with binary content can have their content replaced.")
            item.replace_content(content)
        item.touch(content_changed=content is not None)
        self.changed(item)
        return item

    def set_trashed(self, item: Item, trashed: bool) -> None:
        if self.is_root(item):
            raise DriveApiError(403, "insufficientFilePermissions", "The root cannot be trashed.")
        item.explicitly_trashed = trashed
        item.touch(modified=False)  # trashing bumps the version but not modifiedDate
        self.changed(item)

    def delete(self, item: Item) -> None:
        if self.is_root(item):
            raise DriveApiError(403, "insufficientFilePermissions", "The root cannot be deleted.")
        doomed = [item]
        for cur in doomed:  # grows while iterating: a breadth-first walk of descendants
            doomed.extend(self.children.get(cur.id, {}).values())
        for victim in doomed:
            self._unindex(victim)
            self.items.pop(victim.id, None)
            self.children.pop(victim.id, None)
            self.changed(victim, removed=True)

    # --------------------------------------------------------------- searching

    def search(
        self,
        query: Query,
        access: Access | None,
        drive_id: str | None = None,
        all_drives: bool = False,
    ) -> list[Item]:
        """Every item ``access`` may see that matches, in creation order.

        ``drive_id``: only that Shared Drive (``corpora=drive``); otherwise Shared Drive
        items only with ``all_drives`` (``includeItemsFromAllDrives`` + ``supportsAllDrives``).
        """
        if query.parents is not None:
            pool: list[Item] = [i for p in query.parents for i in self.children.get(p, {}).values()]
        elif access is not None and not access.full:
            pool = list(self.by_app.get(access.app, {}).values())
        else:
            pool = [i for i in self.items.values() if i.parents]
        self.last_scanned = len(pool)  # what the plan cost (tests of the index read it)
        found = {
            i.id: i
            for i in pool
            if (i.drive_id == drive_id if drive_id else all_drives or i.drive_id is None)
            and self.can_see(i, access)
            and query.matches(i, self.is_trashed(i))
        }
        return sorted(found.values(), key=lambda i: i.seq)


def csv_list(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]

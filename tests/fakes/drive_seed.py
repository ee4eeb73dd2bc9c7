"""Looking into the fake Drive and acting on it as *someone else* (tests only, no HTTP).

Seeding helpers take ``by``: the actor who makes the item — ``BY_HAND`` (the
Drive web UI, the default), ``COLAB`` (another app), or ``APP`` (as if syncd
had made it earlier).  Under the drive.file scope syncd sees only ``APP``
items (and items ``open_with`` granted it); everything else answers 404.
Edits, moves and trashes made here keep an item's visibility, like a person
editing a file syncd created.  Every change shows up in the changes feed.

Inspection helpers (``tree``, ``find``, ``ids``) walk the parent index; with
``app=`` they only follow items that app can see (two folders called
``syncd`` — a hand-made one and syncd's own — are then told apart).
"""

from __future__ import annotations

import threading
from typing import Any

from .drive_access import APP, BY_HAND
from .drive_render import render_file
from .drive_store import DOC_MIME, FOLDER_MIME, SHORTCUT_MIME, Item, Store


class DriveInspection:
    """The inspection and seeding half of FakeDrive (a mixin)."""

    _lock: threading.RLock
    _store: Store
    url: str

    def _render(self, item: Item) -> dict[str, Any]:
        return render_file(self._store, item, self.url)

    def _kids(self, folder_id: str, app: str | None) -> list[Item]:
        return [i for i in self._store.live_children(folder_id) if app is None or app in i.apps]

    # ---------------------------------------------------------------- looking

    @property
    def root_id(self) -> str:
        """The id of My Drive (``root`` is only an alias of it)."""
        return self._store.root_of(self._store.main_user)

    def get(self, file_id: str) -> dict[str, Any]:
        with self._lock:
            return self._render(self._store.find(file_id, None))

    def content(self, file_id: str) -> bytes:
        with self._lock:
            return self._store.find(file_id, None).content

    def children(
        self, folder_id: str | None = None, *, include_trashed: bool = False
    ) -> list[dict]:
        with self._lock:
            fid = self._store.resolve(folder_id or self.root_id, None)
            kids = self._store.children.get(fid, {}).values()
            return [
                self._render(i)
                for i in sorted(kids, key=lambda i: i.seq)
                if include_trashed or not self._store.is_trashed(i)
            ]

    def tree(self, root_id: str | None = None, *, app: str | None = None) -> dict[str, str | None]:
        """Relative path → md5 of every live item under a folder; folders end in "/" → None.

        Google-native files and shortcuts (no content of their own) map to "".
        """
        with self._lock:
            out: dict[str, str | None] = {}
            stack = [(self._store.resolve(root_id or self.root_id, None), "")]
            while stack:
                folder_id, prefix = stack.pop()
                for item in self._kids(folder_id, app):
                    key = prefix + item.title + ("/" if item.is_folder else "")
                    if key in out:
                        raise AssertionError(f"fake Drive holds two items at {key!r}")
                    out[key] = None if item.is_folder else item.md5 if item.has_blob else ""
                    if item.is_folder:
                        stack.append((item.id, key))
            return dict(sorted(out.items()))

    def ids(self, root_id: str | None = None, *, app: str | None = None) -> dict[str, str]:
        """Relative path → id of every live file (not folder) under a folder."""
        with self._lock:
            out: dict[str, str] = {}
            stack = [(self._store.resolve(root_id or self.root_id, None), "")]
            while stack:
                folder_id, prefix = stack.pop()
                for item in self._kids(folder_id, app):
                    if item.is_folder:
                        stack.append((item.id, prefix + item.title + "/"))
                    else:
                        out[prefix + item.title] = item.id
            return out

    def find(
        self, path: str, root_id: str | None = None, *, app: str | None = None
    ) -> dict[str, Any] | None:
        """The live item at a relative path ("a/b.txt", "a/" or "a"), or None."""
        with self._lock:
            item = self._walk(path, root_id, app)
            return None if item is None else self._render(item)

    def _walk(self, path: str, root_id: str | None, app: str | None = None) -> Item | None:
        item = self._store.find(root_id or self.root_id, None)
        for name in [p for p in path.split("/") if p]:
            found = [i for i in self._kids(item.id, app) if i.title == name]
            if len(found) > 1:
                raise AssertionError(f"fake Drive holds {len(found)} items named {name!r}")
            if not found:
                return None
            item = found[0]
        return item

    def duplicates(self) -> list[tuple[str, str, list[str]]]:
        """(parent id, title, ids) for every title held by several live items of one folder."""
        with self._lock:
            groups: dict[tuple[str, str], list[str]] = {}
            for parent in list(self._store.children):
                for item in self._store.live_children(parent):
                    groups.setdefault((parent, item.title), []).append(item.id)
            return [(p, t, ids) for (p, t), ids in groups.items() if len(ids) > 1]

    def trashed(self) -> list[dict[str, Any]]:
        with self._lock:
            return [
                self._render(i)
                for i in self._store.items.values()
                if i.parents and self._store.is_trashed(i)
            ]

    # ---------------------------------------------------------------- acting as someone else

    def trash(self, file_id: str) -> None:
        """Move an item (and so everything below it) to the trash, as a person would."""
        with self._lock:
            self._store.set_trashed(self._store.find(file_id, None), True)

    def untrash(self, file_id: str) -> None:
        """Restore an item from the trash, as a person would (Drive v2 ``files.untrash``)."""
        with self._lock:
            self._store.set_trashed(self._store.find(file_id, None), False)

    def delete(self, file_id: str) -> None:
        """Delete an item for good (skipping the trash), as another client would.

        Drive v2 ``files.delete``: "Permanently deletes a file by ID. Skips the trash."
        The changes feed then reports ``deleted: true`` without a ``file`` (Drive v2
        "Retrieve changes" guide).
        """
        with self._lock:
            self._store.delete(self._store.find(file_id, None))

    def move(self, file_id: str, folder_id: str, title: str | None = None) -> None:
        """Move (and maybe rename) an item as another client would."""
        with self._lock:
            item = self._store.find(file_id, None)
            meta = {"title": title} if title else {}
            self._store.update(item, meta, None, folder_id, ",".join(item.parents))

    def set_content(self, file_id: str, data: bytes) -> dict[str, Any]:
        """Change a file as another client (say Colab) would: new md5, version bump."""
        with self._lock:
            item = self._store.update(self._store.find(file_id, None), {}, data)
            return self._render(item)

    def expire_change_tokens(self) -> None:
        """Drive stops honouring every changes-feed page token issued so far (400)."""
        with self._lock:
            self._store.changes.expire_tokens()

    def open_with(self, file_id: str, app: str = APP) -> None:
        """The user picks the item with ``app`` (Picker / "Open with"): drive.file sees it."""
        with self._lock:
            self._store.grant_app(self._store.find(file_id, None), app)

    def mkdir(self, path: str, parent_id: str | None = None, *, by: str = BY_HAND) -> str:
        """Create the missing folders of `path` (like mkdir -p); return the last one's id.

        An existing folder of that name is reused whoever made it, preferring one ``by``
        can see.
        """
        with self._lock:
            folder = self._store.resolve(parent_id or self.root_id, None)
            for name in [p for p in path.split("/") if p]:
                existing = [
                    i for i in self._store.live_children(folder) if i.title == name and i.is_folder
                ]
                existing.sort(key=lambda i: by not in i.apps)
                if existing:
                    folder = existing[0].id
                else:
                    folder = self._seed(folder, name, FOLDER_MIME, None, by).id
            return folder

    def put_file(
        self,
        path: str,
        data: bytes,
        parent_id: str | None = None,
        mime_type: str = "application/octet-stream",
        *,
        by: str = BY_HAND,
    ) -> str:
        """Create a new file at `path` (a second call makes a duplicate, as Drive allows)."""
        folder_path, _, title = path.strip("/").rpartition("/")
        with self._lock:
            folder = self.mkdir(folder_path, parent_id, by=by)
            return self._seed(folder, title, mime_type, data, by).id

    def put_doc(
        self,
        path: str,
        parent_id: str | None = None,
        *,
        mime_type: str = DOC_MIME,
        by: str = BY_HAND,
    ) -> str:
        """A Google Docs editors file (no md5Checksum, fileSize or headRevisionId)."""
        folder_path, _, title = path.strip("/").rpartition("/")
        with self._lock:
            folder = self.mkdir(folder_path, parent_id, by=by)
            return self._seed(folder, title, mime_type, None, by).id

    def put_shortcut(
        self, path: str, target_id: str, parent_id: str | None = None, *, by: str = BY_HAND
    ) -> str:
        """A shortcut to ``target_id`` (no md5Checksum, fileSize or headRevisionId)."""
        folder_path, _, title = path.strip("/").rpartition("/")
        with self._lock:
            folder = self.mkdir(folder_path, parent_id, by=by)
            meta = {
                "title": title,
                "mimeType": SHORTCUT_MIME,
                "parents": [{"id": folder}],
                "shortcutDetails": {"targetId": target_id},
            }
            return self._store.insert(meta, None, None, None, by).id

    def _seed(self, folder: str, title: str, mime: str, data: bytes | None, by: str) -> Item:
        meta = {"title": title, "mimeType": mime, "parents": [{"id": folder}]}
        return self._store.insert(meta, data, None, None, by)

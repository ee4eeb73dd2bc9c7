"""``gdrive:`` — a Google Drive folder as a mirror target (Drive API v2 via pydrive2's stack).

This module owns the ``Remote`` operations on Drive: stat, uploads, moves as
metadata patches, ``files.trash`` (never a delete), and pruning emptied
folders.  Paths ↔ ids, listings and idempotent creates are
``folders``; the transport (pacing, retries, timeouts, errors) is
``transport``; credentials are ``credentials``.  Only the ``remotes/gdrive`` modules
import pydrive2, googleapiclient or oauth2client.

Idempotent creates: before a file is inserted, an id reserved with
``files.generateIds`` is written to the state db (``new:<path>`` with the md5
being sent), and the insert carries that id.  A retry after a lost response
meets 409 and adopts the file; after a crash, the next attempt finds the
intent and adopts or updates the file it names (if it still holds what syncd
wrote) instead of making a second one.  The intent is removed once the create
is confirmed.

Uploads never commit a torn file: up to 5 MiB the content is read into memory
(checked unchanged across the read) and sent in one multipart request; larger
files are hashed, then sent in 8 MiB resumable chunks read with ``pread``, and
the chunk that would commit the upload is only sent if the file is unchanged.
Every upload is verified: the md5 Drive answers must be the one sent
(``_verified``), else it goes again by the resumable path.

``stat`` of a path syncd has no id for answers from a listing up to
``LISTING_TTL_S`` old (refreshed per folder when stale), so a new file costs
one request, not two.  A file another client creates at that very path within
that window is not seen (with the default drive.file scope, files other apps
create are never visible anyway); the worst outcome is two files with one
title, never an overwrite: every write over an existing file is preceded by a
``files.get`` of its id.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import mimetypes
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...errors import FileChanged, FileError, TransientError
from ...fileio import open_source, same_version
from ..base import Features, RemoteEntry, UploadResult
from .credentials import CredentialSource
from .folders import ITEM_FIELDS, DriveFolders, quote
from .transport import (
    MULTIPART_MAX,
    ApiError,
    BytesMedia,
    DriveApi,
    FileChunks,
    SourceChanged,
    shared_pacer,
)
from .tree import DriveItem, pick, split

if TYPE_CHECKING:
    from googleapiclient.http import MediaUpload

    from ...config import DriveConfig, RemoteAddress
    from ..base import RemoteState

log = logging.getLogger("syncd.gdrive")

VERIFY_SENDS = 3  # sends of one upload (the first, then resumable) before giving up for now


def _written(intent: dict[str, Any]) -> tuple[str | None, ...]:
    """The md5s a file created under this intent may hold while it is only syncd's.

    ``bad``: what Drive stored of syncd's own sends that did not arrive intact.
    """
    return tuple(m for m in (intent.get("md5"), intent.get("prev"), *intent.get("bad", ())) if m)


def _mime(title: str) -> str:
    return mimetypes.guess_type(title, strict=False)[0] or "application/octet-stream"


def drive_features(scope: str) -> Features:
    """What the mirror engine may count on with Drive (``remotes.base.Features``)."""
    return Features(
        stable_ids=True,  # a file keeps its id across renames and moves
        listing_md5=True,  # md5Checksum comes with every listing
        prunes_folders=scope == "full",  # drive.file cannot see others' files in a folder
        trash=True,  # files.trash: recoverable for 30 days
        duplicate_names=True,  # titles are not unique in a folder
        name_max_bytes=None,
    )


class GDriveRemote:
    """One project's target folder on Google Drive."""

    def __init__(
        self, address: RemoteAddress, cfg: DriveConfig, db: RemoteState, project: str
    ) -> None:
        self.address = address.raw
        self.features = drive_features(cfg.scope)
        self.cfg = cfg
        self.db = db
        self.project = project
        self.creds = CredentialSource(cfg)
        pacer = shared_pacer(cfg.endpoint, str(self.creds.path), cfg.requests_per_second)
        self.api = DriveApi(cfg.endpoint, cfg.timeout, pacer, self.creds)
        self.creds.service = self.api.service
        self.ns = DriveFolders(address, cfg, self.api, db, project, self.creds.service_account)
        self.tree = self.ns.tree

    def check(self, create: bool = False) -> None:
        self.creds.load()
        self.ns.resolve_root(create)

    def list_all(self) -> Iterator[RemoteEntry]:
        yield from self.ns.list_files()

    # --- stat ----------------------------------------------------------------

    def stat(self, path: str, known: RemoteEntry | None) -> RemoteEntry | None:
        if known is not None and known.id and not known.is_dir:
            item = self.ns.get(known.id, path)
            if item is not None and not item.trashed and self._is_at(item, path):
                self.tree.remember(path, item)
                sent = self._kv_json("sent:" + path)
                if sent is not None and (sent["id"], sent["md5"]) == (item.id, item.md5):
                    # syncd's own send that Drive stored wrongly, not someone else's edit:
                    # to the engine it is still what syncd recorded, so it is replaced.
                    return dataclasses.replace(item.entry(path), md5=known.md5)
                return item.entry(path)
            self.tree.forget(path, known.id)
        found = [i for i in self.ns.lookup(path) if known is None or i.id != known.id]
        if not found:
            return None
        item = pick(found)
        if not item.is_dir and self._unfinished_create(path, item):
            return None  # syncd's own upload that was never recorded: upload() takes it over
        return item.entry(path)

    def _is_at(self, item: DriveItem, path: str) -> bool:
        parent_path, title = split(path)
        if item.title != title:
            return False
        folder = self.ns.folder(parent_path, create=False)
        return folder is not None and item.parent == folder.id

    def _unfinished_create(self, path: str, item: DriveItem) -> bool:
        intent = self._intent(path)
        return intent is not None and intent["id"] == item.id and item.md5 in _written(intent)

    def _intent(self, path: str) -> dict[str, Any] | None:
        return self._kv_json("new:" + path)

    def _kv_json(self, key: str) -> dict[str, Any] | None:
        raw = self.db.kv_get(self.project, key)
        return json.loads(raw) if raw else None

    def folder(self, path: str) -> RemoteEntry | None:
        folder = self.ns.folder(path, create=False)
        if folder is None:
            return None
        item = self.ns.get(folder.id)
        if item is None or item.trashed or not item.is_dir:
            self.ns.forget_folders(path)
            return None
        return item.entry(path)

    # --- upload --------------------------------------------------------------

    def upload(self, path: str, source: Path, replace: RemoteEntry | None) -> UploadResult:
        fd = open_source(source, path)
        try:
            before = os.fstat(fd)

            def unchanged() -> None:
                try:
                    now = os.stat(source)
                except OSError:
                    raise SourceChanged() from None
                if not same_version(before, os.fstat(fd)) or not same_version(before, now):
                    raise SourceChanged()

            size, mime = before.st_size, _mime(split(path)[1])
            try:
                md5, media = self._snapshot(fd, size, mime, unchanged)
                item = self._write(path, replace, md5, size, media)
                item = self._verified(
                    path, item, md5, size, lambda: FileChunks(fd, size, mime, unchanged)
                )
            except SourceChanged:
                raise FileChanged(path, "the file changed while it was being uploaded") from None
            except OSError as exc:
                raise FileError(path, f"cannot read it: {exc.strerror}") from exc
        finally:
            os.close(fd)
        return UploadResult(item.entry(path), md5, item.size, before.st_mtime_ns)

    def _verified(
        self,
        path: str,
        item: DriveItem,
        md5: str,
        size: int,
        resend: Callable[[], MediaUpload],
    ) -> DriveItem:
        """``item`` once the md5 Drive reports is the md5 of what was sent.

        A mismatch (a proxy or a multipart parser that ate a byte: googleapiclient
        frames parts with bare LF, so a file ending in CR is where it happens) is
        sent again through a resumable upload, which has no framing; if it still
        does not match, TransientError: nothing is recorded as done.  Until then
        the bad revision is remembered as syncd's own (never someone else's edit,
        never a conflict copy).
        """
        for attempt in range(VERIFY_SENDS):
            if item.md5 == md5:
                break
            log.warning(
                "%s: %s: Drive stored md5 %s, syncd sent %s%s",
                self.project,
                path,
                item.md5,
                md5,
                "; sending it again" if attempt < VERIFY_SENDS - 1 else "",
            )
            self._own_bad_revision(path, item)
            if attempt < VERIFY_SENDS - 1:
                item = self._update(item.id, path, resend, size, resumable=True)
        if item.md5 != md5:
            raise TransientError(
                f"Google Drive stored other bytes than syncd sent for {path}",
                "syncd sends it again",
            )
        for key in ("new:" + path, "sent:" + path):
            if self.db.kv_get(self.project, key) is not None:
                self.ns.kv(key, None)
        self.tree.remember(path, item)
        return item

    def _own_bad_revision(self, path: str, item: DriveItem) -> None:
        intent = self._intent(path)
        if intent is not None and intent["id"] == item.id:
            intent["bad"] = [*intent.get("bad", []), item.md5]
            self.ns.kv("new:" + path, json.dumps(intent))
        else:
            self.ns.kv("sent:" + path, json.dumps({"id": item.id, "md5": item.md5}))

    @staticmethod
    def _snapshot(
        fd: int, size: int, mime: str, unchanged: Callable[[], None]
    ) -> tuple[str, Callable[[], MediaUpload]]:
        """md5 and a media factory for a consistent version of the open file."""
        if size <= MULTIPART_MAX:
            chunks, offset = [], 0
            while chunk := os.pread(fd, 1 << 20, offset):
                chunks.append(chunk)
                offset += len(chunk)
            unchanged()
            data = b"".join(chunks)
            return hashlib.md5(data).hexdigest(), lambda: BytesMedia(data, mime)
        h, offset = hashlib.md5(), 0
        while chunk := os.pread(fd, 1 << 20, offset):
            h.update(chunk)
            offset += len(chunk)
        unchanged()
        return h.hexdigest(), lambda: FileChunks(fd, size, mime, unchanged)

    def _send(
        self,
        make: Callable[[MediaUpload], Any],
        media: Callable[[], MediaUpload],
        size: int,
        what: str,
        resumable: bool = False,
    ) -> dict:
        if size <= MULTIPART_MAX and not resumable:
            return self.api.call(lambda: make(media()), what)
        return self.api.upload_resumable(lambda: make(media()), what)

    def _update(
        self,
        file_id: str,
        path: str,
        media: Callable[[], MediaUpload],
        size: int,
        resumable: bool = False,
    ) -> DriveItem:
        def make(m: MediaUpload) -> Any:
            return self.ns.files().update(
                fileId=file_id, body={}, media_body=m, fields=ITEM_FIELDS, supportsAllDrives=True
            )

        return DriveItem.of(self._send(make, media, size, f"uploading {path}", resumable))

    def _write(
        self,
        path: str,
        replace: RemoteEntry | None,
        md5: str,
        size: int,
        media: Callable[[], MediaUpload],
    ) -> DriveItem:
        if replace is not None:
            try:
                item = self._update(replace.id, path, media, size)
                self.tree.remember(path, item)
                return item
            except ApiError as err:
                if err.status != 404:
                    raise self.ns.error(err, path) from err
                self.tree.forget(path, replace.id)  # gone since stat: nothing left to keep
        parent_path, title = split(path)
        folder = self.ns.folder(parent_path, create=True)
        assert folder is not None
        key = "new:" + path

        def ours(item: DriveItem) -> bool:
            # Unchanged since syncd wrote it (it holds what the intent says was sent).
            intent = self._intent(path)
            return (
                intent is not None
                and not item.is_dir
                and not item.trashed
                and item.parent == folder.id
                and item.title == title
                and item.md5 in _written(intent)
            )

        def insert(file_id: str) -> dict:
            body = {"id": file_id, "title": title, "parents": [{"id": folder.id}]}

            def make(m: MediaUpload) -> Any:
                return self.ns.files().insert(
                    body=body, media_body=m, fields=ITEM_FIELDS, supportsAllDrives=True
                )

            return self._send(make, media, size, f"uploading {path}")

        try:
            item = self.ns.insert_once(key, ours, insert, path, md5)
        except FileError:
            if self.tree.get(parent_path) is folder and self.ns.get(folder.id) is None:
                self.ns.forget_folders(parent_path)
                raise TransientError(
                    f"the Drive folder of {path} vanished; recreating it"
                ) from None
            raise
        if item.md5 != md5 and item.md5 in _written(self._intent(path) or {}):
            # ours, from an earlier attempt (not this send): bring it up to date
            intent = {"id": item.id, "md5": md5, "prev": item.md5}
            self.ns.kv(key, json.dumps(intent))
            item = self._update(item.id, path, media, size)
        return item  # the intent stays until _verified has seen the right md5

    # --- move, trash, prune --------------------------------------------------

    def move(self, entry: RemoteEntry, new_path: str) -> RemoteEntry:
        new_parent, new_title = split(new_path)
        dst = self.ns.folder(new_parent, create=True)
        assert dst is not None
        src = self.ns.folder(split(entry.path)[0], create=False)
        old_parent = src.id if src is not None else None
        for attempt in range(2):
            args: dict[str, Any] = {
                "fileId": entry.id,
                "body": {"title": new_title},
                "fields": ITEM_FIELDS,
                "supportsAllDrives": True,
            }
            if old_parent != dst.id:
                args["addParents"] = dst.id
                if old_parent is not None:
                    args["removeParents"] = old_parent
            try:
                res = self.api.call(
                    lambda a=args: self.ns.files().patch(**a), f"moving {entry.path}"
                )
                break
            except ApiError as err:
                if err.status == 404:
                    raise FileError(entry.path, "it is no longer on Google Drive") from err
                current = self.ns.get(entry.id) if attempt == 0 and err.status == 403 else None
                if current is None or current.parent == old_parent:
                    raise self.ns.error(err, entry.path) from err
                old_parent = current.parent  # the cache was stale: move from where it really is
        item = DriveItem.of(res)
        self.tree.forget(entry.path, entry.id)
        self.tree.remember(new_path, item)
        if entry.is_dir:
            moved = self.tree.move_folders(entry.path, new_path)
            ids = self.tree.ids()
            for old, new in moved:
                self.ns.kv("dir:" + old, None)
                self.ns.kv("dir:" + new, ids[new])
        return RemoteEntry(
            new_path, item.id, item.size, item.md5 or entry.md5, item.rev, entry.is_dir
        )

    def trash(self, entry: RemoteEntry) -> None:
        try:
            self.api.call(
                lambda: self.ns.files().trash(fileId=entry.id, fields="id", supportsAllDrives=True),
                f"trashing {entry.path}",
            )
        except ApiError as err:
            if err.status != 404:  # already gone: nothing left to keep
                raise self.ns.error(err, entry.path) from err
        self.tree.forget(entry.path, entry.id)
        if entry.is_dir:
            self.ns.forget_folders(entry.path)

    def prune_folder(self, path: str) -> None:
        """Trash ``path`` and its parents while they hold nothing, never the root.

        Only with drive.scope: full.  With drive.file, files other apps (Colab)
        wrote into syncd's folders are invisible to syncd, so a folder that
        looks empty may not be: it is left in place.
        """
        if self.cfg.scope != "full":
            return
        while path:
            folder = self.ns.folder(path, create=False)
            if folder is not None:
                if not self.folder_is_empty(path):
                    return
                self.trash(RemoteEntry(path, folder.id, 0, None, None, True))
            path = split(path)[0]

    def folder_is_empty(self, path: str) -> bool:
        """No live child syncd can see (with drive.file: none of syncd's own)."""
        folder = self.ns.folder(path, create=False)
        if folder is None:
            return True
        q = f"{quote(folder.id)} in parents and trashed = false"
        args = dict(self.ns.list_args(), q=q, maxResults=1, fields="items(id)")
        page = self.api.call(lambda a=args: self.ns.files().list(**a), f"checking {path}")
        return not page.get("items")

    # --- what an interrupted run left (asked by the mirror engine at each full scan) ------

    def leftovers(self) -> Iterator[tuple[str, RemoteEntry | None]]:
        """Paths with a create intent still recorded, and the file it made if that is ours."""
        for key in list(self.db.kv_items(self.project, "new:")):
            path = key[4:]
            intent = self._intent(path)
            item = self.ns.get(intent["id"], path) if intent else None
            mine = item is not None and intent is not None and item.md5 in _written(intent)
            alive = item is not None and not item.trashed and not item.is_dir
            yield path, item.entry(path) if item is not None and mine and alive else None

    def forget_leftover(self, path: str) -> None:
        self.ns.kv("new:" + path, None)

    def close(self) -> None:
        self.api.close()

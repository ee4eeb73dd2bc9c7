"""Uploading one file to Drive: a consistent version of it, sent once, verified.

Uploads never commit a torn file: up to 5 MiB the content is read into memory
(checked unchanged across the read) and sent in one multipart request; larger
files are hashed, then sent in 8 MiB resumable chunks read with ``pread``, and
the chunk that would commit the upload is only sent if the file is unchanged.
Every upload is verified: the md5 Drive answers must be the one sent
(``_verified``), else it goes again by the resumable path.

A new file is created through ``creates`` (an id reserved and recorded
first, so no retry or restart makes a second one); the intent is removed
only once Drive holds the right md5.

An update is recorded first too (``sent:<path>``: the file id and the md5
being sent, ``intend_update``): if syncd is killed after Drive accepted it
but before the index recorded it, the next ``stat`` finds Drive holding an
md5 syncd sent and treats it as syncd's own write, not someone else's edit
(which would become a conflict copy, or be kept instead of trashed).  The
record stays until a later ``stat`` sees it settled (see ``backend.stat``):
removing it here would leave the same gap before the engine's index write.
"""

from __future__ import annotations

import hashlib
import json
import logging
import mimetypes
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...errors import FileChanged, FileError, TransientError
from ...fileio import open_source, same_version
from ..base import RemoteEntry, UploadResult
from .api_errors import ApiError
from .creates import written
from .drive_calls import ITEM_FIELDS
from .folders import DriveFolders
from .media import MULTIPART_MAX, BytesMedia, FileChunks, SourceChanged
from .tree import DriveItem, split

if TYPE_CHECKING:
    from googleapiclient.http import MediaUpload

log = logging.getLogger("syncd.gdrive")

VERIFY_SENDS = 3  # sends of one upload (the first, then resumable) before giving up for now
OWN_BAD_KEPT = 4  # earlier md5s of syncd's own sends kept in an update intent (bounded)


def _mime(title: str) -> str:
    return mimetypes.guess_type(title, strict=False)[0] or "application/octet-stream"


class DriveUploads:
    """Sends files for one project's remote (shared by its worker threads)."""

    def __init__(
        self,
        ns: DriveFolders,
        learned: Callable[[DriveItem], None],
        forget: Callable[[str], None],
    ) -> None:
        self.ns = ns
        self.learned = learned  # what Drive holds after each of syncd's writes
        self.forget = forget  # a file id whose state syncd knew is no longer so
        self.api = ns.api
        self.tree = ns.tree
        self.db = ns.db
        self.project = ns.project

    def upload(
        self, path: str, source: Path, replace: RemoteEntry | None, etag: str | None = None
    ) -> UploadResult:
        """Send ``source`` to ``path`` (over ``replace`` if given); what Drive then holds."""
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
                item = self._write(path, replace, md5, size, media, etag)
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
            self.learned(item)  # syncd's own (bad) revision: what the next write goes over
            if attempt < VERIFY_SENDS - 1:
                item = self._update(item.id, path, resend, size, True, item.etag)
        if item.md5 != md5:
            raise TransientError(
                f"Google Drive stored other bytes than syncd sent for {path}",
                "syncd sends it again",
            )
        if self.db.kv_get(self.project, "new:" + path) is not None:
            self.ns.kv("new:" + path, None)
        sent = self.ns.kv_json("sent:" + path)
        if sent is not None and sent.get("bad"):  # Drive holds the right bytes now
            self.ns.kv("sent:" + path, json.dumps({"id": item.id, "md5": md5, "bad": []}))
        self.tree.remember(path, item)
        self.learned(item)
        return item

    def _own_bad_revision(self, path: str, item: DriveItem) -> None:
        intent = self.ns.intent(path)
        if intent is not None and intent["id"] == item.id:
            intent["bad"] = [*intent.get("bad", []), item.md5]
            self.ns.kv("new:" + path, json.dumps(intent))
        else:
            sent = self.ns.kv_json("sent:" + path)
            if sent is None or sent["id"] != item.id:
                sent = {"id": item.id, "md5": None}
            sent["bad"] = [*sent.get("bad", []), item.md5][-OWN_BAD_KEPT:]
            self.ns.kv("sent:" + path, json.dumps(sent))

    def intend_update(self, path: str, file_id: str, md5: str) -> None:
        """Record, before sending, that ``md5`` going over ``file_id`` is syncd's own write.

        md5s syncd sent earlier over the same file and the index may not show yet (a
        kill before its write, a revision Drive stored wrongly) stay syncd's too.
        """
        sent = self.ns.kv_json("sent:" + path)
        own: list[str] = []
        if sent is not None and sent["id"] == file_id:
            own = [m for m in written(sent) if m and m != md5]
        intent = {"id": file_id, "md5": md5, "bad": own[-OWN_BAD_KEPT:]}
        self.ns.kv("sent:" + path, json.dumps(intent))

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
    ) -> dict[str, Any]:
        answer: dict[str, Any]
        if size <= MULTIPART_MAX and not resumable:
            answer = self.api.call(lambda: make(media()), what)
        else:
            answer = self.api.upload_resumable(lambda: make(media()), what)
        return answer

    def _update(
        self,
        file_id: str,
        path: str,
        media: Callable[[], MediaUpload],
        size: int,
        resumable: bool = False,
        if_match: str | None = None,
    ) -> DriveItem:
        """Send new content over ``file_id``; with ``if_match``, only over that version of it."""

        def make(m: MediaUpload) -> Any:
            request = self.ns.files().update(
                fileId=file_id, body={}, media_body=m, fields=ITEM_FIELDS, supportsAllDrives=True
            )
            if if_match:  # a resumable upload sends it when the session opens, and Drive
                request.headers["If-Match"] = if_match  # checks it there (412 if stale)
            return request

        return DriveItem.of(self._send(make, media, size, f"uploading {path}", resumable))

    def _write(
        self,
        path: str,
        replace: RemoteEntry | None,
        md5: str,
        size: int,
        media: Callable[[], MediaUpload],
        etag: str | None,
    ) -> DriveItem:
        if replace is not None:
            self.intend_update(path, replace.id, md5)
            try:
                item = self._update(replace.id, path, media, size, if_match=etag)
                self.tree.remember(path, item)
                return item
            except ApiError as err:
                if err.status == 412:  # someone else changed it since syncd looked
                    self.forget(replace.id)
                    raise FileChanged(path, "it changed on Google Drive; looking again") from err
                if err.status != 404:
                    raise self.ns.error(err, path) from err
                self.tree.forget(path, replace.id)  # gone since stat: nothing left to keep
        parent_path, title = split(path)
        folder = self.ns.folder(parent_path, create=True)
        assert folder is not None
        key = "new:" + path

        def ours(item: DriveItem) -> bool:
            # Unchanged since syncd wrote it (it holds what the intent says was sent).
            intent = self.ns.intent(path)
            return (
                intent is not None
                and not item.is_dir
                and not item.trashed
                and item.parent == folder.id
                and item.title == title
                and item.md5 in written(intent)
            )

        def insert(file_id: str) -> dict[str, Any]:
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
        if item.md5 != md5 and item.md5 in written(self.ns.intent(path) or {}):
            # ours, from an earlier attempt (not this send): bring it up to date
            intent = {"id": item.id, "md5": md5, "prev": item.md5}
            self.ns.kv(key, json.dumps(intent))
            item = self._update(item.id, path, media, size, if_match=item.etag)
        return item  # the intent stays until _verified has seen the right md5

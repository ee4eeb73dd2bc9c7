"""``gdrive:`` — a Google Drive folder as a mirror target (Drive API v2 via pydrive2's stack).

This module owns the ``Remote`` operations on Drive and wires the parts
together: ``stat``, moves as metadata patches, ``files.trash`` (never a
delete), pruning emptied folders, and what an interrupted run left.  Paths ↔
ids and listings are ``folders``; creating exactly once is ``creates``;
sending a file is ``uploads``; the wire (pacing, retries, timeouts, errors) is
``transport``, ``pacing``, ``api_errors`` and ``media``; credentials are
``credentials``.  Only the ``remotes/gdrive`` modules import pydrive2,
googleapiclient or oauth2client.

``stat`` of a path syncd has no id for answers from a listing up to
``LISTING_TTL_S`` old (refreshed per folder when stale), so a new file costs
one request, not two.  A file another client creates at that very path within
that window is not seen (with the default drive.file scope, files other apps
create are never visible anyway); the worst outcome is two files with one
title, never an overwrite.  ``stat`` of a file syncd knows answers from
``remote_edits`` (no request), and every write over it is conditional on that
answer (``If-Match``), so an edit costs one request: its upload.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...errors import FileError
from ..base import Features, RemoteEntry, UploadResult
from .api_errors import ApiError
from .changes import ChangesFeed
from .creates import written
from .credentials import CredentialSource
from .drive_calls import ITEM_FIELDS, quote
from .folders import DriveFolders
from .pacing import shared_pacer
from .remote_edits import RemoteStates
from .transport import DriveApi
from .tree import DriveItem, pick, split
from .uploads import DriveUploads

if TYPE_CHECKING:
    from ...config import DriveConfig, RemoteAddress
    from ..base import RemoteState

log = logging.getLogger("syncd.gdrive")


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
        self.states = RemoteStates(lambda: ChangesFeed(self.api, self.ns.drive_id), db, project)
        self.uploads = DriveUploads(
            self.ns,
            lambda item: self.states.learned(item.id, item),
            lambda file_id: self.states.learned(file_id, None),
        )
        self._etags: dict[str, str] = {}  # file id → the etag of the state stat answered

    def check(self, create: bool = False) -> None:
        self.creds.load()
        self.ns.resolve_root(create)
        self.states.ensure_origin()  # once ever: later listings are states the feed continues

    def list_all(self) -> Iterator[RemoteEntry]:
        self.states.ensure_origin()  # the listing is then a state the feed continues from
        yield from self.ns.list_files(self.states.listed)

    def begin_batch(self) -> None:
        self.states.new_batch()

    # --- stat ----------------------------------------------------------------

    def stat(self, path: str, known: RemoteEntry | None) -> RemoteEntry | None:
        if known is not None and known.id and not known.is_dir:
            item = self._current(known.id, path)
            if item is not None and not item.trashed and self._is_at(item, path):
                self.tree.remember(path, item)
                self._answered(item)
                if self._own_unrecorded(path, item, known.md5):
                    # syncd's own send (landed before a kill, or stored wrongly), not
                    # someone else's edit: to the engine it is still what syncd recorded.
                    return dataclasses.replace(item.entry(path), md5=known.md5)
                return item.entry(path)
            self.tree.forget(path, known.id)
        found = [i for i in self.ns.lookup(path) if known is None or i.id != known.id]
        if not found:
            return None
        item = pick(found)
        if not item.is_dir and self._unfinished_create(path, item):
            return None  # syncd's own upload that was never recorded: upload() takes it over
        self._answered(item)
        return item.entry(path)

    def current(self, path: str, known: RemoteEntry) -> RemoteEntry | None:
        item = self.ns.get(known.id, path)  # files.get: never the cache (a hand-trashed file)
        self.states.learned(known.id, item)
        if item is None or item.trashed or item.is_dir or not self._is_at(item, path):
            return None
        self._answered(item)
        return item.entry(path)

    def head(self, entry: RemoteEntry, size: int) -> bytes:
        def request() -> Any:
            req = self.ns.files().get_media(fileId=entry.id, supportsAllDrives=True)
            req.headers["Range"] = f"bytes=0-{size - 1}"  # Drive answers 206 with that part
            return req

        try:
            return bytes(self.api.call(request, f"reading {entry.path}"))
        except ApiError as err:
            if err.status == 416:  # an empty file
                return b""
            raise self.ns.error(err, entry.path) from err

    def _own_unrecorded(self, path: str, item: DriveItem, recorded: str | None) -> bool:
        """Drive holds an md5 syncd sent over this file (``uploads.intend_update``) that
        the index does not show; once it does, or the file holds anything else, the
        intent has said all it can and is removed."""
        sent = self.ns.kv_json("sent:" + path)
        if sent is None:
            return False
        if sent["id"] == item.id and item.md5 != recorded and item.md5 in written(sent):
            return True
        self.ns.kv("sent:" + path, None)
        return False

    def _answered(self, item: DriveItem) -> None:
        if item.etag and not item.is_dir:
            self._etags[item.id] = item.etag

    def _current(self, file_id: str, path: str) -> DriveItem | None:
        """The file's state on Drive: from the changes feed if it can tell, else files.get."""
        found, item = self.states.state_of(file_id)
        if not found:
            item = self.ns.get(file_id, path)
            self.states.learned(file_id, item)
        return item

    def _is_at(self, item: DriveItem, path: str) -> bool:
        parent_path, title = split(path)
        if item.title != title:
            return False
        folder = self.ns.folder(parent_path, create=False)
        return folder is not None and item.parent == folder.id

    def _unfinished_create(self, path: str, item: DriveItem) -> bool:
        intent = self.ns.intent(path)
        return intent is not None and intent["id"] == item.id and item.md5 in written(intent)

    def folder(self, path: str) -> RemoteEntry | None:
        folder = self.ns.folder(path, create=False)
        if folder is None:
            return None
        item = self.ns.get(folder.id)
        if item is None or item.trashed or not item.is_dir:
            self.ns.forget_folders(path)
            return None
        return item.entry(path)

    # --- upload (``uploads``) ----------------------------------------------------

    def upload(self, path: str, source: Path, replace: RemoteEntry | None) -> UploadResult:
        # Over a file: only over the version stat answered (If-Match), so an edit made on
        # Drive since is refused (412 → FileChanged → looked at again), never overwritten.
        etag = self._etags.pop(replace.id, None) if replace is not None else None
        if not self.states.enabled:
            etag = None  # the bench's "before": files.get, then an unconditional upload
        return self.uploads.upload(path, source, replace, etag)

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

                def request(a: dict[str, Any] = args) -> Any:
                    return self.ns.files().patch(**a)

                res = self.api.call(request, f"moving {entry.path}")
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
        if not item.is_dir:
            self.states.learned(item.id, item)
            sent = self.db.kv_get(self.project, "sent:" + entry.path)
            if sent is not None:  # an update intent follows its file
                self.ns.kv("sent:" + entry.path, None)
                self.ns.kv("sent:" + new_path, sent)
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
        etag = None
        if not entry.is_dir:
            # A deletion is checked against the changes feed read in this batch (or a
            # files.get): a file changed on Drive since stat answered is kept, not trashed.
            found, state = self.states.confirmed(entry.id)
            if not found:
                state = self.ns.get(entry.id, entry.path)
                self.states.learned(entry.id, state)
            if (
                state is not None
                and not state.trashed
                and state.md5 != entry.md5
                and not self._own_unrecorded(entry.path, state, entry.md5)
            ):
                self._kept(entry.path)
                return
            etag = state.etag if state is not None else None

        def request() -> Any:
            req = self.ns.files().trash(fileId=entry.id, fields="id", supportsAllDrives=True)
            if etag:
                req.headers["If-Match"] = etag
            return req

        try:
            self.api.call(request, f"trashing {entry.path}")
        except ApiError as err:
            if err.status == 412:  # changed on Drive between the check and the trash
                self.states.learned(entry.id, None)
                self._kept(entry.path)
                return
            if err.status != 404:  # already gone: nothing left to keep
                raise self.ns.error(err, entry.path) from err
        self.tree.forget(entry.path, entry.id)
        self.states.learned(entry.id, None)
        if entry.is_dir:
            self.ns.forget_folders(entry.path)
        elif self.db.kv_get(self.project, "sent:" + entry.path) is not None:
            self.ns.kv("sent:" + entry.path, None)

    def _kept(self, path: str) -> None:
        log.warning(
            "%s: %s was deleted locally but changed on Google Drive since; the Drive copy is kept",
            self.project,
            path,
        )

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
        page = self.api.call(lambda: self.ns.files().list(**args), f"checking {path}")
        return not page.get("items")

    # --- what an interrupted run left (asked by the mirror engine at each full scan) ------

    def leftovers(self) -> Iterator[tuple[str, RemoteEntry | None]]:
        """Paths with a create intent still recorded, and the file it made if that is ours."""
        for key in list(self.db.kv_items(self.project, "new:")):
            path = key[4:]
            intent = self.ns.intent(path)
            item = self.ns.get(intent["id"], path) if intent else None
            mine = item is not None and intent is not None and item.md5 in written(intent)
            alive = item is not None and not item.trashed and not item.is_dir
            yield path, item.entry(path) if item is not None and mine and alive else None

    def forget_leftover(self, path: str) -> None:
        self.ns.kv("new:" + path, None)

    def close(self) -> None:
        self.api.close()

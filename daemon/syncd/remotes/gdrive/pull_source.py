"""Reading what others write on Drive for the return path (``mirror.pull``): no writes, ever.

The return path (``pullback``) asks three things of Drive: the project folder's
id, a listing below a folder, and the content of a file by id; plus the
changes feed (``changes``).  This module answers them through the same
transport as the mirror (the account's shared pacer, retries with backoff on
429 / 403 rate limits / 5xx / dropped connections), but with its own
connection pool, and it never creates or edits anything: the target folder
is found from the id the mirror saved (``root`` in the state db) or by
walking the ``gdrive:/PATH`` titles from My Drive, never made.

Downloads stream to an open file (a checkpoint may be gigabytes) with
``MediaIoBaseDownload``; a failed download starts again from byte 0 (the
caller's temp file is truncated), up to the transport's retry budget.  A
local write error on the way (a full disk, a file-size limit, a read-only
folder) is the local side's: said as "cannot write into PATH" (``FileError``),
never retried as if the network had failed.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, BinaryIO

from ...errors import FileError, TargetUnavailable, TransientError
from ...retry import DRIVE_REQUESTS
from .api_errors import ApiError, backoff, classify
from .changes import ChangesFeed, FileChange
from .credentials import CredentialSource
from .drive_calls import DriveCalls, quote
from .folders import PARENTS_PER_QUERY
from .pacing import shared_pacer
from .transport import DriveApi
from .tree import FOLDER_MIME, DriveItem, pick

if TYPE_CHECKING:
    from ...config import DriveConfig, RemoteAddress
    from ..base import RemoteState

log = logging.getLogger("syncd.pull")

CHUNK = 8 * 1024 * 1024  # bytes per download request


class DrivePullSource:
    """One project's Drive folder, read for the return path."""

    def __init__(
        self, address: RemoteAddress, cfg: DriveConfig, db: RemoteState, project: str
    ) -> None:
        self.address = address
        self.db = db
        self.project = project
        self.creds = CredentialSource(cfg)
        pacer = shared_pacer(cfg.endpoint, str(self.creds.path), cfg.requests_per_second)
        self.api = DriveApi(cfg.endpoint, cfg.timeout, pacer, self.creds)
        self.creds.service = self.api.service
        self.calls = DriveCalls(address, cfg, self.api, db, project, self.creds.service_account)

    # --- the project folder ----------------------------------------------------------

    def root(self) -> DriveItem:
        """The target folder (it must exist: the mirror makes it, the return path never)."""
        try:
            return self._root()
        except ApiError as err:
            raise self.calls.error(err) from err

    def _root(self) -> DriveItem:
        self.creds.load()
        known = self.address.folder_id or self.db.kv_get(self.project, "root")
        gone = None  # what became of the folder syncd knew, said if no other is found
        if known is not None:
            item = self.calls.get(known)
            if item is not None and item.is_dir and not item.trashed:
                return self._found(item)
            gone = "is in Drive's trash" if item is not None else "was deleted from Drive"
            if self.address.folder_id is not None:
                raise TargetUnavailable(f"Drive folder {known} is not there or in the trash")
        about = self.api.call(
            lambda: self.api.service.about().get(fields="rootFolderId"), "finding My Drive"
        )
        parent = str(about["rootFolderId"])
        item = None
        for name in [p for p in (self.address.path or "/").split("/") if p]:
            found = [
                DriveItem.of(r) for r in self.calls.query_children(parent, name, folders_only=True)
            ]
            found = [f for f in found if f.title == name and not f.trashed]
            if not found:
                why = gone or "is not there yet"
                raise TargetUnavailable(f"the Drive folder {self.address.raw} {why}")
            item = pick(found)
            parent = item.id
        if item is None:  # gdrive:/ — My Drive itself
            return DriveItem(parent, "My Drive", None, True, None, 0, None, False, "")
        return self._found(item)

    def _found(self, item: DriveItem) -> DriveItem:
        self.calls._drive_id = item.drive_id  # listings and the feed follow a Shared Drive
        return item

    # --- listings and the feed -------------------------------------------------------

    def children(self, folder_ids: list[str], folders_only: bool = False) -> list[DriveItem]:
        """Live (untrashed) children of these folders, many folders per request."""
        try:
            return self._children(folder_ids, folders_only)
        except ApiError as err:  # a definite refusal: in syncd's words (target, transient)
            raise self.calls.error(err) from err

    def _children(self, folder_ids: list[str], folders_only: bool) -> list[DriveItem]:
        items: list[DriveItem] = []
        for i in range(0, len(folder_ids), PARENTS_PER_QUERY):
            batch = folder_ids[i : i + PARENTS_PER_QUERY]
            kind = f" and mimeType = {quote(FOLDER_MIME)}" if folders_only else ""
            parents = " or ".join(f"{quote(p)} in parents" for p in batch)
            found = self.calls.list_items(
                f"({parents}) and trashed = false{kind}", "listing the pull folders"
            )
            if not found and len(batch) > 1:
                # "(A in parents) or (B in parents)" sometimes answers nothing (Google issue
                # tracker 149522397, rclone's fast_list_bug_fix): ask each folder alone.
                for parent in batch:
                    q = f"{quote(parent)} in parents and trashed = false{kind}"
                    found.extend(self.calls.list_items(q, "listing the pull folders"))
            items.extend(found)
        return items

    def named(self, folder_ids: list[str], title: str) -> list[DriveItem]:
        """Live items titled ``title`` in any of these folders (one small query, not a
        listing: what takes a path when the file there leaves)."""
        try:
            items: list[DriveItem] = []
            for i in range(0, len(folder_ids), PARENTS_PER_QUERY):
                parents = " or ".join(
                    f"{quote(p)} in parents" for p in folder_ids[i : i + PARENTS_PER_QUERY]
                )
                q = f"({parents}) and title = {quote(title)} and trashed = false"
                items.extend(self.calls.list_items(q, "looking up a name"))
            return [item for item in items if item.title == title]
        except ApiError as err:
            raise self.calls.error(err) from err

    def _feed(self) -> ChangesFeed:
        return ChangesFeed(self.api, self.calls.drive_id)

    def start_token(self) -> str:
        try:
            return self._feed().start_token()
        except ApiError as err:
            raise self.calls.error(err) from err

    def changes(self, token: str) -> tuple[list[FileChange], str]:
        """Every change since ``token``; raises ``changes.TokenRefused`` for a dead token."""
        try:
            return self._feed().since(token)
        except ApiError as err:
            raise self.calls.error(err) from err

    # --- content ---------------------------------------------------------------------

    def download(self, file_id: str, out: BinaryIO, path: str) -> str:
        """The file's bytes written to ``out`` (from its start); returns their md5."""
        attempt = 0
        while True:
            try:
                return self._download_once(file_id, out)
            except _LocalWrite as exc:
                why = exc.err.strerror or str(exc.err)
                raise FileError(path, f"cannot write into {path}: {why}") from exc.err
            except Exception as exc:  # classified below; unknown ones re-raised
                err = classify(exc)
                if err is None:
                    raise
                if isinstance(err, ApiError):
                    if err.status in (403, 404, 416):
                        raise FileError(path, f"Google Drive refused the download: {err}") from exc
                    raise TransientError(f"Google Drive answered {err}") from exc
                attempt += 1
                if not isinstance(err, TransientError) or attempt >= DRIVE_REQUESTS.attempts:
                    raise err from exc
                log.debug("downloading %s: %s; starting again", path, err)
                time.sleep(backoff(attempt - 1))

    def _download_once(self, file_id: str, out: BinaryIO) -> str:
        from googleapiclient.http import MediaIoBaseDownload

        _local(lambda: _restart(out))
        h = hashlib.md5()
        with self.api.connection() as conn:
            request = self.api.service.files().get_media(fileId=file_id, supportsAllDrives=True)
            request.http = conn
            down = MediaIoBaseDownload(_Hashing(out, h), request, chunksize=CHUNK)
            done = False
            while not done:
                _, done = down.next_chunk()
                self.api.pacer.succeeded()
        _local(lambda: _settle(out))
        return h.hexdigest()

    def close(self) -> None:
        self.api.close()


class _LocalWrite(Exception):
    """An OSError of the local file, kept apart from the network's (``classify`` would
    take it for a dropped connection)."""

    def __init__(self, err: OSError) -> None:
        super().__init__(str(err))
        self.err = err


def _restart(out: BinaryIO) -> None:
    out.seek(0)
    out.truncate()


def _settle(out: BinaryIO) -> None:
    out.flush()
    os.fsync(out.fileno())


def _local(step: Callable[[], object]) -> None:
    try:
        step()
    except OSError as err:
        raise _LocalWrite(err) from err


class _Hashing:
    """A writable file that hashes what goes through it (MediaIoBaseDownload's ``fd``)."""

    def __init__(self, out: BinaryIO, h: Any) -> None:
        self.out = out
        self.h = h

    def write(self, data: bytes) -> int:
        self.h.update(data)
        try:
            return self.out.write(data)
        except OSError as err:
            raise _LocalWrite(err) from err

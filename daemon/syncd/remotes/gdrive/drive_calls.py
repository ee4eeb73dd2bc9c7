"""The Drive requests every part of the ``gdrive:`` remote asks: get, list, and what errors mean.

``DriveCalls`` holds what a project's Drive requests share (the transport,
the state db's key/value view, the Shared Drive the target lives in) and the
small requests built on it: ``files.get`` of one id, a paged ``files.list``,
a lookup by title, and turning a definite Drive refusal into a per-file or a
whole-target error.  ``creates`` and ``folders`` build on it.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from ...errors import FileError, TargetUnavailable, TransientError
from .api_errors import ApiError
from .transport import DriveApi
from .tree import FOLDER_MIME, DriveItem

if TYPE_CHECKING:
    from ...config import DriveConfig, RemoteAddress
    from ..base import RemoteState

PAGE = 1000  # Drive's largest page
_ITEM = (
    "id,title,mimeType,md5Checksum,fileSize,headRevisionId,version,labels/trashed,parents/id,"
    "createdDate,etag"
)
ITEM_FIELDS = _ITEM + ",driveId"
LIST_FIELDS = f"nextPageToken,items({_ITEM})"
SA_NO_STORAGE = (
    "service accounts have no storage of their own: use a Shared Drive folder (gdrive:id=...)"
)


def quote(text: str) -> str:
    """A string literal for Drive's query language."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


class DriveCalls:
    """One project's requests to Drive (shared by the remote's worker threads)."""

    def __init__(
        self,
        address: RemoteAddress,
        cfg: DriveConfig,
        api: DriveApi,
        db: RemoteState,
        project: str,
        service_account: bool,
    ) -> None:
        self.address = address.raw
        self._addr = address
        self.cfg = cfg
        self.api = api
        self.db = db
        self.project = project
        self.service_account = service_account
        self._drive_id: str | None = None  # set when the root lives in a Shared Drive

    def files(self) -> Any:
        return self.api.files()

    def kv(self, key: str, value: str | None) -> None:
        self.db.kv_set(self.project, key, value)

    @property
    def drive_id(self) -> str | None:
        """The Shared Drive the target lives in (None: My Drive)."""
        return self._drive_id

    def kv_json(self, key: str) -> dict[str, Any] | None:
        raw = self.db.kv_get(self.project, key)
        if not raw:
            return None
        value: dict[str, Any] = json.loads(raw)
        return value

    def list_args(self) -> dict[str, Any]:
        args: dict[str, Any] = {"maxResults": PAGE, "fields": LIST_FIELDS}
        if self._drive_id:
            args.update(
                corpora="drive",
                driveId=self._drive_id,
                includeItemsFromAllDrives=True,
                supportsAllDrives=True,
            )
        return args

    def list_items(self, q: str, what: str) -> list[DriveItem]:
        """Every item a query matches, following pages."""
        items: list[DriveItem] = []
        token: str | None = None
        while True:
            args = dict(self.list_args(), q=q, pageToken=token)

            def request(a: dict[str, Any] = args) -> Any:
                return self.files().list(**a)

            page = self.api.call(request, what)
            items.extend(DriveItem.of(r) for r in page.get("items", []))
            token = page.get("nextPageToken")
            if not token:
                return items

    def get(self, file_id: str, path: str | None = None) -> DriveItem | None:
        """The item with this id (trashed or not), None if Drive has none.

        ``path``: what syncd calls it, so that a refusal concerns that file only.
        """
        try:
            res = self.api.call(
                lambda: self.files().get(
                    fileId=file_id, fields=ITEM_FIELDS, supportsAllDrives=True
                ),
                "reading file metadata",
            )
        except ApiError as err:
            if err.status == 404:
                return None
            raise self.error(err, path) from err
        return DriveItem.of(res)

    def error(self, err: ApiError, path: str | None = None) -> Exception:
        """A definite Drive answer in syncd's vocabulary (one file, or the whole target)."""
        # Both reasons mean "no more bytes" (rclone's shouldRetry treats them alike).
        if err.status == 403 and err.reason in ("storageQuotaExceeded", "quotaExceeded"):
            if self.service_account:
                return TargetUnavailable(SA_NO_STORAGE)
            return TargetUnavailable(
                "Google Drive is full (storage quota exceeded)", "free some space; syncd retries"
            )
        if path is not None and err.status in (400, 403, 404):
            what = "it is no longer on Google Drive" if err.status == 404 else None
            return FileError(path, what or f"Google Drive refused it: {err.message}")
        if err.status in (400, 403, 404):
            return TargetUnavailable(f"Google Drive refused a request on {self.address}: {err}")
        return TransientError(f"Google Drive answered {err}", "syncd retries")

    def query_children(
        self, parent_id: str, title: str, folders_only: bool = False
    ) -> list[dict[str, Any]]:
        q = f"{quote(parent_id)} in parents and title = {quote(title)} and trashed = false"
        if folders_only:
            q += f" and mimeType = {quote(FOLDER_MIME)}"
        args = dict(self.list_args(), q=q)
        page = self.api.call(lambda: self.files().list(**args), "looking up a name")
        return list(page.get("items", []))

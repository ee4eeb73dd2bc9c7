"""Drive's changes feed: what changed on Drive since a saved page token, in a few requests.

A small reader, free of mirror policy, so both the mirror (remote edits to
syncd's own files) and the return path (files Colab writes) can use it::

    feed = ChangesFeed(api)
    token = feed.start_token()                 # changes.getStartPageToken
    changes, token = feed.since(token)         # changes.list, every page
    for c in changes: c.file_id, c.md5, c.rev, c.modified, c.trashed, c.removed

Drive v2 reports each file changed since the token once, at its latest
change, with its current state (``file``), or ``deleted: true`` without a
file when it was deleted for good or the caller can no longer see it
(Drive v2 "Retrieve changes" guide; rclone backend/drive/drive.go
``changeNotifyRunner`` reads the same shape through v3).  Under the
``drive.file`` scope only files the app can see are reported: syncd's own,
and files opened with it.  A trashed file is a change whose file has
``labels.trashed: true``, not a removal.  A folder trashed or moved is one
change for that folder, not one per descendant.

Tokens are opaque; Drive refuses one it never issued or no longer honours
with 400 "Invalid Value" on ``pageToken`` (or 404/410 on some paths):
``since`` raises ``TokenRefused`` and the caller starts afresh, checking
file by file what it would have learned from the feed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .api_errors import ApiError
from .transport import DriveApi
from .tree import DriveItem

PAGE = 1000  # changes per page (Drive v2 allows up to 1000; the default is 100)
_FILE = (
    "id,title,mimeType,md5Checksum,fileSize,headRevisionId,version,labels/trashed,parents/id,"
    "createdDate,modifiedDate,driveId,etag"
)
CHANGE_FIELDS = f"nextPageToken,newStartPageToken,items(fileId,deleted,file({_FILE}))"


class TokenRefused(Exception):
    """Drive no longer honours the saved page token (expired, or from elsewhere)."""


@dataclass(frozen=True)
class FileChange:
    """One file's latest state as the feed reported it."""

    file_id: str
    removed: bool  # deleted for good, or no longer visible to syncd: no state
    item: DriveItem | None  # the file's state when the feed was read (None if removed)
    modified: str | None = None  # modifiedDate (RFC 3339)

    @property
    def md5(self) -> str | None:
        return self.item.md5 if self.item is not None else None

    @property
    def rev(self) -> str | None:
        """headRevisionId (changes with content, not with metadata)."""
        return self.item.rev if self.item is not None else None

    @property
    def trashed(self) -> bool:
        return self.item is not None and self.item.trashed

    @classmethod
    def of(cls, change: dict[str, Any]) -> FileChange:
        file = change.get("file")
        if change.get("deleted") or not file:
            return cls(str(change["fileId"]), True, None)
        return cls(str(change["fileId"]), False, DriveItem.of(file), file.get("modifiedDate"))


class ChangesFeed:
    """Reads the changes feed of one account (or one Shared Drive) through ``DriveApi``."""

    def __init__(self, api: DriveApi, drive_id: str | None = None) -> None:
        self.api = api
        self.drive_id = drive_id

    def _drive_args(self) -> dict[str, Any]:
        if self.drive_id is None:
            return {}
        return {"driveId": self.drive_id, "supportsAllDrives": True}

    def start_token(self) -> str:
        """A token from which ``since`` reports changes made from now on."""
        args = self._drive_args()
        res = self.api.call(
            lambda: self.api.service.changes().getStartPageToken(**args),
            "reading Drive's change token",
        )
        return str(res["startPageToken"])

    def since(self, token: str) -> tuple[list[FileChange], str]:
        """Every change since ``token`` (all pages) and the token to continue from."""
        changes: list[FileChange] = []
        page_token = token
        while True:
            args: dict[str, Any] = dict(
                self._drive_args(),
                pageToken=page_token,
                maxResults=PAGE,
                includeDeleted=True,
                fields=CHANGE_FIELDS,
            )
            if self.drive_id is not None:
                args["includeItemsFromAllDrives"] = True

            def request(a: dict[str, Any] = args) -> Any:
                return self.api.service.changes().list(**a)

            try:
                page = self.api.call(request, "reading Drive's changes")
            except ApiError as err:
                if err.status in (400, 404, 410):
                    raise TokenRefused(str(err)) from err
                raise
            changes.extend(FileChange.of(c) for c in page.get("items", []))
            if page.get("newStartPageToken"):
                return changes, str(page["newStartPageToken"])
            if not page.get("nextPageToken"):
                raise TokenRefused("Drive's change list ended without a new start token")
            page_token = str(page["nextPageToken"])

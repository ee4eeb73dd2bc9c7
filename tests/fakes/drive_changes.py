"""The fake Drive's changes feed: every creation, edit, move, trash and deletion, numbered.

Drive v2 (discovery revision 20260916) has ``changes.getStartPageToken`` and
``changes.list(pageToken | startChangeId, maxResults, includeDeleted)``; a
``ChangeList`` carries ``items`` (``drive#change``: ``id``, ``fileId``,
``deleted``, ``file``, ``modificationDate``, ``changeType``),
``nextPageToken`` until the end, then ``newStartPageToken``, and
``largestChangeId``.  Like Drive, a file changed several times since the
token appears once, at its latest change, with its current state; a file
the caller may not see (another app's file under drive.file) is never
reported; a file deleted for good is ``deleted: true`` without ``file``.
Trashing is not a deletion: it is a change whose file has
``labels.trashed: true`` (Drive v2 "Retrieve changes" guide; rclone's
``changeNotifyRunner`` reads the same shape through v3).

A folder trashed or moved reports a change for that folder only, not for
each descendant (what a consumer must be ready for: the stricter reading).

Page tokens: the v2 reference says ``pageToken`` "should be set to the value
of ``nextPageToken`` from the previous response or to the response from the
getStartPageToken method", so a token the server never issued (beyond the
current start token: a token saved against another account or another
server) is refused with 400 "Invalid Value" on ``pageToken``, like garbage.
Drive does not promise to honour old tokens forever (rclone's
``changeNotifyRunner`` logs the error and starts again from a fresh start
token): ``expire_tokens`` makes every token issued so far refused the same
way, so a client's fallback can be tested.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .drive_errors import invalid, now_rfc3339


@dataclass(frozen=True)
class Change:
    id: int
    file_id: str
    time: str
    removed: bool  # deleted for good (not trashed)
    owner: str  # who could see it when it was removed (for `removed` entries)
    apps: frozenset[str]
    drive_id: str | None


class ChangeLog:
    """Numbered changes, oldest first; ``latest`` says which entry of a file is current."""

    def __init__(self) -> None:
        self.entries: list[Change] = []
        self.latest: dict[str, int] = {}
        self.oldest = 1  # tokens below this one are no longer honoured

    def record(
        self,
        file_id: str,
        *,
        removed: bool = False,
        owner: str = "",
        apps: frozenset[str] = frozenset(),
        drive_id: str | None = None,
    ) -> None:
        number = len(self.entries) + 1
        change = Change(number, file_id, now_rfc3339(), removed, owner, apps, drive_id)
        self.entries.append(change)
        self.latest[file_id] = change.id

    def largest(self) -> int:
        return len(self.entries)

    def start_token(self) -> str:
        return str(self.largest() + 1)

    def expire_tokens(self) -> None:
        """Every token issued so far is refused from now on (see the module docstring)."""
        self.oldest = self.largest() + 1

    def page(
        self,
        token: str,
        max_results: int,
        visible: Callable[[Change], bool],
        include_removed: bool,
    ) -> tuple[list[Change], str | None]:
        """(changes, next page token or None at the end) from ``token`` on."""
        if not token.isdigit() or not self.oldest <= int(token) <= self.largest() + 1:
            raise invalid("Invalid Value", "pageToken")  # garbage, expired, or never issued
        start = int(token)
        out: list[Change] = []
        pos = start - 1
        while pos < len(self.entries):
            change = self.entries[pos]
            pos += 1
            if self.latest.get(change.file_id) != change.id:
                continue  # superseded: the file is reported at its latest change
            if change.removed and not include_removed:
                continue
            if not visible(change):
                continue
            out.append(change)
            if len(out) == max_results:
                break
        more = any(
            self.latest.get(c.file_id) == c.id for c in self.entries[pos:]
        )  # the next page may still come out empty after filtering: Drive allows that
        return out, (str(pos + 1) if more else None)

"""What syncd knows of its files' state on Drive, so an edit costs one request.

Before syncd writes over a file it must know that nobody else changed it since
syncd last wrote it (the promise: such a file becomes a conflict copy, never
overwritten).  Asking Drive with a ``files.get`` per file doubled the requests
of every edit.  Instead ``RemoteStates`` keeps one entry per file id: its state
on Drive as last learned, with its etag, from syncd's own writes, a listing,
a ``files.get`` or the changes feed (``changes``).  ``stat`` answers from it,
and the upload over that answer carries the etag in ``If-Match``: if the file
changed on Drive since, Drive refuses it (412), nothing is written, the entry
is dropped and the engine looks again in its next batch (``FileChanged``).
No window remains for edits: the check is Drive's, in the same request.

Deletions are checked against the changes feed, read once per batch at the
first question that needs it (and also carry ``If-Match``).  An entry is only
ever learned *after* the feed's origin (the page token it reads from), so
whatever happened to that file later is in the feed.  A file without an
entry, or any file in a batch whose feed read failed, is asked about with a
``files.get`` (the per-file check).  When the saved token is refused (expired,
or from another account), the feed starts from a new token and every entry
is dropped: the files of that batch, and any later one until a listing, are
checked one by one.  The token is kept in the state db (``changes:token``)
across restarts; the startup scan's listing gives each file's state again.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from ...errors import SyncdError
from .changes import ChangesFeed, TokenRefused
from .tree import DriveItem

if TYPE_CHECKING:
    from ..base import RemoteState

log = logging.getLogger("syncd.gdrive")

TOKEN_KEY = "changes:token"
# For bench/drive_requests.py only: "1" brings back the per-file files.get before every
# write over a known file (the code before the feed), to measure both in one run.
PER_FILE_ENV = "SYNCD_BENCH_DRIVE_PER_FILE_CHECK"


class RemoteStates:
    """Per-project file states on Drive; shared by the remote's worker threads."""

    def __init__(
        self,
        feed: Callable[[], ChangesFeed],
        db: RemoteState,
        project: str,
    ) -> None:
        self._feed = feed
        self.db = db
        self.project = project
        self.enabled = os.environ.get(PER_FILE_ENV) != "1"
        self._lock = threading.Lock()
        self._states: dict[str, DriveItem] = {}
        self._token = db.kv_get(project, TOKEN_KEY)
        self._read = False  # the feed was asked in this batch
        self._current = False  # ... and answered: the entries are current

    def new_batch(self) -> None:
        """The next question reads the feed again (once for the whole batch)."""
        with self._lock:
            self._read = self._current = False

    def state_of(self, file_id: str) -> tuple[bool, DriveItem | None]:
        """(True, state) when known without asking Drive; (False, None): ask with files.get.

        A state with an etag is answered as it is, even if the feed was not read: every
        write over it carries that etag in ``If-Match``, so if it is stale the write is
        refused (412) instead of overwriting.  Others need the feed read in this batch.
        """
        if not self.enabled:
            return False, None
        with self._lock:
            known = self._states.get(file_id)
            if known is not None and known.etag:
                return True, known
        return self.confirmed(file_id)

    def confirmed(self, file_id: str) -> tuple[bool, DriveItem | None]:
        """Like ``state_of``, but only from the feed read in this batch (for deletions)."""
        if not self.enabled:
            return False, None
        with self._lock:
            if not self._read:
                self._read = True
                self._current = self._catch_up()
            if not self._current or file_id not in self._states:
                return False, None
            return True, self._states[file_id]

    def learned(self, file_id: str, item: DriveItem | None) -> None:
        """What a files.get or syncd's own write answered (None: not there any more)."""
        with self._lock:
            if item is None or self._token is None or not self.enabled:
                self._states.pop(file_id, None)
            else:
                self._states[file_id] = item

    def ensure_origin(self) -> None:
        """Make sure the feed has a token, before a listing that ``listed`` will record."""
        with self._lock:
            if self._token is None and self.enabled:
                self._restart()

    def listed(self, items: Iterable[DriveItem]) -> None:
        """A listing made after ``ensure_origin``: each file's state at that time."""
        with self._lock:
            if self._token is None or not self.enabled:
                return
            for item in items:
                if not item.is_dir:  # folders are never written over
                    self._states[item.id] = item

    # --- the feed (callers hold the lock) ----------------------------------------------

    def _catch_up(self) -> bool:
        if self._token is None:
            self._restart()
            return False
        try:
            changes, token = self._feed().since(self._token)
        except TokenRefused as exc:
            log.info(
                "%s: Drive refused the saved change token (%s); starting afresh", self.project, exc
            )
            self._restart()
            return False
        except SyncdError as exc:
            log.debug(
                "%s: cannot read Drive's changes (%s); checking file by file", self.project, exc
            )
            return False
        for change in changes:
            if change.item is None or change.item.is_dir:
                self._states.pop(change.file_id, None)
            else:
                self._states[change.file_id] = change.item
        self._save(token)
        return True

    def _restart(self) -> None:
        """A new origin: nothing learned before it can be trusted any more."""
        self._states.clear()
        try:
            token = self._feed().start_token()
        except SyncdError as exc:
            log.debug("%s: cannot start Drive's change feed (%s)", self.project, exc)
            token = None
        self._save(token)

    def _save(self, token: str | None) -> None:
        if token != self._token:
            self._token = token
            self.db.kv_set(self.project, TOKEN_KEY, token)

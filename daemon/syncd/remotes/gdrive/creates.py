"""Creating a file or folder on Drive exactly once, across retries and restarts.

An id reserved with ``files.generateIds`` is written to the state db (an
"intent": the key names what is being made, the value holds the id and the
md5 being sent) before the insert that uses it.  A retry after a lost answer
meets 409 and adopts what it made; after a crash, the next attempt finds the
intent and adopts the item if it is still syncd's, instead of making a second
one.  Drive allows two files with one title, so nothing else would stop it.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ...errors import TransientError
from .api_errors import ApiError
from .drive_calls import DriveCalls
from .transport import DriveApi
from .tree import DriveItem

if TYPE_CHECKING:
    from ...config import DriveConfig, RemoteAddress
    from ..base import RemoteState

ID_BATCH = 100  # ids reserved per files.generateIds call
ID_MAX_AGE_S = 600.0  # a reserved batch older than this is dropped (lifetime undocumented)


def written(intent: dict[str, Any]) -> tuple[str | None, ...]:
    """The md5s a file created under this intent may hold while it is only syncd's.

    ``bad``: what Drive stored of syncd's own sends that did not arrive intact.
    """
    return tuple(m for m in (intent.get("md5"), intent.get("prev"), *intent.get("bad", ())) if m)


def _unusable_id(err: ApiError) -> bool:
    return "file id" in err.message.lower()  # Drive: "The provided file ID is not usable."


class DriveCreates(DriveCalls):
    """Reserved ids (kept in batches) and the create that uses them once."""

    def __init__(
        self,
        address: RemoteAddress,
        cfg: DriveConfig,
        api: DriveApi,
        db: RemoteState,
        project: str,
        service_account: bool,
    ) -> None:
        super().__init__(address, cfg, api, db, project, service_account)
        self._ids: list[str] = []
        self._ids_at = 0.0
        self._ids_lock = threading.Lock()

    def intent(self, path: str) -> dict[str, Any] | None:
        """The create intent recorded for the file at ``path``, if any."""
        return self.kv_json("new:" + path)

    def new_id(self, renew: bool = False) -> str:
        """An id reserved with ``files.generateIds`` (a batch is kept; ``renew`` drops it).

        Reserved ids expire after a time Google does not document: a batch older
        than ``ID_MAX_AGE_S`` is not used (an idle daemon would otherwise insert
        with ids from hours ago).
        """
        with self._ids_lock:
            if renew or not self._ids or time.monotonic() - self._ids_at > ID_MAX_AGE_S:
                res = self.api.call(
                    lambda: self.files().generateIds(maxResults=ID_BATCH, space="drive"),
                    "reserving file ids",
                )
                self._ids, self._ids_at = list(res["ids"]), time.monotonic()
            return self._ids.pop()

    def insert_once(
        self,
        key: str,
        ours: Callable[[DriveItem], bool],
        insert: Callable[[str], dict[str, Any]],
        path: str | None,
        md5: str | None = None,
    ) -> DriveItem:
        """Create with a reserved id recorded first, so no retry or restart makes a second one.

        The intent (``key`` → id and the md5 being sent) stays in the state db until
        the caller removes it, after whatever it still does with the item.  An
        intent left by an earlier attempt whose item is still ``ours`` (unchanged
        since syncd wrote it) returns that item instead of creating another.
        """
        raw = self.db.kv_get(self.project, key)
        intent = json.loads(raw) if raw else None
        file_id: str | None = None
        if intent is not None:
            prior = self.get(intent["id"], path)
            if prior is None:
                file_id = intent["id"]  # never made (or deleted since): the id is still ours
            elif ours(prior):
                return prior
        sources = ["intent"] if file_id is not None else []
        for source in [*sources, "reserved", "renewed"]:
            if source != "intent":
                file_id = self.new_id(renew=source == "renewed")
            assert file_id is not None
            self.kv(key, json.dumps({"id": file_id, "md5": md5}))
            try:
                item = DriveItem.of(insert(file_id))
            except ApiError as err:
                if err.status == 409:  # our earlier attempt got through; its answer was lost
                    item = self.get(file_id) or DriveItem.of({"id": file_id})
                    if not ours(item):
                        self.kv(key, None)
                        raise TransientError(
                            f"Drive holds an unexpected file under syncd's reserved id {file_id}"
                        ) from err
                elif err.status == 400 and (
                    source == "intent" or (source == "reserved" and _unusable_id(err))
                ):
                    # "The provided file ID is not usable.": an id reserved before a restart
                    # (or, despite ID_MAX_AGE_S, too long ago) expired.  Other 400s are
                    # about the file itself and final.
                    continue
                else:
                    self.kv(key, None)
                    raise self.error(err, path) from err
            return item
        raise AssertionError("unreachable")

"""The fake Drive's endpoints: what each v2 request means, under the caller's scopes.

Owns the route table and the handlers: ``about``, ``files.list / get /
insert / update / patch / delete / trash / untrash / generateIds``, media
downloads (``alt=media``), uploads (multipart and resumable, with
``drive_uploads``), the changes feed (``changes.getStartPageToken``,
``changes.list``), and the OAuth endpoints (delegated to ``drive_oauth``).
Every request after OAuth carries a bearer token; what it may see is
``Store.can_see`` for that token's ``Access``.  ``DriveEndpoints`` is mixed
into ``FakeDrive``, which owns the state and the HTTP server.

Rules enforced here (each tested in tests/test_fake_drive*.py):

- ``root`` is an alias; My Drive has an id of its own, which ``about.get``
  returns as ``rootFolderId``.  Under drive.file ``GET files/root`` (or its
  id) is a 404 (rclone commit 1e423d21e) while ``'root' in parents`` and
  ``root`` as a parent of an insert work.
- Partial responses: ``fields`` is honoured on every answer (``drive_render``).
- Creations are throttled per user (``drive_limits.WriteThrottle``).
- ``files.list`` pages hold at most ``page_size`` items ("Partial or empty
  result pages are possible even before the end of the files list has been
  reached", v2 discovery doc, files.list maxResults).
- Opt-in ``or_parents_bug``: a query ORing several ``in parents`` clauses
  sometimes answers nothing (Google issue tracker 149522397; rclone's
  ``fast_list_bug_fix`` re-asks per folder).
"""

from __future__ import annotations

import random
import re
import threading
from collections.abc import Callable
from typing import Any

from .drive_access import Access
from .drive_errors import (
    DriveApiError,
    check_if_match,
    insufficient_scope,
    invalid,
    user_rate_limited,
)
from .drive_limits import WriteThrottle
from .drive_oauth import OAuthServer
from .drive_query import Query
from .drive_render import etag, partial, render_file
from .drive_store import Item, Store
from .drive_uploads import (
    UploadSession,
    chunk_step,
    keep_partial,
    parse_multipart,
    session_or_404,
)
from .drive_wire import Call, Response, int_param

MAX_PAGE = 1000  # v2 declares no maximum but never returns more than 1000 items per page

FILE_PATH = r"/drive/v2/files/(?P<file_id>[^/]+)"
ROUTES: list[tuple[str, re.Pattern[str], str]] = [
    (m, re.compile(p), h)
    for m, p, h in [
        ("POST", r"/token", "_token"),
        ("GET", r"/auth", "_authorize"),
        ("GET", r"/drive/v2/about", "_about"),
        ("GET", r"/drive/v2/changes/startPageToken", "_start_page_token"),
        ("GET", r"/drive/v2/changes", "_changes"),
        ("GET", r"/drive/v2/files/generateIds", "_generate_ids"),
        ("GET", r"/drive/v2/files", "_list"),
        ("POST", r"/drive/v2/files", "_insert"),
        ("GET", FILE_PATH, "_get"),
        ("PUT PATCH", FILE_PATH, "_update"),
        ("DELETE", FILE_PATH, "_delete"),
        ("POST", FILE_PATH + r"/trash", "_trash"),
        ("POST", FILE_PATH + r"/untrash", "_untrash"),
        ("POST PUT", r"(?:/resumable)?/upload/drive/v2/files(?:/(?P<file_id>[^/]+))?", "_upload"),
    ]
]
UNAUTHENTICATED = {"_token", "_authorize"}


class DriveEndpoints:
    """The request handlers of FakeDrive (a mixin: FakeDrive holds the state)."""

    url: str
    internal_errors: list[str]
    _lock: threading.RLock
    _store: Store
    _sessions: dict[str, UploadSession]
    oauth: OAuthServer
    throttle: WriteThrottle
    page_size: int
    or_parents_bug: float
    multipart_eats_cr: bool
    _rng: random.Random
    _maybe_corrupt: Callable[[bytes], bytes]  # FaultInjection's

    def _dispatch(self, call: Call) -> Response:
        try:
            for methods, pattern, name in ROUTES:
                m = pattern.fullmatch(call.path)
                if m and call.method in methods.split():
                    call.file_id = m.groupdict().get("file_id")
                    # Upload session URIs are capabilities: Google needs no token for them.
                    if name not in UNAUTHENTICATED and "upload_id" not in call.query:
                        with self._lock:
                            call.access = self.oauth.check(call.headers.get("Authorization", ""))
                        if not call.access.any_drive:
                            raise insufficient_scope()
                    with self._lock:
                        return getattr(self, name)(call)
            raise DriveApiError(404, "notFound", f"Not Found: {call.method} {call.path}")
        except DriveApiError as err:
            extra = {"WWW-Authenticate": 'Bearer realm="https://accounts.google.com/"'}
            return Response.json(err.status, err.body(), extra if err.status == 401 else None)
        except Exception as exc:  # a bug in the fake: make it loud in the test, not a hang
            self.internal_errors.append(f"{call.method} {call.path}: {exc!r}")
            return Response.json(500, DriveApiError(500, "backendError", repr(exc)).body())

    # ---------------------------------------------------------------- helpers

    def _file(self, item: Item, call: Call) -> Response:
        call.result_title = item.title
        resource = render_file(self._store, item, self.url)
        return Response.json(200, partial(resource, call.query.get("fields"), "File"))

    def _find(self, call: Call) -> Item:
        return self._store.find(call.file_id or "", call.access, call.all_drives)

    def _create(
        self,
        access: Access | None,
        meta: dict[str, Any],
        data: bytes | None,
        media_type: str | None,
        throttled: bool = True,
    ) -> Item:
        user = access.user if access is not None else ""
        if throttled:
            self._store.check_insert(meta, access)  # a bad request is a 400 before a 403
            if not self.throttle.admit(user):
                raise user_rate_limited()
        return self._store.insert(meta, data, media_type, access, access.app if access else "")

    def _commit(
        self,
        access: Access | None,
        file_id: str | None,
        meta: dict[str, Any],
        media_type: str | None,
        data: bytes | None,
        query: dict[str, str],
        throttled: bool = True,
    ) -> Item:
        if data is not None:
            data = self._maybe_corrupt(data)
        if file_id is None:
            return self._create(access, meta, data, media_type, throttled)
        item = self._store.find(file_id, access)
        add, remove = query.get("addParents", ""), query.get("removeParents", "")
        return self._store.update(item, meta, data, add, remove, access)

    # ---------------------------------------------------------------- OAuth

    def _authorize(self, call: Call) -> Response:
        return self.oauth.authorize(call)

    def _token(self, call: Call) -> Response:
        return self.oauth.token(call)

    # ---------------------------------------------------------------- about, ids, changes

    def _about(self, call: Call) -> Response:
        assert call.access is not None
        user = call.access.user
        used = sum(len(i.content) for i in self._store.items.values() if i.owner == user)
        total = 0 if user in self._store.no_storage else 15 << 30
        about: dict[str, Any] = {
            "kind": "drive#about",
            "name": user.split("@")[0],
            "user": {
                "kind": "drive#user",
                "displayName": user.split("@")[0],
                "emailAddress": user,
                "isAuthenticatedUser": True,
                "permissionId": "0" * 20,
            },
            "rootFolderId": self._store.root_of(user),
            "quotaType": "LIMITED",
            "quotaBytesTotal": str(total),
            "quotaBytesUsed": str(used),
            "quotaBytesUsedAggregate": str(used),
            "largestChangeId": str(self._store.changes.largest()),
            "remainingChangeIds": "0",
            "isCurrentAppInstalled": True,
        }
        return Response.json(200, partial(about, call.query.get("fields"), "About"))

    def _generate_ids(self, call: Call) -> Response:
        assert call.access is not None
        n = int_param(call.query, "maxResults", 10)
        if not 1 <= n <= 1000:
            raise invalid("Invalid Value", "maxResults")
        if call.query.get("space", "drive") != "drive":
            raise invalid("Invalid Value", "space")
        ids = self._store.reserve_ids(call.access.user, n)
        body = {"kind": "drive#generatedIds", "space": "drive", "ids": ids}
        return Response.json(200, partial(body, call.query.get("fields"), "GeneratedIds"))

    def _start_page_token(self, call: Call) -> Response:
        body = {"kind": "drive#startPageToken", "startPageToken": self._store.changes.start_token()}
        return Response.json(200, partial(body, call.query.get("fields"), "StartPageToken"))

    def _changes(self, call: Call) -> Response:
        access = call.access
        assert access is not None
        n = int_param(call.query, "maxResults", 100)
        if n < 1:
            raise invalid("Invalid Value", "maxResults")
        token = call.query.get("pageToken") or call.query.get("startChangeId") or "1"
        drives = call.flag("includeItemsFromAllDrives") and call.all_drives
        store = self._store

        def visible(change: Any) -> bool:
            return (drives or change.drive_id is None) and store.could_see(change, access)

        include_removed = call.flag("includeDeleted") or "includeDeleted" not in call.query
        found, next_token = store.changes.page(
            token, min(n, MAX_PAGE, self.page_size), visible, include_removed
        )
        items = []
        for change in found:
            entry: dict[str, Any] = {
                "kind": "drive#change",
                "id": str(change.id),
                "fileId": change.file_id,
                "selfLink": f"{self.url}drive/v2/changes/{change.id}",
                "modificationDate": change.time,
                "changeType": "file",
                "type": "file",
                "deleted": change.removed,
            }
            if not change.removed:
                entry["file"] = render_file(store, store.items[change.file_id], self.url)
            items.append(entry)
        page: dict[str, Any] = {
            "kind": "drive#changeList",
            "items": items,
            "largestChangeId": str(store.changes.largest()),
        }
        if next_token is not None:
            page["nextPageToken"] = next_token
        else:
            page["newStartPageToken"] = store.changes.start_token()
        return Response.json(200, partial(page, call.query.get("fields"), "ChangeList"))

    # ---------------------------------------------------------------- files

    def _list(self, call: Call) -> Response:
        n = int_param(call.query, "maxResults", 100)
        if n < 0:
            raise invalid("Invalid Value", "maxResults")
        query = Query(call.query.get("q", ""), lambda i: self._store.resolve(i, call.access))
        page: dict[str, Any] = {"kind": "drive#fileList", "incompleteSearch": False, "items": []}
        if self.or_parents_bug and query.or_of_parents and self._rng.random() < self.or_parents_bug:
            return Response.json(200, partial(page, call.query.get("fields"), "FileList"))
        drive_id = call.query.get("driveId") or call.query.get("teamDriveId") or None
        all_drives = call.flag("includeItemsFromAllDrives") and call.all_drives
        if drive_id is not None and not all_drives:
            raise invalid("The includeItemsFromAllDrives parameter must be set to true.")
        matches = self._store.search(query, call.access, drive_id, all_drives)
        start = 0
        token = call.query.get("pageToken")
        if token:
            m = re.fullmatch(r"~p(\d+)", token)
            if m is None:
                raise invalid("Invalid Value", "pageToken")
            start = int(m.group(1))
        end = start + min(n or 100, MAX_PAGE, self.page_size)
        page["items"] = [render_file(self._store, i, self.url) for i in matches[start:end]]
        if end < len(matches):
            page["nextPageToken"] = f"~p{end}"
        return Response.json(200, partial(page, call.query.get("fields"), "FileList"))

    def _insert(self, call: Call) -> Response:
        return self._file(self._create(call.access, call.json_body(), None, None), call)

    def _get(self, call: Call) -> Response:
        item = self._find(call)
        if call.query.get("alt") != "media":
            return self._file(item, call)
        if not item.has_blob:
            msg = "Only files with binary content can be downloaded. Use Export with Docs Editors."
            raise DriveApiError(403, "fileNotDownloadable", msg, "alt")
        data, headers = item.content, {"Content-Type": item.mime_type}
        m = re.fullmatch(r"bytes=(\d+)-(\d*)", call.headers.get("Range", ""))
        if m is None or not data:
            return Response(200, data, headers)
        start, end = int(m[1]), min(int(m[2] or len(data) - 1), len(data) - 1)
        if start >= len(data):
            raise DriveApiError(416, "requestedRangeNotSatisfiable", "Range Not Satisfiable")
        headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
        return Response(206, data[start : end + 1], headers)

    def _update(self, call: Call) -> Response:
        check_if_match(etag(self._find(call)), call.headers)
        item = self._commit(call.access, call.file_id, call.json_body(), None, None, call.query)
        return self._file(item, call)

    def _delete(self, call: Call) -> Response:
        self._store.delete(self._find(call))
        return Response(204)

    def _trash(self, call: Call, trashed: bool = True) -> Response:
        item = self._find(call)
        check_if_match(etag(item), call.headers)
        self._store.set_trashed(item, trashed)
        return self._file(item, call)

    def _untrash(self, call: Call) -> Response:
        return self._trash(call, trashed=False)

    # ---------------------------------------------------------------- uploads

    def _upload(self, call: Call) -> Response:
        if "upload_id" in call.query:
            return self._upload_chunk(call)
        if (call.method == "POST") != (call.file_id is None):
            raise DriveApiError(404, "notFound", f"Not Found: {call.method} {call.path}")
        kind = call.query.get("uploadType")
        if kind == "resumable":
            return self._start_session(call)
        if kind == "multipart":
            content_type = call.headers.get("Content-Type", "")
            eat_cr = self.multipart_eats_cr
            meta, media_type, data = parse_multipart(call.body, content_type, eat_cr)
        elif kind == "media":
            meta, media_type, data = {}, call.headers.get("Content-Type"), call.body
        else:
            raise invalid(f"Invalid upload type: {kind}", "uploadType")
        if call.file_id is not None:
            check_if_match(etag(self._find(call)), call.headers)
        item = self._commit(call.access, call.file_id, meta, media_type, data, call.query)
        return self._file(item, call)

    def _start_session(self, call: Call) -> Response:
        meta = call.json_body()
        if call.file_id is None:
            self._store.check_insert(meta, call.access)
            if not self.throttle.admit(call.access.user if call.access else ""):
                raise user_rate_limited()  # counted when the session opens
        else:
            check_if_match(etag(self._find(call)), call.headers)
        session = UploadSession.open(call.file_id, meta, call.headers, call.query, call.access)
        self._sessions[session.id] = session
        target = "" if call.file_id is None else "/" + call.file_id
        location = (
            f"{self.url}upload/drive/v2/files{target}?uploadType=resumable&upload_id={session.id}"
        )
        return Response(200, b"", {"Location": location})

    def _upload_chunk(self, call: Call) -> Response:
        session = session_or_404(self._sessions, call.query["upload_id"])
        if session.result is not None:  # a probe after completion gets the file again
            call.result_title = session.result_title
            return Response.json(200, session.result)
        if not chunk_step(session, call.headers.get("Content-Range"), call.body):
            return Response(308, b"", session.range_header())
        data = bytes(session.received)
        if session.file_id is not None:  # the condition holds until the upload commits
            current = self._store.find(session.file_id, session.access)
            check_if_match(
                etag(current), {"If-Match": session.if_match} if session.if_match else {}
            )
        item = self._commit(
            session.access,
            session.file_id,
            session.meta,
            session.mime_type,
            data,
            session.query,
            throttled=False,
        )
        resource = render_file(self._store, item, self.url)
        session.result = partial(resource, session.query.get("fields"), "File")
        call.result_title = session.result_title = item.title
        session.received = bytearray()
        return Response.json(200, session.result)

    def _keep_partial_chunk(self, upload_id: str, content_range: str, data: bytes) -> None:
        with self._lock:
            keep_partial(self._sessions.get(upload_id), content_range, data)

"""The fake Drive's wire protocol: routes, endpoint handlers, uploads, OAuth endpoints.

Owns what each request means: the route table, the v2 endpoints (about,
files.list/get/insert/update/patch/delete/trash/untrash/generateIds),
multipart and resumable uploads (sessions, ``Content-Range``, 308s, probes),
and the OAuth endpoints (``/auth`` consent with a redirect, ``/token`` for
authorization-code, refresh-token and service-account JWT grants).
``DriveEndpoints`` is mixed into ``FakeDrive``, which owns the state these
handlers read and write and the HTTP server in front of them.
"""

from __future__ import annotations

import base64
import contextlib
import json
import re
import secrets
import threading
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from .drive_store import (
    MAX_PAGE,
    ROOT_ID,
    DriveApiError,
    Item,
    Store,
    invalid,
    json_object,
    new_file_id,
)

# --------------------------------------------------------------------------- upload parsing


def parse_multipart(body: bytes, content_type: str) -> tuple[dict[str, Any], str | None, bytes]:
    """Split a multipart/related upload into (metadata, media type, media bytes).

    googleapiclient writes the body with email.generator, which uses bare LF
    line breaks; Google accepts CRLF too, so both are handled.
    """
    m = re.search(r'boundary="?([^";]+)"?', content_type)
    if not content_type.startswith("multipart/related") or m is None:
        raise invalid("Multipart upload needs a multipart/related body with a boundary.")
    pieces = re.split(rb"(?:\r?\n)?--" + re.escape(m.group(1).encode()), body)
    parts: list[tuple[dict[str, str], bytes]] = []
    for piece in pieces[1:]:
        if piece.startswith(b"--"):
            break
        piece = re.sub(rb"^[ \t]*\r?\n", b"", piece, count=1)
        blank = re.search(rb"\r?\n\r?\n", piece)
        head, data = (piece[: blank.start()], piece[blank.end() :]) if blank else (piece, b"")
        headers = {}
        for line in head.decode("latin-1").splitlines():
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        parts.append((headers, data))
    if len(parts) != 2:
        raise invalid(f"Multipart upload must have 2 parts, got {len(parts)}.")
    (_, meta_bytes), (media_headers, media) = parts
    return json_object(meta_bytes), media_headers.get("content-type"), media


def parse_content_range(value: str | None) -> tuple[int | None, int | None, int | None]:
    """`bytes a-b/T` → (a, b, T); `bytes */T` → (None, None, T); `*` totals → None."""
    if value is None:
        return None, None, None
    m = re.fullmatch(r"\s*bytes\s+(?:(\d+)-(\d+)|\*)/(\d+|\*)\s*", value)
    if m is None:
        raise invalid(f"Invalid Content-Range: {value}")
    start, end, total = (None if g in (None, "*") else int(g) for g in m.groups())
    return start, end, total


@dataclass
class UploadSession:
    id: str
    file_id: str | None  # None: the upload creates a file
    meta: dict[str, Any]
    mime_type: str | None
    declared_size: int | None
    query: dict[str, str]  # addParents/removeParents given when the session started
    received: bytearray = field(default_factory=bytearray)
    result: dict[str, Any] | None = None

    def accept(self, start: int, data: bytes) -> None:
        # Overlap with bytes already stored is allowed (a client may resend a
        # chunk it is unsure about); only the new tail is appended.
        if start <= len(self.received):
            self.received += data[len(self.received) - start :]

    def range_header(self) -> dict[str, str]:
        return {"Range": f"bytes=0-{len(self.received) - 1}"} if self.received else {}


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, status: int, payload: Any, headers: dict[str, str] | None = None) -> Response:
        h = {"Content-Type": "application/json; charset=UTF-8", **(headers or {})}
        return cls(status, json.dumps(payload).encode(), h)


@dataclass
class Call:
    method: str
    path: str
    query: dict[str, str]
    headers: Any  # email.message.Message from http.server
    body: bytes
    file_id: str | None = None

    def json_body(self) -> dict[str, Any]:
        return json_object(self.body)


FILE_PATH = r"/drive/v2/files/(?P<file_id>[^/]+)"
ROUTES: list[tuple[str, re.Pattern[str], str]] = [
    (m, re.compile(p), h)
    for m, p, h in [
        ("POST", r"/token", "_token"),
        ("GET", r"/auth", "_authorize"),
        ("GET", r"/drive/v2/about", "_about"),
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


class DriveEndpoints:
    """The request handlers of FakeDrive (a mixin: FakeDrive holds the state)."""

    url: str
    internal_errors: list[str]
    _lock: threading.RLock
    _store: Store
    _sessions: dict[str, UploadSession]
    _access_tokens: set[str]
    _refresh_tokens: set[str]
    _service_accounts: set[str]
    _auth_codes: dict[str, tuple[str, str]]
    granted_scopes: list[str]

    def issue_token(self) -> str:
        raise NotImplementedError

    def _dispatch(self, call: Call) -> Response:
        try:
            for methods, pattern, name in ROUTES:
                m = pattern.fullmatch(call.path)
                if m and call.method in methods.split():
                    call.file_id = m.groupdict().get("file_id")
                    # Upload session URIs are capabilities: Google needs no token for them.
                    if name not in ("_token", "_authorize") and "upload_id" not in call.query:
                        self._authenticate(call)
                    with self._lock:
                        return getattr(self, name)(call)
            raise DriveApiError(404, "notFound", f"Not Found: {call.method} {call.path}")
        except DriveApiError as err:
            extra = {"WWW-Authenticate": 'Bearer realm="https://accounts.google.com/"'}
            return Response.json(err.status, err.body(), extra if err.status == 401 else None)
        except Exception as exc:  # a bug in the fake: make it loud in the test, not a hang
            self.internal_errors.append(f"{call.method} {call.path}: {exc!r}")
            return Response.json(500, DriveApiError(500, "backendError", repr(exc)).body())

    def _authenticate(self, call: Call) -> None:
        auth = call.headers.get("Authorization", "")
        with self._lock:
            valid = auth.startswith("Bearer ") and auth[7:] in self._access_tokens
        if not valid:
            raise DriveApiError(401, "authError", "Invalid Credentials", "Authorization")

    def _render(self, item: Item) -> Response:
        return Response.json(200, self._store.render(item, self.url))

    def _authorize(self, call: Call) -> Response:
        """The consent page: a user who says yes is redirected back with a one-time code."""
        redirect_uri = call.query.get("redirect_uri", "")
        if not redirect_uri.startswith(("http://localhost", "http://127.0.0.1")):
            raise invalid("redirect_uri must be a loopback address", "redirect_uri")
        if call.query.get("response_type") != "code" or not call.query.get("client_id"):
            raise invalid("Missing response_type=code or client_id")
        code = "4/fake-code-" + secrets.token_urlsafe(12)
        self._auth_codes[code] = (redirect_uri, call.query.get("scope", ""))
        sep = "&" if "?" in redirect_uri else "?"
        return Response(302, b"", {"Location": f"{redirect_uri}{sep}code={code}"})

    def _token(self, call: Call) -> Response:
        form = dict(parse_qsl(call.body.decode("utf-8", "replace")))
        grant = form.get("grant_type")
        invalid_grant = {
            "error": "invalid_grant",
            "error_description": "Token has been expired or revoked.",
        }
        if grant == "authorization_code":
            redirect_uri, scope = self._auth_codes.pop(form.get("code", ""), ("", ""))
            if not redirect_uri or redirect_uri != form.get("redirect_uri"):
                return Response.json(400, {**invalid_grant, "error_description": "Bad code."})
            refresh = "1//fake-refresh-" + secrets.token_urlsafe(12)
            self._refresh_tokens.add(refresh)
            self.granted_scopes.append(scope)
            body = {"access_token": self.issue_token(), "expires_in": 3600}
            body.update(token_type="Bearer", refresh_token=refresh, scope=scope)
            return Response.json(200, body)
        if grant == "urn:ietf:params:oauth:grant-type:jwt-bearer":
            if jwt_issuer(form.get("assertion", "")) not in self._service_accounts:
                return Response.json(400, invalid_grant)
        elif grant != "refresh_token":
            return Response.json(400, {"error": "unsupported_grant_type"})
        elif form.get("refresh_token") not in self._refresh_tokens:
            return Response.json(400, invalid_grant)
        return Response.json(
            200, {"access_token": self.issue_token(), "expires_in": 3600, "token_type": "Bearer"}
        )

    def _about(self, call: Call) -> Response:
        used = str(sum(len(i.content) for i in self._store.items.values()))
        user = {"displayName": "Fake User", "emailAddress": "fake.user@example.com"}
        about = {"kind": "drive#about", "name": "Fake User", "user": user, "rootFolderId": ROOT_ID}
        about.update(quotaType="LIMITED", quotaBytesTotal=str(15 << 30), quotaBytesUsed=used)
        return Response.json(200, about)

    def _generate_ids(self, call: Call) -> Response:
        n = int_param(call.query, "maxResults", 10)
        if not 1 <= n <= 1000:
            raise invalid("Invalid Value", "maxResults")
        ids = [new_file_id() for _ in range(n)]
        self._store.reserved_ids.update(ids)
        return Response.json(200, {"kind": "drive#generatedIds", "space": "drive", "ids": ids})

    def _list(self, call: Call) -> Response:
        n = int_param(call.query, "maxResults", 100)
        if n < 0:
            raise invalid("Invalid Value", "maxResults")
        q, token = call.query.get("q", ""), call.query.get("pageToken")
        items, next_token = self._store.list(q, min(n or 100, MAX_PAGE), token)
        page: dict[str, Any] = {"kind": "drive#fileList", "incompleteSearch": False}
        page["items"] = [self._store.render(i, self.url) for i in items]
        if next_token:
            page["nextPageToken"] = next_token
        return Response.json(200, page)

    def _insert(self, call: Call) -> Response:
        return self._render(self._store.insert(call.json_body(), None, None))

    def _get(self, call: Call) -> Response:
        item = self._store.get(call.file_id or "")
        if call.query.get("alt") != "media":
            return self._render(item)
        if item.mime_type.startswith("application/vnd.google-apps."):
            msg = "Only files with binary content can be downloaded."
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
        return self._render(self._commit(call.file_id, call.json_body(), None, None, call.query))

    def _delete(self, call: Call) -> Response:
        self._store.delete(call.file_id or "")
        return Response(204)

    def _trash(self, call: Call, trashed: bool = True) -> Response:
        item = self._store.get(call.file_id or "")
        if item.id == ROOT_ID:
            raise DriveApiError(403, "insufficientFilePermissions", "The root cannot be trashed.")
        item.explicitly_trashed = trashed
        item.touch(modified=False)  # trashing bumps the version but not modifiedDate
        return self._render(item)

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
            meta, media_type, data = parse_multipart(
                call.body, call.headers.get("Content-Type", "")
            )
        elif kind == "media":
            meta, media_type, data = {}, call.headers.get("Content-Type"), call.body
        else:
            raise invalid(f"Invalid upload type: {kind}", "uploadType")
        return self._render(self._commit(call.file_id, meta, media_type, data, call.query))

    def _commit(
        self,
        file_id: str | None,
        meta: dict[str, Any],
        media_type: str | None,
        data: bytes | None,
        query: dict[str, str],
    ) -> Item:
        if file_id is None:
            return self._store.insert(meta, data, media_type)
        add, remove = query.get("addParents", ""), query.get("removeParents", "")
        return self._store.update(file_id, meta, data, add, remove)

    def _start_session(self, call: Call) -> Response:
        meta = call.json_body()
        if call.file_id is None:
            self._store.check_insert(meta)
        else:
            self._store.get(call.file_id)
        declared = call.headers.get("X-Upload-Content-Length")
        session = UploadSession(
            id=secrets.token_urlsafe(24),
            file_id=call.file_id,
            meta=meta,
            mime_type=call.headers.get("X-Upload-Content-Type"),
            declared_size=int(declared) if declared else None,
            query=call.query,
        )
        self._sessions[session.id] = session
        target = "" if call.file_id is None else "/" + call.file_id
        location = (
            f"{self.url}upload/drive/v2/files{target}?uploadType=resumable&upload_id={session.id}"
        )
        return Response(200, b"", {"Location": location})

    def _upload_chunk(self, call: Call) -> Response:
        session = self._sessions.get(call.query["upload_id"])
        if session is None:
            raise DriveApiError(404, "notFound", "No upload session with this id.", "upload_id")
        if session.result is not None:  # a probe after completion gets the file again
            return Response.json(200, session.result)
        header = call.headers.get("Content-Range")
        if header is None:  # googleapiclient sends an empty upload without Content-Range
            start, end, total = 0, len(call.body) - 1, len(call.body)
        else:
            start, end, total = parse_content_range(header)
        if total is not None and session.declared_size not in (None, total):
            raise invalid("Content-Range total differs from X-Upload-Content-Length.")
        if start is not None and end is not None:
            if end - start + 1 != len(call.body):
                raise invalid("Content-Range does not match the request body length.")
            session.accept(start, call.body)
        if total is not None and len(session.received) > total:
            raise invalid("More bytes received than the declared total.")
        if total is not None and len(session.received) == total:
            item = self._commit(
                session.file_id,
                session.meta,
                session.mime_type,
                bytes(session.received),
                session.query,
            )
            session.result, session.received = self._store.render(item, self.url), bytearray()
            return Response.json(200, session.result)
        return Response(308, b"", session.range_header())

    def _keep_partial_chunk(self, upload_id: str, content_range: str, data: bytes) -> None:
        with self._lock, contextlib.suppress(DriveApiError):
            session = self._sessions.get(upload_id)
            start = parse_content_range(content_range)[0]
            if session is not None and session.result is None and start is not None:
                session.accept(start, data)


def jwt_issuer(assertion: str) -> str | None:
    try:
        payload = assertion.split(".")[1]
        return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["iss"]
    except (IndexError, ValueError, KeyError, TypeError):
        return None


def int_param(query: dict[str, str], name: str, default: int) -> int:
    try:
        return int(query.get(name, default))
    except ValueError as exc:
        raise invalid("Invalid Value", name) from exc

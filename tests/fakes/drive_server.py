"""A stateful fake of the Google Drive v2 subset syncd uses, served over real HTTP.

Tests point the real googleapiclient/pydrive2 stack at `FakeDrive.url` (see
docs/notes on rewriting the discovery document's rootUrl), so every byte goes
through the same request building, multipart encoding, resumable-upload and
retry code as production. It is thread-safe: the syncd daemon runs as a
subprocess and talks to a FakeDrive living in the pytest process over many
keep-alive connections.

This module owns the server and the test-facing API: lifecycle, OAuth
tokens, fault injection, the request log, inspection and seeding.  The file
store and query language are ``drive_store``; what each endpoint does
(including uploads and the OAuth endpoints) is ``drive_protocol``.
"""

from __future__ import annotations

import contextlib
import json
import random
import re
import secrets
import socket
import struct
import sys
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from .drive_protocol import Call, DriveEndpoints, Response, UploadSession
from .drive_store import (
    DEFAULT_REFRESH_TOKEN,
    FOLDER_MIME,
    ROOT_ID,
    STANDARD_REASONS,
    DriveApiError,
    Item,
    Store,
)

__all__ = ["FOLDER_MIME", "ROOT_ID", "DriveApiError", "FakeDrive", "Fault", "RecordedRequest"]

# --------------------------------------------------------------------------- faults and log


@dataclass
class Fault:
    """One injected failure; fires `count` times on matching requests after skipping `after`."""

    status: int | None = None
    reason: str | None = None
    message: str | None = None
    count: int = 1
    method: str | None = None
    path_contains: str | None = None
    after: int = 0
    drop: bool = False
    delay: float = 0.0
    lose_response: bool = False
    delay_response: float = 0.0

    def describe(self) -> str:
        if self.lose_response:
            return "lost response"
        if self.delay_response:
            return f"response delayed {self.delay_response}s"
        return "drop" if self.drop else str(self.status or f"delay {self.delay}s")

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method.upper() == method) and (
            self.path_contains is None or self.path_contains in path
        )

    def error(self) -> DriveApiError:
        status = self.status or 500
        default_reason, default_message = STANDARD_REASONS.get(status, ("backendError", "Error"))
        return DriveApiError(status, self.reason or default_reason, self.message or default_message)


@dataclass
class _RandomFaults:
    rate: float
    statuses: list[int]
    rng: random.Random
    method: str | None
    path_contains: str | None

    def pick(self, method: str, path: str) -> Fault | None:
        probe = Fault(method=self.method, path_contains=self.path_contains)
        if probe.matches(method, path) and self.rng.random() < self.rate:
            return Fault(status=self.rng.choice(self.statuses))
        return None


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    upload_type: str | None
    content_range: str | None
    status: int | None  # None: the connection was dropped without a response
    time: float
    fault: str | None = None
    body_size: int = 0
    title: str | None = None  # uploads: the title of the file the response describes


# --------------------------------------------------------------------------- HTTP plumbing


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive; every response carries Content-Length
    disable_nagle_algorithm = True  # else each kept-alive request stalls ~40 ms
    timeout = 120  # idle keep-alive connections go away eventually
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass  # FakeDrive.requests replaces the stderr access log

    def setup(self) -> None:
        super().setup()
        self.server.fake._connections.add(self.connection)

    def finish(self) -> None:
        self.server.fake._connections.discard(self.connection)
        with contextlib.suppress(OSError):
            super().finish()

    def _handle(self) -> None:
        self.server.fake._serve(self)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

    def content_length(self) -> int:
        return int(self.headers.get("Content-Length") or 0)

    def read_body(self, limit: int | None = None) -> bytes:
        length = self.content_length()
        return self.rfile.read(length if limit is None else min(limit, length))

    def respond(self, resp: Response) -> None:
        message = "Resume Incomplete" if resp.status == 308 else None
        self.send_response(resp.status, message)
        for name, value in resp.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(resp.body)))
        self.end_headers()
        self.wfile.write(resp.body)

    def reset_connection(self) -> None:
        # Linger 0 makes close() send RST: the client sees a connection reset,
        # not a clean EOF that httplib2 would silently retry.
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.rfile.close()
            self.connection.close()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeDrive

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that hang up (timeouts, the daemon being killed) are expected.
        if not isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            super().handle_error(request, client_address)


# --------------------------------------------------------------------------- the fake


class FakeDrive(DriveEndpoints):
    """A Drive v2 server on 127.0.0.1 with inspection and fault-injection helpers."""

    def __init__(self, *, refresh_token: str = DEFAULT_REFRESH_TOKEN) -> None:
        self._lock = threading.RLock()
        self._store = Store()
        self._sessions: dict[str, UploadSession] = {}
        self._access_tokens: set[str] = set()
        self._refresh_tokens: set[str] = {refresh_token}
        self.refresh_token = refresh_token
        self._faults: list[Fault] = []
        self._random_faults: _RandomFaults | None = None
        self._upload_drop: int | None = None
        self._upload_drops_left = 0
        self._connections: set[socket.socket] = set()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.requests: list[RecordedRequest] = []
        self.internal_errors: list[str] = []  # bugs in the fake itself, answered as 500
        self._stopping = threading.Event()  # wakes responses held by `delay_response`
        self._auth_codes: dict[str, tuple[str, str]] = {}  # code → (redirect_uri, scope)
        self._service_accounts: set[str] = set()
        self.granted_scopes: list[str] = []  # scope of every authorization-code grant

    # ---------------------------------------------------------------- lifecycle

    def start(self) -> FakeDrive:
        self._stopping.clear()
        server = _Server(("127.0.0.1", 0), _Handler)
        server.fake = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        for conn in list(self._connections):  # wake handler threads parked on keep-alive reads
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join()
        self._server = None

    def __enter__(self) -> FakeDrive:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("FakeDrive is not running")
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    @property
    def root_id(self) -> str:
        return ROOT_ID

    def discovery_doc(self) -> dict[str, Any]:
        """The bundled Drive v2 discovery document, pointed at this server."""
        from googleapiclient.discovery_cache import get_static_doc

        doc = json.loads(get_static_doc("drive", "v2"))
        doc["rootUrl"] = doc["mtlsRootUrl"] = self.url
        doc["baseUrl"] = self.url + doc["servicePath"]
        return doc

    # ---------------------------------------------------------------- auth

    def issue_token(self) -> str:
        token = "ya29.fake-" + secrets.token_urlsafe(16)
        with self._lock:
            self._access_tokens.add(token)
        return token

    def expire_access_tokens(self) -> None:
        """Access tokens now give 401; refresh tokens still work."""
        with self._lock:
            self._access_tokens.clear()

    def revoke_all(self) -> None:
        """Access tokens give 401 and refresh tokens `invalid_grant`, as after a revoke."""
        with self._lock:
            self._access_tokens.clear()
            self._refresh_tokens.clear()

    def allow_refresh_token(self, token: str) -> None:
        with self._lock:
            self._refresh_tokens.add(token)

    def allow_service_account(self, email: str) -> None:
        """JWT-bearer grants issued by `email` get access tokens (signatures are not checked)."""
        with self._lock:
            self._service_accounts.add(email)

    def client_secrets(self) -> dict[str, Any]:
        """A "Desktop app" OAuth client whose endpoints are this server (client_secrets.json)."""
        return {
            "installed": {
                "client_id": "fake-client-id.apps.googleusercontent.com",
                "client_secret": "fake-client-secret",
                "auth_uri": self.url + "auth",
                "token_uri": self.url + "token",
                "redirect_uris": ["http://localhost"],
            }
        }

    # ---------------------------------------------------------------- faults

    def inject(
        self,
        status: int | None = None,
        reason: str | None = None,
        *,
        count: int = 1,
        method: str | None = None,
        path_contains: str | None = None,
        after: int = 0,
        drop: bool = False,
        delay: float = 0.0,
        message: str | None = None,
        lose_response: bool = False,
        delay_response: float = 0.0,
    ) -> Fault:
        """Fail the next `count` matching requests (after skipping `after` of them).

        `status` answers a Google-shaped error; `drop` resets the connection
        before the request is handled; `lose_response` handles it (a create
        really happens) and then resets the connection, the case that makes
        blind retries create duplicates; `delay` stalls first (alone, it only
        slows the call); `delay_response` handles the request and then holds
        the answer that long (or until `stop()`), which leaves a test time to
        kill a client between the server's commit and the client's bookkeeping.
        """
        if status is None and not (drop or delay or lose_response or delay_response):
            raise ValueError("inject() needs status, drop, lose_response, delay or delay_response")
        fault = Fault(
            status=status,
            reason=reason,
            message=message,
            count=count,
            method=method,
            path_contains=path_contains,
            after=after,
            drop=drop,
            delay=delay,
            lose_response=lose_response,
            delay_response=delay_response,
        )
        with self._lock:
            self._faults.append(fault)
        return fault

    def inject_random(
        self,
        rate: float,
        statuses: list[int] | tuple[int, ...] = (500, 503),
        seed: int | None = None,
        *,
        method: str | None = None,
        path_contains: str | None = None,
    ) -> None:
        """Fail a `rate` share of matching requests until `clear_faults()`."""
        rng = random.Random(seed)
        with self._lock:
            self._random_faults = _RandomFaults(rate, list(statuses), rng, method, path_contains)

    def drop_upload_after(self, bytes_: int, times: int = 1) -> None:
        """The next `times` resumable chunks keep their first `bytes_` bytes, then the
        connection resets (times > 1: a link too slow for a chunk to make it in one go)."""
        with self._lock:
            self._upload_drop, self._upload_drops_left = bytes_, times

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()
            self._random_faults = None
            self._upload_drop = None

    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if not fault.matches(method, path):
                    continue
                if fault.after > 0:
                    fault.after -= 1
                    continue
                fault.count -= 1
                if fault.count <= 0:
                    self._faults.remove(fault)
                return fault
            return self._random_faults.pick(method, path) if self._random_faults else None

    # ---------------------------------------------------------------- request log

    def count(
        self, method: str | None = None, path_contains: str | None = None, status: int | None = None
    ) -> int:
        with self._lock:
            return sum(
                1
                for r in self.requests
                if (method is None or r.method == method.upper())
                and (path_contains is None or path_contains in r.path)
                and (status is None or r.status == status)
            )

    def reset_log(self) -> None:
        with self._lock:
            self.requests.clear()

    # ---------------------------------------------------------------- inspection and seeding

    def get(self, file_id: str) -> dict[str, Any]:
        with self._lock:
            return self._store.render(self._store.get(file_id), self.url)

    def children(self, folder_id: str = ROOT_ID, *, include_trashed: bool = False) -> list[dict]:
        with self._lock:
            fid = self._store.resolve(folder_id)
            return [
                self._store.render(i, self.url)
                for i in self._store.items.values()
                if fid in i.parents and (include_trashed or not self._store.is_trashed(i))
            ]

    def tree(self, root_id: str | None = None) -> dict[str, str | None]:
        """Relative path → md5 of every live item under a folder; folders end in "/" → None."""
        with self._lock:
            kids = self._live_children()
            out: dict[str, str | None] = {}
            stack = [(self._store.resolve(root_id or ROOT_ID), "")]
            while stack:
                folder_id, prefix = stack.pop()
                for item in kids.get(folder_id, []):
                    key = prefix + item.title + ("/" if item.is_folder else "")
                    if key in out:
                        raise AssertionError(f"fake Drive holds two items at {key!r}")
                    out[key] = None if item.is_folder else item.md5
                    if item.is_folder:
                        stack.append((item.id, key))
            return dict(sorted(out.items()))

    def ids(self, root_id: str | None = None) -> dict[str, str]:
        """Relative path → id of every live file (not folder) under a folder."""
        with self._lock:
            kids = self._live_children()
            out: dict[str, str] = {}
            stack = [(self._store.resolve(root_id or ROOT_ID), "")]
            while stack:
                folder_id, prefix = stack.pop()
                for item in kids.get(folder_id, []):
                    if item.is_folder:
                        stack.append((item.id, prefix + item.title + "/"))
                    else:
                        out[prefix + item.title] = item.id
            return out

    def find(self, path: str, root_id: str | None = None) -> dict[str, Any] | None:
        """The live item at a relative path ("a/b.txt", "a/" or "a"), or None."""
        with self._lock:
            item = self._walk(path, root_id)
            return None if item is None else self._store.render(item, self.url)

    def duplicates(self) -> list[tuple[str, str, list[str]]]:
        """(parent id, title, ids) for every title held by several live items of one folder."""
        with self._lock:
            groups: dict[tuple[str, str], list[str]] = {}
            for parent, items in self._live_children().items():
                for item in items:
                    groups.setdefault((parent, item.title), []).append(item.id)
            return [(p, t, ids) for (p, t), ids in groups.items() if len(ids) > 1]

    def trashed(self) -> list[dict[str, Any]]:
        with self._lock:
            return [
                self._store.render(i, self.url)
                for i in self._store.items.values()
                if self._store.is_trashed(i)
            ]

    def content(self, file_id: str) -> bytes:
        with self._lock:
            return self._store.get(file_id).content

    def trash(self, file_id: str) -> None:
        """Move an item (and so everything below it) to the trash, as a person would."""
        with self._lock:
            item = self._store.get(file_id)
            item.explicitly_trashed = True
            item.touch(modified=False)

    def move(self, file_id: str, folder_id: str, title: str | None = None) -> None:
        """Move (and maybe rename) an item as another client would."""
        with self._lock:
            old = ",".join(self._store.get(file_id).parents)
            self._store.update(file_id, {"title": title} if title else {}, None, folder_id, old)

    def set_content(self, file_id: str, data: bytes) -> dict[str, Any]:
        """Change a file as another client (say Colab) would: new md5, version bump."""
        with self._lock:
            item = self._store.update(file_id, {}, data)
            return self._store.render(item, self.url)

    def mkdir(self, path: str, parent_id: str | None = None) -> str:
        """Create the missing folders of `path` (like mkdir -p); return the last one's id."""
        with self._lock:
            folder = self._store.resolve(parent_id or ROOT_ID)
            for name in [p for p in path.split("/") if p]:
                existing = [
                    i
                    for i in self._live_children().get(folder, [])
                    if i.title == name and i.is_folder
                ]
                if existing:
                    folder = existing[0].id
                else:
                    meta = {"title": name, "mimeType": FOLDER_MIME, "parents": [{"id": folder}]}
                    folder = self._store.insert(meta, None, None).id
            return folder

    def put_file(
        self,
        path: str,
        data: bytes,
        parent_id: str | None = None,
        mime_type: str = "application/octet-stream",
    ) -> str:
        """Create a new file at `path` (a second call makes a duplicate, as Drive allows)."""
        folder_path, _, title = path.strip("/").rpartition("/")
        with self._lock:
            folder = self.mkdir(folder_path, parent_id)
            meta = {"title": title, "mimeType": mime_type, "parents": [{"id": folder}]}
            return self._store.insert(meta, data, None).id

    def _live_children(self) -> dict[str, list[Item]]:
        kids: dict[str, list[Item]] = {}
        for item in self._store.items.values():
            if item.id != ROOT_ID and not self._store.is_trashed(item):
                for parent in item.parents:
                    kids.setdefault(parent, []).append(item)
        return kids

    def _walk(self, path: str, root_id: str | None) -> Item | None:
        kids = self._live_children()
        item = self._store.get(root_id or ROOT_ID)
        for name in [p for p in path.split("/") if p]:
            found = [i for i in kids.get(item.id, []) if i.title == name]
            if len(found) > 1:
                raise AssertionError(f"fake Drive holds {len(found)} items named {name!r}")
            if not found:
                return None
            item = found[0]
        return item

    # ---------------------------------------------------------------- serving

    def _serve(self, h: _Handler) -> None:
        url = urlsplit(h.path)
        path = "/" + url.path.lstrip("/")
        query = dict(parse_qsl(url.query, keep_blank_values=True))
        content_range = h.headers.get("Content-Range")
        rec = RecordedRequest(
            h.command, path, query, query.get("uploadType"), content_range, None, time.time()
        )
        with self._lock:
            self.requests.append(rec)
        fault = self._take_fault(h.command, path)
        if fault is not None:
            rec.fault = fault.describe()
            time.sleep(fault.delay)
        is_chunk = "upload_id" in query and re.match(r"\s*bytes\s+\d", content_range or "")
        limit = None
        if is_chunk:
            with self._lock:
                limit = self._upload_drop
                self._upload_drops_left -= 1
                if self._upload_drops_left <= 0:
                    self._upload_drop = None
                rec.fault = rec.fault if limit is None else f"drop_upload_after {limit}"
        body = h.read_body(limit)
        rec.body_size = len(body)
        # Like Google, keep what arrived of a chunk whose connection broke.
        broken = limit is not None or len(body) < h.content_length()
        if is_chunk and broken:
            self._keep_partial_chunk(query["upload_id"], content_range or "", body)
        if broken or (fault is not None and fault.drop and not fault.lose_response):
            h.reset_connection()
            return
        if fault is not None and fault.status is not None:
            resp = Response.json(fault.status, fault.error().body())
        else:
            resp = self._dispatch(Call(h.command, path, query, h.headers, body))
        if "/upload/" in path and resp.status in (200, 201) and resp.body:
            with contextlib.suppress(ValueError, AttributeError):
                rec.title = json.loads(resp.body).get("title")
        if fault is not None and fault.lose_response:
            rec.fault = f"lost response {resp.status}"
            h.reset_connection()
            return
        if fault is not None and fault.delay_response:
            self._stopping.wait(fault.delay_response)
        rec.status = resp.status
        h.respond(resp)

"""A stateful fake of the Google Drive v2 subset syncd uses, served over real HTTP.

Tests point the real googleapiclient/pydrive2 stack at `FakeDrive.url` (the
discovery document's rootUrl rewritten, see ``discovery_doc``), so every byte
goes through the same request building, multipart encoding, resumable-upload
and retry code as production.  It is thread-safe: the syncd daemon runs as a
subprocess and talks to a FakeDrive living in the pytest process over many
keep-alive connections.

It is as strict as Drive where syncd could tell the difference — scopes
(drive.file sees only what the app made), My Drive's own id, partial
responses, write throttling, id lifetimes, no hashes on Google Docs — and
each rule cites its source where it is enforced (``drive_protocol``,
``drive_store``, ``drive_render``, ``drive_oauth``, ``drive_limits``,
``drive_uploads``, ``drive_changes``).  Knobs (attributes, settable per test):

- ``throttle.configure(rate, burst)`` / ``set_write_limit``: creations per second
  per user (default 3/s, burst 10; ``None`` turns it off).
- ``page_size``: most items per ``files.list``/``changes.list`` page (default 1000).
- ``latency`` (seconds per request) and ``upload_bandwidth`` (bytes/s).
- ``generated_id_ttl``: seconds a ``generateIds`` id stays usable.
- ``set_clock(clock)``: the clock of the throttle and of id ages (tests freeze it).
- ``or_parents_bug``: probability that an OR-of-parents query answers nothing.
- ``multipart_eats_cr``: a lenient multipart parser that loses a trailing CR.

This module owns the server, its lifecycle, tokens for tests and the request
log; faults are ``drive_faults``, inspection and seeding ``drive_seed``.
"""

from __future__ import annotations

import contextlib
import json
import random
import re
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from .drive_access import APP, BY_HAND, COLAB, SCOPE_FILE, SCOPE_FULL, USER, Access, scope_url
from .drive_errors import DriveApiError
from .drive_faults import Fault, FaultInjection
from .drive_limits import Network, WriteThrottle
from .drive_oauth import Grant, OAuthServer
from .drive_protocol import DriveEndpoints
from .drive_seed import DriveInspection
from .drive_store import DOC_MIME, FOLDER_MIME, ROOT_ID, SHORTCUT_MIME, Store
from .drive_uploads import UploadSession
from .drive_wire import Call, Response

DEFAULT_REFRESH_TOKEN = "1//fake-refresh-token"

__all__ = [
    "APP",
    "BY_HAND",
    "COLAB",
    "DOC_MIME",
    "FOLDER_MIME",
    "ROOT_ID",
    "SCOPE_FILE",
    "SCOPE_FULL",
    "SHORTCUT_MIME",
    "DriveApiError",
    "FakeDrive",
    "Fault",
    "RecordedRequest",
]


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
    reason: str | None = None  # error answers: Google's reason (userRateLimitExceeded, ...)


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


class FakeDrive(DriveEndpoints, FaultInjection, DriveInspection):
    """A Drive v2 server on 127.0.0.1 with inspection and fault-injection helpers."""

    def __init__(self, *, refresh_token: str = DEFAULT_REFRESH_TOKEN, seed: int = 0) -> None:
        self._lock = threading.RLock()
        self._store = Store()
        self._sessions: dict[str, UploadSession] = {}
        self.oauth = OAuthServer(refresh_token)
        self.refresh_token = refresh_token
        self.throttle = WriteThrottle()
        self.network = Network()
        self.page_size = 1000
        self.or_parents_bug = 0.0
        self.multipart_eats_cr = False
        self._rng = random.Random(seed)
        self._init_faults()
        self._connections: set[socket.socket] = set()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.requests: list[RecordedRequest] = []
        self.internal_errors: list[str] = []  # bugs in the fake itself, answered as 500
        self._stopping = threading.Event()  # wakes responses held by `delay_response`

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

    def discovery_doc(self) -> dict[str, Any]:
        """The bundled Drive v2 discovery document, pointed at this server."""
        from googleapiclient.discovery_cache import get_static_doc

        doc = json.loads(get_static_doc("drive", "v2"))
        doc["rootUrl"] = doc["mtlsRootUrl"] = self.url
        doc["baseUrl"] = self.url + doc["servicePath"]
        return doc

    # ---------------------------------------------------------------- knobs

    def set_write_limit(self, rate: float | None, burst: float | None = None) -> None:
        """Creations per second per user (None: unthrottled); resets the buckets."""
        self.throttle.configure(rate, burst)

    @property
    def latency(self) -> float:
        return self.network.latency

    @latency.setter
    def latency(self, seconds: float) -> None:
        self.network.latency = seconds

    @property
    def upload_bandwidth(self) -> float | None:
        return self.network.upload_bytes_per_s

    @upload_bandwidth.setter
    def upload_bandwidth(self, bytes_per_s: float | None) -> None:
        self.network.upload_bytes_per_s = bytes_per_s

    def set_clock(self, clock: Callable[[], float]) -> None:
        """The clock of the write throttle and of reserved ids' ages (default time.monotonic).

        Tests of those rules freeze it: with the wall clock, a loaded machine lets time
        pass between two requests that the test meant to be "at once".
        """
        self.throttle.clock = clock
        self._store.clock = clock

    @property
    def generated_id_ttl(self) -> float:
        return self._store.id_ttl

    @generated_id_ttl.setter
    def generated_id_ttl(self, seconds: float) -> None:
        self._store.id_ttl = seconds

    def add_shared_drive(self, name: str, members: list[str] | tuple[str, ...] = (USER,)) -> str:
        """A Shared Drive whose members may use it (service accounts need one for storage)."""
        from .drive_errors import new_root_id
        from .drive_store import Item

        with self._lock:
            drive = Item(new_root_id(), name, FOLDER_MIME, [], "", 0)
            drive.drive_id = drive.id
            self._store.items[drive.id] = drive
            self._store.drives[drive.id] = set(members)
            return drive.id

    # ---------------------------------------------------------------- auth

    @property
    def granted_scopes(self) -> list[str]:
        """The scopes granted at every authorization-code exchange, in order."""
        return self.oauth.granted_scopes

    @property
    def consent_grants(self) -> frozenset[str] | None:
        return self.oauth.consent_grants

    @consent_grants.setter
    def consent_grants(self, scopes: list[str] | None) -> None:
        """With granular consent the user grants only these (scope names or URLs)."""
        self.oauth.consent_grants = (
            None if scopes is None else frozenset(scope_url(s) for s in scopes)
        )

    def issue_token(self, scope: str = "file", *, app: str = APP, user: str = USER) -> str:
        """An access token for ``scope`` ("file", "full" or scope URLs, space separated)."""
        with self._lock:
            return self.oauth.issue(Access.of(scope, user=user, app=app))

    def expire_access_tokens(self) -> None:
        """Access tokens now give 401; refresh tokens still work."""
        with self._lock:
            self.oauth.access.clear()

    def revoke_all(self) -> None:
        """Access tokens give 401 and refresh tokens `invalid_grant`, as after a revoke."""
        with self._lock:
            self.oauth.revoke_all()

    def allow_refresh_token(self, token: str, scope: str = "file", *, app: str = APP) -> None:
        """A refresh token the user granted ``scope`` with (as an earlier consent left it)."""
        with self._lock:
            self.oauth.grants[token] = Grant(USER, app, Access.of(scope).scopes)

    def allow_service_account(self, email: str, *, storage: bool = False) -> None:
        """JWT-bearer grants issued by `email` get access tokens (signatures are not checked).

        Service accounts have no storage quota unless ``storage``: their uploads work
        only inside a Shared Drive they are a member of.
        """
        with self._lock:
            self.oauth.service_accounts.add(email)
            if not storage:
                self._store.no_storage.add(email)

    def client_secrets(self) -> dict[str, Any]:
        """A "Desktop app" OAuth client whose endpoints are this server (client_secrets.json)."""
        return {
            "installed": {
                "client_id": APP,
                "client_secret": "fake-client-secret",
                "auth_uri": self.url + "auth",
                "token_uri": self.url + "token",
                "redirect_uris": ["http://localhost"],
            }
        }

    # ---------------------------------------------------------------- request log

    def count(
        self,
        method: str | None = None,
        path_contains: str | None = None,
        status: int | None = None,
        reason: str | None = None,
    ) -> int:
        with self._lock:
            return sum(
                1
                for r in self.requests
                if (method is None or r.method == method.upper())
                and (path_contains is None or path_contains in r.path)
                and (status is None or r.status == status)
                and (reason is None or r.reason == reason)
            )

    def reset_log(self) -> None:
        with self._lock:
            self.requests.clear()

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
        if self.network.latency:
            time.sleep(self.network.latency)
        fault = self._take_fault(h.command, path)
        if fault is not None:
            rec.fault = fault.describe()
            time.sleep(fault.delay)
        is_chunk = "upload_id" in query and re.match(r"\s*bytes\s+\d", content_range or "")
        limit = self._take_upload_drop() if is_chunk else None
        if limit is not None:
            rec.fault = f"drop_upload_after {limit}"
        length = h.content_length()
        if "/upload/" in path:
            body = self.network.read_paced(h.rfile, length, limit)
        else:
            body = h.rfile.read(length if limit is None else min(limit, length))
        rec.body_size = len(body)
        # Like Google, keep what arrived of a chunk whose connection broke.
        broken = limit is not None or len(body) < length
        if is_chunk and broken:
            self._keep_partial_chunk(query["upload_id"], content_range or "", body)
        if broken or (fault is not None and fault.drop and not fault.lose_response):
            h.reset_connection()
            return
        call = Call(h.command, path, query, h.headers, body)
        if fault is not None and fault.status is not None:
            resp = Response.json(fault.status, fault.error().body())
        else:
            resp = self._dispatch(call)
        if resp.status >= 400:
            with contextlib.suppress(ValueError, KeyError, IndexError, TypeError):
                rec.reason = json.loads(resp.body)["error"]["errors"][0]["reason"]
        if "/upload/" in path and resp.status in (200, 201):
            rec.title = call.result_title
        if fault is not None and fault.lose_response:
            rec.fault = f"lost response {resp.status}"
            h.reset_connection()
            return
        if fault is not None and fault.delay_response:
            self._stopping.wait(fault.delay_response)
        rec.status = resp.status
        h.respond(resp)

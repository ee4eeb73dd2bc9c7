"""HTTP for the fake: the server, routing, fault injection, the request log, client wiring.

Wire format (kagglesdk/kaggle_http_client.py): `POST {base}/v1/{service}/{Method}`, a
camelCase JSON body. The base is `https://api.kaggle.com` in the PROD environment and
`{endpoint}/api` in the LOCAL one; the fake answers `/v1/...`, `/api/v1/...` and
absolute-form targets (when it serves as an HTTP proxy). Errors are `{"code": N,
"message": ...}` with HTTP status N, which kagglesdk raises as `requests.HTTPError(message)`.
"""

from __future__ import annotations

import copy
import json
import re
import socket
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit

from .model import ApiError, Dropped, Fault, FileBody, Reply, RequestRecord, html_page, json_reply

_RPC_PATH = re.compile(r"(?:/api)?/v1/([\w.]+)/(\w+)")
# kaggle 2.2.5 kernels_logs_stream: GET {base}/v1/kernels/logs/stream/{owner}/{slug}
_LOG_STREAM = re.compile(r"(?:/api)?/v1/kernels/logs/stream/([^/]+)/([^/]+)")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # server_close() would otherwise join handler threads, so a hung request or a kept-alive
    # connection would block stop().
    block_on_close = False
    request_queue_size = 128  # the default 5 drops SYNs of parallel clients: 1 s stalls
    fake: Any

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hangs up (a live log read until its deadline, a timeout) is normal
        # traffic, not a fake's bug worth a traceback on stderr; anything else still is one.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # else every kept-alive response stalls ~40 ms
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server.fake._track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.fake._track(self.connection, add=False)

    def do_POST(self) -> None:
        self.server.fake._serve(self)

    do_GET = do_PUT = do_DELETE = do_POST

    def log_message(self, format: str, *args: Any) -> None:
        pass  # `fake.requests` is the log


class HttpPlumbing:
    """Lifecycle, routing and faults. State lives in FakeKaggle.__init__."""

    _lock: threading.RLock
    _cond: threading.Condition
    _faults: list[Fault]
    _log: list[RequestRecord]
    _connections: set[socket.socket]
    _release_gen: int
    _stopping: bool
    _server: _Server | None
    _thread: threading.Thread | None
    _users: dict[str, str]

    # ---- lifecycle -----------------------------------------------------------------------

    def start(self) -> Any:
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.fake = self
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="fake-kaggle", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving. Hung requests get their connection closed, without a response."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
            server, self._server = self._server, None
            connections = list(self._connections)
        self._stop_runtime()
        if server is None:
            return
        server.shutdown()
        for conn in connections:  # wakes handlers waiting on a kept-alive connection
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _stop_runtime(self) -> None:  # overridden by the kernel runtime
        pass

    def __enter__(self) -> Any:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("FakeKaggle is not running")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @contextmanager
    def patch_endpoint(self) -> Iterator[str]:
        """Point every kagglesdk client built in this process at the fake, then restore."""
        from kagglesdk.kaggle_env import KaggleEnv, _env_to_endpoint

        saved = dict(_env_to_endpoint)
        _env_to_endpoint[KaggleEnv.PROD] = _env_to_endpoint[KaggleEnv.LOCAL] = self.url
        try:
            yield self.url
        finally:
            _env_to_endpoint.update(saved)

    # ---- fault injection, request log ---------------------------------------------------

    def inject(
        self,
        status: int | None = None,
        count: int = 1,
        rpc: str | None = None,
        retry_after: float | str | None = None,
        delay: float | None = None,
        hang: bool = False,
        drop: bool | str = False,
        partial: int | None = None,
        message: str | None = None,
        html: bool = False,
        content_type: str | None = None,
    ) -> None:
        """Make the next `count` requests matching `rpc` (a method name such as
        "GetDatasetStatus", "upload", "download", "logs-stream"; None: any) misbehave, in
        this order: wait `delay` s; hang until `release()` or `stop()`; close the connection
        (`drop=True`), or answer `status` (with `Retry-After: retry_after`, seconds or an
        HTTP date). `drop="after"` processes the request, then closes the connection: the
        client never learns the outcome. `partial=N` stores the first N bytes of an upload's
        body before failing; on a download it sends the headers (full Content-Length) and
        the first N bytes, then closes the connection. `html=True` answers an HTML error
        page instead of JSON, as Google's front end does for 429/503: `text/html` by
        default (kagglesdk then raises `HTTPError("429 Client Error: ...")`), or
        `content_type="application/json"` for a mislabelled page (kagglesdk then fails in
        `response.json()`: "Expecting value: line 1 column 1 (char 0)", with no status code).
        """
        fault = Fault(
            count, rpc, status, retry_after, delay, hang, drop, partial, message, html, content_type
        )
        with self._lock:
            self._faults.append(fault)

    def release(self) -> None:
        """Let every currently hung request continue normally."""
        with self._cond:
            self._release_gen += 1
            self._cond.notify_all()

    @property
    def requests(self) -> list[RequestRecord]:
        with self._lock:
            return copy.deepcopy(self._log)

    def count(self, rpc: str | None = None) -> int:
        with self._lock:
            return sum(1 for r in self._log if rpc is None or r.rpc == rpc)

    def wait_for(self, rpc: str | None = None, count: int = 1, timeout: float = 5.0) -> bool:
        """Block until `count` matching requests have arrived (one that hangs, say)."""
        with self._cond:
            return self._cond.wait_for(lambda: self.count(rpc) >= count, timeout)

    def upload_bytes(self) -> int:
        with self._lock:
            return sum(r.bytes_in for r in self._log if r.rpc == "upload")

    def reset_log(self) -> None:
        with self._lock:
            self._log.clear()

    # ---- serving ---------------------------------------------------------------------------

    def _track(self, conn: socket.socket, add: bool) -> None:
        with self._lock:
            (self._connections.add if add else self._connections.discard)(conn)

    def _serve(self, h: _Handler) -> None:
        target = urlsplit(h.path)  # absolute-form when the fake serves as a proxy
        body = self._read_body(h)
        rpc, route = self._classify(h.command, target.path)
        record = RequestRecord(h.command, target.path, rpc, None, len(body))
        record.auth_scheme = (h.headers.get("Authorization") or "").partition(" ")[0] or None
        record.headers = {k: v for k, v in h.headers.items() if k in ("Range", "If-Range")}
        if rpc not in ("upload", "download", "logs-stream"):
            try:
                record.body = json.loads(body or b"{}")
            except ValueError:
                pass
        elif rpc == "logs-stream":
            record.body = {k: v[-1] for k, v in parse_qs(target.query).items()}
        with self._cond:
            self._log.append(record)
            self._cond.notify_all()
        fault = self._take_fault(rpc)
        reply: Reply | None
        try:
            if fault:
                self._apply_fault(fault, route, h.headers.get("Content-Range"), body)
            reply = self._route(rpc, route, h, body, record)
        except Dropped:
            reply = None
        except ApiError as e:
            reply = self._error_reply(e)
        except Exception as e:  # a bug in the fake: show it to the test instead of hanging
            reply = json_reply({"code": 500, "message": f"fake server error: {e!r}"}, 500)
        if reply is None or (fault and fault.drop == "after"):
            h.close_connection = True  # no response: the client never learns the outcome
            return
        with self._lock:
            record.status = reply[0]
        cut = fault.partial if fault and rpc == "download" else None
        self._send(h, reply, cut)

    def _route(
        self, rpc: str, route: list[str], h: _Handler, body: bytes, record: RequestRecord
    ) -> Reply:
        if rpc == "upload":
            return self._upload(route[0], h.headers.get("Content-Range"), body)
        if rpc == "download":
            return self._download(route, h.headers.get("Range"), h.headers.get("If-Range"))
        if rpc == "logs-stream":
            user = self._authenticate(h.headers.get("Authorization"))
            with self._lock:
                record.user = user
            return self._logs_stream(user, route[0], route[1], record.body or {})
        return self._call(rpc, h.headers.get("Authorization"), record)

    @staticmethod
    def _error_reply(e: ApiError) -> Reply:
        if e.html:
            headers = {"Content-Type": e.content_type or "text/html; charset=UTF-8", **e.headers}
            return e.status, html_page(e.status), headers
        status, data, headers = json_reply({"code": e.status, "message": e.message}, e.status)
        return status, data, {**headers, **e.headers}

    def _send(self, h: _Handler, reply: Reply, cut: int | None = None) -> None:
        status, data, headers = reply
        if cut is not None:  # a connection that breaks mid-body
            h.close_connection = True
        try:
            h.send_response(status)
            for name, value in headers.items():
                h.send_header(name, value)
            if isinstance(data, Iterator):  # a live stream, one HTTP chunk per event
                h.send_header("Transfer-Encoding", "chunked")
                h.end_headers()
                for chunk in data:
                    h.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    h.wfile.flush()
                h.wfile.write(b"0\r\n\r\n")
                return
            if isinstance(data, FileBody):
                h.send_header("Content-Length", str(data.length))
                h.end_headers()
                with open(data.path, "rb") as source:
                    source.seek(data.start)
                    left = data.length if cut is None else min(cut, data.length)
                    while left > 0 and (chunk := source.read(min(left, 1 << 20))):
                        h.wfile.write(chunk)
                        left -= len(chunk)
                return
            h.send_header("Content-Length", str(len(data)))
            h.end_headers()
            h.wfile.write(data if cut is None else data[:cut])
        except OSError:
            h.close_connection = True  # the client gave up (its own timeout)

    @staticmethod
    def _read_body(h: _Handler) -> bytes:
        if h.headers.get("Transfer-Encoding", "").lower() != "chunked":
            return h.rfile.read(int(h.headers.get("Content-Length") or 0))
        chunks = []
        while size := int(h.rfile.readline().split(b";")[0].strip() or b"0", 16):
            chunks.append(h.rfile.read(size))
            h.rfile.readline()
        while h.rfile.readline().strip():  # trailers
            pass
        return b"".join(chunks)

    @staticmethod
    def _classify(method: str, path: str) -> tuple[str, list[str]]:
        if method == "GET" and (m := _LOG_STREAM.fullmatch(path)):
            return "logs-stream", [unquote(m.group(1)), unquote(m.group(2))]
        if method == "POST" and (m := _RPC_PATH.fullmatch(path)):
            return m.group(2), [m.group(1)]
        parts = [unquote(p) for p in path.strip("/").split("/")]
        if method == "PUT" and parts[0] == "upload" and len(parts) == 2:
            return "upload", parts[1:]
        if method == "GET" and parts[0] == "dataset-files" and len(parts) > 3:
            return "download", parts
        if method == "GET" and parts[0] == "kernel-output" and len(parts) == 2:
            return "download", parts
        return "unknown", parts

    def _take_fault(self, rpc: str) -> Fault | None:
        with self._lock:
            fault = next((f for f in self._faults if f.rpc in (None, rpc)), None)
            if fault is not None:
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self._faults.remove(fault)
            return fault

    def _apply_fault(
        self, fault: Fault, route: list[str], content_range: str | None, body: bytes
    ) -> None:
        with self._cond:
            if fault.delay and self._cond.wait_for(lambda: self._stopping, fault.delay):
                raise Dropped
            if fault.hang:
                gen = self._release_gen
                self._cond.wait_for(lambda: self._stopping or self._release_gen != gen)
                if self._stopping:
                    raise Dropped
            if fault.partial and route and route[0] in self._blobs:
                self._write_blob(self._blobs[route[0]], content_range, body[: fault.partial])
        if fault.drop is True:
            raise Dropped
        if fault.status is not None:
            retry = {}
            if fault.retry_after is not None:
                value = fault.retry_after
                retry["Retry-After"] = value if isinstance(value, str) else f"{value:g}"
            message = fault.message or f"Injected HTTP {fault.status}"
            raise ApiError(fault.status, message, retry, fault.html, fault.content_type)

    def _call(self, rpc: str, auth: str | None, record: RequestRecord) -> Reply:
        handler = getattr(self, f"_rpc_{rpc}", None) if rpc != "unknown" else None
        if handler is None:
            raise ApiError(404, f"Not found: {record.method} {record.path}")
        user = self._authenticate(auth, rpc, record.body)
        with self._lock:
            record.user = user
            if not isinstance(record.body, dict):
                raise ApiError(400, "The request body must be a JSON object")
            result = handler(user, copy.deepcopy(record.body))
        return result if isinstance(result, tuple) else json_reply(result)

    if TYPE_CHECKING:  # provided by the other parts of the fake
        _blobs: dict[str, Any]

        def _authenticate(self, header: str | None, rpc: str = "", body: Any = None) -> str: ...
        def _upload(self, upload_id: str, content_range: str | None, body: bytes) -> Reply: ...
        def _download(
            self, parts: list[str], range_: str | None, if_range: str | None
        ) -> Reply: ...
        def _logs_stream(
            self, user: str, owner: str, slug: str, query: dict[str, str]
        ) -> Reply: ...
        @staticmethod
        def _write_blob(blob: Any, content_range: str | None, chunk: bytes) -> None: ...

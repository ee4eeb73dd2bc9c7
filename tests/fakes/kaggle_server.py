"""A stateful fake of the Kaggle API, served over real HTTP to the real `kaggle` client.

Written against kaggle 2.2.5 / kagglesdk 0.1.38 (pinned in pyproject.toml). It owns the
RPCs syncd uses: dataset status/create/version/get/list/download, blob uploads (GCS-style
resumable PUTs) and kernels save/status/output/get plus the GPU quota. The state is real:
datasets have versions with notes, a status and the unpacked bytes of every file; kernel
versions run QUEUED -> RUNNING -> COMPLETE/ERROR as they are polled.

Wire format (kagglesdk/kaggle_http_client.py): `POST {base}/v1/{service}/{Method}`, a
camelCase JSON body, Basic auth. The base is `https://api.kaggle.com` in the PROD
environment and `{endpoint}/api` in the LOCAL one; the fake answers `/v1/...`,
`/api/v1/...` and absolute-form targets (when it serves as an HTTP proxy). Errors are
`{"code": N, "message": ...}` with HTTP status N, which kagglesdk raises as
`requests.HTTPError(message)` with `.response.status_code == N`.

Pointing the real client at the fake:

* In-process: kagglesdk looks its endpoint up in `kagglesdk.kaggle_env._env_to_endpoint`
  whenever a client is built, so `with fake.patch_endpoint():` (PROD and LOCAL entries
  set to `fake.url`) is all it takes, whatever the import order. syncd's
  `kaggle.endpoint` setting does the same, so a daemon subprocess configured with
  `endpoint: <fake.url>` needs only `fake.client_env(home=..., via_proxy=False)`.
* Any other subprocess (the `kaggle` CLI, a script): `fake.client_env(home=...)` sets
  `KAGGLE_API_ENVIRONMENT=LOCALHOST` (read when `kaggle` is imported: calls then go to
  `http://localhost/api/v1/...`), `HTTP_PROXY=fake.url` to route those to the fake, and
  `NO_PROXY=127.0.0.1` so upload/download URLs (on 127.0.0.1, like a Drive fake) go
  direct. Do not add `localhost` to NO_PROXY in that mode.
* Isolate HOME and KAGGLE_CONFIG_DIR (a stale `~/.kaggle/access_token` is sent instead of
  the key) and TMPDIR / `tempfile.tempdir` (resumable-upload state lives for 6 days in
  `$TMPDIR/.kaggle-uploads-<uid>/`).

Behaviours the fake chooses where the real service is not documented:

* A new dataset version reports `blobs_received`, `blobs_decompressed`, ... for its first
  `processing_polls` GetDatasetStatus polls, then `ready` (`failed` if an archive cannot
  be unpacked, or after `set_dataset_outcome(ref, "failed")`). `currentVersionNumber`
  and unversioned listings/downloads use the newest *ready* version.
* CreateDatasetVersion while a version processes: HTTP 403 `STILL_PROCESSING_MESSAGE`
  (wording invented). kagglehub PR #182 reports the 403 while the *first* version
  processes; `version_lock = "first"` models exactly that, `"off"` never refuses.
* CreateDatasetVersion of a missing dataset: HTTP 200 `{"status": "Error", "error":
  MISSING_DATASET_ERROR}` (the text in kaggle-cli issue #373). Writing to another
  user's dataset or kernel: HTTP 403.
* Uploaded `.zip`/`.tar`/`.tar.gz`/`.tgz` blobs are unpacked: `sub.zip` holding `a.py`
  becomes `sub/a.py`. Blob tokens stay valid after use, because the client resends
  tokens from its resume state.
* A kernel version is QUEUED for `kernel_polls` status polls, RUNNING for as many more,
  then COMPLETE (ERROR after `set_kernel_failure`), with the outputs and log given to
  `set_kernel_outputs`. Output and download URLs need no auth, like signed URLs.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import io
import json
import os
import re
import secrets
import socket
import tarfile
import threading
import time
import zipfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote, unquote, urlsplit

STILL_PROCESSING_MESSAGE = (
    "The previous version of this dataset is still being processed. "
    "Please wait until it is ready before creating a new version."
)
MISSING_DATASET_ERROR = "Failed to resolve the necessary information from the request."
PROCESSING_STATES = ("blobs_received", "blobs_decompressed", "blobs_copied_to_sds")
_ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".zip", ".tar")
_RPC_PATH = re.compile(r"(?:/api)?/v1/([\w.]+)/(\w+)")
_Reply = tuple[int, bytes, dict[str, str]]  # status, body, headers


@dataclass
class DatasetVersion:
    number: int
    notes: str
    files: dict[str, bytes]  # unpacked path -> content
    status: str = PROCESSING_STATES[0]
    outcome: str = "ready"  # the status processing ends in
    delete_old_versions: bool = False  # done when this version becomes ready
    polls: int = 0
    created: float = field(default_factory=time.time)

    @property
    def md5s(self) -> dict[str, str]:
        return {path: hashlib.md5(data).hexdigest() for path, data in self.files.items()}


@dataclass
class Dataset:
    owner: str
    slug: str
    id: int
    title: str
    license_name: str = "CC0-1.0"
    is_private: bool = True
    subtitle: str | None = None
    versions: list[DatasetVersion] = field(default_factory=list)

    @property
    def ref(self) -> str:
        return f"{self.owner}/{self.slug}"

    @property
    def current(self) -> DatasetVersion | None:
        """The newest ready version: what readers see while a newer one processes."""
        return next((v for v in reversed(self.versions) if v.status == "ready"), None)


@dataclass
class KernelVersion:
    number: int
    source: str
    request: dict[str, Any]  # the SaveKernel body as sent: the kernel's metadata
    status: str = "queued"
    polls: int = 0
    failure_message: str = ""
    outputs: dict[str, bytes] = field(default_factory=dict)
    log: str = ""
    finished: float | None = None


@dataclass
class Kernel:
    owner: str
    slug: str
    id: int
    title: str
    versions: list[KernelVersion] = field(default_factory=list)

    @property
    def ref(self) -> str:
        return f"{self.owner}/{self.slug}"


@dataclass
class RequestRecord:
    method: str
    path: str
    rpc: str  # RPC method name, "upload", "download" or "unknown"
    body: Any  # the parsed JSON of RPCs
    bytes_in: int
    status: int | None = None  # None: dropped, hung until stop, or still in flight
    user: str | None = None  # set when the credentials were accepted
    auth_scheme: str | None = None  # "Basic", "Bearer" (an access token) or None


@dataclass
class _Fault:
    remaining: int
    rpc: str | None
    status: int | None
    retry_after: float | None
    delay: float | None
    hang: bool
    drop: bool | str
    partial: int | None
    message: str | None


@dataclass
class _Blob:
    token: str
    name: str
    size: int
    data: bytearray = field(default_factory=bytearray)


class _ApiError(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


class _Dropped(Exception):
    """Close the connection without a response."""


def _json(payload: Mapping[str, Any], status: int = 200) -> _Reply:
    return status, json.dumps(payload).encode(), {"Content-Type": "application/json"}


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).replace(tzinfo=None).isoformat("T", "milliseconds") + "Z"


def _page(items: list[Any], req: Mapping[str, Any]) -> tuple[list[Any], dict[str, str]]:
    start, size = int(req.get("pageToken") or 0), int(req.get("pageSize") or 20)
    more = {"nextPageToken": str(start + size)} if start + size < len(items) else {}
    return items[start : start + size], more


def _unpack(name: str, data: bytes) -> dict[str, bytes]:
    """What Kaggle shows for one uploaded blob: an archive becomes a folder named after it."""
    suffix = next((s for s in _ARCHIVE_SUFFIXES if name.lower().endswith(s)), None)
    if suffix is None:
        return {name: data}
    members: dict[str, bytes] = {}
    if suffix == ".zip":
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            for info in archive.infolist():
                if not info.is_dir():
                    members[info.filename] = archive.read(info)
    else:
        with tarfile.open(fileobj=io.BytesIO(data)) as archive:
            for member in archive.getmembers():
                if member.isfile() and (content := archive.extractfile(member)):
                    members[member.name] = content.read()
    out = {}
    for member_name, content in members.items():
        parts = PurePosixPath(member_name.replace("\\", "/")).parts
        parts = tuple(p for p in parts if p not in ("/", "."))
        if parts and ".." not in parts:  # never a path outside the dataset
            out["/".join([name[: -len(suffix)], *parts])] = content
    return out


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # server_close() would otherwise join handler threads, so a hung request or a kept-alive
    # connection would block stop().
    block_on_close = False
    request_queue_size = 128  # the default 5 drops SYNs of parallel clients: 1 s stalls
    fake: FakeKaggle


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


class FakeKaggle:
    """The fake service. Every public method is safe to call from any thread."""

    def __init__(self) -> None:
        self.processing_polls = 2
        self.kernel_polls = 1
        self.version_lock = "latest"  # "latest", "first" or "off"
        self.gpu_seconds_per_run = 600  # added to the quota by each finished GPU run
        self.gpu_quota_seconds = 30 * 3600
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)  # hang release, stop, wait_for
        self._users: dict[str, str] = {}
        self._datasets: dict[str, Dataset] = {}
        self._kernels: dict[str, Kernel] = {}
        self._blobs: dict[str, _Blob] = {}  # by token and by upload id
        self._kernel_results: dict[str, tuple[dict[str, bytes], str, str | None]] = {}
        self._dataset_outcomes: dict[str, str] = {}
        self._faults: list[_Fault] = []
        self._log: list[RequestRecord] = []
        self._connections: set[socket.socket] = set()
        self._release_gen = 0
        self._stopping = False
        self._next_id = 1000
        self._gpu_seconds_used = 0
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # ---- lifecycle and client wiring ---------------------------------------------------

    def start(self) -> FakeKaggle:
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

    def __enter__(self) -> FakeKaggle:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("FakeKaggle is not running")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def add_user(self, username: str, key: str) -> None:
        with self._lock:
            self._users[username] = key

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

    def client_env(
        self,
        home: Path | None = None,
        user: str | None = None,
        via_proxy: bool = True,
        base: Mapping[str, str] | None = None,
    ) -> dict[str, str]:
        """A complete environment for a subprocess running the real client: `base` (default
        os.environ) without KAGGLE_* and proxy variables, plus credentials, HOME and TMPDIR
        under `home`, and the proxy settings described in the module docstring."""
        with self._lock:
            user = user or next(iter(self._users))
            key = self._users[user]
        proxies = {"http_proxy", "https_proxy", "all_proxy", "no_proxy"}
        env = {
            name: value
            for name, value in (os.environ if base is None else base).items()
            if not name.startswith("KAGGLE_") and name.lower() not in proxies
        }
        env.update(KAGGLE_USERNAME=user, KAGGLE_KEY=key)
        if home is not None:
            (home / "tmp").mkdir(parents=True, exist_ok=True)
            env.update(HOME=str(home), KAGGLE_CONFIG_DIR=str(home / ".kaggle"))
            env["TMPDIR"] = str(home / "tmp")
        direct = "127.0.0.1" if via_proxy else "127.0.0.1,localhost"
        env.update(NO_PROXY=direct, no_proxy=direct)
        if via_proxy:
            env.update(KAGGLE_API_ENVIRONMENT="LOCALHOST", HTTP_PROXY=self.url, http_proxy=self.url)
        return env

    # ---- fault injection, request log, inspection ---------------------------------------

    def inject(
        self,
        status: int | None = None,
        count: int = 1,
        rpc: str | None = None,
        retry_after: float | None = None,
        delay: float | None = None,
        hang: bool = False,
        drop: bool | str = False,
        partial: int | None = None,
        message: str | None = None,
    ) -> None:
        """Make the next `count` requests matching `rpc` (a method name such as
        "GetDatasetStatus", "upload", "download"; None: any) misbehave, in this order:
        wait `delay` s; hang until `release()` or `stop()`; close the connection
        (`drop=True`), or answer `status` (with `Retry-After: retry_after`). `drop="after"`
        processes the request, then closes the connection: the client never learns the
        outcome. `partial=N` (uploads) stores the first N bytes of the body before failing.
        """
        fault = _Fault(count, rpc, status, retry_after, delay, hang, drop, partial, message)
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

    def dataset(self, ref: str) -> Dataset:
        with self._lock:
            return copy.deepcopy(self._datasets[ref])

    def kernel(self, ref: str) -> Kernel:
        with self._lock:
            return copy.deepcopy(self._kernels[ref])

    def seed_dataset(self, ref: str, files: Mapping[str, bytes], notes: str = "") -> None:
        """Create a dataset with one ready version, as if it had been uploaded earlier."""
        owner, slug = ref.split("/")
        with self._lock:
            ds = Dataset(owner, slug, self._new_id(), title=slug)
            ds.versions.append(DatasetVersion(1, notes, dict(files), status="ready"))
            self._datasets[ref] = ds

    def finish_processing(self, ref: str) -> None:
        with self._lock:
            ds = self._datasets[ref]
            for version in ds.versions:
                if version.status in PROCESSING_STATES:
                    self._settle(ds, version)

    def set_dataset_outcome(self, ref: str, outcome: str) -> None:
        """Versions created from now on end processing as `outcome` ("ready"/"failed")."""
        with self._lock:
            self._dataset_outcomes[ref] = outcome

    def set_kernel_outputs(self, ref: str, files: Mapping[str, bytes], log: str = "") -> None:
        with self._lock:
            _, _, failure = self._kernel_results.get(ref, ({}, "", None))
            self._kernel_results[ref] = (dict(files), log, failure)

    def set_kernel_failure(self, ref: str, message: str | None) -> None:
        """Runs of `ref` that finish from now on end in ERROR with `message` (None: succeed)."""
        with self._lock:
            files, log, _ = self._kernel_results.get(ref, ({}, "", None))
            self._kernel_results[ref] = (files, log, message)

    # ---- HTTP plumbing --------------------------------------------------------------------

    def _track(self, conn: socket.socket, add: bool) -> None:
        with self._lock:
            (self._connections.add if add else self._connections.discard)(conn)

    def _serve(self, h: _Handler) -> None:
        path = urlsplit(h.path).path  # absolute-form when the fake serves as a proxy
        body = self._read_body(h)
        rpc, route = self._classify(h.command, path)
        record = RequestRecord(h.command, path, rpc, None, len(body))
        record.auth_scheme = (h.headers.get("Authorization") or "").partition(" ")[0] or None
        if rpc not in ("upload", "download"):
            try:
                record.body = json.loads(body or b"{}")
            except ValueError:
                pass
        with self._cond:
            self._log.append(record)
            self._cond.notify_all()
        fault = self._take_fault(rpc)
        try:
            if fault:
                self._apply_fault(fault, route, h.headers.get("Content-Range"), body)
            if rpc == "upload":
                reply = self._upload(route[0], h.headers.get("Content-Range"), body)
            elif rpc == "download":
                reply = self._download(route)
            else:
                reply = self._call(rpc, h.headers.get("Authorization"), record)
        except _Dropped:
            reply = None
        except _ApiError as e:
            status, data, headers = _json({"code": e.status, "message": e.message}, e.status)
            reply = (status, data, {**headers, **e.headers})
        except Exception as e:  # a bug in the fake: show it to the test instead of hanging
            reply = _json({"code": 500, "message": f"fake server error: {e!r}"}, 500)
        if reply is None or (fault and fault.drop == "after"):
            h.close_connection = True  # no response: the client never learns the outcome
            return
        status, data, headers = reply
        with self._lock:
            record.status = status
        try:
            h.send_response(status)
            for name, value in headers.items():
                h.send_header(name, value)
            h.send_header("Content-Length", str(len(data)))
            h.end_headers()
            h.wfile.write(data)
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
        if method == "POST" and (m := _RPC_PATH.fullmatch(path)):
            return m.group(2), [m.group(1)]
        parts = [unquote(p) for p in path.strip("/").split("/")]
        if method == "PUT" and parts[0] == "upload" and len(parts) == 2:
            return "upload", parts[1:]
        if method == "GET" and parts[0] in ("dataset-files", "kernel-output") and len(parts) > 3:
            return "download", parts
        return "unknown", parts

    def _take_fault(self, rpc: str) -> _Fault | None:
        with self._lock:
            fault = next((f for f in self._faults if f.rpc in (None, rpc)), None)
            if fault is not None:
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self._faults.remove(fault)
            return fault

    def _apply_fault(
        self, fault: _Fault, route: list[str], content_range: str | None, body: bytes
    ) -> None:
        with self._cond:
            if fault.delay and self._cond.wait_for(lambda: self._stopping, fault.delay):
                raise _Dropped
            if fault.hang:
                gen = self._release_gen
                self._cond.wait_for(lambda: self._stopping or self._release_gen != gen)
                if self._stopping:
                    raise _Dropped
            if fault.partial and route[0] in self._blobs:
                self._write_blob(self._blobs[route[0]], content_range, body[: fault.partial])
        if fault.drop is True:
            raise _Dropped
        if fault.status is not None:
            retry = {} if fault.retry_after is None else {"Retry-After": f"{fault.retry_after:g}"}
            raise _ApiError(fault.status, fault.message or f"Injected HTTP {fault.status}", retry)

    def _call(self, rpc: str, auth: str | None, record: RequestRecord) -> _Reply:
        handler = getattr(self, f"_rpc_{rpc}", None) if rpc != "unknown" else None
        if handler is None:
            raise _ApiError(404, f"Not found: {record.method} {record.path}")
        user = self._authenticate(auth)
        with self._lock:
            record.user = user
            if not isinstance(record.body, dict):
                raise _ApiError(400, "The request body must be a JSON object")
            result = handler(user, copy.deepcopy(record.body))
        return result if isinstance(result, tuple) else _json(result)

    def _authenticate(self, header: str | None) -> str:
        if header and header.startswith("Basic "):
            try:
                user, _, key = base64.b64decode(header[6:]).decode().partition(":")
            except ValueError:
                user, key = "", ""
            with self._lock:
                if user in self._users and self._users[user] == key:
                    return user
        raise _ApiError(401, "Unauthenticated: the username or API key is not valid")

    def _new_id(self) -> int:
        self._next_id += 1
        return self._next_id

    # ---- datasets (handlers run with the lock held) ---------------------------------------

    def _find_dataset(self, user: str, req: Mapping[str, Any], write: bool = False) -> Dataset:
        ref = f"{req.get('ownerSlug', '')}/{req.get('datasetSlug', '')}"
        ds = self._datasets.get(ref)
        if ds is None or (ds.is_private and ds.owner != user and not write):
            raise _ApiError(404, f"Dataset {ref} not found")
        if write and ds.owner != user:
            raise _ApiError(403, f"Permission 'datasets.update' was denied for {ref}")
        return ds

    def _pick_version(self, ds: Dataset, number: int | None) -> DatasetVersion:
        if number is None and ds.current is not None:
            return ds.current
        if number is None or not 1 <= number <= len(ds.versions):
            raise _ApiError(404, f"Dataset {ds.ref} has no version {number or 'ready'}")
        return ds.versions[number - 1]

    def _rpc_GetDatasetStatus(self, user: str, req: dict[str, Any]) -> dict[str, Any]:
        ds = self._find_dataset(user, req)
        for version in ds.versions:  # each poll moves processing on
            if version.status in PROCESSING_STATES:
                version.polls += 1
                if version.polls > self.processing_polls:
                    self._settle(ds, version)
                else:
                    step = min(version.polls, len(PROCESSING_STATES)) - 1
                    version.status = PROCESSING_STATES[step]
        return {"status": ds.versions[-1].status.upper()}

    @staticmethod
    def _settle(ds: Dataset, version: DatasetVersion) -> None:
        version.status = version.outcome
        if version.status == "ready" and version.delete_old_versions:
            for older in ds.versions[: version.number - 1]:
                older.status = "deleted"

    def _rpc_GetDataset(self, user: str, req: dict[str, Any]) -> dict[str, Any]:
        ds = self._find_dataset(user, req)
        out: dict[str, Any] = {"id": ds.id, "ref": ds.ref, "title": ds.title, "ownerRef": ds.owner}
        out.update(url=f"{self.url}/datasets/{ds.ref}", isPrivate=ds.is_private)
        out.update(licenseName=ds.license_name, subtitle=ds.subtitle or "")
        if current := ds.current:
            out["currentVersionNumber"] = current.number
            out["totalBytes"] = sum(len(b) for b in current.files.values())
            out["lastUpdated"] = _iso(current.created)
        return out

    def _rpc_ListDatasetFiles(self, user: str, req: dict[str, Any]) -> dict[str, Any]:
        ds = self._find_dataset(user, req)
        if ds.current is None and req.get("datasetVersionNumber") is None:
            return {"datasetFiles": []}
        version = self._pick_version(ds, req.get("datasetVersionNumber"))
        page, more = _page(sorted(version.files), req)
        base = f"{self.url}/dataset-files/{ds.ref}/{version.number}"
        created = _iso(version.created)
        files = [
            {"ref": p, "name": p, "totalBytes": len(version.files[p]), "creationDate": created}
            | {"url": f"{base}/{quote(p)}"}
            for p in page
        ]
        return {"datasetFiles": files, **more}

    def _rpc_DownloadDataset(self, user: str, req: dict[str, Any]) -> _Reply:
        # As on Kaggle, a redirect to a URL that needs no auth (requests follows it).
        ds = self._find_dataset(user, req)
        version = self._pick_version(ds, req.get("datasetVersionNumber"))
        name = req.get("fileName") or ""
        if name and name not in version.files:
            raise _ApiError(404, f"File {name} not found in {ds.ref}")
        location = f"{self.url}/dataset-files/{ds.ref}/{version.number}/{quote(name)}"
        return 302, b"", {"Location": location}

    def _add_version(self, ds: Dataset, notes: str, new_files: list[dict[str, Any]]) -> None:
        files: dict[str, bytes] = {}
        outcome = self._dataset_outcomes.get(ds.ref, "ready")
        for item in new_files:
            blob = self._blobs.get(item.get("token", ""))
            if blob is None or len(blob.data) != blob.size:
                raise _ApiError(400, f"Invalid or incomplete upload token: {item.get('token')}")
            try:
                files.update(_unpack(blob.name, bytes(blob.data)))
            except (zipfile.BadZipFile, tarfile.TarError):
                outcome = "failed"  # accepted now; processing fails later
        ds.versions.append(DatasetVersion(len(ds.versions) + 1, notes, files, outcome=outcome))

    def _rpc_CreateDataset(self, user: str, req: dict[str, Any]) -> dict[str, Any]:
        owner, slug = req.get("ownerSlug") or user, req.get("slug") or ""
        ref = f"{owner}/{slug}"
        if owner != user:
            raise _ApiError(403, f"Permission denied: cannot create datasets for {owner}")
        if ref in self._datasets:
            return {"status": "Error", "error": f'The requested slug "{slug}" is already in use.'}
        ds = Dataset(owner, slug, self._new_id(), req.get("title") or slug)
        ds.license_name = req.get("licenseName") or "unknown"
        ds.is_private, ds.subtitle = bool(req.get("isPrivate")), req.get("subtitle")
        self._add_version(ds, "Initial release", req.get("files", []))
        self._datasets[ref] = ds
        return {"ref": ref, "url": f"{self.url}/datasets/{ref}", "status": "Ok"}

    def _rpc_CreateDatasetVersion(self, user: str, req: dict[str, Any]) -> dict[str, Any]:
        if "id" in req:  # CreateDatasetVersionById
            ds = next((d for d in self._datasets.values() if d.id == req["id"]), None)
        else:
            ds = self._datasets.get(f"{req.get('ownerSlug')}/{req.get('datasetSlug')}")
        if ds is None:
            return {"status": "Error", "error": MISSING_DATASET_ERROR}
        self._find_dataset(user, {"ownerSlug": ds.owner, "datasetSlug": ds.slug}, write=True)
        processing = [v.number for v in ds.versions if v.status in PROCESSING_STATES]
        if processing and (
            self.version_lock == "latest" or (self.version_lock == "first" and 1 in processing)
        ):
            raise _ApiError(403, STILL_PROCESSING_MESSAGE)
        body = req.get("body") or {}
        self._add_version(ds, body.get("versionNotes", ""), body.get("files", []))
        ds.versions[-1].delete_old_versions = bool(body.get("deleteOldVersions"))
        return {"ref": ds.ref, "url": f"{self.url}/datasets/{ds.ref}", "status": "Ok"}

    _rpc_CreateDatasetVersionById = _rpc_CreateDatasetVersion

    # ---- blobs ------------------------------------------------------------------------------

    def _rpc_StartBlobUpload(self, user: str, req: dict[str, Any]) -> dict[str, Any]:
        if not req.get("name"):
            raise _ApiError(400, "A blob name is required")
        blob = _Blob(secrets.token_urlsafe(24), req["name"], int(req.get("contentLength", 0)))
        upload_id = secrets.token_hex(16)
        self._blobs[blob.token] = self._blobs[upload_id] = blob
        return {"token": blob.token, "createUrl": f"{self.url}/upload/{upload_id}"}

    @staticmethod
    def _write_blob(blob: _Blob, content_range: str | None, chunk: bytes) -> None:
        """Store a PUT body at the offset its Content-Range names (GCS resumable semantics)."""
        start = 0
        if content_range and (m := re.fullmatch(r"bytes (\d+)-\d+/(\d+|\*)", content_range)):
            start = int(m.group(1))
        if start > len(blob.data):
            raise _ApiError(400, f"Upload resumed at {start} but only {len(blob.data)} received")
        if len(chunk) > blob.size - start:
            raise _ApiError(400, "More bytes than the declared content length")
        del blob.data[start:]
        blob.data += chunk

    def _upload(self, upload_id: str, content_range: str | None, body: bytes) -> _Reply:
        with self._lock:
            blob = self._blobs.get(upload_id)
            if blob is None:  # the client takes 404 as "session expired, start again"
                raise _ApiError(404, "No such upload session")
            if not (content_range or "").startswith("bytes */"):  # else a status query
                self._write_blob(blob, content_range, body)
            if len(blob.data) == blob.size:
                return _json({"name": blob.name, "size": str(blob.size)})
            received = len(blob.data)
        # A 308 without Location, which requests does not follow as a redirect.
        return 308, b"", {"Range": f"bytes=0-{received - 1}"} if received else {}

    def _download(self, parts: list[str]) -> _Reply:
        kind, ref, number, name = parts[0], f"{parts[1]}/{parts[2]}", parts[3], "/".join(parts[4:])
        files: dict[str, bytes] = {}
        stamp: float | None = None
        with self._lock:
            try:
                if not number.isdigit() or int(number) < 1:
                    raise KeyError(number)
                index = int(number) - 1
                if kind == "dataset-files":
                    version = self._datasets[ref].versions[index]
                    files, stamp = dict(version.files), version.created
                else:
                    run = self._kernels[ref].versions[index]
                    files, stamp = dict(run.outputs), run.finished
            except (KeyError, IndexError):
                pass
        if name in files:
            data, content_type = files[name], "application/octet-stream"
        elif not name and files and kind == "dataset-files":
            buffer = io.BytesIO()
            with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
                for path, content in sorted(files.items()):
                    archive.writestr(path, content)
            data, content_type = buffer.getvalue(), "application/zip"
        else:
            raise _ApiError(404, "No such file")
        modified = formatdate(stamp, usegmt=True)  # the client compares it with local mtimes
        return 200, data, {"Content-Type": content_type, "Last-Modified": modified}

    # ---- kernels ----------------------------------------------------------------------------

    def _find_kernel(self, user: str, req: Mapping[str, Any]) -> tuple[Kernel, KernelVersion]:
        ref = f"{req.get('userName', '')}/{req.get('kernelSlug', '')}"
        kernel = self._kernels.get(ref)
        if kernel is None or (
            kernel.versions[-1].request.get("isPrivate", True) and kernel.owner != user
        ):
            raise _ApiError(404, f"Notebook {ref} not found")
        label = str(req.get("versionLabel") or f"v{len(kernel.versions)}").removeprefix("v")
        if not label.isdigit() or not 1 <= int(label) <= len(kernel.versions):
            raise _ApiError(404, f"Version {req.get('versionLabel')} of {ref} not found")
        return kernel, kernel.versions[int(label) - 1]

    def _rpc_SaveKernel(self, user: str, req: dict[str, Any]) -> dict[str, Any]:
        if "id" in req:
            kernel = next((k for k in self._kernels.values() if k.id == req["id"]), None)
            if kernel is None:
                raise _ApiError(404, f"Notebook id {req['id']} not found")
            owner, slug = kernel.owner, kernel.slug
        else:
            owner, _, slug = (req.get("slug") or "").rpartition("/")
            owner = owner or user
            kernel = self._kernels.get(f"{owner}/{slug}")
        if owner != user:
            raise _ApiError(403, f"Permission 'kernels.update' was denied for {owner}/{slug}")
        if not req.get("text"):
            return {"error": "The notebook source is empty."}
        if kernel is None:
            if not req.get("newTitle"):
                return {"error": "A title is required to create a new notebook."}
            kernel = self._kernels[f"{owner}/{slug}"] = Kernel(
                owner, slug, self._new_id(), req["newTitle"]
            )
        invalid = [
            s
            for s in req.get("datasetDataSources", [])
            if s not in self._datasets
            or (self._datasets[s].is_private and self._datasets[s].owner != user)
        ]
        version = KernelVersion(len(kernel.versions) + 1, req["text"], dict(req))
        kernel.versions.append(version)
        if req.get("kernelExecutionType") == "QUICK_SAVE":  # saved, never run
            version.status, version.finished = "complete", time.time()
        return {
            "ref": kernel.ref,
            "url": f"{self.url}/code/{kernel.ref}",
            "versionNumber": version.number,
            "invalidDatasetSources": invalid,
            "kernelId": kernel.id,
        }

    def _rpc_GetKernelSessionStatus(self, user: str, req: dict[str, Any]) -> dict[str, Any]:
        kernel, version = self._find_kernel(user, req)
        if version.status in ("queued", "running"):
            version.polls += 1
            if version.polls > 2 * self.kernel_polls:
                files, log, failure = self._kernel_results.get(kernel.ref, ({}, "", None))
                version.status = "error" if failure else "complete"
                version.failure_message, version.outputs, version.log = failure or "", files, log
                version.finished = time.time()
                if version.request.get("enableGpu"):
                    self._gpu_seconds_used += self.gpu_seconds_per_run
            elif version.polls > self.kernel_polls:
                version.status = "running"
        out = {"status": version.status.upper()}
        if version.failure_message:
            out["failureMessage"] = version.failure_message
        return out

    def _rpc_ListKernelSessionOutput(self, user: str, req: dict[str, Any]) -> dict[str, Any]:
        kernel, version = self._find_kernel(user, req)
        page, more = _page(sorted(version.outputs), req)
        base = f"{self.url}/kernel-output/{kernel.ref}/{version.number}"
        out: dict[str, Any] = {
            "files": [{"fileName": n, "url": f"{base}/{quote(n)}"} for n in page]
        }
        if version.log and not req.get("pageToken"):
            out["log"] = version.log
        return {**out, **more}

    def _rpc_GetKernel(self, user: str, req: dict[str, Any]) -> dict[str, Any]:
        kernel, version = self._find_kernel(user, req)
        meta = {k: v for k, v in version.request.items() if k not in ("text", "slug", "newTitle")}
        meta.update(id=kernel.id, ref=kernel.ref, title=kernel.title, author=kernel.owner)
        meta.update(slug=kernel.slug, currentVersionNumber=len(kernel.versions))
        blob = {"source": version.source, "slug": kernel.slug}
        blob.update({k: meta[k] for k in ("language", "kernelType") if k in meta})
        return {"metadata": meta, "blob": blob}

    def _rpc_GetAcceleratorQuotaStatistics(self, user: str, req: dict[str, Any]) -> dict[str, Any]:
        gpu = {
            "timeUsed": f"{self._gpu_seconds_used}s",
            "totalTimeAllowed": f"{self.gpu_quota_seconds}s",
        }
        return {"quotaRefreshTime": _iso(time.time() + 7 * 86400), "gpuQuota": gpu}

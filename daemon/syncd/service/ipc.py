"""The daemon's private control socket: newline-delimited JSON over a Unix socket.

One request per line, ``{"cmd": "status", "project": null, ...}``, one reply
per line, ``{"ok": true, "result": ...}`` or ``{"ok": false, "error": "..."}``.
The socket lives in the user's runtime dir (``$XDG_RUNTIME_DIR/syncd/``, the
same rules under a systemd user unit), in a folder only the owner can enter,
and is itself owner-only.  A malformed or oversized request gets an error
reply; it never takes the server down.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import socket
import stat
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import SyncdError

log = logging.getLogger("syncd.ipc")

MAX_REQUEST = 64 * 1024
CLIENT_TIMEOUT = 30.0


class DaemonNotRunning(SyncdError):
    title = "daemon not running"


def runtime_dir() -> Path:
    """``$XDG_RUNTIME_DIR/syncd``, else ``/run/user/UID/syncd``, else a private folder in /tmp."""
    uid = os.getuid()
    for base in (os.environ.get("XDG_RUNTIME_DIR"), f"/run/user/{uid}"):
        if base and os.path.isdir(base) and os.stat(base).st_uid == uid:
            return Path(base) / "syncd"
    return Path(tempfile.gettempdir()) / f"syncd-{uid}"


def socket_path(config_path: Path) -> Path:
    # Short on purpose: a Unix socket path must fit in 108 bytes.
    digest = hashlib.sha1(str(config_path.resolve()).encode()).hexdigest()[:12]
    return runtime_dir() / f"{digest}.sock"


def _private_dir(path: Path) -> None:
    """Create ``path`` 0700, or refuse one that someone else owns or others can enter."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    st = path.lstat()
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid():
        raise SyncdError(f"{path} is not a folder owned by you", "remove it and start again")
    if stat.S_IMODE(st.st_mode) != 0o700:
        path.chmod(0o700)


Handler = Callable[[dict[str, Any]], Any]


class Server:
    """Serves requests on the socket in background threads until ``close()``."""

    def __init__(self, path: Path, handle: Handler) -> None:
        self.path = path
        self.handle = handle
        _private_dir(path.parent)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()  # a stale socket from a killed daemon (the lock says we're alone)
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)
        try:
            self._sock.bind(str(path))
        finally:
            os.umask(old)
        path.chmod(0o600)
        self._sock.listen(16)
        self._thread = threading.Thread(target=self._serve, name="ipc", daemon=True)
        self._closed = False

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._closed = True
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        self._sock.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    def _serve(self) -> None:
        while not self._closed:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                if self._closed:
                    return
                continue
            threading.Thread(target=self._client, args=(conn,), daemon=True).start()

    def _client(self, conn: socket.socket) -> None:
        conn.settimeout(CLIENT_TIMEOUT)
        with conn:
            try:
                line = _read_line(conn)
                reply = self._dispatch(line)
            except TimeoutError:
                return
            except RequestTooLarge:
                reply = {"ok": False, "error": f"request larger than {MAX_REQUEST} bytes"}
            except OSError:
                return
            with contextlib.suppress(OSError):
                conn.sendall(json.dumps(reply).encode() + b"\n")

    def _dispatch(self, line: bytes) -> dict[str, Any]:
        try:
            request = json.loads(line)
        except (ValueError, UnicodeDecodeError):
            return {"ok": False, "error": "request is not valid JSON"}
        if not isinstance(request, dict) or not isinstance(request.get("cmd"), str):
            return {"ok": False, "error": 'request must be an object with a "cmd" string'}
        try:
            return {"ok": True, "result": self.handle(request)}
        except SyncdError as exc:
            return {"ok": False, "error": str(exc)}
        except Exception as exc:  # one bad request must not stop the server
            log.exception("control request %r failed", request.get("cmd"))
            return {"ok": False, "error": f"internal error: {exc}"}


class RequestTooLarge(Exception):
    pass


def _read_line(conn: socket.socket) -> bytes:
    buf = bytearray()
    while b"\n" not in buf:
        chunk = conn.recv(65536)
        if not chunk:
            break
        buf += chunk
        if len(buf) > MAX_REQUEST:
            raise RequestTooLarge
    return bytes(buf.split(b"\n", 1)[0])


def request(path: Path, cmd: str, timeout: float = CLIENT_TIMEOUT, **fields: Any) -> Any:
    """Send one request; raise DaemonNotRunning if nobody listens, SyncdError on an error reply."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        try:
            sock.connect(str(path))
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            raise DaemonNotRunning("syncd is not running", "start it with `syncd run`") from exc
        sock.sendall(json.dumps({"cmd": cmd, **fields}).encode() + b"\n")
        data = bytearray()
        while not data.endswith(b"\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    finally:
        sock.close()
    if not data:
        raise SyncdError("the daemon closed the connection without answering")
    reply = json.loads(data)
    if not reply.get("ok"):
        raise SyncdError(reply.get("error") or "the daemon refused the request")
    return reply.get("result")

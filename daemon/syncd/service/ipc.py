"""The daemon's private control socket: newline-delimited JSON over a Unix socket.

One request per line, ``{"cmd": "status", "project": null, "deadline": 1764630000.5}``,
one reply per line, ``{"ok": true, "result": ...}`` or
``{"ok": false, "error": "...", "exit_code": 2}``.  ``deadline`` (optional; seconds
since the epoch) is when the client gives up waiting: a request read after it
(a daemon that was stopped or stuck meanwhile) is dropped, never carried out, so
a ``pause`` or ``stop`` the user was told had failed does not happen later.
Which commands exist and what they take is ``protocol``'s table.

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
import math
import os
import socket
import stat
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import SyncdError

log = logging.getLogger("syncd.ipc")

MAX_REQUEST = 64 * 1024
CLIENT_TIMEOUT = 30.0  # how long the server waits for a request line
# A request is started only if this much of its deadline is left, so that a quick command
# finishes (and its answer arrives) before the client gives up and reports a failure.
START_MARGIN_S = 0.25


class DaemonNotRunning(SyncdError):
    title = "daemon not running"
    exit_code = 3


class DaemonNotAnswering(SyncdError):
    """The socket accepted the request but no answer came before the deadline."""

    title = "daemon not answering"


class DaemonRefused(SyncdError):
    """The daemon answered with an error; ``exit_code`` is the one it chose."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code if exit_code in (1, 2, 3) else 1


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
        self._sock.listen(128)  # clients beyond it wait in `request` until there is room
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
        """Answer each request line of one connection (usually one), until the client hangs up."""
        conn.settimeout(CLIENT_TIMEOUT)
        reader = _LineReader(conn)
        with conn:
            while not self._closed:
                try:
                    line = reader.next_line()
                    if line is None:
                        return  # the client hung up after its last request
                    reply = self._dispatch(line)
                except RequestTooLarge:
                    reply = _refusal(f"request larger than {MAX_REQUEST} bytes", 2)
                    reader.closed = True  # the rest of that line is not worth reading
                except OSError:  # includes the timeout of an idle client
                    return
                if not self._send(conn, reply) or reader.closed:
                    return

    @staticmethod
    def _send(conn: socket.socket, reply: dict[str, Any]) -> bool:
        try:
            data = json.dumps(reply).encode()
        except (TypeError, ValueError) as exc:  # a result that is not plain data: our bug
            log.error("cannot send the answer to a control request: %s", exc)
            data = json.dumps(_refusal(f"internal error: {exc}")).encode()
        try:
            conn.sendall(data + b"\n")
        except OSError:
            return False
        return True

    def _dispatch(self, line: bytes) -> dict[str, Any]:
        try:
            request = json.loads(line)
        except (ValueError, UnicodeDecodeError, RecursionError):
            return _refusal("request is not valid JSON", 2)
        if not isinstance(request, dict) or not isinstance(request.get("cmd"), str):
            return _refusal('request must be an object with a "cmd" string', 2)
        deadline = request.get("deadline")
        if deadline is not None:
            if isinstance(deadline, bool) or not isinstance(deadline, int | float):
                return _refusal('"deadline" must be a number (seconds since the epoch)', 2)
            try:
                late = time.time() - (float(deadline) - START_MARGIN_S)
            except OverflowError:  # an integer too large for a float
                late = math.inf
            if not math.isfinite(late) or late > 0:
                log.warning(
                    "dropped a %r request that arrived after its sender gave up",
                    request["cmd"][:40],
                )
                return _refusal("the request arrived after its deadline and was dropped")
        try:
            return {"ok": True, "result": self.handle(request)}
        except SyncdError as exc:
            return _refusal(str(exc), exc.exit_code)
        except Exception as exc:  # one bad request must not stop the server
            log.exception("control request %r failed", request.get("cmd"))
            return _refusal(f"internal error: {exc}")


def _refusal(message: str, exit_code: int = 1) -> dict[str, Any]:
    return {"ok": False, "error": message, "exit_code": exit_code}


class RequestTooLarge(Exception):
    pass


class _LineReader:
    """The request lines of one connection; a last line without its newline counts at EOF."""

    def __init__(self, conn: socket.socket) -> None:
        self.conn = conn
        self.buf = bytearray()
        self.closed = False  # the client half-closed (or the rest is being ignored)

    def next_line(self) -> bytes | None:
        while b"\n" not in self.buf:
            if self.closed:
                if not self.buf:
                    return None
                line, self.buf = bytes(self.buf), bytearray()
                return line
            chunk = self.conn.recv(65536)
            if not chunk:
                self.closed = True
                continue
            self.buf += chunk
            if len(self.buf) > MAX_REQUEST and b"\n" not in self.buf[:MAX_REQUEST]:
                raise RequestTooLarge
        line, _, rest = bytes(self.buf).partition(b"\n")
        if len(line) > MAX_REQUEST:
            raise RequestTooLarge
        self.buf = bytearray(rest)
        return line


def request(path: Path, cmd: str, timeout: float = CLIENT_TIMEOUT, **fields: Any) -> Any:
    """Send one request with its deadline and return the result.

    Raises ``DaemonNotRunning`` if nobody listens, ``DaemonNotAnswering`` if no answer
    came within ``timeout`` (the daemon then drops the request), ``DaemonRefused`` on an
    error reply and ``SyncdError`` if the connection broke.
    """
    deadline = time.time() + timeout
    line = json.dumps({"cmd": cmd, **fields, "deadline": deadline}).encode() + b"\n"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        _connect(sock, path, deadline)
        sock.sendall(line)
        data = bytearray()
        while not data.endswith(b"\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    except TimeoutError as exc:
        raise DaemonNotAnswering(f"syncd did not answer {cmd!r} within {timeout:g} s") from exc
    except OSError as exc:
        raise SyncdError(
            f"the connection to syncd broke during {cmd!r}: {exc.strerror or exc}"
        ) from exc
    finally:
        sock.close()
    if not data:
        raise SyncdError("the daemon closed the connection without answering")
    try:
        reply = json.loads(data)
    except ValueError:
        raise SyncdError("the daemon's answer is not valid JSON") from None
    if not isinstance(reply, dict):
        raise SyncdError("the daemon's answer is not a JSON object")
    if not reply.get("ok"):
        code = reply.get("exit_code")
        raise DaemonRefused(
            str(reply.get("error") or "the daemon refused the request"),
            code if isinstance(code, int) and not isinstance(code, bool) else 1,
        )
    return reply.get("result")


def _connect(sock: socket.socket, path: Path, deadline: float) -> None:
    """Connect, waiting for room while the daemon's queue of new connections is full."""
    while True:
        try:
            sock.connect(str(path))
            return
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            raise DaemonNotRunning("syncd is not running", "start it with `syncd run`") from exc
        except BlockingIOError:
            # A full listen backlog: a busy or stopped daemon.  Unix sockets answer EAGAIN
            # at once instead of waiting, so wait here, up to the request's deadline.
            if time.time() >= deadline:
                raise TimeoutError from None
            time.sleep(0.05)

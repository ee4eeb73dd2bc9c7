"""The daemon seen from outside: a subprocess, its control socket, and "is it quiet yet?".

The socket is found the way the README describes it (``$XDG_RUNTIME_DIR/syncd/``,
one ``.sock`` per config) and spoken directly: one JSON object per line, one reply
per line.  Polling it costs ~1 ms, where ``syncd status --json`` costs a Python start.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
DAEMON_SRC = REPO / "daemon"


def syncd_env(base: dict[str, str] | None = None, **extra: str) -> dict[str, str]:
    env = dict(os.environ if base is None else base)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(DAEMON_SRC), env.get("PYTHONPATH")]))
    env.update(extra)
    return env


def isolated_env(home: Path) -> dict[str, str]:
    """HOME and the XDG dirs inside ``home`` (what the tests' ``home`` fixture does)."""
    for sub in ("", ".config", ".local/state", ".cache", "run"):
        (home / sub).mkdir(parents=True, exist_ok=True)
    (home / "run").chmod(0o700)
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("SYNCD_CONFIG", "NOTIFY_SOCKET", "JOURNAL_STREAM", "WATCHDOG_USEC")
    }
    env.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        XDG_STATE_HOME=str(home / ".local/state"),
        XDG_CACHE_HOME=str(home / ".cache"),
        XDG_RUNTIME_DIR=str(home / "run"),
        NO_PROXY="127.0.0.1,localhost",
    )
    return syncd_env(env)


def write_config(path: Path, projects: list[dict], **top: Any) -> Path:
    path.write_text(yaml.safe_dump({**top, "projects": projects}, sort_keys=False))
    return path


def cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60.0
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "syncd", *args],
        env=syncd_env() if env is None else env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def socket_path(config: Path, env: dict[str, str] | None = None) -> Path:
    """Where the daemon of ``config`` listens (README: "The control socket lives in ...")."""
    env = dict(os.environ) if env is None else env
    uid = os.getuid()
    base = None
    for cand in (env.get("XDG_RUNTIME_DIR"), f"/run/user/{uid}"):
        if cand and os.path.isdir(cand) and os.stat(cand).st_uid == uid:
            base = Path(cand) / "syncd"
            break
    if base is None:
        base = Path(env.get("TMPDIR") or "/tmp") / f"syncd-{uid}"
    digest = hashlib.sha1(str(config.resolve()).encode()).hexdigest()[:12]
    return base / f"{digest}.sock"


def raw_request(sock_path: Path, payload: bytes, timeout: float = 10.0) -> bytes:
    """Send ``payload`` on one connection, half-close, and return everything answered."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(str(sock_path))
        try:
            s.sendall(payload)
            s.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass  # answered and hung up before reading it all
        data = bytearray()
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            data += chunk
    return bytes(data)


def request(sock_path: Path, cmd: str, timeout: float = 10.0, **fields: Any) -> dict[str, Any]:
    line = json.dumps({"cmd": cmd, **fields}).encode() + b"\n"
    return json.loads(raw_request(sock_path, line, timeout))


class Daemon:
    """``python -m syncd run -c CONFIG`` as a subprocess, its output in a log file."""

    def __init__(
        self,
        config: Path,
        env: dict[str, str],
        log_path: Path,
        prefix: tuple[str, ...] = (),
        options: tuple[str, ...] = (),
    ) -> None:
        self.config = config
        self.options = options  # before `run`, e.g. ("--debug",)
        self.env = env
        self.log_path = log_path
        self.prefix = prefix
        self.proc: subprocess.Popen[bytes] | None = None
        self.sock = socket_path(config, env)
        self.starts = 0

    def start(self) -> Daemon:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [*self.prefix, sys.executable, "-m", "syncd", *self.options, "run"]
                + ["-c", str(self.config)],
                env=self.env,
                stdout=log,
                stderr=log,
                stdin=subprocess.DEVNULL,
            )
        self.starts += 1
        return self

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        if self.alive():
            assert self.proc is not None
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(20)

    def stop(self, timeout: float = 30.0) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            return None

    def status(self, timeout: float = 10.0) -> dict[str, Any] | None:
        """The daemon's ``status`` result, or None while its socket does not answer."""
        try:
            reply = request(self.sock, "status", timeout=timeout)
        except (OSError, ValueError):
            return None
        return reply.get("result") if reply.get("ok") else None

    def ask(self, cmd: str, **fields: Any) -> dict[str, Any]:
        return request(self.sock, cmd, **fields)

    def wait_up(self, timeout: float = 30.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            st = self.status()
            if st is not None:
                return st
            if not self.alive():
                raise AssertionError(
                    f"the daemon exited ({self.proc.returncode}):\n{self.log[-3000:]}"
                )  # type: ignore[union-attr]
            time.sleep(0.05)
        raise AssertionError(f"the daemon's socket never answered\n{self.log[-3000:]}")


def quiet(status: dict[str, Any] | None, states: tuple[str, ...] = ("idle",)) -> bool:
    """Every mirrored project idle with nothing pending or in flight."""
    if status is None:
        return False
    for p in status["projects"]:
        m = p.get("mirror")
        if m is None:
            continue
        if p["state"] not in states or m["pending"] or m["in_flight"]:
            return False
    return True


def wait_quiet(
    daemon: Daemon,
    timeout: float = 60.0,
    settle: float = 0.5,
    states: tuple[str, ...] = ("idle",),
    first_wait: float = 0.4,
    stall_after: float = 4.0,
) -> float:
    """Wait until the daemon reports quiet for ``settle`` seconds in a row; return the wait.

    ``first_wait`` lets the kernel deliver the last events and the quiet window start.
    A project seen in ``error`` or ``offline`` (unless ``states`` accepts them) for
    ``stall_after`` seconds in all (a retry loop goes in and out of them) is reported at
    once: a test need not wait out its timeout to learn that the daemon is stuck.
    """
    start = time.monotonic()
    time.sleep(first_wait)
    deadline = start + timeout
    since: float | None = None
    stalled = 0.0
    last: dict[str, Any] | None = None
    polled = time.monotonic()
    while time.monotonic() < deadline:
        last = daemon.status()
        now = time.monotonic()
        if quiet(last, states):
            since = since or now
            if now - since >= settle:
                return now - start
        else:
            since = None
            if not daemon.alive():
                raise AssertionError(f"the daemon exited:\n{daemon.log[-3000:]}")
            bad = [
                p
                for p in (last or {}).get("projects", [])
                if p["state"] in ("error", "offline") and p["state"] not in states
            ]
            stalled += (now - polled) if bad else 0.0
            if stalled >= stall_after:
                text = json.dumps(bad, ensure_ascii=False)[:1500]
                raise TimeoutError(f"stuck for {stall_after:.0f}s: {text}")
        polled = now
        time.sleep(0.05)
    text = json.dumps(last, ensure_ascii=False)[:1500]
    raise TimeoutError(f"not quiet after {timeout}s: {text}")


def project_status(status: dict[str, Any], name: str) -> dict[str, Any]:
    return next(p for p in status["projects"] if p["name"] == name)

"""Shared fixtures: an isolated home for every test, and the real daemon as a subprocess."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

# The Kaggle fixtures (fake, kaggle_env, db) shared by the snapshot and client tests.
pytest_plugins = ["tests.kaggle_support"]

REPO = Path(__file__).resolve().parent.parent
DAEMON_SRC = REPO / "daemon"


# --- the e2e marker -----------------------------------------------------------------------------
# A test that starts syncd (daemon or CLI) as a subprocess must be marked `e2e`, so that
# `pytest -m "not e2e"` stays a fast inner loop; run_cli and run_daemon refuse otherwise.

_running: list[pytest.Item] = []


def pytest_runtest_setup(item: pytest.Item) -> None:
    _running[:] = [item]


def require_e2e_mark() -> None:
    item = _running[0] if _running else None
    if item is not None and item.get_closest_marker("e2e") is None:
        raise AssertionError(
            f"{item.nodeid} starts syncd as a subprocess: mark it @pytest.mark.e2e"
        )


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """HOME and the XDG dirs point into tmp_path: no test touches the real user's files."""
    home = tmp_path / "home"
    for sub in ("", ".config", ".local/state", ".cache", "run"):
        (home / sub).mkdir(parents=True, exist_ok=True)
    (home / "run").chmod(0o700)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("XDG_STATE_HOME", str(home / ".local/state"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(home / "run"))
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.delenv("SYNCD_CONFIG", raising=False)
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    monkeypatch.delenv("JOURNAL_STREAM", raising=False)
    return home


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def tree(root: Path, skip: tuple[str, ...] = (".syncd-trash",)) -> dict[str, str]:
    """Relative path → md5 of every regular file under root (not following symlinks)."""
    out: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = os.path.relpath(dirpath, root)
        dirnames[:] = [
            d for d in dirnames if (d if rel_dir == "." else f"{rel_dir}/{d}") not in skip
        ]
        for name in filenames:
            full = Path(dirpath) / name
            if full.is_symlink() or name.startswith(".syncd-tmp-"):
                continue
            if rel_dir == ".syncd" and name == "manifest.json":
                continue  # syncd's own file on the target (README, "The manifest")
            rel = name if rel_dir == "." else f"{rel_dir}/{name}"
            out[rel] = md5(full)
    return out


def wait_for(predicate: Callable[[], object], timeout: float = 20.0, what: str = "") -> object:
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")


def write_config(path: Path, projects: list[dict], **top: object) -> Path:
    path.write_text(yaml.safe_dump({**top, "projects": projects}, sort_keys=False))
    return path


class DaemonProcess:
    """``python -m syncd run -c CONFIG`` with its stderr in a file we can read."""

    def __init__(self, config: Path, env: dict[str, str], log_path: Path) -> None:
        self.config = config
        self.env = env
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, *extra: str, prefix: tuple[str, ...] = ()) -> DaemonProcess:
        require_e2e_mark()
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - lives as long as the process
        self.proc = subprocess.Popen(
            [*prefix, sys.executable, "-m", "syncd", "run", "-c", str(self.config), *extra],
            env=self.env,
            stdout=self._log,
            stderr=self._log,
            stdin=subprocess.DEVNULL,
        )
        return self

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_log(self, text: str, timeout: float = 20.0) -> None:
        wait_for(lambda: text in self.log, timeout, f"log line {text!r}\n--- log:\n{self.log}")

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def stop(self, timeout: float = 15.0) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        finally:
            self._log.close()

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(10)
        self._log.close()


def syncd_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(DAEMON_SRC), env.get("PYTHONPATH")]))
    env.update(extra or {})
    return env


@pytest.fixture
def run_daemon(home: Path, tmp_path: Path) -> Iterator[Callable[..., DaemonProcess]]:
    started: list[DaemonProcess] = []

    def start(
        config: Path, *extra: str, env: dict[str, str] | None = None, prefix: tuple[str, ...] = ()
    ) -> DaemonProcess:
        d = DaemonProcess(config, syncd_env(env), tmp_path / f"daemon-{len(started)}.log")
        started.append(d.start(*extra, prefix=prefix))
        return d

    yield start
    for d in started:
        if d.proc is not None and d.proc.poll() is None:
            d.proc.kill()
            d.proc.wait(10)


def run_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60.0, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    require_e2e_mark()
    return subprocess.run(
        [sys.executable, "-m", "syncd", *args],
        env=syncd_env(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
    )


def without_read_override() -> tuple[str, ...]:
    """A command prefix under which chmod 000 really is unreadable, even for root (CI runs
    as root, and root's CAP_DAC_OVERRIDE would read anything)."""
    if os.geteuid() != 0:
        return ()
    caps = "-dac_override,-dac_read_search"
    return ("setpriv", f"--inh-caps={caps}", f"--bounding-set={caps}")

"""Hostile: leftovers, the control surface and the service lifecycle (issue #8, "Leftovers and
the control surface", and the review note: root replaced in place, watchdog during a long
first scan, shutdown waiting for an upload, a reload running two engines).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.chaos.targets import REMOTES, TMP_PREFIX
from tests.conftest import wait_for, without_read_override

pytest_plugins = ["tests.chaos.fixtures"]  # the drive and scenario fixtures
pytestmark = pytest.mark.e2e  # every test here starts syncd as a subprocess

pytestmark = pytest.mark.e2e  # every test here starts syncd as a subprocess

MiB = 1024 * 1024


def state(d) -> dict:
    st = d.status()
    assert st is not None
    return st["projects"][0]


# --- leftovers -----------------------------------------------------------------------------------


def test_partial_temp_file_from_kill_9_is_swept_at_start(scenario) -> None:
    sc = scenario("local")
    (sc.src / "small.txt").write_text("s\n")
    d = sc.start()
    sc.quiet(d)
    with open(sc.src / "big.bin", "wb") as f:  # a long copy to interrupt
        for _ in range(512):
            f.write(os.urandom(MiB))
    root = sc.target.root  # type: ignore[union-attr]

    def partial() -> list[Path]:
        return [p for p in root.glob(f"{TMP_PREFIX}*") if p.stat().st_size > 0]

    wait_for(partial, timeout=60, what="the copy of big.bin under way")
    d.kill()
    left = partial()
    assert left, "the kill did not land during the copy"
    d2 = sc.start()
    sc.quiet(d2, timeout=120)
    assert sc.converged(), sc.diff()
    assert sc.target.temp_leftovers() == [], "a temp file from before the crash is left over"


# --- the CLI against a hung daemon ---------------------------------------------------------------


def test_a_command_the_cli_gave_up_on_is_not_executed_later(scenario) -> None:
    sc = scenario("local")
    (sc.src / "a.txt").write_text("a\n")
    d = sc.start()
    sc.quiet(d)
    assert d.proc is not None
    d.proc.send_signal(signal.SIGSTOP)  # hung: the socket accepts, nobody answers
    try:
        r = sc.cli("pause", timeout=90)
    finally:
        d.proc.send_signal(signal.SIGCONT)
    time.sleep(2.0)  # the daemon works through its backlog
    problems = []
    if r.returncode == 0:
        problems.append("the CLI said the pause worked")
    if "Traceback" in r.stderr or len(r.stderr.strip().splitlines()) != 1:
        problems.append(f"not one sentence: {r.stderr[-300:]!r}")
    if state(d)["state"] == "paused":
        problems.append("the daemon executed the pause the CLI gave up on")
    assert problems == []


# --- sync --once ---------------------------------------------------------------------------------


@pytest.mark.parametrize("remote", REMOTES)
def test_sync_once_fails_when_the_project_folder_is_missing(scenario, remote) -> None:
    sc = scenario(remote)
    os.rmdir(sc.src)
    r = sc.cli("sync", "--once")
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    assert "does not exist" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize("remote", REMOTES)
def test_sync_once_fails_when_a_file_was_not_mirrored(scenario, remote) -> None:
    """Passes today: an unreadable file makes `sync --once` exit 1 (the baseline)."""
    if os.geteuid() == 0 and not shutil.which("setpriv"):
        pytest.skip("running as root without setpriv: chmod 000 files stay readable")
    sc = scenario(remote)
    (sc.src / "ok.txt").write_text("ok\n")
    (sc.src / "locked.txt").write_text("locked\n")
    (sc.src / "locked.txt").chmod(0)
    r = subprocess.run(
        [*without_read_override(), sys.executable, "-m", "syncd", "sync", "--once"]
        + ["-c", str(sc.cfg)],
        env=sc.env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert "locked.txt" in r.stderr


# --- the project root replaced in place ----------------------------------------------------------


@pytest.mark.parametrize("remote", REMOTES)
def test_project_root_replaced_in_place_is_watched_again(scenario, remote) -> None:
    sc = scenario(remote)
    (sc.src / "a.txt").write_text("a\n")
    (sc.src / "sub").mkdir()
    (sc.src / "sub/b.txt").write_text("b\n")
    d = sc.start()
    sc.quiet(d)
    old = sc.src.with_name("p.old")
    os.rename(sc.src, old)  # what `git clone` into a fresh folder, or a restore, does
    shutil.copytree(old, sc.src, symlinks=True)
    sc.quiet(d, first_wait=1.0)
    (sc.src / "new.txt").write_text("made in the new folder\n")
    (sc.src / "sub/b.txt").write_text("b, edited in the new folder\n")
    try:
        wait_for(sc.converged, timeout=6, what="the edits in the replaced root")
    finally:
        shutil.rmtree(old, ignore_errors=True)


# --- systemd watchdog ----------------------------------------------------------------------------


class NotifyListener:
    """A datagram socket standing in for systemd's NOTIFY_SOCKET; records what arrives."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.1)
        self.messages: list[tuple[float, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                continue
            self.messages.append((time.monotonic(), data.decode(errors="replace")))

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()

    def times(self, key: str) -> list[float]:
        return [t for t, m in self.messages if key in m.splitlines()]


def test_a_long_first_scan_keeps_pinging_the_watchdog(scenario, tmp_path: Path) -> None:
    sc = scenario("local")
    for i in range(30000):
        folder = sc.src / f"d{i // 100:04d}"
        if i % 100 == 0:
            folder.mkdir()
        (folder / f"f{i}.txt").write_text("x")
    listener = NotifyListener(tmp_path / "notify.sock")
    try:
        # A short watchdog keeps the test short: the daemon pings every 0.5 s and stops
        # pinging once its engine has been silent for 2 s (4 intervals).  Shorter limits
        # fail on a loaded CI machine (a 1.24 s silence was seen with 0.8 s), where the
        # engine thread is simply not scheduled; the unit's own WatchdogSec is far longer.
        d = sc.start(NOTIFY_SOCKET=str(listener.path), WATCHDOG_USEC="1000000")
        sc.quiet(d, timeout=240)
        wait_for(lambda: listener.times("WATCHDOG=1"), what="a watchdog ping")
    finally:
        listener.close()
    ready = listener.times("READY=1")
    pings = listener.times("WATCHDOG=1")
    assert ready, listener.messages[:5]
    gaps = [b - a for a, b in zip([ready[0], *pings], pings, strict=False)]
    stopped = [ln for ln in d.log.splitlines() if "stopped responding" in ln]
    assert max(gaps) < 2.0 and not stopped, (
        f"longest silence between pings {max(gaps):.2f}s (2 x WATCHDOG_USEC is 2 s); "
        f"{len(stopped)} 'stopped responding' lines"
    )


# --- shutdown and reload with an upload in flight ------------------------------------------------


def _held_update(sc, seconds: float) -> None:
    """The next content update to Drive is held `seconds` before the server handles it."""
    sc.target.fake.inject(delay=seconds, method="PUT", path_contains="/upload/", count=1)


def test_sigterm_does_not_wait_for_an_in_flight_upload(scenario) -> None:
    sc = scenario("gdrive")
    sc.top["drive"]["timeout"] = "60s"
    sc.rewrite()
    (sc.src / "model.bin").write_bytes(b"v0" * 1000)
    d = sc.start()
    sc.quiet(d)
    _held_update(sc, 13)
    (sc.src / "model.bin").write_bytes(b"v1" * 1000)
    wait_for(lambda: state(d)["mirror"]["in_flight"] == 1, what="the update in flight")
    t0 = time.monotonic()
    assert d.proc is not None
    d.proc.send_signal(signal.SIGTERM)
    try:
        code = d.proc.wait(60)
    finally:
        took = time.monotonic() - t0
    assert code == 0
    assert took < 11, f"SIGTERM took {took:.1f}s with one upload in flight (8 s grace)"


def test_reload_during_an_upload_never_leaves_an_older_version(scenario) -> None:
    sc = scenario("gdrive")
    sc.top["drive"]["timeout"] = "60s"
    sc.rewrite()
    (sc.src / "model.bin").write_bytes(b"v0" * 1000)
    d = sc.start()
    sc.quiet(d)
    _held_update(sc, 18)  # well past the daemon's 8 s stop grace: the old engine outlives it
    t0 = time.monotonic()
    (sc.src / "model.bin").write_bytes(b"v1" * 1000)
    wait_for(lambda: state(d)["mirror"]["in_flight"] == 1, what="the v1 update in flight")
    sc.rewrite(delay="150ms")  # any change to the project restarts its engine
    r = sc.cli("reload", timeout=60)
    assert r.returncode == 0, r.stderr
    (sc.src / "model.bin").write_bytes(b"v2" * 1000)
    time.sleep(max(0.0, 19.5 - (time.monotonic() - t0)))  # the held v1 update is done by now
    sc.quiet(d, timeout=60)
    assert sc.target.read("model.bin") == b"v2" * 1000, "Drive holds an older version"
    assert sc.converged(), sc.diff()

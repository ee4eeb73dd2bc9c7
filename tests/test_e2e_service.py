"""End-to-end: the daemon as a service — control socket, status, signals, sd_notify."""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from .conftest import run_cli, tree, wait_for, write_config

pytestmark = pytest.mark.e2e  # every test here runs syncd as a subprocess

STATES = {"starting", "scanning", "syncing", "idle", "paused", "offline", "auth_required", "error"}
ISO = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$"


def check_shape(status: dict[str, Any]) -> None:
    """The documented `status --json` shape (README), key by key and type by type."""
    import re

    assert set(status) == {"running", "pid", "version", "uptime_s", "config_error", "projects"}
    assert status["running"] is True and isinstance(status["pid"], int)
    assert isinstance(status["version"], str) and isinstance(status["uptime_s"], int)
    for p in status["projects"]:
        assert set(p) == {
            "name", "path", "state", "reason", "mirror", "snapshot", "manifest", "runs", "pull"
        }  # fmt: skip
        assert p["pull"] is None  # no mirror.pull (the return path) here
        # runs: null without a `train:` section (these projects have none)
        assert p["state"] in STATES and p["runs"] is None
        # the target's manifest (README: the manifest), once the first walk wrote it
        assert p["manifest"] is None or set(p["manifest"]) == {
            "seq", "at", "path", "id", "files", "commit"
        }  # fmt: skip
        m = p["mirror"]
        assert set(m) == {
            "to",
            "pending",
            "in_flight",
            "files",
            "bytes",
            "last_sync",
            "last_error",
            "conflicts",
            "watch",  # an addition (README): "inotify", or why and how often it polls
        }
        assert m["watch"] == "inotify" or m["watch"].startswith("polling")
        for key in ("pending", "in_flight", "files", "bytes", "conflicts"):
            assert isinstance(m[key], int) and m[key] >= 0
        assert m["last_sync"] is None or re.match(ISO, m["last_sync"])
        assert m["last_error"] is None or isinstance(m["last_error"], str)


def project(tmp_path: Path, name: str = "p", **mirror: object) -> dict:
    (tmp_path / name).mkdir(exist_ok=True)
    return {
        "name": name,
        "path": str(tmp_path / name),
        "mirror": {"to": f"local:{tmp_path / (name + '-mirror')}", "delay": "100ms", **mirror},
    }


def status(cfg: Path, *args: str) -> dict[str, Any]:
    r = run_cli("status", "--json", "-c", str(cfg), *args)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def state(cfg: Path, name: str = "p") -> str:
    """The project's state, or "" while the daemon's socket is not up yet."""
    r = run_cli("status", "--json", "-c", str(cfg))
    if r.returncode == 3:
        return ""
    assert r.returncode == 0, r.stderr
    return next(p["state"] for p in json.loads(r.stdout)["projects"] if p["name"] == name)


def test_every_control_command(tmp_path: Path, run_daemon) -> None:
    cfg = write_config(tmp_path / "c.yaml", [project(tmp_path)])
    src, dst = tmp_path / "p", tmp_path / "p-mirror"
    (src / "a.txt").write_text("a")
    d = run_daemon(cfg)
    wait_for(lambda: (dst / "a.txt").exists())
    wait_for(lambda: state(cfg) == "idle")
    idle = status(cfg)
    check_shape(idle)
    assert idle["projects"][0]["mirror"]["files"] == 1

    human = run_cli("status", "-c", str(cfg))
    assert human.returncode == 0 and "p: idle" in human.stdout and "1 files" in human.stdout

    assert run_cli("pause", "p", "-c", str(cfg)).returncode == 0
    wait_for(lambda: state(cfg) == "paused")
    check_shape(status(cfg))
    (src / "while-paused.txt").write_text("recorded")
    time.sleep(0.5)
    assert not (dst / "while-paused.txt").exists()
    wait_for(lambda: status(cfg)["projects"][0]["mirror"]["pending"] == 1, what="edit recorded")

    assert run_cli("resume", "p", "-c", str(cfg)).returncode == 0
    wait_for(lambda: (dst / "while-paused.txt").exists(), what="upload after resume")

    # `sync` reconciles now: a file changed on the target by hand is put back by the next walk
    (dst / "a.txt").unlink()
    assert run_cli("sync", "p", "-c", str(cfg)).returncode == 0
    wait_for(lambda: (dst / "a.txt").exists(), what="sync reconciles")

    assert run_cli("reload", "-c", str(cfg)).returncode == 0
    assert run_cli("stop", "-c", str(cfg)).returncode == 0
    assert d.proc.wait(10) == 0

    # without a daemon: exit 3, and the last known state from disk
    r = run_cli("status", "--json", "-c", str(cfg))
    assert r.returncode == 3
    offline = json.loads(r.stdout)
    assert offline["running"] is False and offline["projects"][0]["mirror"]["files"] == 2
    assert run_cli("sync", "-c", str(cfg)).returncode == 3


def test_status_while_syncing_2000_files_falls_to_zero_pending(tmp_path: Path, run_daemon) -> None:
    cfg = write_config(tmp_path / "c.yaml", [project(tmp_path, workers=1)])
    src = tmp_path / "p"
    d = run_daemon(cfg)
    wait_for(lambda: state(cfg) == "idle")
    for i in range(2000):
        (src / f"f{i:04d}.txt").write_text("x" * 100)
    seen_busy = False
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        s = status(cfg)
        check_shape(s)
        m = s["projects"][0]["mirror"]
        if m["pending"] > 0 or m["in_flight"] > 0 or s["projects"][0]["state"] == "syncing":
            seen_busy = True
        if m["files"] == 2000 and m["pending"] == 0 and s["projects"][0]["state"] == "idle":
            break
        time.sleep(0.05)
    else:
        raise AssertionError(f"never settled: {s}")
    assert seen_busy
    assert d.stop() == 0


def test_target_failure_goes_offline_and_recovers(tmp_path: Path, run_daemon) -> None:
    cfg = write_config(tmp_path / "c.yaml", [project(tmp_path)])
    src, dst = tmp_path / "p", tmp_path / "p-mirror"
    (src / "a.txt").write_text("a")
    d = run_daemon(cfg)
    wait_for(lambda: (dst / "a.txt").exists())
    dst.rename(tmp_path / "unplugged")  # the USB disk is pulled
    (src / "b.txt").write_text("b")
    wait_for(lambda: state(cfg) == "offline", what="offline")
    s = status(cfg)
    check_shape(s)
    assert "not there" in s["projects"][0]["mirror"]["last_error"]
    assert not dst.exists()  # never recreated behind the user's back
    (tmp_path / "unplugged").rename(dst)
    wait_for(
        lambda: state(cfg) == "idle" and (dst / "b.txt").exists(), timeout=40, what="back to idle"
    )
    assert d.stop() == 0


def test_socket_is_private_and_survives_bad_requests(tmp_path: Path, run_daemon, home) -> None:
    cfg = write_config(tmp_path / "c.yaml", [project(tmp_path)])
    d = run_daemon(cfg)
    wait_for(lambda: state(cfg) == "idle")
    sock_dir = home / "run" / "syncd"
    socks = list(sock_dir.glob("*.sock"))
    assert len(socks) == 1
    assert stat.S_IMODE(sock_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE(socks[0].stat().st_mode) == 0o600

    def raw(payload: bytes) -> dict:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.connect(str(socks[0]))
            try:
                s.sendall(payload)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the server answered and hung up before reading it all
            data = b""
            while not data.endswith(b"\n"):
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        return json.loads(data)

    assert raw(b"this is not json\n") == {
        "ok": False,
        "error": "request is not valid JSON",
        "exit_code": 2,
    }
    assert raw(b'["status"]\n')["ok"] is False
    assert "unknown command" in raw(b'{"cmd": "explode"}\n')["error"]
    big = raw(b'{"cmd": "status", "pad": "' + b"x" * (10 * 1024 * 1024) + b'"}\n')
    assert big["ok"] is False and "larger than" in big["error"]
    assert raw(b'{"cmd": "status"}\n')["ok"] is True
    assert d.proc.poll() is None
    assert d.stop() == 0


def test_sigterm_during_a_large_mirror_then_restart_loses_nothing(
    tmp_path: Path, run_daemon
) -> None:
    cfg = write_config(tmp_path / "c.yaml", [project(tmp_path, workers=1)])
    src, dst = tmp_path / "p", tmp_path / "p-mirror"
    for i in range(3000):
        (src / f"f{i:04d}.bin").write_bytes(os.urandom(2048))
    d = run_daemon(cfg)
    wait_for(lambda: dst.is_dir() and len(os.listdir(dst)) >= 200, what="mirror under way")
    t0 = time.monotonic()
    d.signal(signal.SIGTERM)
    assert d.proc.wait(15) == 0
    assert time.monotonic() - t0 < 10
    assert len(tree(dst)) < 3000, "the stop must land mid-mirror for this test to mean much"
    d2 = run_daemon(cfg)
    wait_for(lambda: tree(dst) == tree(src), timeout=60, what="restart finishes the mirror")
    assert d2.stop() == 0


def test_sighup_adds_a_project_and_survives_a_broken_config(tmp_path: Path, run_daemon) -> None:
    cfg = write_config(tmp_path / "c.yaml", [project(tmp_path)])
    d = run_daemon(cfg)
    wait_for(lambda: state(cfg) == "idle")
    write_config(cfg, [project(tmp_path), project(tmp_path, "q")])
    d.signal(signal.SIGHUP)
    wait_for(lambda: len(status(cfg)["projects"]) == 2, what="second project after SIGHUP")
    (tmp_path / "q/new.txt").write_text("watched")
    wait_for(lambda: (tmp_path / "q-mirror/new.txt").exists(), what="new project watched")

    cfg.write_text(cfg.read_text() + "\n  - name: [broken\n")
    d.signal(signal.SIGHUP)
    wait_for(lambda: status(cfg)["config_error"], what="config error in status")
    s = status(cfg)
    assert "not valid YAML" in s["config_error"] and len(s["projects"]) == 2
    (tmp_path / "p/still.txt").write_text("running")
    wait_for(lambda: (tmp_path / "p-mirror/still.txt").exists(), what="old config keeps going")
    r = run_cli("reload", "-c", str(cfg))
    assert r.returncode == 2 and "kept the previous config" in r.stderr  # a config error
    assert d.stop() == 0


def test_sd_notify_ready_status_watchdog_stopping(tmp_path: Path, run_daemon) -> None:
    cfg = write_config(tmp_path / "c.yaml", [project(tmp_path)])
    notify_path = tmp_path / "notify.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(str(notify_path))
    server.settimeout(0.2)
    messages: list[str] = []
    done = threading.Event()

    def collect() -> None:
        while not done.is_set():
            try:
                messages.append(server.recv(4096).decode())
            except TimeoutError:
                continue

    t = threading.Thread(target=collect, daemon=True)
    t.start()
    d = run_daemon(cfg, env={"NOTIFY_SOCKET": str(notify_path), "WATCHDOG_USEC": "400000"})
    wait_for(lambda: sum("WATCHDOG=1" in m for m in messages) >= 3, what="watchdog pings")
    assert d.stop() == 0
    wait_for(lambda: any("STOPPING=1" in m for m in messages), what="STOPPING=1")
    done.set()
    t.join()
    server.close()
    ready = [m for m in messages if "READY=1" in m]
    assert ready and "STATUS=" in ready[0]
    assert any(m.startswith("STATUS=") and "p " in m for m in messages)


def installed_syncd(*args: str) -> subprocess.CompletedProcess[str]:
    """The console script pip installed next to this Python (what a user runs)."""
    exe = Path(sys.executable).with_name("syncd")
    if not exe.exists():
        pytest.skip("syncd is not installed next to this Python (pip install -e .)")
    return subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=60)


def test_service_install_dry_run_prints_a_valid_unit(tmp_path: Path, home: Path) -> None:
    cfg = write_config(tmp_path / "c.yaml", [project(tmp_path)])
    r = installed_syncd("service", "install", "--dry-run", "-c", str(cfg))
    assert r.returncode == 0, r.stderr
    assert "Type=notify" in r.stdout and f"run -c {cfg}" in r.stdout
    assert not (home / ".config/systemd/user/syncd.service").exists()


def test_pause_without_a_daemon_is_kept_for_the_next_start(tmp_path: Path, run_daemon) -> None:
    cfg = write_config(tmp_path / "c.yaml", [project(tmp_path)])
    r = run_cli("pause", "p", "-c", str(cfg))
    assert r.returncode == 0 and "will start paused" in r.stdout
    (tmp_path / "p/a.txt").write_text("a")
    d = run_daemon(cfg)
    wait_for(lambda: state(cfg) == "paused")
    time.sleep(0.5)
    assert not (tmp_path / "p-mirror/a.txt").exists()
    run_cli("resume", "p", "-c", str(cfg))
    wait_for(lambda: (tmp_path / "p-mirror/a.txt").exists())
    assert d.stop() == 0


def test_doctor_reports_a_missing_folder(tmp_path: Path, home: Path) -> None:
    conf = project(tmp_path)
    conf["path"] = str(tmp_path / "nope")
    cfg = write_config(tmp_path / "c.yaml", [conf])
    r = run_cli("doctor", "-c", str(cfg))
    assert r.returncode == 1
    assert "[fail] p: folder" in r.stdout and "inotify" in r.stdout


@pytest.mark.skipif(not Path("/usr/bin/systemd-analyze").exists(), reason="no systemd-analyze")
def test_dry_run_unit_passes_systemd_analyze(tmp_path: Path, home: Path) -> None:
    cfg = write_config(tmp_path / "c.yaml", [project(tmp_path)])
    r = installed_syncd("service", "install", "--dry-run", "-c", str(cfg))
    unit = home / ".config/systemd/user/syncd.service"
    unit.parent.mkdir(parents=True)
    exe = r.stdout.split("ExecStart=", 1)[1].split()[0]
    if not os.path.exists(exe):
        pytest.skip(f"{exe} is not installed here")
    unit.write_text(r.stdout[r.stdout.index("[Unit]") :])
    v = subprocess.run(
        ["systemd-analyze", "verify", "--user", "--man=no", str(unit)],
        capture_output=True,
        text=True,
        env={**os.environ, "HOME": str(home)},
        check=False,
    )
    assert v.returncode == 0, v.stderr

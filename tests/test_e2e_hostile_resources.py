"""Hostile: resource faults (issue #8, "Resource faults").

* the snapshot staging disk fills up → a clear failure, the mirror keeps going,
  nothing half-written left (a real 1 MiB tmpfs as TMPDIR);
* the state db on a read-only disk → a clear error, a non-zero exit that the
  systemd unit does not restart in a loop (a tmpfs remounted read-only);
* inotify exhausted → edits still mirrored by polling, and `status`/`doctor` say
  why.  The limits are lowered for the daemon alone, in its own user namespace
  (``/proc/sys/user/max_inotify_*`` are per namespace), so nothing else on the
  machine is affected; ``SYNCD_TEST_INOTIFY_FAIL=1`` is the switch the fix adds
  for machines where that is not possible.

Mounting needs root; each test skips with the reason where it cannot set up.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.chaos.control import Daemon, cli, syncd_env, wait_quiet, write_config
from tests.conftest import wait_for
from tests.fakes.kaggle_server import FakeKaggle
from tests.kaggle_support import DATASET, FAST, running_fake, settle

pytest_plugins = ["tests.chaos.fixtures"]  # the drive and scenario fixtures
pytestmark = pytest.mark.e2e  # every test here starts syncd as a subprocess

pytestmark = pytest.mark.e2e  # every test here starts syncd as a subprocess

KiB = 1024


def mount_tmpfs(where: Path, size: str) -> None:
    where.mkdir(parents=True, exist_ok=True)
    r = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(where)],
        capture_output=True,
        text=True,
    )
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")


def umount(where: Path) -> None:
    subprocess.run(["umount", "-l", str(where)], check=False, capture_output=True)


@pytest.fixture
def kaggle(home: Path) -> Iterator[FakeKaggle]:
    yield from running_fake()


# --- snapshot staging disk full ------------------------------------------------------------------


def test_staging_disk_full_fails_clearly_and_the_mirror_goes_on(
    tmp_path: Path, home: Path, kaggle: FakeKaggle
) -> None:
    """Passes today: staging's ENOSPC is one sentence, the folder is removed, mirroring goes on."""
    small = tmp_path / "small-tmp"
    mount_tmpfs(small, "1m")
    d: Daemon | None = None
    try:
        src, dst = tmp_path / "proj", tmp_path / "proj-mirror"
        (src / "data").mkdir(parents=True)
        for i in range(4):  # 2 MiB to stage into 1 MiB
            (src / f"data/part{i}.bin").write_bytes(os.urandom(512 * KiB))
        (src / "train.py").write_text("print('train')\n")
        settle(src)
        project = {
            "name": "proj",
            "path": str(src),
            "mirror": {"to": f"local:{dst}", "delay": "100ms"},
            "snapshot": {"dataset": DATASET, "title": "proj code"},
        }
        cfg = write_config(tmp_path / "c.yaml", [project], kaggle={"endpoint": kaggle.url})
        env = kaggle.client_env(home=home, via_proxy=False, base=syncd_env())
        env.update(FAST, TMPDIR=str(small))
        d = Daemon(cfg, env, tmp_path / "daemon.log").start()
        d.wait_up()
        wait_quiet(d)
        r = cli("snapshot", "proj", "--wait", "-c", str(cfg), env=env, timeout=120)
        assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
        message = (r.stdout + r.stderr).strip()
        assert "Traceback" not in message and len(message.splitlines()) == 1, message
        assert "space" in message or "full" in message, message
        assert kaggle.count("CreateDataset") == 0 and kaggle.count("CreateDatasetVersion") == 0
        assert list(small.iterdir()) == [], f"left in staging: {list(small.rglob('*'))[:5]}"
        (src / "after.py").write_text("mirrored after the failed snapshot\n")
        wait_for(lambda: (dst / "after.py").exists(), what="the mirror goes on")
        # the file lands before its batch ends (the target's manifest is written after it)
        wait_for(lambda: (d.status() or {"projects": [{}]})["projects"][0].get("state") == "idle")
        st = d.status()
        assert st is not None and st["projects"][0]["state"] == "idle"
        assert d.stop() == 0
    finally:
        if d is not None:
            d.kill()
        umount(small)


# --- state db on a read-only disk ----------------------------------------------------------------


def _restart_prevented(code: int, cfg: Path) -> bool:
    """Whether the unit `syncd service install` writes would not restart after exit `code`."""
    env = syncd_env()
    env["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), env.get("PATH", "")])
    r = cli("service", "install", "--dry-run", "-c", str(cfg), env=env, timeout=30)
    assert "RestartPreventExitStatus" in r.stdout or "Restart=" in r.stdout, r.stdout + r.stderr
    m = re.search(r"^RestartPreventExitStatus=(.*)$", r.stdout, re.M)
    return m is not None and str(code) in m.group(1).split()


def test_state_db_on_a_read_only_disk_is_one_clear_error_without_a_restart_loop(
    tmp_path: Path, home: Path
) -> None:
    state = home / ".local/state"
    mount_tmpfs(state, "4m")
    try:
        src = tmp_path / "p"
        src.mkdir()
        (src / "a.txt").write_text("a\n")
        project = {"name": "p", "path": str(src), "mirror": {"to": f"local:{tmp_path / 'm'}"}}
        cfg = write_config(tmp_path / "c.yaml", [project])
        first = cli("sync", "--once", "-c", str(cfg), env=syncd_env())
        assert first.returncode == 0, first.stderr  # the db exists now
        subprocess.run(["mount", "-o", "remount,ro", str(state)], check=True)
        t0 = time.monotonic()
        r = cli("run", "-c", str(cfg), env=syncd_env(), timeout=60)
        assert time.monotonic() - t0 < 30
        problems = []
        if r.returncode == 0:
            problems.append("exit 0")
        if "Traceback" in r.stderr:
            problems.append("a traceback")
        errors = [ln for ln in r.stderr.splitlines() if " INFO " not in ln]
        if len(errors) != 1 or "read-only" not in errors[0].lower():
            problems.append(f"not one sentence naming the read-only disk: {errors[-3:]}")
        if r.returncode != 0 and not _restart_prevented(r.returncode, cfg):
            problems.append(f"exit {r.returncode} is restarted by the unit every 5 s")
        assert problems == [], r.stderr[-2000:]
    finally:
        umount(state)


# --- inotify exhausted ---------------------------------------------------------------------------


def _userns_prefix(**limits: int) -> tuple[str, ...]:
    """Run a command in a new user namespace with lowered inotify limits (root maps to root)."""
    sets = " && ".join(f"echo {v} > /proc/sys/user/max_inotify_{k}" for k, v in limits.items())
    prefix = ("unshare", "--user", "--map-root-user", "sh", "-c", f'{sets} && exec "$@"', "sh")
    probe = subprocess.run([*prefix, "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f"cannot lower inotify limits in a user namespace: {probe.stderr.strip()}")
    return prefix


def _tree(src: Path, folders: int) -> None:
    for i in range(folders):
        (src / f"d{i:03d}").mkdir(parents=True, exist_ok=True)
        (src / f"d{i:03d}/f.txt").write_text(f"{i}\n")


def _mirrors_by_polling(sc, d) -> None:
    sc.quiet(d, timeout=30)
    assert sc.converged(), sc.diff()
    for i in (0, 150, 299):  # the last folders are past the limit
        (sc.src / f"d{i:03d}/f.txt").write_text(f"edited {i}\n")
    (sc.src / "d299/new.txt").write_text("new\n")
    wait_for(sc.converged, timeout=12, what="edits in unwatched folders")


def _said_in_status(d, *needles: str) -> None:
    st = d.status()
    assert st is not None
    text = json.dumps(st["projects"][0])
    for needle in needles:
        assert needle in text, f"status does not say {needle!r}: {text}"


def test_too_few_inotify_watches_fall_back_to_polling_and_say_so(scenario) -> None:
    prefix = _userns_prefix(watches=50)
    sc = scenario("local")
    _tree(sc.src, 300)
    d = sc.start(prefix=prefix)
    _mirrors_by_polling(sc, d)
    _said_in_status(d, "inotify")
    doctor = subprocess.run(
        [*prefix, sys.executable, "-m", "syncd", "doctor", "-c", str(sc.cfg)],
        env=sc.env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    lines = [ln for ln in doctor.stdout.splitlines() if "inotify" in ln]
    assert any(ln.startswith(("[warn]", "[fail]")) for ln in lines), doctor.stdout
    assert any("fs.inotify.max_user_watches" in ln for ln in lines), doctor.stdout


def test_inotify_init_failing_falls_back_to_polling_and_says_so(scenario) -> None:
    prefix = _userns_prefix(instances=0)
    sc = scenario("local")
    _tree(sc.src, 300)
    d = sc.start(prefix=prefix)
    _mirrors_by_polling(sc, d)
    _said_in_status(d, "inotify", "poll")


def test_inotify_failure_switch_polls_and_says_so(scenario) -> None:
    sc = scenario("local")
    _tree(sc.src, 300)
    d = sc.start(SYNCD_TEST_INOTIFY_FAIL="1")
    _mirrors_by_polling(sc, d)
    _said_in_status(d, "inotify", "poll")
    doctor = sc.cli("doctor", SYNCD_TEST_INOTIFY_FAIL="1")
    assert any(
        "inotify" in ln and ln.startswith(("[warn]", "[fail]")) for ln in doctor.stdout.splitlines()
    ), doctor.stdout

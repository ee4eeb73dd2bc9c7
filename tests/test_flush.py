"""``MirrorRunner.flush`` (mirror.flush) with the runner's real loop in a thread.

The coalescer's quiet window is long (30 s), so an edit reaches the target in time
only through the flush's own walk.  The end-to-end tests (test_e2e_colab) drive
the same through `syncd flush` and the daemon.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from syncd.localfs.ignore import IgnoreRules
from syncd.mirror.coalescer import Coalescer, Kind
from syncd.mirror.manifest import MANIFEST_PATH
from syncd.mirror.runner import MirrorRunner
from tests.fakes.drive_server import FakeDrive
from tests.mirror_support import Rig

from .conftest import md5, wait_for


def start(rig: Rig) -> tuple[MirrorRunner, threading.Thread]:
    rig.remote.close()
    rig.remote = rig.make_remote()
    engine = MirrorRunner(
        "p", rig.src, IgnoreRules(rig.src), rig.remote, rig.db, Coalescer(30.0, 60.0)
    )
    rig.engine = engine
    thread = threading.Thread(target=engine.run, daemon=True)
    thread.start()
    wait_for(lambda: engine.state.value == "idle", what="first walk")
    return engine, thread


@pytest.fixture
def local_rig(tmp_path: Path, home: Path) -> Iterator[Rig]:
    r = Rig(tmp_path, "local")
    r.write("a.py", "a = 1\n")
    yield r
    r.engine.stop()
    r.close()


def test_flush_brings_an_edit_over_without_waiting_for_the_quiet_window(local_rig: Rig) -> None:
    engine, thread = start(local_rig)
    local_rig.write("a.py", "a = 2\n")
    local_rig.write("b.py", "b = 1\n")
    engine.coalescer.add("a.py", Kind.MODIFIED)  # as the watcher would; its window is 30 s
    started = time.monotonic()
    outcome = engine.flush(20)
    assert outcome.done and time.monotonic() - started < 10
    manifest = json.loads((local_rig.dst / MANIFEST_PATH).read_text())
    assert outcome.seq == manifest["seq"] == 2
    assert {p: f["md5"] for p, f in manifest["files"].items()} == {
        "a.py": md5(local_rig.src / "a.py"),
        "b.py": md5(local_rig.src / "b.py"),
    }
    assert (local_rig.dst / "a.py").read_text() == "a = 2\n"
    again = engine.flush(20)  # nothing changed since: the same manifest covers it
    assert again.done and again.seq == 2
    engine.stop()
    thread.join(10)


def test_flush_gives_up_at_once_when_paused(local_rig: Rig) -> None:
    engine, thread = start(local_rig)
    engine.pause()
    local_rig.write("a.py", "a = 3\n")
    started = time.monotonic()
    outcome = engine.flush(20)
    assert not outcome.done and outcome.state == "paused"
    assert outcome.reason == "paused by the user"
    assert time.monotonic() - started < 2
    assert (local_rig.dst / "a.py").read_text() == "a = 1\n"
    engine.stop()
    thread.join(10)


def test_flush_times_out_with_the_reason_when_credentials_are_refused(
    tmp_path: Path, home: Path
) -> None:
    with FakeDrive() as fake:
        rig = Rig(tmp_path, "gdrive-file", fake)
        rig.write("a.py", "a = 1\n")
        engine, thread = start(rig)
        fake.revoke_all()  # access and refresh tokens refused, as after a revoke
        rig.write("a.py", "a = 2\n")
        outcome = engine.flush(3)
        assert not outcome.done and outcome.state == "auth_required"
        assert outcome.seq == 1  # the last manifest written, which does not cover the edit
        engine.stop()
        thread.join(10)
        rig.close()

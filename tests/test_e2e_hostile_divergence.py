"""Hostile: the target silently diverges while status says idle (issue #8, "Silent divergence").

Each test makes an edit pattern real users make, waits until the daemon reports
`idle, pending 0`, and compares the target with the project file by file (md5).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.chaos.targets import CONFLICT, REMOTES
from tests.conftest import wait_for, without_read_override

pytest_plugins = ["tests.chaos.fixtures"]  # the drive and scenario fixtures
pytestmark = pytest.mark.e2e  # every test here starts syncd as a subprocess

pytestmark = pytest.mark.e2e  # every test here starts syncd as a subprocess


def git(repo: Path, *args: str) -> None:
    who = {"GIT_AUTHOR_NAME": "a", "GIT_AUTHOR_EMAIL": "a@x", "GIT_COMMITTER_NAME": "a"}
    env = {**os.environ, **who, "GIT_COMMITTER_EMAIL": "a@x"}
    done = subprocess.run(["git", "-C", str(repo), *args], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def backdate(*paths: Path, seconds: float = 100.0) -> None:
    """Give the files one and the same mtime (as a checkout or an unpacked archive does)."""
    t = time.time() - seconds
    for p in paths:
        os.utime(p, (t, t))


# --- git branch switches -------------------------------------------------------------------------


@pytest.mark.parametrize("remote", REMOTES)
def test_quick_branch_switches_with_a_renamed_folder_converge(scenario, remote) -> None:
    """7 switches 0.1 s apart, one branch renames a folder of 66 files (the issue's recipe).

    NOT reproduced here: 45 trials on today's code (gaps 0.1 s, 0.25 s and random
    0.05-0.45 s; 7 and 8 switches; 66 files next to 100 others; and 10 trials with the
    daemon SIGSTOPped/SIGCONTed at random to mimic a slow machine) all converged.  Kept
    as a regression test; the chaos test's workload switches branches too.
    """
    sc = scenario(remote)
    git(sc.src, "init", "-q", "-b", "main")
    for i in range(66):
        (sc.src / "models").mkdir(exist_ok=True)
        (sc.src / f"models/m{i:03d}.py").write_text(f"# model {i}\n")
    for i in range(100):  # enough others that the mass-deletion guard stays out of it
        (sc.src / "other").mkdir(exist_ok=True)
        (sc.src / f"other/o{i:03d}.py").write_text(f"# other {i}\n")
    git(sc.src, "add", "-A")
    git(sc.src, "commit", "-qm", "one")
    git(sc.src, "checkout", "-qb", "renamed")
    git(sc.src, "mv", "models", "nets")
    (sc.src / "nets/new.py").write_text("only on this branch\n")
    git(sc.src, "add", "-A")
    git(sc.src, "commit", "-qm", "rename")
    git(sc.src, "checkout", "-q", "main")
    with sc.set_up_unthrottled():  # 166 files: ~60 s at Drive's pace
        d = sc.start()
        sc.quiet(d)
    for k in range(7):  # ends on the branch with the renamed folder
        git(sc.src, "checkout", "-q", ["renamed", "main"][k % 2])
        time.sleep(0.1)
    sc.quiet(d)
    assert sc.converged(), sc.diff()


# --- swaps ---------------------------------------------------------------------------------------


def _swap(src: Path, a: str, b: str) -> None:
    os.rename(src / a, src / "swap-tmp.txt")
    os.rename(src / b, src / a)
    os.rename(src / "swap-tmp.txt", src / b)


@pytest.mark.parametrize("remote", REMOTES)
def test_two_files_swapped_through_a_temp_name_are_resynced(scenario, remote) -> None:
    sc = scenario(remote)
    (sc.src / "a.txt").write_text("contents of A\n")
    (sc.src / "b.txt").write_text("contents of B\n")
    backdate(sc.src / "a.txt", sc.src / "b.txt")
    d = sc.start()
    sc.quiet(d)
    assert sc.converged()
    _swap(sc.src, "a.txt", "b.txt")
    sc.quiet(d)
    live_diverged = not sc.converged()
    assert sc.cli("sync").returncode == 0
    sc.quiet(d)
    assert sc.converged(), f"still stale after `syncd sync`: {sc.diff()}"
    assert not live_diverged, "the watcher saw the swap, yet the target stayed stale"


@pytest.mark.parametrize("remote", REMOTES)
def test_a_swap_made_while_syncd_was_down_is_found_by_the_walk(scenario, remote) -> None:
    sc = scenario(remote)
    (sc.src / "a.txt").write_text("contents of A\n")
    (sc.src / "b.txt").write_text("contents of B\n")
    backdate(sc.src / "a.txt", sc.src / "b.txt")
    assert sc.cli("sync", "--once").returncode == 0
    assert sc.converged()
    _swap(sc.src, "a.txt", "b.txt")
    r = sc.cli("sync", "--once")
    assert r.returncode == 0, r.stderr
    assert sc.converged(), sc.diff()


# --- folder ↔ file -------------------------------------------------------------------------------


@pytest.mark.parametrize("remote", REMOTES)
def test_folder_replaced_by_a_file_is_mirrored(scenario, remote) -> None:
    sc = scenario(remote)
    (sc.src / "d").mkdir()
    (sc.src / "d/x.txt").write_text("x\n")
    (sc.src / "d/y.txt").write_text("y\n")
    (sc.src / "keep.txt").write_text("keep\n")
    d = sc.start()
    sc.quiet(d)
    shutil.rmtree(sc.src / "d")
    (sc.src / "d").write_text("now a file\n")
    sc.quiet(d, timeout=30, states=("idle", "error", "offline"))
    assert sc.converged(), sc.diff()
    assert set(sc.target.trashed()) >= {"d/x.txt", "d/y.txt"}
    st = d.status()
    assert st is not None and st["projects"][0]["state"] == "idle"


@pytest.mark.parametrize("remote", REMOTES)
def test_file_replaced_by_a_folder_is_mirrored(scenario, remote) -> None:
    sc = scenario(remote)
    (sc.src / "f").write_text("a file first\n")
    (sc.src / "keep.txt").write_text("keep\n")
    d = sc.start()
    sc.quiet(d)
    (sc.src / "f").unlink()
    (sc.src / "f").mkdir()
    (sc.src / "f/inner.txt").write_text("inside the folder now\n")
    try:
        sc.quiet(d, timeout=20)
    except TimeoutError:
        if remote == "local":  # offline forever: does a restart get it out? (the issue: no)
            d.stop()
            d = sc.start()
            sc.quiet(d, timeout=20)
        raise
    assert sc.target.duplicates() == []
    assert sc.converged(), sc.diff()
    assert sc.target.trashed().get("f") is not None, "the old file f was not trashed"


# --- permissions ---------------------------------------------------------------------------------


@pytest.mark.parametrize("remote", REMOTES)
def test_edit_then_chmod_000_then_644_is_mirrored(scenario, remote) -> None:
    if os.geteuid() == 0 and not shutil.which("setpriv"):
        pytest.skip("running as root without setpriv: chmod 000 files stay readable")
    sc = scenario(remote)
    (sc.src / "a.txt").write_text("v1\n")
    d = sc.start(prefix=without_read_override())
    sc.quiet(d)
    (sc.src / "a.txt").write_text("v2, then locked\n")
    (sc.src / "a.txt").chmod(0)  # inside the quiet window
    wait_for(lambda: "cannot read" in d.log, what="the read failure")
    time.sleep(0.5)
    (sc.src / "a.txt").chmod(0o644)  # after it: nothing else changes
    sc.quiet(d, timeout=15, first_wait=1.0)
    assert sc.converged(), sc.diff()


# --- folder moves --------------------------------------------------------------------------------


@pytest.mark.parametrize("remote", REMOTES)
def test_folder_move_then_edit_makes_no_conflict_copy(scenario, remote) -> None:
    sc = scenario(remote)
    (sc.src / "models").mkdir()
    (sc.src / "models/net.py").write_text("v1\n")
    (sc.src / "models/util.py").write_text("u\n")
    d = sc.start()
    sc.quiet(d)
    os.rename(sc.src / "models", sc.src / "nets")
    sc.quiet(d)
    for i in range(2):
        (sc.src / "nets/net.py").write_text(f"v{i + 2}\n")
        sc.quiet(d)
    kept = [p for p in sc.target.live() if CONFLICT.search(p)]
    assert kept == [], "syncd took its own moved file for someone else's"
    assert sc.converged(), sc.diff()
    st = d.status()
    assert st is not None and st["projects"][0]["mirror"]["conflicts"] == 0

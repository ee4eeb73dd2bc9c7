"""Hostile: deletions lost inside the quiet window, and the mass-deletion guard (issue #8).

The README: "A local deletion moves the target copy to the target's trash" and
"If the project folder is missing or empty while files were mirrored from it …
the project pauses and nothing is trashed".  Each sequence below happens within
one quiet window (`delay: 1s` here, so the timing is not a race), then the test
waits for `idle, pending 0` and looks at the target.
"""

from __future__ import annotations

import os
import time

import pytest

from tests.chaos.targets import REMOTES

pytest_plugins = ["tests.chaos.fixtures"]  # the drive and scenario fixtures
pytestmark = pytest.mark.e2e  # every test here starts syncd as a subprocess

pytestmark = pytest.mark.e2e  # every test here starts syncd as a subprocess


@pytest.mark.parametrize("remote", REMOTES)
def test_rename_then_delete_in_the_quiet_window_trashes_the_original(scenario, remote) -> None:
    sc = scenario(remote, delay="1s")
    (sc.src / "a.txt").write_text("a\n")
    (sc.src / "other.txt").write_text("o\n")
    d = sc.start()
    sc.quiet(d)
    os.rename(sc.src / "a.txt", sc.src / "a2.txt")
    (sc.src / "a2.txt").unlink()
    sc.quiet(d, first_wait=1.5)
    assert sc.converged(), sc.diff()
    assert "a.txt" in sc.target.trashed()


@pytest.mark.parametrize("remote", REMOTES)
def test_editor_save_then_delete_in_the_quiet_window_trashes_the_file(scenario, remote) -> None:
    sc = scenario(remote, delay="1s")
    (sc.src / "b.txt").write_text("b v1\n")
    (sc.src / "other.txt").write_text("o\n")
    d = sc.start()
    sc.quiet(d)
    tmp = sc.src / ".b.txt.save-tmp"  # what editors write before renaming over the file
    tmp.write_text("b v2\n")
    os.rename(tmp, sc.src / "b.txt")
    (sc.src / "b.txt").unlink()
    sc.quiet(d, first_wait=1.5)
    assert sc.converged(), sc.diff()
    assert "b.txt" in sc.target.trashed()


@pytest.mark.parametrize("remote", REMOTES)
def test_plain_delete_goes_to_the_trash(scenario, remote) -> None:
    """The baseline the cases above break: a delete alone is trashed."""
    sc = scenario(remote, delay="1s")
    (sc.src / "a.txt").write_text("a\n")
    (sc.src / "other.txt").write_text("o\n")
    d = sc.start()
    sc.quiet(d)
    (sc.src / "a.txt").unlink()
    sc.quiet(d, first_wait=1.5)
    assert sc.converged(), sc.diff()
    assert "a.txt" in sc.target.trashed()


@pytest.mark.parametrize("remote", REMOTES)
def test_small_project_emptied_except_git_pauses_instead_of_trashing(scenario, remote) -> None:
    sc = scenario(remote)
    (sc.src / ".git").mkdir()
    (sc.src / ".git/HEAD").write_text("ref: refs/heads/main\n")
    for i in range(10):
        (sc.src / f"f{i}.py").write_text(f"# {i}\n")
    d = sc.start()
    sc.quiet(d)
    assert len(sc.target.live()) == 10
    for i in range(10):  # an `rm *` in the wrong terminal
        (sc.src / f"f{i}.py").unlink()
    time.sleep(2.0)
    sc.quiet(d, states=("idle", "paused"))
    assert len(sc.target.live()) == 10, "every file was trashed without asking"
    st = d.status()
    assert st is not None
    p = st["projects"][0]
    assert p["state"] == "paused" and "--confirm-deletes" in (p["reason"] or ""), p


@pytest.mark.parametrize("remote", REMOTES)
def test_project_folder_moved_away_pauses_flush_fails_and_moving_it_back_resumes(
    scenario, remote
) -> None:
    """`mv p p-away` while the daemon runs: no event says so (the watch follows the moved
    folder), so before this the project stayed `idle` and `syncd flush` said every edit was
    on the target. Now: paused with the reason, flush fails with it, nothing trashed; moved
    back, the project resumes and an edit made while away is mirrored."""
    sc = scenario(remote)
    for i in range(5):
        (sc.src / f"f{i}.py").write_text(f"# {i}\n")
    d = sc.start()
    sc.quiet(d)
    away = sc.src.with_name(sc.src.name + "-away")
    os.rename(sc.src, away)

    def paused() -> dict:
        st = d.status()
        assert st is not None
        return st["projects"][0]

    deadline = time.monotonic() + 20
    while paused()["state"] != "paused":
        assert time.monotonic() < deadline, paused()
        time.sleep(0.2)
    assert "is missing" in paused()["reason"]
    flush = sc.cli("flush", "--timeout", "5")
    assert flush.returncode != 0 and "missing" in flush.stdout + flush.stderr, flush
    assert len(sc.target.live()) == 5 and not sc.target.trashed()

    (away / "f0.py").write_text("# edited while away\n")
    os.rename(away, sc.src)
    sc.quiet(d, timeout=30)
    assert sc.converged(), sc.diff()
    assert not sc.target.trashed()
    assert sc.cli("flush", "--timeout", "20").returncode == 0
    assert d.stop() == 0

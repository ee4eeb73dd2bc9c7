"""Hostile: projects and targets that overlap must be refused at config load (issue #8).

"overlap checks on the resolved, real paths of every project and every local:
target (and duplicate gdrive: targets) at config load, exit 2 with a sentence."
Each case is tried with `syncd sync --once` (the engine without a daemon) and
`syncd run`; neither may touch a file.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.chaos.control import cli, syncd_env, write_config

pytestmark = pytest.mark.e2e  # every test here starts syncd as a subprocess


def mirror(name: str, path: Path, to: str) -> dict:
    path.mkdir(parents=True, exist_ok=True)
    return {"name": name, "path": str(path), "mirror": {"to": to, "delay": "100ms"}}


def refused(cfg: Path, *args: str) -> None:
    """`syncd ARGS -c cfg` exits 2 with one sentence, without a traceback."""
    r = cli(*args, "-c", str(cfg), env=syncd_env(), timeout=20)
    assert r.returncode == 2, f"exit {r.returncode}; stdout={r.stdout!r} stderr={r.stderr!r}"
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr


def test_target_that_contains_another_project_is_refused(tmp_path: Path, home: Path) -> None:
    shared = tmp_path / "shared"
    a = mirror("a", tmp_path / "a", f"local:{shared}")
    b = mirror("b", shared / "b", f"local:{tmp_path / 'b-mirror'}")
    (tmp_path / "a/b").mkdir()
    (tmp_path / "a/b/train.py").write_text("a's train.py\n")
    (shared / "b/train.py").write_text("b's train.py, the only copy\n")
    cfg = write_config(tmp_path / "c.yaml", [a, b])
    try:
        refused(cfg, "sync", "--once")
    finally:
        assert (shared / "b/train.py").read_text() == "b's train.py, the only copy\n", (
            "syncd rewrote another project's source file"
        )
        assert sorted(os.listdir(shared / "b")) == ["train.py"]
    refused(cfg, "run")


def test_two_projects_with_one_local_target_are_refused(tmp_path: Path, home: Path) -> None:
    target = f"local:{tmp_path / 'one-target'}"
    cfg = write_config(
        tmp_path / "c.yaml",
        [mirror("a", tmp_path / "a", target), mirror("b", tmp_path / "b", target)],
    )
    (tmp_path / "a/x.txt").write_text("a\n")
    (tmp_path / "b/x.txt").write_text("b\n")
    refused(cfg, "sync", "--once")


def test_two_projects_with_one_drive_folder_are_refused(tmp_path: Path, home: Path) -> None:
    cfg = write_config(
        tmp_path / "c.yaml",
        [
            mirror("a", tmp_path / "a", "gdrive:/syncd/shared"),
            mirror("b", tmp_path / "b", "gdrive://syncd/shared/"),  # the same folder, spelled apart
        ],
        drive={"endpoint": "http://127.0.0.1:9/", "credentials": str(tmp_path / "nocreds.json")},
    )
    refused(cfg, "sync", "--once")


def test_target_reached_through_a_symlink_into_another_project_is_refused(
    tmp_path: Path, home: Path
) -> None:
    b = mirror("b", tmp_path / "b", f"local:{tmp_path / 'b-mirror'}")
    os.symlink(tmp_path / "b", tmp_path / "alias")
    a = mirror("a", tmp_path / "a", f"local:{tmp_path / 'alias'}")  # = project b's folder
    (tmp_path / "a/a.txt").write_text("a\n")
    cfg = write_config(tmp_path / "c.yaml", [a, b])
    try:
        refused(cfg, "sync", "--once")
    finally:
        assert not (tmp_path / "b/a.txt").exists(), "syncd wrote into another project's folder"


def test_target_inside_its_own_project_is_refused(tmp_path: Path, home: Path) -> None:
    """Already refused today (the baseline the cases above extend)."""
    a = mirror("a", tmp_path / "a", f"local:{tmp_path / 'a' / 'mirror'}")
    refused(write_config(tmp_path / "c.yaml", [a]), "sync", "--once")

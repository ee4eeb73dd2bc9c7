"""End-to-end: what the mirror says while it waits and while it works (issue #11, "Logs a person
can read"): a wait for credentials is logged once and shows how many files wait; each batch is
one INFO line; each state change one line.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import run_cli, wait_for, write_config
from tests.fakes.drive_server import FakeDrive
from tests.gdrive_support import drive_section, write_credentials

pytestmark = pytest.mark.e2e  # every test here runs syncd as a subprocess


@pytest.fixture
def fake(home: Path) -> Iterator[FakeDrive]:
    with FakeDrive() as drive:
        yield drive
    assert drive.internal_errors == []


def status(cfg: Path) -> dict:
    r = run_cli("status", "--json", "-c", str(cfg))
    return json.loads(r.stdout)["projects"][0]


def test_a_wait_for_credentials_is_logged_once_and_counts_the_waiting_files(
    tmp_path: Path, home: Path, fake: FakeDrive, run_daemon
) -> None:
    src = tmp_path / "p"
    src.mkdir()
    for i in range(3):
        (src / f"f{i}.py").write_text(f"{i}\n")
    creds = home / ".config/syncd/drive-credentials.json"  # not there yet: `syncd auth drive`
    project = {"name": "p", "path": str(src), "mirror": {"to": "gdrive:/syncd/p", "delay": "100ms"}}
    cfg = write_config(tmp_path / "c.yaml", [project], drive=drive_section(fake, creds))
    d = run_daemon(cfg)
    wait_for(lambda: status(cfg)["state"] == "auth_required", what="auth_required")
    (src / "later.py").write_text("made while waiting\n")
    time.sleep(12)  # several retries (the recovery backoff starts below a second)
    p = status(cfg)
    assert p["state"] == "auth_required" and "syncd auth drive" in (p["reason"] or ""), p
    assert p["mirror"]["pending"] >= 4, p  # the three files, and the one made meanwhile
    waits = [ln for ln in d.log.splitlines() if "auth_required" in ln]
    assert len(waits) == 1, waits
    after = d.log.split("auth_required", 1)[1].splitlines()[1:]
    assert not [ln for ln in after if "→" in ln and "mirroring" not in ln], "a change per retry"
    write_credentials(fake, creds)  # `syncd auth drive`: picked up at the next retry
    wait_for(lambda: status(cfg)["state"] == "idle", timeout=60, what="mirrored after auth")
    assert status(cfg)["mirror"]["files"] == 4
    assert d.stop() == 0


def test_each_batch_is_one_summary_line_and_each_change_one_line(
    tmp_path: Path, home: Path, run_daemon
) -> None:
    src, dst = tmp_path / "p", tmp_path / "p-mirror"
    src.mkdir()
    for i in range(3):
        (src / f"f{i}.py").write_text(f"{i}\n")
    (src / "old.py").write_text("old\n")
    (src / "gone.py").write_text("gone\n")
    project = {"name": "p", "path": str(src), "mirror": {"to": f"local:{dst}", "delay": "300ms"}}
    cfg = write_config(tmp_path / "c.yaml", [project])
    d = run_daemon(cfg)
    d.wait_log("p: 5 files up in ")
    (src / "new.py").write_text("new\n")
    (src / "f0.py").write_text("changed\n")
    (src / "old.py").rename(src / "renamed.py")
    (src / "gone.py").unlink()
    d.wait_log("p: 2 files up, 1 moved, 1 trashed in ")
    summaries = [ln for ln in d.log.splitlines() if re.search(r"p: .* in \d+\.\d s$", ln)]
    assert len(summaries) == 2, summaries
    assert all(" INFO " in ln for ln in summaries)
    changes = [ln for ln in d.log.splitlines() if " → " in ln and "mirroring" not in ln]
    assert all(re.search(r"\(after \d+\.\d s \w+\)$", ln) for ln in changes), changes
    assert "uploaded" not in d.log and "deleted" not in d.log  # per-file lines are DEBUG
    assert d.stop() == 0

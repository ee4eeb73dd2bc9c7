"""End-to-end: ``kill -9`` after Drive accepted an update and before syncd recorded it.

The chaos test's seed 59, made deterministic: Drive stores syncd's update of two
files but holds the answers back, the daemon is killed while it waits, then one
file is edited again and the other deleted while syncd is down.  At the next
start both updates on Drive are syncd's own (recorded before they were sent,
remotes/gdrive/uploads.py ``intend_update``): the edit goes over the same file
and the deletion trashes it.  Before, the first became a conflict copy nobody
caused and the second was kept as "changed on the remote".
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import tree, wait_for, write_config
from tests.fakes.drive_server import FakeDrive
from tests.gdrive_support import drive_section, files_below, write_credentials

pytestmark = pytest.mark.e2e


@pytest.fixture
def fake(home: Path) -> Iterator[FakeDrive]:
    with FakeDrive() as drive:
        yield drive
    assert drive.internal_errors == []


def test_updates_landed_before_a_kill_are_syncds_own_after_restart(
    tmp_path: Path, home: Path, fake: FakeDrive, run_daemon
) -> None:
    src = tmp_path / "p"
    (src / "src/utils").mkdir(parents=True)
    (src / "notes").mkdir()
    model, notes = src / "src/utils/model10.json", src / "notes/layer8.py"
    model.write_text('{"v": 1}\n')
    notes.write_text("x = 1\n")
    creds = write_credentials(fake, home / ".config/syncd/drive-credentials.json")
    project = {
        "name": "p",
        "path": str(src),
        "mirror": {"to": "gdrive:/syncd/p", "delay": "100ms", "workers": 2},
    }
    cfg = write_config(tmp_path / "c.yaml", [project], drive=drive_section(fake, creds))
    d = run_daemon(cfg)
    wait_for(lambda: files_below(fake) == tree(src), what="first mirror")
    ids = {p: fake.find(f"syncd/p/{p}")["id"] for p in tree(src)}

    # Updates (PUT) are stored by Drive, their answers held back; the daemon dies waiting.
    fake.inject(delay_response=60, count=100, method="PUT", path_contains="/upload/")
    model.write_text('{"v": 2}\n')
    notes.write_text("x = 2\n")
    wait_for(lambda: files_below(fake) == tree(src), what="both updates stored on Drive")
    d.kill()
    time.sleep(0.3)  # whatever the fake was still handling is finished
    fake.clear_faults()

    model.write_text('{"v": 3}\n')  # edited again while syncd is down
    notes.unlink()  # and deleted
    d2 = run_daemon(cfg)
    try:
        wait_for(lambda: files_below(fake) == tree(src), timeout=30, what="convergence")
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{files_below(fake)}\n--- daemon log:\n{d2.log}") from None
    assert fake.find("syncd/p/src/utils/model10.json")["id"] == ids["src/utils/model10.json"]
    assert ids["notes/layer8.py"] in {i["id"] for i in fake.trashed()}  # trashed, not kept
    assert "conflict" not in d2.log and "changed on the remote" not in d2.log
    assert d2.stop() == 0

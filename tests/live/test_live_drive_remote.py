"""The remote conformance suite (tests/test_remote_conformance.py) against a real Google Drive.

Every case runs unchanged, as rclone runs its fstests against real remotes: only
the ``target`` fixture differs.  What cannot be staged on a real service is
honest here: a lost answer is not injected (the case then tests a plain
create), and "another client" is the same OAuth app (so its files are
visible even under drive.file).  Run with:

    SYNCD_LIVE_DRIVE_CREDENTIALS=~/.config/syncd/drive-credentials.json \\
        .venv/bin/pytest tests/live -v
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import tests.test_remote_conformance as suite
from syncd.config import DriveConfig, parse_address
from syncd.db.statedb import StateDB
from syncd.remotes.gdrive.backend import GDriveRemote
from tests.live.live_drive import SKIP_REASON, LiveDrive, credentials_path

pytestmark = pytest.mark.skipif(credentials_path() is None, reason=SKIP_REASON)

# Collect every conformance case here too: pytest runs them with this module's `target`.
for _name in dir(suite):
    if _name.startswith("test_"):
        globals()[_name] = getattr(suite, _name)


@pytest.fixture
def target(
    live_cfg: DriveConfig, live: LiveDrive, live_folder: str, tmp_path: Path, home: Path
) -> Iterator[suite.Target]:
    db = StateDB(tmp_path / "state.db")
    address = parse_address(f"gdrive:/{live_folder}", tmp_path)

    def make() -> GDriveRemote:
        return GDriveRemote(address, live_cfg, db, "p")

    remote = make()
    remote.check(create=True)
    root_id = remote.ns.root().id

    t = suite.Target(
        remote,
        lambda: live.files(live_folder),
        lambda name, digest: live.trashed_copy(root_id, name, digest),
        lambda path, data: live.write(f"{live_folder}/{path}", data),
        lambda: None,  # a real service cannot be told to lose an answer
        make,
        lambda: live.trash(live_folder),
        live_cfg.scope == "full",
        True,  # "another client" is this same app: visible under drive.file too
    )
    yield t
    remote.close()
    db.close()

"""One daemon end to end against a real Google Drive, under the default drive.file scope.

The real ``syncd run`` mirrors a project into a fresh folder of the account's
My Drive (``syncd-live/<run>/daemon``, trashed when the run ends): first
mirror, an edit, a rename, a deletion to Drive's trash, a file ending in CR.
What arrived is read back through the Drive API, never taken from syncd.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from syncd.config import DriveConfig
from tests.conftest import DaemonProcess, run_cli, tree, wait_for, write_config
from tests.live.live_drive import SKIP_REASON, LiveDrive, credentials_path

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(credentials_path() is None, reason=SKIP_REASON),
]
PATIENCE = 180.0  # seconds: a real network, Drive's rate limits, a cold start


def test_daemon_mirrors_into_a_real_drive(
    live_cfg: DriveConfig,
    live: LiveDrive,
    run_folder: str,
    tmp_path: Path,
    home: Path,
    run_daemon: Callable[..., DaemonProcess],
) -> None:
    folder = f"{run_folder}/daemon"
    src = tmp_path / "p"
    (src / "models").mkdir(parents=True)
    (src / "models/net.py").write_text("class Net: ...\n")
    (src / "train.py").write_text("print('v1')\n")
    (src / "ends-in-cr.txt").write_bytes(b"a line\r")
    (src / ".env").write_text("SECRET=1\n")  # never leaves the machine
    project = {"name": "p", "path": str(src), "mirror": {"to": f"gdrive:/{folder}"}}
    drive = {
        "credentials": str(live_cfg.credentials),
        "scope": live_cfg.scope,
        "requests_per_second": live_cfg.requests_per_second,
        "endpoint": live_cfg.endpoint,
    }
    cfg = write_config(tmp_path / "c.yaml", [project], drive=drive)

    d = run_daemon(cfg)

    def mirrored() -> bool:
        assert d.proc is not None and d.proc.poll() is None, f"syncd exited:\n{d.log}"
        want = {p: h for p, h in tree(src).items() if p != ".env"}
        return live.files(folder) == want

    wait_for(mirrored, PATIENCE, "first mirror on the real Drive")
    assert ".env" not in live.files(folder)

    train_id = live.find(f"{folder}/train.py")["id"]
    (src / "train.py").write_text("print('v2')\n")
    wait_for(mirrored, PATIENCE, "an edit")
    os.rename(src / "train.py", src / "models/main.py")
    wait_for(mirrored, PATIENCE, "a rename into a folder")
    assert live.find(f"{folder}/models/main.py")["id"] == train_id  # moved, not re-uploaded

    (src / "models/net.py").unlink()
    wait_for(mirrored, PATIENCE, "a deletion")
    root_id = live.find(folder)["id"]
    assert live.trashed_copy(root_id, "net.py", hashlib.md5(b"class Net: ...\n").hexdigest())

    status = json.loads(run_cli("status", "--json", "-c", str(cfg)).stdout)["projects"][0]
    assert status["mirror"]["conflicts"] == 0 and status["mirror"]["last_error"] is None
    assert d.stop() == 0

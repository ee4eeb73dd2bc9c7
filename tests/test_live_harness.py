"""The opt-in live suite (tests/live/) run against the fake Drive: proof that the harness works.

The live suite cannot run here (no Google account).  Pointed at FakeDrive
through its hidden endpoint variable, it must pass as it would on a real
Drive, and leave nothing behind but the trash.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.conftest import REPO, syncd_env
from tests.fakes.drive_server import APP, FakeDrive
from tests.gdrive_support import write_credentials
from tests.live.live_drive import ENDPOINT_ENV, ENV, RPS_ENV


@pytest.mark.e2e
def test_the_live_suite_passes_against_the_fake_and_cleans_up(tmp_path: Path, home: Path) -> None:
    with FakeDrive() as fake:
        fake.set_write_limit(rate=100.0, burst=50.0)  # the harness is tested, not Drive's pace
        creds = write_credentials(fake, tmp_path / "creds" / "drive-credentials.json")
        before = creds.read_bytes()
        env = syncd_env({ENV: str(creds), ENDPOINT_ENV: fake.url, RPS_ENV: "200"})
        # A short base: the daemon's control socket lives below it (AF_UNIX paths are short).
        base = tempfile.mkdtemp(prefix="syncd-live-")
        drive_live = sorted(
            str(p.relative_to(REPO)) for p in (REPO / "tests/live").glob("test_live_drive*.py")
        )
        command = [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-rs",
            "-p",
            "no:cacheprovider",
            *drive_live,
        ]
        try:
            run = subprocess.run(
                [*command, "--basetemp", base],
                cwd=REPO,
                env=env,
                capture_output=True,
                text=True,
                timeout=600,
            )
        finally:
            shutil.rmtree(base, ignore_errors=True)
        assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
        assert " passed" in run.stdout
        # The only skip allowed is the one a real Drive would take as well: a test of what
        # targets with unique names do (Drive's titles may repeat).
        skips = [ln for ln in run.stdout.splitlines() if ln.startswith("SKIPPED")]
        assert all("titles may repeat" in ln for ln in skips), skips
        top = fake.find("syncd-live", app=APP)
        assert top is not None
        runs = fake.children(top["id"], include_trashed=True)
        assert len(runs) == 1 and runs[0]["labels"]["trashed"]  # everything went to the trash
        assert fake.tree(top["id"]) == {}
        assert creds.read_bytes() == before  # the maintainer's credentials file is untouched
        assert fake.count(path_contains="/files/root") == 0

"""Fixtures of the opt-in live suite: real credentials, one fresh folder per run, trashed after.

Skipped unless SYNCD_LIVE_DRIVE_CREDENTIALS names a credentials file (README,
"Live tests"); nothing here runs, not even a network call, without it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from syncd.config import DriveConfig
from tests.live.live_drive import LiveDrive, credentials_path, live_config, private_copy, run_id


@pytest.fixture(scope="session")
def live_cfg(tmp_path_factory: pytest.TempPathFactory) -> DriveConfig:
    source = credentials_path()
    if source is None:
        pytest.skip("SYNCD_LIVE_DRIVE_CREDENTIALS is not set")
    return live_config(private_copy(source, tmp_path_factory.mktemp("live-creds")))


@pytest.fixture(scope="session")
def live(live_cfg: DriveConfig) -> LiveDrive:
    return LiveDrive(live_cfg)


@pytest.fixture(scope="session")
def run_folder(live: LiveDrive) -> Iterator[str]:
    """``syncd-live/<run id>``: every test works below it; it goes to the trash at the end."""
    path = f"syncd-live/{run_id()}"
    yield path
    live.trash(path)


@pytest.fixture
def live_folder(run_folder: str, request: pytest.FixtureRequest) -> str:
    """This test's own folder below the run's (made by syncd when it first syncs)."""
    name = request.node.name.replace("[", "-").replace("]", "").replace("/", "-")
    return f"{run_folder}/{name}"


@pytest.fixture
def live_tmp(tmp_path: Path) -> Path:
    return tmp_path

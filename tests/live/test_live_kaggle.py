"""Live: one snapshot and one new version of a private throwaway dataset on real Kaggle.

Skipped unless SYNCD_LIVE_KAGGLE is set. It uses the Kaggle credentials of whoever runs
it, found the way the kaggle client finds them (an API token in KAGGLE_API_TOKEN or
~/.kaggle/access_token, or a legacy ~/.kaggle/kaggle.json / KAGGLE_USERNAME+KAGGLE_KEY):

    SYNCD_LIVE_KAGGLE=1 .venv/bin/pytest -q tests/live/test_live_kaggle.py

It creates `<you>/syncd-live-<random>` (private, a few hundred bytes), waits for Kaggle to
process two versions (a minute or two each), checks them, and deletes the dataset at the
end, even when a step fails. Nothing else in the account is touched.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from syncd.config import KaggleConfig, ProjectConfig, SnapshotConfig
from syncd.db.statedb import StateDB
from syncd.remotes.kaggle.client import KaggleDatasets
from syncd.snapshot.service import SnapshotService

pytestmark = [
    pytest.mark.skipif(
        not os.environ.get("SYNCD_LIVE_KAGGLE"),
        reason="live Kaggle test: set SYNCD_LIVE_KAGGLE=1 (uses your Kaggle credentials)",
    ),
    pytest.mark.timeout(1800),
]


@pytest.fixture
def session() -> KaggleDatasets:
    return KaggleDatasets(KaggleConfig())


@pytest.fixture
def throwaway(session: KaggleDatasets) -> Iterator[str]:
    """A dataset ref nobody uses, deleted afterwards whatever happened."""
    ref = f"{session.username}/syncd-live-{secrets.token_hex(4)}"
    yield ref

    from kagglesdk.datasets.types.dataset_api_service import ApiDeleteDatasetRequest

    request = ApiDeleteDatasetRequest()
    request.owner_slug, request.dataset_slug = ref.split("/")
    if session.status(ref) is not None:
        session.call(
            f"deleting {ref}", lambda c: c.datasets.dataset_api_client.delete_dataset(request)
        )


def file_names(session: KaggleDatasets, ref: str) -> set[str]:
    from kagglesdk.datasets.types.dataset_api_service import ApiListDatasetFilesRequest

    request = ApiListDatasetFilesRequest()
    request.owner_slug, request.dataset_slug = ref.split("/")
    request.page_size = 200
    listed = session.call(
        f"listing {ref}", lambda c: c.datasets.dataset_api_client.list_dataset_files(request)
    )
    return {f.name for f in listed.dataset_files}


def test_a_snapshot_then_a_version_on_real_kaggle(
    session: KaggleDatasets, throwaway: str, tmp_path: Path
) -> None:
    root = tmp_path / "project"
    (root / "models").mkdir(parents=True)
    (root / "train.py").write_text("print('live test v1')\n")
    (root / "models" / "net.py").write_text("class Net: ...\n")
    (root / ".env").write_text("SECRET=never-uploaded\n")
    past = 1_700_000_000  # settled long ago: no waiting for quiet files
    for path in (root / "train.py", root / "models" / "net.py", root / ".env"):
        os.utime(path, (past, past))
    title = f"syncd live {throwaway.rsplit('-', 1)[-1]}"
    project = ProjectConfig("live", root, None, (), SnapshotConfig(dataset=throwaway, title=title))
    db = StateDB(tmp_path / "state.db")
    service = SnapshotService(project, db, KaggleConfig())
    try:
        first = service.take("manual", "live test v1", wait=True)
        assert (first.status, first.version) == ("ready", 1), first.message
        (root / "train.py").write_text("print('live test v2')\n")
        os.utime(root / "train.py", (past + 1, past + 1))
        second = service.take("manual", "live test v2", wait=True)
        assert (second.status, second.version) == ("ready", 2), second.message
    finally:
        service.close()
        db.close()

    assert session.current(throwaway)[0] == 2
    names = file_names(session, throwaway)
    assert {"train.py", "syncd-snapshot.json"} <= names
    assert ".env" not in names  # secrets stay home

"""The Kaggle datasets client driven over HTTP against the fake: the real client, syncd's deadlines,
retries, outcome checks and credential messages."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from email.utils import formatdate
from pathlib import Path

import pytest

from syncd.config import KaggleConfig, SnapshotConfig
from syncd.db.statedb import StateDB
from syncd.errors import ConfigError, TransientError
from syncd.remotes.kaggle.client import KaggleDatasets
from syncd.remotes.kaggle.rules import DatasetMetadata, KaggleError, dataset_metadata
from syncd.snapshot.service import SnapshotService
from tests.fakes.kaggle_server import REFUSED_VERSION_MESSAGE, FakeKaggle

from .conftest import DAEMON_SRC, REPO
from .kaggle_support import (
    DATASET,
    FAST,
    kaggle_config,
    make_project,
    project_config,
)

META = DatasetMetadata("alice", "cifar-code", "CIFAR code", "CC0-1.0", True)


def staged_folder(tmp_path: Path, version: str = "1") -> Path:
    folder = tmp_path / f"staged-{version}"
    for rel, text in {
        "train.py": f"print({version})\n",
        "sub/a.py": "A = 1\n",
        "sub/deep/b.bin": "b" * 70_000,
    }.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_text(text)
    META.write(folder)
    return folder


def rpcs(fake: FakeKaggle) -> list[tuple[str, int | None]]:
    return [(r.rpc, r.status) for r in fake.requests]


def test_create_then_version_through_the_configured_endpoint(
    fake: FakeKaggle, kaggle_env: Path, tmp_path: Path
) -> None:
    from kagglesdk.kaggle_env import KaggleEnv, _env_to_endpoint

    client = KaggleDatasets(kaggle_config(fake))

    first = client.publish(staged_folder(tmp_path, "1"), META, "notes 1", wait=True)
    second = client.publish(staged_folder(tmp_path, "2"), META, "notes 2", wait=True)

    assert (first.status, first.version, first.created) == ("ready", 1, True)
    assert (second.status, second.version, second.created) == ("ready", 2, False)
    assert second.url == f"{fake.url}/datasets/{DATASET}"
    ds = fake.dataset(DATASET)
    assert (ds.title, ds.license_name, ds.is_private) == ("CIFAR code", "CC0-1.0", True)
    v2 = ds.versions[1]
    assert v2.notes == "notes 2" and v2.files["train.py"] == b"print(2)\n"
    assert set(v2.files) == {"train.py", "sub/a.py", "sub/deep/b.bin"}  # subfolders zipped
    # The process-wide endpoint table was not touched: the setting is per client.
    assert _env_to_endpoint[KaggleEnv.PROD] == "https://api.kaggle.com"
    names = [r.body["name"] for r in fake.requests if r.rpc == "StartBlobUpload"]
    assert sorted(names[:2]) == ["sub.zip", "train.py"]


def test_a_new_version_waits_for_the_previous_one(
    fake: FakeKaggle, kaggle_env: Path, tmp_path: Path
) -> None:
    fake.processing_polls = 4
    client = KaggleDatasets(kaggle_config(fake))
    pending = client.publish(staged_folder(tmp_path, "1"), META, "v1", wait=False)
    assert (pending.status, pending.version) == ("pending", None)

    done = client.publish(staged_folder(tmp_path, "2"), META, "v2", wait=True)

    assert (done.status, done.version) == ("ready", 2)
    calls = rpcs(fake)
    # Never refused (Kaggle refuses a version while the first one processes): it waited.
    assert ("CreateDatasetVersion", 403) not in calls
    assert [v.status for v in fake.dataset(DATASET).versions] == ["ready", "ready"]


def test_429_and_503_on_status_and_create_calls_are_retried(
    fake: FakeKaggle, kaggle_env: Path, tmp_path: Path
) -> None:
    client = KaggleDatasets(kaggle_config(fake))
    fake.inject(status=429, count=2, rpc="GetDatasetStatus", retry_after=0)
    fake.inject(status=503, count=1, rpc="CreateDataset")
    assert client.publish(staged_folder(tmp_path, "1"), META, "", wait=True).version == 1

    fake.inject(status=503, count=2, rpc="GetDatasetStatus")
    fake.inject(status=429, count=1, rpc="CreateDatasetVersion", retry_after=0)
    fake.inject(status=503, count=1, rpc="CreateDatasetVersion")
    fake.inject(status=503, count=1, rpc="StartBlobUpload")
    assert client.publish(staged_folder(tmp_path, "2"), META, "", wait=True).version == 2

    calls = rpcs(fake)
    assert [s for r, s in calls if r == "CreateDataset"] == [503, 200]
    assert [s for r, s in calls if r == "CreateDatasetVersion"] == [429, 503, 200]
    assert calls[:3] == [("GetDatasetStatus", 429)] * 2 + [("GetDatasetStatus", 404)]
    assert len(fake.dataset(DATASET).versions) == 2  # a retried create never made a third


def test_a_lost_create_reply_makes_no_second_version(
    fake: FakeKaggle, kaggle_env: Path, tmp_path: Path
) -> None:
    fake.seed_dataset(DATASET, {"old.py": b"0"})
    fake.inject(drop="after", rpc="CreateDatasetVersion")
    client = KaggleDatasets(kaggle_config(fake))

    done = client.publish(staged_folder(tmp_path), META, "lost reply", wait=True)

    assert (done.status, done.version) == ("ready", 2)
    assert [v.notes for v in fake.dataset(DATASET).versions] == ["", "lost reply"]
    assert fake.count("CreateDatasetVersion") == 1


def test_a_late_create_of_our_own_becomes_a_new_version(
    fake: FakeKaggle, kaggle_env: Path, tmp_path: Path
) -> None:
    # The first look says "no such dataset", but by the time syncd creates it, an earlier
    # create whose reply was lost has landed: "slug already in use" means a new version.
    fake.seed_dataset(DATASET, {"old.py": b"0"})
    fake.inject(status=404, rpc="GetDatasetStatus", message="Dataset not found")
    client = KaggleDatasets(kaggle_config(fake))

    done = client.publish(staged_folder(tmp_path), META, "second try", wait=True)

    assert (done.status, done.version) == ("ready", 2)
    assert [v.notes for v in fake.dataset(DATASET).versions] == ["", "second try"]
    assert fake.count("CreateDataset") == 1 and fake.count("CreateDatasetVersion") == 1


def test_a_version_refused_while_the_first_one_processes_is_retried_once_ready(
    fake: FakeKaggle, kaggle_env: Path, tmp_path: Path
) -> None:
    # kagglehub PR #182: a 403 while the FIRST version processes. syncd checks the status
    # (is something processing?) instead of reading the message, waits, and retries.
    fake.processing_polls = 3
    client = KaggleDatasets(kaggle_config(fake))
    client.publish(staged_folder(tmp_path, "1"), META, "v1", wait=False)
    files = client._upload(staged_folder(tmp_path, "2"))

    client._create(META, "v2", files, creating=False, before=None)

    assert [s for r, s in rpcs(fake) if r == "CreateDatasetVersion"] == [403, 200]
    assert [v.notes for v in fake.dataset(DATASET).versions] == ["Initial release", "v2"]


def test_a_403_with_nothing_processing_is_a_refusal(
    fake: FakeKaggle, kaggle_env: Path, tmp_path: Path
) -> None:
    fake.seed_dataset(DATASET, {"old.py": b"0"})
    fake.inject(status=403, rpc="CreateDatasetVersion", message=REFUSED_VERSION_MESSAGE)
    client = KaggleDatasets(kaggle_config(fake))

    with pytest.raises(KaggleError) as caught:
        client.publish(staged_folder(tmp_path), META, "refused", wait=True)

    assert str(caught.value).startswith(
        "Kaggle refused creating a new version of alice/cifar-code for alice: "
        "Permission 'datasets.update' was denied"
    )
    assert fake.count("CreateDatasetVersion") == 1


def test_someone_elses_dataset_is_a_clear_403(
    fake: FakeKaggle, kaggle_env: Path, tmp_path: Path
) -> None:
    fake.add_user("bob", "bobkey")
    fake.seed_dataset("bob/cifar-code", {"a": b"1"})
    theirs = DatasetMetadata("bob", "cifar-code", "CIFAR code", "CC0-1.0", False)
    client = KaggleDatasets(kaggle_config(fake))

    with pytest.raises(Exception) as caught:
        client.publish(staged_folder(tmp_path), theirs, "", wait=True)

    assert "Kaggle refused creating bob/cifar-code for alice" in str(caught.value)
    assert "owner is your Kaggle user name" in str(caught.value)


@pytest.mark.parametrize("rpc", ["GetDatasetStatus", "CreateDataset", "upload"])
def test_a_hung_call_times_out_with_a_clear_error(
    fake: FakeKaggle, kaggle_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rpc: str
) -> None:
    monkeypatch.setenv("SYNCD_KAGGLE_TIMEOUT_S", "0.4")
    monkeypatch.setenv("SYNCD_KAGGLE_RETRIES", "2")
    fake.inject(hang=True, count=2, rpc=rpc)  # as many as syncd tries
    client = KaggleDatasets(kaggle_config(fake))

    started = time.monotonic()
    with pytest.raises(TransientError) as caught:
        client.publish(staged_folder(tmp_path), META, "", wait=True)

    assert time.monotonic() - started < 4
    message = str(caught.value)
    if rpc == "upload":
        assert "Kaggle did not answer while uploading the snapshot within 0.4 s" in message
    else:
        assert "Kaggle did not answer while" in message and "within 0.4 s (2 attempts)" in message
    fake.release()
    assert client.publish(staged_folder(tmp_path), META, "", wait=True).status == "ready"


def test_an_interrupted_upload_resumes(fake: FakeKaggle, kaggle_env: Path, tmp_path: Path) -> None:
    folder = tmp_path / "one-file"
    folder.mkdir()
    META.write(folder)
    size = 100_000
    (folder / "train.py").write_bytes(os.urandom(size))
    fake.inject(status=503, rpc="upload", partial=40_000)
    client = KaggleDatasets(kaggle_config(fake))

    assert client.publish(folder, META, "", wait=True).status == "ready"

    puts = [(r.status, r.bytes_in) for r in fake.requests if r.rpc == "upload"]
    # Full PUT (503 after 40,000 bytes stored), "bytes */N" probe (308), the rest.
    assert puts == [(503, size), (308, 0), (200, size - 40_000)]
    assert fake.dataset(DATASET).versions[0].files["train.py"] == (folder / "train.py").read_bytes()
    # The resume state lived in a private folder that is gone: nothing for a stale retry.
    assert not [p for p in Path(os.environ["HOME"]).parent.glob("tmp/.kaggle-uploads-*")]


def test_failed_processing_is_reported(fake: FakeKaggle, kaggle_env: Path, tmp_path: Path) -> None:
    fake.set_dataset_outcome(DATASET, "failed")
    client = KaggleDatasets(kaggle_config(fake))
    assert client.publish(staged_folder(tmp_path), META, "", wait=True).status == "failed"


@pytest.mark.parametrize(
    ("settings", "key", "words"),
    [
        ({"title": "CIFAR"}, "snapshot.title", "'CIFAR' has 5 characters; Kaggle needs 6 to 50"),
        ({"title": "x" * 51}, "snapshot.title", "has 51 characters"),
        ({"dataset": "alice/cifar"}, "snapshot.dataset", "the slug 'cifar' has 5 characters"),
        ({"dataset": "alice/Cifar_Code"}, "snapshot.dataset", "lowercase letters, digits"),
        ({"license": "two licenses"}, "snapshot.license", "is not a license name"),
        ({"license": "MIT"}, "snapshot.license", "'MIT' is not a license name Kaggle accepts"),
    ],
)
def test_bad_metadata_is_refused_before_any_request(
    fake: FakeKaggle,
    kaggle_env: Path,
    tmp_path: Path,
    db: StateDB,
    settings: dict[str, str],
    key: str,
    words: str,
) -> None:
    service = SnapshotService(
        project_config(make_project(tmp_path / "cifar"), **settings), db, kaggle_config(fake)
    )
    with pytest.raises(ConfigError) as caught:
        service.take("manual")
    assert str(caught.value).startswith(f"cifar: {key}: ") and words in str(caught.value)
    assert fake.requests == [] and service.history() == []
    assert service.status_block()["status"] == "error"


def test_default_title_is_the_slug() -> None:
    meta = dataset_metadata("p", SnapshotConfig(dataset="alice/cifar-code"))
    assert (meta.ref, meta.title, meta.license, meta.private) == (
        DATASET,
        "cifar-code",
        "other",
        True,
    )


def test_importing_the_client_prints_nothing(tmp_path: Path) -> None:
    home = tmp_path / "empty-home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAGGLE_")}
    env.update(HOME=str(home), PYTHONPATH=f"{DAEMON_SRC}{os.pathsep}{REPO}")
    code = (
        "import sys, syncd.remotes.kaggle.session as k\n"
        "k.client_modules()\n"
        "# kaggle/__init__ would have put a KaggleApi instance here, after authenticating\n"
        "assert type(sys.modules['kaggle'].api).__name__ == 'module'\n"
        "print('done', file=sys.stderr)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "" and done.stderr.strip() == "done"


def test_endpoint_setting_reaches_the_fake_without_a_patch(
    fake: FakeKaggle, kaggle_env: Path
) -> None:
    fake.seed_dataset(DATASET, {"a.py": b"1"})
    client = KaggleDatasets(KaggleConfig(endpoint=fake.url + "/"))
    assert client.status(DATASET) == "ready"
    assert client.status("alice/missing-one") is None
    assert fake.requests[-1].path == "/v1/datasets.DatasetApiService/GetDatasetStatus"


def test_a_404_right_after_a_publish_is_pending_not_failed(
    fake: FakeKaggle, kaggle_env: Path, tmp_path: Path
) -> None:
    # kaggle-cli #890: a new dataset or version may answer 404 for a while.
    fake.fresh_404_polls = 3
    client = KaggleDatasets(kaggle_config(fake))

    first = client.publish(staged_folder(tmp_path, "1"), META, "v1", wait=True)
    second = client.publish(staged_folder(tmp_path, "2"), META, "v2", wait=True)

    assert (first.status, first.version) == ("ready", 1)
    assert (second.status, second.version) == ("ready", 2)
    assert ("GetDatasetStatus", 404) in rpcs(fake) and ("GetDataset", 404) in rpcs(fake)
    assert [v.notes for v in fake.dataset(DATASET).versions] == ["Initial release", "v2"]


def test_a_404_that_outlasts_the_grace_period_is_failed(
    fake: FakeKaggle, kaggle_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SYNCD_KAGGLE_PENDING_GRACE_S", "0.3")
    fake.fresh_404_polls = 10_000
    client = KaggleDatasets(kaggle_config(fake))

    done = client.publish(staged_folder(tmp_path), META, "", wait=True)

    assert (done.status, done.version) == ("failed", None)


def test_a_lost_create_reply_makes_no_duplicate(
    fake: FakeKaggle, kaggle_env: Path, tmp_path: Path
) -> None:
    # The create lands, its reply is lost; the retry hears "in use", and a status call
    # (riding out the fresh 404s) shows the dataset is there: ours, done.
    fake.inject(drop="after", rpc="CreateDataset")
    client = KaggleDatasets(kaggle_config(fake))

    done = client.publish(staged_folder(tmp_path), META, "first", wait=True)

    assert (done.status, done.version, done.created) == ("ready", 1, True)
    assert fake.count("CreateDataset") == 2 and fake.count("CreateDatasetVersion") == 0
    assert len(fake.dataset(DATASET).versions) == 1


def test_a_slug_taken_by_something_we_cannot_see_is_refused(
    fake: FakeKaggle, kaggle_env: Path, tmp_path: Path
) -> None:
    fake.reserve_slug(DATASET)  # e.g. a deleted dataset's slug
    client = KaggleDatasets(kaggle_config(fake))

    with pytest.raises(KaggleError) as caught:
        client.publish(staged_folder(tmp_path), META, "", wait=True)

    assert str(caught.value) == (
        'Kaggle refused creating alice/cifar-code: The requested slug "cifar-code" is already '
        "in use. (if the slug is taken, choose another snapshot.dataset)"
    )
    assert fake.count("CreateDatasetVersion") == 0


def test_retry_after_may_be_an_http_date(
    fake: FakeKaggle, kaggle_env: Path, tmp_path: Path
) -> None:
    fake.seed_dataset(DATASET, {"a.py": b"1"})
    fake.inject(status=429, rpc="GetDatasetStatus", retry_after=formatdate(time.time() + 2))
    client = KaggleDatasets(kaggle_config(fake))

    started = time.monotonic()
    assert client.status(DATASET) == "ready"

    assert time.monotonic() - started > 0.8  # the date said ~2 s (at one-second precision)
    assert [s for r, s in rpcs(fake) if r == "GetDatasetStatus"] == [429, 200]


@pytest.mark.parametrize("content_type", ["text/html; charset=UTF-8", "application/json"])
def test_html_error_pages_are_retried(
    fake: FakeKaggle, kaggle_env: Path, tmp_path: Path, content_type: str
) -> None:
    html = {"html": True, "content_type": content_type}
    fake.inject(status=429, count=2, rpc="GetDatasetStatus", retry_after=0, **html)
    fake.inject(status=503, rpc="CreateDataset", **html)
    client = KaggleDatasets(kaggle_config(fake))

    assert client.publish(staged_folder(tmp_path), META, "", wait=True).version == 1

    assert [s for r, s in rpcs(fake) if r == "CreateDataset"] == [503, 200]
    assert len(fake.dataset(DATASET).versions) == 1


def test_html_throttling_that_lasts_is_one_sentence(
    fake: FakeKaggle, kaggle_env: Path, tmp_path: Path
) -> None:
    fake.inject(status=429, count=10, rpc="GetDatasetStatus", html=True, retry_after=0)
    client = KaggleDatasets(kaggle_config(fake))

    with pytest.raises(TransientError) as caught:
        client.publish(staged_folder(tmp_path), META, "", wait=True)

    assert str(caught.value) == (
        "Kaggle is throttling requests (HTTP 429) while checking alice/cifar-code "
        "(4 attempts) (syncd tries again at the next trigger)"
    )


def test_the_live_suite_runs_against_the_fake(fake: FakeKaggle, tmp_path: Path) -> None:
    # tests/live/test_live_kaggle.py cannot reach Kaggle here; run it unchanged against the
    # fake (the production endpoint routed to it by the client's own LOCALHOST + proxy
    # settings), so it is known to work when a maintainer runs it for real.
    env = fake.client_env(home=tmp_path / "home", auth="token_file")
    env.update(FAST, SYNCD_LIVE_KAGGLE="1", PYTHONPATH=f"{DAEMON_SRC}{os.pathsep}{REPO}")
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/live"]

    done = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)

    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed" in done.stdout
    creates = [r for r in fake.requests if r.rpc == "CreateDataset"]
    assert len(creates) == 1 and creates[0].body["slug"].startswith("syncd-live-")
    assert fake.count("CreateDatasetVersion") == 1 and fake.count("DeleteDataset") == 1
    assert not fake._datasets  # cleaned up

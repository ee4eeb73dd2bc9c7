"""syncd.kaggle driven over HTTP against the fake: the real client, syncd's deadlines,
retries, outcome checks and credential messages."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from syncd.config import KaggleConfig, SnapshotConfig
from syncd.db.statedb import StateDB
from syncd.errors import AuthRequired, ConfigError, TransientError
from syncd.remotes.kaggle.client import KaggleDatasets
from syncd.remotes.kaggle.rules import DatasetMetadata, dataset_metadata
from syncd.snapshot.service import SnapshotService, check_kaggle_credentials
from tests.fakes.kaggle_server import STILL_PROCESSING_MESSAGE, FakeKaggle

from .conftest import DAEMON_SRC, REPO
from .kaggle_support import (
    DATASET,
    KEY,
    USER,
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
    assert ("CreateDatasetVersion", 403) not in calls  # never refused: it waited first
    start_v2 = next(
        i
        for i, (rpc, _) in enumerate(calls)
        if rpc == "StartBlobUpload" and i > calls.index(("CreateDataset", 200))
    )
    polls = [rpc for rpc, _ in calls[:start_v2] if rpc == "GetDatasetStatus"]
    assert len(polls) >= fake.processing_polls


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


def test_still_processing_403_is_waited_out(
    fake: FakeKaggle, kaggle_env: Path, tmp_path: Path
) -> None:
    fake.seed_dataset(DATASET, {"old.py": b"0"})
    fake.inject(status=403, rpc="CreateDatasetVersion", message=STILL_PROCESSING_MESSAGE)
    client = KaggleDatasets(kaggle_config(fake))

    done = client.publish(staged_folder(tmp_path), META, "after the 403", wait=True)

    assert (done.status, done.version) == ("ready", 2)
    assert [s for r, s in rpcs(fake) if r == "CreateDatasetVersion"] == [403, 200]


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


def test_credentials_from_the_file_are_named(
    fake: FakeKaggle, kaggle_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KAGGLE_USERNAME")
    monkeypatch.delenv("KAGGLE_KEY")
    creds = kaggle_env / ".kaggle" / "kaggle.json"
    creds.parent.mkdir(exist_ok=True)
    creds.write_text(json.dumps({"username": USER, "key": KEY}))
    creds.chmod(0o600)

    assert check_kaggle_credentials(kaggle_config(fake)) == (
        "Kaggle credentials for alice work (from ~/.kaggle/kaggle.json)"
    )
    assert rpcs(fake) == [("GetAcceleratorQuotaStatistics", 200)]


def test_missing_credentials_name_the_file_and_the_fix(
    fake: FakeKaggle, kaggle_env: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.delenv("KAGGLE_USERNAME")
    monkeypatch.delenv("KAGGLE_KEY")

    with pytest.raises(AuthRequired) as caught:
        check_kaggle_credentials(kaggle_config(fake))

    message = str(caught.value)
    assert message.startswith("no Kaggle credentials: ~/.kaggle/kaggle.json does not exist")
    assert "then run `syncd auth kaggle`" in message
    assert capsys.readouterr().out == ""  # the client's help text was not printed
    assert fake.requests == []


def test_rejected_credentials_say_so(
    fake: FakeKaggle, kaggle_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KAGGLE_KEY", "wrong")
    with pytest.raises(AuthRequired) as caught:
        check_kaggle_credentials(kaggle_config(fake))
    assert str(caught.value).startswith(
        "Kaggle rejected the credentials for alice from KAGGLE_USERNAME/KAGGLE_KEY"
    )
    assert "`syncd auth kaggle`" in str(caught.value)

    monkeypatch.setenv("KAGGLE_KEY", KEY)
    (kaggle_env / ".kaggle").mkdir(exist_ok=True)
    (kaggle_env / ".kaggle" / "access_token").write_text("expired-token")
    with pytest.raises(AuthRequired) as caught:
        check_kaggle_credentials(kaggle_config(fake))
    assert "delete the stale access token (access_token)" in str(caught.value)


def test_importing_the_client_prints_nothing(tmp_path: Path) -> None:
    home = tmp_path / "empty-home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAGGLE_")}
    env.update(HOME=str(home), PYTHONPATH=f"{DAEMON_SRC}{os.pathsep}{REPO}")
    code = (
        "import sys, syncd.remotes.kaggle.client as k\n"
        "k._client()\n"
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

"""Split snapshots (issue #14): ``snapshot.data`` folders in a ``<slug>-data`` dataset that gets
a version only when they change; the code's manifest names the data version it goes with.

Real files in tmp_path, the real kaggle client against the fake in-process, the real config
loader (test_e2e_snapshot_split drives the CLI and the kernel).
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import textwrap
from pathlib import Path

import pytest

from syncd.config import load_config
from syncd.db.statedb import StateDB
from syncd.errors import ConfigError, SyncdError
from syncd.remotes.kaggle.rules import DatasetMetadata
from syncd.snapshot.data_select import split_files
from syncd.snapshot.manifest import DATA_MANIFEST_NAME, MANIFEST_NAME, manifest_hash
from syncd.snapshot.parts import data_metadata
from syncd.snapshot.service import SnapshotService
from syncd.snapshot.store import SnapshotStore
from tests.fakes.kaggle_server import FakeKaggle

from .conftest import md5
from .kaggle_support import DATASET, kaggle_config, make_project, project_config, settle

DATA = f"{DATASET}-data"
WEIGHTS = bytes(range(256)) * 4096  # 1 MiB


def split_project(root: Path) -> Path:
    make_project(root)  # train.py, models/, data/labels.csv, secrets, caches
    (root / "data" / "images").mkdir(parents=True)
    (root / "data" / "images" / "0.bin").write_bytes(WEIGHTS)
    (root / "weights").mkdir()
    (root / "weights" / "init.pt").write_bytes(WEIGHTS[::-1])
    settle(root)
    return root


def service(root: Path, fake: FakeKaggle, db: StateDB, **snapshot: object) -> SnapshotService:
    snapshot.setdefault("data", ("data", "weights"))
    return SnapshotService(project_config(root, **snapshot), db, kaggle_config(fake))


def uploaded(fake: FakeKaggle) -> int:
    return fake.upload_bytes()


def created(fake: FakeKaggle) -> list[str]:
    """The slugs of every CreateDataset call."""
    return [str(r.body.get("slug")) for r in fake.requests if r.rpc == "CreateDataset"]


# --- config -----------------------------------------------------------------------------------


def write_config(tmp_path: Path, data: str, slug: str = "cifar-code") -> Path:
    (tmp_path / "proj").mkdir(exist_ok=True)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        textwrap.dedent(
            f"""\
            projects:
              - name: cifar
                path: {tmp_path / "proj"}
                snapshot:
                  dataset: alice/{slug}
                  data: {data}
            """
        )
    )
    return cfg


def test_config_data_paths_are_normalised_relative_to_the_project(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, f"[data/, ./weights, {tmp_path / 'proj' / 'assets' / 'big'}/]")
    snap = load_config(cfg).projects[0].snapshot
    assert snap is not None
    assert snap.data == ("data", "weights", "assets/big")
    assert snap.data_dataset == "alice/cifar-code-data"


@pytest.mark.parametrize(
    ("data", "slug", "problem"),
    [
        ("[data/, data/raw/]", "cifar-code", "projects[0].snapshot.data: 'data/raw/' overlaps"),
        ("[data, data/]", "cifar-code", "'data/' is listed twice"),
        ('["*.npy"]', "cifar-code", "snapshot.data[0]: '*.npy': name a folder or file"),
        ("[../shared]", "cifar-code", "'..' would leave the project folder"),
        ("[/etc]", "cifar-code", "'/etc' is outside the project folder"),
        ("[.]", "cifar-code", "not all of it"),
        ("data/", "cifar-code", "expected a list of strings"),
        ("[data/]", "a" * 46, "would be longer than Kaggle's 50 characters"),
    ],
)
def test_config_refuses_bad_data_paths_with_file_and_line(
    tmp_path: Path, data: str, slug: str, problem: str
) -> None:
    cfg = write_config(tmp_path, data, slug)
    with pytest.raises(ConfigError) as caught:
        load_config(cfg)
    assert str(caught.value).startswith(f"{cfg}:6: "), caught.value
    assert problem in str(caught.value)


# --- pure parts -------------------------------------------------------------------------------


def test_split_files_by_path_prefix_not_by_name(tmp_path: Path) -> None:
    files = {
        rel: object()
        for rel in ("data/a.csv", "data2/b.csv", "src/data/c.py", "weights", "train.py")
    }
    code, data = split_files(files, ("data", "weights"))  # type: ignore[arg-type]
    assert sorted(data) == ["data/a.csv", "weights"]
    assert sorted(code) == ["data2/b.csv", "src/data/c.py", "train.py"]


def test_data_dataset_metadata_follows_kaggles_limits() -> None:
    meta = DatasetMetadata("alice", "cifar-code", "x" * 50, "other", True)
    data = data_metadata(meta)
    assert (data.ref, data.license, data.private) == ("alice/cifar-code-data", "other", True)
    assert data.title.endswith(" (data)") and len(data.title) == 50


# --- the service against the fake -------------------------------------------------------------


def test_a_code_edit_uploads_only_the_code_and_names_the_unchanged_data_version(
    fake: FakeKaggle, kaggle_env: Path, tmp_path: Path, db: StateDB
) -> None:
    root = split_project(tmp_path / "cifar")
    svc = service(root, fake, db)

    first = svc.take("manual", "start", wait=True)

    assert first.status == "ready" and first.version == 1, first
    assert first.data is not None and first.data["uploaded"] is True
    assert first.data["dataset"] == DATA and first.data["version"] == 1
    assert first.message.endswith(f"data {DATA} v1 uploaded (3 files, 2.0 MB)")
    code_v1 = fake.dataset(DATASET).versions[0].files
    data_v1 = fake.dataset(DATA).versions[0].files
    assert set(code_v1) == {MANIFEST_NAME, "models/layers/conv.py", "models/resnet.py", "train.py"}
    assert set(data_v1) == {
        DATA_MANIFEST_NAME,
        "data/images/0.bin",
        "data/labels.csv",
        "weights/init.pt",
    }
    assert fake.dataset(DATA).title == "CIFAR code (data)"
    manifest = json.loads(code_v1[MANIFEST_NAME])
    data_manifest = json.loads(data_v1[DATA_MANIFEST_NAME])
    assert data_manifest["part"] == "data" and data_manifest["project"] == "cifar"
    assert manifest["data"] == {
        "dataset": DATA,
        "version": 1,
        "manifest_hash": data_manifest["manifest_hash"],
        "manifest_name": DATA_MANIFEST_NAME,
        "paths": ["data", "weights"],
        "files": 3,
        "bytes": data_manifest["bytes"],
    }
    assert data_manifest["files"]["weights/init.pt"]["md5"] == md5(root / "weights/init.pt")

    # One line of code changes: a new code version, the data dataset untouched.
    (root / "train.py").write_text("print('train')\nprint('epoch 2')\n")
    settle(root)
    before = uploaded(fake)
    second = svc.take("manual", "one line", wait=True)

    assert second.status == "ready" and second.version == 2, second
    assert second.data is not None and second.data["uploaded"] is False
    assert second.data["version"] == 1
    assert second.message.endswith(f"data {DATA} v1 unchanged (3 files, 2.0 MB)")
    assert len(fake.dataset(DATA).versions) == 1
    assert uploaded(fake) - before < 10_000  # the code and its manifest, zipped
    manifest2 = json.loads(fake.dataset(DATASET).versions[1].files[MANIFEST_NAME])
    assert manifest2["data"] == manifest["data"]
    assert "train.py" in manifest2["files"] and "data/labels.csv" not in manifest2["files"]

    # Nothing changed: no request at all.
    fake.reset_log()
    third = svc.take("schedule", wait=True)
    assert third.status == "unchanged" and not fake.requests, fake.requests
    assert third.data is not None and third.data["version"] == 1

    # Only the data's mtimes change: read again, found equal, nothing uploaded.
    settle(root, 60)
    assert svc.take("schedule", wait=True).status == "unchanged"
    assert not [r for r in fake.requests if r.rpc == "upload"]

    # The data changes: a data version, then a code version naming it.
    (root / "data" / "labels.csv").write_text("id,label\n1,cat\n2,dog\n")
    settle(root)
    fourth = svc.take("manual", "more labels", wait=True)
    assert fourth.status == "ready" and fourth.version == 3, fourth
    assert fourth.data is not None and (fourth.data["version"], fourth.data["uploaded"]) == (
        2,
        True,
    )
    assert len(fake.dataset(DATA).versions) == 2
    assert fake.dataset(DATA).versions[1].files["data/labels.csv"].endswith(b"2,dog\n")
    manifest3 = json.loads(fake.dataset(DATASET).versions[2].files[MANIFEST_NAME])
    assert manifest3["data"]["version"] == 2
    assert manifest3["files"] == manifest2["files"]  # the code did not change

    block = svc.status_block()
    assert (block["dataset"], block["last_version"]) == (DATASET, 3)
    assert block["data"]["dataset"] == DATA and block["data"]["last_version"] == 2
    assert (block["data"]["status"], block["data"]["files"]) == ("ready", 3)
    history = svc.history()
    assert [(h["version"], h["data"]["version"]) for h in history] == [(3, 2), (2, 1), (1, 1)]
    svc.close()


def test_force_uploads_the_code_again_but_not_unchanged_data(
    fake: FakeKaggle, kaggle_env: Path, tmp_path: Path, db: StateDB
) -> None:
    root = split_project(tmp_path / "cifar")
    svc = service(root, fake, db)
    assert svc.take("manual", wait=True).status == "ready"
    before = uploaded(fake)
    forced = svc.take("manual", force=True, wait=True)
    assert (forced.status, forced.version) == ("ready", 2)
    assert len(fake.dataset(DATA).versions) == 1
    assert uploaded(fake) - before < 10_000
    svc.close()


def test_turning_the_split_on_and_off(
    fake: FakeKaggle, kaggle_env: Path, tmp_path: Path, db: StateDB
) -> None:
    root = split_project(tmp_path / "cifar")
    whole = service(root, fake, db, data=())
    assert whole.take("manual", wait=True).status == "ready"
    assert "data/images/0.bin" in fake.dataset(DATASET).versions[0].files
    whole.close()

    split = service(root, fake, db)
    result = split.take("manual", wait=True)
    assert (result.status, result.version) == ("ready", 2), result
    assert "data/images/0.bin" not in fake.dataset(DATASET).versions[1].files
    assert "data/images/0.bin" in fake.dataset(DATA).versions[0].files
    split.close()

    again = service(root, fake, db, data=())
    back = again.take("manual", wait=True)
    assert (back.status, back.version, back.data) == ("ready", 3, None)
    assert "data/images/0.bin" in fake.dataset(DATASET).versions[2].files
    again.close()


def test_a_missing_data_folder_fails_the_snapshot_until_it_exists(
    fake: FakeKaggle, kaggle_env: Path, tmp_path: Path, db: StateDB
) -> None:
    root = make_project(tmp_path / "cifar")
    svc = service(root, fake, db, data=("weights",))
    fake.reset_log()
    with pytest.raises(SyncdError) as caught:
        svc.take("manual", wait=True)
    assert str(caught.value) == (
        f"cifar: snapshot.data: weights has no files: it does not exist in {root} "
        "(create it, or remove weights from snapshot.data)"
    )
    assert not fake.requests  # nothing uploaded, not even the code
    assert svc.status_block()["status"] == "error"
    (root / "weights").mkdir()
    (root / "weights" / "w.pt").write_bytes(WEIGHTS)
    settle(root)
    later = svc.take("manual", wait=True)
    assert later.version == 1 and later.data is not None and later.data["version"] == 1
    assert created(fake) == ["cifar-code-data", "cifar-code"]
    assert set(fake.dataset(DATA).versions[0].files) == {DATA_MANIFEST_NAME, "weights/w.pt"}
    svc.close()


def gitignored_data_project(root: Path) -> Path:
    """data/ and weights/ gitignored (students keep big files out of git), with things in
    them that other rules keep home."""
    split_project(root)
    files = {
        ".gitignore": "data/\nweights/\n*.log\nnotes/\n",
        "data/run.log": "gitignored by *.log too\n",
        "data/sub/.gitignore": "*\n",
        "data/sub/kept.csv": "a nested .gitignore does not apply either\n",
        "data/.env": "TOKEN=secret\n",  # the secrets guard
        "data/__pycache__/x.pyc": "bytecode",  # built-in defaults
        "data/old.ckpt": "config ignore: *.ckpt",
        "data/raw/huge.bin": ".syncignore",
        ".syncignore": "data/raw/\n",
        "notes/todo.txt": "gitignored, not data: stays out of both parts\n",
    }
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    venv = root / "data" / "env"  # a virtualenv without a telltale name
    venv.mkdir()
    (venv / "pyvenv.cfg").write_text("home = /usr/bin\n")
    (venv / "site.py").write_text("x = 1\n")
    settle(root)
    return root


def test_gitignored_data_entries_go_to_the_data_dataset_other_rules_still_apply(
    fake: FakeKaggle,
    kaggle_env: Path,
    tmp_path: Path,
    db: StateDB,
    caplog: pytest.LogCaptureFixture,
) -> None:
    root = gitignored_data_project(tmp_path / "cifar")
    svc = service(root, fake, db)
    with caplog.at_level("WARNING", logger="syncd.snapshot"):
        result = svc.take("manual", wait=True)
    # The mirror never saw data/.env (gitignored): the data selection names it once.
    said = [r.getMessage() for r in caplog.records if "data/.env" in r.getMessage()]
    assert said == [
        "leaving data/.env out of the data dataset: it looks like a secret "
        "(add !.env to .syncignore to include it)"
    ]
    assert (result.status, result.version) == ("ready", 1), result
    assert result.data is not None and result.data["files"] == 6
    assert set(fake.dataset(DATA).versions[0].files) == {
        DATA_MANIFEST_NAME,
        "data/labels.csv",
        "data/images/0.bin",
        "data/run.log",
        "data/sub/.gitignore",
        "data/sub/kept.csv",
        "weights/init.pt",
    }
    # The code part is what it was: gitignored files (in data or not) stay out of it.
    assert set(fake.dataset(DATASET).versions[0].files) == {
        MANIFEST_NAME,
        ".gitignore",
        ".syncignore",
        "models/layers/conv.py",
        "models/resnet.py",
        "train.py",
    }
    svc.close()


@pytest.mark.parametrize("include", [("train.py", "models/"), ("data/",)])
def test_include_narrows_the_code_part_and_never_the_data(
    fake: FakeKaggle, kaggle_env: Path, tmp_path: Path, db: StateDB, include: tuple[str, ...]
) -> None:
    root = gitignored_data_project(tmp_path / "cifar")
    svc = service(root, fake, db, include=include)
    result = svc.take("manual", wait=True)
    assert result.status == "ready" and result.data is not None, result
    assert result.data["files"] == 6 and len(fake.dataset(DATA).versions[0].files) == 7
    code = set(fake.dataset(DATASET).versions[0].files)
    if "data/" in include:  # data entries are never code: the code part holds the pointer
        assert code == {MANIFEST_NAME}
    else:
        assert code == {MANIFEST_NAME, "models/layers/conv.py", "models/resnet.py", "train.py"}
    svc.close()


@pytest.mark.parametrize(
    ("arrange", "snapshot", "why", "fix"),
    [
        (
            {".syncignore": "data/\n"},
            {},
            "data/ has no files: it is ignored by .syncignore",
            "remove the rule that matches it from .syncignore, or remove data/ from",
        ),
        (
            {".syncignore": "*.csv\n"},
            {},
            "data/ has no files: every file in it is ignored by .syncignore",
            "remove the rule",
        ),
        (
            {"data/labels.csv": None, "data/old.ckpt": "w"},
            {},
            "data/ has no files: every file in it is ignored by the project's ignore: list",
            "remove the pattern that matches it from the project's ignore: list",
        ),
        (
            {"data/labels.csv": None, "data/kaggle.json": "{}", "data/id_rsa": "k"},
            {},
            "data/ has no files: every file in it is ignored by the secrets guard",
            "add a `!NAME` line for it to .syncignore",
        ),
        (
            {},
            {"exclude": ("*.csv",)},
            "data/ has no files: every file in it is ignored by snapshot.exclude",
            "remove its pattern from snapshot.exclude",
        ),
        (
            {"data/labels.csv": None},
            {},
            "data/ has no files: the folder holds no regular file",
            "put the data files in it, or remove data/ from snapshot.data",
        ),
        (
            {"data": "->"},
            {},
            "data has no files: it is a symlink, and syncd never follows",
            "move the data itself into the project folder",
        ),
    ],
)
def test_a_data_entry_left_with_no_file_fails_naming_it_and_uploads_nothing(
    fake: FakeKaggle,
    kaggle_env: Path,
    tmp_path: Path,
    db: StateDB,
    arrange: dict[str, str | None],
    snapshot: dict[str, object],
    why: str,
    fix: str,
) -> None:
    root = make_project(tmp_path / "cifar")  # data/labels.csv only
    (root / ".gitignore").write_text("data/\n")
    for rel, text in arrange.items():
        path = root / rel
        if text is None:
            path.unlink()
        elif text == "->":
            outside = tmp_path / "elsewhere"
            outside.mkdir()
            (outside / "x.csv").write_text("1\n")
            shutil.rmtree(path)
            path.symlink_to(outside)
        else:
            path.write_text(text)
    settle(root)
    svc = service(root, fake, db, data=("data",), **snapshot)
    fake.reset_log()
    with pytest.raises(SyncdError) as caught:
        svc.take("manual", wait=True)
    message = str(caught.value)
    assert message.startswith(f"cifar: snapshot.data: {why}"), message
    assert fix in message and "\n" not in message
    assert not fake.requests and not created(fake)
    assert svc.status_block()["status"] == "error"
    svc.close()


def test_a_data_version_kaggle_cannot_process_stops_before_the_code(
    fake: FakeKaggle, kaggle_env: Path, tmp_path: Path, db: StateDB
) -> None:
    root = split_project(tmp_path / "cifar")
    svc = service(root, fake, db)
    fake.seed_dataset(DATA, {"old.txt": b"x"})  # exists: the upload is its next version
    fake.set_dataset_outcome(DATA, "failed")

    with pytest.raises(SyncdError, match="could not process the new data version"):
        svc.take("manual", wait=True)

    assert "cifar-code" not in created(fake)
    fake.set_dataset_outcome(DATA, "ready")
    retry = svc.take("manual", wait=True)  # a failed data version is no baseline
    assert retry.status == "ready" and retry.data is not None and retry.data["uploaded"]
    assert retry.data["version"] == 3
    svc.close()


def test_a_data_version_still_processing_is_settled_by_the_next_snapshot(
    fake: FakeKaggle, kaggle_env: Path, tmp_path: Path, db: StateDB, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = split_project(tmp_path / "cifar")
    svc = service(root, fake, db)
    fake.processing_polls = 10_000  # Kaggle is slow today
    monkeypatch.setenv("SYNCD_KAGGLE_READY_TIMEOUT_S", "0.5")
    with pytest.raises(SyncdError, match="still processing"):
        svc.take("manual", wait=True)
    assert [r.status for r in svc.data.store.history()] == ["pending"]  # type: ignore[union-attr]
    assert "cifar-code" not in created(fake)

    fake.finish_processing(DATA)
    fake.processing_polls = 0
    before = uploaded(fake)
    done = svc.take("manual", wait=True)
    assert done.status == "ready" and done.data is not None
    assert (done.data["version"], done.data["uploaded"]) == (1, False)
    assert uploaded(fake) - before < 10_000  # the data was not sent twice
    svc.close()


def test_an_old_state_database_gains_the_data_column(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    with sqlite3.connect(path) as c:
        c.execute(
            "CREATE TABLE snapshots(id INTEGER PRIMARY KEY, project TEXT NOT NULL, "
            "dataset TEXT NOT NULL, version INTEGER, at REAL NOT NULL, trigger TEXT NOT NULL, "
            "notes TEXT NOT NULL, files INTEGER NOT NULL, bytes INTEGER NOT NULL, "
            "manifest_hash TEXT NOT NULL, status TEXT NOT NULL, url TEXT, manifest BLOB)"
        )
        c.execute(
            "INSERT INTO snapshots VALUES(1, 'p', 'a/b', 4, 0, 'manual', 'n', 1, 1, 'h', "
            "'ready', NULL, NULL)"
        )
    db = StateDB(path)
    store = SnapshotStore(db, "p", "a/b")
    assert [(r.version, r.data) for r in store.history()] == [(4, None)]
    db.close()


def test_data_manifests_outlive_many_code_versions(tmp_path: Path) -> None:
    db = StateDB(tmp_path / "state.db")
    code, data = SnapshotStore(db, "p", "a/code"), SnapshotStore(db, "p", "a/code-data")
    from syncd.snapshot.manifest import FileEntry

    files = {"data/x": FileEntry(1, "m")}
    data.add(trigger="t", notes="", files=files, manifest_hash=manifest_hash(files), status="ready")
    for i in range(6):
        code_files = {"a.py": FileEntry(i, "c")}
        code.add(trigger="t", notes="", files=code_files, manifest_hash="h", status="ready")
    last = data.last_uploaded()
    assert last is not None and last[1] == files
    db.close()


# --- the fake: a second dataset per project behaves as on Kaggle ------------------------------


def test_the_fake_runs_each_datasets_creation_404_window_and_processing_apart(
    fake: FakeKaggle, kaggle_env: Path, tmp_path: Path
) -> None:
    """The data dataset goes through creation, the 404 window after a version (kaggle-cli
    #890) and processing on its own; the code dataset's processing is not moved on by polls
    of the data dataset."""
    from syncd.remotes.kaggle.client import KaggleDatasets

    folder = tmp_path / "up"
    (folder / "data").mkdir(parents=True)
    (folder / "data" / "x.bin").write_bytes(WEIGHTS)
    code_meta = DatasetMetadata("alice", "cifar-code", "CIFAR code", "other", True)
    data_meta = data_metadata(code_meta)
    fake.processing_polls = 50
    client = KaggleDatasets(kaggle_config(fake))

    made = client.publish(folder, data_meta, "first", wait=False)
    assert made.created and fake.dataset(DATA).versions[0].status == "blobs_received"
    assert fake.dataset(DATA).title == "CIFAR code (data)"
    other = client.publish(folder, code_meta, "code", wait=False)  # not blocked by DATA's
    assert other.created and len(fake.dataset(DATASET).versions) == 1
    fake.reset_log()
    folder_v2 = tmp_path / "up2"
    (folder_v2 / "data").mkdir(parents=True)
    (folder_v2 / "data" / "x.bin").write_bytes(WEIGHTS[1:])
    fake.processing_polls = 3
    client.publish(folder_v2, data_meta, "second", wait=True)  # waits out DATA's first version
    statuses = [r.status for r in fake.requests if r.rpc == "GetDatasetStatus"]
    assert 404 in statuses  # the fresh-version window
    assert [v.status for v in fake.dataset(DATA).versions] == ["ready", "ready"]
    assert fake.dataset(DATASET).versions[0].status == "blobs_received"  # polled separately
    assert fake.dataset(DATA).versions[1].files["data/x.bin"] == WEIGHTS[1:]


# --- the kernel script, run for real by the fake ----------------------------------------------


def test_the_kernel_finds_the_data_under_the_legacy_layout_and_refuses_without_it(
    fake: FakeKaggle, kaggle_env: Path, tmp_path: Path, db: StateDB
) -> None:
    from syncd.service.training import train_service

    from .conftest import write_config as write_yaml
    from .train_support import PROJECT, make_train_project, run_summary

    root = make_train_project(tmp_path / PROJECT)  # data/labels.csv is the data part
    project = {
        "name": PROJECT,
        "path": str(root),
        "ignore": ["*.ckpt"],
        "snapshot": {"dataset": DATASET, "title": "CIFAR code", "data": ["data/"]},
        "train": {"poll": "1s", "notify": False},
    }
    cfg = write_yaml(tmp_path / "c.yaml", [project], kaggle={"endpoint": fake.url})
    config = load_config(cfg)
    pc = config.project(PROJECT)
    snapshots = SnapshotService(pc, db, config.kaggle)
    trainer = train_service(pc, db, config.kaggle, snapshots)
    fake.mount_layout = "legacy"  # input/<slug>/, before 2026
    try:
        first = trainer.follow_until_done(trainer.train().id, lambda e: None)
        assert first.state == "complete", first.failure
        log = (root / "runs" / "r1" / "syncd-kernel.log").read_text()
        assert f"syncd: linked data → {fake.kernel(first.kernel).versions[0].sandbox}" in log
        assert "/kaggle/input/cifar-code-data/data\n" in log
        assert run_summary(root / "runs" / "r1")["data"] == {"dataset": DATA, "version": 1}

        fake.tamper_mount(DATA, {DATA_MANIFEST_NAME: None})  # the data is not there
        second = trainer.follow_until_done(trainer.train().id, lambda e: None)
        assert second.state == "error"
        assert second.failure is not None and second.failure.startswith(
            f"the data this snapshot goes with ({DATA} v1, manifest "
        )
        summary = run_summary(root / "runs" / "r2")
        assert (
            summary["exit_code"] == 3
            and "epoch 1" not in (root / "runs" / "r2" / "syncd-kernel.log").read_text()
        )
    finally:
        trainer.close()
        snapshots.close()


def test_force_uploads_the_data_again_once_it_is_gone_from_kaggle(
    fake: FakeKaggle, kaggle_env: Path, tmp_path: Path, db: StateDB
) -> None:
    """Deleted on kaggle.com: a kernel would lose its data source (invalidDatasetSources), and
    only --force asks Kaggle; it then uploads the data again."""
    root = split_project(tmp_path / "cifar")
    svc = service(root, fake, db)
    assert svc.take("manual", wait=True).status == "ready"
    fake.delete_dataset(DATA)
    assert svc.take("manual", wait=True).status == "unchanged"  # no request: not noticed

    forced = svc.take("manual", force=True, wait=True)

    assert forced.status == "ready" and forced.data is not None, forced
    assert (forced.data["version"], forced.data["uploaded"]) == (1, True)
    assert fake.dataset(DATA).versions[0].files["weights/init.pt"] == WEIGHTS[::-1]

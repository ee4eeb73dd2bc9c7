"""Helpers shared by the Kaggle snapshot tests: the fake, an isolated client environment.

The real ``kaggle`` client runs in-process against ``FakeKaggle``; syncd reaches it
through ``KaggleConfig.endpoint`` alone (no ``patch_endpoint``), as the daemon does.
Deadlines, polls and backoffs are shrunk through syncd's environment variables.
"""

from __future__ import annotations

import json
import os
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from syncd.config import KaggleConfig, ProjectConfig, SnapshotConfig
from syncd.db.statedb import StateDB
from tests.fakes.kaggle_server import FakeKaggle

USER, KEY = "alice", "key123"
DATASET = "alice/cifar-code"
KERNEL = "alice/cifar-train"

FAST = {
    "SYNCD_KAGGLE_POLL_S": "0.01",
    "SYNCD_KAGGLE_TIMEOUT_S": "3",
    "SYNCD_KAGGLE_BACKOFF_S": "0.01",
    "SYNCD_KAGGLE_RETRIES": "4",
    "SYNCD_KAGGLE_READY_TIMEOUT_S": "10",
    "SYNCD_KAGGLE_PENDING_GRACE_S": "3",
    "SYNCD_SNAPSHOT_QUIET_S": "0.05",
    "SYNCD_SNAPSHOT_SETTLE_S": "5",
    "SYNCD_GIT_TAG_POLL_S": "0.2",
}


def running_fake() -> Iterator[FakeKaggle]:
    """For a fixture: ``yield from running_fake()``."""
    with FakeKaggle() as server:
        server.add_user(USER, KEY)
        yield server


def isolate_client(home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No KAGGLE_* or proxy variables from outside, the key in the environment, a private
    temp dir (the client's upload state lives there), and fast syncd timings."""
    for var in list(os.environ):
        if var.startswith("KAGGLE_") or var.lower().endswith("_proxy"):
            monkeypatch.delenv(var)
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(home / ".kaggle"))
    monkeypatch.setenv("KAGGLE_USERNAME", USER)
    monkeypatch.setenv("KAGGLE_KEY", KEY)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    for name, value in FAST.items():
        monkeypatch.setenv(name, value)
    (tmp_path / "tmp").mkdir(exist_ok=True)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    return home


def make_project(root: Path) -> Path:
    """A small training project: code in subfolders, secrets and caches that must stay home."""
    files = {
        "train.py": "print('train')\n",
        "models/resnet.py": "class ResNet: ...\n",
        "models/layers/conv.py": "def conv(): ...\n",
        "data/labels.csv": "id,label\n1,cat\n",
        ".env": "WANDB_API_KEY=secret\n",
        "kaggle.json": '{"username": "alice", "key": "secret"}\n',
        ".git/config": "[core]\n",
        "__pycache__/train.cpython-311.pyc": "bytecode",
        "checkpoints/epoch1.ckpt": "weights",
    }
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    settle(root)
    return root


def settle(root: Path, seconds: float = 5.0) -> None:
    """Backdate every file, so staging does not wait for them to be quiet."""
    past = time.time() - seconds
    for dirpath, _, names in os.walk(root):
        for name in names:
            os.utime(os.path.join(dirpath, name), (past, past))


EXPECTED = {
    "train.py",
    "models/resnet.py",
    "models/layers/conv.py",
    "data/labels.csv",
}  # make_project minus secrets, VCS, caches and the config's ignore ("*.ckpt")


def project_config(root: Path, name: str = "cifar", **snapshot: object) -> ProjectConfig:
    fields: dict[str, object] = {"dataset": DATASET, "title": "CIFAR code", **snapshot}
    return ProjectConfig(name, root, None, ("*.ckpt",), SnapshotConfig(**fields))  # type: ignore[arg-type]


def kaggle_config(fake: FakeKaggle) -> KaggleConfig:
    return KaggleConfig(endpoint=fake.url)


def make_api(home: Path, monkeypatch: pytest.MonkeyPatch, key: str | None = KEY) -> Any:
    """The real client, authenticated: with `key`, as KAGGLE_USERNAME/KAGGLE_KEY; with None,
    from whatever credentials the test has set up."""
    if key is not None:
        monkeypatch.setenv("KAGGLE_USERNAME", USER)
        monkeypatch.setenv("KAGGLE_KEY", key)
    # Imported only now: `import kaggle` authenticates at import time, printing a help
    # text when no credentials are set, and creates its config dir under HOME.
    from kaggle.api.kaggle_api_extended import KaggleApi

    api = KaggleApi()
    # The config path is a class attribute fixed at first import; pin it to this HOME.
    api.config_dir = str(home / ".kaggle")
    api.config = str(home / ".kaggle" / "kaggle.json")
    api.authenticate()
    return api


def kernel_folder(root: Path, script: str, **meta: Any) -> Path:
    """A folder `kaggle kernels push` accepts: `run.py` and a kernel-metadata.json for a
    private GPU (T4) script of KERNEL on DATASET, without internet; `meta` overrides."""
    folder = root / f"kernel-{time.monotonic_ns()}"
    folder.mkdir()
    (folder / "run.py").write_text(textwrap.dedent(script))
    metadata = {
        "id": KERNEL,
        "title": "cifar-train",
        "code_file": "run.py",
        "language": "python",
        "kernel_type": "script",
        "is_private": True,
        "enable_internet": False,
        "machine_shape": "NvidiaTeslaT4",
        "dataset_sources": [DATASET],
        **meta,
    }
    (folder / "kernel-metadata.json").write_text(json.dumps(metadata))
    return folder


def push(api: Any, root: Path, script: str, **meta: Any) -> Any:
    """`kernels_push` of the real client, for a kernel_folder."""
    return api.kernels_push(str(kernel_folder(root, script, **meta)))


# Shared fixtures: test modules import them by name.
@pytest.fixture
def fake() -> Iterator[FakeKaggle]:
    yield from running_fake()


@pytest.fixture
def kaggle_env(home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return isolate_client(home, tmp_path, monkeypatch)


@pytest.fixture
def kernel_fake(tmp_path: Path) -> Iterator[FakeKaggle]:
    """A fake with DATASET seeded (train.py, data/labels.csv), sessions under tmp_path."""
    with FakeKaggle(sandbox_root=tmp_path) as server:
        server.add_user(USER, KEY)
        server.seed_dataset(DATASET, {"train.py": b"print(1)\n", "data/labels.csv": b"id\n1\n2\n"})
        yield server


@pytest.fixture
def kernel_api(kernel_fake: FakeKaggle, kaggle_home: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The real client (legacy key) pointed at kernel_fake for the test's duration."""
    with kernel_fake.patch_endpoint():
        yield make_api(kaggle_home, monkeypatch)


@pytest.fixture
def kaggle_home(home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The shared isolated HOME, plus what the kaggle client reads: no KAGGLE_* or proxy
    variables from outside, and a private temp dir (it keeps resumable-upload state there,
    which would leak between tests). No credentials: each test sets up its own."""
    (home / ".kaggle").mkdir(exist_ok=True)
    (tmp_path / "tmp").mkdir(exist_ok=True)
    for var in list(os.environ):
        if var.startswith("KAGGLE_") or var.lower().endswith("_proxy"):
            monkeypatch.delenv(var)
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(home / ".kaggle"))
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    return home


@pytest.fixture
def db(tmp_path: Path) -> Iterator[StateDB]:
    state = StateDB(tmp_path / "state.db")
    yield state
    state.close()

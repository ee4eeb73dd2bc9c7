"""The fixtures the Colab helper's in-process tests share: a fake Drive, the project
mirrored into it by the real engine (``rig``), and the helper loaded as Colab would
(``colab``: only ``google.colab`` stubbed, see colab_support).  Test modules import
them by name."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.colab_support import colab_env, load_helper
from tests.fakes.drive_server import FakeDrive
from tests.mirror_support import Rig


@pytest.fixture
def fake() -> Iterator[FakeDrive]:
    with FakeDrive() as f:
        yield f


@pytest.fixture
def rig(tmp_path: Path, home: Path, fake: FakeDrive) -> Iterator[Rig]:
    fake.set_write_limit(None)
    r = Rig(tmp_path, "gdrive-file", fake)
    r.write("train.py", "import model\nprint(model.VALUE)\n")
    r.write("model.py", "VALUE = 1\n")
    r.write("data/labels.txt", "cat\ndog\n")
    r.sync()
    yield r
    r.close()
    assert fake.internal_errors == []


@pytest.fixture
def colab(
    rig: Rig, fake: FakeDrive, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Any]:
    for key, value in colab_env(fake, tmp_path).items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(tmp_path)
    yield load_helper(monkeypatch, tmp_path)
    sys.modules.pop("model", None)  # the project's module, imported by a test's "notebook"

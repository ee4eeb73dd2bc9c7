"""``Remote.current`` and ``Remote.head`` (remotes.base), on every target: what the manifest
writer asks when it must know for real (mirror.manifest).  Files are made by the mirror
and deleted, trashed or moved the way a person would, without syncd's help."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from syncd.remotes.base import RemoteEntry
from tests.mirror_support import TARGETS, Rig, rig_on


@pytest.fixture(params=TARGETS)
def rig(request: pytest.FixtureRequest, tmp_path: Path, home: Path) -> Iterator[Rig]:
    yield from rig_on(request.param, tmp_path)


def mirrored(rig: Rig, rel: str, data: str) -> RemoteEntry:
    rig.write(rel, data)
    rig.sync()
    rec = rig.db.file("p", rel)
    assert rec is not None
    known = rig.remote.stat(rel, None)
    assert known is not None
    return known


def test_current_answers_for_a_file_that_stands(rig: Rig) -> None:
    known = mirrored(rig, "a.py", "a = 1\n")
    found = rig.remote.current("a.py", known)
    assert found is not None and found.id == known.id and found.size == 6


def test_current_says_none_once_it_is_gone(rig: Rig) -> None:
    known = mirrored(rig, "a.py", "a = 1\n")
    rig.remote.stat("a.py", known)  # the remote now "knows" it (Drive: a cached state)
    rig.target.remove("a.py")  # local: unlinked; Drive: trashed in the web UI
    assert rig.remote.current("a.py", known) is None


def test_current_on_drive_asks_drive_even_when_it_knows_the_file(rig: Rig) -> None:
    if rig.fake is None:
        pytest.skip("a local target is asked every time")
    known = mirrored(rig, "a.py", "a = 1\n")
    rig.fake.delete(known.id)  # for good: no trash
    assert rig.remote.current("a.py", known) is None
    moved = mirrored(rig, "b.py", "b = 1\n")
    rig.fake.move(moved.id, rig.fake.find("syncd/p")["id"], "elsewhere.py")
    assert rig.remote.current("b.py", moved) is None  # no longer at its path


def test_head_reads_the_first_bytes(rig: Rig) -> None:
    known = mirrored(rig, "a.json", '{"syncd_manifest": 1, "seq": 41, "files": {}}\n')
    assert rig.remote.head(known, 20) == b'{"syncd_manifest": 1'
    assert rig.remote.head(known, 4096).endswith(b"{}}\n")
    empty = mirrored(rig, "empty.txt", "")
    assert rig.remote.head(empty, 512) == b""

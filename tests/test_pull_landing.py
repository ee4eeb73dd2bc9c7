"""pullback.landing: an edit saved right after syncd's rename is never taken for syncd's
own copy (review-4 #2). The race is forced at its exact moment by running the edit from
inside ``os.replace``; the remote side is a plain in-memory downloader (Landing's
``Downloader`` protocol), the records a real state db."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import BinaryIO

import pytest

from syncd.db.statedb import StateDB
from syncd.pullback import landing as landing_mod
from syncd.pullback.landing import Landing
from syncd.pullback.records import PullRecords


class Item:
    def __init__(self, data: bytes, rev: str) -> None:
        self.id, self.rev, self.parent, self.data = "f1", rev, "dir1", data
        self.md5: str | None = hashlib.md5(data).hexdigest()


class Memory:
    def __init__(self) -> None:
        self.item = Item(b"v1" * 100, "r1")
        self.written = 0  # the mtime the download's last write got

    def download(self, file_id: str, out: BinaryIO, path: str) -> str:
        out.write(self.item.data)
        out.flush()
        self.written = os.fstat(out.fileno()).st_mtime_ns
        return hashlib.md5(self.item.data).hexdigest()


@pytest.mark.parametrize("same_tick", [False, True])
def test_an_edit_right_after_the_rename_becomes_a_conflict_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, same_tick: bool
) -> None:
    root = tmp_path / "p"
    root.mkdir()
    remote = Memory()
    land = Landing("p", root, PullRecords(StateDB(tmp_path / "s.db"), "p"), remote)
    land.land("outputs/m.bin", remote.item)
    dest = root / "outputs/m.bin"
    assert dest.read_bytes() == b"v1" * 100

    edit = b"E!" * 100  # same size, in place: only the mtime can tell
    real_replace = os.replace

    def replace_then_edit(src: str, dst: Path) -> None:
        real_replace(src, dst)
        with open(dst, "r+b") as fh:
            fh.write(edit)
        if same_tick:  # a coarse clock: the edit lands in the very same tick
            os.utime(dst, ns=(remote.written, remote.written))

    remote.item = Item(b"v2" * 100, "r2")
    monkeypatch.setattr(landing_mod.os, "replace", replace_then_edit)
    land.land("outputs/m.bin", remote.item)
    monkeypatch.setattr(landing_mod.os, "replace", real_replace)
    assert dest.read_bytes() == edit

    remote.item = Item(b"v3" * 100, "r3")  # the next version: the edit is kept aside
    land.land("outputs/m.bin", remote.item)
    assert dest.read_bytes() == b"v3" * 100
    kept = [p for p in (root / "outputs").iterdir() if p.name.startswith("m (conflict ")]
    assert len(kept) == 1 and kept[0].read_bytes() == edit

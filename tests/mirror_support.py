"""The mirror engine in-process against every target: ``local:``, ``gdrive:`` (drive.file), and
``gdrive:`` (full) — rclone's habit of running the sync suite over every backend.

A ``Rig`` holds a project folder, a state db, a remote of one kind and a runner
driven through full scans (no watcher: every decision is deterministic).  Its
``target`` is a view of what the target holds, read without syncd's help
(``tests.chaos.targets``), plus ``ident`` (what says "the same file": a local
inode, a Drive id) and ``version`` (what changes when the file is rewritten).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from syncd.config import RemoteAddress
from syncd.db.statedb import StateDB
from syncd.localfs.ignore import IgnoreRules
from syncd.mirror.coalescer import Coalescer
from syncd.mirror.runner import MirrorRunner
from syncd.remotes import Remote
from syncd.remotes.local import LocalRemote
from tests.chaos.targets import DriveTarget, LocalTarget
from tests.fakes.drive_server import FakeDrive
from tests.gdrive_support import open_gdrive

TARGETS = ["local", "gdrive-file", "gdrive-full"]


class LocalView(LocalTarget):
    def ident(self, rel: str) -> object:
        return os.stat(self.root / rel).st_ino

    def version(self, rel: str) -> object:
        st = os.stat(self.root / rel)
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def remove(self, rel: str) -> None:
        (self.root / rel).unlink()

    def make_folder(self, rel: str) -> None:
        (self.root / rel).mkdir(parents=True, exist_ok=True)


class DriveView(DriveTarget):
    def _item(self, rel: str) -> dict:
        found = self.fake.find(f"{self.folder}/{rel}")
        assert found is not None, f"nothing at {rel} on the fake Drive"
        return found

    def ident(self, rel: str) -> object:
        return self._item(rel)["id"]

    def version(self, rel: str) -> object:
        item = self._item(rel)
        return (item["id"], item.get("headRevisionId"), item.get("md5Checksum"))

    def remove(self, rel: str) -> None:
        self.fake.trash(self._item(rel)["id"])

    def make_folder(self, rel: str) -> None:
        self.fake.mkdir(f"{self.folder}/{rel}")


class Rig:
    """One project ``p`` in ``src``, mirrored by a runner to one kind of target."""

    def __init__(self, tmp_path: Path, kind: str, fake: FakeDrive | None = None) -> None:
        self.tmp = tmp_path
        self.kind = kind
        self.fake = fake
        self.src = tmp_path / "src"
        self.src.mkdir()
        self.db = StateDB(tmp_path / "state.db")
        self.target: LocalView | DriveView
        if kind == "local":
            self.dst = tmp_path / "dst"
            self.target = LocalView(self.dst)
        else:
            assert fake is not None
            self.target = DriveView(fake, "syncd/p")
        self.engine = self.make_engine()

    def make_remote(self) -> Remote:
        if self.kind == "local":
            address = RemoteAddress(f"local:{self.dst}", "local", str(self.dst), None)
            return LocalRemote(address.raw, self.dst)
        assert self.fake is not None
        return open_gdrive(self.fake, self.tmp, db=self.db, scope=self.kind.split("-")[1])

    def make_engine(self, **kw: object) -> MirrorRunner:
        self.remote = self.make_remote()
        return MirrorRunner(
            "p",
            self.src,
            IgnoreRules(self.src),
            self.remote,
            self.db,
            Coalescer(0.0, 1.0),
            **kw,  # type: ignore[arg-type]
        )

    @property
    def scope(self) -> str | None:
        return None if self.kind == "local" else self.kind.split("-")[1]

    def write(self, rel: str, data: str | bytes) -> Path:
        p = self.src / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data.encode() if isinstance(data, str) else data)
        return p

    def sync(self) -> None:
        self.engine.full_scan()

    def close(self) -> None:
        self.engine.applier.idle()
        self.remote.close()


def rig_on(target: str, tmp_path: Path) -> Iterator[Rig]:
    """A rig on ``target`` (one of TARGETS) for a fixture to yield from; on Drive, the fake
    must end with no internal error and no two live items of one title in one folder."""
    if target == "local":
        r = Rig(tmp_path, "local")
        yield r
        r.close()
        return
    with FakeDrive() as fake:
        r = Rig(tmp_path, target, fake)
        yield r
        r.close()
        assert fake.internal_errors == []
        assert fake.duplicates() == [], "two live items with one title in one folder"

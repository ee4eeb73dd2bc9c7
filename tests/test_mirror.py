"""The mirror engine against a real `local:` target, driven through full scans.

These run the engine in-process (no watcher) so every decision is deterministic;
the end-to-end tests drive the same engine through the daemon and real events.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from syncd.config import RemoteAddress
from syncd.db.statedb import StateDB
from syncd.localfs.ignore import IgnoreRules
from syncd.mirror.coalescer import Coalescer
from syncd.mirror.engine import MirrorEngine
from syncd.mirror.model import ProjectState
from syncd.remotes.local import LocalRemote

from .conftest import md5, tree


class Rig:
    def __init__(self, tmp_path: Path) -> None:
        self.src = tmp_path / "src"
        self.dst = tmp_path / "dst"
        self.src.mkdir()
        self.db = StateDB(tmp_path / "state.db")
        self.address = RemoteAddress(f"local:{self.dst}", "local", str(self.dst), None)
        self.engine = self.make_engine()

    def make_engine(self, **kw: object) -> MirrorEngine:
        remote = LocalRemote(self.address.raw, self.dst)
        self.remote = remote
        return MirrorEngine(
            "p", self.src, IgnoreRules(self.src), remote, self.db, Coalescer(0.0, 1.0), **kw
        )

    def write(self, rel: str, data: str | bytes) -> Path:
        p = self.src / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data.encode() if isinstance(data, str) else data)
        return p

    def sync(self) -> None:
        self.engine.full_scan()


@pytest.fixture
def rig(tmp_path: Path) -> Rig:
    return Rig(tmp_path)


def test_first_sync_copies_the_tree_and_records_it(rig: Rig) -> None:
    rig.write("train.py", "print(1)\n")
    rig.write("models/net.py", "class Net: ...\n")
    rig.sync()
    assert tree(rig.dst) == tree(rig.src)
    assert rig.db.count("p")[0] == 2
    assert rig.engine.state is ProjectState.IDLE


def test_unchanged_rescan_copies_nothing(rig: Rig) -> None:
    rig.write("a.py", "a")
    rig.sync()
    before = os.stat(rig.dst / "a.py").st_ino
    rig.sync()
    assert os.stat(rig.dst / "a.py").st_ino == before  # not rewritten


def test_touch_without_content_change_is_not_copied(rig: Rig) -> None:
    p = rig.write("a.py", "a")
    rig.sync()
    before = os.stat(rig.dst / "a.py").st_ino
    os.utime(p, ns=(1, 2_000_000_000))
    rig.sync()
    assert os.stat(rig.dst / "a.py").st_ino == before
    assert rig.db.file("p", "a.py").mtime_ns == 2_000_000_000


def test_deletion_goes_to_the_target_trash(rig: Rig) -> None:
    rig.write("keep.py", "k")
    rig.write("old/gone.py", "g")
    rig.sync()
    (rig.src / "old/gone.py").unlink()
    (rig.src / "old").rmdir()
    rig.sync()
    assert "old/gone.py" not in tree(rig.dst)
    assert (rig.dst / ".syncd-trash/old/gone.py").read_text() == "g"
    assert not (rig.dst / "old").exists()  # emptied folder pruned


def test_deletions_keep_leaves_the_remote_copy(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    rig.engine = rig.make_engine(deletions="keep")
    rig.write("a.py", "a")
    rig.write("b.py", "b")
    rig.sync()
    (rig.src / "a.py").unlink()
    rig.sync()
    assert (rig.dst / "a.py").exists()
    assert rig.db.file("p", "a.py") is None


def test_remote_edit_behind_our_back_is_kept_as_conflict_copy(rig: Rig) -> None:
    rig.write("cfg.yaml", "lr: 1\n")
    rig.sync()
    (rig.dst / "cfg.yaml").write_text("lr: 2  # edited in Colab\n")
    rig.write("cfg.yaml", "lr: 3\n")
    rig.sync()
    assert (rig.dst / "cfg.yaml").read_text() == "lr: 3\n"
    conflicts = [p for p in tree(rig.dst) if "(conflict " in p]
    assert len(conflicts) == 1 and conflicts[0].startswith("cfg (conflict ")
    assert (rig.dst / conflicts[0]).read_text() == "lr: 2  # edited in Colab\n"
    assert rig.engine.status().conflicts == 1


def test_untracked_remote_file_with_other_content_is_not_overwritten(rig: Rig) -> None:
    rig.dst.mkdir()
    (rig.dst / "notes.txt").write_text("theirs")
    rig.write("notes.txt", "ours")
    rig.sync()
    assert (rig.dst / "notes.txt").read_text() == "ours"
    kept = [p for p in tree(rig.dst) if p.startswith("notes (conflict ")]
    assert kept and (rig.dst / kept[0]).read_text() == "theirs"


def test_identical_remote_file_is_adopted_without_copy(rig: Rig) -> None:
    rig.dst.mkdir()
    (rig.dst / "same.bin").write_bytes(b"x" * 1000)
    ino = os.stat(rig.dst / "same.bin").st_ino
    rig.write("same.bin", b"x" * 1000)
    rig.sync()
    assert os.stat(rig.dst / "same.bin").st_ino == ino
    assert rig.db.file("p", "same.bin").md5 == md5(rig.src / "same.bin")


def test_remote_file_deleted_by_hand_is_uploaded_again(rig: Rig) -> None:
    rig.write("a.py", "a")
    rig.sync()
    (rig.dst / "a.py").unlink()
    rig.sync()
    assert (rig.dst / "a.py").read_text() == "a"


def test_move_found_by_scan_is_a_move_not_a_copy(rig: Rig) -> None:
    rig.write("a/big.bin", os.urandom(4096))
    rig.sync()
    ino = os.stat(rig.dst / "a/big.bin").st_ino
    os.makedirs(rig.src / "b")
    os.rename(rig.src / "a/big.bin", rig.src / "b/big.bin")
    rig.sync()
    assert os.stat(rig.dst / "b/big.bin").st_ino == ino
    assert not (rig.dst / ".syncd-trash").exists()


def test_mass_deletion_pauses_and_trashes_nothing(rig: Rig) -> None:
    for i in range(100):
        rig.write(f"f{i}.txt", str(i))
    rig.sync()
    for i in range(60):
        (rig.src / f"f{i}.txt").unlink()
    rig.sync()
    st = rig.engine.status()
    assert st.state is ProjectState.PAUSED
    assert "--confirm-deletes" in (st.reason or "")
    assert len(tree(rig.dst)) == 100
    # the pause survives a restart, and confirming carries the deletions out
    rig.engine = rig.make_engine()
    assert rig.engine.status().state is ProjectState.PAUSED
    rig.engine.resume(confirm_deletes=True)
    rig.sync()
    assert len(tree(rig.dst)) == 40
    assert rig.engine.status().state is ProjectState.IDLE


def test_missing_project_folder_pauses_without_trashing(rig: Rig) -> None:
    for i in range(3):
        rig.write(f"f{i}.txt", str(i))
    rig.sync()
    rig.src.rename(rig.src.with_name("moved-away"))
    rig.sync()
    st = rig.engine.status()
    assert st.state is ProjectState.PAUSED and "missing" in (st.reason or "")
    assert len(tree(rig.dst)) == 3


def test_empty_project_folder_pauses_without_trashing(rig: Rig) -> None:
    rig.write("a.txt", "a")
    rig.sync()
    (rig.src / "a.txt").unlink()
    rig.sync()
    assert rig.engine.status().state is ProjectState.PAUSED
    assert (rig.dst / "a.txt").exists()


def test_symlinks_are_never_followed(rig: Rig, tmp_path: Path, caplog) -> None:
    caplog.set_level(logging.INFO, logger="syncd")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "private.txt").write_text("do not upload")
    rig.write("real.txt", "r")
    os.symlink(outside, rig.src / "link-out")
    os.symlink(rig.src / "loop", rig.src / "loop")
    rig.sync()
    assert tree(rig.dst) == {"real.txt": md5(rig.src / "real.txt")}
    assert rig.engine.status().file_errors == {}  # a deliberate skip, not an error
    assert "skipping link-out: symlink" in caplog.text and "skipping loop: symlink" in caplog.text


def test_ignored_and_secret_files_are_not_mirrored(rig: Rig) -> None:
    rig.write("train.py", "t")
    rig.write(".env", "KEY=1")
    rig.write("kaggle.json", "{}")
    rig.write("__pycache__/x.pyc", "c")
    rig.write(".git/HEAD", "ref")
    rig.write(".gitignore", "*.log\n!keep.log\n")
    rig.write("a.log", "no")
    rig.write("keep.log", "yes")
    rig.sync()
    assert set(tree(rig.dst)) == {"train.py", ".gitignore", "keep.log"}


def test_file_changing_during_copy_is_not_recorded_as_final(rig: Rig) -> None:
    p = rig.write("grow.bin", b"a" * 100)
    real_upload = rig.remote.upload
    calls = []

    def upload_while_writer_appends(path, source, replace):
        calls.append(path)
        if len(calls) == 1:
            with open(p, "ab") as f:  # a writer appends while we copy
                f.write(b"b" * 100)
                os.utime(p, ns=(1, 5_000_000_000))
        return real_upload(path, source, replace)

    rig.remote.upload = upload_while_writer_appends  # the filesystem race, not our logic
    rig.sync()
    assert md5(rig.dst / "grow.bin") == md5(p) or not (rig.dst / "grow.bin").exists()
    rec = rig.db.file("p", "grow.bin")
    assert rec is None or rec.md5 == md5(p)


def test_rename_of_a_remotely_edited_file_keeps_the_edit(rig: Rig) -> None:
    rig.write("a.py", "v1")
    rig.sync()
    (rig.dst / "a.py").write_text("edited in Colab")
    os.rename(rig.src / "a.py", rig.src / "b.py")
    rig.sync()
    rig.write("b.py", "v2")
    rig.sync()
    assert (rig.dst / "b.py").read_text() == "v2"
    kept = [p for p in tree(rig.dst, skip=()) if "edited" in (rig.dst / p).read_text()]
    assert kept, "the remote edit must survive somewhere (as a.py or a conflict copy)"


def test_a_folder_replaced_by_a_symlink_is_not_read_through(rig: Rig, tmp_path: Path) -> None:
    rig.write("data/x.txt", "inside")
    rig.write("keep.txt", "k")
    rig.sync()
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "x.txt").write_text("PRIVATE, outside the project")
    (rig.src / "data/x.txt").unlink()
    (rig.src / "data").rmdir()
    os.symlink(outside, rig.src / "data")
    rig.sync()
    assert (rig.dst / "data/x.txt").read_text() == "inside"  # neither replaced nor trashed


def test_a_file_swapped_for_a_symlink_is_never_read_through(tmp_path: Path) -> None:
    from syncd.errors import FileError
    from syncd.fileio import open_source

    (tmp_path / "secret").write_text("key")
    os.symlink(tmp_path / "secret", tmp_path / "weights.bin")
    with pytest.raises(FileError, match="symlink"):
        open_source(tmp_path / "weights.bin", "weights.bin")


def test_a_locked_state_db_is_an_error_not_a_reset(tmp_path: Path) -> None:
    import sqlite3

    from syncd.errors import SyncdError

    db = StateDB(tmp_path / "s.db")
    db.close()
    other = sqlite3.connect(tmp_path / "s.db", timeout=0.1)
    other.execute("PRAGMA locking_mode=EXCLUSIVE")
    other.execute("BEGIN EXCLUSIVE")
    with pytest.raises(SyncdError, match="cannot open the state database"):
        StateDB(tmp_path / "s.db")
    other.rollback()
    other.close()
    assert not list(tmp_path.glob("*.corrupt-*"))

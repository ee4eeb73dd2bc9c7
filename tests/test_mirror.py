"""The mirror engine's behaviour, on every target: `local:`, `gdrive:` drive.file, `gdrive:` full.

These run the runner in-process through full scans (no watcher), so every
decision is deterministic; the end-to-end tests drive the same code through the
daemon and real events.  ``rig`` (tests/mirror_support.py) is parametrized over
the three targets; a case that only means something on one says so.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from syncd.db.statedb import StateDB
from syncd.mirror.model import ProjectState
from tests.chaos.targets import CONFLICT
from tests.mirror_support import TARGETS, Rig, rig_on

from .conftest import md5


@pytest.fixture(params=TARGETS)
def rig(request: pytest.FixtureRequest, tmp_path: Path, home: Path) -> Iterator[Rig]:
    yield from rig_on(request.param, tmp_path)


def live(rig: Rig) -> dict[str, str]:
    return rig.target.live()


def want(rig: Rig) -> dict[str, str]:
    """What the target should hold: every regular file of the project, by md5."""
    out = {}
    for dirpath, _dirs, names in os.walk(rig.src):
        for name in names:
            full = Path(dirpath) / name
            if not full.is_symlink() and full.is_file():
                out[str(full.relative_to(rig.src))] = md5(full)
    return out


def test_first_sync_copies_the_tree_and_records_it(rig: Rig) -> None:
    rig.write("train.py", "print(1)\n")
    rig.write("models/net.py", "class Net: ...\n")
    rig.sync()
    assert live(rig) == want(rig)
    assert rig.db.count("p")[0] == 2
    assert rig.engine.state is ProjectState.IDLE


def test_unchanged_rescan_sends_nothing(rig: Rig) -> None:
    rig.write("a.py", "a")
    rig.sync()
    before = rig.target.version("a.py")
    rig.sync()
    assert rig.target.version("a.py") == before  # not rewritten


def test_touch_without_content_change_is_not_sent(rig: Rig) -> None:
    p = rig.write("a.py", "a")
    rig.sync()
    before = rig.target.version("a.py")
    os.utime(p, ns=(1, 2_000_000_000))
    rig.sync()
    assert rig.target.version("a.py") == before
    rec = rig.db.file("p", "a.py")
    assert rec is not None and rec.mtime_ns == 2_000_000_000


def test_two_files_swapped_through_a_temp_name_are_sent_again(rig: Rig) -> None:
    """Same size, same mtime: only the inode (and ctime) tell them apart (issue #8)."""
    a, b = rig.write("a.txt", "contents A"), rig.write("b.txt", "contents B")
    for p in (a, b):
        os.utime(p, ns=(1, 1_500_000_000_000_000_000))
    rig.sync()
    os.rename(a, rig.src / "t")
    os.rename(b, a)
    os.rename(rig.src / "t", b)
    rig.sync()
    assert live(rig) == want(rig)


def test_chmod_alone_costs_a_hash_not_an_upload(rig: Rig) -> None:
    p = rig.write("a.py", "a")
    rig.sync()
    before = rig.target.version("a.py")
    os.chmod(p, 0o600)  # the ctime moves, nothing else
    rig.sync()
    assert rig.target.version("a.py") == before
    rec = rig.db.file("p", "a.py")
    assert rec is not None and rec.ctime_ns == os.stat(p).st_ctime_ns


def test_deletion_goes_to_the_target_trash(rig: Rig) -> None:
    rig.write("keep.py", "k")
    rig.write("old/gone.py", "g")
    rig.sync()
    (rig.src / "old/gone.py").unlink()
    (rig.src / "old").rmdir()
    rig.sync()
    assert "old/gone.py" not in live(rig)
    assert rig.target.trashed().get("old/gone.py") == [hashlib.md5(b"g").hexdigest()]
    if rig.kind != "gdrive-file":  # drive.file cannot see others' files: folders stay
        assert "old" not in rig.target.live_dirs()


def test_deletions_keep_leaves_the_remote_copy(rig: Rig) -> None:
    rig.engine = rig.make_engine(deletions="keep")
    rig.write("a.py", "a")
    rig.write("b.py", "b")
    rig.sync()
    (rig.src / "a.py").unlink()
    rig.sync()
    assert "a.py" in live(rig)
    assert rig.db.file("p", "a.py") is None


def test_remote_edit_behind_our_back_is_kept_as_conflict_copy(rig: Rig) -> None:
    rig.write("cfg.yaml", "lr: 1\n")
    rig.sync()
    rig.target.edit("cfg.yaml", b"lr: 2  # edited in Colab\n")
    rig.write("cfg.yaml", "lr: 3\n")
    rig.sync()
    assert rig.target.read("cfg.yaml") == b"lr: 3\n"
    conflicts = [p for p in live(rig) if CONFLICT.search(p)]
    assert len(conflicts) == 1 and conflicts[0].startswith("cfg (conflict ")
    assert rig.target.read(conflicts[0]) == b"lr: 2  # edited in Colab\n"
    assert rig.engine.status().conflicts == 1


def test_conflicts_within_one_second_never_share_a_name(rig: Rig) -> None:
    rig.write("a.txt", "v0")
    rig.sync()
    theirs = []
    for i in range(4):
        theirs.append(f"theirs {i}".encode())
        rig.target.edit("a.txt", theirs[-1])
        rig.write("a.txt", f"ours {i}")
        rig.sync()
    kept = sorted(rig.target.read(p) for p in live(rig) if CONFLICT.search(p))
    assert kept == sorted(theirs)
    assert rig.engine.status().conflicts == 4


def test_untracked_remote_file_with_other_content_is_not_overwritten(rig: Rig) -> None:
    if rig.kind == "gdrive-file":
        pytest.skip("drive.file: files other apps made are invisible (a second title instead)")
    rig.target.put("notes.txt", b"theirs")
    rig.write("notes.txt", "ours")
    rig.sync()
    assert rig.target.read("notes.txt") == b"ours"
    kept = [p for p in live(rig) if p.startswith("notes (conflict ")]
    assert kept and rig.target.read(kept[0]) == b"theirs"


def test_identical_remote_file_is_adopted_without_copy(rig: Rig) -> None:
    if rig.kind == "gdrive-file":
        pytest.skip("drive.file: files other apps made are invisible")
    rig.target.put("same.bin", b"x" * 1000)
    before = rig.target.version("same.bin")
    rig.write("same.bin", b"x" * 1000)
    rig.sync()
    assert rig.target.version("same.bin") == before
    rec = rig.db.file("p", "same.bin")
    assert rec is not None and rec.md5 == md5(rig.src / "same.bin")


def test_remote_file_deleted_by_hand_is_uploaded_again(rig: Rig) -> None:
    rig.write("a.py", "a")
    rig.sync()
    rig.target.remove("a.py")
    rig.sync()
    assert rig.target.read("a.py") == b"a"


def test_move_found_by_scan_is_a_move_not_a_copy(rig: Rig) -> None:
    rig.write("a/big.bin", os.urandom(4096))
    rig.write("keep.txt", "k")
    rig.sync()
    ident = rig.target.ident("a/big.bin")
    os.makedirs(rig.src / "b")
    os.rename(rig.src / "a/big.bin", rig.src / "b/big.bin")
    rig.sync()
    assert rig.target.ident("b/big.bin") == ident
    assert rig.target.trashed() == {}
    assert live(rig) == want(rig)


def test_a_deleted_empty_file_is_trashed_not_moved_onto_another_empty_file(rig: Rig) -> None:
    """Found by the chaos run: every empty file has one md5, so "deleted + created with the
    same md5" paired unrelated empty files and the deleted one never reached the trash."""
    rig.write("a/empty.txt", b"")
    rig.write("keep.txt", "k")
    rig.sync()
    (rig.src / "a/empty.txt").unlink()
    rig.write("b/other-empty.txt", b"")
    rig.sync()
    assert live(rig) == want(rig)
    assert "a/empty.txt" in rig.target.trashed()


def test_a_create_interrupted_by_a_kill_is_not_left_live(rig: Rig) -> None:
    """Killed while Drive made a file (before the index row): if the file is deleted locally
    before the next start, that start trashes it instead of leaving it live."""
    if rig.kind == "local":
        pytest.skip("local: a create lands by one rename, no request in flight to be cut")
    rig.write("keep.txt", "k")
    rig.sync()
    src = rig.write("gone.txt", "made, then killed")
    result = rig.remote.upload("gone.txt", src, None)  # Drive made it; the answer was lost
    intent = {"id": result.entry.id, "md5": result.md5}
    rig.db.kv_set("p", "new:gone.txt", json.dumps(intent))  # as the kill left it
    src.unlink()
    rig.close()
    rig.engine = rig.make_engine()
    rig.sync()
    assert live(rig) == want(rig)
    assert "gone.txt" in rig.target.trashed()
    assert rig.db.kv_items("p", "new:") == {}


def test_folder_move_then_edit_makes_no_conflict_copy(rig: Rig) -> None:
    """Children of a moved folder must stay "ours" (on local: ids are paths; issue #8)."""
    rig.write("models/net.py", "v1")
    rig.write("models/util.py", "u")
    rig.sync()
    os.rename(rig.src / "models", rig.src / "nets")
    rig.engine.applier.moves([("models", "nets", True)])  # what the watcher reports
    rig.sync()
    for i in range(2):
        rig.write("nets/net.py", f"v{i + 2}")
        rig.sync()
    assert [p for p in live(rig) if CONFLICT.search(p)] == []
    assert live(rig) == want(rig)
    assert rig.engine.status().conflicts == 0


def test_folder_replaced_by_a_file_and_back(rig: Rig) -> None:
    rig.write("d/x.txt", "x")
    rig.write("d/y.txt", "y")
    rig.write("keep.txt", "k")
    rig.sync()
    shutil.rmtree(rig.src / "d")
    rig.write("d", "now a file")
    rig.sync()
    assert live(rig) == want(rig)
    assert {"d/x.txt", "d/y.txt"} <= set(rig.target.trashed())
    assert rig.engine.status().file_errors == {}
    (rig.src / "d").unlink()
    rig.write("d/inner.txt", "a folder again")
    rig.sync()
    assert live(rig) == want(rig)
    assert "d" in rig.target.trashed()
    assert rig.engine.state is ProjectState.IDLE


def test_mass_deletion_pauses_and_trashes_nothing(rig: Rig) -> None:
    for i in range(20):
        rig.write(f"f{i}.txt", str(i))
    rig.sync()
    for i in range(12):
        (rig.src / f"f{i}.txt").unlink()
    rig.sync()
    st = rig.engine.status()
    assert st.state is ProjectState.PAUSED
    assert "--confirm-deletes" in (st.reason or "")
    assert len(live(rig)) == 20
    # the pause survives a restart, and confirming carries the deletions out
    rig.close()
    rig.engine = rig.make_engine()
    assert rig.engine.status().state is ProjectState.PAUSED
    rig.engine.resume(confirm_deletes=True)
    rig.sync()
    assert len(live(rig)) == 8
    assert rig.engine.status().state is ProjectState.IDLE


def test_every_file_gone_but_git_pauses(rig: Rig) -> None:
    rig.write(".git/HEAD", "ref: refs/heads/main\n")
    for i in range(3):
        rig.write(f"f{i}.py", str(i))
    rig.sync()
    for i in range(3):
        (rig.src / f"f{i}.py").unlink()
    rig.sync()
    assert rig.engine.status().state is ProjectState.PAUSED
    assert len(live(rig)) == 3


def test_the_only_file_renamed_is_not_a_mass_deletion(rig: Rig) -> None:
    rig.write("a.py", "a")
    rig.sync()
    os.rename(rig.src / "a.py", rig.src / "b.py")
    rig.sync()
    assert live(rig) == want(rig)
    assert rig.engine.state is ProjectState.IDLE


def test_missing_project_folder_pauses_without_trashing(rig: Rig) -> None:
    for i in range(3):
        rig.write(f"f{i}.txt", str(i))
    rig.sync()
    rig.src.rename(rig.src.with_name("moved-away"))
    rig.sync()
    st = rig.engine.status()
    assert st.state is ProjectState.PAUSED and "missing" in (st.reason or "")
    assert len(live(rig)) == 3


def test_empty_project_folder_pauses_without_trashing(rig: Rig) -> None:
    rig.write("a.txt", "a")
    rig.sync()
    (rig.src / "a.txt").unlink()
    rig.sync()
    assert rig.engine.status().state is ProjectState.PAUSED
    assert "a.txt" in live(rig)


def test_symlinks_are_never_followed(rig: Rig, tmp_path: Path, caplog) -> None:
    caplog.set_level(logging.INFO, logger="syncd")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "private.txt").write_text("do not upload")
    rig.write("real.txt", "r")
    os.symlink(outside, rig.src / "link-out")
    os.symlink(rig.src / "loop", rig.src / "loop")
    rig.sync()
    assert set(live(rig)) == {"real.txt"}
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
    assert set(live(rig)) == {"train.py", ".gitignore", "keep.log"}


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
    assert live(rig).get("grow.bin") in (md5(p), None)
    rec = rig.db.file("p", "grow.bin")
    assert rec is None or rec.md5 == md5(p)


def test_rename_of_a_remotely_edited_file_keeps_the_edit(rig: Rig) -> None:
    rig.write("a.py", "v1")
    rig.sync()
    rig.target.edit("a.py", b"edited in Colab")
    os.rename(rig.src / "a.py", rig.src / "b.py")
    rig.sync()
    rig.write("b.py", "v2")
    rig.sync()
    assert rig.target.read("b.py") == b"v2"
    kept = [p for p in live(rig) if rig.target.read(p) == b"edited in Colab"]
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
    assert rig.target.read("data/x.txt") == b"inside"  # neither replaced nor trashed


def test_a_long_utf8_name_and_one_past_path_max_stall_nothing(rig: Rig) -> None:
    long_name = "é" * 127 + "x"  # 255 bytes
    rig.write(long_name, "long")
    rig.write("a.txt", "a")
    rig.sync()
    assert live(rig) == want(rig)
    for _ in range(2):  # deleted twice: the trash name must fit as well
        (rig.src / long_name).unlink()
        rig.write("b.txt", "b")
        rig.sync()
        rig.write(long_name, "long again")
        rig.sync()
    (rig.src / "a.txt").unlink()
    rig.sync()
    assert live(rig) == want(rig)
    assert "a.txt" in rig.target.trashed()
    assert rig.engine.state is ProjectState.IDLE and rig.engine.status().file_errors == {}


def _past_path_max(src: Path) -> str:
    """A folder chain deeper than PATH_MAX (4096 bytes), built relative to open folders."""
    cur = os.open(src, os.O_RDONLY)
    try:
        for i in range(20):
            part = f"{i:02d}" + "x" * 200
            os.mkdir(part, dir_fd=cur)
            nxt = os.open(part, os.O_RDONLY, dir_fd=cur)
            os.close(cur)
            cur = nxt
        fd = os.open("leaf.txt", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=cur)
        os.write(fd, b"beyond PATH_MAX\n")
        os.close(fd)
    finally:
        os.close(cur)
    return "00" + "x" * 200


def test_a_path_past_path_max_is_one_error_that_leaves_when_it_is_gone(rig: Rig) -> None:
    rig.write("ok.txt", "o")
    top = _past_path_max(rig.src)
    rig.sync()
    st = rig.engine.status()
    assert st.state is ProjectState.IDLE and "ok.txt" in live(rig)
    assert st.file_errors and st.last_error is not None  # one folder could not be read
    rig.write("after.txt", "still mirrored")
    rig.sync()
    assert rig.target.read("after.txt") == b"still mirrored"
    subprocess.run(["rm", "-rf", str(rig.src / top)], check=True)  # rm copes with the depth
    rig.sync()
    st = rig.engine.status()
    assert st.file_errors == {} and st.last_error is None


def test_a_locked_state_db_is_an_error_not_a_reset(tmp_path: Path) -> None:
    from syncd.errors import SyncdError

    db = StateDB(tmp_path / "s.db")
    db.close()
    other = sqlite3.connect(tmp_path / "s.db", timeout=0.1)
    other.execute("PRAGMA locking_mode=EXCLUSIVE")
    other.execute("BEGIN EXCLUSIVE")
    with pytest.raises(SyncdError, match="cannot open the state database"):
        StateDB(tmp_path / "s.db", busy_timeout=0.1)  # the default 5 s would be waited out
    other.rollback()
    other.close()
    assert not list(tmp_path.glob("*.corrupt-*"))


def test_a_file_swapped_for_a_symlink_is_never_read_through(tmp_path: Path) -> None:
    from syncd.errors import FileError
    from syncd.fileio import open_source

    (tmp_path / "secret").write_text("key")
    os.symlink(tmp_path / "secret", tmp_path / "weights.bin")
    with pytest.raises(FileError, match="symlink"):
        open_source(tmp_path / "weights.bin", "weights.bin")

"""One behaviour suite for every mirror target (rclone's fstests habit).

Each case runs unchanged against ``local:`` (a folder in tmp_path) and
``gdrive:`` (the real pydrive2/googleapiclient stack on FakeDrive, with the
drive.file scope and with the full scope).  A ``Target`` gives the tests a way
to look at what the target holds and to act as another client would.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from syncd.db.statedb import StateDB
from syncd.errors import FileChanged, FileError, TargetUnavailable
from syncd.remotes import Remote, RemoteEntry
from syncd.remotes.local import TRASH, LocalRemote
from tests.conftest import tree
from tests.fakes.drive_server import APP, COLAB, FakeDrive
from tests.gdrive_support import files_below, open_gdrive

MiB = 1024 * 1024


@dataclass
class Target:
    remote: Remote
    files: Callable[[], dict[str, str]]  # path → md5 of every file the target holds
    recoverable: Callable[[str, str], bool]  # a trashed copy with this name and md5 exists
    write_foreign: Callable[[str, bytes], None]  # another client writes a file at path
    lose_next_answer: Callable[[], None]  # the next write is done but its answer lost
    reopen: Callable[[], Remote]  # a new remote object on the same target and state
    remove_root: Callable[[], None]  # the target folder disappears (unmounted, trashed)
    prunes: bool  # prune_folder removes empty folders (drive.file cannot see others' files)
    sees_foreign: bool  # files another client creates are visible (not under drive.file)


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def _local(tmp_path: Path) -> Target:
    root = tmp_path / "target"

    def make() -> Remote:
        return LocalRemote(f"local:{root}", root)

    def recoverable(name: str, digest: str) -> bool:
        trash = root / TRASH
        return any(
            Path(p).name.startswith(Path(name).stem[:40]) and h == digest
            for p, h in tree(trash).items()
        )

    def write_foreign(path: str, data: bytes) -> None:
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(data)

    def remove_root() -> None:
        root.rename(tmp_path / "unmounted")

    return Target(
        make(),
        lambda: tree(root),
        recoverable,
        write_foreign,
        lambda: None,
        make,
        remove_root,
        True,
        True,
    )


def _gdrive(tmp_path: Path, fake: FakeDrive, scope: str) -> Target:
    db = StateDB(tmp_path / "state.db")

    def make() -> Remote:
        return open_gdrive(fake, tmp_path, db=db, scope=scope)

    def recoverable(name: str, digest: str) -> bool:
        return any(f["title"] == name and f.get("md5Checksum") == digest for f in fake.trashed())

    def write_foreign(path: str, data: bytes) -> None:
        found = fake.find("syncd/p/" + path, app=APP)
        if found is None:
            fake.put_file("syncd/p/" + path, data, by=COLAB)
        else:
            fake.set_content(found["id"], data)

    def lose_next_answer() -> None:
        fake.inject(lose_response=True, method="POST", path_contains="/upload/")

    def remove_root() -> None:
        found = fake.find("syncd/p", app=APP)
        assert found is not None
        fake.trash(found["id"])

    return Target(
        make(),
        lambda: files_below(fake),
        recoverable,
        write_foreign,
        lose_next_answer,
        make,
        remove_root,
        scope == "full",
        scope == "full",
    )


@pytest.fixture(params=["local", "gdrive-file", "gdrive-full"])
def target(request: pytest.FixtureRequest, tmp_path: Path, home: Path) -> Iterator[Target]:
    if request.param == "local":
        t = _local(tmp_path)
        t.remote.check(create=True)
        yield t
        return
    with FakeDrive() as fake:
        t = _gdrive(tmp_path, fake, request.param.split("-")[1])
        t.remote.check(create=True)
        yield t
        t.remote.close()
        assert fake.internal_errors == []
        assert fake.duplicates() == []


def put(tmp_path: Path, data: bytes, name: str = "src.bin") -> Path:
    src = tmp_path / "src" / name
    src.parent.mkdir(parents=True, exist_ok=True)
    src.write_bytes(data)
    return src


def upload(t: Target, tmp_path: Path, path: str, data: bytes) -> RemoteEntry:
    known = t.remote.stat(path, None)
    result = t.remote.upload(path, put(tmp_path, data), known)
    assert result.md5 == md5(data) and result.size == len(data)
    return result.entry


def test_create_then_stat(target: Target, tmp_path: Path) -> None:
    entry = upload(target, tmp_path, "models/net.py", b"class Net: ...\n")
    assert target.files() == {"models/net.py": md5(b"class Net: ...\n")}
    cur = target.remote.stat("models/net.py", entry)
    assert cur is not None and (cur.id, cur.md5, cur.size) == (entry.id, entry.md5, 15)
    fresh = target.reopen()
    again = fresh.stat("models/net.py", None)
    assert again is not None and again.id == entry.id and again.md5 == entry.md5
    assert target.remote.stat("models/missing.py", None) is None
    assert target.remote.stat("nowhere/missing.py", None) is None


def test_update_keeps_one_file(target: Target, tmp_path: Path) -> None:
    first = upload(target, tmp_path, "train.py", b"print('v1')\n")
    second = upload(target, tmp_path, "train.py", b"print('v2')\n")
    assert target.files() == {"train.py": md5(b"print('v2')\n")}
    assert second.md5 != first.md5
    if target.remote.features.stable_ids:
        assert second.id == first.id  # Drive: a new revision of the same file


def test_move_file_and_folder(target: Target, tmp_path: Path) -> None:
    a = upload(target, tmp_path, "src/a.py", b"a")
    upload(target, tmp_path, "src/sub/b.py", b"b")
    moved = target.remote.move(a, "lib/a2.py")
    assert moved.path == "lib/a2.py" and moved.md5 == md5(b"a")
    assert target.remote.stat("src/a.py", None) is None
    assert target.remote.stat("lib/a2.py", moved) is not None
    folder = target.remote.folder("src")
    assert folder is not None and folder.is_dir
    target.remote.move(folder, "pkg/src2")
    assert target.files() == {"lib/a2.py": md5(b"a"), "pkg/src2/sub/b.py": md5(b"b")}
    assert target.remote.folder("src") is None
    found = target.remote.stat("pkg/src2/sub/b.py", None)
    assert found is not None and found.md5 == md5(b"b")


def test_trash_is_recoverable_and_idempotent(target: Target, tmp_path: Path) -> None:
    entry = upload(target, tmp_path, "old/notes.txt", b"keep me")
    target.remote.trash(entry)
    target.remote.trash(entry)  # a retried trash is not an error
    assert target.remote.stat("old/notes.txt", None) is None
    assert "old/notes.txt" not in target.files()
    assert target.recoverable("notes.txt", md5(b"keep me"))


def test_stat_detects_changes_made_by_others(target: Target, tmp_path: Path) -> None:
    entry = upload(target, tmp_path, "cfg.yaml", b"lr: 0.1\n")
    target.write_foreign("cfg.yaml", b"lr: 0.5  # edited in Colab\n")
    cur = target.remote.stat("cfg.yaml", entry)
    if cur == entry:  # answered from what the remote knew (Remote.stat): then the write
        with pytest.raises(FileChanged):  # over it is refused and nothing is written...
            target.remote.upload("cfg.yaml", put(tmp_path, b"lr: 0.2\n"), cur)
        assert target.files() == {"cfg.yaml": md5(b"lr: 0.5  # edited in Colab\n")}
        target.remote.begin_batch()
        cur = target.remote.stat("cfg.yaml", entry)  # ...and the next batch sees it
    assert cur is not None and cur.md5 == md5(b"lr: 0.5  # edited in Colab\n")
    target.write_foreign("new-in-colab.txt", b"hello")
    other = target.reopen().stat("new-in-colab.txt", None)  # gdrive: past the listing cache
    if target.sees_foreign:
        assert other is not None and other.md5 == md5(b"hello")
    else:  # drive.file: what Colab wrote is invisible to syncd (Drive answers 404 / nothing)
        assert other is None


def test_retry_after_a_lost_answer_makes_one_file(target: Target, tmp_path: Path) -> None:
    target.lose_next_answer()
    entry = upload(target, tmp_path, "data/x.csv", b"1,2\n")
    assert target.files() == {"data/x.csv": md5(b"1,2\n")}
    assert target.remote.stat("data/x.csv", entry) is not None


@pytest.mark.parametrize(
    "name",
    ["données/été ünïcødé ✓.txt", "日本語/ノート.py", "it's a \"quote\" \\ and 'more'.txt"],
)
def test_unicode_and_odd_names(target: Target, tmp_path: Path, name: str) -> None:
    entry = upload(target, tmp_path, name, name.encode())
    assert target.files() == {name: md5(name.encode())}
    assert target.reopen().stat(name, None) is not None
    assert target.remote.stat(name, entry) is not None


def test_empty_file(target: Target, tmp_path: Path) -> None:
    entry = upload(target, tmp_path, "__init__.py", b"")
    assert entry.size == 0 and target.files() == {"__init__.py": md5(b"")}


def test_50_mb_file(target: Target, tmp_path: Path) -> None:
    data = os.urandom(50 * MiB)
    upload(target, tmp_path, "weights/model.bin", data)
    assert target.files() == {"weights/model.bin": md5(data)}


def test_list_all_sees_files_not_folders(target: Target, tmp_path: Path) -> None:
    for path in ("a.txt", "d/b.txt", "d/e/c.txt"):
        upload(target, tmp_path, path, path.encode())
    listed = {e.path: e for e in target.reopen().list_all()}
    assert set(listed) == {"a.txt", "d/b.txt", "d/e/c.txt"}
    assert all(not e.is_dir and e.md5 in (None, md5(p.encode())) for p, e in listed.items())


def test_prune_removes_only_empty_folders(target: Target, tmp_path: Path) -> None:
    keep = upload(target, tmp_path, "a/keep.txt", b"k")
    gone = upload(target, tmp_path, "a/b/c/gone.txt", b"g")
    target.remote.trash(gone)
    target.remote.prune_folder("a/b/c")
    assert (target.remote.folder("a/b") is None) == target.prunes
    assert target.remote.folder("a") is not None  # still holds keep.txt
    assert target.remote.stat("a/keep.txt", keep) is not None


def test_vanished_source_is_file_changed(target: Target, tmp_path: Path) -> None:
    with pytest.raises(FileChanged):
        target.remote.upload("x.txt", tmp_path / "does-not-exist", None)


def test_missing_root_is_only_created_when_asked(target: Target, tmp_path: Path) -> None:
    upload(target, tmp_path, "a.txt", b"a")
    target.remove_root()
    fresh = target.reopen()
    with pytest.raises(TargetUnavailable):
        fresh.check(create=False)
    fresh.check(create=True)
    upload(dataclasses.replace(target, remote=fresh), tmp_path, "b.txt", b"b")
    assert target.files() == {"b.txt": md5(b"b")}


def test_features_say_what_the_target_is(target: Target) -> None:
    f = target.remote.features
    assert f.trash  # every mirror target keeps deletions recoverable
    assert f.prunes_folders == target.prunes
    assert f.stable_ids == f.duplicate_names  # Drive: both; a folder: neither


def test_move_never_replaces_what_is_at_the_destination(target: Target, tmp_path: Path) -> None:
    if target.remote.features.duplicate_names:
        pytest.skip("titles may repeat: the engine picks a free one (mirror.apply.keep_conflict)")
    a = upload(target, tmp_path, "a.txt", b"a")
    upload(target, tmp_path, "b.txt", b"b")
    with pytest.raises(FileError):
        target.remote.move(a, "b.txt")
    assert target.files() == {"a.txt": md5(b"a"), "b.txt": md5(b"b")}


def test_one_name_trashed_twice_keeps_both_copies(target: Target, tmp_path: Path) -> None:
    name = "n" * 251 + ".txt"  # 255 bytes: the trash's suffix must still fit
    first = upload(target, tmp_path, name, b"first")
    target.remote.trash(first)
    second = upload(target, tmp_path, name, b"second")
    target.remote.trash(second)
    assert target.files() == {}
    assert target.recoverable(name, md5(b"first"))
    assert target.recoverable(name, md5(b"second"))


def test_a_file_trashed_where_a_folder_was_trashed_before(target: Target, tmp_path: Path) -> None:
    inner = upload(target, tmp_path, "f/inner.txt", b"in a folder")
    target.remote.trash(inner)
    target.remote.prune_folder("f")
    outer = upload(target, tmp_path, "f", b"a file now") if target.prunes else None
    if outer is not None:
        target.remote.trash(outer)
        assert target.recoverable("f", md5(b"a file now"))
    assert target.recoverable("inner.txt", md5(b"in a folder"))

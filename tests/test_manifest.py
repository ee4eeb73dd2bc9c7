"""The target's manifest (`.syncd/manifest.json`, mirror.manifest), on every target.

The runner runs in-process through full scans (as in test_mirror); what is checked
is what the target holds, read without syncd's help, and on the fake Drive the
requests that wrote it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from syncd.db.statedb import StateDB
from syncd.mirror.manifest import MANIFEST_PATH, STATE_KEY, manifest_record
from tests.mirror_support import TARGETS, Rig, rig_on

from .conftest import md5


@pytest.fixture(params=TARGETS)
def rig(request: pytest.FixtureRequest, tmp_path: Path, home: Path) -> Iterator[Rig]:
    yield from rig_on(request.param, tmp_path)


def manifest_on_target(rig: Rig) -> dict:
    """The manifest as the target holds it (read from the fake or the folder, not from syncd)."""
    if rig.kind == "local":
        return json.loads((rig.dst / MANIFEST_PATH).read_bytes())
    assert rig.fake is not None
    item = rig.fake.find(f"syncd/p/{MANIFEST_PATH}")
    assert item is not None, "no manifest on the fake Drive"
    return json.loads(rig.fake.content(item["id"]))


def target_ids(rig: Rig) -> dict[str, str]:
    if rig.kind == "local":
        return {p: p for p in rig.target.live()}
    assert rig.fake is not None
    return {p: str(rig.target.ident(p)) for p in rig.target.live()}


def manifest_writes(rig: Rig) -> int:
    """Requests that wrote the manifest (Drive: inserts or updates of manifest.json)."""
    assert rig.fake is not None
    return sum(1 for r in rig.fake.requests if r.title == "manifest.json")


def test_manifest_lists_exactly_the_mirrored_files(rig: Rig) -> None:
    rig.write("train.py", "print('hi')\n")
    rig.write("models/net.py", "x = 1\n")
    rig.write("ignored.pyc", b"\0")
    rig.sync()
    m = manifest_on_target(rig)
    assert m["seq"] == 1 and m["project"] == "p" and m["at"].endswith("Z")
    files = m["files"]
    assert set(files) == {"train.py", "models/net.py"} == set(rig.target.live())
    ids = target_ids(rig)
    for path, f in files.items():
        assert f["md5"] == md5(rig.src / path)
        assert f["size"] == (rig.src / path).stat().st_size
        assert f["id"] == ids[path]
    rec = manifest_record(rig.db, "p")
    assert rec is not None and rec.seq == 1 and rec.files == 2


def test_a_50_file_batch_costs_one_manifest_request_and_keeps_the_id(rig: Rig) -> None:
    if rig.fake is None:
        pytest.skip("requests are counted on the fake Drive")
    rig.fake.set_write_limit(None)
    rig.write("a.py", "a")
    rig.sync()
    first = rig.fake.find(f"syncd/p/{MANIFEST_PATH}")
    assert first is not None
    rig.fake.reset_log()
    for i in range(50):
        rig.write(f"pkg/m{i}.py", f"v = {i}\n")
    rig.sync()
    assert manifest_writes(rig) == 1
    after = rig.fake.find(f"syncd/p/{MANIFEST_PATH}")
    assert after is not None and after["id"] == first["id"]
    m = manifest_on_target(rig)
    assert m["seq"] == 2 and len(m["files"]) == 51


def test_nothing_changed_writes_nothing(rig: Rig) -> None:
    rig.write("a.py", "a")
    rig.sync()
    before = manifest_on_target(rig)
    if rig.fake is not None:
        rig.fake.reset_log()
    rig.sync()
    assert manifest_on_target(rig)["seq"] == before["seq"]
    if rig.fake is not None:
        assert manifest_writes(rig) == 0


def test_edits_and_deletions_show_in_the_next_manifest(rig: Rig) -> None:
    rig.write("a.py", "a")
    rig.write("b.py", "b")
    rig.sync()
    rig.write("a.py", "a2")
    (rig.src / "b.py").unlink()
    rig.sync()
    m = manifest_on_target(rig)
    assert m["seq"] == 2
    assert set(m["files"]) == {"a.py"}
    assert m["files"]["a.py"]["md5"] == md5(rig.src / "a.py")


def test_the_manifest_is_never_trashed_and_a_local_one_is_not_mirrored(rig: Rig) -> None:
    rig.write("a.py", "a")
    rig.write(".syncd/colab.py", "# helper\n")
    rig.sync()
    rig.write(MANIFEST_PATH, '{"seq": 999}')  # a local file of that name: ignored
    (rig.src / ".syncd/colab.py").unlink()  # the local .syncd/ emptied
    rig.sync()
    m = manifest_on_target(rig)
    assert m["seq"] == 2 and set(m["files"]) == {"a.py"}
    assert MANIFEST_PATH not in rig.target.trashed()
    assert set(rig.target.live()) == {"a.py"}


def test_a_lost_state_db_updates_the_manifest_already_there(rig: Rig, tmp_path: Path) -> None:
    """...in place (the id a Colab cell holds), and its seq goes on (review-1 #10)."""
    rig.write("a.py", "a")
    rig.sync()
    first = target_ids(rig) if rig.fake is None else rig.fake.find(f"syncd/p/{MANIFEST_PATH}")
    rig.db.kv_set("p", STATE_KEY, None)  # as after a state db lost (the index re-adopts files)
    rig.write("b.py", "b")
    rig.sync()
    m = manifest_on_target(rig)
    assert set(m["files"]) == {"a.py", "b.py"} and m["seq"] == 2  # never back to 1
    if rig.fake is not None:
        assert first is not None
        now = rig.fake.find(f"syncd/p/{MANIFEST_PATH}")
        assert now is not None and now["id"] == first["id"]


def test_git_commit_is_recorded(rig: Rig) -> None:
    import subprocess

    rig.write("a.py", "a")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@e", "-C", str(rig.src)]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "a.py"], check=True)
    subprocess.run([*git, "commit", "-qm", "one"], check=True)
    head = subprocess.run(
        [*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True
    ).stdout.strip()
    rig.sync()
    assert manifest_on_target(rig)["commit"] == head


def test_status_block_from_the_state_db(tmp_path: Path) -> None:
    db = StateDB(tmp_path / "s.db")
    assert manifest_record(db, "p") is None
    db.kv_set("p", STATE_KEY, "not json")
    assert manifest_record(db, "p") is None


def test_newest_mtime_is_the_newest_listed_files_even_after_a_deletion(rig: Rig) -> None:
    """README: `newest_mtime` is the newest listed file's modification time; a batch that
    only deleted files still lists files, so it is never null then (review-1 #15)."""
    import os

    old = rig.write("old.py", "o")
    os.utime(old, (1_000_000_000, 1_000_000_000))
    gone = rig.write("gone.py", "g")
    os.utime(gone, (1_800_000_000, 1_800_000_000))
    rig.sync()
    assert manifest_on_target(rig)["newest_mtime"] == 1_800_000_000
    edited = rig.write("new.py", "n")
    os.utime(edited, (1_700_000_000.5, 1_700_000_000.5))
    rig.sync()
    assert manifest_on_target(rig)["newest_mtime"] == 1_800_000_000  # still the newest listed
    (rig.src / "gone.py").unlink()
    rig.sync()
    m = manifest_on_target(rig)
    assert m["seq"] == 3 and set(m["files"]) == {"old.py", "new.py"}
    assert m["newest_mtime"] == 1_700_000_000.5


def test_a_manifest_changed_behind_syncds_back_is_still_written_over(rig: Rig) -> None:
    """Its own write that landed without an answer (a kill, a lost response) looks like a
    change by someone else; the manifest is syncd's alone, so it is written over, in place,
    and Colab keeps reading fresh ones (a refused write each batch would freeze it)."""
    rig.write("a.py", "a")
    rig.sync()
    if rig.fake is None:
        (rig.dst / MANIFEST_PATH).write_text('{"seq": 0, "files": {}}\n')
        first = None
    else:
        first = rig.fake.find(f"syncd/p/{MANIFEST_PATH}")
        assert first is not None
        rig.fake.set_content(first["id"], b'{"seq": 0, "files": {}}\n')
    rig.write("b.py", "b")
    rig.sync()
    m = manifest_on_target(rig)
    assert m["seq"] == 2 and set(m["files"]) == {"a.py", "b.py"}
    if rig.fake is not None:
        assert first is not None
        now = rig.fake.find(f"syncd/p/{MANIFEST_PATH}")
        assert now is not None and now["id"] == first["id"]


def gone_by_hand(rig: Rig, how: str) -> str:
    """Delete or trash the manifest as a person would; the id it had."""
    if rig.fake is None:
        (rig.dst / MANIFEST_PATH).unlink()
        return MANIFEST_PATH
    item = rig.fake.find(f"syncd/p/{MANIFEST_PATH}")
    assert item is not None
    (rig.fake.trash if how == "trash" else rig.fake.delete)(item["id"])
    return str(item["id"])


@pytest.mark.parametrize("how", ["trash", "delete"])
def test_a_manifest_gone_by_hand_is_written_anew_by_the_next_batch(rig: Rig, how: str) -> None:
    """README: deleted (or trashed) on Drive by hand → a new one with a new id (review-1 #3/#4)."""
    rig.write("a.py", "a")
    rig.sync()
    old_id = gone_by_hand(rig, how)
    rig.write("b.py", "b")
    rig.engine._mirror({"b.py"}, [])  # one batch, as the coalescer hands it over
    m = manifest_on_target(rig)  # the live one
    assert m["seq"] == 2 and set(m["files"]) == {"a.py", "b.py"}
    rec = manifest_record(rig.db, "p")
    assert rec is not None and rec.seq == 2
    if rig.fake is not None:
        live = rig.fake.find(f"syncd/p/{MANIFEST_PATH}")
        assert live is not None and live["id"] == rec.id != old_id
        if how == "trash":  # left alone in the trash, never written again
            assert rig.fake.get(old_id)["labels"]["trashed"] is True
            assert json.loads(rig.fake.content(old_id))["seq"] == 1


@pytest.mark.parametrize("how", ["trash", "delete"])
def test_a_check_costs_one_request_and_finds_a_manifest_gone_by_hand(rig: Rig, how: str) -> None:
    """A flush's check with nothing changed: one request (Drive: files.get) when the manifest
    stands, a new manifest when it is gone; a batch with nothing changed asks nothing."""
    rig.write("a.py", "a")
    rig.sync()
    writer = rig.engine.manifest
    if rig.fake is not None:
        rig.fake.reset_log()
    assert writer.write() == writer.record  # a batch: nothing changed, nothing asked
    if rig.fake is not None:
        assert rig.fake.requests == []
    assert writer.write(check=True) == writer.record
    if rig.fake is not None:
        (get,) = rig.fake.requests  # files.get of the manifest's id, its metadata only
        rec = writer.record
        assert rec is not None
        assert get.method == "GET" and get.path.endswith(rec.id) and get.query.get("alt") != "media"
    old_id = gone_by_hand(rig, how)
    rec = writer.write(check=True)
    assert rec is not None and rec.seq == 2
    m = manifest_on_target(rig)
    assert m["seq"] == 2 and set(m["files"]) == {"a.py"}
    if rig.fake is not None:
        assert rec.id != old_id

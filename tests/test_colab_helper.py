"""syncd's Colab helper (remotes/gdrive/colab_helper.py) run outside Colab against the fake Drive.

The project is mirrored by the real engine (in-process, as in test_mirror), so the
manifest is syncd's own; the helper runs with the real google-auth and googleapiclient
(tests/colab_support.py says what is stubbed: only ``google.colab``).  Requests are
counted at the fake.
"""

from __future__ import annotations

import os
import shutil
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from syncd.mirror.manifest import MANIFEST_PATH
from tests.colab_fixtures import colab, fake, rig  # noqa: F401 (fixtures, used by name)
from tests.colab_support import colab_env, drive_requests, load_helper, manifest_id, mounts
from tests.fakes.drive_server import FakeDrive
from tests.mirror_support import Rig

from .conftest import tree


def work(tmp_path: Path) -> Path:
    return tmp_path / "content" / "p"


def test_an_empty_content_folder_is_brought_to_the_manifest(
    rig: Rig, fake: FakeDrive, colab: Any, tmp_path: Path
) -> None:
    fake.reset_log()
    result = colab.sync("p", manifest_id(rig), quiet=True)
    assert tree(work(tmp_path)) == tree(rig.src)
    assert sorted(result.updated) == ["data/labels.txt", "model.py", "train.py"]
    assert result.mode == "api" and result.stale == [] and result.seq == 1
    assert len(drive_requests(fake)) == 1 + 3  # the manifest, then one download per file
    assert Path.cwd() == work(tmp_path)
    assert result.message.startswith("fresh as of ") and "3 files updated" in result.message


def test_an_edit_costs_one_manifest_request_plus_one_download_per_changed_file(
    rig: Rig, fake: FakeDrive, colab: Any, tmp_path: Path
) -> None:
    colab.sync("p", manifest_id(rig), quiet=True)
    rig.write("model.py", "VALUE = 2\n")
    rig.write("new/util.py", "X = 1\n")
    (rig.src / "data/labels.txt").unlink()
    rig.sync()
    fake.reset_log()
    result = colab.sync("p", manifest_id(rig), quiet=True)
    requests = drive_requests(fake)
    assert len(requests) == 1 + 2, requests
    assert sorted(result.updated) == ["model.py", "new/util.py"]
    assert result.removed == ["data/labels.txt"]
    assert tree(work(tmp_path)) == tree(rig.src)
    assert not (work(tmp_path) / "data").exists()  # the emptied folder went too


def test_a_rerun_with_nothing_changed_is_exactly_one_request(
    rig: Rig, fake: FakeDrive, colab: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    colab.sync("p", manifest_id(rig), quiet=True)
    fake.reset_log()
    again = load_helper(monkeypatch, tmp_path)  # the cell re-executes the helper file
    monkeypatch.setitem(sys.modules, "_syncd_colab_cache", sys.modules["_syncd_colab_cache"])
    result = again.sync("p", manifest_id(rig), quiet=True)
    assert len(fake.requests) == 1, [f"{r.method} {r.path}" for r in fake.requests]
    assert result.updated == [] and "0 files updated" in result.message


def test_a_rerun_imports_the_new_code(
    rig: Rig, fake: FakeDrive, colab: Any, tmp_path: Path
) -> None:
    colab.sync("p", manifest_id(rig), quiet=True)
    import model  # type: ignore[import-not-found]

    assert model.VALUE == 1
    rig.write("model.py", "VALUE = 2\n")
    rig.sync()
    colab.sync("p", manifest_id(rig), quiet=True)
    assert "model" not in sys.modules
    import model  # type: ignore[no-redef]

    assert model.VALUE == 2


def test_files_it_did_not_place_are_left_alone(
    rig: Rig, fake: FakeDrive, colab: Any, tmp_path: Path
) -> None:
    colab.sync("p", manifest_id(rig), quiet=True)
    (work(tmp_path) / "outputs").mkdir()
    (work(tmp_path) / "outputs/loss.csv").write_text("0.1\n")
    (work(tmp_path) / "model.py").write_text("VALUE = 99\n")  # edited in Colab: the mirror wins
    rig.sync()
    result = colab.sync("p", manifest_id(rig), quiet=True)
    assert (work(tmp_path) / "outputs/loss.csv").read_text() == "0.1\n"
    assert (work(tmp_path) / "model.py").read_text() == "VALUE = 1\n"
    assert result.updated == ["model.py"]


def test_a_download_that_does_not_match_the_manifest_is_not_installed(
    rig: Rig, fake: FakeDrive, colab: Any, tmp_path: Path
) -> None:
    colab.sync("p", manifest_id(rig), quiet=True)
    rig.write("model.py", "VALUE = 3\n")
    rig.sync()
    item = fake.find("syncd/p/model.py")
    assert item is not None
    fake.set_content(item["id"], b"VALUE = 'someone else'\n")  # changed after the manifest
    result = colab.sync("p", manifest_id(rig), quiet=True)
    assert result.stale == ["model.py"]
    assert (work(tmp_path) / "model.py").read_text() == "VALUE = 1\n"
    assert result.message.startswith("NOT fresh: 1 still stale (model.py)")
    assert not list(work(tmp_path).glob("*.syncd-new"))


def test_a_manifest_id_drive_does_not_know_is_one_sentence(rig: Rig, colab: Any) -> None:
    with pytest.raises(colab.ManifestMissing, match="run `syncd colab PROJECT`"):
        colab.sync("p", "no-such-id", quiet=True)


# --- the mounted Drive, when the API is out of reach ----------------------------------


@pytest.fixture
def offline(
    rig: Rig, fake: FakeDrive, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Any, Path]]:
    """No credentials at all; a "mounted Drive" that is a copy of the target, one file stale."""
    for key, value in colab_env(fake, tmp_path, credentials=False).items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(tmp_path)
    mounted = tmp_path / "drive" / "MyDrive" / "syncd" / "p"
    shutil.copytree(rig.src, mounted)
    item = fake.find(f"syncd/p/{MANIFEST_PATH}")
    assert item is not None
    (mounted / ".syncd").mkdir(exist_ok=True)
    (mounted / MANIFEST_PATH).write_bytes(fake.content(item["id"]))
    (mounted / "model.py").write_text("VALUE = 0  # what DriveFS still serves\n")
    yield load_helper(monkeypatch, tmp_path), mounted


def test_a_stale_mount_is_waited_for_remounted_once_then_reported(
    offline: tuple[Any, Path], fake: FakeDrive, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    helper, mounted = offline
    fake.reset_log()
    started = time.monotonic()
    result = helper.sync("p", "some-id", mounted=str(mounted), drive_mount="/d", wait_s=0.6)
    took = time.monotonic() - started
    out = capsys.readouterr().out
    assert result.mode == "mounted" and result.stale == ["model.py"]
    assert mounts(tmp_path) == [["/d", True]]  # one remount
    assert took >= 1.2  # waited before and after the remount
    assert "waiting up to 0.6 s for 1 file(s)" in out and "remounting Drive once" in out
    assert out.strip().splitlines()[-1].startswith("NOT fresh: 1 still stale (model.py)")
    assert not (work(tmp_path) / "model.py").exists()  # never a stale copy as if fresh
    assert (work(tmp_path) / "train.py").read_text() == (mounted / "train.py").read_text()
    assert drive_requests(fake) == []


def test_a_mount_that_catches_up_while_waited_for_is_used(
    offline: tuple[Any, Path], rig: Rig, tmp_path: Path
) -> None:
    helper, mounted = offline
    fresh = (rig.src / "model.py").read_bytes()
    timer = threading.Timer(0.5, lambda: (mounted / "model.py").write_bytes(fresh))
    timer.start()
    try:
        result = helper.sync("p", "some-id", mounted=str(mounted), wait_s=10, quiet=True)
    finally:
        timer.cancel()
    assert result.stale == [] and "model.py" in result.updated
    assert tree(work(tmp_path)) == tree(rig.src)
    assert mounts(tmp_path) == []
    assert os.getcwd() == str(work(tmp_path))


# --- save(): results up through the API ------------------------------------------------


def test_save_puts_outputs_on_drive_at_once_and_skips_what_is_there(
    rig: Rig, fake: FakeDrive, colab: Any, tmp_path: Path
) -> None:
    colab.sync("p", manifest_id(rig), quiet=True)
    out = work(tmp_path) / "outputs"
    (out / "ckpt").mkdir(parents=True)
    (out / "loss.csv").write_text("epoch,loss\n1,0.5\n")
    (out / "ckpt/model.bin").write_bytes(os.urandom(3000))
    (out / "it's.txt").write_text("quotes in a title\n")
    saved = colab.save("outputs/", quiet=True)
    assert sorted(saved.uploaded) == [
        "outputs/ckpt/model.bin",
        "outputs/it's.txt",
        "outputs/loss.csv",
    ]
    for rel in saved.uploaded:
        item = fake.find(f"syncd/p/{rel}", app=None)
        assert item is not None and fake.content(item["id"]) == (work(tmp_path) / rel).read_bytes()
    loss_id = fake.find("syncd/p/outputs/loss.csv", app=None)["id"]

    (out / "loss.csv").write_text("epoch,loss\n1,0.5\n2,0.4\n")
    fake.reset_log()
    again = colab.save("outputs/", quiet=True)
    assert again.uploaded == ["outputs/loss.csv"] and len(again.unchanged) == 2
    # one listing per folder (the project's, outputs/, outputs/ckpt/), one update; same id
    assert len(drive_requests(fake)) == 4, drive_requests(fake)
    assert fake.find("syncd/p/outputs/loss.csv", app=None)["id"] == loss_id
    assert fake.duplicates() == []


def test_save_never_follows_a_link_out_of_the_working_copy(
    rig: Rig, fake: FakeDrive, colab: Any, tmp_path: Path
) -> None:
    colab.sync("p", manifest_id(rig), quiet=True)
    secret = tmp_path / "elsewhere"
    (secret / "deep").mkdir(parents=True)
    (secret / "key.txt").write_text("not the project's\n")
    (secret / "deep/more.txt").write_text("nor this\n")
    out = work(tmp_path) / "outputs"
    out.mkdir()
    (out / "loss.csv").write_text("epoch,loss\n")
    os.symlink(secret / "key.txt", out / "key.txt")
    os.symlink(secret / "deep", out / "deep")
    saved = colab.save("outputs/", quiet=True)
    assert saved.uploaded == ["outputs/loss.csv"]
    assert fake.find("syncd/p/outputs/key.txt", app=None) is None
    assert fake.find("syncd/p/outputs/deep", app=None) is None
    os.symlink(secret, work(tmp_path) / "linked")
    with pytest.raises(RuntimeError, match="is a symlink: save\\(\\) does not follow links"):
        colab.save("linked/")


def test_save_before_the_cell_says_so(colab: Any) -> None:
    with pytest.raises(RuntimeError, match="run the syncd cell first"):
        colab.save("outputs/")


def test_a_same_size_edit_within_the_second_is_not_run_from_stale_bytecode(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Python trusts a .pyc whose source has the same size and whole-second mtime: a
    placed file's cached bytecode goes, so the next import compiles the new code."""
    import py_compile

    helper = load_helper(monkeypatch, tmp_path)
    copy = helper.WorkingCopy(tmp_path / "content", "p")
    module = copy.root / "model.py"
    module.parent.mkdir(parents=True)
    module.write_text("VALUE = 1\n")
    pyc = Path(py_compile.compile(str(module)))
    stamp = module.stat().st_mtime_ns
    module.write_text("VALUE = 2\n")  # same size
    os.utime(module, ns=(stamp, stamp))  # and the same mtime: the stale .pyc would be used
    copy.record("model.py", "0" * 32)
    assert not pyc.exists()

"""The Colab helper never writes or deletes outside ``/content/<project>`` nor through a
link in it, refuses bad manifest entries one by one, and hands the notebook fresh modules.

As in test_colab_helper.py: the project is mirrored into the fake Drive by the real
engine, the helper runs with the real google-auth and googleapiclient (only
``google.colab`` is stubbed).  A hostile manifest is syncd's own manifest rewritten on
the fake (a Drive file anyone with write access to the folder can change).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from syncd.mirror.manifest import MANIFEST_PATH
from tests.colab_fixtures import colab, fake, rig  # noqa: F401 (fixtures, used by name)
from tests.colab_support import HELPER_SOURCE, colab_env, load_helper, manifest_id, stub_dir
from tests.fakes.drive_server import FakeDrive
from tests.mirror_support import Rig

from .conftest import tree

USERS = "THE USER'S OWN LABELS\n"


def work(tmp_path: Path) -> Path:
    return tmp_path / "content" / "p"


def outside(tmp_path: Path) -> Path:
    """A folder of the user's outside the working copy (say, on the mounted Drive)."""
    folder = tmp_path / "MyDrive-data"
    folder.mkdir(exist_ok=True)
    return folder


def rewrite_manifest(fake: FakeDrive, rig: Rig, change: Any) -> None:
    """Change syncd's manifest on the fake as someone with access to the folder could."""
    item = fake.find(f"syncd/p/{MANIFEST_PATH}")
    assert item is not None
    manifest = json.loads(fake.content(item["id"]))
    change(manifest["files"])
    manifest["seq"] += 1
    fake.set_content(item["id"], json.dumps(manifest).encode())


# --- symlinks in the working copy (review-1 defect 1) ---------------------------------


def test_a_linked_folder_is_neither_written_nor_deleted_through(
    rig: Rig, fake: FakeDrive, colab: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    colab.sync("p", manifest_id(rig), quiet=True)
    # In Colab the user replaces data/ by a link to their own data elsewhere.
    elsewhere = outside(tmp_path)
    (elsewhere / "labels.txt").write_text(USERS)
    (elsewhere / "labels.csv").write_text(USERS)
    data = work(tmp_path) / "data"
    (data / "labels.txt").unlink()
    data.rmdir()
    data.symlink_to(elsewhere)
    # On the laptop: data/labels.csv is added, data/labels.txt edited, model.py edited.
    rig.write("data/labels.csv", "id,label\n")
    rig.write("data/labels.txt", "cat\ndog\nbird\n")
    rig.write("model.py", "VALUE = 2\n")
    rig.sync()
    capsys.readouterr()

    result = colab.sync("p", manifest_id(rig))
    out = capsys.readouterr().out.strip().splitlines()
    assert (elsewhere / "labels.txt").read_text() == USERS
    assert (elsewhere / "labels.csv").read_text() == USERS
    assert sorted(p.name for p in elsewhere.iterdir()) == ["labels.csv", "labels.txt"]
    assert data.is_symlink()
    assert result.updated == ["model.py"]  # the rest is synced
    assert (work(tmp_path) / "model.py").read_text() == "VALUE = 2\n"
    assert sorted(result.refused) == ["data/labels.csv", "data/labels.txt"]
    assert f"syncd: data/ is a symlink in {work(tmp_path)}: data/labels.csv left alone" in out
    assert out[-1].startswith("NOT fresh: 2 entries refused ('data/labels.csv', ")
    assert not result.fresh
    assert (tmp_path / "content" / ".syncd-p.json").is_file()  # the state is saved

    # On the laptop the files go: their counterparts behind the link stay.
    (rig.src / "data/labels.csv").unlink()
    (rig.src / "data/labels.txt").unlink()
    rig.sync()
    again = colab.sync("p", manifest_id(rig), quiet=True)
    assert sorted(p.name for p in elsewhere.iterdir()) == ["labels.csv", "labels.txt"]
    assert data.is_symlink() and again.fresh and again.removed == []
    assert colab.sync("p", manifest_id(rig), quiet=True).fresh  # and the next run too


def test_a_placed_file_behind_a_link_made_later_is_not_deleted_through_it(
    rig: Rig, colab: Any, tmp_path: Path
) -> None:
    """data/labels.txt was placed; then data/ became a link to a folder holding a file of
    the same name; the laptop deletes data/labels.txt: the user's file stays, so does the
    link, and the state is saved (no crash on the next run either)."""
    colab.sync("p", manifest_id(rig), quiet=True)
    elsewhere = outside(tmp_path)
    (elsewhere / "labels.txt").write_text(USERS)
    data = work(tmp_path) / "data"
    (data / "labels.txt").unlink()
    data.rmdir()
    data.symlink_to(elsewhere)
    (rig.src / "data/labels.txt").unlink()
    rig.sync()
    result = colab.sync("p", manifest_id(rig), quiet=True)
    assert (elsewhere / "labels.txt").read_text() == USERS and data.is_symlink()
    assert result.removed == [] and result.refused == ["data/labels.txt"]
    assert result.notes == [f"data/ is a symlink in {work(tmp_path)}: data/labels.txt left alone"]
    state = json.loads((tmp_path / "content" / ".syncd-p.json").read_text())
    assert "data/labels.txt" not in state
    assert colab.sync("p", manifest_id(rig), quiet=True).fresh


def test_a_file_replaced_by_a_link_is_not_written_through_or_removed(
    rig: Rig, colab: Any, tmp_path: Path
) -> None:
    colab.sync("p", manifest_id(rig), quiet=True)
    theirs = outside(tmp_path) / "model.py"
    theirs.write_text(USERS)
    link = work(tmp_path) / "model.py"
    link.unlink()
    link.symlink_to(theirs)
    rig.write("model.py", "VALUE = 2\n")
    rig.sync()
    result = colab.sync("p", manifest_id(rig), quiet=True)
    assert theirs.read_text() == USERS and link.is_symlink()
    assert result.refused == ["model.py"]
    assert result.notes == [f"model.py is a symlink in {work(tmp_path)}: model.py left alone"]
    (rig.src / "model.py").unlink()
    rig.sync()
    gone = colab.sync("p", manifest_id(rig), quiet=True)
    assert theirs.read_text() == USERS and link.is_symlink() and gone.removed == []


def test_a_file_where_a_folder_is_needed_is_left_alone(
    rig: Rig, colab: Any, tmp_path: Path
) -> None:
    colab.sync("p", manifest_id(rig), quiet=True)
    data = work(tmp_path) / "data"
    (data / "labels.txt").unlink()
    data.rmdir()
    data.write_text("the user's own file called data\n")
    rig.write("data/labels.txt", "cat\n")
    rig.sync()
    result = colab.sync("p", manifest_id(rig), quiet=True)
    assert data.read_text() == "the user's own file called data\n"
    assert result.notes == [f"data is not a folder in {work(tmp_path)}: data/labels.txt left alone"]
    assert not result.fresh and result.message.startswith("NOT fresh: 1 entry refused")


def test_a_hostile_manifest_entry_below_a_link_writes_nothing_outside(
    rig: Rig, fake: FakeDrive, colab: Any, tmp_path: Path
) -> None:
    colab.sync("p", manifest_id(rig), quiet=True)
    elsewhere = outside(tmp_path)
    (work(tmp_path) / "linked").symlink_to(elsewhere)
    model = fake.find("syncd/p/model.py")
    assert model is not None
    entry = {"size": 10, "md5": "4d1d4b7ea44d25ea6d7bc4e5c0a4f0a1", "id": model["id"]}
    rewrite_manifest(fake, rig, lambda files: files.update({"linked/escape_sym.txt": entry}))
    result = colab.sync("p", manifest_id(rig), quiet=True)
    assert list(elsewhere.iterdir()) == []
    assert result.refused == ["linked/escape_sym.txt"]
    assert result.message.startswith("NOT fresh: 1 entry refused ('linked/escape_sym.txt')")


def test_a_working_copy_that_is_a_link_is_refused_whole(
    rig: Rig, colab: Any, tmp_path: Path
) -> None:
    elsewhere = outside(tmp_path)
    (tmp_path / "content").mkdir()
    work(tmp_path).symlink_to(elsewhere)
    with pytest.raises(RuntimeError, match=r"content/p is a symlink; .* writes nothing through"):
        colab.sync("p", manifest_id(rig), quiet=True)
    assert list(elsewhere.iterdir()) == []


# --- manifest paths it refuses (review-1 defect 17) -----------------------------------


BAD_PATHS = ["../escape.txt", "/tmp/escape-abs.txt", "pkg/../../escape2.txt", "..", "a//x.txt"]


def test_bad_manifest_paths_are_refused_one_by_one_and_the_rest_synced(
    rig: Rig, fake: FakeDrive, colab: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    colab.sync("p", manifest_id(rig), quiet=True)
    rig.write("model.py", "VALUE = 2\n")
    rig.sync()
    model = fake.find("syncd/p/model.py")
    assert model is not None
    entry = {"size": 10, "md5": "0" * 32, "id": model["id"]}

    def hostile(files: dict[str, Any]) -> None:
        files.update({bad: entry for bad in BAD_PATHS})
        files["no-fields.txt"] = {"md5": "0" * 32}

    rewrite_manifest(fake, rig, hostile)
    capsys.readouterr()
    result = colab.sync("p", manifest_id(rig))
    out = capsys.readouterr().out.strip().splitlines()
    assert result.updated == ["model.py"]
    assert (work(tmp_path) / "model.py").read_text() == "VALUE = 2\n"
    assert sorted(result.refused) == sorted([*BAD_PATHS, "no-fields.txt"])
    assert (
        "syncd: the manifest path '../escape.txt' is not a path inside the project: left alone"
        in out
    )
    assert "syncd: the manifest entry 'no-fields.txt' lacks its size, md5 or id" in out
    assert out[-1].startswith("NOT fresh: 6 entries refused (") and "fresh as of" in out[-1]
    assert not result.fresh
    assert sorted(p.name for p in (tmp_path / "content").iterdir()) == [".syncd-p.json", "p"]
    assert not Path("/tmp/escape-abs.txt").exists()
    assert tree(work(tmp_path)) == tree(rig.src)  # nothing else placed


# --- modules imported from the mounted Drive first (review-1 defect 5) ----------------

NOTEBOOK = """
import importlib.util, os, sys
helper, mounted, manifest_id, how, told = sys.argv[1:]
if how == "cd":  # %cd /content/drive/MyDrive/syncd/p, as the README's Drive section says
    os.chdir(mounted)
    sys.path.insert(0, "")
else:  # sys.path.append(...) of the mounted folder, under another spelling of its path
    sys.path.append(mounted)
import model, pkg.util
print("before", model.VALUE, pkg.util.U)
spec = importlib.util.spec_from_file_location("syncd_colab", helper)
syncd_colab = sys.modules["syncd_colab"] = importlib.util.module_from_spec(spec)
spec.loader.exec_module(syncd_colab)
syncd_colab.sync("p", manifest_id, mounted=told)
import model, pkg.util
print("after", model.VALUE, pkg.util.U, model.__file__, pkg.util.__file__)
"""


@pytest.mark.parametrize("how", ["cd", "append"])
def test_modules_imported_from_the_mounted_drive_are_fresh_after_the_cell(
    rig: Rig, fake: FakeDrive, tmp_path: Path, how: str
) -> None:
    rig.write("pkg/__init__.py", "")
    rig.write("pkg/util.py", "U = 1\n")
    rig.sync()
    mounted = tmp_path / "drive" / "MyDrive" / "syncd" / "p"
    (mounted / "pkg").mkdir(parents=True)
    (mounted / "model.py").write_text("VALUE = 0  # what DriveFS still serves\n")
    (mounted / "pkg/__init__.py").write_text("")
    (mounted / "pkg/util.py").write_text("U = 0\n")
    # "cd": the cell's mounted path is the folder used; "append": the cell names another
    # path (as in Colab, /content/drive/MyDrive/...; the notebook used a shortcut)
    told = str(mounted) if how == "cd" else "/content/drive/MyDrive/syncd/p"
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path / "colab-home"),
        "PYTHONPATH": str(stub_dir(tmp_path)),
        **colab_env(fake, tmp_path),
    }
    args = [str(HELPER_SOURCE), str(mounted), manifest_id(rig), how, told]
    out = subprocess.run(
        [sys.executable, "-c", NOTEBOOK, *args],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert "before 0 0" in out.stdout
    fresh = work(tmp_path)
    assert f"after 1 1 {fresh / 'model.py'} {fresh / 'pkg/util.py'}" in out.stdout, out.stdout


def test_the_working_copy_goes_first_on_sys_path(
    rig: Rig, colab: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mounted = tmp_path / "drive" / "MyDrive" / "syncd" / "p"
    mounted.mkdir(parents=True)
    root = str(work(tmp_path).resolve())
    monkeypatch.setattr(sys, "path", ["", str(mounted), root, *sys.path])
    colab.sync("p", manifest_id(rig), mounted=str(mounted), quiet=True)
    assert sys.path[0] == root and sys.path.count(root) == 1
    assert sys.path.index(str(mounted)) > 0


def test_a_standard_module_a_project_file_is_named_after_stays_loaded(rig: Rig, colab: Any) -> None:
    """Dropping the standard ``colorsys`` because the project has a colorsys.py would make
    every later ``import colorsys`` in the kernel (a library's too) load the project's."""
    import colorsys

    rig.write("colorsys.py", "SHADOW = True\n")
    rig.sync()
    colab.sync("p", manifest_id(rig), quiet=True)
    assert sys.modules["colorsys"] is colorsys


# --- a gdrive:id= target without the API (review-1 defect 16) -------------------------


def test_an_id_target_without_the_api_is_one_sentence(
    rig: Rig, fake: FakeDrive, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in colab_env(fake, tmp_path, credentials=False).items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(tmp_path)
    helper = load_helper(monkeypatch, tmp_path)
    with pytest.raises(RuntimeError) as caught:
        helper.sync("p", manifest_id(rig), mounted=None, quiet=True)
    message = str(caught.value)
    assert "gdrive:id=" in message and "no mounted-Drive path to fall back on" in message
    assert "authenticate_user()" in message and "\n" not in message

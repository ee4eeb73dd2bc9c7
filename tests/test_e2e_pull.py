"""End-to-end: the return path (``mirror.pull``, issue #13 item 5) with the real daemon.

Someone else (Colab: another app of the same account) writes under ``outputs/``
of the project's Drive folder on the fake; the real ``syncd run``, with
``drive.scope: full`` and a 1 s ``pull.interval``, brings it home through the
changes feed, never uploads it back, keeps local edits as conflict copies and
moves what Drive deleted into ``<project>/.syncd-trash/``.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import run_cli, wait_for, write_config
from tests.fakes.drive_server import COLAB, FakeDrive
from tests.gdrive_support import drive_section, uploads, write_credentials
from tests.test_readme import section

pytestmark = pytest.mark.e2e


@pytest.fixture
def fake(home: Path) -> Iterator[FakeDrive]:
    with FakeDrive() as drive:
        yield drive
    assert drive.internal_errors == []


def setup(tmp_path: Path, home: Path, fake: FakeDrive, pull: object = None) -> Path:
    src = tmp_path / "p"
    src.mkdir(exist_ok=True)
    (src / "train.py").write_text("print('train')\n")
    creds = write_credentials(fake, home / ".config/syncd/drive-credentials.json", scope="full")
    mirror = {
        "to": "gdrive:/syncd/p",
        "delay": "100ms",
        "pull": pull if pull is not None else {"paths": ["outputs/"], "interval": "1s"},
    }
    project = {"name": "p", "path": str(src), "mirror": mirror}
    drive = drive_section(fake, creds, scope="full")
    return write_config(tmp_path / "c.yaml", [project], drive=drive)


def pull_status(cfg: Path) -> dict:
    answer = json.loads(run_cli("status", "--json", "-c", str(cfg)).stdout)
    return answer["projects"][0]["pull"]


def first_mirror(fake: FakeDrive) -> str:
    """Waits for train.py on Drive; returns the project folder's id."""
    wait_for(lambda: fake.find("syncd/p/train.py") is not None, what="the first mirror")
    folder = fake.find("syncd/p")
    assert folder is not None
    return str(folder["id"])


def colab_writes(fake: FakeDrive, folder: str, path: str, data: bytes) -> str:
    return fake.put_file(path, data, parent_id=folder, by=COLAB)


def local(src: Path, path: str) -> bytes | None:
    try:
        return (src / path).read_bytes()
    except FileNotFoundError:
        return None


def trashed_copies(src: Path, name: str) -> list[Path]:
    return sorted((src / ".syncd-trash").rglob(name)) if (src / ".syncd-trash").exists() else []


def test_a_file_colab_writes_comes_home_and_is_not_uploaded_back(
    tmp_path: Path, home: Path, fake: FakeDrive, run_daemon
) -> None:
    cfg = setup(tmp_path, home, fake)
    src = tmp_path / "p"
    d = run_daemon(cfg)
    folder = first_mirror(fake)
    wait_for(lambda: (pull_status(cfg) or {}).get("last_poll"), what="a first poll")
    colab_writes(fake, folder, "outputs/metrics.json", b'{"acc": 0.9}\n')
    colab_writes(fake, folder, "outputs/run1/ckpt/model.pt", b"weights v1")  # new subfolders
    wait_for(lambda: local(src, "outputs/metrics.json") == b'{"acc": 0.9}\n', what="pulled")
    wait_for(lambda: local(src, "outputs/run1/ckpt/model.pt") == b"weights v1", what="nested")
    assert not [p.name for p in (src / "outputs").iterdir() if p.name.startswith(".syncd-tmp")]
    # A moment for the mirror to (wrongly) pick the new files up: it must not.
    (src / "train.py").write_text("print('train v2')\n")
    wait_for(lambda: "train.py" in uploads(fake)[1:], what="an unrelated edit mirrored")
    assert [t for t in uploads(fake) if t in ("metrics.json", "model.pt")] == []
    assert (
        fake.tree(folder)["outputs/metrics.json"]
        == fake.get(fake.find("syncd/p/outputs/metrics.json")["id"])["md5Checksum"]
    )
    assert len(fake.children(fake.find("syncd/p/outputs")["id"])) == 2  # no duplicate
    st = pull_status(cfg)
    assert st["files_pulled"] == 2 and st["conflicts"] == 0 and st["last_error"] is None
    assert st["paths"] == ["outputs/"] and st["interval_s"] == 1
    block = re.search(r"```json\n(.*?)```", section("Commands"), re.S)
    assert block is not None  # the README's status --json example names these keys
    assert set(st) == set(json.loads(block.group(1))["projects"][0]["pull"])
    d.stop()


def test_updates_conflicts_trash_and_deletions(
    tmp_path: Path, home: Path, fake: FakeDrive, run_daemon
) -> None:
    cfg = setup(tmp_path, home, fake)
    src = tmp_path / "p"
    (src / "outputs").mkdir()
    (src / "outputs/d.txt").write_text("mine, never pulled\n")  # Drive will get one too
    d = run_daemon(cfg)
    folder = first_mirror(fake)
    a = colab_writes(fake, folder, "outputs/a.txt", b"a1")
    b = colab_writes(fake, folder, "outputs/b.txt", b"b1")
    c = colab_writes(fake, folder, "outputs/c.txt", b"c1")
    for name, data in (("a.txt", b"a1"), ("b.txt", b"b1"), ("c.txt", b"c1")):
        wait_for(lambda n=name, v=data: local(src, f"outputs/{n}") == v, what=name)

    fake.set_content(a, b"a2")  # a remote update of a pulled, unedited file: comes down
    wait_for(lambda: local(src, "outputs/a.txt") == b"a2", what="the update")

    (src / "outputs/a.txt").write_bytes(b"my edit")  # edited here since it was pulled
    polls = pull_status(cfg)["last_poll"]
    wait_for(lambda: pull_status(cfg)["last_poll"] != polls, timeout=10, what="another poll")
    assert local(src, "outputs/a.txt") == b"my edit"  # Drive's file did not change: kept
    fake.set_content(a, b"a3")  # now it does: the local edit becomes a conflict copy
    wait_for(lambda: local(src, "outputs/a.txt") == b"a3", what="the remote version")
    kept = [p for p in (src / "outputs").iterdir() if p.name.startswith("a (conflict ")]
    assert len(kept) == 1 and kept[0].read_bytes() == b"my edit" and kept[0].suffix == ".txt"

    colab_writes(fake, folder, "outputs/d.txt", b"theirs")  # never pulled and different
    wait_for(lambda: local(src, "outputs/d.txt") == b"theirs", what="d.txt")
    kept = [p for p in (src / "outputs").iterdir() if p.name.startswith("d (conflict ")]
    assert len(kept) == 1 and kept[0].read_text() == "mine, never pulled\n"

    fake.trash(b)  # to Drive's trash: the local copy goes to the local trash
    fake.delete(c)  # deleted for good: the same
    wait_for(lambda: local(src, "outputs/b.txt") is None, what="b.txt trashed")
    wait_for(lambda: local(src, "outputs/c.txt") is None, what="c.txt trashed")
    assert [p.read_bytes() for p in trashed_copies(src, "b.txt")] == [b"b1"]
    assert [p.read_bytes() for p in trashed_copies(src, "c.txt")] == [b"c1"]
    assert trashed_copies(src, "b.txt")[0].relative_to(src).parts[2:] == ("outputs", "b.txt")

    st = pull_status(cfg)
    assert (st["files_pulled"], st["conflicts"], st["trashed"]) == (6, 2, 2)
    assert st["trash"] == str(src / ".syncd-trash")
    human = run_cli("status", "-c", str(cfg)).stdout
    assert "pull     outputs/ every 1s: 6 pulled, 2 conflict copies, 2 to" in human
    # Nothing of outputs/ went up: no conflict copy, no edit, no trash folder.
    titles = uploads(fake)
    assert not [t for t in titles if t.endswith(".txt") or "conflict" in t], titles
    assert fake.find("syncd/p/.syncd-trash") is None
    assert sorted(fake.ids(fake.find("syncd/p/outputs")["id"])) == ["a.txt", "d.txt"]
    d.stop()
    assert "had local edits" not in d.log  # b and c were not edited here


@pytest.mark.parametrize("scope", ["file", "drive.file"])
def test_pull_under_scope_file_is_refused_by_run_and_doctor(
    tmp_path: Path, home: Path, fake: FakeDrive, scope: str
) -> None:
    cfg = setup(tmp_path, home, fake, pull=["outputs/"])
    cfg.write_text(cfg.read_text().replace("scope: full", f"scope: {scope}"))
    for command, code in ((["run"], 2), (["doctor"], 2)):
        r = run_cli(*command, "-c", str(cfg), timeout=30)
        said = r.stdout + r.stderr
        assert r.returncode == code, (command, said)
        assert "mirror.pull: the return path needs drive.scope: full" in said
        assert "cannot see the files Colab or anyone else creates" in said
        assert "syncd auth drive" in said and "Traceback" not in said
    assert fake.count() == 0  # refused before any request


def start_token_requests(fake: FakeDrive) -> int:
    return fake.count(path_contains="/changes/startPageToken")


def test_faults_while_polling_are_retried_and_the_token_is_kept(
    tmp_path: Path, home: Path, fake: FakeDrive, run_daemon
) -> None:
    cfg = setup(tmp_path, home, fake)
    src = tmp_path / "p"
    d = run_daemon(cfg)
    folder = first_mirror(fake)
    wait_for(lambda: (pull_status(cfg) or {}).get("last_poll"), what="a first poll")
    tokens = start_token_requests(fake)
    fake.inject(429, "rateLimitExceeded", count=2, path_contains="/drive/v2/changes")
    fake.inject(drop=True, count=1, path_contains="/drive/v2/changes")
    made = colab_writes(fake, folder, "outputs/run/ckpt.bin", b"\x00weights" * 1000)
    fake.inject(500, count=2, method="GET", path_contains=made)  # the download itself
    fake.inject(drop=True, count=1, method="GET", path_contains=made)
    wait_for(lambda: local(src, "outputs/run/ckpt.bin") == b"\x00weights" * 1000, what="pulled")
    assert fake.count(status=429) >= 1 and fake.count(method="GET", path_contains=made) >= 3
    st = pull_status(cfg)
    assert st["files_pulled"] == 1 and st["conflicts"] == 0
    assert start_token_requests(fake) == tokens  # the saved token carried on: no fresh start
    assert sorted(p.name for p in (src / "outputs/run").iterdir()) == ["ckpt.bin"]
    wait_for(lambda: pull_status(cfg)["last_error"] is None, what="no error left")
    d.stop()


def test_killed_mid_download_then_restarted_converges(
    tmp_path: Path, home: Path, fake: FakeDrive, run_daemon
) -> None:
    cfg = setup(tmp_path, home, fake)
    src = tmp_path / "p"
    d = run_daemon(cfg)
    folder = first_mirror(fake)
    wait_for(lambda: (pull_status(cfg) or {}).get("last_poll"), what="a first poll")
    made = colab_writes(fake, folder, "outputs/big.bin", b"1234" * 5000)
    fake.inject(delay_response=30, method="GET", path_contains=made)
    temps = lambda: list((src / "outputs").glob(".syncd-tmp-pull-*"))  # noqa: E731
    wait_for(lambda: (src / "outputs").is_dir() and temps(), what="a download under way")
    d.kill()  # kill -9 between the temp file and the rename: the token was not saved
    fake.clear_faults()
    colab_writes(fake, folder, "outputs/later.txt", b"while syncd was down")
    d2 = run_daemon(cfg)
    wait_for(lambda: local(src, "outputs/big.bin") == b"1234" * 5000, what="pulled after restart")
    wait_for(lambda: local(src, "outputs/later.txt") == b"while syncd was down", what="later")
    assert temps() == []  # the killed download's temp file is gone
    assert sorted(p.name for p in (src / "outputs").iterdir()) == ["big.bin", "later.txt"]
    st = pull_status(cfg)
    assert (st["files_pulled"], st["conflicts"], st["trashed"]) == (2, 0, 0)
    d2.stop()


def test_pause_stops_polling_and_resume_catches_up(
    tmp_path: Path, home: Path, fake: FakeDrive, run_daemon
) -> None:
    cfg = setup(tmp_path, home, fake)
    src = tmp_path / "p"
    d = run_daemon(cfg)
    folder = first_mirror(fake)
    wait_for(lambda: (pull_status(cfg) or {}).get("last_poll"), what="a first poll")
    assert run_cli("pause", "p", "-c", str(cfg)).returncode == 0
    time.sleep(1.5)  # a poll already under way ends
    fake.reset_log()
    colab_writes(fake, folder, "outputs/x.txt", b"x")
    before = pull_status(cfg)["last_poll"]
    time.sleep(2.5)  # more than two intervals: a running poller would have asked by now
    assert fake.count(path_contains="/changes") == 0 and local(src, "outputs/x.txt") is None
    assert pull_status(cfg)["last_poll"] == before
    assert run_cli("resume", "p", "-c", str(cfg)).returncode == 0
    wait_for(lambda: local(src, "outputs/x.txt") == b"x", what="pulled after resume")
    d.stop()


def test_hostile_names_symlinks_and_google_docs_are_skipped_not_followed(
    tmp_path: Path, home: Path, fake: FakeDrive, run_daemon
) -> None:
    cfg = setup(tmp_path, home, fake)
    src = tmp_path / "p"
    outside = tmp_path / "outside.txt"
    outside.write_text("not syncd's to touch\n")
    (src / "outputs").mkdir()
    os.symlink(outside, src / "outputs/link.txt")  # a symlink where a pulled file would go
    os.symlink(tmp_path, src / "outputs/away")  # and one where a pulled folder would go
    d = run_daemon(cfg)
    folder = first_mirror(fake)
    colab_writes(fake, folder, "outputs/link.txt", b"through the link?")
    colab_writes(fake, folder, "outputs/away/escape.txt", b"through the folder link?")
    colab_writes(fake, folder, "outputs/...", b"dots")  # a fine name, oddly
    colab_writes(fake, folder, "outputs/..", b"up")  # Drive allows these titles
    slash = colab_writes(fake, folder, "outputs/tmp", b"slash")
    fake.move(slash, fake.find("syncd/p/outputs")["id"], title="a/b")
    colab_writes(fake, folder, "outputs/" + "x" * 256, b"too long for a local name")
    fake.put_doc("syncd/p/outputs/notes", by=COLAB)  # a Google Doc: no content to pull
    colab_writes(fake, folder, "outputs/ok.txt", b"fine")
    wait_for(lambda: local(src, "outputs/ok.txt") == b"fine", what="the fine file")
    wait_for(lambda: "notes: a Google Docs" in d.log, what="the doc skipped, with a log line")
    assert outside.read_text() == "not syncd's to touch\n"
    assert not (tmp_path / "escape.txt").exists() and not (src / "up").exists()
    assert (src / "outputs/link.txt").is_symlink() and (src / "outputs/away").is_symlink()
    assert sorted(p.name for p in (src / "outputs").iterdir()) == [
        "...",
        "away",
        "link.txt",
        "ok.txt",
    ]
    assert "outputs/link.txt is a symlink" in d.log
    assert "not pulling outputs/'..': Drive's title cannot be a local file name" in d.log
    assert "not pulling outputs/'a/b'" in d.log
    umask = os.umask(0)
    os.umask(umask)
    assert (src / "outputs/ok.txt").stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's
    st = pull_status(cfg)  # the blocked paths are pending, and said so
    assert st["pending"] == 2, st
    assert st["last_error"].startswith("not pulled yet: outputs/away/escape.txt: outputs/away is")
    # Once the local paths are free again, the pending files come down by themselves.
    os.unlink(src / "outputs/link.txt")
    os.unlink(src / "outputs/away")
    wait_for(lambda: local(src, "outputs/link.txt") == b"through the link?", what="retried")
    wait_for(lambda: local(src, "outputs/away/escape.txt") == b"through the folder link?")
    wait_for(lambda: pull_status(cfg)["pending"] == 0, what="nothing pending")
    assert pull_status(cfg)["last_error"] is None
    assert outside.read_text() == "not syncd's to touch\n"
    d.stop()


def test_folders_renamed_or_moved_in_and_a_refused_token(
    tmp_path: Path, home: Path, fake: FakeDrive, run_daemon
) -> None:
    cfg = setup(tmp_path, home, fake)
    src = tmp_path / "p"
    d = run_daemon(cfg)
    folder = first_mirror(fake)
    colab_writes(fake, folder, "outputs/run1/a.txt", b"a")
    colab_writes(fake, folder, "outputs/run1/sub/b.txt", b"b")
    wait_for(lambda: local(src, "outputs/run1/sub/b.txt") == b"b", what="run1 pulled")
    outputs = fake.find("syncd/p/outputs")["id"]
    fake.move(fake.find("syncd/p/outputs/run1")["id"], outputs, title="final")  # one change
    wait_for(lambda: local(src, "outputs/final/sub/b.txt") == b"b", what="renamed folder")
    wait_for(lambda: local(src, "outputs/run1/a.txt") is None, what="old copies trashed")
    assert [p.read_bytes() for p in trashed_copies(src, "a.txt")] == [b"a"]

    colab_writes(fake, folder, "scratch/c.txt", b"c")  # outside the pull folders: stays there
    time.sleep(1.5)
    assert not (src / "scratch").exists()
    fake.move(fake.find("syncd/p/scratch")["id"], outputs)  # moved in: one change, listed
    wait_for(lambda: local(src, "outputs/scratch/c.txt") == b"c", what="moved-in folder")

    d.stop()
    colab_writes(fake, folder, "outputs/after.txt", b"after")  # while syncd is stopped
    fake.expire_change_tokens()  # and Drive stops honouring the saved token
    tokens = start_token_requests(fake)
    d2 = run_daemon(cfg)
    wait_for(lambda: local(src, "outputs/after.txt") == b"after", what="after a fresh start")
    wait_for(lambda: "listing the pull folders again" in d2.log, what="said so")
    assert start_token_requests(fake) > tokens
    assert pull_status(cfg)["conflicts"] == 0
    d2.stop()


def test_the_first_start_lists_what_is_there_and_adopts_identical_files(
    tmp_path: Path, home: Path, fake: FakeDrive, run_daemon
) -> None:
    cfg = setup(tmp_path, home, fake)
    src = tmp_path / "p"
    pre = fake.put_file("syncd/p/outputs/pre.txt", b"made before syncd ran", by=COLAB)
    same = fake.put_file("syncd/p/outputs/deep/same.txt", b"identical", by=COLAB)
    (src / "outputs/deep").mkdir(parents=True)
    (src / "outputs/deep/same.txt").write_bytes(b"identical")
    d = run_daemon(cfg)
    wait_for(lambda: local(src, "outputs/pre.txt") == b"made before syncd ran", what="listed")
    wait_for(lambda: pull_status(cfg)["last_poll"], what="a poll")
    assert fake.count(method="GET", path_contains=same) == 0  # same md5: recorded, not fetched
    assert fake.count(method="GET", path_contains=pre) >= 1
    st = pull_status(cfg)
    assert (st["files_pulled"], st["conflicts"]) == (1, 0), (st, d.log)
    d.stop()
    # Without a daemon, status shows the same block from the state db.
    r = run_cli("status", "--json", "-c", str(cfg))
    answer = json.loads(r.stdout)
    assert r.returncode == 3 and answer["running"] is False
    assert answer["projects"][0]["pull"]["files_pulled"] == 1
    assert answer["projects"][0]["pull"]["last_poll"] == st["last_poll"]


def test_reload_restarts_the_poller_with_the_new_settings(
    tmp_path: Path, home: Path, fake: FakeDrive, run_daemon
) -> None:
    cfg = setup(tmp_path, home, fake)
    src = tmp_path / "p"
    d = run_daemon(cfg)
    folder = first_mirror(fake)
    wait_for(lambda: (pull_status(cfg) or {}).get("last_poll"), what="a first poll")
    cfg.write_text(cfg.read_text().replace("outputs/", "results/"))
    assert run_cli("reload", "-c", str(cfg)).returncode == 0
    wait_for(lambda: "pulling results/ from Drive" in d.log, what="the new poller")
    colab_writes(fake, folder, "results/r.txt", b"r")
    colab_writes(fake, folder, "outputs/o.txt", b"o")  # no longer a pull folder
    wait_for(lambda: local(src, "results/r.txt") == b"r", what="pulled from the new folder")
    time.sleep(1.5)
    assert local(src, "outputs/o.txt") is None
    assert pull_status(cfg)["paths"] == ["results/"]
    d.stop()

"""End-to-end: the real `syncd run` as a subprocess, mirroring into FakeDrive over HTTP.

FakeDrive lives in the pytest process; the daemon reaches it through
``drive.endpoint``.  Each test checks the fake's own state (paths and md5s)
and its request log, never the daemon's word for it.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import run_cli, tree, wait_for, write_config
from tests.fakes.drive_server import APP, FakeDrive
from tests.gdrive_support import drive_section, files_below, uploads, write_credentials

pytestmark = pytest.mark.e2e  # every test here runs syncd as a subprocess

KiB = 1024


@pytest.fixture
def fake(home: Path) -> Iterator[FakeDrive]:
    with FakeDrive() as drive:
        yield drive
    assert drive.internal_errors == []


def setup(tmp_path: Path, home: Path, fake: FakeDrive, workers: int = 4, **drive: object) -> Path:
    """A config mirroring tmp_path/p to gdrive:/syncd/p on the fake; returns its path."""
    (tmp_path / "p").mkdir(exist_ok=True)
    scope = str(drive.get("scope", "file"))
    creds = write_credentials(fake, home / ".config/syncd/drive-credentials.json", scope=scope)
    project = {
        "name": "p",
        "path": str(tmp_path / "p"),
        "mirror": {"to": "gdrive:/syncd/p", "delay": "100ms", "workers": workers},
    }
    return write_config(tmp_path / "c.yaml", [project], drive=drive_section(fake, creds, **drive))


def mirrored(fake: FakeDrive, src: Path) -> bool:
    return files_below(fake) == tree(src)


def write_tree(src: Path, files: int, folders: int) -> None:
    for i in range(files):
        sub = src / f"t{i % 3}" / f"d{i % folders:03d}"
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"f{i:05d}.py").write_text(f"# file {i}\n" + "x = 1\n" * (i % 40))


def status(cfg: Path) -> dict:
    r = run_cli("status", "--json", "-c", str(cfg))
    return json.loads(r.stdout)["projects"][0]


def test_edits_reach_drive(tmp_path: Path, home: Path, fake: FakeDrive, run_daemon) -> None:
    cfg = setup(tmp_path, home, fake)
    src = tmp_path / "p"
    (src / "models").mkdir()
    (src / "models/net.py").write_text("class Net: ...\n")
    (src / "train.py").write_text("print('v1')\n")
    (src / "empty.txt").write_text("")
    (src / "kaggle.json").write_text('{"key": "secret"}')  # never leaves the machine
    d = run_daemon(cfg)
    wanted = {"models/net.py", "train.py", "empty.txt"}
    wait_for(lambda: set(files_below(fake)) == wanted, what="initial mirror")
    assert files_below(fake) == {p: h for p, h in tree(src).items() if p in wanted}
    (src / "kaggle.json").unlink()

    # modify: a new revision of the same Drive file
    train_id = fake.find("syncd/p/train.py")["id"]
    (src / "train.py").write_text("print('v2')\n")
    wait_for(lambda: mirrored(fake, src), what="modify")
    assert fake.find("syncd/p/train.py")["id"] == train_id

    # rename, move into a folder, rename a folder: metadata patches, no upload
    net_id = fake.find("syncd/p/models/net.py")["id"]
    sent = len(uploads(fake))
    os.rename(src / "train.py", src / "main.py")
    wait_for(lambda: mirrored(fake, src), what="rename")
    os.rename(src / "main.py", src / "models/main.py")
    wait_for(lambda: mirrored(fake, src), what="move")
    os.rename(src / "models", src / "nets")
    wait_for(lambda: mirrored(fake, src), what="folder rename")
    assert fake.find("syncd/p/nets/main.py")["id"] == train_id
    assert fake.find("syncd/p/nets/net.py")["id"] == net_id
    assert len(uploads(fake)) == sent and fake.count("PATCH") >= 3

    # create in a new folder, then delete: the Drive copy goes to the trash
    (src / "data/raw").mkdir(parents=True)
    (src / "data/raw/x.csv").write_text("1,2\n")
    wait_for(lambda: mirrored(fake, src), what="create in a new folder")
    (src / "data/raw/x.csv").unlink()
    wait_for(lambda: mirrored(fake, src), what="delete")
    assert [f["title"] for f in fake.trashed() if not f["mimeType"].endswith("folder")] == ["x.csv"]

    # a Colab edit meets a local edit: the Colab version is kept as a conflict copy
    fake.set_content(train_id, b"edited in Colab\n")
    (src / "nets/main.py").write_text("print('v3')\n")

    def conflict_kept() -> bool:
        held = files_below(fake)
        kept = [p for p in held if p.startswith("nets/main (conflict ")]
        return len(kept) == 1 and held.get("nets/main.py") == tree(src)["nets/main.py"]

    wait_for(conflict_kept, what="conflict copy")
    assert fake.content(train_id) == b"edited in Colab\n"  # renamed, never overwritten
    assert fake.duplicates() == []
    assert d.stop() == 0


def test_a_file_renamed_again_while_drive_answers_its_move_keeps_its_id(
    tmp_path: Path, home: Path, fake: FakeDrive, run_daemon
) -> None:
    """The race behind a flaky test_edits_reach_drive, made certain: Drive has applied the
    rename's PATCH (main.py shows) but holds its answer, and main.py moves on to
    models/main.py before the daemon plans that batch.  The plan must not trash main.py
    (the next batch's move would then upload a new file with a new id)."""
    cfg = setup(tmp_path, home, fake)
    src = tmp_path / "p"
    (src / "models").mkdir()
    (src / "models/net.py").write_text("class Net: ...\n")
    (src / "train.py").write_text("print('v1')\n")
    d = run_daemon(cfg)
    wait_for(lambda: mirrored(fake, src), what="initial mirror")
    train_id = fake.find("syncd/p/train.py")["id"]
    sent = len(uploads(fake))
    fake.inject(method="PATCH", delay_response=1.5)  # the daemon waits on the answer
    os.rename(src / "train.py", src / "main.py")
    wait_for(lambda: fake.find("syncd/p/main.py") is not None, what="rename made on Drive")
    os.rename(src / "main.py", src / "models/main.py")
    wait_for(lambda: mirrored(fake, src), what="move")
    assert fake.find("syncd/p/models/main.py")["id"] == train_id
    assert len(uploads(fake)) == sent
    assert [f["title"] for f in fake.trashed() if not f["mimeType"].endswith("folder")] == []
    assert fake.duplicates() == []
    assert d.stop() == 0


def test_files_ending_in_cr_lf_crlf_arrive_whole_even_past_a_lossy_parser(
    tmp_path: Path, home: Path, fake: FakeDrive, run_daemon
) -> None:
    fake.multipart_eats_cr = True  # a server that loses a CR right before the boundary
    cfg = setup(tmp_path, home, fake)
    src = tmp_path / "p"
    for name, tail in (("cr.txt", b"\r"), ("lf.txt", b"\n"), ("crlf.txt", b"\r\n")):
        (src / name).write_bytes(b"last line" + tail)
    d = run_daemon(cfg)
    wait_for(lambda: mirrored(fake, src), what="files ending in line breaks")
    wait_for(lambda: status(cfg)["state"] == "idle", what="idle")
    assert status(cfg)["mirror"]["conflicts"] == 0 and fake.duplicates() == []
    assert "Drive stored md5" in d.log  # the lost byte was seen, and the file sent again
    assert d.stop() == 0


def test_200_files_under_injected_faults(
    tmp_path: Path, home: Path, fake: FakeDrive, run_daemon
) -> None:
    # The write throttle stays on, at 500 creations/s instead of Drive's ~3: this test is
    # about faults (test_first_mirror_at_drives_pace runs at the real pace).
    fake.set_write_limit(rate=500.0, burst=200.0)
    cfg = setup(tmp_path, home, fake)
    src = tmp_path / "p"
    write_tree(src, 200, 20)
    (src / "big").mkdir()
    (src / "big/weights.bin").write_bytes(os.urandom(6 * 1024 * KiB))  # a resumable upload
    # 10 % 500/503 on every kind of request, and a few rate limits (each pauses all
    # senders 1-2 s, as rclone's Drive pacer does; test_first_mirror_at_drives_pace meets
    # the real throttle).
    fake.inject_random(0.10, [500, 503], seed=3)
    fake.inject(status=403, reason="userRateLimitExceeded", method="POST", after=60)
    fake.inject(status=429, after=150)
    for after in (30, 90, 160):  # connections dropped mid-request, and answers lost
        fake.inject(drop=True, count=3, method="POST", path_contains="/upload/", after=after)
        fake.inject(lose_response=True, count=3, method="POST", after=after + 50)
    fake.drop_upload_after(2 * 1024 * KiB)
    d = run_daemon(cfg)
    wait_for(lambda: mirrored(fake, src), timeout=120, what="mirror under faults")
    assert fake.duplicates() == []
    faults = [r.fault for r in fake.requests if r.fault]
    assert len(faults) > 20 and any("lost" in f for f in faults)
    assert any(r.content_range and r.content_range.startswith("bytes */") for r in fake.requests)
    assert d.stop() == 0


def test_first_run_under_drive_file_leaves_hand_made_items_alone(
    tmp_path: Path, home: Path, fake: FakeDrive, run_daemon
) -> None:
    # The user already has a folder called "syncd" (made in the web UI, with a file in
    # it) and a Google Doc in My Drive.  Under drive.file syncd cannot see them: it makes
    # its own syncd/p, never touches theirs, and never asks for files/root (a 404 there).
    hand_syncd = fake.mkdir("syncd/p")
    hand_file = fake.put_file("syncd/p/train.py", b"the user's own copy\n")
    doc = fake.put_doc("Lab notebook")
    hand = {i: fake.get(i) for i in (fake.find("syncd")["id"], hand_syncd, hand_file, doc)}
    cfg = setup(tmp_path, home, fake)
    src = tmp_path / "p"
    (src / "train.py").write_text("print('mine')\n")
    (src / "lib").mkdir()
    (src / "lib/util.py").write_text("X = 1\n")
    d = run_daemon(cfg)
    wait_for(lambda: mirrored(fake, src), what="first mirror next to hand-made items")
    wait_for(lambda: status(cfg)["state"] == "idle", what="idle")

    ours = fake.find("syncd/p", app=APP)
    assert ours is not None and ours["id"] != hand_syncd
    roots = [c for c in fake.children() if c["title"] == "syncd"]
    assert len(roots) == 2  # the user's and syncd's own, side by side in My Drive
    assert {c["id"]: fake.get(c["id"])["parents"][0]["id"] for c in roots} == {
        c["id"]: fake.root_id for c in roots
    }
    for item_id, before in hand.items():
        after = fake.get(item_id)
        assert (after["version"], after["title"], after["labels"]["trashed"]) == (
            before["version"],
            before["title"],
            False,
        )
        assert not any(item_id in r.path for r in fake.requests), f"{item_id} was touched"
    assert fake.content(hand_file) == b"the user's own copy\n"
    assert not any(
        r.path.endswith(("/files/root", f"/files/{fake.root_id}")) for r in fake.requests
    )
    assert fake.count("GET", "/drive/v2/about") >= 1  # My Drive's id came from about.get
    assert d.stop() == 0


def test_first_mirror_at_drives_pace(
    tmp_path: Path, home: Path, fake: FakeDrive, run_daemon
) -> None:
    # The fake's default write throttle: 3 creations/s per user, bursts of 10, then
    # 403 userRateLimitExceeded as Drive answers.  syncd slows down and gets there.
    cfg = setup(tmp_path, home, fake)
    src = tmp_path / "p"
    write_tree(src, 20, 1)
    d = run_daemon(cfg)
    wait_for(lambda: mirrored(fake, src), timeout=90, what="20 files at 3 creations/s")
    assert fake.count(reason="userRateLimitExceeded") > 0 and fake.duplicates() == []
    wait_for(lambda: status(cfg)["state"] == "idle", what="idle")
    answered = fake.count() - fake.count(reason="userRateLimitExceeded")
    # Every answered request was needed: about.get, one lookup, one id batch, 8 folders
    # (syncd, p, t0-t2, a d000 in each), the changes feed's first token, 20 uploads, then
    # the manifest: its .syncd folder and the file.  The 403s cost time, not duplicates.
    # Plus, in about one run in five, one or two child listings of a folder syncd made (a
    # path it does not know yet, looked up once where the throttle split the first mirror
    # into batches; seen since the manifest looks for an existing one): asked, never a
    # duplicate (checked above). Every other request is counted exactly.
    looked_up = sum(
        1
        for r in fake.requests
        if r.method == "GET"
        and r.path == "/drive/v2/files"
        and r.status == 200
        and r.query.get("q", "").endswith(" in parents and trashed = false")
    )
    assert looked_up <= 2
    assert answered - looked_up == 3 + 8 + 1 + 20 + 2, [
        (r.method, r.path, r.status) for r in fake.requests
    ]
    assert d.stop() == 0


def test_kill_9_between_upload_and_recording(
    tmp_path: Path, home: Path, fake: FakeDrive, run_daemon
) -> None:
    fake.set_write_limit(rate=500.0, burst=200.0)  # on, but this test is about crashes
    cfg = setup(tmp_path, home, fake, workers=2)
    src = tmp_path / "p"
    write_tree(src, 200, 5)
    # From the 81st upload on, Drive stores each file but holds its answer back: both
    # workers end up waiting for one, and the daemon is killed then.
    fake.inject(delay_response=60, count=1000, method="POST", path_contains="/upload/", after=80)
    d = run_daemon(cfg)

    def held() -> list[str]:
        return [r.title for r in fake.requests if r.fault and "delayed" in r.fault and r.title]

    wait_for(lambda: len(held()) == 2, what="two uploads stored but not answered")
    d.kill()
    time.sleep(0.5)  # whatever the fake was still handling is finished
    on_drive = files_below(fake)
    stored = fake.count("POST", "/upload/", status=200)  # answered (not refused by the throttle)
    assert len(on_drive) == stored + 2
    assert {p.rsplit("/", 1)[1] for p in on_drive} >= set(held())

    fake.clear_faults()
    fake.reset_log()
    d2 = run_daemon(cfg)
    wait_for(lambda: mirrored(fake, src), timeout=60, what="convergence after kill -9")
    assert fake.duplicates() == []
    again = set(uploads(fake)) & {p.rsplit("/", 1)[1] for p in on_drive}
    assert again == set(), f"already on Drive, uploaded again: {sorted(again)}"
    assert len(uploads(fake)) == 200 - len(on_drive)
    assert d2.stop() == 0


def test_first_run_into_a_folder_that_already_holds_the_project(
    tmp_path: Path, home: Path, fake: FakeDrive
) -> None:
    fake.set_write_limit(rate=100.0, burst=50.0)  # on, but this test counts requests
    cfg = setup(tmp_path, home, fake)
    src = tmp_path / "p"
    write_tree(src, 300, 10)
    for i, (rel, _) in enumerate(sorted(tree(src).items())):
        if i % 30 == 0:
            continue  # missing on Drive
        data = (src / rel).read_bytes()  # syncd's own uploads, from another machine say
        fake.put_file("syncd/p/" + rel, b"an older version\n" if i % 30 == 1 else data, by=APP)
    fake.reset_log()
    r = run_cli("sync", "--once", "-c", str(cfg))  # the real engine, no daemon
    assert r.returncode == 0, r.stderr
    held = files_below(fake)
    assert {p: h for p, h in held.items() if " (conflict " not in p} == tree(src)
    kept = [p for p in held if " (conflict " in p]
    assert len(kept) == 10  # Drive's other version is kept, never overwritten
    assert len(uploads(fake)) == 20  # only what differs: 10 missing + 10 changed
    # Resolving /syncd/p (3), the changes feed's first token, one flat listing, an id batch,
    # 10 renames, 20 uploads, the manifest (its .syncd folder and the file); then the 290
    # files that are already there cost nothing each.  Uploads beyond Drive's write burst
    # meet 403 userRateLimitExceeded and are retried: not counted here.
    assert fake.count(status=403) == fake.count(reason="userRateLimitExceeded")
    assert fake.count() - fake.count(status=403) <= 39, [(r.method, r.path) for r in fake.requests]


def test_restart_with_nothing_changed_uploads_nothing(
    tmp_path: Path, home: Path, fake: FakeDrive, run_daemon
) -> None:
    fake.set_write_limit(rate=500.0, burst=200.0)  # on, but this test is about the restart
    fake.page_size = 50  # Drive may answer short pages: 150 files show the paging
    cfg = setup(tmp_path, home, fake)
    src = tmp_path / "p"
    write_tree(src, 150, 10)
    d = run_daemon(cfg)
    wait_for(lambda: mirrored(fake, src), timeout=90, what="first mirror of 150 files")
    first = fake.count() - fake.count(reason="userRateLimitExceeded")
    # one request per new file + 35 folders (syncd, p, 3 + 30 below) + about.get, id
    # batches and a few lookups and folder listings
    assert first <= 150 + 35 + 10, [(r.method, r.path) for r in fake.requests]
    assert d.stop() == 0

    fake.reset_log()
    d2 = run_daemon(cfg)
    d2.wait_log("p: syncing → idle", timeout=60)
    # get the root folder (the check) + one flat listing of 185 items (4 pages of 50)
    assert [r.method for r in fake.requests] == ["GET"] * 5
    assert uploads(fake) == [] and fake.count(path_contains="/upload/") == 0
    assert d2.stop() == 0


def test_restart_under_full_scope_survives_the_or_of_parents_bug(
    tmp_path: Path, home: Path, fake: FakeDrive, run_daemon
) -> None:
    fake.set_write_limit(rate=100.0, burst=50.0)  # on, but this test is about listings
    cfg = setup(tmp_path, home, fake, scope="full")
    src = tmp_path / "p"
    write_tree(src, 12, 4)
    d = run_daemon(cfg)
    wait_for(lambda: mirrored(fake, src), timeout=60, what="first mirror")
    assert d.stop() == 0
    fake.or_parents_bug = 1.0  # every "(A in parents) or (B in parents)" answers nothing
    fake.reset_log()
    d2 = run_daemon(cfg)
    d2.wait_log("p: syncing → idle", timeout=60)
    assert uploads(fake) == [] and fake.count("POST") == 0 and fake.count("PATCH") == 0
    assert any(" or " in r.query.get("q", "") for r in fake.requests)  # the bug was met
    assert mirrored(fake, src)
    assert d2.stop() == 0


def test_revoked_token_waits_for_new_credentials_without_a_restart(
    tmp_path: Path, home: Path, fake: FakeDrive, run_daemon
) -> None:
    cfg = setup(tmp_path, home, fake)
    src = tmp_path / "p"
    for name in ("a.py", "b.py"):
        (src / name).write_text(f"# {name} v1\n")
    d = run_daemon(cfg)
    wait_for(lambda: mirrored(fake, src), what="initial mirror")

    fake.revoke_all()
    (src / "a.py").write_text("# a.py v2, made after the revoke\n")
    wait_for(lambda: status(cfg)["state"] == "auth_required", what="auth_required")
    st = status(cfg)
    assert st["mirror"]["last_error"] == (
        "Google Drive access was revoked or expired (run `syncd auth drive`)"
    )
    (src / "b.py").write_text("# b.py v2, made while auth_required\n")
    (src / "c.py").write_text("# new while auth_required\n")
    time.sleep(0.5)
    assert not mirrored(fake, src)  # nothing can get through

    fake.allow_refresh_token("1//new-grant")  # what `syncd auth drive` would do
    write_credentials(fake, home / ".config/syncd/drive-credentials.json", "1//new-grant", False)
    wait_for(lambda: mirrored(fake, src), timeout=45, what="queued edits after new credentials")
    assert d.proc.poll() is None  # the same daemon, never restarted
    wait_for(lambda: status(cfg)["state"] == "idle", what="idle again")
    assert fake.duplicates() == []
    assert d.stop() == 0

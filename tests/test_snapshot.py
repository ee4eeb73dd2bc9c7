"""Snapshots: selection, manifest, "unchanged" without re-reading, staging, notes, git, and
the SnapshotService in-process (single flight, background polls, schedules, git tags).

Real files in tmp_path, real git, the real kaggle client against the fake
(test_kaggle_client covers the client's faults, test_e2e_snapshot the daemon).
"""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from syncd.db.statedb import StateDB
from syncd.errors import SyncdError
from syncd.localfs.ignore import IgnoreRules
from syncd.snapshot import gitinfo
from syncd.snapshot.manifest import (
    MANIFEST_NAME,
    FileEntry,
    SnapshotManifest,
    known_md5s,
    manifest_hash,
    same_as,
)
from syncd.snapshot.notes import MAX_NOTES_CHARS, compose_notes, diff
from syncd.snapshot.select import SnapshotSelection
from syncd.snapshot.service import SnapshotService
from syncd.snapshot.stage import stage
from tests.fakes.kaggle_server import FakeKaggle

from .conftest import DAEMON_SRC, md5, wait_for
from .kaggle_support import (
    DATASET,
    EXPECTED,
    kaggle_config,
    make_project,
    project_config,
    settle,
)


def write(root: Path, rel: str, data: bytes | str = "x") -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        path.write_text(data)
    else:
        path.write_bytes(data)
    return path


def age(root: Path, seconds: float = 10.0) -> None:
    """Make every file look settled (written ``seconds`` ago)."""
    past = time.time() - seconds
    for dirpath, _, names in os.walk(root):
        for name in names:
            os.utime(os.path.join(dirpath, name), (past, past))


def selection(root: Path, **kw: object) -> SnapshotSelection:
    return SnapshotSelection(root, IgnoreRules(root, kw.pop("ignore", ())), **kw)  # type: ignore[arg-type]


def test_selection_is_the_mirror_view_narrowed_by_include_exclude_and_reserved(
    tmp_path: Path,
) -> None:
    for rel in (
        "train.py",
        "sub/a.py",
        "sub/deep/b.bin",
        "tests/test_a.py",
        "data/raw/big.bin",
        ".git/HEAD",
        ".env",
        "kaggle.json",
        "sub/.cache/x",
        "dataset-metadata.json",
        "sub/dataset-metadata.json",
        MANIFEST_NAME,
        "run.ckpt",
        ".syncd/colab.py",
        "sub/.syncd/kept.py",
    ):
        write(tmp_path, rel)
    os.symlink(tmp_path / "train.py", tmp_path / "link.py")

    everything = selection(
        tmp_path,
        ignore=("*.ckpt",),
        extra_exclude=(".cache/",),
        reserved=("dataset-metadata.json",),
    ).files()
    narrowed = selection(
        tmp_path,
        ignore=("*.ckpt",),
        include=("*.py", "sub/"),
        exclude=("tests/",),
    ).files()

    assert sorted(everything) == [
        "data/raw/big.bin",
        "sub/.syncd/kept.py",  # only the project's own .syncd/ is syncd's
        "sub/a.py",
        "sub/dataset-metadata.json",  # only the top-level name is the client's
        "sub/deep/b.bin",
        "tests/test_a.py",
        "train.py",
    ]
    assert sorted(narrowed) == [
        "sub/.cache/x",
        "sub/.syncd/kept.py",
        "sub/a.py",
        "sub/dataset-metadata.json",
        "sub/deep/b.bin",
        "train.py",
    ]


def test_manifest_hash_is_content_only() -> None:
    files = {"a.py": FileEntry(1, "aa"), "b/c.py": FileEntry(2, "bb")}
    early = SnapshotManifest("p", 1.0, "manual", dict(files), "msg")
    later = SnapshotManifest("p", 9e9, "schedule", dict(reversed(list(files.items()))))

    assert early.hash == later.hash == manifest_hash(files)
    assert manifest_hash({**files, "a.py": FileEntry(1, "ab")}) != early.hash
    assert manifest_hash({**files, "d.py": FileEntry(0, "00")}) != early.hash
    doc = early.to_json()
    assert doc["files"] == {"a.py": {"size": 1, "md5": "aa"}, "b/c.py": {"size": 2, "md5": "bb"}}
    assert (doc["project"], doc["trigger"], doc["file_count"], doc["bytes"]) == (
        "p",
        "manual",
        2,
        3,
    )
    assert doc["created_at"] == "1970-01-01T00:00:01Z" and doc["manifest_hash"] == early.hash


def test_unchanged_trusts_known_md5s_and_reads_only_the_rest(tmp_path: Path) -> None:
    a, b = write(tmp_path, "a.py", "AAAA"), write(tmp_path, "b.py", "BBBB")
    files = selection(tmp_path).files()
    last = {"a.py": FileEntry(4, md5(a)), "b.py": FileEntry(4, md5(b))}
    # A cache row whose size and mtime match is believed, even when it is wrong: proof that
    # the file was not read. A row with another mtime is not used.
    stale = files["a.py"]
    cache = {
        "a.py": (stale.size, stale.mtime_ns, md5(a)),
        "b.py": (4, files["b.py"].mtime_ns + 1, "not-used"),
    }
    known = known_md5s(files, {}, cache)
    assert known == {"a.py": md5(a)}

    same, hashed = same_as(tmp_path, files, known, last)
    assert same and hashed == {"b.py": md5(b)}  # only b was read

    fooled = known_md5s(files, {"a.py": (4, stale.mtime_ns, "00" * 16)})
    assert same_as(tmp_path, files, fooled, last)[0] is False
    # Paths or sizes differing decides it without reading anything.
    assert same_as(tmp_path, files, {}, {**last, "c.py": FileEntry(1, "c")}) == (False, {})
    assert same_as(tmp_path, files, {}, {**last, "a.py": FileEntry(5, md5(a))}) == (False, {})


def test_stage_copies_into_a_private_folder(tmp_path: Path) -> None:
    root = tmp_path / "p"
    write(root, "a.py", "print(1)\n")
    write(root, "sub/deep/b.bin", os.urandom(3 * 1024 * 1024 + 7))
    age(root)
    seen: list[int] = []

    staged = stage(root, ["a.py", "sub/deep/b.bin"], quiet_s=0.5, settle_s=5, progress=seen.append)
    try:
        assert stat.S_IMODE(staged.folder.stat().st_mode) == 0o700
        for rel in ("a.py", "sub/deep/b.bin"):
            copy = staged.folder / rel
            assert staged.files[rel] == FileEntry(copy.stat().st_size, md5(root / rel))
            assert copy.stat().st_ino != (root / rel).stat().st_ino  # a copy, not a link
            assert copy.stat().st_mtime_ns == (root / rel).stat().st_mtime_ns
        assert sum(seen) == 3 * 1024 * 1024 + 7 + 9 and not staged.left_out
        # A later edit of the project does not change the staged copy.
        (root / "a.py").write_text("changed")
        assert (staged.folder / "a.py").read_text() == "print(1)\n"
    finally:
        staged.cleanup()
    assert not staged.folder.exists()


def test_a_full_staging_disk_fails_the_snapshot_instead_of_dropping_files(
    tmp_path: Path,
) -> None:
    write(tmp_path / "p", "big.bin", os.urandom(300_000))
    age(tmp_path / "p")
    # A file size limit makes writes past 100 KB fail with EFBIG, like a full disk; in a
    # subprocess, so pytest's own files are not limited.
    code = (
        "import resource, signal, sys\n"
        "from pathlib import Path\n"
        "from syncd.snapshot.stage import stage\n"
        "from syncd.errors import SyncdError\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000))\n"
        "try:\n"
        f"    stage(Path({str(tmp_path / 'p')!r}), ['big.bin'], parent=Path({str(tmp_path)!r}))\n"
        "except SyncdError as exc:\n"
        "    print(exc)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(DAEMON_SRC)}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"cannot write the snapshot's staging copy in {tmp_path}: ")
    assert "point TMPDIR at a roomier disk" in done.stdout
    assert not list(tmp_path.glob("syncd-snapshot-*"))  # the partial copy is removed


def test_stage_waits_for_a_just_written_file(tmp_path: Path) -> None:
    write(tmp_path, "new.py", "fresh")

    started = time.monotonic()
    staged = stage(tmp_path, ["new.py", "gone.py"], quiet_s=0.3, settle_s=5)

    assert time.monotonic() - started >= 0.25
    assert staged.files["new.py"].size == 5 and "gone.py" not in staged.files
    assert not staged.left_out  # a file deleted since the walk simply is not in the project
    staged.cleanup()


def _rewrite_loop(path: Path, size: int, stop: threading.Event, versions: list[int]) -> None:
    """Rewrite ``path`` in place, over and over: truncate, then write in 64 KB pieces."""
    n = 0
    while not stop.is_set():
        n = (n + 1) % 250
        versions.append(n)
        with open(path, "r+b") as f:
            f.truncate(0)
            for _ in range(size // 65536):
                f.write(bytes([n]) * 65536)
                f.flush()
        time.sleep(0.002)


@pytest.mark.parametrize("writer_stops_after", [0.8, None])
def test_a_file_rewritten_during_staging_is_never_torn(
    tmp_path: Path, writer_stops_after: float | None
) -> None:
    size = 1024 * 1024
    hot = write(tmp_path, "hot.bin", bytes([0]) * size)
    for i in range(30):
        write(tmp_path, f"cold/{i}.py", f"x = {i}\n")
    age(tmp_path)
    stop, versions = threading.Event(), []
    writer = threading.Thread(target=_rewrite_loop, args=(hot, size, stop, versions))
    writer.start()
    if writer_stops_after is not None:
        threading.Timer(writer_stops_after, stop.set).start()
    try:
        time.sleep(0.05)
        staged = stage(
            tmp_path,
            ["hot.bin", *(f"cold/{i}.py" for i in range(30))],
            quiet_s=0.15,
            settle_s=2.0 if writer_stops_after else 0.6,
        )
    finally:
        stop.set()
        writer.join()
    try:
        assert len(versions) > 5 and len(staged.files) >= 30
        if writer_stops_after is None and "hot.bin" not in staged.files:
            # Never quiet within the deadline: left out and said so, never staged torn.
            assert "kept changing" in staged.left_out["hot.bin"]
            assert not (staged.folder / "hot.bin").exists()
        else:
            # The writer stopped — or, on a loaded machine, was not scheduled for longer
            # than the quiet time, so the file really was quiet: staged, and whole.
            data = (staged.folder / "hot.bin").read_bytes()
            assert len(data) == size and data == bytes([data[0]]) * size
            assert staged.files["hot.bin"] == FileEntry(size, md5(staged.folder / "hot.bin"))
            if writer_stops_after is not None:
                assert data == hot.read_bytes()  # the writer's last version
    finally:
        staged.cleanup()


def test_a_snapshot_taken_during_rewrites_uploads_a_whole_version(
    fake: FakeKaggle, kaggle_env: Path, tmp_path: Path, db: StateDB
) -> None:
    root = make_project(tmp_path / "cifar")
    size = 512 * 1024
    hot = write(root, "logs/metrics.bin", bytes([0]) * size)
    settle(root)
    stop, versions = threading.Event(), []
    writer = threading.Thread(target=_rewrite_loop, args=(hot, size, stop, versions))
    writer.start()
    threading.Timer(0.6, stop.set).start()
    try:
        time.sleep(0.05)
        result = service(root, fake, db).take("manual")  # quiet time 0.05 s (FAST)
    finally:
        stop.set()
        writer.join()

    assert result.status == "ready" and len(versions) > 5
    data = fake.dataset(DATASET).versions[0].files["logs/metrics.bin"]
    assert len(data) == size and data == bytes([data[0]]) * size


def test_notes_carry_message_trigger_git_size_and_latest_changes() -> None:
    old = {f"f{i:02d}.py": FileEntry(1, "a") for i in range(20)}
    new = {**{p: FileEntry(1, "b") for p in list(old)[:14]}, "new.py": FileEntry(2048, "n")}
    mtimes = {p: i for i, p in enumerate(new)}  # new.py edited last
    git = gitinfo.GitInfo("0123456789abcdef0123", "v1.2-3-g0123456-dirty", "main")

    notes = compose_notes(
        message="try lr 3e-4",
        trigger="git tag v1.2",
        git=git,
        files=new,
        changes=diff(old, new),
        since_version=7,
        mtimes=mtimes,
        left_out={"logs/run.log": "it kept changing while being copied"},
    )

    lines = notes.splitlines()
    assert lines[:4] == [
        "try lr 3e-4",
        "trigger: git tag v1.2",
        "git: v1.2-3-g0123456-dirty on main, commit 0123456789ab",
        "files: 15, 2.0 KB",
    ]
    assert lines[4] == "changed since v7: 14 modified, 1 added, 6 removed"
    assert lines[5:8] == ["  A new.py", "  M f13.py", "  M f12.py"]
    assert lines[15] == "  … and 11 more"
    assert lines[16] == "left out (changing or unreadable): logs/run.log"

    first = compose_notes(
        message=None, trigger="manual", git=None, files=new, changes=None, since_version=None
    )
    assert first.splitlines() == ["trigger: manual", "files: 15, 2.0 KB", "first snapshot"]
    long = compose_notes(
        message="m" * 5000, trigger="manual", git=None, files={}, changes=None, since_version=None
    )
    assert len(long) <= MAX_NOTES_CHARS


def git(repo: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "a",
        "GIT_AUTHOR_EMAIL": "a@example.com",
        "GIT_COMMITTER_NAME": "a",
        "GIT_COMMITTER_EMAIL": "a@example.com",
    }
    out = subprocess.run(["git", "-C", str(repo), *args], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_git_info_and_tags(tmp_path: Path) -> None:
    assert gitinfo.git_info(tmp_path) is None and gitinfo.list_tags(tmp_path) is None
    git(tmp_path, "init", "-q", "-b", "main")
    assert gitinfo.git_info(tmp_path) is None  # no commit yet
    write(tmp_path, "a.py", "1")
    git(tmp_path, "add", "a.py")
    git(tmp_path, "commit", "-q", "-m", "first")
    head = git(tmp_path, "rev-parse", "HEAD")
    assert gitinfo.list_tags(tmp_path) == {}

    git(tmp_path, "tag", "-a", "v1.2", "-m", "release 1.2\n\nwith details")
    write(tmp_path, "a.py", "2")
    info = gitinfo.git_info(tmp_path)

    assert info == gitinfo.GitInfo(head, "v1.2-dirty", "main")
    tags = gitinfo.list_tags(tmp_path)
    assert tags is not None and list(tags) == ["v1.2"]
    [tag] = gitinfo.tag_details(tmp_path, ["v1.2"])
    assert (tag.name, tag.message) == ("v1.2", "release 1.2\n\nwith details")
    git(tmp_path, "checkout", "-q", "--detach")
    assert gitinfo.git_info(tmp_path).branch is None  # type: ignore[union-attr]


def test_manifest_file_is_written_at_the_top(tmp_path: Path) -> None:
    manifest = SnapshotManifest("p", 0.0, "manual", {"a": FileEntry(1, "x")})
    path = manifest.write(tmp_path)
    assert path == tmp_path / MANIFEST_NAME
    assert json.loads(path.read_text())["files"] == {"a": {"size": 1, "md5": "x"}}


# --- the service, in-process against the fake ------------------------------------------------


def service(root: Path, fake: FakeKaggle, state, **snapshot: object) -> SnapshotService:
    return SnapshotService(project_config(root, **snapshot), state, kaggle_config(fake))


def test_first_snapshot_then_unchanged_then_forced(
    fake: FakeKaggle,
    kaggle_env: Path,
    tmp_path: Path,
    db: StateDB,
) -> None:
    root = make_project(tmp_path / "cifar")
    svc = service(root, fake, db)

    first = svc.take("manual", "try lr 3e-4")

    assert (first.status, first.version, first.files) == ("ready", 1, len(EXPECTED))
    assert first.message == (
        f"{DATASET} v1 is ready (4 files, {first.bytes} B): {fake.url}/datasets/{DATASET}"
    )
    files = fake.dataset(DATASET).versions[0].files
    assert set(files) == EXPECTED | {MANIFEST_NAME}
    manifest = json.loads(files[MANIFEST_NAME])
    assert (manifest["project"], manifest["trigger"], manifest["message"]) == (
        "cifar",
        "manual",
        "try lr 3e-4",
    )
    assert manifest["files"]["models/layers/conv.py"] == {
        "size": len(files["models/layers/conv.py"]),
        "md5": md5(root / "models/layers/conv.py"),
    }

    fake.reset_log()
    (root / "train.py").touch()  # a new mtime, the same content
    again = svc.take("schedule")
    assert (again.status, again.version) == ("unchanged", 1)
    assert again.message == "unchanged since v1; nothing uploaded (use --force to upload anyway)"
    assert fake.requests == []  # not even a status call
    assert svc.status_block()["status"] == "unchanged"

    forced = svc.take("manual", force=True)
    assert (forced.status, forced.version) == ("ready", 2)
    history = svc.history()
    assert [(h["version"], h["status"], h["trigger"]) for h in history] == [
        (2, "ready", "manual"),
        (1, "ready", "manual"),
    ]
    assert history[1]["notes"].splitlines()[0] == "try lr 3e-4"
    assert history[0]["manifest_hash"] == history[1]["manifest_hash"]
    block = svc.status_block()
    assert block == {
        "dataset": DATASET,
        "last_version": 2,
        "last_at": history[0]["at"],
        "status": "ready",
        "next_at": None,
    }


def test_progress_bars_count_staged_and_uploaded_bytes(
    fake: FakeKaggle,
    kaggle_env: Path,
    tmp_path: Path,
    db: StateDB,
    capsys: pytest.CaptureFixture[str],
) -> None:
    root = make_project(tmp_path / "cifar")
    write(root, "weights/big.npy", os.urandom(300_000))
    settle(root)

    quiet = service(root, fake, db).take("manual", force=True)
    assert capsys.readouterr() == ("", "")  # no TTY: nothing printed
    result = service(root, fake, db).take("manual", force=True, progress=True)

    err = capsys.readouterr().err
    assert result.status == "ready" and quiet.status == "ready"
    assert "staging" in err and "uploading" in err and "293k" in err  # 300,000 bytes in KiB


def test_two_triggers_at_once_make_one_version(
    fake: FakeKaggle,
    kaggle_env: Path,
    tmp_path: Path,
    db: StateDB,
) -> None:
    svc = service(make_project(tmp_path / "cifar"), fake, db)
    fake.inject(delay=0.5, rpc="CreateDataset")  # the first snapshot is still running...
    results: list[object] = []
    threads = [
        threading.Thread(target=lambda t=t: results.append(svc.take(t)))
        for t in ("manual", "schedule", "git tag v1")
    ]
    threads[0].start()
    assert fake.wait_for("StartBlobUpload")
    for thread in threads[1:]:  # ...when two more triggers arrive
        thread.start()
    for thread in threads:
        thread.join(10)

    assert len(results) == 3 and all(r is results[0] for r in results)
    assert len(fake.dataset(DATASET).versions) == 1 and fake.count("CreateDataset") == 1


def test_without_waiting_the_version_is_recorded_later(
    fake: FakeKaggle,
    kaggle_env: Path,
    tmp_path: Path,
    db: StateDB,
) -> None:
    fake.processing_polls = 5
    svc = service(make_project(tmp_path / "cifar"), fake, db)

    result = svc.take("manual", wait=False)

    assert (result.status, result.version) == ("pending", None)
    assert "Kaggle is processing it" in result.message
    wait_for(lambda: svc.history()[0]["status"] == "ready", 5, "background poll")
    assert svc.history()[0]["version"] == 1 and svc.status_block()["last_version"] == 1
    svc.close()


def test_a_failing_upload_is_an_error_and_not_the_unchanged_baseline(
    fake: FakeKaggle,
    kaggle_env: Path,
    tmp_path: Path,
    db: StateDB,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SYNCD_KAGGLE_RETRIES", "1")
    svc = service(make_project(tmp_path / "cifar"), fake, db)
    fake.inject(status=500, rpc="CreateDataset")

    with pytest.raises(SyncdError, match="Kaggle kept failing while creating alice/cifar-code"):
        svc.take("manual")

    assert [h["status"] for h in svc.history()] == ["error"]
    assert svc.status_block()["status"] == "error"
    assert svc.take("manual").status == "ready"  # not "unchanged": nothing was uploaded


def test_schedules_fire_and_a_missed_run_runs_once(
    fake: FakeKaggle,
    kaggle_env: Path,
    tmp_path: Path,
    db: StateDB,
) -> None:
    from apscheduler.events import EVENT_JOB_EXECUTED
    from apscheduler.schedulers.background import BackgroundScheduler

    root = make_project(tmp_path / "cifar")
    svc = service(root, fake, db, every=0.5, schedule="0 3 * * *")
    scheduler = BackgroundScheduler(daemon=True)
    runs: list[datetime] = []  # the scheduled time of each run of the interval job

    def executed(event: object) -> None:
        if getattr(event, "job_id", "") == "snapshot:cifar:every":
            runs.append(event.scheduled_run_time)  # type: ignore[attr-defined]

    scheduler.add_listener(executed, EVENT_JOB_EXECUTED)
    svc.install_triggers(scheduler)
    scheduler.start()
    try:
        wait_for(lambda: runs, 5, "a scheduled snapshot")
        assert svc.history()[0]["trigger"] == "schedule"
        next_at = svc.status_block()["next_at"]
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", next_at)

        # Asleep (the scheduler paused) through about five interval runs: they all run as
        # one, however late, and the schedule goes on from there.
        scheduler.pause()
        slept = datetime.now(UTC)
        time.sleep(2.6)
        woke = datetime.now(UTC)
        scheduler.resume()
        wait_for(lambda: any(t > woke for t in runs), 5, "the schedule to go on")
        assert len([t for t in runs if slept < t < woke]) == 1
    finally:
        svc.close()
        scheduler.shutdown(wait=False)
    jobs = {job.id for job in scheduler.get_jobs()}
    assert not any(job.startswith("snapshot:cifar") for job in jobs)
    assert len(fake.dataset(DATASET).versions) == 1  # the later runs found nothing new


def test_next_at_follows_the_cron_schedule(
    fake: FakeKaggle,
    kaggle_env: Path,
    tmp_path: Path,
    db: StateDB,
) -> None:
    from apscheduler.schedulers.background import BackgroundScheduler
    from apscheduler.triggers.cron import CronTrigger

    svc = service(make_project(tmp_path / "cifar"), fake, db, schedule="17 3 * * *")
    scheduler = BackgroundScheduler(daemon=True)
    svc.install_triggers(scheduler)
    scheduler.start()
    try:
        expected = CronTrigger.from_crontab("17 3 * * *").get_next_fire_time(
            None, datetime.now(UTC).astimezone()
        )
        assert svc.status_block()["next_at"] == expected.astimezone(UTC).strftime(
            "%Y-%m-%dT%H:%M:%SZ"
        )
    finally:
        svc.close()
        scheduler.shutdown(wait=False)


def test_a_new_git_tag_makes_a_snapshot_with_the_tag_in_its_notes(
    fake: FakeKaggle,
    kaggle_env: Path,
    tmp_path: Path,
    db: StateDB,
) -> None:
    root = make_project(tmp_path / "cifar")
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "train.py")
    git(root, "commit", "-q", "-m", "first")
    git(root, "tag", "v1.0")
    svc = service(root, fake, db, on_git_tag=True)

    svc.poll_tags()  # the tags that exist now are remembered, not snapshotted
    time.sleep(0.2)
    assert fake.requests == []

    git(root, "tag", "-a", "v1.2", "-m", "lr 3e-4 baseline")
    settle(root)
    svc.poll_tags()

    wait_for(lambda: svc.history() and svc.history()[0]["status"] == "ready", 5, "tag snapshot")
    notes = svc.history()[0]["notes"]
    commit = git(root, "rev-parse", "HEAD")[:12]
    assert notes.splitlines()[:3] == [
        "lr 3e-4 baseline",
        "trigger: git tag v1.2",
        f"git: v1.2 on main, commit {commit}",
    ]
    svc.poll_tags()
    time.sleep(0.2)
    assert len(svc.history()) == 1
    svc.close()

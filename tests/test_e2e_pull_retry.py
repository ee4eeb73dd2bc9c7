"""End-to-end: files that did not come down are pending and retried (review-2 #6, #7, #9).

A download Drive refuses (403 downloadQuotaExceeded) or a local write error
(a file-size limit, set with ``prlimit`` on the real daemon: EFBIG) leaves the
file pending in the state db: ``status`` counts it and ``last_error`` names
it, every poll tries it once more, and it lands once the cause is gone.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import run_cli, wait_for
from tests.fakes.drive_server import COLAB, FakeDrive
from tests.test_e2e_pull import fake, first_mirror, local, pull_status, setup

pytestmark = pytest.mark.e2e
__all__ = ["fake"]  # the fixture, shared


def media_gets(fake: FakeDrive, file_id: str) -> int:
    return sum(
        1
        for r in list(fake.requests)
        if r.method == "GET" and file_id in r.path and r.query.get("alt") == "media"
    )


def feed_reads(fake: FakeDrive) -> int:
    """changes.list requests: one per poll."""
    return sum(1 for r in list(fake.requests) if r.method == "GET" and r.path.endswith("/changes"))


def test_a_refused_download_stays_pending_and_comes_down_later(
    tmp_path: Path, home: Path, fake: FakeDrive, run_daemon
) -> None:
    cfg = setup(tmp_path, home, fake)
    src = tmp_path / "p"
    d = run_daemon(cfg)
    folder = first_mirror(fake)
    fake.put_file("outputs/seed.txt", b"seed", parent_id=folder, by=COLAB)
    wait_for(lambda: local(src, "outputs/seed.txt") == b"seed", what="outputs/ known")
    q = fake.put_file("outputs/model.pt", b"weights", parent_id=folder, by=COLAB)
    message = "The download quota for this file has been exceeded."
    fake.inject(403, "downloadQuotaExceeded", count=10_000, method="GET", path_contains=q,
                message=message)  # fmt: skip
    wait_for(lambda: pull_status(cfg)["pending"] == 1, what="the file pending")
    st = pull_status(cfg)
    assert st["last_error"].startswith("not pulled yet: outputs/model.pt: "), st
    assert "downloadQuotaExceeded" in st["last_error"] or "quota" in st["last_error"]
    tries = media_gets(fake, q)
    wait_for(lambda: media_gets(fake, q) >= tries + 2, what="tried again at later polls")
    fake.clear_faults()
    wait_for(lambda: local(src, "outputs/model.pt") == b"weights", what="it came down")
    wait_for(lambda: pull_status(cfg)["pending"] == 0, what="nothing pending")
    assert pull_status(cfg)["last_error"] is None
    assert d.log.count("not pulling outputs/model.pt yet") == 1  # said once, not every poll
    d.stop()


def test_a_file_trashed_while_pending_is_pending_no_more(
    tmp_path: Path, home: Path, fake: FakeDrive, run_daemon
) -> None:
    cfg = setup(tmp_path, home, fake)
    src = tmp_path / "p"
    d = run_daemon(cfg)
    folder = first_mirror(fake)
    fake.put_file("outputs/seed.txt", b"seed", parent_id=folder, by=COLAB)
    wait_for(lambda: local(src, "outputs/seed.txt") == b"seed", what="outputs/ known")
    q = fake.put_file("outputs/gone.bin", b"x", parent_id=folder, by=COLAB)
    fake.inject(403, "downloadQuotaExceeded", count=10_000, method="GET", path_contains=q)
    wait_for(lambda: pull_status(cfg)["pending"] == 1, what="the file pending")
    fake.trash(q)
    wait_for(lambda: pull_status(cfg)["pending"] == 0, what="pending no more")
    assert pull_status(cfg)["last_error"] is None and local(src, "outputs/gone.bin") is None
    d.stop()


def test_a_local_write_error_is_said_as_such_tried_once_per_poll_and_retried(
    tmp_path: Path, home: Path, fake: FakeDrive, run_daemon
) -> None:
    cfg = setup(tmp_path, home, fake)
    src = tmp_path / "p"
    d = run_daemon(cfg, prefix=("prlimit", "--fsize=3000000:unlimited", "--"))  # EFBIG past 3 MB
    folder = first_mirror(fake)
    big = bytes(range(256)) * (5 * 4096)  # 5 MiB
    wait_for(lambda: pull_status(cfg)["last_poll"], what="a first poll")
    assert run_cli("pause", "p", "-c", str(cfg)).returncode == 0
    time.sleep(1.5)  # a poll under way ends
    q = fake.put_file("outputs/big.bin", big, parent_id=folder, by=COLAB)
    polls = feed_reads(fake)  # the next one sees the file
    assert run_cli("resume", "p", "-c", str(cfg)).returncode == 0
    wait_for(lambda: pull_status(cfg)["pending"] == 1, what="the file pending")
    st = pull_status(cfg)
    assert st["last_error"].startswith("not pulled yet: outputs/big.bin: cannot write into "
                                       "outputs/big.bin: File too large"), st  # fmt: skip
    assert "Google Drive" not in st["last_error"]
    wait_for(lambda: feed_reads(fake) >= polls + 4, what="four polls")
    assert media_gets(fake, q) <= feed_reads(fake) - polls, "tried twice in a poll"
    assert d.log.count("not pulling outputs/big.bin yet") == 1  # logged once
    assert d.proc is not None
    subprocess.run(["prlimit", f"--pid={d.proc.pid}", "--fsize=unlimited"], check=True)
    wait_for(lambda: local(src, "outputs/big.bin") == big, what="it came down")
    assert [p.name for p in (src / "outputs").iterdir()] == ["big.bin"]  # no temp file left
    wait_for(lambda: pull_status(cfg)["pending"] == 0, what="nothing pending")
    assert pull_status(cfg)["last_error"] is None
    d.stop()


def test_the_project_folder_trashed_on_drive_is_said_in_pull_status(
    tmp_path: Path, home: Path, fake: FakeDrive, run_daemon
) -> None:
    cfg = setup(tmp_path, home, fake)
    src = tmp_path / "p"
    d = run_daemon(cfg)
    folder = first_mirror(fake)
    fake.put_file("outputs/a.txt", b"a", parent_id=folder, by=COLAB)
    wait_for(lambda: local(src, "outputs/a.txt") == b"a", what="a.txt")
    fake.trash(folder)
    wait_for(lambda: pull_status(cfg)["last_error"], what="the pull says so")
    assert pull_status(cfg)["last_error"] == "the Drive folder gdrive:/syncd/p is in Drive's trash"
    assert local(src, "outputs/a.txt") == b"a"  # the local copies stay
    fake.untrash(folder)
    fake.put_file("outputs/b.txt", b"b", parent_id=folder, by=COLAB)
    wait_for(lambda: local(src, "outputs/b.txt") == b"b", what="pulling again once restored")
    wait_for(lambda: pull_status(cfg)["last_error"] is None, what="no error")
    assert local(src, "outputs/a.txt") == b"a"
    d.stop()

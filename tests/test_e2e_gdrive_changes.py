"""End-to-end: the real daemon checks for remote edits through Drive's changes feed (#14).

One request per edited file: the feed is read once per batch instead of a
``files.get`` before each write over a known file; a file someone else changed
on Drive still becomes a conflict copy, also after a restart whose saved feed
token Drive no longer honours.  The fake's request log is the evidence.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import tree, wait_for
from tests.fakes.drive_server import FakeDrive, RecordedRequest
from tests.gdrive_support import files_below
from tests.test_e2e_gdrive import mirrored, setup

pytestmark = pytest.mark.e2e


@pytest.fixture
def fake(home: Path) -> Iterator[FakeDrive]:
    with FakeDrive() as drive:
        yield drive
    assert drive.internal_errors == []


def is_get(r: RecordedRequest) -> bool:
    """A files.get of one id: the per-file check the feed replaces."""
    return r.method == "GET" and r.path.startswith("/drive/v2/files/") and "generate" not in r.path


def is_feed(r: RecordedRequest) -> bool:
    return r.path == "/drive/v2/changes"


def conflict_kept(fake: FakeDrive, src: Path, name: str, theirs: bytes) -> bool:
    held = files_below(fake)
    stem = name.rsplit(".", 1)[0]
    kept = [p for p in held if p.startswith(f"{stem} (conflict ")]
    if len(kept) != 1 or held.get(name) != tree(src)[name]:
        return False
    return fake.content(fake.find(f"syncd/p/{kept[0]}")["id"]) == theirs


def test_a_remote_edit_between_two_local_edits_becomes_a_conflict_copy(
    tmp_path: Path, home: Path, fake: FakeDrive, run_daemon
) -> None:
    cfg = setup(tmp_path, home, fake)
    src = tmp_path / "p"
    (src / "main.py").write_text("print('v1')\n")
    d = run_daemon(cfg)
    wait_for(lambda: mirrored(fake, src), what="first upload")
    file_id = fake.find("syncd/p/main.py")["id"]
    fake.reset_log()
    (src / "main.py").write_text("print('v2')\n")  # local edit 1
    wait_for(lambda: mirrored(fake, src), what="local edit 1")
    fake.set_content(file_id, b"edited in Colab\n")  # the remote edit, in between
    (src / "main.py").write_text("print('v3')\n")  # local edit 2
    wait_for(
        lambda: conflict_kept(fake, src, "main.py", b"edited in Colab\n"), what="conflict copy"
    )
    assert fake.content(file_id) == b"edited in Colab\n"  # renamed, never overwritten
    # Both checks came from the changes feed: no files.get of the file, ever.
    assert not any(is_get(r) for r in fake.requests), [(r.method, r.path) for r in fake.requests]
    assert any(is_feed(r) for r in fake.requests)
    assert fake.duplicates() == []
    assert d.stop() == 0


def test_edits_cost_one_request_each_plus_one_feed_read_per_batch(
    tmp_path: Path, home: Path, fake: FakeDrive, run_daemon
) -> None:
    cfg = setup(tmp_path, home, fake)
    src = tmp_path / "p"
    for i in range(20):
        (src / f"f{i:02d}.py").write_text(f"# {i} v0\n")
    d = run_daemon(cfg)
    wait_for(lambda: mirrored(fake, src), what="first mirror")
    fake.reset_log()
    for n in range(3):  # single edits, each its own batch
        (src / "f00.py").write_text(f"# single edit {n}\n")
        wait_for(lambda: mirrored(fake, src), what=f"single edit {n}")
    for i in range(20):  # a checkout: 20 files at once
        (src / f"f{i:02d}.py").write_text(f"# {i} v1\n")
    wait_for(lambda: mirrored(fake, src), what="20 edits")
    time.sleep(0.5)  # nothing more should follow
    log = [r for r in fake.requests if r.status == 200]
    feed = sum(1 for r in log if is_feed(r))
    others = [(r.method, r.path) for r in log if not is_feed(r)]
    assert len(others) == 3 + 20, others  # one upload per edited file, nothing else
    assert all("/upload/" in p for _, p in others)
    assert 1 + 1 <= feed <= 3 + 3  # once per batch (the 20 may land in a few batches)
    assert d.stop() == 0


def test_an_expired_token_after_a_restart_still_keeps_the_remote_edit(
    tmp_path: Path, home: Path, fake: FakeDrive, run_daemon
) -> None:
    cfg = setup(tmp_path, home, fake)
    src = tmp_path / "p"
    (src / "train.py").write_text("v1\n")
    d = run_daemon(cfg)
    wait_for(lambda: mirrored(fake, src), what="first upload")
    (src / "train.py").write_text("v2\n")
    wait_for(lambda: mirrored(fake, src), what="second upload")
    assert d.stop() == 0
    file_id = fake.find("syncd/p/train.py")["id"]
    fake.set_content(file_id, b"edited in Colab while syncd was down\n")
    fake.expire_change_tokens()  # the saved token is refused after the restart
    (src / "train.py").write_text("v3\n")
    run_daemon(cfg)
    wait_for(
        lambda: conflict_kept(fake, src, "train.py", b"edited in Colab while syncd was down\n"),
        what="conflict copy after the restart",
    )
    assert any(r.status == 400 and is_feed(r) for r in fake.requests)  # refused, then...
    assert any(is_get(r) and file_id in r.path for r in fake.requests)  # ...checked by id
    assert fake.duplicates() == []

"""End-to-end: one Drive request per edited file, and remote edits still kept (#14).

The real daemon sends an edit of a known file as one conditional upload
(``If-Match``: the etag of the version syncd knows) instead of a ``files.get``
then the upload; a file someone else changed on Drive is refused, looked at
again through the changes feed, and becomes a conflict copy, also after a
restart whose saved feed token Drive no longer honours.  The fake's request log
is the evidence.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import run_cli, tree, wait_for
from tests.fakes.drive_server import APP, FakeDrive, RecordedRequest
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


def running_and_idle(cfg: Path) -> bool:
    answer = json.loads(run_cli("status", "--json", "-c", str(cfg)).stdout or "{}")
    return bool(answer.get("running")) and answer["projects"][0]["state"] == "idle"


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
    # Local edit 2 was refused (412: the etag syncd knew is stale), then the changes feed
    # told what Drive holds: no files.get of the file, ever.
    assert fake.count(status=412) == 1
    assert not any(is_get(r) for r in fake.requests), [(r.method, r.path) for r in fake.requests]
    assert any(is_feed(r) for r in fake.requests)
    assert fake.duplicates() == []
    assert d.stop() == 0


def test_edits_cost_one_request_each(
    tmp_path: Path, home: Path, fake: FakeDrive, run_daemon
) -> None:
    cfg = setup(tmp_path, home, fake)
    src = tmp_path / "p"
    for i in range(20):
        (src / f"f{i:02d}.py").write_text(f"# {i} v0\n")
    d = run_daemon(cfg)
    wait_for(lambda: mirrored(fake, src), what="first mirror")
    wait_for(lambda: fake.find("syncd/p/.syncd/manifest.json", app=APP), what="the manifest")
    time.sleep(0.3)  # the first batch's manifest write is over
    fake.reset_log()
    for n in range(3):  # single edits, each its own batch
        (src / "f00.py").write_text(f"# single edit {n}\n")
        wait_for(lambda: mirrored(fake, src), what=f"single edit {n}")
    for i in range(20):  # a checkout: 20 files at once
        (src / f"f{i:02d}.py").write_text(f"# {i} v1\n")
    wait_for(lambda: mirrored(fake, src), what="20 edits")
    time.sleep(0.5)  # nothing more should follow
    sent = [(r.method, r.path, r.status) for r in fake.requests]
    assert all("/upload/" in p and s == 200 for _, p, s in sent), sent
    # One upload per edited file; besides them only the manifest, one update per batch
    # (README, "Colab never runs stale code"): 3 single edits + the checkout = 4 batches.
    manifest = fake.find("syncd/p/.syncd/manifest.json", app=APP)
    assert manifest is not None
    to_manifest = [r for r in sent if r[1].endswith("/" + manifest["id"])]
    assert len(sent) - len(to_manifest) == 3 + 20, sent
    assert len(to_manifest) == 4, sent
    assert d.stop() == 0


def test_after_a_restart_with_an_expired_token_a_changed_file_is_not_trashed(
    tmp_path: Path, home: Path, fake: FakeDrive, run_daemon
) -> None:
    cfg = setup(tmp_path, home, fake)
    src = tmp_path / "p"
    for name in ("keep.py", "old.py", "train.py"):
        (src / name).write_text("v1\n")
    d = run_daemon(cfg)
    wait_for(lambda: mirrored(fake, src), what="first mirror")
    assert d.stop() == 0
    fake.expire_change_tokens()  # the token syncd saved is refused after the restart
    d = run_daemon(cfg)
    wait_for(lambda: running_and_idle(cfg), what="the new daemon idle after its startup scan")
    file_id = fake.find("syncd/p/train.py")["id"]
    fake.set_content(file_id, b"edited in Colab\n")  # after the startup listing
    fake.reset_log()
    (src / "train.py").unlink()  # a local deletion of a file changed on Drive meanwhile
    wait_for(
        lambda: any(is_get(r) and file_id in r.path for r in fake.requests),
        what="the per-file check",
    )
    time.sleep(1.0)  # the deletion is decided by now
    assert any(r.status == 400 and is_feed(r) for r in fake.requests)  # refused, then...
    assert not fake.get(file_id)["labels"]["trashed"]  # ...checked by id: kept, not trashed
    assert fake.content(file_id) == b"edited in Colab\n"
    (src / "old.py").unlink()  # an unchanged file is still trashed, the feed working again
    wait_for(lambda: fake.find("syncd/p/old.py") is None, what="old.py trashed")
    assert d.stop() == 0

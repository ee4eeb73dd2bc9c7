"""The changes feed (``remotes/gdrive/changes.py``) and one request per edited file.

#14: an edit of a file syncd knows costs its upload only.  The upload carries the
etag of the state syncd knows in ``If-Match``; a file someone else changed is
refused (412) and looked at again, so the engine keeps a conflict copy.  Deletions
are checked against the changes feed, read once per batch.  What syncd knows after
a restart comes from the startup listing and the feed, from a token kept in the
state db.  All of it against the fake over HTTP with the real googleapiclient stack.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from syncd.db.statedb import StateDB
from syncd.errors import FileChanged
from syncd.remotes.base import RemoteEntry
from syncd.remotes.gdrive.backend import GDriveRemote
from syncd.remotes.gdrive.changes import ChangesFeed, TokenRefused
from syncd.remotes.gdrive.remote_edits import PER_FILE_ENV, TOKEN_KEY
from tests.fakes.drive_server import COLAB, FakeDrive
from tests.gdrive_support import open_gdrive


@pytest.fixture
def fake(home: Path) -> Iterator[FakeDrive]:
    with FakeDrive() as drive:
        yield drive
    assert drive.internal_errors == []


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def put(
    remote: GDriveRemote, tmp_path: Path, path: str, data: bytes, known: RemoteEntry | None
) -> RemoteEntry:
    """What the engine does for one edited file: stat (its check), then upload."""
    src = tmp_path / "src" / path
    src.parent.mkdir(parents=True, exist_ok=True)
    src.write_bytes(data)
    cur = remote.stat(path, known)
    assert cur is None or known is None or cur.md5 == known.md5, "changed by someone else"
    return remote.upload(path, src, cur).entry


def gets(fake: FakeDrive) -> int:
    """files.get requests (metadata of one id), the per-file check the feed replaces."""
    return sum(
        1
        for r in fake.requests
        if r.method == "GET"
        and r.path.startswith("/drive/v2/files/")
        and "generateIds" not in r.path
    )


def feed_reads(fake: FakeDrive) -> int:
    return fake.count("GET", "/drive/v2/changes") - fake.count(path_contains="startPageToken")


# --- the reader ----------------------------------------------------------------------------


def test_reader_reports_each_file_once_with_its_state_and_a_new_token(
    fake: FakeDrive, tmp_path: Path
) -> None:
    remote = open_gdrive(fake, tmp_path)
    remote.check(create=True)
    a = put(remote, tmp_path, "a.txt", b"a1", None)
    b = put(remote, tmp_path, "b.txt", b"b1", None)
    feed = ChangesFeed(remote.api)
    token = feed.start_token()
    fake.set_content(a.id, b"a2 from Colab")
    fake.set_content(a.id, b"a3 from Colab")  # twice: reported once, at its latest state
    remote.trash(b)
    hidden = fake.put_file("syncd/p/colab.txt", b"x", by=COLAB)  # invisible under drive.file
    changes, after = feed.since(token)
    assert [c.file_id for c in changes] == [a.id, b.id]
    got = {c.file_id: c for c in changes}
    assert got[a.id].md5 == md5(b"a3 from Colab") and not got[a.id].trashed
    assert got[a.id].rev == fake.get(a.id)["headRevisionId"]
    assert got[a.id].modified == fake.get(a.id)["modifiedDate"]
    assert got[b.id].trashed and not got[b.id].removed
    assert hidden not in got
    assert feed.since(after) == ([], after)  # nothing new since


def test_reader_reports_removals_without_state_under_full_scope(
    fake: FakeDrive, tmp_path: Path
) -> None:
    remote = open_gdrive(fake, tmp_path, scope="full")
    remote.check(create=True)
    feed = ChangesFeed(remote.api)
    token = feed.start_token()
    made = fake.put_file("syncd/p/ckpt.pt", b"w", by=COLAB)
    remote.api.call(lambda: remote.api.files().delete(fileId=made), "deleting for good")
    (change,) = feed.since(token)[0]
    assert change.file_id == made and change.removed and change.item is None and change.md5 is None


def test_reader_raises_token_refused_for_an_expired_token(fake: FakeDrive, tmp_path: Path) -> None:
    remote = open_gdrive(fake, tmp_path)
    remote.check(create=True)
    feed = ChangesFeed(remote.api)
    token = feed.start_token()
    put(remote, tmp_path, "a.txt", b"a", None)
    fake.expire_change_tokens()
    with pytest.raises(TokenRefused):
        feed.since(token)
    fresh = feed.start_token()
    assert feed.since(fresh) == ([], fresh)


# --- the remote: one request per edited file ----------------------------------------------


def test_edits_cost_one_upload_each_and_nothing_else(fake: FakeDrive, tmp_path: Path) -> None:
    remote = open_gdrive(fake, tmp_path)
    remote.check(create=True)
    known = {f"f{i}.txt": put(remote, tmp_path, f"f{i}.txt", b"v1 %d" % i, None) for i in range(10)}
    for round_ in (2, 3):
        remote.begin_batch()
        fake.reset_log()
        for path, entry in list(known.items()):
            known[path] = put(remote, tmp_path, path, b"v%d %s" % (round_, path.encode()), entry)
        assert fake.count() == 10, [(r.method, r.path) for r in fake.requests]
        assert gets(fake) == 0 and feed_reads(fake) == 0
    assert all(fake.content(e.id) == b"v3 " + p.encode() for p, e in known.items())


def test_the_old_per_file_check_stays_selectable_for_the_bench(
    fake: FakeDrive, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PER_FILE_ENV, "1")
    remote = open_gdrive(fake, tmp_path)
    remote.check(create=True)
    known = {f"f{i}.txt": put(remote, tmp_path, f"f{i}.txt", b"v1", None) for i in range(5)}
    remote.begin_batch()
    fake.reset_log()
    for path, entry in known.items():
        put(remote, tmp_path, path, b"v2", entry)
    assert gets(fake) == 5 and feed_reads(fake) == 0 and fake.count() == 10


def test_a_remote_edit_between_two_local_edits_is_refused_then_seen(
    fake: FakeDrive, tmp_path: Path
) -> None:
    remote = open_gdrive(fake, tmp_path)
    remote.check(create=True)
    first = put(remote, tmp_path, "main.py", b"v1", None)
    remote.begin_batch()
    second = put(remote, tmp_path, "main.py", b"v2", first)
    fake.set_content(second.id, b"edited in Colab")
    remote.begin_batch()
    fake.reset_log()
    with pytest.raises(FileChanged):  # the etag syncd knew is stale: 412, nothing written
        put(remote, tmp_path, "main.py", b"v3", second)
    assert fake.content(second.id) == b"edited in Colab"
    remote.begin_batch()  # the engine retries the file in its next batch
    cur = remote.stat("main.py", second)
    assert cur is not None and cur.md5 == md5(b"edited in Colab") != second.md5
    assert gets(fake) == 0 and feed_reads(fake) == 1  # the feed told, no files.get


def test_trash_and_move_by_someone_else_are_refused_then_seen(
    fake: FakeDrive, tmp_path: Path
) -> None:
    remote = open_gdrive(fake, tmp_path)
    remote.check(create=True)
    a = put(remote, tmp_path, "a.txt", b"a", None)
    b = put(remote, tmp_path, "b.txt", b"b", None)
    fake.trash(a.id)
    fake.move(b.id, fake.find("syncd/p")["id"], title="renamed.txt")
    remote.begin_batch()
    for path, entry in (("a.txt", a), ("b.txt", b)):
        with pytest.raises(FileChanged):
            put(remote, tmp_path, path, b"new", entry)
    remote.begin_batch()
    assert remote.stat("a.txt", a) is None  # trashed: not there any more
    assert remote.stat("b.txt", b) is None  # moved away: not at its path
    assert fake.get(a.id)["labels"]["trashed"] and fake.get(b.id)["title"] == "renamed.txt"


def test_a_deletion_is_checked_against_the_feed_once_per_batch(
    fake: FakeDrive, tmp_path: Path
) -> None:
    remote = open_gdrive(fake, tmp_path)
    remote.check(create=True)
    files = [put(remote, tmp_path, f"f{i}.txt", b"v1", None) for i in range(4)]
    fake.set_content(files[0].id, b"edited in Colab")
    remote.begin_batch()
    fake.reset_log()
    for entry in files:  # what the engine does for a local deletion: stat, then trash
        remote.trash(remote.stat(entry.path, entry) or entry)
    assert feed_reads(fake) == 1 and gets(fake) == 0
    assert fake.count("POST", "/trash") == 3  # the edited one is kept
    assert not fake.get(files[0].id)["labels"]["trashed"]
    assert all(fake.get(e.id)["labels"]["trashed"] for e in files[1:])


def test_after_a_restart_an_expired_token_falls_back_to_the_per_file_check(
    fake: FakeDrive, tmp_path: Path
) -> None:
    db = StateDB(tmp_path / "state.db")
    remote = open_gdrive(fake, tmp_path, db=db)
    remote.check(create=True)
    a = put(remote, tmp_path, "a.txt", b"v1", None)
    old = db.kv_get("p", TOKEN_KEY)
    remote.close()
    fake.set_content(a.id, b"edited in Colab")
    fake.expire_change_tokens()  # and Drive forgets the token: the edit is not reported

    again = open_gdrive(fake, tmp_path, db=db)
    again.check()
    again.begin_batch()
    fake.reset_log()
    cur = again.stat("a.txt", a)
    assert cur is not None and cur.md5 == md5(b"edited in Colab")  # the files.get told
    assert gets(fake) == 1 and fake.count(status=400) == 1  # the refused feed read
    assert db.kv_get("p", TOKEN_KEY) not in (None, old)  # a new token, saved
    again.begin_batch()
    fake.reset_log()
    assert again.stat("a.txt", a) == cur and fake.count() == 0  # learned since the new token


def test_the_token_survives_a_restart_and_the_listing_gives_each_state(
    fake: FakeDrive, tmp_path: Path
) -> None:
    db = StateDB(tmp_path / "state.db")
    remote = open_gdrive(fake, tmp_path, db=db)
    remote.check(create=True)
    files = {f"f{i}.txt": put(remote, tmp_path, f"f{i}.txt", b"v1", None) for i in range(4)}
    token = db.kv_get("p", TOKEN_KEY)
    remote.close()
    fake.set_content(files["f0.txt"].id, b"edited while syncd was down")

    again = open_gdrive(fake, tmp_path, db=db)
    fake.reset_log()
    again.check()
    list(again.list_all())  # the engine's startup scan: each file's state, after the origin
    assert fake.count(path_contains="startPageToken") == 0  # the saved token is kept
    again.begin_batch()
    fake.reset_log()
    assert again.stat("f0.txt", files["f0.txt"]).md5 == md5(b"edited while syncd was down")
    for path in ("f1.txt", "f2.txt", "f3.txt"):
        assert again.stat(path, files[path]) == files[path]
    assert fake.count() == 0  # all from the listing
    again.trash(files["f3.txt"])  # a deletion reads the feed, from the saved token
    (read,) = [r for r in fake.requests if r.path == "/drive/v2/changes"]
    assert read.query["pageToken"] == token and db.kv_get("p", TOKEN_KEY) != token

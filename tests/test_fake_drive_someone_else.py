"""The fake Drive acting as *someone else* (Colab) for the return path, read by the real client.

What syncd's return path relies on, seen through googleapiclient with a
``drive`` (full) scope token: a file another app creates, updates, trashes or
deletes for good shows up in the changes feed with its new state (new md5 and
headRevisionId on a content change; ``labels.trashed``; ``deleted: true``
without ``file``), and under ``drive.file`` none of it is visible (Google's
"Choose Google Drive API scopes" guide; Drive v2 "Retrieve changes" guide).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import pytest

from tests.fakes.drive_server import COLAB, FakeDrive
from tests.test_fake_drive import connect
from tests.test_fake_drive_changes import all_changes


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeDrive]:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    with FakeDrive() as drive:
        yield drive
    assert drive.internal_errors == []


def test_colab_creates_updates_trashes_restores_and_deletes_as_the_feed_tells(
    fake: FakeDrive,
) -> None:
    full = connect(fake, "full")[0]
    outputs = fake.mkdir("syncd/p/outputs", by=COLAB)
    start = full.changes().getStartPageToken().execute()["startPageToken"]
    made = fake.put_file("m.json", b"v1", parent_id=outputs, by=COLAB)
    (c,) = all_changes(full, start)[0]
    first = c["file"]
    assert (c["fileId"], first["md5Checksum"]) == (made, hashlib.md5(b"v1").hexdigest())
    assert first["parents"][0]["id"] == outputs

    token = all_changes(full, start)[1]
    fake.set_content(made, b"v2")
    (c,) = all_changes(full, token)[0]
    assert c["file"]["md5Checksum"] == hashlib.md5(b"v2").hexdigest()
    assert c["file"]["headRevisionId"] != first["headRevisionId"]  # new content, new revision
    assert full.files().get_media(fileId=made).execute() == b"v2"

    token = all_changes(full, token)[1]
    fake.trash(made)
    (c,) = all_changes(full, token)[0]
    assert c["deleted"] is False and c["file"]["labels"]["trashed"] is True

    token = all_changes(full, token)[1]
    fake.untrash(made)  # restored from the trash: one change, trashed false, listed again
    (c,) = all_changes(full, token)[0]
    assert c["deleted"] is False and c["file"]["labels"]["trashed"] is False
    assert fake.find("syncd/p/outputs/m.json")["id"] == made

    token = all_changes(full, token)[1]
    fake.delete(made)
    (c,) = all_changes(full, token)[0]
    assert (c["fileId"], c["deleted"], "file" in c) == (made, True, False)
    assert fake.find("syncd/p/outputs/m.json") is None


def test_drive_file_scope_sees_none_of_colab_s_files(fake: FakeDrive) -> None:
    app = connect(fake, "file")[0]
    start = app.changes().getStartPageToken().execute()["startPageToken"]
    outputs = fake.mkdir("syncd/p/outputs", by=COLAB)
    made = fake.put_file("m.json", b"v1", parent_id=outputs, by=COLAB)
    fake.set_content(made, b"v2")
    assert all_changes(app, start)[0] == []

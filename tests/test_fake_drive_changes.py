"""The fake Drive's changes feed and downloads by id, as the real client reads them.

Later work (the Colab return path, one request per edit) relies on these:
changes made by the app and by someone else, filtered by scope like Drive,
coalesced per file, paged with tokens.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import pytest
from googleapiclient.discovery import Resource
from googleapiclient.errors import HttpError
from googleapiclient.http import MediaIoBaseDownload, MediaIoBaseUpload

from tests.fakes.drive_server import COLAB, FakeDrive
from tests.test_fake_drive import connect, mkfolder


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeDrive]:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    with FakeDrive() as drive:
        yield drive
    assert drive.internal_errors == []


@pytest.fixture
def app(fake: FakeDrive) -> Resource:
    return connect(fake, "file")[0]


@pytest.fixture
def full(fake: FakeDrive) -> Resource:
    return connect(fake, "full")[0]


def upload(app: Resource, title: str, data: bytes, parent: str) -> str:
    media = MediaIoBaseUpload(io.BytesIO(data), "application/octet-stream", resumable=False)
    body = {"title": title, "parents": [{"id": parent}]}
    return app.files().insert(body=body, media_body=media, fields="id").execute()["id"]


def all_changes(service: Resource, token: str, **args: Any) -> tuple[list[dict], str]:
    """Every change since ``token`` (following pages) and the next start token."""
    out: list[dict] = []
    while True:
        page = service.changes().list(pageToken=token, **args).execute()
        out.extend(page["items"])
        if "nextPageToken" not in page:
            return out, page["newStartPageToken"]
        token = page["nextPageToken"]


def test_changes_by_the_app_and_by_someone_else(fake: FakeDrive, app: Resource) -> None:
    folder = mkfolder(app, "p")
    start = app.changes().getStartPageToken().execute()["startPageToken"]
    a = upload(app, "a.txt", b"a1", folder)
    b = upload(app, "b.txt", b"b1", folder)
    app.files().trash(fileId=b).execute()
    fake.set_content(a, b"a2, edited in Colab")  # someone else edits syncd's file
    fake.put_file("colab.txt", b"new", parent_id=folder, by=COLAB)  # invisible under drive.file

    changes, after = all_changes(app, start)
    by_file = {c["fileId"]: c for c in changes}
    assert list(by_file) == [b, a]  # once each, in the order of their latest change
    assert by_file[a]["file"]["md5Checksum"] == fake.get(a)["md5Checksum"]
    assert by_file[b]["file"]["labels"]["trashed"] is True and by_file[b]["deleted"] is False
    assert all(c["kind"] == "drive#change" and c["changeType"] == "file" for c in changes)
    assert all_changes(app, after)[0] == []  # nothing new since


def test_full_scope_sees_other_apps_files_and_deletions(fake: FakeDrive, full: Resource) -> None:
    folder = fake.mkdir("outputs")
    start = full.changes().getStartPageToken().execute()["startPageToken"]
    made = fake.put_file("ckpt.pt", b"weights", parent_id=folder, by=COLAB)
    full.files().delete(fileId=made).execute()
    changes, _ = all_changes(full, start)
    assert [(c["fileId"], c["deleted"], "file" in c) for c in changes] == [(made, True, False)]
    assert all_changes(full, start, includeDeleted=False)[0] == []


def test_changes_pages_tokens_and_fields(fake: FakeDrive, app: Resource) -> None:
    folder = mkfolder(app, "p")
    start = app.changes().getStartPageToken().execute()["startPageToken"]
    ids = [upload(app, f"f{i}", b"%d" % i, folder) for i in range(5)]
    page = app.changes().list(pageToken=start, maxResults=2).execute()
    assert [c["fileId"] for c in page["items"]] == ids[:2]
    assert "newStartPageToken" not in page and int(page["largestChangeId"]) >= 6
    fields = "nextPageToken,newStartPageToken,items(fileId,file/title)"
    page = app.changes().list(pageToken=page["nextPageToken"], maxResults=2, fields=fields)
    got = page.execute()
    assert got["items"] == [
        {"fileId": i, "file": {"title": t}} for i, t in zip(ids[2:4], ["f2", "f3"], strict=True)
    ]
    with pytest.raises(HttpError) as err:
        app.changes().list(pageToken="not-a-token").execute()
    assert err.value.resp.status == 400
    assert app.about().get(fields="largestChangeId").execute()["largestChangeId"] == str(
        int(start) + 4
    )


def test_download_by_id_and_ranges(fake: FakeDrive, app: Resource) -> None:
    folder = mkfolder(app, "p")
    data = bytes(range(256)) * 40
    file_id = upload(app, "blob.bin", data, folder)
    assert app.files().get_media(fileId=file_id).execute() == data
    out = io.BytesIO()
    downloader = MediaIoBaseDownload(out, app.files().get_media(fileId=file_id), chunksize=3000)
    done = False
    while not done:
        _, done = downloader.next_chunk()
    assert out.getvalue() == data
    hidden = fake.put_file("private.bin", b"secret")
    with pytest.raises(HttpError) as err:
        app.files().get_media(fileId=hidden).execute()
    assert err.value.resp.status == 404


def test_tokens_never_issued_or_expired_are_refused(fake: FakeDrive, app: Resource) -> None:
    folder = mkfolder(app, "p")
    start = app.changes().getStartPageToken().execute()["startPageToken"]
    upload(app, "a.txt", b"a", folder)
    future = str(int(start) + 1000)  # a token this server never issued (another account's)
    for token in (future, "0"):
        with pytest.raises(HttpError) as err:
            app.changes().list(pageToken=token).execute()
        assert err.value.resp.status == 400 and b"pageToken" in err.value.content
    assert len(all_changes(app, start)[0]) == 1  # an issued token still works...
    fake.expire_change_tokens()
    with pytest.raises(HttpError) as err:  # ...until Drive stops honouring it
        app.changes().list(pageToken=start).execute()
    assert err.value.resp.status == 400
    fresh = app.changes().getStartPageToken().execute()["startPageToken"]
    b = upload(app, "b.txt", b"b", folder)
    assert [c["fileId"] for c in all_changes(app, fresh)[0]] == [b]


def test_if_match_guards_every_write_over_a_file(fake: FakeDrive, app: Resource) -> None:
    folder = mkfolder(app, "p")
    file_id = upload(app, "a.txt", b"v1", folder)
    seen = app.files().get(fileId=file_id, fields="etag").execute()["etag"]

    def update(data: bytes, etag: str, resumable: bool = False) -> dict:
        media = MediaIoBaseUpload(io.BytesIO(data), "text/plain", resumable=resumable)
        req = app.files().update(fileId=file_id, body={}, media_body=media, fields="etag")
        req.headers["If-Match"] = etag
        return req.execute()

    seen = update(b"v2", seen)["etag"]  # the etag it was read with: accepted, a new etag
    fake.set_content(file_id, b"edited in Colab")  # someone else: the etag changes
    for resumable in (False, True):
        with pytest.raises(HttpError) as err:
            update(b"v3", seen, resumable)
        assert err.value.resp.status == 412
        detail = json.loads(err.value.content)["error"]["errors"][0]
        assert detail["reason"] == "conditionNotMet" and detail["location"] == "If-Match"
    assert fake.content(file_id) == b"edited in Colab"  # never overwritten
    for write in (
        app.files().patch(fileId=file_id, body={"title": "b.txt"}),
        app.files().trash(fileId=file_id),
    ):
        write.headers["If-Match"] = seen
        with pytest.raises(HttpError) as err:
            write.execute()
        assert err.value.resp.status == 412
    current = fake.get(file_id)["etag"]
    assert update(b"v3", current)["etag"] != current  # with the current etag it goes
    assert update(b"v4", "*")  # "*" matches any version


def test_if_match_holds_until_a_resumable_upload_commits(fake: FakeDrive, app: Resource) -> None:
    folder = mkfolder(app, "p")
    file_id = upload(app, "big.bin", b"v1", folder)
    etag = fake.get(file_id)["etag"]
    data = b"x" * (512 * 1024)
    media = MediaIoBaseUpload(io.BytesIO(data), "application/octet-stream", 256 * 1024, True)
    req = app.files().update(fileId=file_id, body={}, media_body=media)
    req.headers["If-Match"] = etag
    status, done = req.next_chunk()  # the session opens with the right etag; one chunk
    assert done is None and status.resumable_progress == 256 * 1024
    fake.set_content(file_id, b"edited in Colab meanwhile")
    with pytest.raises(HttpError) as err:
        req.next_chunk()  # the last chunk would commit over the other edit
    assert err.value.resp.status == 412 and fake.content(file_id) == b"edited in Colab meanwhile"

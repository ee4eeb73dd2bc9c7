"""The fake Drive's access rules, driven by the real googleapiclient: root, scopes, fields.

Each test pins one rule of the real service (the source is cited where the
fake enforces it, in tests/fakes/drive_*.py).  A fake more lenient than
Drive would let syncd pass tests that fail on the first real run.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator

import pytest
from googleapiclient.discovery import Resource
from googleapiclient.errors import HttpError
from googleapiclient.http import MediaIoBaseUpload

from syncd.remotes.gdrive.drive_calls import ITEM_FIELDS, LIST_FIELDS
from tests.fakes.drive_limits import FrozenClock
from tests.fakes.drive_server import APP, COLAB, DOC_MIME, FOLDER_MIME, SHORTCUT_MIME, FakeDrive
from tests.test_fake_drive import connect, error_reason, mkfolder, with_token


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeDrive]:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    with FakeDrive() as drive:
        yield drive
    assert drive.internal_errors == []


@pytest.fixture
def app(fake: FakeDrive) -> Resource:
    """syncd's view: its own OAuth client with the default drive.file scope."""
    return connect(fake, "file")[0]


@pytest.fixture
def full(fake: FakeDrive) -> Resource:
    return connect(fake, "full")[0]


def status_of(call: object) -> int:
    try:
        call.execute()  # type: ignore[attr-defined]
    except HttpError as err:
        return err.resp.status
    return 200


# --- My Drive's root -------------------------------------------------------------------


def test_root_is_an_alias_and_get_root_is_404_under_drive_file(
    fake: FakeDrive, app: Resource, full: Resource
) -> None:
    about = app.about().get(fields="rootFolderId").execute()
    assert about == {"rootFolderId": fake.root_id} and fake.root_id.startswith("0A")
    with pytest.raises(HttpError) as err:
        app.files().get(fileId="root").execute()
    assert err.value.resp.status == 404 and error_reason(err.value) == "notFound"
    assert status_of(app.files().get(fileId=fake.root_id)) == 404
    # Full access may read the root itself; its id is the real one, never "root".
    assert full.files().get(fileId="root", fields="id").execute() == {"id": fake.root_id}

    # "root" still works as a parent, in inserts and in queries.
    folder = mkfolder(app, "syncd", parent="root")
    got = app.files().get(fileId=folder, fields="parents(id,isRoot)").execute()
    assert got == {"parents": [{"id": fake.root_id, "isRoot": True}]}
    q = f"'root' in parents and mimeType = '{FOLDER_MIME}' and trashed = false"
    assert [f["id"] for f in app.files().list(q=q).execute()["items"]] == [folder]
    moved = mkfolder(app, "elsewhere", parent=folder)
    app.files().patch(fileId=moved, body={}, addParents="root", removeParents=folder).execute()
    assert fake.get(moved)["parents"][0]["id"] == fake.root_id


# --- drive.file sees only what the app made ----------------------------------------------


def test_items_made_by_hand_or_by_colab_are_invisible_under_drive_file(
    fake: FakeDrive, app: Resource, full: Resource
) -> None:
    hand_folder = fake.mkdir("syncd")  # made in the web UI
    doc = fake.put_doc("Notes")
    ours = mkfolder(app, "syncd")  # syncd's own folder of the same name
    colab_file = fake.put_file("out.csv", b"1,2\n", parent_id=ours, by=COLAB)

    for hidden in (hand_folder, doc, colab_file):
        assert status_of(app.files().get(fileId=hidden)) == 404
        assert status_of(app.files().patch(fileId=hidden, body={"title": "x"})) == 404
        assert status_of(app.files().trash(fileId=hidden)) == 404
        assert status_of(app.files().delete(fileId=hidden)) == 404
        assert status_of(full.files().get(fileId=hidden)) == 200
    # Not usable as a parent either (the app cannot see the folder).
    body = {"title": "x", "parents": [{"id": hand_folder}]}
    assert status_of(app.files().insert(body=body)) == 404

    q = "title = 'syncd' and trashed = false"
    assert [f["id"] for f in app.files().list(q=q).execute()["items"]] == [ours]
    assert {f["id"] for f in full.files().list(q=q).execute()["items"]} == {ours, hand_folder}
    inside = f"'{ours}' in parents"
    assert app.files().list(q=inside).execute()["items"] == []
    assert [f["id"] for f in full.files().list(q=inside).execute()["items"]] == [colab_file]
    assert fake.get(hand_folder)["labels"]["trashed"] is False  # nothing touched them


def test_an_item_opened_with_the_app_becomes_visible(fake: FakeDrive, app: Resource) -> None:
    folder = fake.mkdir("Shared with syncd")
    assert status_of(app.files().get(fileId=folder)) == 404
    fake.open_with(folder, APP)  # the user picked it with syncd (Picker, "Open with")
    assert app.files().get(fileId=folder, fields="title").execute() == {
        "title": "Shared with syncd"
    }


def test_edits_by_someone_else_keep_the_app_s_file_visible(fake: FakeDrive, app: Resource) -> None:
    folder = mkfolder(app, "p")
    media = MediaIoBaseUpload(io.BytesIO(b"v1"), "text/plain", resumable=False)
    body = {"title": "a.txt", "parents": [{"id": folder}]}
    created = app.files().insert(body=body, media_body=media).execute()
    fake.set_content(created["id"], b"edited in Colab")
    got = app.files().get(fileId=created["id"], fields="md5Checksum").execute()
    assert got["md5Checksum"] == fake.get(created["id"])["md5Checksum"]


def test_a_token_without_a_drive_scope_is_refused(fake: FakeDrive) -> None:
    service = connect(fake, "email")[0]
    with pytest.raises(HttpError) as err:
        service.about().get().execute()
    assert err.value.resp.status == 403 and error_reason(err.value) == "insufficientPermissions"


# --- partial responses ----------------------------------------------------------------


def test_fields_returns_exactly_what_was_asked(fake: FakeDrive, app: Resource) -> None:
    folder = mkfolder(app, "p")
    for i in range(3):
        app.files().insert(body={"title": f"f{i}", "parents": [{"id": folder}]}).execute()
    fake.page_size = 2
    q = f"'{folder}' in parents"
    page = app.files().list(q=q, fields="items(id,title)").execute()
    assert set(page) == {"items"}  # no nextPageToken although there is a next page
    assert [set(i) for i in page["items"]] == [{"id", "title"}] * 2
    page = app.files().list(q=q, fields="nextPageToken,items/id").execute()
    assert set(page) == {"items", "nextPageToken"} and set(page["items"][0]) == {"id"}
    last = app.files().list(q=q, fields="nextPageToken,items/id", pageToken=page["nextPageToken"])
    assert set(last.execute()) == {"items"}  # the last page has none to give

    got = app.files().get(fileId=folder, fields="id,labels/trashed,parents/id").execute()
    assert got == {"id": folder, "labels": {"trashed": False}, "parents": [{"id": fake.root_id}]}
    assert set(app.files().get(fileId=folder, fields="*").execute()) >= {"id", "title", "labels"}
    assert set(app.files().get(fileId=folder).execute()) > {"id", "title", "kind", "etag"}

    with pytest.raises(HttpError) as err:
        app.files().get(fileId=folder, fields="id,colour").execute()
    assert err.value.resp.status == 400 and error_reason(err.value) == "invalidParameter"
    assert json.loads(err.value.content)["error"]["message"] == "Invalid field selection colour"


def test_the_fields_syncd_asks_for_are_valid_and_nothing_more_comes_back(
    fake: FakeDrive, app: Resource
) -> None:
    folder = mkfolder(app, "p")
    got = app.files().get(fileId=folder, fields=ITEM_FIELDS).execute()
    assert "driveId" not in got and "md5Checksum" not in got  # My Drive folder: neither
    assert "kind" not in got and "selfLink" not in got  # not asked for
    assert got["etag"] == fake.get(folder)["etag"]  # asked for: If-Match on writes
    page = app.files().list(q="trashed = false", fields=LIST_FIELDS).execute()
    assert [i["id"] for i in page["items"]] == [folder] and "kind" not in page


# --- files without content of their own -------------------------------------------------


def test_google_docs_and_shortcuts_have_no_md5_size_or_revision(
    fake: FakeDrive, full: Resource
) -> None:
    target = fake.put_file("data.bin", b"payload")
    doc = fake.put_doc("Notes")
    link = fake.put_shortcut("data link", target)
    for item_id, mime in ((doc, DOC_MIME), (link, SHORTCUT_MIME)):
        got = full.files().get(fileId=item_id).execute()
        assert got["mimeType"] == mime
        assert not {"md5Checksum", "fileSize", "headRevisionId", "downloadUrl"} & set(got)
        with pytest.raises(HttpError) as err:
            full.files().get_media(fileId=item_id).execute()
        assert err.value.resp.status == 403 and error_reason(err.value) == "fileNotDownloadable"
    assert full.files().get(fileId=link).execute()["shortcutDetails"]["targetId"] == target
    assert "exportLinks" in full.files().get(fileId=doc).execute()
    assert full.files().get(fileId=target).execute()["md5Checksum"]


# --- generated ids ----------------------------------------------------------------------


def test_generated_ids_expire(fake: FakeDrive, app: Resource) -> None:
    # A frozen clock: with the wall clock and a 0.3 s life, a loaded machine could let the
    # "fresh" id expire before its insert.
    clock = FrozenClock()
    fake.set_clock(clock)
    fake.generated_id_ttl = 0.3
    fresh, stale = app.files().generateIds(maxResults=2).execute()["ids"]
    clock.advance(0.25)  # within its life
    assert app.files().insert(body={"id": fresh, "title": "a"}).execute()["id"] == fresh
    clock.advance(0.1)  # past it
    with pytest.raises(HttpError) as err:
        app.files().insert(body={"id": stale, "title": "b"}).execute()
    assert err.value.resp.status == 400 and "not usable" in str(err.value)


def test_ids_generated_for_another_account_are_not_usable(fake: FakeDrive, app: Resource) -> None:
    other = with_token(fake, fake.issue_token(user="someone.else@example.com"))
    foreign = other.files().generateIds(maxResults=1).execute()["ids"][0]
    assert status_of(app.files().insert(body={"id": foreign, "title": "x"})) == 400


# --- service accounts and Shared Drives -------------------------------------------------


def test_a_service_account_has_no_storage_outside_a_shared_drive(fake: FakeDrive) -> None:
    sa = "robot@fake-project.iam.gserviceaccount.com"
    fake.allow_service_account(sa)
    team = fake.add_shared_drive("Team", members=[sa])
    service = with_token(fake, fake.issue_token("full", user=sa, app=sa))

    media = MediaIoBaseUpload(io.BytesIO(b"x"), "text/plain", resumable=False)
    with pytest.raises(HttpError) as err:
        service.files().insert(body={"title": "x"}, media_body=media).execute()
    assert err.value.resp.status == 403 and error_reason(err.value) == "storageQuotaExceeded"

    body = {"title": "x", "parents": [{"id": team}]}
    media = MediaIoBaseUpload(io.BytesIO(b"x"), "text/plain", resumable=False)
    made = service.files().insert(body=body, media_body=media, supportsAllDrives=True).execute()
    assert made["driveId"] == team
    # Without supportsAllDrives a Shared Drive item is not found.
    assert status_of(service.files().get(fileId=made["id"])) == 404
    assert status_of(service.files().get(fileId=made["id"], supportsAllDrives=True)) == 200
    listed = service.files().list(
        q=f"'{team}' in parents",
        corpora="drive",
        driveId=team,
        includeItemsFromAllDrives=True,
        supportsAllDrives=True,
    )
    assert [i["id"] for i in listed.execute()["items"]] == [made["id"]]
    assert service.files().list(q=f"'{team}' in parents").execute()["items"] == []

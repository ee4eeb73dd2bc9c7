"""The fake Drive server, driven by the real googleapiclient, oauth2client and pydrive2.

These tests pin the wire behaviour other tests rely on: if the real client
cannot talk to the fake the way it talks to Google, every syncd test built on
the fake proves nothing.  The rules that make the fake as strict as Drive
(scopes, root, fields, throttling, OAuth, changes) have their own files,
tests/test_fake_drive_*.py.
"""

from __future__ import annotations

import hashlib
import http.client
import io
import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httplib2
import pytest
from googleapiclient.discovery import Resource, build_from_document
from googleapiclient.errors import HttpError
from googleapiclient.http import (
    HttpRequest,
    MediaFileUpload,
    MediaIoBaseDownload,
    MediaIoBaseUpload,
    build_http,
)
from oauth2client.client import HttpAccessTokenRefreshError, OAuth2Credentials
from pydrive2.auth import GoogleAuth
from pydrive2.drive import GoogleDrive

from tests.fakes.drive_server import APP, FOLDER_MIME, FakeDrive

MiB = 1024 * 1024


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeDrive]:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    with FakeDrive() as drive:
        yield drive
    assert drive.internal_errors == []


def connect(fake: FakeDrive, scope: str = "file") -> tuple[Resource, OAuth2Credentials]:
    """The real googleapiclient on the fake, with a token of the app (drive.file by default)."""
    if scope != "file":
        fake.allow_refresh_token(f"1//{scope}-grant", scope)
    creds = OAuth2Credentials(
        access_token=fake.issue_token(scope),
        client_id="fake-client-id",
        client_secret="fake-client-secret",
        refresh_token=fake.refresh_token if scope == "file" else f"1//{scope}-grant",
        token_expiry=None,
        token_uri=fake.url + "token",
        user_agent="syncd-tests",
    )
    return build_from_document(fake.discovery_doc(), http=creds.authorize(build_http())), creds


def with_token(fake: FakeDrive, token: str) -> Resource:
    """The real googleapiclient with a bare access token (no refresh): a given identity."""
    creds = OAuth2Credentials(token, "id", "secret", None, None, fake.url + "token", None)
    return build_from_document(fake.discovery_doc(), http=creds.authorize(build_http()))


@pytest.fixture
def service(fake: FakeDrive) -> Resource:
    return connect(fake)[0]


def no_backoff(request: HttpRequest) -> HttpRequest:
    # googleapiclient sleeps rand() * 2**n between retries; its own tests stub these.
    request._rand = lambda: 0.0
    request._sleep = lambda _seconds: None
    return request


def mkfolder(service: Resource, title: str, parent: str = "root") -> str:
    body = {"title": title, "mimeType": FOLDER_MIME, "parents": [{"id": parent}]}
    return service.files().insert(body=body).execute()["id"]


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def error_reason(err: HttpError) -> str:
    return json.loads(err.content)["error"]["errors"][0]["reason"]


def upload_resumable(request: HttpRequest) -> dict[str, Any]:
    response = None
    while response is None:
        _, response = request.next_chunk()
    return response


def list_pages(service: Resource, q: str, max_results: int) -> list[list[dict]]:
    pages, token = [], None
    while True:
        page = service.files().list(q=q, maxResults=max_results, pageToken=token).execute()
        pages.append(page["items"])
        token = page.get("nextPageToken")
        if token is None:
            return pages


def test_folder_insert_and_paged_list(fake: FakeDrive, service: Resource) -> None:
    folder = mkfolder(service, "project")
    info = fake.get(folder)
    assert info["mimeType"] == FOLDER_MIME and "md5Checksum" not in info
    assert [(p["id"], p["isRoot"]) for p in info["parents"]] == [(fake.root_id, True)]
    for i in range(150):
        fake.put_file(f"f{i:04}.txt", b"x", parent_id=folder, by=APP)
    fake.reset_log()

    # The server's page size caps what maxResults asks for (the page_size knob stands for
    # "partial result pages are possible", v2 discovery doc): 150 files, not 2,500, test paging.
    fake.page_size = 60
    q = f"'{folder}' in parents and trashed = false"
    pages = list_pages(service, q, 1000)
    assert [len(p) for p in pages] == [60, 60, 30]
    assert len({item["id"] for p in pages for item in p}) == 150
    assert [len(p) for p in list_pages(service, q, 50)] == [50, 50, 50]
    assert fake.count("GET", "/drive/v2/files") == 6
    assert service.about().get().execute()["rootFolderId"] == fake.root_id
    roots = service.files().list(q=f"'root' in parents and mimeType = '{FOLDER_MIME}'").execute()
    assert [f["id"] for f in roots["items"]] == [folder]


def test_multipart_upload_keeps_binary_bytes(
    fake: FakeDrive, service: Resource, tmp_path: Path
) -> None:
    # Line breaks and a fake boundary in the payload must survive the LF-only framing.
    data = b"\r\n\n--===============123==\r\n\x00\xff" + os.urandom(5000) + b"\n"
    path = tmp_path / "data.bin"
    path.write_bytes(data)
    media = MediaFileUpload(str(path), mimetype="application/octet-stream", resumable=False)
    created = service.files().insert(body={"title": "data.bin"}, media_body=media).execute()

    assert created["md5Checksum"] == md5(data) and created["fileSize"] == str(len(data))
    assert fake.content(created["id"]) == data
    assert [r.upload_type for r in fake.requests if "/upload/" in r.path] == ["multipart"]
    assert fake.tree() == {"data.bin": md5(data)}


def test_resumable_upload_in_8_mib_chunks(
    fake: FakeDrive, service: Resource, tmp_path: Path
) -> None:
    data = os.urandom(20 * MiB)
    path = tmp_path / "big.bin"
    path.write_bytes(data)
    media = MediaFileUpload(
        str(path), "application/octet-stream", chunksize=8 * MiB, resumable=True
    )
    created = upload_resumable(service.files().insert(body={"title": "big.bin"}, media_body=media))

    assert created["md5Checksum"] == md5(data)
    chunks = [r.content_range for r in fake.requests if r.method == "PUT"]
    total = len(data)
    assert chunks == [
        f"bytes 0-{8 * MiB - 1}/{total}",
        f"bytes {8 * MiB}-{16 * MiB - 1}/{total}",
        f"bytes {16 * MiB}-{total - 1}/{total}",
    ]
    assert [r.status for r in fake.requests if r.method == "PUT"] == [308, 308, 200]


def test_resumable_upload_resumes_after_a_dropped_chunk(
    fake: FakeDrive, service: Resource, tmp_path: Path
) -> None:
    data = os.urandom(20 * MiB)
    path = tmp_path / "big.bin"
    path.write_bytes(data)
    media = MediaFileUpload(
        str(path), "application/octet-stream", chunksize=8 * MiB, resumable=True
    )
    request = service.files().insert(body={"title": "big.bin"}, media_body=media)
    _, response = request.next_chunk()  # first chunk goes through
    fake.drop_upload_after(bytes_=3 * MiB + 17)

    failures = 0
    while response is None:
        try:
            _, response = request.next_chunk()
        except (ConnectionError, OSError, httplib2.HttpLib2Error):
            failures += 1
            assert failures == 1

    assert failures == 1 and response["md5Checksum"] == md5(data)
    ranges = [r.content_range for r in fake.requests if r.method == "PUT"]
    resumed_at = 8 * MiB + 3 * MiB + 17
    assert ranges[2] == f"bytes */{len(data)}"
    assert ranges[3].startswith(f"bytes {resumed_at}-")


def test_chunk_server_error_is_resumed_with_a_probe(
    fake: FakeDrive, service: Resource, tmp_path: Path
) -> None:
    data = os.urandom(600 * 1024)
    path = tmp_path / "mid.bin"
    path.write_bytes(data)
    media = MediaFileUpload(
        str(path), "application/octet-stream", chunksize=256 * 1024, resumable=True
    )
    request = service.files().insert(body={"title": "mid.bin"}, media_body=media)
    fake.inject(status=503, method="PUT", path_contains="/upload/", after=1)

    response, failures = None, 0
    while response is None:
        try:
            _, response = request.next_chunk()
        except HttpError as err:
            assert err.resp.status == 503
            failures += 1
    assert failures == 1 and response["md5Checksum"] == md5(data)
    ranges = [r.content_range for r in fake.requests if r.method == "PUT"]
    assert ranges[2] == f"bytes */{len(data)}" and ranges[3] == ranges[1]


def test_googleapiclient_chunk_retry_resends_an_empty_body(fake: FakeDrive, tmp_path: Path) -> None:
    # A characterisation of googleapiclient 2.202, not of the fake: with
    # next_chunk(num_retries>0) a 5xx on a chunk re-sends the already drained
    # stream slice, i.e. Content-Length N and no bytes, and the call hangs
    # until the socket timeout. syncd must resume by calling next_chunk again.
    http = httplib2.Http(timeout=0.5)
    http.redirect_codes = http.redirect_codes - {308}
    creds = connect(fake)[1]
    service = build_from_document(fake.discovery_doc(), http=creds.authorize(http))
    path = tmp_path / "mid.bin"
    path.write_bytes(os.urandom(600 * 1024))
    media = MediaFileUpload(
        str(path), "application/octet-stream", chunksize=256 * 1024, resumable=True
    )
    request = no_backoff(service.files().insert(body={"title": "mid.bin"}, media_body=media))
    fake.inject(status=503, method="PUT", path_contains="/upload/", after=1)
    with pytest.raises(TimeoutError):
        while request.next_chunk(num_retries=3)[1] is None:
            pass
    retried = [r for r in fake.requests if r.method == "PUT"][-1]
    assert retried.content_range == f"bytes {256 * 1024}-{512 * 1024 - 1}/{600 * 1024}"
    assert retried.body_size == 0 and retried.status is None


def test_lost_response_duplicates_a_blind_create_but_not_one_with_an_id(
    fake: FakeDrive, service: Resource
) -> None:
    fake.inject(lose_response=True, method="POST", path_contains="/drive/v2/files")
    no_backoff(service.files().insert(body={"title": "blind.txt"})).execute(num_retries=2)
    assert [t for _, t, _ in fake.duplicates()] == ["blind.txt"]

    file_id = service.files().generateIds(maxResults=1).execute()["ids"][0]
    fake.inject(lose_response=True, method="POST", path_contains="/drive/v2/files")
    with pytest.raises(HttpError) as err:  # the retry meets the file the lost attempt made
        no_backoff(service.files().insert(body={"id": file_id, "title": "safe.txt"})).execute(
            num_retries=2
        )
    assert err.value.resp.status == 409
    assert fake.get(file_id)["title"] == "safe.txt" and len(fake.duplicates()) == 1


def test_corrupted_uploads_answer_the_md5_of_what_was_stored(
    fake: FakeDrive, service: Resource
) -> None:
    fake.corrupt_next_uploads(1)
    media = MediaIoBaseUpload(io.BytesIO(b"payload"), "text/plain", resumable=False)
    bad = service.files().insert(body={"title": "a"}, media_body=media).execute()
    assert bad["md5Checksum"] != md5(b"payload") == md5(b"payload")
    assert bad["md5Checksum"] == md5(fake.content(bad["id"]))
    media = MediaIoBaseUpload(io.BytesIO(b"payload"), "text/plain", resumable=False)
    good = service.files().insert(body={"title": "b"}, media_body=media).execute()
    assert good["md5Checksum"] == md5(b"payload")  # only the next one was corrupted


def test_update_content_multipart_and_resumable(fake: FakeDrive, service: Resource) -> None:
    first = fake.put_file("notes.txt", b"v1", mime_type="text/plain", by=APP)
    before = service.files().get(fileId=first).execute()

    media = MediaIoBaseUpload(io.BytesIO(b"v2"), "text/plain", resumable=False)
    second = service.files().update(fileId=first, media_body=media).execute()
    assert second["md5Checksum"] == md5(b"v2")
    assert int(second["version"]) > int(before["version"])
    assert second["headRevisionId"] != before["headRevisionId"]

    media = MediaIoBaseUpload(
        io.BytesIO(b"v3" * 1000), "text/plain", chunksize=256 * 1024, resumable=True
    )
    third = upload_resumable(service.files().update(fileId=first, media_body=media))
    assert third["md5Checksum"] == md5(b"v3" * 1000) and third["id"] == first
    assert any(r.path == f"/upload/drive/v2/files/{first}" for r in fake.requests)

    out = io.BytesIO()
    downloader = MediaIoBaseDownload(out, service.files().get_media(fileId=first), chunksize=1500)
    done = False
    while not done:
        _, done = downloader.next_chunk()
    assert out.getvalue() == b"v3" * 1000


def test_patch_title_and_move(fake: FakeDrive, service: Resource) -> None:
    src, dst = fake.mkdir("src", by=APP), fake.mkdir("dst", by=APP)
    file_id = fake.put_file("src/a.txt", b"a", by=APP)
    version = int(fake.get(file_id)["version"])

    moved = (
        service.files()
        .patch(fileId=file_id, body={"title": "b.txt"}, addParents=dst, removeParents=src)
        .execute()
    )
    assert moved["title"] == "b.txt" and [p["id"] for p in moved["parents"]] == [dst]
    assert int(moved["version"]) > version
    assert fake.tree() == {"dst/": None, "dst/b.txt": md5(b"a"), "src/": None}

    renamed = service.files().update(fileId=file_id, body={"title": "c.txt"}).execute()
    assert renamed["title"] == "c.txt"
    with pytest.raises(HttpError) as err:  # My Drive items have exactly one parent since 2020
        service.files().patch(fileId=file_id, body={}, addParents=src).execute()
    assert err.value.resp.status == 403 and error_reason(err.value) == "cannotAddParent"


def test_trash_untrash_and_delete(fake: FakeDrive, service: Resource) -> None:
    folder = fake.mkdir("dir", by=APP)
    child = fake.put_file("dir/x.txt", b"x", by=APP)

    trashed = service.files().trash(fileId=folder).execute()
    assert trashed["labels"]["trashed"] and trashed["explicitlyTrashed"]
    child_info = service.files().get(fileId=child).execute()
    assert child_info["labels"]["trashed"] and not child_info["explicitlyTrashed"]
    live = service.files().list(q="trashed = false").execute()["items"]
    assert live == [] and fake.tree() == {}
    assert {f["id"] for f in fake.trashed()} == {folder, child}

    service.files().untrash(fileId=folder).execute()
    assert fake.tree() == {"dir/": None, "dir/x.txt": md5(b"x")}

    service.files().delete(fileId=folder).execute()
    with pytest.raises(HttpError) as err:
        service.files().get(fileId=child).execute()
    assert err.value.resp.status == 404 and error_reason(err.value) == "notFound"


def test_generated_id_makes_insert_idempotent(fake: FakeDrive, service: Resource) -> None:
    ids = service.files().generateIds(maxResults=3).execute()["ids"]
    assert len(set(ids)) == 3
    media = MediaIoBaseUpload(io.BytesIO(b"hello"), "text/plain", resumable=False)
    body = {"id": ids[0], "title": "hello.txt"}
    assert service.files().insert(body=body, media_body=media).execute()["id"] == ids[0]

    with pytest.raises(HttpError) as err:
        media = MediaIoBaseUpload(io.BytesIO(b"hello"), "text/plain", resumable=False)
        service.files().insert(body=body, media_body=media).execute()
    assert err.value.resp.status == 409 and error_reason(err.value) == "duplicate"
    assert len(fake.children(fake.root_id)) == 1

    with pytest.raises(HttpError) as err:
        service.files().insert(body={"id": "1" + "x" * 32, "title": "y"}).execute()
    assert err.value.resp.status == 400


@pytest.mark.parametrize(
    "fault",
    [
        {"status": 503},
        {"status": 429},
        {"status": 403, "reason": "userRateLimitExceeded"},
        {"drop": True},
    ],
)
def test_transient_failures_are_retried(
    fake: FakeDrive, service: Resource, fault: dict[str, Any]
) -> None:
    fake.inject(**fault, count=2, method="GET", path_contains="/about")
    about = no_backoff(service.about().get()).execute(num_retries=3)
    assert about["rootFolderId"] == fake.root_id
    assert fake.count("GET", "/about") == 3
    assert fake.count("GET", "/about", status=200) == 1


def test_errors_have_googles_shape(fake: FakeDrive, service: Resource) -> None:
    fake.inject(status=503, after=1, path_contains="/about")
    service.about().get().execute()
    with pytest.raises(HttpError) as err:
        service.about().get().execute()
    body = json.loads(err.value.content)["error"]
    assert body["code"] == 503 and body["errors"][0]["reason"] == "backendError"
    with pytest.raises(HttpError) as err:
        service.files().list(q="title contains 'x' or trashed = true").execute()
    assert err.value.resp.status == 400 and error_reason(err.value) == "invalid"


def test_random_faults_and_delays(fake: FakeDrive, service: Resource) -> None:
    fake.inject_random(rate=0.3, statuses=[500, 503], seed=7)
    for _ in range(20):
        no_backoff(service.about().get()).execute(num_retries=8)
    assert fake.count(status=200) == 20 and fake.count() > 20
    fake.clear_faults()

    fake.inject(delay=0.3)
    started = time.monotonic()
    service.about().get().execute()
    assert time.monotonic() - started >= 0.3


def test_expired_token_refreshes_and_revoked_grant_fails(fake: FakeDrive) -> None:
    service, creds = connect(fake)
    fake.expire_access_tokens()
    service.about().get().execute()  # oauth2client refreshes on the 401 and retries
    assert fake.count("POST", "/token", status=200) == 1

    fake.revoke_all()
    with pytest.raises(HttpAccessTokenRefreshError) as err:
        service.about().get().execute()
    assert "invalid_grant" in str(err.value)
    assert fake.count(status=401) == 2

    fake.allow_refresh_token("1//new-grant")
    creds.refresh_token = "1//new-grant"
    assert service.about().get().execute()["kind"] == "drive#about"


def test_unauthenticated_request_gets_401(fake: FakeDrive) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", fake.port, timeout=5)
    conn.request("GET", "/drive/v2/about")
    resp = conn.getresponse()
    error = json.loads(resp.read())["error"]
    assert resp.status == 401 and error["message"] == "Invalid Credentials"
    assert error["errors"][0]["location"] == "Authorization"


def test_title_query_is_case_insensitive_and_unescapes_quotes(
    fake: FakeDrive, service: Resource
) -> None:
    wanted = fake.put_file("Bob's \\Notes.TXT", b"n", by=APP)
    fake.put_file("other.txt", b"o", by=APP)
    q = f"title = 'bob\\'s \\\\notes.txt' and trashed = false and mimeType != '{FOLDER_MIME}'"
    assert [f["id"] for f in service.files().list(q=q).execute()["items"]] == [wanted]


def post_multipart(fake: FakeDrive, body: bytes) -> tuple[int, dict[str, Any]]:
    conn = http.client.HTTPConnection("127.0.0.1", fake.port, timeout=5)
    headers = {
        "Authorization": "Bearer " + fake.issue_token(),
        "Content-Type": 'multipart/related; boundary="xyz"',
    }
    conn.request("POST", "/upload/drive/v2/files?uploadType=multipart", body, headers)
    resp = conn.getresponse()
    return resp.status, json.loads(resp.read())


def test_multipart_with_crlf_framing(fake: FakeDrive) -> None:
    body = (
        b"--xyz\r\nContent-Type: application/json\r\n\r\n"
        b'{"title": "crlf.txt"}\r\n--xyz\r\nContent-Type: text/plain\r\n\r\n'
        b"line1\r\nline2\r\n--xyz--\r\n"
    )
    status, created = post_multipart(fake, body)
    assert status == 200 and fake.content(created["id"]) == b"line1\r\nline2"


@pytest.mark.parametrize(
    "body",
    [
        b'--xyz\nContent-Type: application/json\n\n{"title": "t"}\n--xyz\n\nno close',
        b'--xyz\nContent-Type: application/json\n\n{"title": "t"}\n--xyz--\n',
        b"--xyz\nContent-Type: text/plain\n\nnot json\n--xyz\nContent-Type: a/b\n\nx\n--xyz--\n",
        b"preamble\n--xyz\nContent-Type: application/json\n\n{}\n--xyz\n\nx\n--xyz--\n",
    ],
    ids=["no-closing-boundary", "one-part", "metadata-not-json", "preamble"],
)
def test_malformed_multipart_is_refused(fake: FakeDrive, body: bytes) -> None:
    status, answer = post_multipart(fake, body)
    assert status == 400 and answer["error"]["code"] == 400
    assert fake.tree() == {}


@pytest.mark.parametrize("tail", [b"\r", b"\n", b"\r\n", b"\r\r"], ids=["CR", "LF", "CRLF", "CRCR"])
def test_googleapiclient_multipart_keeps_the_last_byte(
    fake: FakeDrive, service: Resource, tail: bytes
) -> None:
    # googleapiclient frames parts with bare LF: "...payload\r\n--boundary--". The LF
    # belongs to the delimiter; the CR before it is the file's.
    data = b"line\r\n" * 3 + tail
    media = MediaIoBaseUpload(io.BytesIO(data), "application/octet-stream", resumable=False)
    created = service.files().insert(body={"title": "t.txt"}, media_body=media).execute()
    assert created["md5Checksum"] == md5(data) and fake.content(created["id"]) == data


def test_a_lenient_multipart_parser_loses_a_trailing_cr(fake: FakeDrive, service: Resource) -> None:
    # The opt-in model of a server that takes CRLF before the boundary as the delimiter:
    # the answer's md5Checksum is then not the md5 of what the client sent.
    fake.multipart_eats_cr = True
    data = b"ends with CR\r"
    media = MediaIoBaseUpload(io.BytesIO(data), "application/octet-stream", resumable=False)
    created = service.files().insert(body={"title": "t.txt"}, media_body=media).execute()
    assert created["md5Checksum"] == md5(data[:-1]) != md5(data)
    media = MediaIoBaseUpload(io.BytesIO(data), "application/octet-stream", resumable=True)
    request = service.files().insert(body={"title": "r.txt"}, media_body=media)
    assert upload_resumable(request)["md5Checksum"] == md5(data)  # no framing, no loss


def test_pydrive2_round_trip(fake: FakeDrive) -> None:
    service, creds = connect(fake)
    gauth = GoogleAuth(settings_file="", http_timeout=10)
    gauth.credentials, gauth.service = creds, service
    drive = GoogleDrive(gauth)
    folder = fake.mkdir("proj", by=APP)

    upload = drive.CreateFile({"title": "hello.txt", "parents": [{"id": folder}]})
    upload.SetContentString("hello from pydrive2")
    upload.Upload()
    assert fake.find("proj/hello.txt")["md5Checksum"] == md5(b"hello from pydrive2")

    listed = drive.ListFile({"q": f"'{folder}' in parents and trashed = false"}).GetList()
    assert [f["title"] for f in listed] == ["hello.txt"]
    assert listed[0].GetContentString() == "hello from pydrive2"

    fake.set_content(upload["id"], b"edited in colab")
    listed[0].FetchMetadata()
    assert listed[0]["md5Checksum"] == md5(b"edited in colab")
    listed[0].Trash()
    assert fake.tree() == {"proj/": None}


def test_keep_alive_and_concurrent_clients(fake: FakeDrive) -> None:
    service, _ = connect(fake)
    started = time.monotonic()
    for _ in range(100):
        service.about().get().execute()
    # With Nagle on, each kept-alive request stalls ~40 ms: 100 calls would take 4 s.
    assert time.monotonic() - started < 1.5

    # 80 creations at once would meet the write throttle (3/s): this test is about
    # concurrent connections to the fake, the throttle has tests of its own.
    fake.set_write_limit(None)

    def worker(n: int) -> None:
        svc, _ = connect(fake)
        for i in range(10):
            svc.files().insert(body={"title": f"w{n}-{i}"}).execute()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(fake.tree()) == 80 and fake.duplicates() == []
    fake.put_file("w0-0", b"again")
    assert [(p, t) for p, t, _ in fake.duplicates()] == [(fake.root_id, "w0-0")]

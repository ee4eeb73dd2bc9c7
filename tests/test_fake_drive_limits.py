"""The fake Drive's pace: write throttling, the OR-of-parents bug, the index, latency, bandwidth.

Driven through the real googleapiclient, like the other fake tests.  The
delays asserted here are lower bounds of the fake's own knobs, not speed
claims about syncd (those live in bench/).
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator

import pytest
from googleapiclient.discovery import Resource
from googleapiclient.errors import HttpError
from googleapiclient.http import MediaIoBaseUpload

from tests.fakes.drive_limits import FrozenClock
from tests.fakes.drive_server import APP, FOLDER_MIME, FakeDrive
from tests.test_fake_drive import connect, mkfolder, no_backoff


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeDrive]:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    with FakeDrive() as drive:
        yield drive
    assert drive.internal_errors == []


@pytest.fixture
def app(fake: FakeDrive) -> Resource:
    return connect(fake, "file")[0]


def create(app: Resource, title: str) -> int:
    try:
        app.files().insert(body={"title": title}, fields="id").execute()
    except HttpError as err:
        return err.resp.status
    return 200


# --- write throttling --------------------------------------------------------------------
# The bucket's clock is frozen (``FrozenClock``) and moved on by the test alone: with the wall
# clock, a loaded machine refilled the bucket between creates and "the 11th is refused"
# failed even when the test ran alone.


@pytest.fixture
def clock(fake: FakeDrive) -> FrozenClock:
    frozen = FrozenClock()
    fake.set_clock(frozen)
    return frozen


def test_creations_beyond_the_burst_get_the_real_403(
    fake: FakeDrive, app: Resource, clock: FrozenClock
) -> None:
    # On by default: 3 creations/s sustained, bursts of 10.
    answers = [create(app, f"f{i}") for i in range(25)]
    assert answers == [200] * 10 + [403] * 15  # no time passed: the burst, then nothing
    clock.advance(1.0)  # one second refills 3
    assert [create(app, f"g{i}") for i in range(4)] == [200, 200, 200, 403]
    with pytest.raises(HttpError) as err:
        app.files().insert(body={"title": "one more"}).execute()
    body = json.loads(err.value.content)["error"]
    assert err.value.resp.status == 403 and body["errors"][0]["reason"] == "userRateLimitExceeded"
    assert body["errors"][0]["domain"] == "usageLimits"
    assert body["message"].startswith("User Rate Limit Exceeded. Rate of requests for user")
    assert fake.count(status=403, reason="userRateLimitExceeded") == 15 + 1 + 1
    assert len(fake.tree()) == 13  # a refused create made nothing

    # Reads and updates are not creations.
    for _ in range(20):
        app.about().get(fields="user").execute()
    mine = app.files().list(q="trashed = false", fields="items(id)").execute()["items"][0]
    app.files().patch(fileId=mine["id"], body={"title": "renamed"}).execute()


def test_a_sustained_rate_under_the_limit_is_never_refused(
    fake: FakeDrive, app: Resource, clock: FrozenClock
) -> None:
    fake.set_write_limit(rate=8.0, burst=2.0)
    for i in range(12):
        assert create(app, f"paced{i}") == 200
        clock.advance(1 / 6)  # 6/s < 8/s
    answers = [create(app, f"burst{i}") for i in range(10)]
    # The burst left after the paced run: 2 tokens at most, then refusals.
    assert answers[:2] == [200, 200] and answers[2:] == [403] * 8
    assert fake.throttle.refused == answers.count(403)


def test_resumable_and_multipart_creations_count_and_throttling_can_be_switched_off(
    fake: FakeDrive, app: Resource, clock: FrozenClock
) -> None:
    fake.set_write_limit(rate=0.001, burst=2.0)
    multipart = MediaIoBaseUpload(io.BytesIO(b"a"), "text/plain", resumable=False)
    app.files().insert(body={"title": "a"}, media_body=multipart).execute()
    resumable = MediaIoBaseUpload(io.BytesIO(b"b"), "text/plain", resumable=True)
    request = app.files().insert(body={"title": "b"}, media_body=resumable)
    while request.next_chunk()[1] is None:
        pass
    third = MediaIoBaseUpload(io.BytesIO(b"c"), "text/plain", resumable=True)
    with pytest.raises(HttpError) as err:  # refused when the session opens
        app.files().insert(body={"title": "c"}, media_body=third).next_chunk()
    assert err.value.resp.status == 403
    fake.set_write_limit(None)
    assert [create(app, f"free{i}") for i in range(30)] == [200] * 30


def test_googleapiclient_retries_the_throttle_403_itself(
    fake: FakeDrive, app: Resource, clock: FrozenClock
) -> None:
    # A characterisation of the client: execute(num_retries=N) backs off on
    # 403 userRateLimitExceeded, so a retried create gets through once the bucket refills.
    fake.set_write_limit(rate=20.0, burst=1.0)
    assert create(app, "first") == 200
    request = no_backoff(app.files().insert(body={"title": "second"}))
    waits: list[float] = []

    def sleep(seconds: float) -> None:  # the client's backoff is what moves the clock
        waits.append(seconds)
        clock.advance(seconds)

    request._sleep = sleep
    request._rand = lambda: 0.01  # backoffs of 0.02 s, 0.04 s, ...: 1/20 s takes two
    assert request.execute(num_retries=5)["title"] == "second"
    assert fake.count(status=403) == len(waits) >= 1
    assert sum(waits) >= 1 / 20  # admitted only once the bucket had refilled one token


# --- the OR-of-parents bug (opt-in) ------------------------------------------------------


def test_or_of_parents_queries_answer_empty_in_bug_mode(fake: FakeDrive, app: Resource) -> None:
    a, b = mkfolder(app, "a"), mkfolder(app, "b")
    for parent in (a, b):
        app.files().insert(body={"title": "x", "parents": [{"id": parent}]}).execute()
    either = f"('{a}' in parents or '{b}' in parents) and trashed = false"
    assert len(app.files().list(q=either).execute()["items"]) == 2  # off by default

    fake.or_parents_bug = 1.0  # Google issue tracker 149522397
    assert app.files().list(q=either).execute()["items"] == []
    one = f"'{a}' in parents and trashed = false"
    assert len(app.files().list(q=one).execute()["items"]) == 1  # one parent: unaffected


# --- the index and the page size --------------------------------------------------------


def test_listing_a_folder_costs_its_children_not_the_whole_drive(
    fake: FakeDrive, app: Resource
) -> None:
    crowd = fake.mkdir("crowd", by=APP)
    for i in range(3000):
        fake.put_file(f"f{i}", b"", parent_id=crowd, by=APP)
    small = mkfolder(app, "small")
    for i in range(3):
        app.files().insert(body={"title": f"s{i}", "parents": [{"id": small}]}).execute()
    q = f"'{small}' in parents and trashed = false and mimeType != '{FOLDER_MIME}'"
    assert len(app.files().list(q=q).execute()["items"]) == 3
    assert fake._store.last_scanned == 3  # the parent index, not 3,000 items


def test_page_size_caps_changes_pages_too(fake: FakeDrive, app: Resource) -> None:
    start = app.changes().getStartPageToken().execute()["startPageToken"]
    for i in range(5):
        create(app, f"c{i}")
    fake.page_size = 2
    sizes, token = [], start
    while True:
        page = app.changes().list(pageToken=token, maxResults=100).execute()
        sizes.append(len(page["items"]))
        token = page.get("nextPageToken")
        if token is None:
            break
    assert sizes == [2, 2, 1]


# --- latency and bandwidth --------------------------------------------------------------


def test_latency_is_added_to_every_request(fake: FakeDrive, app: Resource) -> None:
    fake.latency = 0.15
    started = time.monotonic()
    for _ in range(3):
        app.about().get(fields="rootFolderId").execute()
    assert time.monotonic() - started >= 0.45


def test_upload_bandwidth_is_capped(fake: FakeDrive, app: Resource) -> None:
    fake.upload_bandwidth = 4 * 1024 * 1024  # bytes/s
    data = b"x" * (1024 * 1024)
    media = MediaIoBaseUpload(io.BytesIO(data), "application/octet-stream", resumable=False)
    started = time.monotonic()
    app.files().insert(body={"title": "1mib"}, media_body=media).execute()
    assert time.monotonic() - started >= 0.24

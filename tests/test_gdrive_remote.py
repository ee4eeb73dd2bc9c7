"""The ``gdrive:`` remote against FakeDrive: retries, idempotency, resuming, requests.

Behaviour every target shares is in test_remote_conformance.py; credentials,
scopes and service accounts are test_gdrive_auth.py; this file covers what
only Drive has: lost answers, resumable sessions, rate limits, and how many
requests things cost.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from syncd import retry
from syncd.db.statedb import StateDB
from syncd.errors import FileChanged, FileError, TargetUnavailable, TransientError
from syncd.remotes.gdrive import creates as gdrive_creates
from syncd.remotes.gdrive import folders as gdrive_folders
from syncd.remotes.gdrive import pacing as gdrive_pacing
from syncd.remotes.gdrive.pacing import Pacer
from tests.fakes.drive_server import APP, FakeDrive
from tests.gdrive_support import (
    files_below,
    open_gdrive,
    uploads,
)

MiB = 1024 * 1024


@pytest.fixture
def fake(home: Path) -> Iterator[FakeDrive]:
    with FakeDrive() as drive:
        yield drive
    assert drive.internal_errors == []


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def src(tmp_path: Path, data: bytes, name: str = "f.bin") -> Path:
    path = tmp_path / "src" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def ranges(fake: FakeDrive) -> list[str | None]:
    return [r.content_range for r in fake.requests if r.method == "PUT"]


# --- idempotent creates --------------------------------------------------------------------


def test_lost_answers_to_folder_and_file_creates_make_no_duplicates(
    fake: FakeDrive, tmp_path: Path
) -> None:
    remote = open_gdrive(fake, tmp_path)
    remote.check(create=True)
    fake.inject(lose_response=True, method="POST", path_contains="/drive/v2/files", count=2)
    result = remote.upload("a/b/x.txt", src(tmp_path, b"x"), None)
    assert files_below(fake) == {"a/b/x.txt": md5(b"x")}
    assert fake.duplicates() == [] and result.entry.id == fake.find("syncd/p/a/b/x.txt")["id"]
    assert fake.count(status=409) >= 1  # the retries met the items the lost attempts made
    assert remote.db.kv_items("p", "new") == {}  # no intent is left once a create is confirmed


@pytest.mark.parametrize("edited_while_down", [False, True])
def test_create_interrupted_by_a_crash_is_taken_over_after_restart(
    fake: FakeDrive, tmp_path: Path, edited_while_down: bool
) -> None:
    remote = open_gdrive(fake, tmp_path)
    remote.check(create=True)
    path = src(tmp_path, b"version 1")
    # Every answer is lost: the insert happens on the server, the remote gives up.
    fake.inject(lose_response=True, method="POST", path_contains="/upload/", count=50)
    with pytest.raises(TransientError):
        remote.upload("run/x.py", path, None)
    fake.clear_faults()
    assert files_below(fake) == {"run/x.py": md5(b"version 1")}
    if edited_while_down:
        path.write_bytes(b"version 2, edited while syncd was down")

    fake.reset_log()
    again = open_gdrive(fake, tmp_path, db=StateDB(tmp_path / "state.db"))
    again.check()
    # Not someone else's file: syncd's own unrecorded upload, so no conflict copy is made.
    assert again.stat("run/x.py", None) is None
    result = again.upload("run/x.py", path, None)
    assert files_below(fake) == {"run/x.py": md5(path.read_bytes())}
    assert fake.duplicates() == []
    assert uploads(fake) == (["x.py"] if edited_while_down else [])
    assert result.md5 == md5(path.read_bytes())


def test_reserved_ids_are_not_kept_past_their_age(
    fake: FakeDrive, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Ages well above a loaded machine's scheduling delays (0.1 s / 0.2 s flaked in CI).
    monkeypatch.setattr(gdrive_creates, "ID_MAX_AGE_S", 0.5)
    fake.generated_id_ttl = 1.0
    remote = open_gdrive(fake, tmp_path)
    remote.check(create=True)
    remote.upload("a.txt", src(tmp_path, b"a"), None)  # reserves a batch of ids
    time.sleep(1.1)  # the rest of the batch expires while syncd idles
    fake.reset_log()
    remote.upload("b.txt", src(tmp_path, b"b"), None)
    # a new batch first: the old one is past ID_MAX_AGE_S
    assert [(r.method, r.status) for r in fake.requests] == [("GET", 200), ("POST", 200)]


def test_an_expired_reserved_id_is_replaced(fake: FakeDrive, tmp_path: Path) -> None:
    remote = open_gdrive(fake, tmp_path)
    remote.check(create=True)
    remote.upload("a.txt", src(tmp_path, b"a"), None)  # reserves a batch of ids
    fake.generated_id_ttl = 0.2  # shorter than syncd expects: the id answers 400
    time.sleep(0.3)
    fake.reset_log()
    result = remote.upload("b.txt", src(tmp_path, b"b"), None)
    assert files_below(fake) == {"a.txt": md5(b"a"), "b.txt": md5(b"b")}
    assert [(r.method, r.status) for r in fake.requests] == [
        ("POST", 400),  # "The provided file ID is not usable."
        ("GET", 200),  # a new batch
        ("POST", 200),
    ]
    assert result.entry.id == fake.find("syncd/p/b.txt", app=APP)["id"]


# --- resumable uploads ---------------------------------------------------------------------


def test_50_mb_upload_resumes_after_a_dropped_connection(fake: FakeDrive, tmp_path: Path) -> None:
    remote = open_gdrive(fake, tmp_path)
    remote.check(create=True)
    data = os.urandom(50 * MiB)
    fake.reset_log()
    fake.drop_upload_after(3 * MiB + 17)
    result = remote.upload("big.bin", src(tmp_path, data), None)
    assert result.md5 == md5(data) and files_below(fake) == {"big.bin": md5(data)}
    seen = ranges(fake)
    probe = seen.index(f"bytes */{len(data)}")
    assert seen[probe - 1].startswith("bytes 0-")  # the chunk that broke
    assert seen[probe + 1].startswith(f"bytes {3 * MiB + 17}-")  # resumed, not restarted
    sent = sum(r.body_size for r in fake.requests if r.method == "PUT")
    assert sent < len(data) + 8 * MiB


def test_a_link_too_slow_for_a_whole_chunk_still_gets_there(
    fake: FakeDrive, tmp_path: Path
) -> None:
    remote = open_gdrive(fake, tmp_path)
    remote.check(create=True)
    data = os.urandom(20 * MiB)
    fake.drop_upload_after(3 * MiB, times=8)  # more broken chunks in a row than ATTEMPTS
    assert remote.upload("big.bin", src(tmp_path, data), None).md5 == md5(data)
    assert ranges(fake).count(f"bytes */{len(data)}") > 5  # ATTEMPTS: progress resets it


def test_chunk_errors_and_rate_limits_are_resumed(fake: FakeDrive, tmp_path: Path) -> None:
    remote = open_gdrive(fake, tmp_path)
    remote.check(create=True)
    data = os.urandom(20 * MiB)
    fake.inject(status=503, method="PUT", path_contains="/upload/", after=1)
    fake.inject(status=403, reason="userRateLimitExceeded", method="PUT", after=2)
    fake.inject(status=500, method="POST", path_contains="/upload/")  # the session start
    assert remote.upload("big.bin", src(tmp_path, data), None).md5 == md5(data)
    assert ranges(fake).count(f"bytes */{len(data)}") == 2
    assert fake.duplicates() == []


def test_a_large_file_changed_mid_upload_commits_nothing(fake: FakeDrive, tmp_path: Path) -> None:
    remote = open_gdrive(fake, tmp_path)
    remote.check(create=True)
    path = src(tmp_path, os.urandom(12 * MiB))
    fake.inject(delay=0.6, method="PUT", path_contains="/upload/")

    def edit() -> None:
        time.sleep(0.2)
        with open(path, "r+b") as f:
            f.write(b"changed")

    editor = threading.Thread(target=edit)
    editor.start()
    with pytest.raises(FileChanged):
        remote.upload("big.bin", path, None)
    editor.join()
    assert files_below(fake) == {}  # the last chunk, which commits, was never sent


# --- every upload verified ------------------------------------------------------------------


@pytest.mark.parametrize("tail", [b"\r", b"\n", b"\r\n"], ids=["CR", "LF", "CRLF"])
def test_a_file_ending_in_a_line_break_arrives_whole(
    fake: FakeDrive, tmp_path: Path, tail: bytes
) -> None:
    remote = open_gdrive(fake, tmp_path)
    remote.check(create=True)
    data = b"x = 1" + tail
    result = remote.upload("a.py", src(tmp_path, data), None)
    assert result.md5 == md5(data) and fake.content(result.entry.id) == data


def test_a_byte_lost_by_the_server_is_caught_and_sent_again(
    fake: FakeDrive, tmp_path: Path
) -> None:
    # A multipart parser that takes the file's last CR for part of the boundary
    # (googleapiclient frames with bare LF): the answer's md5 tells, the file goes again
    # by the resumable path (no framing), and only then is the upload done.
    remote = open_gdrive(fake, tmp_path)
    remote.check(create=True)
    fake.multipart_eats_cr = True
    data = b"ends in CR\r"
    fake.reset_log()
    result = remote.upload("a.txt", src(tmp_path, data), None)
    assert result.md5 == md5(data) == fake.find("syncd/p/a.txt", app=APP)["md5Checksum"]
    sends = [(r.method, "upload_id" in r.query) for r in fake.requests if "/upload/" in r.path]
    assert sends == [("POST", False), ("PUT", False), ("PUT", True)]  # multipart, then resumable
    again = b"edited, still ends in CR\r"
    second = remote.upload("a.txt", src(tmp_path, again), result.entry)
    assert second.entry.id == result.entry.id and fake.content(result.entry.id) == again
    assert remote.db.kv_items("p", "new:") == {}
    # The update's intent (uploads.intend_update) stays until the next look at the file, and
    # names only what Drive now holds: the bad revision is no longer syncd's to claim.
    intents = [json.loads(v) for v in remote.db.kv_items("p", "sent:").values()]
    assert intents == [{"id": second.entry.id, "md5": md5(again), "bad": []}]


@pytest.mark.parametrize("existing", [False, True], ids=["create", "update"])
def test_an_upload_that_never_arrives_whole_is_not_done_and_not_a_conflict(
    fake: FakeDrive, tmp_path: Path, existing: bool
) -> None:
    remote = open_gdrive(fake, tmp_path)
    remote.check(create=True)
    known = remote.upload("a.txt", src(tmp_path, b"v1"), None).entry if existing else None
    fake.corrupt_next_uploads(3)  # the first send and both re-sends
    path = src(tmp_path, b"v2")
    with pytest.raises(TransientError, match="stored other bytes than syncd sent for a.txt"):
        remote.upload("a.txt", path, known)
    # What Drive holds now is syncd's own failed send: not someone else's edit.
    cur = remote.stat("a.txt", known)
    if existing:
        assert cur is not None and cur.id == known.id and cur.md5 == known.md5
    else:
        assert cur is None  # an unfinished create of syncd's: upload() takes it over
    result = remote.upload("a.txt", path, cur)
    assert result.md5 == md5(b"v2") and files_below(fake) == {"a.txt": md5(b"v2")}
    assert fake.duplicates() == []


# --- per-file and whole-target errors ------------------------------------------------------


def test_per_file_problems_are_file_errors(fake: FakeDrive, tmp_path: Path) -> None:
    remote = open_gdrive(fake, tmp_path)
    remote.check(create=True)
    (tmp_path / "a-dir").mkdir()
    with pytest.raises(FileError, match="cannot read it|not a regular file"):
        remote.upload("a-dir", tmp_path / "a-dir", None)
    fake.inject(status=400, message="Invalid title", method="POST", path_contains="/upload/")
    with pytest.raises(FileError, match="Google Drive refused it: Invalid title"):
        remote.upload("bad.txt", src(tmp_path, b"x"), None)
    remote.upload("good.txt", src(tmp_path, b"y"), None)  # the next file goes on
    assert files_below(fake) == {"good.txt": md5(b"y")}


@pytest.mark.parametrize(
    "fault",
    [
        {"status": 500},
        {"status": 503},
        {"status": 429},
        {"status": 403, "reason": "rateLimitExceeded"},
        {"drop": True},
        {"delay": 2.0},  # longer than the HTTP timeout
    ],
)
def test_transient_failures_are_retried(fake: FakeDrive, tmp_path: Path, fault: dict) -> None:
    remote = open_gdrive(fake, tmp_path, timeout=0.5)
    remote.check(create=True)
    # Twice in a row, except rate limits: one pauses every sender 1-2 s (then 2-4 s)
    limited = fault.get("status") == 429 or fault.get("reason") == "rateLimitExceeded"
    fake.inject(**fault, count=1 if limited else 2, method="POST", path_contains="/upload/")
    started = time.monotonic()
    remote.upload("x.txt", src(tmp_path, b"x"), None)
    assert files_below(fake) == {"x.txt": md5(b"x")} and fake.duplicates() == []
    assert time.monotonic() - started < 5  # no hang until a timeout


def test_an_outage_becomes_transient_error_quickly(fake: FakeDrive, tmp_path: Path) -> None:
    remote = open_gdrive(fake, tmp_path)
    remote.check(create=True)
    fake.inject(status=503, count=1000)
    started = time.monotonic()
    with pytest.raises(TransientError, match="503"):
        remote.upload("x.txt", src(tmp_path, b"x"), None)
    assert time.monotonic() - started < 10


# --- addresses, folders, listing, request counts -------------------------------------------


def test_id_address_uses_that_folder(fake: FakeDrive, tmp_path: Path) -> None:
    folder = fake.mkdir("Shared/colab-project")  # made by hand in the web UI
    address = f"gdrive:id={folder}"
    hidden = open_gdrive(fake, tmp_path / "f", address)  # drive.file cannot see it
    with pytest.raises(TargetUnavailable, match="drive.scope: full"):
        hidden.check(create=True)
    remote = open_gdrive(fake, tmp_path / "full", address, scope="full")
    remote.check(create=True)
    remote.upload("a/x.txt", src(tmp_path, b"x"), None)
    assert files_below(fake, "Shared/colab-project", app=None) == {"a/x.txt": md5(b"x")}
    fake.open_with(folder)  # picked with syncd ("Open with"): now drive.file sees it
    picked = open_gdrive(fake, tmp_path / "picked", address)
    picked.check(create=True)
    picked.upload("b.txt", src(tmp_path, b"b"), None)
    assert fake.tree(folder)["b.txt"] == md5(b"b")
    missing = open_gdrive(fake, tmp_path / "m", "gdrive:id=1doesNotExist0000000000000000000")
    with pytest.raises(TargetUnavailable, match="drive.scope: full"):
        missing.check(create=True)


def test_folder_ids_are_remembered_across_restarts(fake: FakeDrive, tmp_path: Path) -> None:
    remote = open_gdrive(fake, tmp_path)
    remote.check(create=True)
    for i in range(3):
        remote.upload(f"deep/er/f{i}.txt", src(tmp_path, b"%d" % i), None)
    fake.reset_log()
    again = open_gdrive(fake, tmp_path, db=StateDB(tmp_path / "state.db"))
    again.check()
    again.upload("deep/er/new.txt", src(tmp_path, b"new"), None)
    # The check (get the root), ids for new files, the upload: no folder lookups.
    assert [(r.method, r.path) for r in fake.requests] == [
        ("GET", "/drive/v2/files/" + fake.find("syncd/p")["id"]),
        ("GET", "/drive/v2/files/generateIds"),
        ("POST", "/upload/drive/v2/files"),
    ]


def test_concurrent_uploads_create_each_folder_once(fake: FakeDrive, tmp_path: Path) -> None:
    fake.set_write_limit(rate=100.0, burst=50.0)  # on, but this test is about folders
    remote = open_gdrive(fake, tmp_path)
    remote.check(create=True)
    paths = [src(tmp_path, b"%d" % i, f"f{i}") for i in range(16)]
    threads = [
        threading.Thread(target=remote.upload, args=(f"new/deep/dir/f{i}", p, None))
        for i, p in enumerate(paths)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(files_below(fake)) == 16 and fake.duplicates() == []
    folder_creates = [
        r for r in fake.requests if r.method == "POST" and r.path == "/drive/v2/files"
    ]
    assert len(folder_creates) == 5  # syncd, p, new, deep, dir


def test_adopting_a_folder_that_holds_the_files_costs_one_listing(
    fake: FakeDrive, tmp_path: Path
) -> None:
    for i in range(300):  # what syncd itself uploaded earlier (from another machine, say)
        fake.put_file(f"syncd/p/d{i % 10}/f{i}.txt", b"%d" % i, by=APP)
    fake.reset_log()
    remote = open_gdrive(fake, tmp_path)
    remote.check(create=True)
    for i in range(300):
        found = remote.stat(f"d{i % 10}/f{i}.txt", None)
        assert found is not None and found.md5 == md5(b"%d" % i)
    assert remote.stat("d0/missing.txt", None) is None
    # Resolving /syncd/p (about.get for My Drive's id, two title queries), the changes
    # feed's first token (once per target: remote_edits) and one flat listing of the
    # tree; never files/root, a 404 under drive.file.
    assert fake.count() == 5 and fake.count(path_contains="/files/root") == 0
    assert fake.count(path_contains="/changes/startPageToken") == 1


@pytest.mark.parametrize(("scope", "calls"), [("file", 4), ("full", 2 + 3)])
def test_list_all_pages_and_walks(fake: FakeDrive, tmp_path: Path, scope: str, calls: int) -> None:
    fake.page_size = 50  # Drive may answer fewer items than asked: 150 files show the paging
    for i in range(150):
        fake.put_file(f"syncd/p/t{i % 3}/d{i % 30}/f{i}.txt", b"x", by=APP)
    fake.put_file("syncd/elsewhere.txt", b"not below the root", by=APP)
    fake.put_file("syncd/p/by-hand.txt", b"invisible under drive.file")
    remote = open_gdrive(fake, tmp_path, scope=scope)
    remote.check()
    fake.reset_log()
    listed = list(remote.list_all())
    hand = ["by-hand.txt"] if scope == "full" else []
    assert sorted(e.path for e in listed if "/" not in e.path) == hand
    assert len(listed) == 150 + len(hand) and all(
        e.md5 == md5(b"x") for e in listed if e.path != "by-hand.txt"
    )
    # Pages of 50: 186 items syncd made (flat); or a query per level of folders, the last
    # one (150 files) three pages long.
    assert fake.count() == calls


def test_an_empty_answer_to_a_multi_parent_query_is_asked_again_per_folder(
    fake: FakeDrive, tmp_path: Path
) -> None:
    for i in range(6):
        fake.put_file(f"syncd/p/d{i}/f{i}.txt", b"%d" % i)
    fake.mkdir("syncd/p/empty")
    remote = open_gdrive(fake, tmp_path, scope="full")
    remote.check()
    fake.or_parents_bug = 1.0  # Google issue tracker 149522397, every time
    fake.reset_log()
    listed = sorted(e.path for e in remote.list_all())
    assert listed == [f"d{i}/f{i}.txt" for i in range(6)]
    queries = [r.query["q"] for r in fake.requests]
    # the root alone; then the 7 folders together (empty: the bug), then one by one
    assert len(queries) == 1 + 1 + 7 and " or " in queries[1]
    assert all(" or " not in q for q in queries[2:])


@pytest.mark.parametrize("reason", ["storageQuotaExceeded", "quotaExceeded"])
def test_a_full_drive_stops_the_target_not_the_file(
    fake: FakeDrive, tmp_path: Path, reason: str
) -> None:
    remote = open_gdrive(fake, tmp_path)
    remote.check(create=True)
    fake.inject(
        status=403, reason=reason, message="The user's Drive storage quota has been exceeded."
    )
    with pytest.raises(TargetUnavailable, match="Google Drive is full"):
        remote.upload("x.txt", src(tmp_path, b"x"), None)


def test_lookups_by_title_are_exact_and_escaped(
    fake: FakeDrive, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(gdrive_folders, "LISTING_TTL_S", 0.0)  # no listing is fresh: ask by title
    monkeypatch.setattr(gdrive_folders, "RELIST_MAX", -1)
    remote = open_gdrive(fake, tmp_path, scope="full")
    remote.check(create=True)
    fake.put_file("syncd/p/Notes.TXT", b"upper")
    odd = "it's a \\ 'test'.txt"
    fake.put_file("syncd/p/" + odd, b"odd")
    assert remote.stat("notes.txt", None) is None  # Drive matched it; syncd compares exactly
    found = remote.stat(odd, None)
    assert found is not None and found.md5 == md5(b"odd")
    assert any("title = " in r.query.get("q", "") for r in fake.requests)


def test_stat_of_a_file_trashed_or_moved_by_someone_else(fake: FakeDrive, tmp_path: Path) -> None:
    remote = open_gdrive(fake, tmp_path)
    remote.check(create=True)
    a = remote.upload("a.txt", src(tmp_path, b"a"), None).entry
    b = remote.upload("b.txt", src(tmp_path, b"b"), None).entry
    fake.trash(a.id)
    other = fake.mkdir("syncd/p/elsewhere")
    fake.move(b.id, other)
    for path, entry in (("a.txt", a), ("b.txt", b)):
        # stat may answer what syncd wrote (Remote.stat); a write over it is refused
        if remote.stat(path, entry) is not None:
            with pytest.raises(FileChanged):
                remote.upload(path, src(tmp_path, b"new"), entry)
    remote.begin_batch()
    assert remote.stat("a.txt", a) is None
    assert remote.stat("b.txt", b) is None


def test_moves_are_one_patch(fake: FakeDrive, tmp_path: Path) -> None:
    remote = open_gdrive(fake, tmp_path)
    remote.check(create=True)
    entry = remote.upload("a/x.txt", src(tmp_path, b"x"), None).entry
    remote.upload("b/y.txt", src(tmp_path, b"y"), None)
    fake.reset_log()
    moved = remote.move(entry, "b/x2.txt")
    assert [r.method for r in fake.requests] == ["PATCH"] and moved.id == entry.id
    assert files_below(fake) == {"b/x2.txt": md5(b"x"), "b/y.txt": md5(b"y")}


def test_no_file_handle_is_leaked(fake: FakeDrive, tmp_path: Path) -> None:
    fake.set_write_limit(rate=100.0, burst=50.0)  # on, but this test is about file handles
    remote = open_gdrive(fake, tmp_path)
    remote.check(create=True)
    remote.upload("warm.txt", src(tmp_path, b"w"), None)
    before = len(os.listdir("/proc/self/fd"))
    for i in range(20):  # each from a new thread, as the engine's per-batch worker pools do
        path = src(tmp_path, b"%d" % i, f"s{i}")
        worker = threading.Thread(target=remote.upload, args=(f"s{i}.txt", path, None))
        worker.start()
        worker.join()
    remote.upload("big.bin", src(tmp_path, os.urandom(6 * MiB), "big"), None)
    with pytest.raises(FileChanged):
        remote.upload("gone.txt", tmp_path / "gone", None)
    assert len(os.listdir("/proc/self/fd")) <= before + 1  # at most one more pooled connection


def test_pacer_spaces_requests() -> None:
    pacer = Pacer(100.0)
    started = time.monotonic()
    for _ in range(150):  # a burst of 100, then 50 at 100/s
        pacer.take()
    assert 0.45 < time.monotonic() - started < 1.5


def test_pacer_pauses_every_sender_after_a_rate_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [1000.0]

    def sleep(seconds: float) -> None:
        clock[0] += max(0.0, seconds)

    monkeypatch.setattr(gdrive_pacing.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(gdrive_pacing.time, "sleep", sleep)
    monkeypatch.setattr(retry.random, "uniform", lambda a, b: a)  # no jitter: the floors
    pacer = Pacer(100.0)
    pacer.take()
    pacer.throttled()
    pacer.throttled()  # another answer of the same burst: one pause covers both
    started = clock[0]
    pacer.take()
    assert clock[0] - started == pytest.approx(1.0)  # every sender waits 1 s
    pacer.throttled()  # again, with nothing through in between: 2 s
    started = clock[0]
    pacer.take()
    assert clock[0] - started == pytest.approx(2.0) and pacer.slowdowns == 3
    pacer.succeeded()  # one request got through: the series ends
    pacer.throttled()
    started = clock[0]
    pacer.take()
    assert clock[0] - started == pytest.approx(1.0)
    pacer.succeeded()
    waits = []
    for _ in range(7):  # rate limits in a row: 1, 2, 4, 8, 16 s, then no longer than 16
        pacer.throttled()
        started = clock[0]
        pacer.take()
        waits.append(round(clock[0] - started, 3))
    assert waits == [1.0, 2.0, 4.0, 8.0, 16.0, 16.0, 16.0]


def test_requests_per_second_is_honoured(fake: FakeDrive, tmp_path: Path) -> None:
    remote = open_gdrive(fake, tmp_path, requests_per_second=20.0)
    remote.check(create=True)
    started = time.monotonic()
    for _ in range(40):  # one files.get each: a burst of 20, then 20 a second
        assert remote.folder("") is not None
    assert time.monotonic() - started > 0.8

"""pullback.records: the pending set and what status says of it (review-2 #6)."""

from __future__ import annotations

import json
from pathlib import Path

from syncd.db.statedb import StateDB
from syncd.pullback.records import Pulled, PullRecords


def test_pending_files_are_kept_by_id_and_named_in_last_error(tmp_path: Path) -> None:
    db = StateDB(tmp_path / "state.db")
    records = PullRecords(db, "p")
    assert records.pending() == {} and records.pending_note() is None
    records.pend("id2", "outputs/b.bin", "cannot write into outputs/b.bin: File too large")
    records.pend("id1", "outputs/a.bin", "Google Drive refused the download: 403")
    records.pend("id1", "outputs/a.bin", "outputs is a symlink")  # the latest reason wins
    assert records.pending()["id1"] == {"path": "outputs/a.bin", "error": "outputs is a symlink"}
    assert records.pending_note() == (
        "not pulled yet: outputs/a.bin: outputs is a symlink (and 1 more); trying again each poll"
    )
    # A poll that reached Drive sets last_poll, and last_error says what is pending.
    records.polled(records.pending_note(), reached=True)
    stats = records.stats()
    assert stats["last_poll"] is not None and stats["last_error"].startswith("not pulled yet")
    records.unpend("id1")
    records.unpend("id2")
    records.unpend("id2")  # twice: harmless
    assert records.pending() == {} and db.kv_get("p", "pull:pending") is None
    assert PullRecords(db, "other").pending() == {}  # per project


def test_records_of_an_older_syncd_without_a_parent_still_load(tmp_path: Path) -> None:
    db = StateDB(tmp_path / "state.db")
    old = {"id": "f", "md5": "m", "rev": None, "size": 1, "ino": 2, "mtime_ns": 3}
    db.kv_set("p", "pulled:outputs/x", json.dumps(old))
    assert PullRecords(db, "p").all() == {"outputs/x": Pulled("f", "m", None, 1, 2, 3, None)}


def test_where_follows_puts_and_forgets_without_rereading_every_record(tmp_path: Path) -> None:
    db = StateDB(tmp_path / "state.db")
    records = PullRecords(db, "p")
    records.put("outputs/a", Pulled("A", "m", None, 1, 2, 3, "d"))
    assert records.where("A") == "outputs/a" and records.where("B") is None  # index built
    reads = 0
    real_items = db.kv_items

    def counted(project: str, prefix: str) -> dict[str, str]:
        nonlocal reads
        reads += 1
        return real_items(project, prefix)

    db.kv_items = counted  # type: ignore[method-assign]
    records.put("outputs/b", Pulled("B", "m", None, 1, 2, 3, "d"))
    records.put("outputs/a", Pulled("C", "m", None, 1, 2, 3, "d"))  # another file took a's path
    assert (records.where("A"), records.where("B"), records.where("C")) == (
        None,
        "outputs/b",
        "outputs/a",
    )
    records.forget("outputs/b")
    assert records.where("B") is None and records.where("C") == "outputs/a"
    assert reads == 0  # a lookup per change never reloads every record (review-4 #3)
    assert PullRecords(db, "p").where("C") == "outputs/a"  # what the db holds agrees

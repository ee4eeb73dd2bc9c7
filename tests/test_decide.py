"""The mirror's per-file decisions, row by row (``syncd.mirror.decide`` is pure: no I/O)."""

from __future__ import annotations

import pytest

from syncd.mirror.decide import (
    NOT_LOOKED,
    Delete,
    Known,
    Move,
    There,
    Upload,
    decide_delete,
    decide_move,
    decide_upload,
    ours,
)
from syncd.mirror.plan import mass_deletion

K = Known(size=3, md5="m-ours", remote_id="id-1")  # what syncd last sent
SAME = There(is_dir=False, id="id-1", md5="m-ours")  # our copy, unchanged on the remote
MOVED_ID = There(is_dir=False, id="other-id", md5="m-ours")  # same bytes, another id
THEIRS = There(is_dir=False, id="id-1", md5="m-theirs")  # edited on the remote
FOREIGN = There(is_dir=False, id="id-9", md5="m-local")  # someone else's, our new bytes
DIR = There(is_dir=True, id="dir-1")


@pytest.mark.parametrize(
    ("size", "md5", "known", "there", "empty", "stable", "expected"),
    [
        # local facts first: a stat change with the same size may be a touch, chmod, rename
        (3, None, K, NOT_LOOKED, None, True, Upload.HASH),
        (3, "m-ours", K, NOT_LOOKED, None, True, Upload.TOUCH),
        (4, None, K, NOT_LOOKED, None, True, Upload.LOOK),  # size differs: no need to hash
        (3, "m-local", K, NOT_LOOKED, None, True, Upload.LOOK),
        (3, None, None, NOT_LOOKED, None, True, Upload.LOOK),  # new file
        # then the remote
        (4, None, None, None, None, True, Upload.CREATE),  # nothing there: no read needed
        (4, None, K, None, None, True, Upload.CREATE),  # ours was deleted there by hand
        (4, None, K, SAME, None, True, Upload.UPDATE),
        (4, None, K, MOVED_ID, None, True, Upload.HASH),  # Drive: same bytes, other file
        (4, "m-local", K, MOVED_ID, None, True, Upload.CONFLICT),
        (4, None, K, MOVED_ID, None, False, Upload.UPDATE),  # local: ids are paths
        (4, None, K, THEIRS, None, True, Upload.HASH),
        (4, "m-local", K, THEIRS, None, True, Upload.CONFLICT),
        (4, "m-theirs", K, THEIRS, None, True, Upload.ADOPT),  # they wrote what we have
        (4, None, None, FOREIGN, None, True, Upload.HASH),
        (4, "m-local", None, FOREIGN, None, True, Upload.ADOPT),  # e.g. before a crash
        (4, "m-other", None, FOREIGN, None, True, Upload.CONFLICT),
        (4, None, None, DIR, None, True, Upload.LOOK_INSIDE),  # a folder where a file goes
        (4, None, None, DIR, True, True, Upload.CLEAR),  # emptied (a folder became this file)
        (4, None, None, DIR, False, True, Upload.CONFLICT),  # it holds files: kept aside
        (3, "m-ours", K, DIR, None, True, Upload.TOUCH),  # local facts decide first
    ],
)
def test_decide_upload_row(size, md5, known, there, empty, stable, expected) -> None:
    assert (
        decide_upload(
            local_size=size,
            local_md5=md5,
            known=known,
            there=there,
            folder_empty=empty,
            stable_ids=stable,
        )
        is expected
    )


@pytest.mark.parametrize(
    ("keep", "there", "expected"),
    [
        (False, SAME, Delete.TRASH),
        (False, MOVED_ID, Delete.TRASH),  # our bytes: recoverable from the trash anyway
        (False, THEIRS, Delete.KEEP_THEIRS),  # edited there since: never trashed
        (False, None, Delete.FORGET),  # already gone there
        (False, DIR, Delete.FORGET),  # a folder now: not the file we wrote
        (True, SAME, Delete.FORGET),  # deletions: keep
    ],
)
def test_decide_delete_row(keep: bool, there: There | None, expected: Delete) -> None:
    assert decide_delete(keep=keep, known=K, there=there) is expected


DST = Known(size=5, md5="m-dst", remote_id="id-2")


@pytest.mark.parametrize(
    ("source", "destination", "known_destination", "expected"),
    [
        (SAME, None, None, Move.MOVE),
        (None, None, None, Move.SKIP),  # gone from the remote: upload + forget instead
        (THEIRS, None, None, Move.SKIP),  # edited there: moving would carry their edit
        (DIR, None, None, Move.SKIP),
        (SAME, DIR, None, Move.SKIP),  # a folder at the destination
        (SAME, There(False, "id-2", "m-dst"), DST, Move.TRASH_DESTINATION),  # our own copy
        (SAME, There(False, "id-2", "m-x"), DST, Move.CONFLICT_DESTINATION),  # edited there
        (SAME, There(False, "id-3", "m-y"), None, Move.CONFLICT_DESTINATION),  # not ours
    ],
)
def test_decide_move_row(source, destination, known_destination, expected) -> None:
    got = decide_move(
        source=source,
        known_source=K,
        destination=destination,
        known_destination=known_destination,
    )
    assert got is expected


@pytest.mark.parametrize(
    ("there", "stable", "expected"),
    [
        (SAME, True, True),
        (MOVED_ID, True, False),
        (MOVED_ID, False, True),
        (THEIRS, False, False),
        (DIR, False, False),
    ],
)
def test_ours_row(there: There, stable: bool, expected: bool) -> None:
    assert ours(K, there, stable) is expected


@pytest.mark.parametrize(
    ("missing", "tracked", "left", "held"),
    [
        (0, 10, 10, False),
        (10, 10, 0, True),  # emptied except what is ignored (.git): ask first
        (10, 10, 10, True),  # ten gone at once: more than half and at least five
        (1, 1, 1, False),  # the only file renamed: it is still there under a new name
        (1, 1, 0, True),  # the only file deleted, nothing left to mirror
        (2, 3, 1, False),  # two of three: fewer than five
        (5, 9, 4, True),
        (5, 10, 5, False),  # exactly half is not more than half
        (60, 100, 40, True),
        (49, 100, 51, False),
    ],
)
def test_mass_deletion_rule_row(missing: int, tracked: int, left: int, held: bool) -> None:
    assert mass_deletion(missing, tracked, left) is held

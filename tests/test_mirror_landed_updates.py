"""An update Drive accepted but syncd never recorded is syncd's own, not someone else's edit.

The chaos test's seed 59 found it: ``kill -9`` after Drive accepted an update
and before the index recorded it left Drive holding an md5 the index did not
know, so the next start took syncd's own write for a foreign edit (a conflict
copy nobody caused, or a file deleted locally "kept as changed on the
remote").  A lost answer does the same without a kill: the retry's ``If-Match``
meets the version the first attempt made (412).  The update is now recorded
before it is sent (``sent:<path>``, remotes/gdrive/uploads.py ``intend_update``).

A kill is the state it leaves: the remote's ``stat`` + ``upload`` ran (exactly
what the engine does), the engine's index write did not; then a new engine
starts on the same state db.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from syncd.db.statedb import StateDB
from syncd.mirror.facts import entry_of
from tests.chaos.targets import CONFLICT
from tests.fakes.drive_server import FakeDrive
from tests.mirror_support import Rig

from .conftest import md5


@pytest.fixture(params=["gdrive-file", "gdrive-full"])
def rig(request: pytest.FixtureRequest, tmp_path: Path, home: Path) -> Iterator[Rig]:
    with FakeDrive() as fake:
        r = Rig(tmp_path, request.param, fake)
        yield r
        r.close()
        assert fake.internal_errors == []
        assert fake.duplicates() == []


def land_update_then_die(rig: Rig, rel: str) -> None:
    """Drive accepts syncd's update of ``rel``; the process dies before the index write."""
    rec = rig.db.file("p", rel)
    assert rec is not None
    cur = rig.remote.stat(rel, entry_of(rec))
    assert cur is not None and cur.md5 == rec.md5
    rig.remote.upload(rel, rig.src / rel, cur)
    assert rig.target.read(rel) == (rig.src / rel).read_bytes()
    assert rig.db.file("p", rel) == rec  # the index never heard of it
    rig.close()
    rig.db = StateDB(rig.tmp / "state.db")  # a new process on the same state db
    rig.engine = rig.make_engine()


def conflicts(rig: Rig) -> list[str]:
    return [p for p in rig.target.live() if CONFLICT.search(p)]


@pytest.mark.parametrize("then", ["nothing", "edited again", "deleted"])
def test_an_update_landed_before_a_kill_is_ours_after_restart(rig: Rig, then: str) -> None:
    rig.write("src/utils/model10.json", '{"v": 1}\n')
    rig.write("keep.txt", "k\n")
    rig.sync()
    rig.write("src/utils/model10.json", '{"v": 2}\n')
    first_id = rig.target.ident("src/utils/model10.json")
    land_update_then_die(rig, "src/utils/model10.json")
    if then == "edited again":
        rig.write("src/utils/model10.json", '{"v": 3}\n')
    elif then == "deleted":
        (rig.src / "src/utils/model10.json").unlink()
    rig.sync()
    assert conflicts(rig) == []
    assert rig.engine.status().conflicts == 0
    if then == "deleted":
        assert "src/utils/model10.json" not in rig.target.live()  # trashed, not "kept"
        assert rig.db.file("p", "src/utils/model10.json") is None
    else:
        assert (
            rig.target.read("src/utils/model10.json")
            == (rig.src / "src/utils/model10.json").read_bytes()
        )
        assert rig.target.ident("src/utils/model10.json") == first_id  # updated in place
        rec = rig.db.file("p", "src/utils/model10.json")
        assert rec is not None and rec.md5 == md5(rig.src / "src/utils/model10.json")
    # What is left of the intent names only what the index now records (it is removed at
    # the file's next look, or by the trash).
    left = [json.loads(v) for v in rig.db.kv_items("p", "sent:src/utils/model10.json").values()]
    assert then != "deleted" or left == []
    assert all(i["md5"] == md5(rig.src / "src/utils/model10.json") for i in left)


def test_a_foreign_edit_after_syncds_landed_update_is_still_kept(rig: Rig) -> None:
    """The intent names syncd's md5 only: anyone else's bytes are never written over."""
    rig.write("notes/layer8.py", "x = 1\n")
    rig.sync()
    rig.write("notes/layer8.py", "x = 2\n")
    land_update_then_die(rig, "notes/layer8.py")
    rig.target.edit("notes/layer8.py", b"x = 99  # edited in Colab\n")
    rig.write("notes/layer8.py", "x = 3\n")
    rig.sync()
    assert rig.target.read("notes/layer8.py") == b"x = 3\n"
    [kept] = conflicts(rig)
    assert rig.target.read(kept) == b"x = 99  # edited in Colab\n"


def test_a_foreign_edit_after_a_landed_update_survives_a_local_delete(rig: Rig) -> None:
    rig.write("notes/layer8.py", "x = 1\n")
    rig.sync()
    rig.write("notes/layer8.py", "x = 2\n")
    land_update_then_die(rig, "notes/layer8.py")
    rig.target.edit("notes/layer8.py", b"x = 99  # edited in Colab\n")
    (rig.src / "notes/layer8.py").unlink()
    rig.sync()
    assert rig.target.read("notes/layer8.py") == b"x = 99  # edited in Colab\n"


def test_a_lost_answer_to_an_update_makes_no_conflict_copy(rig: Rig) -> None:
    """The update lands, its answer is lost; the retry's If-Match meets syncd's own version."""
    assert rig.fake is not None
    rig.write("cfg.yaml", "lr: 1\n")
    rig.sync()
    rig.write("cfg.yaml", "lr: 2\n")
    rig.fake.inject(lose_response=True, method="PUT", path_contains="/upload/", count=1)
    rig.sync()
    assert rig.fake.count(status=412) >= 1  # the retry did meet syncd's own landed version
    rig.write("cfg.yaml", "lr: 3\n")  # edited again before syncd looked at it again
    for _ in range(2):
        rig.sync()
    assert rig.target.read("cfg.yaml") == b"lr: 3\n"
    assert conflicts(rig) == []
    rec = rig.db.file("p", "cfg.yaml")
    assert rec is not None and rec.md5 == md5(rig.src / "cfg.yaml")

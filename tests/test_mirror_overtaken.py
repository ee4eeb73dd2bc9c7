"""Edits that land while a batch is being applied (mirror/overtaken.py), on every target.

The flaky ``test_edits_reach_drive`` (1 run in 12 on a loaded machine): train.py was
renamed to main.py, and main.py renamed on to models/main.py as soon as Drive showed
it — while the engine was still between the move and the plan of that batch.  The
plan found main.py gone and trashed it; the next batch uploaded models/main.py as a
new file (a new Drive id).  Here the runner takes its batches from a coalescer fed
by hand, and the user's second rename is made at the exact point of the race: right
after the remote confirmed the move (a wrapper around the real ``Remote.move``), or
right after the batch was taken (around the real ``Coalescer.take_ready``).  Nothing
of the engine is replaced; the wrappers only add what the user does, when.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from syncd.mirror.coalescer import Batch, Kind
from syncd.remotes.base import RemoteEntry
from tests.mirror_support import TARGETS, Rig, rig_on

from .conftest import md5


@pytest.fixture(params=TARGETS)
def rig(request: pytest.FixtureRequest, tmp_path: Path, home: Path) -> Iterator[Rig]:
    yield from rig_on(request.param, tmp_path)


def want(rig: Rig) -> dict[str, str]:
    out = {}
    for dirpath, _dirs, names in os.walk(rig.src):
        for name in names:
            out[str((Path(dirpath) / name).relative_to(rig.src))] = md5(Path(dirpath) / name)
    return out


def rename(rig: Rig, src: str, dst: str, *, event: bool = True) -> None:
    """The user's rename, and the watcher's report of it (``event=False``: not yet)."""
    os.rename(rig.src / src, rig.src / dst)
    if event:
        rig.engine.coalescer.move(src, dst, is_dir=(rig.src / dst).is_dir())


def after_remote_move(rig: Rig, to: str, then: Callable[[], None]) -> None:
    """Run ``then`` right after the remote confirmed the move to ``to`` (once)."""
    real = rig.remote.move

    def move(entry: RemoteEntry, new_path: str) -> RemoteEntry:
        moved = real(entry, new_path)
        if new_path == to:
            rig.remote.move = real  # type: ignore[method-assign]
            then()
        return moved

    rig.remote.move = move  # type: ignore[method-assign]


def after_take(rig: Rig, then: Callable[[], None]) -> None:
    """Run ``then`` right after the runner took its next batch (once)."""
    co = rig.engine.coalescer
    real = co.take_ready

    def take_ready(timeout: float) -> Batch:
        batch = real(timeout)
        if batch:
            co.take_ready = real  # type: ignore[method-assign]
            then()
        return batch

    co.take_ready = take_ready  # type: ignore[method-assign]


def start(rig: Rig) -> object:
    rig.write("train.py", "print('v1')\n")
    rig.write("models/net.py", "class Net: ...\n")
    rig.sync()
    rig.engine.coalescer.max_delay = 60.0  # a held path waits for its event, not the cap
    return rig.target.ident("train.py")


def test_renamed_again_right_after_its_move_stays_a_move(rig: Rig) -> None:
    ident = start(rig)
    after_remote_move(rig, "main.py", lambda: rename(rig, "main.py", "models/main.py"))
    rename(rig, "train.py", "main.py")
    rig.engine._turn()  # the move; the plan finds main.py gone: not trashed
    assert rig.target.trashed() == {}
    rig.engine._turn()  # the second move
    assert rig.target.ident("models/main.py") == ident
    assert rig.target.trashed() == {}
    assert rig.target.live() == want(rig)


def test_renamed_again_with_its_event_late_waits_for_it(rig: Rig) -> None:
    """The plan ran before the watcher reported the second rename: main.py is held (not
    trashed, and not taken as deleted) until its event says where it went."""
    ident = start(rig)
    after_remote_move(rig, "main.py", lambda: rename(rig, "main.py", "models/main.py", event=False))
    rename(rig, "train.py", "main.py")
    rig.engine._turn()
    rig.engine._turn()  # nothing ready: the held path waits for its event
    assert rig.target.trashed() == {}
    rig.engine.coalescer.move("main.py", "models/main.py", is_dir=False)  # the event arrives
    rig.engine._turn()
    assert rig.target.ident("models/main.py") == ident
    assert rig.target.trashed() == {}
    assert rig.target.live() == want(rig)


def test_renamed_again_before_its_move_was_made_is_one_move(rig: Rig) -> None:
    """The second rename landed between taking the batch and making its move: the move
    train.py → main.py cannot be made (main.py is gone); train.py is not trashed, and
    the next batch moves it straight to models/main.py."""
    ident = start(rig)
    after_take(rig, lambda: rename(rig, "main.py", "models/main.py"))
    rename(rig, "train.py", "main.py")
    rig.engine._turn()
    assert rig.target.trashed() == {}
    rig.engine._turn()
    assert rig.target.ident("models/main.py") == ident
    assert rig.target.trashed() == {}
    assert rig.target.live() == want(rig)


def test_folder_renamed_again_right_after_its_move_stays_a_move(rig: Rig) -> None:
    start(rig)
    ident = rig.target.ident("models/net.py")
    after_remote_move(rig, "nets", lambda: rename(rig, "nets", "lib"))
    rename(rig, "models", "nets")
    rig.engine._turn()
    assert rig.target.trashed() == {}
    rig.engine._turn()
    assert rig.target.ident("lib/net.py") == ident
    assert rig.target.trashed() == {}
    assert rig.target.live() == want(rig)


def test_folder_renamed_again_before_its_move_was_made_is_one_move(rig: Rig) -> None:
    start(rig)
    ident = rig.target.ident("models/net.py")
    after_take(rig, lambda: rename(rig, "nets", "lib"))
    rename(rig, "models", "nets")
    rig.engine._turn()
    assert rig.target.trashed() == {}
    rig.engine._turn()
    assert rig.target.ident("lib/net.py") == ident
    assert rig.target.trashed() == {}
    assert rig.target.live() == want(rig)


def test_moved_into_a_folder_renamed_right_after_stays_a_move(rig: Rig) -> None:
    """The next step of the same test: main.py → models/main.py, and models → nets while
    that move is answered (the event is for the folder, not for the file)."""
    start(rig)
    rename(rig, "train.py", "main.py")
    rig.engine._turn()
    ident = rig.target.ident("main.py")
    after_remote_move(rig, "models/main.py", lambda: rename(rig, "models", "nets"))
    rename(rig, "main.py", "models/main.py")
    rig.engine._turn()
    assert rig.target.trashed() == {}
    rig.engine._turn()
    assert rig.target.ident("nets/main.py") == ident
    assert rig.target.trashed() == {}
    assert rig.target.live() == want(rig)


def test_deleted_while_its_edit_was_applied_is_still_trashed(rig: Rig) -> None:
    """A held path costs one batch, not the deletion: the next batch trashes it."""
    start(rig)
    rig.write("train.py", "print('v2')\n")
    rig.engine.coalescer.add("train.py", Kind.MODIFIED)

    def delete() -> None:
        (rig.src / "train.py").unlink()
        rig.engine.coalescer.add("train.py", Kind.DELETED)

    after_take(rig, delete)
    rig.engine._turn()
    rig.engine._turn()
    assert list(rig.target.trashed()) == ["train.py"]
    assert rig.target.live() == want(rig)

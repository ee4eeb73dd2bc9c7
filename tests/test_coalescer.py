"""The combine table (one test per row) and the coalescer's quiet window and cap."""

from __future__ import annotations

import pytest

from syncd.mirror.coalescer import OVERFLOW_PATHS, Coalescer, Kind, combine

C, M, D = Kind.CREATED, Kind.MODIFIED, Kind.DELETED


@pytest.mark.parametrize(
    ("prev", "new", "expected"),
    [
        (None, C, C),
        (None, M, M),
        (None, D, D),
        (C, C, C),
        (C, M, C),  # create then modify = create
        (C, D, D),  # create then delete: still dirty (a temp file renamed over a mirrored one)
        (M, C, M),
        (M, M, M),
        (M, D, D),
        (D, C, M),  # delete then create of a file = modify
        (D, M, M),
        (D, D, D),
    ],
)
def test_combine_table_row(prev: Kind | None, new: Kind, expected: Kind) -> None:
    assert combine(prev, new) is expected


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def test_path_is_ready_only_after_the_quiet_window(clock: Clock) -> None:
    co = Coalescer(delay=1.0, max_delay=10.0, clock=clock)
    co.add("a.py", M)
    clock.now += 0.5
    assert not co.take_ready(timeout=0)
    clock.now += 0.6
    batch = co.take_ready(timeout=0)
    assert list(batch.dirty) == ["a.py"]
    assert len(co) == 0


def test_a_burst_of_edits_leaves_as_one_batch(clock: Clock) -> None:
    """The quiet window is the project's: a path edited first waits for the burst's last edit
    (a save-all is one batch and one summary line, not two that split it by a millisecond)."""
    co = Coalescer(delay=1.0, max_delay=10.0, clock=clock)
    co.add("first.py", C)
    clock.now += 0.6
    co.add("second.py", M)
    clock.now += 0.6  # first.py quiet for 1.2 s, but the project only for 0.6 s
    assert not co.take_ready(timeout=0)
    clock.now += 0.5
    assert sorted(co.take_ready(timeout=0).dirty) == ["first.py", "second.py"]


def test_each_event_restarts_the_quiet_window(clock: Clock) -> None:
    co = Coalescer(delay=1.0, max_delay=10.0, clock=clock)
    for _ in range(5):
        co.add("a.py", M)
        clock.now += 0.9
    assert not co.take_ready(timeout=0)
    clock.now += 0.2
    assert "a.py" in co.take_ready(timeout=0).dirty


def test_a_file_that_never_settles_goes_at_max_delay(clock: Clock) -> None:
    co = Coalescer(delay=1.0, max_delay=3.0, clock=clock)
    taken = None
    for _ in range(40):
        co.add("log.txt", M)
        clock.now += 0.1
        batch = co.take_ready(timeout=0)
        if batch:
            taken = clock.now
            break
    assert taken is not None and taken - 1000.0 == pytest.approx(3.0, abs=0.11)


def test_create_then_delete_leaves_the_path_dirty(clock: Clock) -> None:
    """The engine finds nothing to do if it never reached the remote; if it did, a trash."""
    co = Coalescer(delay=0.0, max_delay=1.0, clock=clock)
    co.add("tmp.txt", C)
    co.add("tmp.txt", D)
    assert co.take_ready(timeout=0).dirty["tmp.txt"].kind is D


def test_move_of_a_known_file_is_kept_as_a_move(clock: Clock) -> None:
    co = Coalescer(delay=0.0, max_delay=1.0, clock=clock)
    co.move("a.py", "b.py", is_dir=False)
    batch = co.take_ready(timeout=0)
    assert batch.moves == [("a.py", "b.py", False)]
    assert batch.dirty["b.py"].kind is M
    assert batch.dirty["a.py"].kind is D  # the source stays dirty: the engine looks at it too


def test_move_then_delete_keeps_the_source_dirty(clock: Clock) -> None:
    """`mv a.txt a2.txt; rm a2.txt` in one window: a.txt must still be trashed (issue #8)."""
    co = Coalescer(delay=0.0, max_delay=1.0, clock=clock)
    co.move("a.txt", "a2.txt", is_dir=False)
    co.add("a2.txt", D)
    batch = co.take_ready(timeout=0)
    assert {p: e.kind for p, e in batch.dirty.items()} == {"a.txt": D, "a2.txt": D}
    assert batch.moves == []


def test_editor_save_then_delete_keeps_the_file_dirty(clock: Clock) -> None:
    """A temp file renamed over b.txt, then `rm b.txt`: b.txt is dirty as deleted (issue #8)."""
    co = Coalescer(delay=0.0, max_delay=1.0, clock=clock)
    co.add(".b.txt.tmp", C)
    co.move(".b.txt.tmp", "b.txt", is_dir=False)
    co.add("b.txt", D)
    batch = co.take_ready(timeout=0)
    assert batch.dirty["b.txt"].kind is D
    assert batch.dirty[".b.txt.tmp"].kind is D


def test_move_of_a_new_file_is_just_a_create(clock: Clock) -> None:
    co = Coalescer(delay=0.0, max_delay=1.0, clock=clock)
    co.add("draft.tmp", C)
    co.move("draft.tmp", "train.py", is_dir=False)
    batch = co.take_ready(timeout=0)
    assert batch.moves == []
    assert batch.dirty["train.py"].kind is C


def test_swap_through_a_temp_name_dirties_both_files(clock: Clock) -> None:
    co = Coalescer(delay=0.0, max_delay=1.0, clock=clock)
    co.move("a.txt", "t", is_dir=False)
    co.move("b.txt", "a.txt", is_dir=False)
    co.move("t", "b.txt", is_dir=False)
    batch = co.take_ready(timeout=0)
    assert {"a.txt", "b.txt", "t"} <= set(batch.dirty)


def test_chained_moves_collapse_to_one(clock: Clock) -> None:
    co = Coalescer(delay=0.0, max_delay=1.0, clock=clock)
    co.move("a.py", "b.py", is_dir=False)
    co.move("b.py", "c.py", is_dir=False)
    assert co.take_ready(timeout=0).moves == [("a.py", "c.py", False)]


def test_folder_move_carries_pending_children(clock: Clock) -> None:
    co = Coalescer(delay=0.0, max_delay=1.0, clock=clock)
    co.add("src/x.py", M)
    co.move("src", "lib", is_dir=True)
    batch = co.take_ready(timeout=0)
    assert ("src", "lib", True) in batch.moves
    assert "lib/x.py" in batch.dirty and "src/x.py" not in batch.dirty
    assert batch.dirty["src"].kind is D and batch.dirty["src"].is_dir


def test_too_many_pending_paths_fall_back_to_a_scan(clock: Clock) -> None:
    co = Coalescer(delay=0.0, max_delay=1.0, clock=clock)
    for i in range(OVERFLOW_PATHS + 1):
        co.add(f"f{i}", C)
    batch = co.take_ready(timeout=0)
    assert batch.rescan
    assert len(co) == 0


def test_requeue_makes_a_path_pending_again(clock: Clock) -> None:
    co = Coalescer(delay=1.0, max_delay=5.0, clock=clock)
    co.requeue(["a.py"])
    assert len(co) == 1
    clock.now += 1.0
    assert "a.py" in co.take_ready(timeout=0).dirty


def test_deletions_wait_until_the_last_one_settles(clock: Clock) -> None:
    co = Coalescer(delay=1.0, max_delay=10.0, clock=clock)
    co.add("a", D)
    clock.now += 0.8
    co.add("b", D)
    co.add("edit.py", M)
    clock.now += 0.5  # "a" is quiet, "b" is not yet
    assert not co.take_ready(timeout=0)
    clock.now += 0.6
    assert set(co.take_ready(timeout=0).dirty) == {"a", "b", "edit.py"}


def test_put_back_keeps_moves_and_timing(clock: Clock) -> None:
    co = Coalescer(delay=0.0, max_delay=1.0, clock=clock)
    co.move("a.py", "b.py", is_dir=False)
    batch = co.take_ready(timeout=0)
    co.put_back(batch)
    again = co.take_ready(timeout=0)
    assert again.moves == [("a.py", "b.py", False)]

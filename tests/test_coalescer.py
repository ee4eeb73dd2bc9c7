"""The combine table (one test per row) and the coalescer's quiet window and cap."""

from __future__ import annotations

import time

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


# --- carry_on: a path the engine found gone while its batch ran (mirror/overtaken.py) ----


def test_a_path_found_gone_waits_for_its_event_and_its_move_starts_at_the_index_path(
    clock: Clock,
) -> None:
    """The engine moved train.py → main.py, then found main.py gone (renamed again, the
    event not here yet): main.py is held until the event, which makes one move from it."""
    co = Coalescer(delay=0.1, max_delay=5.0, clock=clock)
    co.carry_on("main.py", "main.py", is_dir=False)
    clock.now += 1.0  # long past the quiet window: still held, the event is on its way
    assert not co.take_ready(timeout=0)
    co.move("main.py", "models/main.py", is_dir=False)
    clock.now += 0.2
    batch = co.take_ready(timeout=0)
    assert batch.moves == [("main.py", "models/main.py", False)]
    assert batch.dirty["main.py"].kind is D


def test_a_move_not_made_hands_its_origin_to_the_next_move_of_its_destination(
    clock: Clock,
) -> None:
    """train.py → main.py could not be made (main.py already moved on to models/main.py,
    whose event came first): the next batch moves train.py → models/main.py."""
    co = Coalescer(delay=0.1, max_delay=5.0, clock=clock)
    co.move("main.py", "models/main.py", is_dir=False)
    co.carry_on("train.py", "main.py", is_dir=False)
    clock.now += 0.2
    batch = co.take_ready(timeout=0)
    assert batch.moves == [("train.py", "models/main.py", False)]
    assert {p: e.kind for p, e in batch.dirty.items()} == {
        "train.py": D,
        "main.py": D,
        "models/main.py": M,
    }


def test_a_move_not_made_whose_event_comes_later_still_starts_at_the_origin(
    clock: Clock,
) -> None:
    co = Coalescer(delay=0.1, max_delay=5.0, clock=clock)
    co.carry_on("train.py", "main.py", is_dir=False)
    clock.now += 1.0
    assert not co.take_ready(timeout=0)  # train.py is not trashed before main.py's event
    co.move("main.py", "models/main.py", is_dir=False)
    clock.now += 0.2
    assert co.take_ready(timeout=0).moves == [("train.py", "models/main.py", False)]


def test_a_folder_move_not_made_relinks_moves_from_below_it(clock: Clock) -> None:
    co = Coalescer(delay=0.1, max_delay=5.0, clock=clock)
    co.move("nets/a.py", "a.py", is_dir=False)  # moved out of the folder the batch moved
    co.carry_on("models", "nets", is_dir=True)
    clock.now += 0.2
    assert ("models/a.py", "a.py", False) in co.take_ready(timeout=0).moves


def test_an_event_for_a_folder_above_releases_the_held_path(clock: Clock) -> None:
    co = Coalescer(delay=0.1, max_delay=5.0, clock=clock)
    co.carry_on("models/main.py", "models/main.py", is_dir=False)
    co.move("models", "nets", is_dir=True)
    clock.now += 0.2
    batch = co.take_ready(timeout=0)
    assert ("models", "nets", True) in batch.moves
    assert "nets/main.py" in batch.dirty and "models/main.py" not in batch.dirty


def test_a_held_path_whose_event_never_comes_goes_at_max_delay_with_the_deletions(
    clock: Clock,
) -> None:
    """No event (it was lost): nothing waits forever; the deletion proceeds at the cap."""
    co = Coalescer(delay=0.1, max_delay=3.0, clock=clock)
    co.carry_on("train.py", "main.py", is_dir=False)
    co.add("old.txt", D)
    clock.now += 2.9
    assert not co.take_ready(timeout=0)  # deletions leave together: they wait as well
    clock.now += 0.2
    batch = co.take_ready(timeout=0)
    assert {p: e.kind for p, e in batch.dirty.items()} == {
        "train.py": D,
        "main.py": D,
        "old.txt": D,
    }
    assert len(co) == 0


def test_edits_elsewhere_leave_while_a_path_is_held(clock: Clock) -> None:
    co = Coalescer(delay=0.1, max_delay=5.0, clock=clock)
    co.carry_on("main.py", "main.py", is_dir=False)
    co.add("other.py", M)
    clock.now += 0.2
    assert list(co.take_ready(timeout=0).dirty) == ["other.py"]


def test_the_event_arrived_first_then_nothing_is_held(clock: Clock) -> None:
    co = Coalescer(delay=0.1, max_delay=5.0, clock=clock)
    co.move("main.py", "models/main.py", is_dir=False)
    co.carry_on("main.py", "main.py", is_dir=False)
    clock.now += 0.2
    assert co.take_ready(timeout=0).moves == [("main.py", "models/main.py", False)]


def test_waiting_on_a_held_path_sleeps_until_its_cap_instead_of_spinning() -> None:
    """Only held paths and deletions pending: take_ready sleeps (a handful of clock reads),
    where a due time in the past would make it spin until its timeout."""
    reads = 0

    def clock() -> float:
        nonlocal reads
        reads += 1
        return time.monotonic()

    co = Coalescer(delay=0.01, max_delay=5.0, clock=clock)
    co.add("gone.txt", D)
    co.carry_on("main.py", "main.py", is_dir=False)
    time.sleep(0.02)  # the quiet window is over: only the cap can release them
    reads = 0
    assert not co.take_ready(timeout=0.2)
    assert reads < 10

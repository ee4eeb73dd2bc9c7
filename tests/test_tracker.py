"""The state tracker: one line per change (with its duration), waits reminded every 10 minutes,
each file error logged once and gone from status once the file is fixed or gone."""

from __future__ import annotations

import logging

import pytest

from syncd.mirror.model import ProjectState
from syncd.mirror.tracker import REMIND_S, StateTracker

S = ProjectState


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def rig(caplog: pytest.LogCaptureFixture) -> tuple[StateTracker, Clock, list]:
    caplog.set_level(logging.DEBUG, logger="test.tracker")
    clock, persisted = Clock(), []
    tracker = StateTracker(
        "p",
        logging.getLogger("test.tracker"),
        lambda s, e: persisted.append((s, e)),
        clock=clock,
    )
    return tracker, clock, persisted


def lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "test.tracker"]


def test_each_change_is_logged_once_with_how_long_the_last_state_lasted(rig, caplog) -> None:
    tracker, clock, persisted = rig
    tracker.set(S.SCANNING)
    clock.now += 2.5
    assert tracker.set(S.IDLE)
    assert not tracker.set(S.IDLE)  # the same state again is not news
    assert lines(caplog) == [
        "p: starting → scanning (after 0.0 s starting)",
        "p: scanning → idle (after 2.5 s scanning)",
    ]
    assert persisted == [(S.SCANNING, None), (S.IDLE, None)]


def test_a_wait_for_credentials_is_logged_once_then_every_ten_minutes(rig, caplog) -> None:
    tracker, clock, persisted = rig
    why = "Drive credentials are missing (run: syncd auth drive)"
    tracker.set(S.AUTH_REQUIRED, why)
    for _ in range(60):  # a retry every 10 s for 10 minutes
        clock.now += 10
        tracker.set(S.AUTH_REQUIRED, why)
        tracker.remind(waiting=7)
    said = lines(caplog)
    assert len(said) == 2, said
    assert said[1].startswith("p: still auth_required after 10 min") and "7 local" in said[1]
    assert persisted == [(S.AUTH_REQUIRED, why)]
    assert tracker.snapshot().last_error == why


def test_file_errors_are_logged_once_and_leave_when_fixed(rig, caplog) -> None:
    tracker, _, _ = rig
    for _ in range(3):
        tracker.file_error("a.txt", "cannot read it: Permission denied")
    tracker.file_error("b.txt", "the target rejected the name")
    assert len(lines(caplog)) == 2
    snap = tracker.snapshot()
    assert set(snap.file_errors) == {"a.txt", "b.txt"}
    assert snap.last_error == "b.txt: the target rejected the name"
    tracker.file_ok("b.txt")
    tracker.keep_errors_of([])  # a full walk found nothing wrong with a.txt any more
    snap = tracker.snapshot()
    assert snap.file_errors == {} and snap.last_error is None
    tracker.file_error("a.txt", "cannot read it: Permission denied")  # new trouble: said again
    assert len(lines(caplog)) == 3


def test_a_global_error_clears_when_the_project_recovers(rig) -> None:
    tracker, _, _ = rig
    tracker.set(S.OFFLINE, "Drive did not answer")
    assert tracker.snapshot().last_error == "Drive did not answer"
    tracker.set(S.SCANNING)
    assert tracker.snapshot().last_error is None


def test_remind_says_nothing_outside_a_waiting_state(rig, caplog) -> None:
    tracker, clock, _ = rig
    tracker.set(S.IDLE)
    clock.now += REMIND_S * 3
    tracker.remind(waiting=1)
    assert len(lines(caplog)) == 1

"""syncd.retry: the one backoff formula and the two named retry levels."""

from __future__ import annotations

import random

import pytest

from syncd import retry
from syncd.errors import FileError, TransientError
from syncd.retry import Backoff, RetryPolicy


def ceiling(backoff: Backoff, attempt: int, monkeypatch: pytest.MonkeyPatch) -> float:
    """The longest wait the formula can give (random.uniform at its upper end)."""
    monkeypatch.setattr(random, "uniform", lambda low, high: high)
    return backoff.delay(attempt)


def test_full_jitter_stays_between_the_floor_and_the_exponential_ceiling() -> None:
    b = Backoff(base=0.25, cap=8.0, floor=0.5)
    for attempt in range(8):
        top = 0.5 + min(8.0, 0.25 * 2**attempt)
        waits = [b.delay(attempt) for _ in range(200)]
        assert all(0.5 <= w <= top for w in waits)
        assert max(waits) - min(waits) > top / 10  # jittered, not a constant


@pytest.mark.parametrize(
    ("backoff", "ceilings"),
    [
        # Today's numbers, named in one place (the values each level had before).
        (retry.DRIVE_REQUESTS.backoff, [0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 8.0]),
        (retry.ENGINE_OPERATIONS.backoff, [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0]),
        (retry.ENGINE_RECOVERY_REMOTE, [1.5, 2.5, 4.5, 8.5, 16.5, 30.5, 30.5]),
        (retry.ENGINE_RECOVERY_UNEXPECTED, [3.0, 5.0, 9.0, 17.0, 33.0, 61.0, 61.0]),
        (retry.kaggle_requests(5, 1.0).backoff, [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0]),
    ],
)
def test_each_level_doubles_up_to_its_cap(
    backoff: Backoff, ceilings: list[float], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert [ceiling(backoff, n, monkeypatch) for n in range(len(ceilings))] == ceilings


def test_the_levels_are_named_and_their_attempts_multiply_to_a_known_worst_case() -> None:
    assert retry.DRIVE_REQUESTS.level == retry.REQUEST
    assert retry.kaggle_requests(5, 1.0).level == retry.REQUEST
    assert retry.ENGINE_OPERATIONS.level == retry.OPERATION
    worst = retry.ENGINE_OPERATIONS.attempts * retry.DRIVE_REQUESTS.attempts
    assert (retry.ENGINE_OPERATIONS.attempts, retry.DRIVE_REQUESTS.attempts, worst) == (3, 5, 15)
    assert retry.kaggle_requests(0, 1.0).attempts == 1  # at least one try, whatever the env says


def policy(attempts: int) -> tuple[RetryPolicy, list[float]]:
    slept: list[float] = []
    return RetryPolicy(retry.OPERATION, attempts, Backoff(base=1.0, cap=4.0)), slept


def test_run_retries_what_is_retriable_until_it_works() -> None:
    p, slept = policy(3)
    calls = []

    def op() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise TransientError("flaky")
        return "done"

    result = p.run(op, retry_if=lambda e: isinstance(e, TransientError), sleep=slept.append)
    assert result == "done" and len(calls) == 3 and len(slept) == 2
    assert 0 <= slept[0] <= 1.0 and 0 <= slept[1] <= 2.0


def test_run_raises_the_last_error_once_the_attempts_are_used_up() -> None:
    p, slept = policy(3)
    calls = []

    def op() -> None:
        calls.append(1)
        raise TransientError(f"try {len(calls)}")

    with pytest.raises(TransientError, match="try 3"):
        p.run(op, retry_if=lambda e: isinstance(e, TransientError), sleep=slept.append)
    assert len(calls) == 3 and len(slept) == 2


def test_run_does_not_retry_other_errors_or_after_give_up() -> None:
    p, slept = policy(5)
    calls = []

    def bad_file() -> None:
        calls.append(1)
        raise FileError("a.txt", "unreadable")

    with pytest.raises(FileError):
        p.run(bad_file, retry_if=lambda e: isinstance(e, TransientError), sleep=slept.append)
    assert len(calls) == 1 and not slept

    def offline() -> None:
        calls.append(1)
        raise TransientError("offline")

    calls.clear()
    with pytest.raises(TransientError):
        p.run(offline, retry_if=lambda e: True, give_up=lambda: len(calls) >= 2, sleep=slept.append)
    assert len(calls) == 2

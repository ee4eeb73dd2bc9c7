"""The byte counters ``syncd snapshot`` shows on a terminal (tqdm, imported only when shown)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager


@contextmanager
def byte_progress(
    enabled: bool, label: str, total: int | None
) -> Iterator[Callable[[int], None] | None]:
    """A tqdm byte counter on stderr when asked (a TTY), else nothing."""
    if not enabled:
        yield None
        return
    from tqdm import tqdm

    with tqdm(
        total=total, desc=label, unit="B", unit_scale=True, unit_divisor=1024, file=sys.stderr
    ) as bar:

        def tick(n: int) -> None:
            bar.update(n)

        yield tick

"""Bringing a run's outputs and log home, into ``<project>/<outputs>/<run-id>/``.

Every page of the listing is read; each file is streamed to a hidden partial file and
renamed into place (``remotes.kaggle.downloads``: never whole in memory, resumed after a
failure, confined to the run folder: ``../``, absolute names and paths through a
symlink are refused). A file already fetched (recorded in ``train_outputs`` and still
there with its size) is skipped, so a restart or a second attempt fetches each file
once. Refused names are recorded with the reason and reported; they never stop the
others. The log is written last, as ``syncd-kernel.log`` (the text the kernel printed,
in order), through a temp file as well.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..errors import SyncdError
from ..remotes.kaggle.downloads import UnsafeOutputName
from ..remotes.kaggle.kernels import KaggleKernels, LogEntry
from .model import LOG_NAME, RUN_FILE, RunRecord
from .store import RunStore

log = logging.getLogger("syncd.train")


@dataclass(frozen=True)
class Fetched:
    files: int  # outputs now home (fetched before or now)
    bytes: int
    new: int  # fetched by this call
    refused: tuple[str, ...]  # "name: reason"
    summary: dict[str, object] | None  # syncd-run.json, when the run left one
    log: tuple[LogEntry, ...]  # the whole log


def write_log(folder: Path, entries: tuple[LogEntry, ...] | list[LogEntry]) -> Path:
    """The log as the kernel printed it (both streams, in order), via a temp file."""
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".syncd-tmp-log-", dir=folder)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        for entry in entries:
            out.write(entry.data)
    target = folder / LOG_NAME
    os.replace(tmp, target)
    return target


def _summary(folder: Path) -> dict[str, object] | None:
    try:
        data = json.loads((folder / RUN_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def fetch_outputs(kernels: KaggleKernels, record: RunRecord, store: RunStore) -> Fetched:
    """Every output of the run's version and its log, into the run folder. A passing failure
    (Kaggle unreachable mid-way) raises; what was fetched stays, and is skipped next time."""
    assert record.version is not None
    folder = Path(record.folder)
    folder.mkdir(parents=True, exist_ok=True)
    listing = kernels.outputs(record.kernel, record.version)
    done = store.fetched(record.seq)
    refused: list[str] = []
    new = 0
    for output in listing.files:
        size = done.get(output.name)
        if size is not None and _still_there(folder, output.name, size):
            continue
        try:
            got = kernels.download(output, folder)
        except UnsafeOutputName as exc:
            refused.append(f"{output.name}: {exc.message}")
            log.warning("%s %s: %s", record.project, record.id, exc.message)
            continue
        store.mark_fetched(record.seq, output.name, got.size)
        done[output.name] = got.size
        new += 1
    write_log(folder, listing.log)
    if new:
        log.info("%s %s: fetched %d output file(s) into %s", record.project, record.id, new, folder)
    return Fetched(
        len(done), sum(done.values()), new, tuple(refused), _summary(folder), listing.log
    )


def _still_there(folder: Path, name: str, size: int) -> bool:
    try:
        return (folder / name).lstat().st_size == size
    except (OSError, ValueError):
        return False


def save_live_log(kernels: KaggleKernels, record: RunRecord, seconds: float = 5.0) -> bool:
    """The log so far, read from the live stream (for a run about to be stopped)."""
    if record.version is None:
        return False
    try:
        live = kernels.live_log(record.kernel, record.version, seconds)
    except SyncdError as exc:
        log.warning("%s: could not read the log of %s: %s", record.project, record.id, exc)
        return False
    if live.entries:
        write_log(Path(record.folder), live.entries)
    return bool(live.entries)

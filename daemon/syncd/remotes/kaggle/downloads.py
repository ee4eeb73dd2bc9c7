"""Fetching one kernel output file into a run folder: streamed, resumable, confined.

Output URLs are signed (no credentials are sent to them). The body goes in 1 MiB chunks
to a hidden partial file beside the target, never whole into memory (the CLI once read
outputs whole: kaggle-cli #830); a partial left by a failure is resumed with a ``Range``
request; the partial becomes the file by an atomic rename once its size matches.

The name comes from Kaggle's listing, i.e. from whatever the kernel wrote, so it is not
trusted: absolute names, ``..`` and empty components are refused, and every folder on the
way is opened with ``O_NOFOLLOW`` relative to the one before, so a symlink inside the run
folder can never lead a write outside it.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import requests

from ...retry import kaggle_requests
from .rules import (
    KaggleError,
    KaggleUnavailable,
    backoff,
    http_timeout,
    max_attempts,
    reject_html,
    retriable,
    retry_after,
    short,
)

CHUNK = 1 << 20
PARTIAL_PREFIX = ".syncd-tmp-"  # hidden, and skipped by mirrors and snapshots


class UnsafeOutputName(KaggleError):
    title = "Kaggle output refused"


@dataclass(frozen=True)
class Downloaded:
    path: Path
    size: int
    resumed_from: int  # bytes that were already there from an earlier attempt


def safe_parts(name: str) -> list[str]:
    """The components of an output name that stays inside its folder, or UnsafeOutputName."""
    if not name or "\x00" in name or "\\" in name or name.startswith("/"):
        raise UnsafeOutputName(f"refused the output name {name!r}: not a relative path")
    parts = PurePosixPath(name).parts
    if any(p in ("", ".", "..") for p in name.split("/")) or not parts:
        raise UnsafeOutputName(f"refused the output name {name!r}: it would leave the run folder")
    return list(parts)


def _open_dir(parent_fd: int, name: str, create: bool) -> int:
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
    try:
        return os.open(name, flags, dir_fd=parent_fd)
    except FileNotFoundError:
        if not create:
            raise
    os.mkdir(name, 0o755, dir_fd=parent_fd)
    return os.open(name, flags, dir_fd=parent_fd)


def _folder_fd(dest: Path, parts: list[str]) -> int:
    """An fd of the folder that will hold the file, reached without following symlinks."""
    fd = os.open(dest, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for part in parts:
            try:
                child = _open_dir(fd, part, create=True)
            except (NotADirectoryError, OSError) as exc:
                raise UnsafeOutputName(
                    f"refused the output {'/'.join(parts)}: {part} is a symlink or a file "
                    f"in {dest}, not a folder ({exc.strerror or exc})"
                ) from None
            os.close(fd)
            fd = child
        return fd
    except BaseException:
        os.close(fd)
        raise


def _passing(exc: BaseException) -> bool:
    """Worth another attempt: throttling, 5xx, HTML pages, a cut or slow connection."""
    if isinstance(exc, KaggleUnavailable | requests.exceptions.ChunkedEncodingError):
        return True
    return retriable(exc)


class OutputDownloader:
    """Downloads with syncd's deadline and retries; ``sleep`` may be interrupted."""

    def __init__(self, sleep: Callable[[float], None] | None = None) -> None:
        self._sleep = sleep or time.sleep
        self._local = threading.local()

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        return session

    def fetch(self, url: str, name: str, dest: Path) -> Downloaded:
        """``url`` into ``dest/name``; retried and resumed on passing failures."""
        parts = safe_parts(name)
        folder = _folder_fd(dest, parts[:-1])
        partial = PARTIAL_PREFIX + hashlib.sha1(parts[-1].encode()).hexdigest()[:16]
        try:
            limit = max_attempts()
            for attempt in range(1, limit + 1):
                try:
                    size, resumed = self._once(url, name, folder, partial)
                    os.replace(partial, parts[-1], src_dir_fd=folder, dst_dir_fd=folder)
                    return Downloaded(dest.joinpath(*parts), size, resumed)
                except (requests.RequestException, KaggleUnavailable) as exc:
                    if not _passing(exc):
                        raise KaggleError(
                            f"Kaggle refused the output {name}: {short(exc)}"
                        ) from None
                    if attempt == limit:
                        raise KaggleUnavailable(
                            f"could not fetch the output {name} ({limit} attempts): {short(exc)}",
                            "syncd resumes it at the next poll",
                        ) from None
                    wait = retry_after(exc)
                    if wait is None:
                        wait = kaggle_requests(limit, backoff()).delay(attempt - 1)
                    self._sleep(wait)
            raise AssertionError("unreachable")
        finally:
            os.close(folder)

    def _once(self, url: str, name: str, folder: int, partial: str) -> tuple[int, int]:
        """One GET into the partial file: (its size now, bytes it already had)."""
        try:
            have = os.stat(partial, dir_fd=folder, follow_symlinks=False).st_size
        except FileNotFoundError:
            have = 0
        headers = {"Range": f"bytes={have}-"} if have else {}
        timeout = (10, http_timeout())
        with self._session().get(url, headers=headers, stream=True, timeout=timeout) as response:
            if response.status_code == 416:  # the partial does not fit the file: start over
                os.unlink(partial, dir_fd=folder)
                raise KaggleUnavailable(f"the partial download of {name} did not fit")
            if response.status_code >= 400 or "text/html" in response.headers.get(
                "Content-Type", ""
            ):
                reject_html(response)
                response.raise_for_status()
            resumed = have if response.status_code == 206 else 0
            length = response.headers.get("Content-Length", "")
            total = resumed + int(length) if length.isdigit() else None
            flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW
            flags |= os.O_APPEND if resumed else os.O_TRUNC
            with os.fdopen(os.open(partial, flags, 0o644, dir_fd=folder), "wb") as out:
                for chunk in response.iter_content(CHUNK):
                    out.write(chunk)
            size = os.stat(partial, dir_fd=folder, follow_symlinks=False).st_size
        if total is not None and size != total:
            raise KaggleUnavailable(f"the download of {name} stopped at {size} of {total} bytes")
        return size, resumed

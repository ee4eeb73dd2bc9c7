"""What an upload sends: a small file's bytes in one request, or a big file in chunks.

Both are googleapiclient ``MediaUpload`` objects.  Neither keeps a stream
(``has_stream()`` is False), so a retried request or chunk re-reads fresh
bytes instead of a drained stream.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from googleapiclient.http import MediaUpload

MULTIPART_MAX = 5 * 1024 * 1024  # up to here one request; above, resumable chunks
CHUNK = 8 * 1024 * 1024  # a multiple of 256 KiB, as resumable uploads require


class SourceChanged(Exception):
    """The local file changed while it was being sent; the upload was not committed."""


class BytesMedia(MediaUpload):  # type: ignore[misc]  # googleapiclient is untyped
    """A file's content read into memory (≤ MULTIPART_MAX): sent in one multipart request."""

    def __init__(self, data: bytes, mimetype: str) -> None:
        self._data, self._mimetype = data, mimetype

    def chunksize(self) -> int:
        return len(self._data)

    def mimetype(self) -> str:
        return self._mimetype

    def size(self) -> int:
        return len(self._data)

    def resumable(self) -> bool:
        return False

    def getbytes(self, begin: int, length: int) -> bytes:
        return self._data[begin : begin + length]

    def has_stream(self) -> bool:
        return False


class FileChunks(MediaUpload):  # type: ignore[misc]  # googleapiclient is untyped
    """An open file sent in resumable chunks, read with ``pread`` (no shared file offset).

    ``has_stream()`` is False so every (re)sent chunk is a fresh ``bytes`` read.
    Before the final chunk, the one that commits the upload, ``verify_final``
    runs: if the file changed since it was hashed it raises ``SourceChanged``
    and nothing is committed.
    """

    def __init__(self, fd: int, size: int, mimetype: str, verify_final: Callable[[], None]) -> None:
        self._fd, self._size, self._mimetype = fd, size, mimetype
        self._verify_final = verify_final

    def chunksize(self) -> int:
        return CHUNK

    def mimetype(self) -> str:
        return self._mimetype

    def size(self) -> int:
        return self._size

    def resumable(self) -> bool:
        return True

    def getbytes(self, begin: int, length: int) -> bytes:
        if begin + length >= self._size:
            self._verify_final()
        return os.pread(self._fd, min(length, self._size - begin), begin)

    def has_stream(self) -> bool:
        return False

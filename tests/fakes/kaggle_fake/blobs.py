"""Blob uploads (GCS-style resumable PUTs) and file downloads (signed URLs, no auth).

* `blobs.BlobApiService/StartBlobUpload {type, name, contentLength, ...}` answers
  `{token, createUrl}`; the client PUTs the bytes to `createUrl`, resuming with a
  `Content-Range: bytes */N` probe that answers 308 with the `Range` stored so far
  (kaggle_api_extended.py `upload_complete` / `_get_bytes_already_uploaded`). A 404
  means the session expired. Blob tokens stay valid after use, because the client
  resends tokens from its resume state.
* Downloads (dataset files, kernel outputs) need no auth, like signed GCS URLs, carry
  `Last-Modified` (the client compares it with local mtimes) and honour `Range` /
  `If-Range` with a 206 (the client resumes downloads that way, `download_file`).
"""

from __future__ import annotations

import io
import re
import secrets
import threading
import zipfile
from dataclasses import dataclass, field
from email.utils import formatdate
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .model import ApiError, Dataset, FileBody, Reply, json_reply


@dataclass
class Blob:
    token: str
    name: str
    size: int
    data: bytearray = field(default_factory=bytearray)


class Blobs:
    _lock: threading.RLock
    _blobs: dict[str, Blob]  # by token and by upload id
    _datasets: dict[str, Dataset]
    url: str

    def _rpc_StartBlobUpload(self, user: str, req: dict[str, Any]) -> dict[str, Any]:
        if not req.get("name"):
            raise ApiError(400, "A blob name is required")
        blob = Blob(secrets.token_urlsafe(24), req["name"], int(req.get("contentLength", 0)))
        upload_id = secrets.token_hex(16)
        self._blobs[blob.token] = self._blobs[upload_id] = blob
        return {"token": blob.token, "createUrl": f"{self.url}/upload/{upload_id}"}

    @staticmethod
    def _write_blob(blob: Blob, content_range: str | None, chunk: bytes) -> None:
        """Store a PUT body at the offset its Content-Range names (GCS resumable semantics)."""
        start = 0
        if content_range and (m := re.fullmatch(r"bytes (\d+)-\d+/(\d+|\*)", content_range)):
            start = int(m.group(1))
        if start > len(blob.data):
            raise ApiError(400, f"Upload resumed at {start} but only {len(blob.data)} received")
        if len(chunk) > blob.size - start:
            raise ApiError(400, "More bytes than the declared content length")
        del blob.data[start:]
        blob.data += chunk

    def _upload(self, upload_id: str, content_range: str | None, body: bytes) -> Reply:
        with self._lock:
            blob = self._blobs.get(upload_id)
            if blob is None:  # the client takes 404 as "session expired, start again"
                raise ApiError(404, "No such upload session")
            if not (content_range or "").startswith("bytes */"):  # else a status query
                self._write_blob(blob, content_range, body)
            if len(blob.data) == blob.size:
                return json_reply({"name": blob.name, "size": str(blob.size)})
            received = len(blob.data)
        # A 308 without Location, which requests does not follow as a redirect.
        return 308, b"", {"Range": f"bytes=0-{received - 1}"} if received else {}

    def _download(self, parts: list[str], range_: str | None, if_range: str | None) -> Reply:
        if parts[0] == "kernel-output":
            source, stamp = self._kernel_output(parts[1])
        else:
            source, stamp = self._dataset_file(parts)
        modified = formatdate(stamp, usegmt=True)
        size = source.stat().st_size if isinstance(source, Path) else len(source)
        start = 0
        if range_ and (if_range is None or if_range == modified):
            m = re.fullmatch(r"bytes=(\d+)-", range_.strip())
            if m is None:
                raise ApiError(400, f"Unsupported Range: {range_}")
            start = int(m.group(1))
            if start >= size and size:
                return 416, b"", {"Content-Range": f"bytes */{size}"}
        whole_dataset = parts[0] == "dataset-files" and not "/".join(parts[4:])
        headers = {
            "Content-Type": "application/zip" if whole_dataset else "application/octet-stream",
            "Last-Modified": modified,
            "Accept-Ranges": "bytes",
        }
        status = 200
        if start:
            status = 206
            headers["Content-Range"] = f"bytes {start}-{size - 1}/{size}"
        if isinstance(source, Path):
            return status, FileBody(source, start, size - start), headers
        return status, source[start:], headers

    def _dataset_file(self, parts: list[str]) -> tuple[bytes, float]:
        ref, number, name = f"{parts[1]}/{parts[2]}", parts[3], "/".join(parts[4:])
        with self._lock:
            ds = self._datasets.get(ref)
            index = int(number) - 1 if number.isdigit() else -1
            if ds is None or not 0 <= index < len(ds.versions):
                raise ApiError(404, "No such file")
            version = ds.versions[index]
            files, stamp = dict(version.files), version.created
        if name in files:
            return files[name], stamp
        if name or not files:
            raise ApiError(404, "No such file")
        buffer = io.BytesIO()  # the whole version, as a zip
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for path, content in sorted(files.items()):
                archive.writestr(path, content)
        return buffer.getvalue(), stamp

    if TYPE_CHECKING:  # provided by Sessions

        def _kernel_output(self, token: str) -> tuple[bytes | Path, float]: ...

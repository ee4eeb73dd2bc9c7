"""Kaggle datasets: snapshots uploaded as dataset versions, through the real kaggle client.

Part of the Kaggle adapter (with ``session``, which owns importing the client,
credentials, deadlines, retries and error sentences). Here:

* uploading a staged folder (``dir_mode="zip"`` so subfolders survive) with the client's
  resumable-upload state in a private folder per upload, then create/version with an
  outcome check when a reply is lost (a blind retry can make a second version);
* polling until Kaggle has processed it. Right after a create or a version, Kaggle may
  answer 404 for a while (kaggle-cli #890): within ``pending_grace`` that means
  "pending", never "gone" or "failed";
* a create refused because the slug exists is confirmed by a status call (is the
  dataset there, and ours?), never by matching the error text.

What Kaggle accepts, the error classes and the timing settings are in ``rules``.
"""

from __future__ import annotations

import functools
import io
import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from ...config import KaggleConfig
from .rules import (
    TERMINAL,
    DatasetMetadata,
    KaggleError,
    KaggleUnavailable,
    http_status,
    http_timeout,
    max_attempts,
    pending_grace,
    poll_interval,
    ready_timeout,
    retriable,
    short,
)
from .session import KaggleSession, api_class, client_modules

log = logging.getLogger("syncd.kaggle")


class _CountingReader(io.BufferedReader):
    def __init__(self, raw: Any, progress: Callable[[int], None] | None) -> None:
        super().__init__(raw)
        self.progress = progress

    def read(self, *args: Any) -> bytes:
        data = super().read(*args)
        if self.progress and data:
            self.progress(len(data))
        return data


@functools.cache
def _uploading_api_class() -> type:
    ext = client_modules().ext

    class SyncdUploadingApi(api_class()):  # type: ignore[misc]
        """Blob uploads with a deadline, syncd's retries and a progress callback."""

        upload_retry: Callable[[str, BaseException], None] | None = None
        progress: Callable[[int], None] | None = None

        def upload_complete(self, path: str, url: str, quiet: bool, resume: bool = False) -> Any:
            result = ext.ResumableUploadResult
            name = os.path.basename(path)
            problem: Exception
            try:
                outcome = self._put_blob(path, url, resume)
            except requests.RequestException as exc:
                if not retriable(exc):
                    log.warning("the upload of %s was refused: %s", name, short(exc))
                    return result.FAILED
                outcome, problem = result.INCOMPLETE, exc
            else:
                problem = KaggleUnavailable(f"the upload of {name} stopped short")
            if outcome == result.INCOMPLETE and self.upload_retry is not None:
                self.upload_retry(name, problem)  # waits, or raises when attempts are used up
            return outcome

        def _put_blob(self, path: str, url: str, resume: bool) -> int:
            return _put_blob(
                path, url, resume, self.progress, self._get_bytes_already_uploaded, ext
            )

    return SyncdUploadingApi


def _put_blob(
    path: str,
    url: str,
    resume: bool,
    progress: Callable[[int], None] | None,
    bytes_uploaded: Callable[[requests.Response, bool], int | None],
    ext: Any,
) -> int:
    """GCS-style resumable PUT: probe the offset when resuming, then send the rest.

    Returns one of the client's ``ResumableUploadResult`` values (plain ints).
    """
    result: Any = ext.ResumableUploadResult
    size = os.path.getsize(path)
    start = 0
    with requests.Session() as session:
        if resume:
            probe = {"Content-Length": "0", "Content-Range": f"bytes */{size}"}
            r = session.put(url, headers=probe, timeout=http_timeout())
            if r.status_code in (200, 201):
                return int(result.COMPLETE)
            if r.status_code == 404:
                return int(result.EXPIRED)  # the client starts a new upload session
            if r.status_code != 308:
                r.raise_for_status()
                return int(result.FAILED)
            got = bytes_uploaded(r, True)
            if got is None:
                return int(result.EXPIRED)
            start = max(0, got + 1)
        headers = {"Content-Length": str(size - start)}
        if start:
            headers["Content-Range"] = f"bytes {start}-{size - 1}/{size}"
        with open(path, "rb", buffering=0) as raw:
            raw.seek(start)
            body = _CountingReader(raw, progress)
            r = session.put(url, data=body, headers=headers, timeout=http_timeout())
    if r.status_code in (200, 201):
        return int(result.COMPLETE)
    if r.status_code == 308:
        return int(result.INCOMPLETE)
    r.raise_for_status()
    return int(result.FAILED)


@dataclass(frozen=True)
class Published:
    status: str  # "ready" | "failed" | "pending"
    version: int | None
    url: str | None
    created: bool  # the dataset was created by this upload


class KaggleDatasets(KaggleSession):
    """Dataset versions for one config's ``kaggle:`` section."""

    def __init__(
        self,
        config: KaggleConfig,
        *,
        progress: Callable[[int], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> None:
        self._progress = progress
        self._upload_tries: dict[str, int] = {}
        super().__init__(config, cancel=cancel)

    def _make_api(self) -> Any:
        api = _uploading_api_class()()
        folder = self.credentials.config_dir
        api.config_dir, api.config = str(folder), str(folder / "kaggle.json")
        api.endpoint, api.retry = self.config.endpoint, self._retrying
        api.progress, api.upload_retry = self._progress, self._upload_retry
        return api

    @property
    def progress(self) -> Callable[[int], None] | None:
        callback: Callable[[int], None] | None = self._api.progress
        return callback

    @progress.setter
    def progress(self, callback: Callable[[int], None] | None) -> None:
        self._api.progress = callback  # uploaded bytes, for a progress bar

    def _upload_retry(self, name: str, exc: BaseException) -> None:
        """A blob upload failed for a passing reason: wait before the client resumes it."""
        attempt = self._upload_tries[name] = self._upload_tries.get(name, 0) + 1
        if attempt >= max_attempts():
            exc.syncd_attempts = attempt  # type: ignore[attr-defined]
            raise exc
        self._wait_before_retry(f"uploading {name}", exc, attempt)

    # --- reading ------------------------------------------------------------------------------

    def status(self, ref: str) -> str | None:
        """The newest version's state (``ready``, ``failed``, processing...); None: 404."""
        request = client_modules().ds.ApiGetDatasetStatusRequest()
        request.owner_slug, request.dataset_slug = ref.split("/")
        response = self.call(
            f"checking {ref}",
            lambda c: c.datasets.dataset_api_client.get_dataset_status(request),
            missing_ok=True,
        )
        return None if response is None else str(response.status.name).lower()

    def settled_status(self, ref: str, grace: float | None = None) -> str | None:
        """Like ``status``, but a 404 is believed only once it has lasted ``grace`` seconds
        (a dataset or version just created may 404 for a while: kaggle-cli #890)."""
        deadline = time.monotonic() + (pending_grace() if grace is None else grace)
        while True:
            state = self.status(ref)
            if state is not None or time.monotonic() >= deadline:
                return state
            log.debug("%s: not visible yet (HTTP 404); asking again", ref)
            self._sleep(min(poll_interval(), max(0.0, deadline - time.monotonic())))

    def current(self, ref: str) -> tuple[int | None, str | None]:
        """(newest ready version number, dataset URL), riding out a fresh 404."""
        request = client_modules().ds.ApiGetDatasetRequest()
        request.owner_slug, request.dataset_slug = ref.split("/")
        deadline = time.monotonic() + pending_grace()
        while True:
            found = self.call(
                f"reading {ref}",
                lambda c: c.datasets.dataset_api_client.get_dataset(request),
                missing_ok=True,
            )
            if found is not None:
                break
            if time.monotonic() >= deadline:
                raise KaggleError(f"Kaggle does not know the dataset {ref} (HTTP 404)")
            self._sleep(poll_interval())
        url = found.url or f"https://www.kaggle.com/datasets/{ref}"
        return (found.current_version_number or None), url

    def wait_processed(self, ref: str, timeout: float | None = None) -> str | None:
        """Poll until the newest version is ready, failed or deleted; None once a 404 has
        outlasted the grace period (the dataset is gone)."""
        limit = ready_timeout() if timeout is None else timeout
        deadline = time.monotonic() + limit
        grace_ends = time.monotonic() + pending_grace()
        while True:
            state = self.status(ref)
            if state is not None and state in TERMINAL:
                return state
            if state is None and time.monotonic() >= grace_ends:
                return None
            left = deadline - time.monotonic()
            if left <= 0:
                raise KaggleUnavailable(
                    f"{ref} is still processing on Kaggle ({state or 'not visible yet'}) "
                    f"after {limit:g} s",
                    "`syncd snapshots` shows when it is ready; raise SYNCD_KAGGLE_READY_TIMEOUT_S "
                    "for big datasets",
                )
            self._sleep(min(left, poll_interval()))

    # --- writing ------------------------------------------------------------------------------

    def _upload(self, folder: Path) -> list[Any]:
        """Each top-level file and folder (zipped) of ``folder`` as a blob; the new-file entries."""
        modules = client_modules()
        holder = modules.ds.ApiCreateDatasetVersionRequestBody()
        holder.files = []
        # A private folder for the client's resume state: a retry within this upload reuses
        # finished blobs, and no stale state (with a dead upload URL) outlives it.
        self._upload_tries.clear()
        state = tempfile.mkdtemp(prefix="syncd-kaggle-uploads-")
        context = modules.ext.ResumableUploadContext()
        context._temp_dir = state
        try:
            with context:
                self._api.upload_files(
                    holder, None, str(folder), modules.blob_dataset, context, True, "zip"
                )
        except Exception as exc:  # noqa: BLE001
            raise self._convert(exc, "uploading the snapshot") from None
        finally:
            shutil.rmtree(state, ignore_errors=True)
        return list(holder.files)

    def _landed(self, ref: str, creating: bool, before: int | None) -> bool:
        """Whether a create whose reply was lost took effect (syncd is the dataset's one writer)."""
        state = self.settled_status(ref)
        if creating or state is None:
            return state is not None
        if state not in TERMINAL:
            return True  # a version is processing, and the previous one had finished before
        now, _ = self.current(ref)
        return (now or 0) > (before or 0)

    def _request(self, meta: DatasetMetadata, notes: str, files: list[Any], creating: bool) -> Any:
        ds = client_modules().ds
        if creating:
            request = ds.ApiCreateDatasetRequest()
            request.owner_slug, request.slug, request.title = meta.owner, meta.slug, meta.title
            request.license_name, request.is_private = meta.license, meta.private
            request.files = files
            request.description = (
                "Snapshots of a project folder made by syncd. Each version's notes say what "
                "changed; syncd-snapshot.json lists every file with its md5."
            )
            return lambda c: c.datasets.dataset_api_client.create_dataset(request)
        body = ds.ApiCreateDatasetVersionRequestBody()
        body.version_notes, body.files = notes, files
        request = ds.ApiCreateDatasetVersionRequest()
        request.owner_slug, request.dataset_slug, request.body = meta.owner, meta.slug, body
        return lambda c: c.datasets.dataset_api_client.create_dataset_version(request)

    def _create(
        self,
        meta: DatasetMetadata,
        notes: str,
        files: list[Any],
        creating: bool,
        before: int | None,
    ) -> bool:
        """Create the dataset or its next version; True if this call created the dataset."""
        what = f"creating {meta.ref}" if creating else f"creating a new version of {meta.ref}"
        limit = max_attempts()
        unsure = False  # an earlier attempt may have landed without our knowing
        for attempt in range(1, limit + 1):
            rpc = self._request(meta, notes, files, creating)
            try:
                with self._api.build_kaggle_client() as client:
                    response = rpc(client)
            except Exception as exc:  # noqa: BLE001
                code = http_status(exc)
                if code == 403 and not creating and self._processing(meta.ref):
                    # Kaggle refuses a version while the first one processes (kagglehub #182).
                    if unsure:
                        return False  # the version processing is the one whose reply was lost
                    log.info("%s: the previous version is still processing; waiting", meta.ref)
                    self.wait_processed(meta.ref)
                    before = self.current(meta.ref)[0]
                    continue
                if not retriable(exc) or attempt == limit:
                    exc.syncd_attempts = attempt  # type: ignore[attr-defined]
                    raise self._convert(exc, what) from None
                # No reply, or a 5xx: the create may still have happened. Never make two.
                if not creating and self._landed(meta.ref, creating, before):
                    return False
                unsure = True
                self._wait_before_retry(what, exc, attempt)
                continue
            if (response.status or "").lower() == "ok":
                return creating
            error = response.error or "no reason given"
            if creating and self.settled_status(meta.ref) is not None:
                # The slug exists and we can see it: ours, from a create whose reply was
                # lost (now or earlier). Make the upload its next version instead.
                if unsure:
                    return True
                log.info("%s already exists; uploading a new version instead", meta.ref)
                self.wait_processed(meta.ref)
                creating, before = False, self.current(meta.ref)[0]
                continue
            remedy = "if the slug is taken, choose another snapshot.dataset" if creating else None
            raise KaggleError(f"Kaggle refused {what}: {error}", remedy)
        raise KaggleUnavailable(f"Kaggle kept refusing {what} ({limit} attempts)")

    def _processing(self, ref: str) -> bool:
        state = self.settled_status(ref)
        return state is not None and state not in TERMINAL

    def publish(self, folder: Path, meta: DatasetMetadata, notes: str, *, wait: bool) -> Published:
        """Upload ``folder`` as the first or next version; with ``wait``, poll until processed."""
        state = self.status(meta.ref)
        creating = state is None
        if not creating and state not in TERMINAL:
            log.info("%s: waiting for the previous version to finish processing", meta.ref)
            self.wait_processed(meta.ref)
        before = None if creating else self.current(meta.ref)[0]
        files = self._upload(folder)
        created = self._create(meta, notes, files, creating, before)
        url = f"https://www.kaggle.com/datasets/{meta.ref}"
        if not wait:
            return Published("pending", None, url, created)
        return self.finish(meta.ref, created)

    def finish(self, ref: str, created: bool = False, timeout: float | None = None) -> Published:
        """Wait for the newest version to be processed; its number once ready."""
        final = self.wait_processed(ref, timeout)
        if final != "ready":
            if final is None:
                log.warning("%s: Kaggle does not know the dataset (HTTP 404)", ref)
            return Published("failed", None, f"https://www.kaggle.com/datasets/{ref}", created)
        version, url = self.current(ref)
        return Published("ready", version, url, created)


def check_credentials(config: KaggleConfig) -> str:
    return KaggleDatasets(config).check()

"""Kaggle kernels: push a script, follow one version's session, fetch its outputs and log.

Part of the Kaggle adapter: thin typed wrappers over the real client (kaggle 2.2.5 /
kagglesdk 0.1.38) that return plain dataclasses, with ``session``'s deadlines,
retries and one-sentence errors. Facts they build on (sources in tests/fakes/kaggle_fake):

* ``kernel-metadata.json`` is written with ``machine_shape``, ``enable_gpu`` and
  ``enable_internet`` always explicit (the client defaults internet to *on*, its docs say
  off; ``enable_gpu`` alone gets a P100).
* SaveKernel reports refusals in a 200: ``error`` (e.g. "Maximum batch GPU session count
  of 2 reached.") and ``invalid*Sources`` lists for sources it dropped while the push
  "succeeded" (kaggle-cli #433). Both become ``KernelPushError``.
* A push is not idempotent: retrying one whose reply was lost would start a second
  session. After such a failure the kernel's current version number says whether it
  landed (syncd is the kernel's one writer).
* Status, outputs and logs are asked about one version (``versionLabel: v<N>``), so a
  run is never confused with a newer or older version of the same kernel.
* There is no cancel call for users; deleting the kernel stops its session and billing.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import shutil
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC
from pathlib import Path
from typing import Any

import requests

from .downloads import Downloaded, OutputDownloader
from .kernel_types import (
    GPU_CAP,
    INVALID_LISTS,
    GpuQuota,
    KernelOutputs,
    KernelPushError,
    KernelSpec,
    KernelStatus,
    LiveLog,
    LogEntry,
    OutputFile,
    Pushed,
    parse_log,
)
from .rules import KaggleError, http_status, http_timeout, max_attempts, retriable
from .session import KaggleSession, client_modules, no_prints

log = logging.getLogger("syncd.kaggle")

__all__ = [
    "GpuQuota",
    "KaggleKernels",
    "KernelOutputs",
    "KernelPushError",
    "KernelSpec",
    "KernelStatus",
    "LiveLog",
    "LogEntry",
    "OutputFile",
    "Pushed",
]


class KaggleKernels(KaggleSession):
    """Kernels for one config's ``kaggle:`` section."""

    again = "syncd tries again at the next poll"
    forbidden = "check that the kernel's owner is your Kaggle user name"

    def _types(self) -> Any:
        return client_modules().kernels

    def _label(self, request: Any, ref: str, version: int | None) -> Any:
        request.user_name, request.kernel_slug = ref.split("/")
        if version is not None:
            request.version_label = f"v{version}"  # a bare number is a 404
        return request

    # --- push ---------------------------------------------------------------------------

    def current_version(self, ref: str) -> int:
        """The kernel's newest version number; 0 when there is no such kernel."""
        request = self._label(self._types().ApiGetKernelRequest(), ref, None)
        found = self.call(
            f"reading {ref}",
            lambda c: c.kernels.kernels_api_client.get_kernel(request),
            missing_ok=True,
        )
        return 0 if found is None else int(found.metadata.current_version_number or 0)

    def push(self, spec: KernelSpec) -> Pushed:
        """Save and run a new version; a refusal or dropped source is a KernelPushError."""
        if problems := spec.problems():
            raise KernelPushError(f"cannot push {spec.ref}: {'; '.join(problems)}")
        before = self.current_version(spec.ref)
        folder = Path(tempfile.mkdtemp(prefix="syncd-kernel-"))
        try:
            code_file = spec.ref.split("/")[1] + ".py"
            (folder / code_file).write_text(spec.code, encoding="utf-8")
            meta = json.dumps(spec.metadata(code_file), indent=1)
            (folder / "kernel-metadata.json").write_text(meta, encoding="utf-8")
            timeout = str(spec.timeout_s) if spec.timeout_s else None
            response = self._push_once(spec.ref, folder, timeout, before)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        if isinstance(response, Pushed):
            return response  # a lost reply, but the version is there
        return self._judge(spec, response)

    def _push_once(self, ref: str, folder: Path, timeout: str | None, before: int) -> Any:
        what = f"pushing {ref}"
        for attempt in range(1, max_attempts() + 1):
            try:
                with no_prints(), contextlib.redirect_stderr(io.StringIO()):
                    return self._api.kernels_push(str(folder), timeout)
            except ValueError as exc:  # the client's own metadata checks
                raise KernelPushError(f"cannot push {ref}: {exc}") from None
            except Exception as exc:  # noqa: BLE001
                if not retriable(exc) or attempt == max_attempts():
                    exc.syncd_attempts = attempt  # type: ignore[attr-defined]
                    raise self._convert(exc, what) from None
                if http_status(exc) != 429:  # the push may have landed: never run twice
                    now = self.current_version(ref)
                    if now > before:
                        log.info("%s: the push landed as v%d although its reply was lost", ref, now)
                        return Pushed(ref, now, f"https://www.kaggle.com/code/{ref}")
                self._wait_before_retry(what, exc, attempt)
        raise AssertionError("unreachable")

    def _judge(self, spec: KernelSpec, response: Any) -> Pushed:
        if response.error:
            cap = GPU_CAP.search(response.error)
            if cap:
                raise KernelPushError(
                    f"Kaggle already runs {cap.group(1)} GPU sessions for {self.username}, "
                    "the most it allows at once",
                    "wait for one to end, or stop one (deleting its kernel stops it)",
                    gpu_cap=int(cap.group(1)),
                )
            raise KernelPushError(f"Kaggle refused to push {spec.ref}: {response.error}")
        pushed = Pushed(response.ref or spec.ref, int(response.version_number or 0), response.url)
        invalid = {k: list(getattr(response, k)) for k in INVALID_LISTS if getattr(response, k)}
        if invalid:
            what = "; ".join(f"{INVALID_LISTS[k]} {', '.join(v)}" for k, v in invalid.items())
            raise KernelPushError(
                f"Kaggle dropped {what} from {pushed.ref} v{pushed.version} (not found, or not "
                f"visible to {self.username}), so the run would not see them",
                "check the names and that the datasets are ready",
                pushed=pushed,
                invalid=invalid,
            )
        if pushed.ref != spec.ref:
            log.warning("Kaggle filed the kernel as %s, not %s", pushed.ref, spec.ref)
        return pushed

    # --- following a version ------------------------------------------------------------

    def status(self, ref: str, version: int) -> KernelStatus:
        request = self._label(self._types().ApiGetKernelSessionStatusRequest(), ref, version)
        found = self.call(
            f"checking {ref} v{version}",
            lambda c: c.kernels.kernels_api_client.get_kernel_session_status(request),
        )
        return KernelStatus(ref, version, found.status.name.lower(), found.failure_message or None)

    def outputs(self, ref: str, version: int, page_size: int = 200) -> KernelOutputs:
        """Every page of the version's output listing, and its log (empty while it runs)."""
        files: list[OutputFile] = []
        log_text, token = "", ""
        while True:
            request = self._label(self._types().ApiListKernelSessionOutputRequest(), ref, version)
            request.page_size = page_size
            if token:
                request.page_token = token

            def list_page(c: Any, r: Any = request) -> Any:
                return c.kernels.kernels_api_client.list_kernel_session_output(r)

            page = self.call(f"listing the outputs of {ref} v{version}", list_page)
            files += [OutputFile(f.file_name, f.url) for f in page.files or []]
            log_text = log_text or page.log or ""
            token = page.next_page_token or ""
            if not token:
                return KernelOutputs(tuple(files), parse_log(log_text), log_text)

    def log(self, ref: str, version: int) -> tuple[LogEntry, ...]:
        """The version's persisted log (Kaggle sends it with the first output page)."""
        request = self._label(self._types().ApiListKernelSessionOutputRequest(), ref, version)
        request.page_size = 1
        page = self.call(
            f"reading the log of {ref} v{version}",
            lambda c: c.kernels.kernels_api_client.list_kernel_session_output(request),
        )
        return parse_log(page.log or "")

    def download(self, output: OutputFile, dest: Path) -> Downloaded:
        """One output, streamed to a partial file under ``dest`` and renamed into place."""
        return OutputDownloader(self._sleep).fetch(output.url, output.name, dest)

    def live_log(self, ref: str, version: int, seconds: float) -> LiveLog:
        """The session's log so far, read from Kaggle's live stream for at most ``seconds``
        (the stream replays from the start; a finished session gives its whole log)."""
        entries: list[LogEntry] = []
        deadline = time.monotonic() + seconds
        try:
            for event in self._events(ref, version, deadline):
                if event is None:
                    return LiveLog(tuple(entries), True)
                entries.append(event)
        except (
            requests.ConnectionError,
            requests.Timeout,
            requests.exceptions.ChunkedEncodingError,
        ):
            pass  # the time is up (a read timeout mid-stream is a ConnectionError) or it was cut
        return LiveLog(tuple(entries), False)

    def _events(self, ref: str, version: int, deadline: float) -> Iterator[LogEntry | None]:
        with self._api.build_kaggle_client() as client:
            http = client.http_client()
            http._init_session()
            base = http._endpoint if http._env.name == "PROD" else f"{http._endpoint}/api"
            url = f"{base}/v1/kernels/logs/stream/{ref}"
            headers = {"Accept": "text/event-stream, */*"}
            read = max(0.1, min(http_timeout(), deadline - time.monotonic()))
            try:
                response = http._session.get(
                    url,
                    params={"versionLabel": f"v{version}"},
                    headers=headers,
                    stream=True,
                    timeout=(10, read),
                )
                response.raise_for_status()
            except Exception as exc:  # noqa: BLE001
                raise self._convert(exc, f"reading the log of {ref} v{version}") from None
            with response:
                if not response.headers.get("Content-Type", "").startswith("text/event-stream"):
                    yield from parse_log(response.text)
                    yield None
                    return
                for line in response.iter_lines(decode_unicode=True):
                    if line and line.startswith("data:"):
                        payload = line[5:].strip()
                        if payload == "END_OF_LOG":
                            yield None
                            return
                        yield from parse_log(f"[{payload}]")
                    if time.monotonic() >= deadline:
                        return

    # --- account ------------------------------------------------------------------------

    def quota(self) -> GpuQuota:
        """The weekly GPU quota (`kaggle quota`): used, held by running sessions, total."""
        request = self._types().ApiGetAcceleratorQuotaStatisticsRequest()
        found = self.call(
            "reading the GPU quota",
            lambda c: c.kernels.kernels_api_client.get_accelerator_quota_statistics(request),
        )
        gpu = found.gpu_quota

        def seconds(value: Any) -> float:
            return value.total_seconds() if value is not None else 0.0

        refresh = found.quota_refresh_time
        if refresh is not None and refresh.tzinfo is None:
            refresh = refresh.replace(tzinfo=UTC)  # kagglesdk drops the Z
        if gpu is None:
            return GpuQuota(0.0, 0.0, 0.0, refresh)
        return GpuQuota(
            seconds(gpu.time_used),
            seconds(gpu.time_reserved),
            seconds(gpu.total_time_allowed),
            refresh,
        )

    def delete(self, ref: str) -> bool:
        """Delete the kernel, which stops its session and billing; False if it was gone."""
        request = self._types().ApiDeleteKernelRequest()
        request.user_name, request.kernel_slug = ref.split("/")
        done = self.call(
            f"deleting {ref}",
            lambda c: c.kernels.kernels_api_client.delete_kernel(request),
            missing_ok=True,
        )
        if done is not None and done.error_message:
            raise KaggleError(f"Kaggle refused to delete {ref}: {done.error_message}")
        return done is not None

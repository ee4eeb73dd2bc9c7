"""Kernel sessions over time: the thread that runs each one, its faults, billing and quota.

* At most `max_gpu_sessions` (2) batch GPU sessions (queued or running, stalled ones
  included) per account; SaveKernel then refuses with "Maximum batch GPU session count of
  2 reached." in a 200 and creates no version (kaggle-cli #185; scripts that automate
  pushes match that text because `kernels push` exits 0 on it).
* GPU time is billed by wall clock while a GPU session runs (or `gpu_seconds_per_run`
  per finished run, for deterministic figures); `GetAcceleratorQuotaStatistics` reports
  `timeUsed` (finished plus running), `timeReserved` (the rest of each active session's
  timeout), `totalTimeAllowed` and `quotaRefreshTime` (kagglesdk ApiAcceleratorQuota).
* Deleting a kernel stops its sessions and their billing; there is no cancel call for
  users (CancelKernelSession answers 403 "Permission 'kernelSessions.cancel' was denied").
* Faults, per kernel, for sessions that end from now on: `force_kernel_error(ref, msg)`,
  `stall_kernel(ref)` (stays RUNNING with no log progress after the script exits, as
  crashed kernels have been seen to), `add_kernel_outputs(ref, files)` and
  `hostile_outputs(ref)` (names `../../evil`, `/etc/x` and `link/evil`, the last for a
  client whose destination holds a symlink `link`).
"""

from __future__ import annotations

import functools
import json
import secrets
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .model import ApiError, Dataset, Reply, duration, iso
from .runtime import KernelRun, OutputFile, Sandbox, kill, pump, remove_sandbox

HOSTILE_NAMES = ("../../evil", "/etc/x", "link/evil")


@dataclass
class KernelFaults:
    error: str | None = None
    stall: bool = False
    hostile: bool = False
    extra: dict[str, bytes] = field(default_factory=dict)


class Sessions:
    _lock: threading.RLock
    _cond: threading.Condition
    _stopping: bool
    _datasets: dict[str, Dataset]
    _runs: list[KernelRun]
    _processes: dict[int, subprocess.Popen[bytes]]
    _session_threads: list[threading.Thread]
    _output_links: dict[str, tuple[KernelRun, str]]
    _kernel_faults: dict[str, KernelFaults]
    _tampered: dict[str, dict[str, bytes | None]]
    _workdir: Path | None
    queue_seconds: float
    extra_run_seconds: float
    hold_queue: bool
    mount_layout: str
    sandbox_root: Path | None
    keep_sandboxes: bool
    gpu_quota_seconds: float
    gpu_used_seconds: float
    gpu_seconds_per_run: float | None
    tpu_quota_seconds: float
    quota_refresh_at: float | None

    # ---- knobs for tests ---------------------------------------------------------------

    def _faults_for(self, ref: str) -> KernelFaults:
        return self._kernel_faults.setdefault(ref, KernelFaults())

    def force_kernel_error(self, ref: str, message: str | None) -> None:
        """Sessions of `ref` that end from now on end in ERROR with `message` (None: clear)."""
        with self._lock:
            self._faults_for(ref).error = message

    def stall_kernel(self, ref: str, stall: bool = True) -> None:
        with self._lock:
            self._faults_for(ref).stall = stall

    def add_kernel_outputs(self, ref: str, files: dict[str, bytes]) -> None:
        """Extra outputs published by sessions of `ref` besides what their script writes."""
        with self._lock:
            self._faults_for(ref).extra.update(files)

    def hostile_outputs(self, ref: str, hostile: bool = True) -> None:
        with self._lock:
            self._faults_for(ref).hostile = hostile

    def tamper_mount(self, dataset: str, files: dict[str, bytes | None]) -> None:
        """Sessions starting from now on see `dataset` with these files replaced, added or
        (None) removed: a mounted copy that differs from the snapshot's manifest."""
        with self._lock:
            self._tampered[dataset] = dict(files)

    def release_queue(self) -> None:
        with self._cond:
            self.hold_queue = False
            self._cond.notify_all()

    # ---- the session thread ------------------------------------------------------------

    def _start_session(self, run: KernelRun) -> None:
        thread = threading.Thread(
            target=self._session_main, args=(run,), name=f"fake-kernel-{run.kernel}", daemon=True
        )
        self._session_threads = [t for t in self._session_threads if t.is_alive()] + [thread]
        thread.start()

    def _gone(self, run: KernelRun) -> bool:
        return self._stopping or run.deleted

    def _pause(self, run: KernelRun, seconds: float, hold: bool = False) -> bool:
        """Wait `seconds` (and while `hold_queue` if `hold`); False if the run went away."""
        until = time.monotonic() + seconds
        with self._cond:
            while not self._gone(run) and ((hold and self.hold_queue) or time.monotonic() < until):
                self._cond.wait(max(0.01, min(0.1, until - time.monotonic())))
            return not self._gone(run)

    def _mounted_files(self, ref: str) -> dict[str, bytes]:
        ds = self._datasets[ref]
        files = dict(ds.current.files) if ds.current else {}
        for path, data in self._tampered.get(ref, {}).items():
            if data is None:
                files.pop(path, None)
            else:
                files[path] = data
        return files

    def _session_main(self, run: KernelRun) -> None:
        if not self._pause(run, self.queue_seconds, hold=True):
            return
        with self._lock:
            mounts = {ref: self._mounted_files(ref) for ref in run.mounts}
            layout = self.mount_layout
            if self._workdir is None:
                base = self.sandbox_root
                self._workdir = Path(tempfile.mkdtemp(prefix="fake-kaggle-runs-", dir=base))
            root = self._workdir / f"{run.kernel.replace('/', '-')}-v{run.number}"
        sandbox = Sandbox(root)
        sandbox.build(run.source, mounts, layout)
        started = time.monotonic()
        process = sandbox.start()
        with self._cond:
            run.sandbox, run.status, run.started = root, "running", time.time()
            self._processes[id(run)] = process
            self._cond.notify_all()
        readers = [
            threading.Thread(target=pump, args=(s, n, run, started, self._cond), daemon=True)
            for s, n in ((process.stdout, "stdout"), (process.stderr, "stderr"))
        ]
        for reader in readers:
            reader.start()
        outcome = self._wait_process(run, process, started)
        kill(process)
        for reader in readers:
            reader.join(5)
        with self._lock:
            self._processes.pop(id(run), None)
        if outcome == "gone" or not self._pause(run, self.extra_run_seconds):
            return
        with self._lock:
            faults = self._faults_for(run.kernel)
            stall = faults.stall
        if stall:  # RUNNING until deleted, and the log never moves again
            self._pause(run, float("inf"))
            return
        self._finish(run, sandbox, process.returncode, outcome == "timeout")

    def _wait_process(
        self, run: KernelRun, process: subprocess.Popen[bytes], started: float
    ) -> str:
        while True:
            try:
                process.wait(timeout=0.05)
                return "exited"
            except subprocess.TimeoutExpired:
                pass
            if self._gone(run):
                return "gone"
            if time.monotonic() - started > run.timeout:
                return "timeout"

    def _finish(self, run: KernelRun, sandbox: Sandbox, code: int, timed_out: bool) -> None:
        outputs = sandbox.collect()
        with self._cond:
            faults = self._faults_for(run.kernel)
            for name, data in faults.extra.items():
                outputs[name] = OutputFile(name, data=data)
            if faults.hostile:
                for name in HOSTILE_NAMES:
                    outputs[name] = OutputFile(name, data=b"hostile output\n")
            run.outputs, run.exit_code = outputs, code
            for name in outputs:
                self._output_links[secrets.token_urlsafe(16)] = (run, name)
            if timed_out:
                run.status = "error"
                run.failure_message = f"Session timed out after {run.timeout:g} seconds"
            elif faults.error:
                run.status, run.failure_message = "error", faults.error
            elif code != 0:
                run.status, run.failure_message = "error", f"Kernel exited with code {code}"
            else:
                run.status = "complete"
            run.finished = time.time()
            self._bill(run)
            self._cond.notify_all()

    def _bill(self, run: KernelRun) -> None:
        if run.gpu and run.started is not None and not run.billed:
            end = run.finished or time.time()
            per_run = self.gpu_seconds_per_run
            run.billed = per_run if per_run is not None else max(0.0, end - run.started)

    def _end_sessions(self, runs: list[KernelRun]) -> None:
        """The kernel was deleted: its sessions stop, and so does their billing."""
        for run in runs:
            if run.active and run.started is not None:
                run.finished = time.time()
                self._bill(run)
            run.deleted = True
        self._cond.notify_all()

    def _stop_runtime(self) -> None:
        with self._cond:
            self._cond.notify_all()
            threads = list(self._session_threads)
            processes = list(self._processes.values())
        for process in processes:
            kill(process)
        for thread in threads:
            thread.join(10)
        if not self.keep_sandboxes:
            remove_sandbox(self._workdir)

    # ---- what sessions cost, downloads, the live log ------------------------------------

    def _gpu_sessions(self, user: str) -> int:
        return sum(1 for r in self._runs if r.gpu and r.active and r.kernel.split("/")[0] == user)

    def _rpc_GetAcceleratorQuotaStatistics(self, user: str, req: dict[str, Any]) -> dict[str, Any]:
        now = time.time()
        mine = [r for r in self._runs if r.kernel.split("/")[0] == user]
        used = self.gpu_used_seconds + sum(r.billed for r in mine if r.gpu)
        running = [r for r in mine if r.gpu and r.active and r.started is not None]
        used += sum(now - (r.started or now) for r in running)
        reserved = sum(
            max(0.0, r.timeout - (now - (r.started or now))) for r in mine if r.gpu and r.active
        )
        refresh = self.quota_refresh_at if self.quota_refresh_at is not None else now + 3 * 86400
        gpu = {
            "timeUsed": duration(used),
            "timeReserved": duration(reserved),
            "totalTimeAllowed": duration(self.gpu_quota_seconds),
            "hasEverRun": any(r.gpu and r.started for r in mine),
        }
        tpu = {"timeUsed": "0s", "totalTimeAllowed": duration(self.tpu_quota_seconds)}
        return {"quotaRefreshTime": iso(refresh), "gpuQuota": gpu, "tpuQuota": tpu}

    def _rpc_CancelKernelSession(self, user: str, req: dict[str, Any]) -> dict[str, Any]:
        raise ApiError(403, "Permission 'kernelSessions.cancel' was denied")

    def _kernel_output(self, token: str) -> tuple[bytes | Path, float]:
        with self._lock:
            run, name = self._output_links.get(token, (None, ""))
            if run is None or run.deleted or name not in run.outputs:
                raise ApiError(404, "No such file")
            output, stamp = run.outputs[name], run.finished or time.time()
        if output.data is not None:
            return output.data, stamp
        assert output.path is not None
        return output.path, stamp

    if TYPE_CHECKING:  # provided by Kernels

        def _find_run(self, user: str, owner: str, slug: str, label: str | None) -> KernelRun: ...

    def _logs_stream(self, user: str, owner: str, slug: str, query: dict[str, str]) -> Reply:
        """kaggle 2.2.5 `kernels_logs_stream`: SSE events while the session runs, ended by
        `data: END_OF_LOG`; once it is over, the persisted JSON log blob."""
        with self._lock:
            run = self._find_run(user, owner, slug, query.get("versionLabel"))
            if not run.active:
                return 200, run.log_text().encode(), {"Content-Type": "application/json"}

        def events() -> Iterator[bytes]:
            sent = 0

            def news(seen: int = 0) -> bool:
                return self._stopping or len(run.log) > seen or not run.active

            while True:
                with self._cond:
                    self._cond.wait_for(functools.partial(news, sent), 0.2)
                    new, done = run.log[sent:], not run.active
                    sent += len(new)
                for entry in new:
                    yield f"data: {json.dumps(entry)}\n\n".encode()
                if self._stopping:
                    return
                if done:
                    yield b"data: END_OF_LOG\n\n"
                    return

        return 200, events(), {"Content-Type": "text/event-stream"}

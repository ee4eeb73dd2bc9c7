"""FakeKaggle: the parts of the fake put together, with its state and every knob."""

from __future__ import annotations

import socket
import subprocess
import threading
from pathlib import Path

from .auth import Accounts
from .blobs import Blob, Blobs
from .datasets import Datasets
from .kernels import Kernel, Kernels
from .model import Dataset, Fault, RequestRecord
from .plumbing import HttpPlumbing, _Server
from .runtime import KernelRun
from .sessions import KernelFaults, Sessions


class FakeKaggle(Accounts, Datasets, Blobs, Kernels, Sessions, HttpPlumbing):
    """The fake service. Every public method is safe to call from any thread."""

    def __init__(self, sandbox_root: Path | None = None) -> None:
        # datasets
        self.processing_polls = 2  # status polls a new version spends processing
        self.fresh_404_polls = 2  # GetDatasetStatus/GetDataset 404s after a create/version
        self.version_lock = "first"  # "first" (Kaggle's rule) or "off"
        # accounts: what IntrospectToken answers for a revoked or unknown token
        self.inactive_token_reply: int | str = 401  # or "inactive", 400, 403, 404
        # kernels
        self.queue_seconds = 0.0  # QUEUED this long before a session starts
        self.hold_queue = False  # QUEUED until release_queue()
        self.extra_run_seconds = 0.0  # RUNNING this long after the script exits
        self.session_timeout_seconds = 12 * 3600.0  # unless the push sets one
        self.max_gpu_sessions = 2
        self.mount_layout = "datasets"  # "datasets": input/datasets/<owner>/<slug>; "legacy"
        self.sandbox_root = sandbox_root  # where session folders go (default: a temp dir)
        self.keep_sandboxes = False  # keep them after stop(), for post-mortems
        # quota
        self.gpu_quota_seconds = 30 * 3600.0
        self.gpu_used_seconds = 0.0  # used before the fake started
        self.gpu_seconds_per_run: float | None = None  # None: bill wall-clock time
        self.tpu_quota_seconds = 20 * 3600.0
        self.quota_refresh_at: float | None = None  # epoch seconds; None: in three days
        # state
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)  # hang release, stop, waits
        self._users: dict[str, str] = {}
        self._user_ids: dict[str, int] = {}
        self._tokens: dict[str, str] = {}
        self._datasets: dict[str, Dataset] = {}
        self._dataset_outcomes: dict[str, str] = {}
        self._reserved: set[str] = set()
        self._blobs: dict[str, Blob] = {}
        self._kernels: dict[str, Kernel] = {}
        self._runs: list[KernelRun] = []
        self._processes: dict[int, subprocess.Popen[bytes]] = {}
        self._session_threads: list[threading.Thread] = []
        self._output_links: dict[str, tuple[KernelRun, str]] = {}
        self._kernel_faults: dict[str, KernelFaults] = {}
        self._tampered: dict[str, dict[str, bytes | None]] = {}
        self._workdir: Path | None = None
        self._faults: list[Fault] = []
        self._log: list[RequestRecord] = []
        self._connections: set[socket.socket] = set()
        self._release_gen = 0
        self._stopping = False
        self._next_id = 1000
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def _new_id(self) -> int:
        with self._lock:
            self._next_id += 1
            return self._next_id

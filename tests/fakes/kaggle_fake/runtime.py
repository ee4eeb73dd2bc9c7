"""The kernel runtime: each pushed version really runs, in a sandbox folder of its own.

A session is QUEUED for `queue_seconds` (or while `hold_queue` is set), then RUNNING: the
fake builds `<sandbox>/kaggle/` with

* `input/datasets/<owner>/<slug>/` holding the unpacked newest ready version of every
  valid dataset source (the 2026 layout; `mount_layout = "legacy"` gives the old
  `input/<slug>/`, and `tamper_mount(ref, files)` alters what is mounted),
* `working/`, the script's working directory, whose files become the outputs,
* `src/script.py`, the pushed source,

and runs `python3 -I -S -u src/script.py` with the fake's own interpreter: isolated and
without site-packages, so the script can only use the standard library. Its environment
is minimal (no credentials, no proxies): `SYNCD_KAGGLE_ROOT=<sandbox>/kaggle` (the
generated script reads its root from there, `/kaggle` on Kaggle), `KAGGLE_KERNEL_RUN_TYPE=
Batch` (set on Kaggle for committed runs; kagglesdk/kaggle_env.py reads it), and a
`bin/` first on PATH whose `python`/`python3` run the fake's interpreter (with
site-packages), like the image's Python that a training command would use.

stdout/stderr become the log in Kaggle's format: a JSON list of `{"stream_name":
"stdout"|"stderr", "time": <seconds since start>, "data": <text>}` entries (the persisted
log blob kaggle_api_extended.py `_iter_blob_lines` parses; `kernels output` saves it as
`<slug>.log`). After the process exits the session stays RUNNING for
`extra_run_seconds`, then ends COMPLETE (exit 0) or ERROR, with a `failureMessage` for
non-zero exits, a forced error or the session timeout (these wordings are the fake's).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

SCRIPT_NAME = "script.py"


@dataclass
class OutputFile:
    name: str
    path: Path | None = None  # a file in the sandbox
    data: bytes | None = None  # an output injected by the test


@dataclass
class KernelRun:
    """One pushed version and its session."""

    kernel: str  # owner/slug
    number: int
    source: str
    request: dict[str, Any]  # the SaveKernel body as sent: the kernel's metadata
    machine_shape: str | None  # what the session runs on (after retired-shape fallback)
    gpu: bool
    mounts: list[str]  # the valid dataset sources
    timeout: float
    status: str = "queued"
    failure_message: str = ""
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    exit_code: int | None = None
    sandbox: Path | None = None
    log: list[dict[str, Any]] = field(default_factory=list)
    outputs: dict[str, OutputFile] = field(default_factory=dict)
    deleted: bool = False
    billed: float = 0.0

    @property
    def active(self) -> bool:
        return not self.deleted and self.status in ("queued", "running")

    def log_text(self) -> str:
        """The log blob as Kaggle stores it: a JSON list, one entry per line."""
        if not self.log:
            return ""
        return "[" + "\n,".join(json.dumps(e) for e in self.log) + "]"


class Sandbox:
    """Builds the folder a session runs in and runs the script there."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.kaggle = root / "kaggle"
        self.working = self.kaggle / "working"
        self.script = self.kaggle / "src" / SCRIPT_NAME

    def build(self, source: str, mounts: dict[str, dict[str, bytes]], layout: str) -> None:
        for sub in ("input", "working", "src", "tmp"):
            (self.kaggle / sub).mkdir(parents=True, exist_ok=True)
        (self.root / "home").mkdir(exist_ok=True)
        self.script.write_text(source, encoding="utf-8")
        for ref, files in mounts.items():
            owner, slug = ref.split("/")
            base = (
                self.kaggle / "input" / (f"datasets/{owner}/{slug}" if layout != "legacy" else slug)
            )
            base.mkdir(parents=True, exist_ok=True)
            for rel, data in files.items():
                target = base / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
        bin_dir = self.root / "bin"
        bin_dir.mkdir(exist_ok=True)
        for name in ("python", "python3"):
            wrapper = bin_dir / name
            wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
            wrapper.chmod(0o755)

    def env(self) -> dict[str, str]:
        return {
            "PATH": f"{self.root / 'bin'}:/usr/local/bin:/usr/bin:/bin",
            "HOME": str(self.root / "home"),
            "TMPDIR": str(self.kaggle / "tmp"),
            "LANG": "C.UTF-8",
            "SYNCD_KAGGLE_ROOT": str(self.kaggle),
            "KAGGLE_KERNEL_RUN_TYPE": "Batch",
        }

    def start(self) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-I", "-S", "-u", str(self.script)],
            cwd=self.working,
            env=self.env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,  # its own process group: a kill takes its children too
        )

    def collect(self) -> dict[str, OutputFile]:
        """The files under working/, by relative name. A symlink counts only when it points
        at a file inside working/ (outputs never expose the machine's other files)."""
        outputs: dict[str, OutputFile] = {}
        real_working = self.working.resolve()
        for dirpath, dirnames, filenames in os.walk(self.working):
            for name in filenames:
                full = Path(dirpath) / name
                rel = full.relative_to(self.working).as_posix()
                target = full.resolve()
                if full.is_symlink() and (
                    not target.is_file() or not target.is_relative_to(real_working)
                ):
                    continue
                if target.is_file():
                    outputs[rel] = OutputFile(rel, path=target)
            dirnames[:] = [d for d in dirnames if not (Path(dirpath) / d).is_symlink()]
        return outputs


def kill(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            process.kill()
    process.wait()


def pump(
    stream: IO[bytes], name: str, run: KernelRun, started: float, cond: threading.Condition
) -> None:
    """Copy one output stream of the script into the run's log, a line per entry."""
    for raw in iter(stream.readline, b""):
        entry = {
            "stream_name": name,
            "time": round(time.monotonic() - started, 3),
            "data": raw.decode("utf-8", "replace"),
        }
        with cond:
            run.log.append(entry)
            cond.notify_all()
    stream.close()


def remove_sandbox(root: Path | None) -> None:
    if root is not None:
        shutil.rmtree(root, ignore_errors=True)

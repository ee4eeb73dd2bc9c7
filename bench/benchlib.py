"""Shared pieces of the benchmarks: trees, a process runner, syncd, edit latency, stats.

Not a test helper: everything here measures, nothing asserts.  Trees go to
fresh folders under /dev/shm when it has room (tmpfs: no page cache to go
cold, and no slow-down after a big ``rm -rf`` as in /tmp); the daemon's state
(HOME, XDG_*) goes to a fresh folder under /tmp, so every run has its own index.
"""

from __future__ import annotations

import os
import platform
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parent.parent
PROJECT = "p"
IDLE_RE = re.compile(rf"INFO {PROJECT}: \w+ → idle")
_BLOCK = b"".join(b"line %04d of some python-ish source text\n" % i for i in range(120))


def machine() -> str:
    return f"{os.cpu_count()} CPU, Python {platform.python_version()}, {platform.system()}"


def source_version() -> str:
    """The syncd code measured: HEAD, plus the files under daemon/ that differ from it."""
    git = ["git", "-C", str(REPO)]
    try:
        head = subprocess.run(
            [*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True
        )
        dirty = subprocess.run(
            [*git, "status", "--porcelain", "--", "daemon"], capture_output=True, text=True
        ).stdout.split("\n")
    except OSError:
        return "unknown (no git)"
    changed = [line[3:] for line in dirty if line.strip()]
    return f"{head.stdout.strip()}" + (f" + uncommitted: {', '.join(changed)}" if changed else "")


def scratch_base(need_bytes: int) -> str:
    """/dev/shm if it has room for ``need_bytes`` (plus a margin), else /tmp."""
    try:
        if shutil.disk_usage("/dev/shm").free > 2 * need_bytes:
            return "/dev/shm"
    except OSError:
        pass
    return tempfile.gettempdir()


def fresh_dir(prefix: str, base: str | None = None) -> Path:
    return Path(tempfile.mkdtemp(prefix=f"syncd-bench-{prefix}-", dir=base))


def make_tree(root: Path, files: int, folders: int, seed: int = 0) -> list[str]:
    """``files`` text files of 1–4 KB spread evenly over ``folders`` folders (two levels).

    Returns the files' relative paths.
    """
    rng = random.Random(seed)
    top = max(1, int(folders**0.5))
    dirs = [f"t{i:03d}" for i in range(min(top, folders))]
    dirs += [f"t{i % top:03d}/d{i:05d}" for i in range(len(dirs), folders)]
    for d in dirs:
        os.makedirs(root / d, exist_ok=True)
    paths = []
    for i in range(files):
        rel = f"{dirs[i % len(dirs)]}/f{i:06d}.py"
        size = rng.randint(1024, 4096)
        head = f"# {rel}\n".encode()
        with open(root / rel, "wb") as f:
            f.write(head + _BLOCK[: size - len(head)])
        paths.append(rel)
    return paths


def snapshot(root: Path, skip: str = ".syncd-trash") -> dict[str, tuple[int, int]]:
    """rel path → (inode, size) of every regular file under ``root``."""
    out: dict[str, tuple[int, int]] = {}
    stack = [""]
    while stack:
        rel_dir = stack.pop()
        with os.scandir(root / rel_dir if rel_dir else root) as it:
            for e in it:
                rel = f"{rel_dir}/{e.name}" if rel_dir else e.name
                if e.is_dir(follow_symlinks=False):
                    if rel != skip:
                        stack.append(rel)
                elif e.is_file(follow_symlinks=False):
                    st = e.stat(follow_symlinks=False)
                    out[rel] = (st.st_ino, st.st_size)
    return out


def mirror_diff(src: Path, dst: Path) -> int:
    """How many source files are missing on the target or have another size there."""
    a, b = snapshot(src), snapshot(dst)
    return sum(1 for p, (_, size) in a.items() if b.get(p, (0, -1))[1] != size)


def recopied(before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]]) -> int:
    return sum(1 for p, (ino, _) in before.items() if p in after and after[p][0] != ino)


def pct(data: list[float], q: float) -> float:
    """Percentile ``q`` (0–100) with linear interpolation."""
    if not data:
        return float("nan")
    if len(data) == 1:
        return data[0]
    return statistics.quantiles(data, n=100, method="inclusive")[round(q) - 1]


def med(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


class Runner:
    """A mirroring process whose output lines are timestamped (perf_counter) as they arrive."""

    name = "?"

    def __init__(self, src: Path, dst: Path) -> None:
        self.src, self.dst = src, dst
        self.home = fresh_dir(self.name, tempfile.gettempdir())  # config (and syncd's state)
        self.proc: subprocess.Popen[str] | None = None
        self.lines: list[tuple[float, str]] = []  # this process's output
        self.problems: list[str] = []  # warnings and errors of every process so far
        self.started = 0.0
        self.runs = 0  # processes started so far
        self._cond = threading.Condition()

    def _spawn(self, argv: list[str], env: dict[str, str] | None = None) -> None:
        self.lines = []
        self.runs += 1
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(
            argv,
            env=env,
            cwd="/",
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
        )
        threading.Thread(target=self._read, args=(self.proc,), daemon=True).start()

    def _read(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            with self._cond:
                self.lines.append((time.perf_counter(), line.rstrip("\n")))
                if any(w in line for w in (" WARNING ", " ERROR ", "Error:", "Warn:")):
                    when = f"start #{self.runs}, +{time.perf_counter() - self.started:.1f} s"
                    self.problems.append(f"[{when}] {line.rstrip()}")
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    @staticmethod
    def is_idle_line(line: str) -> bool:
        raise NotImplementedError

    def wait_idle(self, timeout: float) -> float:
        """Seconds from start until the output says the start-up walk and copies are done."""
        deadline = time.perf_counter() + timeout
        with self._cond:
            i = 0
            while True:
                while i < len(self.lines):
                    t, line = self.lines[i]
                    if self.is_idle_line(line):
                        return t - self.started
                    i += 1
                left = deadline - time.perf_counter()
                if left <= 0 or (self.proc is not None and self.proc.poll() is not None):
                    tail = "\n".join(line for _, line in self.lines[-5:])
                    raise TimeoutError(f"{self.name}: no expected log line; last lines:\n{tail}")
                self._cond.wait(min(left, 0.5))

    def ps(self) -> psutil.Process:
        assert self.proc is not None
        return psutil.Process(self.proc.pid)

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.home, ignore_errors=True)


class Syncd(Runner):
    """``python -m syncd run`` on one project with a ``local:`` target and its own state dir."""

    name = "syncd"

    def __init__(self, src: Path, dst: Path, delay: float, workers: int = 4) -> None:
        super().__init__(src, dst)
        self.workers = workers
        self.config = self.home / "syncd.yaml"
        self.set_delay(delay)

    def set_delay(self, delay: float) -> None:
        """(Re)write the config; the same file keeps the same index across restarts."""
        self.config.write_text(
            f"projects:\n  - name: {PROJECT}\n    path: {self.src}\n    mirror:\n"
            f'      to: "local:{self.dst}"\n      delay: {round(delay * 1000)}ms\n'
            f"      max_delay: 10s\n      workers: {self.workers}\n"
        )

    def start(self) -> None:
        env = dict(os.environ, PYTHONPATH=str(REPO / "daemon"), HOME=str(self.home))
        for var, sub in (
            ("XDG_STATE_HOME", "state"),
            ("XDG_CONFIG_HOME", "config"),
            ("XDG_RUNTIME_DIR", "run"),
        ):
            (self.home / sub).mkdir(mode=0o700, exist_ok=True)
            env[var] = str(self.home / sub)
        self._spawn([sys.executable, "-m", "syncd", "run", "-c", str(self.config)], env)

    @staticmethod
    def is_idle_line(line: str) -> bool:
        return IDLE_RE.search(line) is not None


def edit_latencies(
    src: Path, dst: Path, paths: list[str], n: int, timeout: float, seed: int = 1
) -> tuple[list[float], int]:
    """Append a line to ``n`` random files, one at a time; seconds until each target copy matches.

    The target is polled every ~1 ms (stat, then a read once the size fits).
    Returns (latencies of the edits that arrived, number that did not within ``timeout``).
    """
    rng = random.Random(seed)
    lat: list[float] = []
    missed = 0
    for i in range(n):
        rel = rng.choice(paths)
        line = f"# edit {i} {time.time():.6f}\n".encode()
        expected = (src / rel).read_bytes() + line
        target = dst / rel
        t0 = time.perf_counter()
        with open(src / rel, "ab") as f:
            f.write(line)
        while True:
            now = time.perf_counter()
            try:
                if os.stat(target).st_size == len(expected) and target.read_bytes() == expected:
                    lat.append(now - t0)
                    break
            except OSError:
                pass
            if now - t0 > timeout:
                missed += 1
                break
            time.sleep(0.001)
        time.sleep(rng.uniform(0.02, 0.08))
    return lat, missed


class PeakRss:
    """Samples a process's RSS (not its children's) every 0.1 s until ``stop()``; MB."""

    def __init__(self, proc: psutil.Process) -> None:
        self.proc, self.peak = proc, 0.0
        self._done = threading.Event()
        threading.Thread(target=self._sample, daemon=True).start()

    def _sample(self) -> None:
        while True:
            try:
                self.peak = max(self.peak, self.proc.memory_info().rss / 2**20)
            except psutil.Error:
                return
            if self._done.wait(0.1):
                return

    def stop(self) -> float:
        self._done.set()
        return self.peak


def idle_usage(proc: psutil.Process, seconds: float) -> tuple[float, float]:
    """(CPU % of one core over ``seconds``, RSS in MB at the end), children included."""

    def cpu() -> float:
        t = proc.cpu_times()
        return t.user + t.system + t.children_user + t.children_system

    c0, w0 = cpu(), time.perf_counter()
    time.sleep(seconds)
    c1, w1 = cpu(), time.perf_counter()
    return 100.0 * (c1 - c0) / (w1 - w0), proc.memory_info().rss / 2**20

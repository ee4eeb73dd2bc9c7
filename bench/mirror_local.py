"""Prints figures for the ``local:`` target, side by side with lsyncd 2.2 (default.rsync).

    .venv/bin/python -m bench.mirror_local            # full run: 20,000 files, ~20 min
    .venv/bin/python -m bench.mirror_local --quick    # smoke run: 2,000 files, ~2 min

On one generated tree (1–4 KB files), for each tool: the initial mirror (start
→ idle, files/s), a restart with no changes (start → idle, files re-copied =
target inodes that changed), idle CPU and RSS, and edit → target latency at
each delay (append a line to a random file, poll the target every ~1 ms until
its copy equals the source).  Latency runs restart the tool on the already
mirrored tree with the new delay, so they are measured while watching the
whole tree.  Figures are medians over ``--reps`` repetitions.

syncd's delay is a quiet window (a path goes once it has been quiet that
long); lsyncd's is a batch delay (a batch goes that long after its first
event).  For one isolated edit both mean "about delay".
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from .benchlib import (
    PeakRss,
    Runner,
    Syncd,
    edit_latencies,
    fresh_dir,
    idle_usage,
    machine,
    make_tree,
    med,
    mirror_diff,
    pct,
    recopied,
    scratch_base,
    snapshot,
    source_version,
)


class Lsyncd(Runner):
    """lsyncd 2.2 with ``default.rsync`` (archive) to a local folder, in the foreground."""

    name = "lsyncd"

    def __init__(self, src: Path, dst: Path, delay: float) -> None:
        super().__init__(src, dst)
        self.config = self.home / "lsyncd.lua"
        self.set_delay(delay)

    def set_delay(self, delay: float) -> None:
        self.config.write_text(
            "settings { nodaemon = true, insist = true }\n"
            f'sync {{ default.rsync, source = "{self.src}/", target = "{self.dst}/", '
            f"delay = {delay}, rsync = {{ archive = true }} }}\n"
        )

    @staticmethod
    def available() -> bool:
        return shutil.which("lsyncd") is not None and shutil.which("rsync") is not None

    def start(self) -> None:
        self._spawn(["lsyncd", "-nodaemon", str(self.config)])

    @staticmethod
    def is_idle_line(line: str) -> bool:
        return "Startup of" in line and "finished" in line  # its start-up rsync exited


Tool = Syncd | Lsyncd
R: dict[str, dict] = {}  # tool → figure name (or delay) → value


def say(text: str, end: str = "\n") -> None:
    print(text, end=end, flush=True)


class SyncdAt(Syncd):
    """The syncd of another checkout (``--baseline DIR``): its ``daemon/`` on PYTHONPATH."""

    name = "baseline"
    dirs: dict[str, Path] = {}  # tool name → that checkout's daemon/

    def __init__(self, tool: str, src: Path, dst: Path, delay: float) -> None:
        self.daemon_dir = self.dirs[tool]
        super().__init__(src, dst, delay)

    def start(self) -> None:
        env = dict(os.environ, PYTHONPATH=str(self.daemon_dir), HOME=str(self.home))
        for var, sub in (
            ("XDG_STATE_HOME", "state"),
            ("XDG_CONFIG_HOME", "config"),
            ("XDG_RUNTIME_DIR", "run"),
        ):
            (self.home / sub).mkdir(mode=0o700, exist_ok=True)
            env[var] = str(self.home / sub)
        self._spawn([sys.executable, "-m", "syncd", "run", "-c", str(self.config)], env)


def make_runner(tool: str, src: Path, dst: Path, delay: float) -> Tool:
    if tool in SyncdAt.dirs:
        return SyncdAt(tool, src, dst, delay)
    return Syncd(src, dst, delay) if tool == "syncd" else Lsyncd(src, dst, delay)


def initial_mirrors(tools: list[str], src: Path, work: Path, n_files: int, args) -> dict:
    """Mirror into fresh targets ``--reps`` times, the tools taking turns within each rep
    (so the machine's load hits them alike); returns the last runner of each (stopped)."""
    runners: dict[str, Tool] = {}
    times: dict[str, list[float]] = {t: [] for t in tools}
    peaks: dict[str, list[float]] = {t: [] for t in tools}
    cpus: dict[str, list[float]] = {t: [] for t in tools}
    for rep in range(args.reps):
        for tool in tools:
            old = runners.get(tool)
            if old is not None:
                old.cleanup()
                shutil.rmtree(old.dst, ignore_errors=True)
            dst = work / f"dst-{tool}-{rep}"
            dst.mkdir()
            runner = runners[tool] = make_runner(tool, src, dst, 1.0)
            runner.start()
            sampler = PeakRss(runner.ps())
            t = runner.wait_idle(args.timeout)
            peaks[tool].append(sampler.stop())
            cpus[tool].append(cpu_seconds(runner))
            wrong = mirror_diff(src, dst)
            times[tool].append(t)
            say(
                f"  {tool} initial mirror #{rep + 1}: {t:.2f} s, {n_files / t:,.0f} files/s, ",
                end="",
            )
            say(f"CPU {cpus[tool][-1]:.2f} s, {wrong} files missing or wrong")
            R[tool]["wrong"] = R[tool].get("wrong", 0) + wrong
            if rep == args.reps - 1:
                time.sleep(args.settle)
                R[tool]["cpu_first"], R[tool]["rss_first"] = idle_usage(runner.ps(), args.idle)
                say(f"  {tool} idle after the mirror: CPU {R[tool]['cpu_first']:.2f} %, ", end="")
                say(f"RSS {R[tool]['rss_first']:.1f} MB")
            runner.stop()
    for tool in tools:
        R[tool]["mirror_s"] = med(times[tool])
        R[tool]["mirror_best"] = min(times[tool])
        R[tool]["mirror_cpu"] = med(cpus[tool])
        R[tool]["mirror_peak"] = med(peaks[tool])
    return runners


def cpu_seconds(runner: Tool) -> float:
    """CPU time the tool used so far, its exited children (lsyncd's rsync) included: the
    figure the machine's load disturbs least (wall time waits for other jobs' cores)."""
    t = runner.ps().cpu_times()
    return t.user + t.system + t.children_user + t.children_system


def restarts(tool: str, runner: Tool, args) -> None:
    times, copies = [], []
    for rep in range(args.reps):
        before = snapshot(runner.dst)
        runner.start()
        times.append(runner.wait_idle(args.timeout))
        copies.append(recopied(before, snapshot(runner.dst)))
        say(f"  {tool} restart #{rep + 1}: {times[-1]:.2f} s to idle, {copies[-1]} re-copied")
        if rep < args.reps - 1:
            runner.stop()
    R[tool]["restart_s"] = med(times)
    R[tool]["recopied"] = max(copies)
    time.sleep(args.settle)
    cpu, rss = idle_usage(runner.ps(), args.idle)
    R[tool]["cpu"], R[tool]["rss"] = cpu, rss
    say(f"  {tool} idle over {args.idle:.0f} s: CPU {cpu:.2f} %, RSS {rss:.1f} MB")
    runner.stop()


def latencies(runners: dict[str, Tool], src: Path, paths: list[str], args) -> None:
    for delay in args.delays:
        per_tool: dict[str, list[tuple[float, float, float, int]]] = {t: [] for t in runners}
        for rep in range(args.reps):
            for tool, runner in runners.items():  # interleaved, so drift hits both alike
                runner.set_delay(delay)
                runner.start()
                runner.wait_idle(args.timeout)
                time.sleep(args.settle)
                lat, missed = edit_latencies(
                    src, runner.dst, paths, args.edits, max(10.0, 10 * delay), seed=rep
                )
                runner.stop()
                row = (pct(lat, 50), pct(lat, 95), max(lat, default=float("nan")), missed)
                per_tool[tool].append(row)
                say(
                    f"  {tool} delay {delay:g} s #{rep + 1}: p50 {row[0] * 1e3:.0f} ms, "
                    f"p95 {row[1] * 1e3:.0f} ms, max {row[2] * 1e3:.0f} ms, missed {missed}"
                )
        for tool, rows in per_tool.items():
            R[tool][delay] = (
                med([r[0] for r in rows]),
                med([r[1] for r in rows]),
                max(r[2] for r in rows),
                sum(r[3] for r in rows),
            )


def table(args, n_files: int) -> None:
    tools = list(R)
    say(f"\n== local: target, {n_files:,} files, {machine()} (medians of {args.reps}) ==")
    say(f"{'':<38}" + "".join(f"{t:>14}" for t in tools) + f"{'target':>12}")

    def row(label: str, key, fmt, target: str = "") -> None:
        cells = "".join(f"{fmt(R[t][key]) if key in R[t] else '-':>14}" for t in tools)
        say(f"{label:<38}{cells}{target:>12}")

    for d in args.delays:
        row(f"edit→target p50, delay {d:g} s", d, lambda v: f"{v[0] * 1e3:.0f} ms")
        row(f"edit→target p95, delay {d:g} s", d, lambda v: f"{v[1] * 1e3:.0f} ms")
        row(f"edit→target max, delay {d:g} s", d, lambda v: f"{v[2] * 1e3:.0f} ms")
        overhead = lambda v, d=d: f"{(v[1] - d) * 1e3:.0f} ms"  # noqa: E731
        row(f"overhead = p95 − delay, delay {d:g} s", d, overhead, "< 50 ms")
        row(f"edits missed (of {args.edits}×{args.reps})", d, lambda v: str(v[3]))
    row("initial mirror: start → idle", "mirror_s", lambda v: f"{v:.2f} s")
    row("initial mirror: fastest run", "mirror_best", lambda v: f"{v:.2f} s")
    row("initial mirror: files/s", "mirror_s", lambda v: f"{n_files / v:,.0f}")
    first = R[tools[0]].get("mirror_s")
    if first:  # the first column is the "before" when --baseline is given
        row(f"initial mirror: × {tools[0]}'s files/s", "mirror_s", lambda v: f"{first / v:.2f}×")
    row("initial mirror: CPU s (all cores)", "mirror_cpu", lambda v: f"{v:.2f} s")
    row("initial mirror: files per CPU s", "mirror_cpu", lambda v: f"{n_files / v:,.0f}")
    row("files wrong after the mirrors", "wrong", str, "0")
    row("restart, no changes: start → idle", "restart_s", lambda v: f"{v:.2f} s")
    row("restart: files re-copied", "recopied", str, "0")
    cpu, mb = (lambda v: f"{v:.2f} %"), (lambda v: f"{v:.1f} MB")
    row(f"idle CPU ({args.idle:.0f} s) after the mirror", "cpu_first", cpu, "< 0.5 %")
    row(f"idle CPU ({args.idle:.0f} s) after a restart", "cpu", cpu, "< 0.5 %")
    row("RSS peak during the initial mirror", "mirror_peak", mb)
    row("RSS idle after the initial mirror", "rss_first", mb, "< 120 MB")
    row("RSS idle after a restart", "rss", mb, "< 120 MB")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="2,000 files, 10 edits, 1 rep, 10 s idle")
    ap.add_argument("--files", type=int, default=20_000)
    ap.add_argument("--folders", type=int, default=2_000)
    ap.add_argument("--edits", type=int, default=50)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--idle", type=float, default=60.0, help="seconds of idle CPU measurement")
    ap.add_argument("--settle", type=float, default=3.0, help="seconds after idle before measuring")
    ap.add_argument("--delays", type=float, nargs="+", default=[0.2, 1.0])
    ap.add_argument("--timeout", type=float, default=600.0, help="per wait for idle, seconds")
    ap.add_argument("--no-lsyncd", action="store_true")
    ap.add_argument(
        "--baseline",
        type=Path,
        action="append",
        default=[],
        help="also run the syncd of this other checkout (e.g. `git worktree add` of main), "
        "taking turns with this one; may be given more than once (a column each, named "
        "by the checkout's commit)",
    )
    ap.add_argument(
        "--mirror-only",
        action="store_true",
        help="only the initial mirrors (and idle after them): no restarts, no latency runs",
    )
    args = ap.parse_args()
    if args.quick:
        args.files, args.folders, args.edits, args.reps, args.idle = 2_000, 200, 10, 1, 10.0
    tools = []
    for checkout in args.baseline:
        name = checkout_name(checkout)
        SyncdAt.dirs[name] = checkout.resolve() / "daemon"
        tools.append(name)
    tools.append("syncd")
    if args.no_lsyncd or not Lsyncd.available():
        say("lsyncd not installed" if not args.no_lsyncd else "lsyncd skipped (--no-lsyncd)")
    else:
        tools.append("lsyncd")
    for t in tools:
        R[t] = {}
    say(f"machine: {machine()}; syncd: {source_version()}; {load()}")
    work = fresh_dir("local", scratch_base(args.files * 3000 * (1 + len(tools))))
    runners: dict[str, Tool] = {}
    try:
        t0 = time.perf_counter()
        paths = make_tree(work / "src", args.files, args.folders)
        say(f"tree: {args.files:,} files in {args.folders:,} folders under {work}, "
            f"made in {time.perf_counter() - t0:.1f} s")  # fmt: skip
        say(f"[initial mirror] {', '.join(tools)} taking turns")
        runners = initial_mirrors(tools, work / "src", work, args.files, args)
        if not args.mirror_only:
            for tool in tools:
                say(f"[{tool}] restart, idle")
                restarts(tool, runners[tool], args)
        if not args.mirror_only:
            say("[latency] edit → target, tools interleaved")
            latencies(runners, work / "src", paths, args)
        for tool, runner in runners.items():
            for line in runner.problems[:5]:
                say(f"  {tool} logged: {line}")
    finally:
        for runner in runners.values():
            runner.cleanup()
        shutil.rmtree(work, ignore_errors=True)
    table(args, args.files)
    say(f"after the run: {load()}")


def checkout_name(checkout: Path) -> str:
    """A baseline's column: the short commit of that checkout (else its folder's name)."""
    out = subprocess.run(
        ["git", "-C", str(checkout), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    )
    return out.stdout.strip() or checkout.name


def load() -> str:
    """The machine's load average (1, 5, 15 min): how much the figures had to share the CPUs."""
    return "load average " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


if __name__ == "__main__":
    main()

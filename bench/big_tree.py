"""Prints figures for syncd on a big tree: 200,000 files in 20,000 folders, ``local:`` target.

    .venv/bin/python -m bench.big_tree                              # full run, ~5 min
    .venv/bin/python -m bench.big_tree --files 20000 --folders 2000 # smaller

This is the size where watchdog's default inotify mask (which adds "opened"
and "closed without writing") loops on queue overflows and delivers no edit;
syncd passes an event filter, and this checks that edits still arrive: after
the initial mirror, ``--edits`` single-file edits spread over the tree, one at
a time, each waited for up to ``--edit-timeout`` seconds.  Then idle CPU and
RSS.  The trees are removed at the end.
"""

from __future__ import annotations

import argparse
import random
import shutil
import time

from .benchlib import (
    PeakRss,
    Syncd,
    edit_latencies,
    fresh_dir,
    idle_usage,
    machine,
    make_tree,
    mirror_diff,
    pct,
    recopied,
    scratch_base,
    snapshot,
    source_version,
)


def say(text: str) -> None:
    print(text, flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--files", type=int, default=200_000)
    ap.add_argument("--folders", type=int, default=20_000)
    ap.add_argument("--edits", type=int, default=100)
    ap.add_argument("--edit-timeout", type=float, default=10.0)
    ap.add_argument("--delay", type=float, default=0.2, help="syncd's quiet window, seconds")
    ap.add_argument("--idle", type=float, default=60.0, help="seconds of idle CPU measurement")
    ap.add_argument("--settle", type=float, default=5.0, help="seconds after idle before measuring")
    ap.add_argument("--timeout", type=float, default=1800.0, help="for the initial mirror")
    args = ap.parse_args()

    say(f"machine: {machine()}; syncd: {source_version()}")
    work = fresh_dir("big", scratch_base(args.files * 3000 * 2))
    src, dst = work / "src", work / "dst"
    daemon: Syncd | None = None
    fig: dict[str, float] = {}
    try:
        t0 = time.perf_counter()
        paths = make_tree(src, args.files, args.folders)
        made = time.perf_counter() - t0
        say(f"tree: {args.files:,} files in {args.folders:,} folders under {work}, {made:.1f} s")

        daemon = Syncd(src, dst, args.delay)
        daemon.start()
        sampler = PeakRss(daemon.ps())
        fig["mirror_s"] = daemon.wait_idle(args.timeout)
        fig["peak_rss"] = sampler.stop()
        times = daemon.ps().cpu_times()
        fig["mirror_cpu"] = times.user + times.system  # less disturbed by load than wall time
        fig["wrong"] = mirror_diff(src, dst)
        say(
            f"initial mirror: {fig['mirror_s']:.1f} s, {args.files / fig['mirror_s']:,.0f} files/s,"
            f" CPU {fig['mirror_cpu']:.1f} s,"
            f" {fig['wrong']:.0f} files missing or wrong on the target"
        )
        usage = daemon.ps()
        fig["mirror_rss"] = usage.memory_info().rss / 2**20

        time.sleep(args.settle)
        # Spread the edits: one file from each of `edits` evenly spaced slices of the tree.
        step = max(1, len(paths) // args.edits)
        spread = [paths[i * step + random.Random(i).randrange(step)] for i in range(args.edits)]
        lat, missed = edit_latencies(src, dst, spread, args.edits, args.edit_timeout)
        fig.update(arrived=len(lat), p50=pct(lat, 50), p95=pct(lat, 95), max=max(lat, default=0))
        say(
            f"edits: {len(lat)}/{args.edits} arrived within {args.edit_timeout:g} s; "
            f"p50 {fig['p50'] * 1e3:.0f} ms, p95 {fig['p95'] * 1e3:.0f} ms, "
            f"max {fig['max'] * 1e3:.0f} ms (delay {args.delay:g} s)"
        )

        time.sleep(args.settle)
        fig["cpu"], fig["rss"] = idle_usage(usage, args.idle)
        say(f"idle over {args.idle:.0f} s: CPU {fig['cpu']:.2f} %, RSS {fig['rss']:.1f} MB")

        scans = sum(1 for _, line in daemon.lines if "→ scanning" in line)
        overflows = sum(1 for _, line in daemon.lines if "overflow" in line)
        say(f"full scans so far: {scans} (1 = only the start-up walk); overflows: {overflows}")

        before = snapshot(dst)
        daemon.stop()
        daemon.start()
        fig["restart_s"] = daemon.wait_idle(args.timeout)
        fig["recopied"] = recopied(before, snapshot(dst))
        time.sleep(args.settle)
        fig["restart_rss"] = daemon.ps().memory_info().rss / 2**20
        say(
            f"restart, no changes: {fig['restart_s']:.1f} s to idle, {fig['recopied']:.0f} "
            f"re-copied, RSS {fig['restart_rss']:.0f} MB"
        )
        for line in daemon.problems[:5]:
            say(f"syncd logged: {line}")
    finally:
        if daemon is not None:
            daemon.cleanup()
        shutil.rmtree(work, ignore_errors=True)

    say(f"\n== big tree: {args.files:,} files / {args.folders:,} folders, {machine()} ==")
    rows = [
        ("initial mirror: start → idle", f"{fig['mirror_s']:.1f} s"),
        ("initial mirror: files/s", f"{args.files / fig['mirror_s']:,.0f}"),
        ("initial mirror: CPU s / files per CPU s",
         f"{fig['mirror_cpu']:.1f} s / {args.files / fig['mirror_cpu']:,.0f}"),
        ("files missing or wrong after it", f"{fig['wrong']:.0f}"),
        (f"edits arrived (≤ {args.edit_timeout:g} s)", f"{fig['arrived']:.0f}/{args.edits}"),
        (f"edit→target p50 / p95 / max, delay {args.delay:g} s",
         f"{fig['p50'] * 1e3:.0f} / {fig['p95'] * 1e3:.0f} / {fig['max'] * 1e3:.0f} ms"),
        (f"idle CPU over {args.idle:.0f} s", f"{fig['cpu']:.2f} % (target < 0.5 %)"),
        ("RSS peak during the initial mirror", f"{fig['peak_rss']:.0f} MB"),
        (f"RSS after the mirror / idle {args.idle:.0f} s later",
         f"{fig['mirror_rss']:.0f} / {fig['rss']:.0f} MB (target < 120 MB)"),
        ("restart, no changes: start → idle", f"{fig['restart_s']:.1f} s"),
        ("restart: files re-copied / RSS after it",
         f"{fig['recopied']:.0f} / {fig['restart_rss']:.0f} MB"),
    ]  # fmt: skip
    for label, value in rows:
        say(f"{label:<44}{value}")


if __name__ == "__main__":
    main()

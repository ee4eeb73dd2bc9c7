"""The long chaos run (issue #8): ≥ 5,000 operations and ≥ 20 kill -9s, on both remotes.

    .venv/bin/python bench/chaos.py                       # 25 rounds × 200 ops, 25 kills
    .venv/bin/python bench/chaos.py --seed 7 --rounds 5   # a shorter replay of seed 7
    SYNCD_CHAOS_SEED=7 .venv/bin/python bench/chaos.py    # the same seed, from the env

The harness is tests/chaos/ (the CI version is tests/test_chaos.py): a seeded
random workload on a project mirrored to ``local:`` and one mirrored to the fake
Drive (run one after the other, each with its own daemon, so a project stuck on
one remote does not hold up the other), Drive failing requests, the daemon
killed with SIGKILL and restarted at random moments.  At the end of each round
the faults stop and the run waits for `status` idle with nothing pending, checks,
asks `sync`, waits and checks again.

Printed per remote: operations, kills, Drive requests and injected faults, time
to quiescence (median, p95, max), and the counts summed over the checkpoints (a
file stale for three rounds counts three times) — lost, stale, extra, conflict
copies nobody caused, duplicated titles, untrashed deletions, foreign items
touched, temp leftovers — "while idle" (what a user sees while status says idle)
and "after sync", then the same counts at the last checkpoint.  Figures, not a
verdict: the exit code is 0 either way.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

from tests.chaos.invariants import KINDS
from tests.chaos.runner import ChaosRun, Report, Settings, report_json
from tests.chaos.workload import OPS

OPS_NAMES = [name for name, _ in OPS]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def figures(remote: str, r: Report) -> list[str]:
    times = r.quiet_times()
    never = sum(1 for rnd in r.rounds for t in rnd.quiet_s.values() if t is None)
    lines = [
        f"{remote}: seed {r.settings.seed}, {r.ops} operations, {r.kills} kills, "
        f"{len(r.rounds)} rounds, {r.seconds:.0f} s",
    ]
    if remote == "gdrive":
        lines.append(f"  Drive requests {r.requests}, injected faults {r.faults}")
    if times:
        lines.append(
            f"  time to quiescence: median {statistics.median(times):.1f} s, "
            f"p95 {pct(times, 0.95):.1f} s, max {max(times):.1f} s; "
            f"not quiet within {r.settings.quiet_timeout:.0f} s in {never} rounds"
        )
    else:
        lines.append("  never quiet")
    for which, label in (("idle", "while idle"), ("final", "after sync")):
        c = r.totals(which)[remote]
        lines.append(f"  {label:10}: " + " ".join(f"{k}={getattr(c, k)}" for k in KINDS))
        for kind, examples in c.examples.items():
            lines.append(f"      {kind}: {', '.join(examples[:4])}")
    if r.rounds:
        end = r.rounds[-1].final[remote]
        lines.append("  at the end: " + " ".join(f"{k}={getattr(end, k)}" for k in KINDS))
    lines.append(f"  file watcher restarts (its watchdog thread died): {r.watcher_restarts}")
    ops = ", ".join(f"{k} {v}" for k, v in sorted(r.op_counts.items(), key=lambda kv: -kv[1]))
    lines.append(f"  operations by kind: {ops}")
    return lines


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    env_seed = os.environ.get("SYNCD_CHAOS_SEED")
    ap.add_argument("--seed", type=int, default=int(env_seed) if env_seed else None)
    ap.add_argument("--rounds", type=int, default=25)
    ap.add_argument("--ops", type=int, default=200, help="operations per round")
    ap.add_argument("--kills", type=int, default=25, help="kill -9s per remote")
    ap.add_argument("--remotes", default="local,gdrive")
    ap.add_argument("--fault-rate", type=float, default=0.05)
    ap.add_argument("--quiet-timeout", type=float, default=30.0)
    ap.add_argument(
        "--drive-create-rate",
        type=float,
        default=None,
        help="files and folders the fake Drive lets syncd create a second (default: Drive's "
        "own ~3/s); a higher rate keeps the rounds about faults and kills, not creation pace",
    )
    ap.add_argument(
        "--without",
        default="",
        help="operation kinds to leave out, comma-separated (e.g. file_to_dir, to see what "
        "else happens on a remote that one defect would stall)",
    )
    ap.add_argument("--keep", action="store_true", help="keep the scratch folder")
    ap.add_argument("--json", type=Path, help="also write the figures to this file")
    args = ap.parse_args()
    # SIGTERM (timeout, kill) must still run the clean-up below: no daemon left behind.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    seed = args.seed if args.seed is not None else random.randrange(1, 10**6)
    print(f"chaos seed {seed} (replay: SYNCD_CHAOS_SEED={seed} {Path(sys.argv[0]).name})")
    if args.without:
        print(f"operations left out: {args.without}")
    scratch = Path(tempfile.mkdtemp(prefix="syncd-chaos-"))
    out: dict[str, object] = {"seed": seed}
    try:
        for remote in args.remotes.split(","):
            settings = Settings(
                seed=seed,
                rounds=args.rounds,
                ops_per_round=args.ops,
                kills=args.kills,
                remotes=(remote,),
                fault_rate=args.fault_rate,
                quiet_timeout=args.quiet_timeout,
                drive_create_rate=args.drive_create_rate,
                only=tuple(op for op in OPS_NAMES if op not in args.without.split(","))
                if args.without
                else None,
            )
            t0 = time.monotonic()
            report = ChaosRun(settings, scratch / remote, say=print).run()
            print("\n".join(figures(remote, report)), flush=True)
            out[remote] = {**report_json(report), "wall_s": round(time.monotonic() - t0, 1)}
    finally:
        if not args.keep:
            shutil.rmtree(scratch, ignore_errors=True)
        else:
            print(f"kept {scratch}")
    if args.json:
        args.json.write_text(json.dumps(out, indent=2, ensure_ascii=False, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``syncd train`` and ``syncd runs`` (list, ``stop``): through the daemon when it runs.

``train`` checks the settings here first (a bad ``train:`` key is a usage error, exit 2,
before anything is uploaded), then asks the daemon, which snapshots, pushes and follows
the run; ``--wait`` then streams the run's state changes and log lines and exits 0 on
COMPLETE, 1 otherwise, once the outputs are home. Without a daemon the same happens in
this process (``--wait`` follows the run here; without it, the next ``syncd run`` does).
``runs`` reads the records from the state db; ``runs stop`` asks for confirmation first.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError, SyncdError
from .context import EXIT_FAIL, EXIT_NOT_RUNNING, EXIT_OK, EXIT_USAGE, ask, load, open_db

if TYPE_CHECKING:
    from ..config import Config, ProjectConfig
    from ..db.statedb import StateDB
    from ..train.service import TrainService

TRAIN_TIMEOUT_S = 7200.0  # the daemon answers once the snapshot is ready and the push is done
WATCH_WAIT_S = 20.0


def _project(config: Config, name: str) -> ProjectConfig:
    from ..train.launch import train_config
    from ..train.model import TrainError

    pc = config.project(name)
    try:
        train_config(pc)
    except TrainError as exc:
        raise ConfigError(exc.message, exc.remedy) from None
    return pc


def _local_service(config: Config, db: StateDB, pc: ProjectConfig) -> TrainService:
    from ..service.training import train_service
    from ..snapshot.service import SnapshotService

    return train_service(pc, db, config.kaggle, SnapshotService(pc, db, config.kaggle))


# --- printing ------------------------------------------------------------------------------


def print_event(event: dict[str, Any]) -> None:
    kind, text = event["kind"], event["text"]
    if kind == "log":
        out = sys.stderr if event.get("stream") == "stderr" else sys.stdout
        out.write(text if text.endswith("\n") else text + "\n")
        out.flush()
    elif kind == "note":
        print(f"{event['run']}: {text}", file=sys.stderr, flush=True)
    else:
        print(f"{event['run']}: {kind + ': ' if kind != 'state' else ''}{text}", flush=True)


def _ending(run: dict[str, Any]) -> int:
    state = run["state"]
    outputs = run["outputs"]
    if state == "complete":
        print(f"{run['id']} COMPLETE: {outputs['files']} output file(s) in {outputs['folder']}")
        return EXIT_OK
    print(
        f"{run['id']} {state.upper()}: {run.get('failure') or 'no reason given'}", file=sys.stderr
    )
    if outputs["state"] == "fetched":
        print(f"{run['id']}: its outputs and log are in {outputs['folder']}", file=sys.stderr)
    return EXIT_FAIL


# --- syncd train ---------------------------------------------------------------------------


def cmd_train(args: argparse.Namespace) -> int:
    from ..service.ipc import DaemonNotRunning
    from ..train.preflight import check_settings

    config = load(args)
    pc = _project(config, args.project)
    assert pc.train is not None
    gpu, command = args.gpu or pc.train.machine_shape, args.command or pc.train.command
    check_settings(pc.name, pc.train, gpu, command)
    fields = {"message": args.message, "gpu": args.gpu, "command": args.command}
    try:
        reply = ask(args, "train", project=pc.name, timeout=TRAIN_TIMEOUT_S, **fields)
    except DaemonNotRunning:
        return _train_here(config, pc, args)
    for line in reply["said"]:
        print(line, flush=True)
    run = reply["run"]
    if run["state"] == "failed":
        return _ending(run)
    if not args.wait:
        print(f"{run['id']} is {run['state']}; the daemon follows it (`syncd runs`)")
        return EXIT_OK
    return _watch(args, run["id"])


def _watch(args: argparse.Namespace, run_id: str) -> int:
    """``--wait`` through the daemon: its events for the run, until the outputs are home."""
    from ..service.ipc import DaemonNotRunning

    cursor = 1
    while True:
        try:
            reply = ask(args, "runs", run=run_id, after=cursor, wait=WATCH_WAIT_S, timeout=60)
        except KeyboardInterrupt:
            print(f"\n{run_id} goes on: the daemon follows it (`syncd runs`)", file=sys.stderr)
            return EXIT_FAIL
        except (DaemonNotRunning, OSError, SyncdError) as exc:
            print(
                f"syncd: stopped following {run_id} ({exc}); the daemon follows it again when "
                "it runs (`syncd runs`)",
                file=sys.stderr,
            )
            return EXIT_NOT_RUNNING
        for event in reply["events"]:
            print_event(event)
        cursor = reply["cursor"]
        if reply["done"]:
            return _ending(reply["run"])


def _train_here(config: Config, pc: ProjectConfig, args: argparse.Namespace) -> int:
    """No daemon: snapshot and push from this process; ``--wait`` follows the run here."""
    db = open_db(config)
    service = _local_service(config, db, pc)
    try:
        record = service.train(
            args.message, gpu=args.gpu, command=args.command, say=lambda t: print(t, flush=True)
        )
        if record.state == "failed":
            return _ending(record.to_dict())
        if not args.wait:
            print(
                f"{record.id} is {record.state}; syncd is not running: start it (`syncd run`) to "
                "follow the run and bring its outputs home, or use `syncd train --wait`"
            )
            return EXIT_OK
        try:
            record = service.follow_until_done(record.id, lambda e: print_event(e.to_dict()))
        except KeyboardInterrupt:
            print(
                f"\n{record.id} goes on: the next `syncd run` follows it and brings its outputs "
                "home",
                file=sys.stderr,
            )
            return EXIT_FAIL
        return _ending(record.to_dict())
    finally:
        service.close()
        db.close()


# --- syncd runs [PROJECT] | syncd runs stop RUN --------------------------------------------


def cmd_runs(args: argparse.Namespace) -> int:
    words = list(args.words)
    if words[:1] == ["stop"] and len(words) == 2:
        return _stop(args, words[1])
    if len(words) > 1:
        print("syncd: usage: syncd runs [PROJECT] | syncd runs stop RUN", file=sys.stderr)
        return EXIT_USAGE
    from ..train.store import RunStore

    config = load(args)
    if words:
        _project(config, words[0])
    db = open_db(config)
    try:
        runs = RunStore(db).runs(words[0] if words else None, limit=args.limit)
    finally:
        db.close()
    known = {pc.name for pc in config.projects}
    rows = [r.to_dict() for r in runs if r.project in known]
    if args.json:
        print(json.dumps(rows, indent=2))
    elif not rows:
        print("no runs yet (start one with `syncd train PROJECT`)")
    else:
        for line in run_table(rows):
            print(line)
    return EXIT_OK


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    minutes = int(seconds // 60)
    return f"{seconds:.0f} s" if seconds < 60 else f"{minutes // 60} h {minutes % 60:02d} min"


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


def _outputs(run: dict[str, Any]) -> str:
    out = run["outputs"]
    if out["state"] == "fetched":
        refused = f", {len(out['refused'])} refused" if out["refused"] else ""
        return f"{out['files']} files, {_size(out['bytes'])}{refused}"
    return {"pending": "fetching", "none": "none"}.get(out["state"] or "", "-")


def _snapshot(run: dict[str, Any]) -> str:
    """The snapshot column: v7, or v7+d3 when the run also attached data version 3."""
    data = run.get("data")
    return f"v{run['snapshot_version']}" + (f"+d{data['version']}" if data else "")


def run_table(runs: list[dict[str, Any]]) -> list[str]:
    """``syncd runs``: one line per run, newest first, with the failure under it."""
    head = f"{'run':6} {'project':12} {'snapshot':8} {'accelerator':15} {'state':9} "
    lines = [head + f"{'started (UTC)':20} {'duration':12} outputs"]
    for r in runs:
        lines.append(
            f"{r['id']:6} {r['project'][:12]:12} {_snapshot(r):8} "
            f"{r['machine_shape'][:15]:15} {r['state']:9} {r['started_at'] or '-':20} "
            f"{_duration(r['duration_s']):12} {_outputs(r)}"
        )
        if r["failure"]:
            lines.append(f"{'':6} {r['failure']}")
        for refused in r["outputs"]["refused"]:
            lines.append(f"{'':6} refused output {refused}")
        if r["last_error"]:
            lines.append(f"{'':6} last poll: {r['last_error']}")
    return lines


def _stop(args: argparse.Namespace, run_id: str) -> int:
    from ..service.ipc import DaemonNotRunning
    from ..train.service import stop_warning
    from ..train.store import RunStore

    config = load(args)
    db = open_db(config)
    try:
        record = RunStore(db).find(run_id)
        if not record.active:
            raise SyncdError(f"{record.id} is not running: it is {record.state}")
        print(stop_warning(record), flush=True)
        if not args.yes and not _confirmed(record.id):
            print(f"{record.id} keeps running.")
            return EXIT_FAIL
        try:
            stopped = ask(args, "runs_stop", run=record.id, timeout=120)
        except DaemonNotRunning:
            pc = _project(config, record.project)
            service = _local_service(config, db, pc)
            try:
                stopped = service.stop(record.id).to_dict()
            finally:
                service.close()
    finally:
        db.close()
    print(
        f"stopped {stopped['id']}: {stopped['kernel']} is deleted; what it logged so far is in "
        f"{stopped['outputs']['folder']}"
    )
    return EXIT_OK


def _confirmed(run_id: str) -> bool:
    if not sys.stdin.isatty():
        raise SyncdError(f"not stopping {run_id} without a confirmation", "run it again with --yes")
    answer = input(f"Stop {run_id}? [y/N] ").strip().lower()
    return answer in ("y", "yes")

"""``syncd snapshot`` (through the daemon when it runs, else in-process) and ``syncd snapshots``."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

from ..errors import SyncdError
from .context import EXIT_FAIL, EXIT_OK, config_path, load, open_db

if TYPE_CHECKING:
    from ..config import Config
    from ..db.statedb import StateDB
    from ..snapshot.service import SnapshotService


def _snapshot_service(config: Config, db: StateDB, name: str | None) -> SnapshotService:
    from ..snapshot.service import SnapshotService

    candidates = [pc for pc in config.projects if pc.snapshot is not None]
    if name:
        pc = config.project(name)
        if pc.snapshot is None:
            raise SyncdError(f"project {name!r} has no `snapshot:` section in {config.path}")
    elif len(candidates) == 1:
        pc = candidates[0]
    else:
        raise SyncdError(
            "name the project (syncd snapshot PROJECT)",
            "projects with snapshots: " + (", ".join(p.name for p in candidates) or "none"),
        )
    return SnapshotService(pc, db, config.kaggle)


def cmd_snapshot(args: argparse.Namespace) -> int:
    from ..service.ipc import DaemonNotRunning, request, socket_path

    fields = {
        "project": args.project,
        "message": args.message,
        "force": args.force,
        "wait": args.wait,
    }
    try:
        # A snapshot through the daemon blocks on the socket until Kaggle has processed it.
        reply = request(socket_path(config_path(args)), "snapshot", timeout=7200, **fields)
        print(reply["message"])
        return EXIT_FAIL if reply["status"] in ("failed", "error") else EXIT_OK
    except DaemonNotRunning:
        pass
    config = load(args)
    db = open_db(config)
    try:
        service = _snapshot_service(config, db, args.project)
        try:
            result = service.take(
                "manual",
                args.message,
                force=args.force,
                wait=args.wait,
                progress=sys.stderr.isatty(),
            )
        finally:
            service.close()
    finally:
        db.close()
    print(result.message)
    return EXIT_FAIL if result.status in ("failed", "error") else EXIT_OK


def cmd_snapshots(args: argparse.Namespace) -> int:
    from .render import snapshot_history

    config = load(args)
    db = open_db(config)
    try:
        service = _snapshot_service(config, db, args.project)
        try:
            history = service.history()
        finally:
            service.close()
    finally:
        db.close()
    if args.json:
        print(json.dumps(history, indent=2))
        return EXIT_OK
    if not history:
        print("no snapshots yet (take one with `syncd snapshot`)")
        return EXIT_OK
    for line in snapshot_history(history):
        print(line)
    return EXIT_OK

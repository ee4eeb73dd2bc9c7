"""Commands about the daemon and the mirror: run, status, pause, resume, sync, reload, stop.

Each one talks to the running daemon over its socket; without one, status
reads the state db, pause/resume record what the next start obeys, and
``sync --once`` mirrors in-process.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from typing import TYPE_CHECKING

from .. import __version__
from .context import EXIT_FAIL, EXIT_NOT_RUNNING, EXIT_OK, ask, load, open_db

if TYPE_CHECKING:
    from ..config import Config

log = logging.getLogger("syncd")


def cmd_run(args: argparse.Namespace) -> int:
    from ..service.daemon import Daemon
    from ..service.lock import instance_lock

    config = load(args)
    lock = instance_lock(config.path)
    lock.acquire()  # before the db: a second daemon must not touch the first one's index
    db = open_db(config)
    log.info("syncd %s starting (pid %d, config %s)", __version__, os.getpid(), config.path)
    try:
        Daemon(config, db).run_forever()
    finally:
        db.close()
        lock.release()
    return EXIT_OK


def cmd_status(args: argparse.Namespace) -> int:
    from ..service.ipc import DaemonNotRunning
    from ..service.status import status_from_disk
    from .render import render

    code = EXIT_OK
    try:
        status = ask(args, "status", project=args.project)
    except DaemonNotRunning:
        code = EXIT_NOT_RUNNING
        config = load(args)
        if args.project:
            config.project(args.project)  # a clear error for a name that isn't there
        db = open_db(config)
        try:
            status = status_from_disk(config, db)
        finally:
            db.close()
        if args.project:
            status["projects"] = [p for p in status["projects"] if p["name"] == args.project]
    if args.json:
        print(json.dumps(status, indent=2))
    else:
        print(render(status))
    return code


def _control(args: argparse.Namespace, cmd: str, done: str, **fields: object) -> int:
    """Send pause/resume/sync/reload/stop to the daemon and say what happened."""
    from ..service.ipc import DaemonNotRunning

    project = getattr(args, "project", None)
    try:
        ask(args, cmd, project=project, **fields)
    except DaemonNotRunning:
        config = load(args)
        if cmd in ("pause", "resume"):
            return _control_offline(config, cmd, project, bool(fields.get("confirm_deletes")))
        hint = " (use `syncd sync --once` without a daemon)" if cmd == "sync" else ""
        print(f"syncd is not running for {config.path}{hint}.", file=sys.stderr)
        return EXIT_NOT_RUNNING
    print(done.format(project or "all projects"))
    return EXIT_OK


def _control_offline(config: Config, cmd: str, project: str | None, confirm: bool) -> int:
    """pause/resume without a daemon: record it, so the next start obeys it."""
    db = open_db(config)
    try:
        for pc in [config.project(project)] if project else config.projects:
            if cmd == "pause":
                db.set_paused(pc.name, "user", "paused by the user")
            elif db.project(pc.name).paused == "deletes" and not confirm:
                print(
                    f"{pc.name} holds back deletions; resume it with --confirm-deletes.",
                    file=sys.stderr,
                )
                return EXIT_FAIL
            else:
                db.set_paused(pc.name, None)
    finally:
        db.close()
    what = "paused" if cmd == "pause" else "resumed"
    print(f"syncd is not running; {project or 'all projects'} will start {what}.")
    return EXIT_OK


def cmd_pause(args: argparse.Namespace) -> int:
    return _control(args, "pause", "paused {}; edits are still recorded.")


def cmd_resume(args: argparse.Namespace) -> int:
    return _control(args, "resume", "resumed {}.", confirm_deletes=bool(args.confirm_deletes))


def cmd_reload(args: argparse.Namespace) -> int:
    return _control(args, "reload", "reloaded the config.")


def cmd_stop(args: argparse.Namespace) -> int:
    return _control(args, "stop", "syncd is stopping.")


def cmd_sync(args: argparse.Namespace) -> int:
    from ..mirror.once import sync_once
    from ..service.lock import instance_lock

    if not args.once:
        return _control(args, "sync", "asked the daemon to reconcile {} now.")
    config = load(args)
    projects = [config.project(args.project)] if args.project else list(config.projects)
    lock = instance_lock(config.path)
    lock.acquire()  # before the db: never open a running daemon's index
    db = open_db(config)
    failed = False
    try:
        for out in sync_once(config, db, projects, confirm_deletes=args.confirm_deletes):
            failed = failed or out.failed
            if out.error:
                print(f"{out.project}: {out.error}", file=sys.stderr)
            elif out.paused:
                print(f"{out.project}: paused: {out.paused}", file=sys.stderr)
            st = out.status
            if st is None:
                continue
            for path, why in st.file_errors.items():
                print(f"{out.project}: skipped {path}: {why}", file=sys.stderr)
            print(
                f"{out.project}: {st.files} files ({st.bytes} bytes) mirrored to "
                f"{out.target}; {st.pending} pending, {len(st.file_errors)} skipped"
            )
    finally:
        db.close()
        lock.release()
    return EXIT_FAIL if failed else EXIT_OK

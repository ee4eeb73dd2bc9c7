"""Commands about the daemon and the mirror: run, status, pause, resume, sync, reload, stop.

Each one goes through the config's controller (``service.controller``): the
running daemon's over its socket, or, for status, pause, resume and
``sync --once``, the same controller in this process when no daemon runs.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys

from .. import __version__
from .context import EXIT_FAIL, EXIT_NOT_RUNNING, EXIT_OK, config_path, controller, load, say

log = logging.getLogger("syncd")


def cmd_run(args: argparse.Namespace) -> int:
    from ..service.daemon import Daemon
    from ..service.hosts import claim_instance, open_state_db

    config = load(args)
    lock = claim_instance(config.path)  # before the db: a second daemon must not touch it
    try:
        db = open_state_db(config)
        log.info("syncd %s starting (pid %d, config %s)", __version__, os.getpid(), config.path)
        try:
            Daemon(config, db).run_forever()
        finally:
            db.close()
    finally:
        lock.release()
    return EXIT_OK


def cmd_status(args: argparse.Namespace) -> int:
    from .render import render

    with controller(args) as ctl:
        status = ctl.call("status", project=args.project)
        code = EXIT_NOT_RUNNING if ctl.in_process else EXIT_OK
    if args.json:
        print(json.dumps(status, indent=2))
    else:
        print(render(status))
    if code == EXIT_NOT_RUNNING:
        say(f"not running for {config_path(args)}; shown: its last state (start it: `syncd run`)")
    return code


def _which(args: argparse.Namespace) -> str:
    return getattr(args, "project", None) or "all projects"


def cmd_pause(args: argparse.Namespace) -> int:
    with controller(args) as ctl:
        ctl.call("pause", project=args.project)
        if ctl.in_process:
            print(f"syncd is not running; {_which(args)} will start paused.")
        else:
            print(f"paused {_which(args)}; edits are still recorded.")
    return EXIT_OK


def cmd_resume(args: argparse.Namespace) -> int:
    with controller(args) as ctl:
        ctl.call("resume", project=args.project, confirm_deletes=bool(args.confirm_deletes))
        if ctl.in_process:
            print(f"syncd is not running; {_which(args)} will start unpaused.")
        else:
            print(f"resumed {_which(args)}.")
    return EXIT_OK


def cmd_reload(args: argparse.Namespace) -> int:
    with controller(args, fallback=False) as ctl:
        ctl.call("reload")
    print("reloaded the config.")
    return EXIT_OK


def cmd_stop(args: argparse.Namespace) -> int:
    with controller(args, fallback=False) as ctl:
        ctl.call("stop")
    print("syncd is stopping.")
    return EXIT_OK


def cmd_sync(args: argparse.Namespace) -> int:
    from .render import sync_lines

    fields = {"project": args.project, "confirm_deletes": bool(args.confirm_deletes)}
    if args.once:
        # Always here, never through a daemon: that is what cron asks for.  The outcome
        # below names every skipped file and problem, so the engine's own lines would repeat it.
        if not args.debug:
            logging.getLogger("syncd.mirror").setLevel(logging.ERROR)
        hint = "`sync --once` is for when no daemon runs: ask this one with `syncd sync`"
        with controller(args, busy_hint=hint) as ctl:
            result = ctl.local("sync", **fields)
    else:
        hint = "use `syncd sync --once` to mirror without a daemon"
        with controller(args, fallback=False, not_running_hint=hint) as ctl:
            result = ctl.call("sync", **fields)
    for problem, line in sync_lines(result):
        print(line, file=sys.stderr if problem else sys.stdout)
    failed = any(not p["ok"] for p in result["projects"]) if result.get("once") else False
    return EXIT_FAIL if failed else EXIT_OK

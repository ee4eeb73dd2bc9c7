"""``syncd snapshot`` and ``syncd snapshots``: through the daemon when it runs, else in-process.

Both go through the config's controller, which picks the project (the named
one, or the only one with a ``snapshot:`` section) the same way on both paths.
"""

from __future__ import annotations

import argparse
import json

from .context import EXIT_FAIL, EXIT_OK, controller


def cmd_snapshot(args: argparse.Namespace) -> int:
    with controller(args) as ctl:
        # Through the daemon the request blocks until Kaggle has processed the version.
        result = ctl.call(
            "snapshot",
            project=args.project,
            message=args.message,
            force=bool(args.force),
            wait=bool(args.wait),
        )
    print(result["message"])
    return EXIT_FAIL if result["status"] in ("failed", "error") else EXIT_OK


def cmd_snapshots(args: argparse.Namespace) -> int:
    from .render import snapshot_history

    with controller(args) as ctl:
        history = ctl.call("snapshots", project=args.project)
    if args.json:
        print(json.dumps(history, indent=2))
        return EXIT_OK
    if not history:
        name = f" {args.project}" if args.project else ""
        print(f"no snapshots yet (take one with `syncd snapshot{name}`)")
        return EXIT_OK
    for line in snapshot_history(history):
        print(line)
    return EXIT_OK

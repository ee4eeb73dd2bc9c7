"""What every command needs: exit codes, the config file, and the controller of that config."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..config import Config
    from ..db.statedb import StateDB
    from ..service.protocol import ControlClient

# The README's table.  A SyncdError carries its own (``exit_code``); these name them.
EXIT_OK, EXIT_FAIL, EXIT_USAGE, EXIT_NOT_RUNNING = 0, 1, 2, 3

# Imports inside the functions: `syncd status` with a running daemon needs none of
# yaml, sqlite or apscheduler, and start-up time is most of its latency.


def config_path(args: argparse.Namespace) -> Path:
    from ..config import default_config_path

    return Path(args.config).expanduser().absolute() if args.config else default_config_path()


def load(args: argparse.Namespace) -> Config:
    from ..config import load_config

    return load_config(config_path(args))


def controller(
    args: argparse.Namespace,
    *,
    fallback: bool = True,
    busy_hint: str | None = None,
    not_running_hint: str | None = None,
) -> ControlClient:
    """The config's controller: its daemon over the socket, else (``fallback``) in-process.

    Only the config's *path* is needed to find the daemon, so a config broken on
    disk (and not yet reloaded) does not lock the user out of a running daemon.
    """
    from ..service.protocol import ControlClient

    return ControlClient(
        config_path(args),
        fallback=fallback,
        progress=sys.stderr.isatty(),
        busy_hint=busy_hint,
        not_running_hint=not_running_hint,
    )


def say(message: str) -> None:
    """One sentence for the person at the terminal (stderr: stdout is for results)."""
    print(f"syncd: {message}", file=sys.stderr)


def ask(args: argparse.Namespace, cmd: str, timeout: float | None = None, **fields: Any) -> Any:
    """One request to the daemon of this config, no fallback (``DaemonNotRunning`` if none);
    for commands that carry out their no-daemon path themselves (``train``)."""
    from ..service.protocol import ControlClient

    return ControlClient(config_path(args), fallback=False).remote(cmd, timeout, **fields)


def open_db(config: Config) -> StateDB:
    """The config's state db, or one sentence saying why it cannot be opened."""
    from ..service.hosts import open_state_db

    return open_state_db(config)

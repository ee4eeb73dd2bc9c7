"""What every command needs: exit codes, the config file, the state db, a word with the daemon."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..config import Config
    from ..db.statedb import StateDB

EXIT_OK, EXIT_FAIL, EXIT_USAGE, EXIT_NOT_RUNNING = 0, 1, 2, 3

# Imports inside the functions: `syncd status` with a running daemon needs none of
# yaml, sqlite or apscheduler, and start-up time is most of its latency.


def config_path(args: argparse.Namespace) -> Path:
    from ..config import default_config_path

    return Path(args.config).expanduser().resolve() if args.config else default_config_path()


def load(args: argparse.Namespace) -> Config:
    from ..config import load_config

    return load_config(config_path(args))


def open_db(config: Config) -> StateDB:
    from ..db.statedb import StateDB, state_db_path

    return StateDB(state_db_path(config.path))


def ask(args: argparse.Namespace, cmd: str, **fields: Any) -> Any:
    """One request to the daemon of this config.

    Only the config's *path* is needed to find the daemon, so a config broken on
    disk (and not yet reloaded) does not lock the user out of a running daemon.
    """
    from ..service.ipc import request, socket_path

    return request(socket_path(config_path(args)), cmd, **fields)

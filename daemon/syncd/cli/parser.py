"""The ``syncd`` command line: every command, its options and its help text."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import NoReturn

from .. import __version__
from ..config.values import parse_duration
from .commands_colab import cmd_colab, cmd_flush
from .commands_daemon import (
    cmd_pause,
    cmd_reload,
    cmd_resume,
    cmd_run,
    cmd_status,
    cmd_stop,
    cmd_sync,
)
from .commands_setup import cmd_auth, cmd_doctor, cmd_service
from .commands_snapshot import cmd_snapshot, cmd_snapshots
from .commands_train import cmd_runs, cmd_train
from .init import cmd_init


def _common_options(parser: argparse.ArgumentParser, default: object) -> None:
    # Given before or after the command; SUPPRESS on the subcommand keeps an option
    # given before the command from being reset by the subcommand's default.
    parser.add_argument(
        "-c",
        "--config",
        default=default,
        help="config file (default: $SYNCD_CONFIG or the platform config dir's syncd/config.yaml)",
    )
    parser.add_argument(
        "--debug", action="store_true", default=default or False, help="verbose logs and tracebacks"
    )


class _Parser(argparse.ArgumentParser):
    """Usage errors in one line (exit 2), like every other syncd error."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see `{self.prog} --help`)\n")


def _seconds(text: str) -> float:
    """A --timeout: the config's duration syntax (``90``, ``5s``, ``1m``, ``1m30s``)."""
    try:
        value = parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if not 0 < value < 86400:
        raise argparse.ArgumentTypeError(
            f"{text!r} must be more than 0 and less than a day (e.g. 90, 5s, 1m)"
        )
    return value


def build_parser() -> argparse.ArgumentParser:
    # allow_abbrev=False: `--confirm` must not quietly mean `--confirm-deletes`.
    common = _Parser(add_help=False, allow_abbrev=False)
    _common_options(common, argparse.SUPPRESS)
    parser = _Parser(
        prog="syncd",
        allow_abbrev=False,
        description="Mirror project folders to Google Drive and snapshot them to Kaggle.",
    )
    _common_options(parser, None)
    parser.add_argument("--version", action="version", version=f"syncd {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, func: Callable[[argparse.Namespace], int], help_: str):
        p = sub.add_parser(
            name, parents=[common], help=help_, description=help_, allow_abbrev=False
        )
        p.set_defaults(func=func)
        return p

    p = add("init", cmd_init, "write a config that mirrors DIR (or add DIR to the config)")
    p.add_argument("dir", nargs="?", default=".", metavar="DIR")
    p.add_argument(
        "--to",
        metavar="ADDRESS",
        help="mirror target: local:DIR or gdrive:/PATH (default: gdrive:/syncd/NAME when Drive "
        "credentials exist, else local:~/syncd-mirror/NAME); on a project, switches it",
    )
    p.add_argument(
        "--snapshot",
        metavar="OWNER/SLUG",
        help="also snapshot DIR to this Kaggle dataset (slug: 6-50 of a-z, 0-9, -)",
    )
    p = add("run", cmd_run, "run the daemon in the foreground (what the service runs)")
    p.add_argument("--log-file", help="log to this file (rotated at 10 MB) instead of stderr")
    p = add("status", cmd_status, "what the daemon is doing (exit 3 if it is not running)")
    p.add_argument("project", nargs="?", metavar="PROJECT")
    p.add_argument("--json", action="store_true", help="the stable JSON shape (see README)")
    p = add("pause", cmd_pause, "stop uploading (edits keep being recorded)")
    p.add_argument("project", nargs="?", metavar="PROJECT")
    p = add("resume", cmd_resume, "start uploading again")
    p.add_argument("project", nargs="?", metavar="PROJECT")
    p.add_argument(
        "--confirm-deletes",
        action="store_true",
        help="carry out the deletions the mass-deletion guard held back",
    )
    add("reload", cmd_reload, "re-read the config (like SIGHUP)")
    add("stop", cmd_stop, "stop the daemon (like SIGTERM)")
    p = add("service", cmd_service, "install/uninstall/status of the systemd or launchd service")
    p.add_argument("action", choices=["install", "uninstall", "status"])
    p.add_argument("--dry-run", action="store_true", help="print the file instead")
    p = add("snapshot", cmd_snapshot, "a new Kaggle dataset version now")
    p.add_argument("project", nargs="?", metavar="PROJECT")
    p.add_argument("-m", "--message", help="what this version is (goes into the notes)")
    p.add_argument("--wait", action="store_true", help="wait until Kaggle has processed it")
    p.add_argument("--force", action="store_true", help="upload even if nothing changed")
    p = add("snapshots", cmd_snapshots, "version history: number, time, files, size, status")
    p.add_argument("project", nargs="?", metavar="PROJECT")
    p.add_argument("--json", action="store_true")
    # --- training runs on Kaggle GPUs (cli/commands_train.py) ---
    p = add("train", cmd_train, "run the latest snapshot on a Kaggle GPU and bring outputs home")
    p.add_argument("project", metavar="PROJECT")
    p.add_argument("-m", "--message", help="what this run tries (goes into a new snapshot's notes)")
    p.add_argument("--wait", action="store_true", help="stream the run; exit 0 on COMPLETE")
    p.add_argument(
        "--gpu", metavar="SHAPE", help="Kaggle accelerator id (default train.machine_shape)"
    )
    p.add_argument("--command", metavar="CMD", help="what to run (default train.command)")
    p = add("runs", cmd_runs, "run history; `syncd runs stop RUN` stops a running one")
    p.add_argument("words", nargs="*", metavar="PROJECT | stop RUN")
    p.add_argument("--yes", action="store_true", help="stop without asking")
    p.add_argument("--json", action="store_true")
    p.add_argument("--limit", type=int, default=50, help="show this many runs (default 50)")
    p = add("auth", cmd_auth, "set up and check credentials")
    p.add_argument("service", choices=["drive", "kaggle"])
    p.add_argument(
        "source",
        nargs="?",
        metavar="SOURCE",
        help="kaggle: store a kaggle.json or a token file, or - to paste an API token",
    )
    p.add_argument(
        "--from-env",
        action="store_true",
        help="kaggle: store what KAGGLE_API_TOKEN or KAGGLE_USERNAME/KAGGLE_KEY hold in this "
        "shell, where a service finds it",
    )
    p.add_argument(
        "--no-browser",
        action="store_true",
        help="drive: print the URL instead of opening a browser (headless machines)",
    )
    p.add_argument(
        "--service-account",
        metavar="KEY",
        help="drive: use a service account key (Shared Drives only)",
    )
    add("doctor", cmd_doctor, "check config, credentials, inotify limits, clock and disk")
    # --- the target's manifest (cli/commands_colab.py) ---
    p = add("flush", cmd_flush, "return once every edit made before it is on the target")
    p.add_argument("project", nargs="?", metavar="PROJECT")
    p.add_argument(
        "--timeout", type=_seconds, metavar="S", help="give up after S (90, 5s, 1m; default 60 s)"
    )
    p.add_argument("--json", action="store_true")
    p = add("colab", cmd_colab, "print the Colab cell that keeps /content/PROJECT fresh")
    p.add_argument("project", nargs="?", metavar="PROJECT")
    p.add_argument(
        "--timeout", type=_seconds, metavar="S", help="wait this long for the upload (default 60 s)"
    )
    p = add("sync", cmd_sync, "reconcile now; --once mirrors without a daemon and exits")
    p.add_argument("project", nargs="?", metavar="PROJECT")
    p.add_argument("--once", action="store_true", help="one-shot mirror, no daemon (cron)")
    p.add_argument(
        "--confirm-deletes",
        action="store_true",
        help="allow the deletions the mass-deletion guard held back",
    )
    return parser

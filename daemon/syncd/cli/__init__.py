"""The ``syncd`` command: argument parsing, exit codes and one-sentence errors.

Exit codes: 0 ok, 1 failure, 2 usage or config error, 3 daemon not running.
No traceback reaches the user unless ``--debug`` is given.  ``parser`` lists the
commands, ``commands_*`` carry them out, ``render`` is what people read.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import traceback
from pathlib import Path

from ..errors import SyncdError
from .commands_daemon import cmd_run
from .context import EXIT_FAIL
from .parser import build_parser

__all__ = ["main"]


def _setup_logging(args: argparse.Namespace) -> None:
    """The daemon (``run``) logs every state change at INFO, with timestamps (none under
    journald, which adds its own).  Other commands print their own answer, so their log
    shows only warnings and errors, without timestamps (the error that ends a command is
    its own ``syncd: ...`` line)."""
    debug = bool(args.debug)
    log_file = getattr(args, "log_file", None)
    level = logging.INFO
    if args.func is not cmd_run:
        fmt, level = "%(levelname)s %(message)s", logging.WARNING
    elif os.environ.get("JOURNAL_STREAM"):
        fmt = "%(levelname)s %(message)s"
    else:
        fmt = "%(asctime)s %(levelname)s %(message)s"
    handler: logging.Handler = logging.StreamHandler(sys.stderr)
    if log_file:
        from logging.handlers import RotatingFileHandler

        path = Path(log_file).expanduser()
        path.parent.mkdir(parents=True, exist_ok=True)
        handler = RotatingFileHandler(path, maxBytes=10 * 1024 * 1024, backupCount=3)
        fmt = "%(asctime)s %(levelname)s %(message)s"
    handler.setFormatter(logging.Formatter(fmt))
    logging.basicConfig(level=logging.DEBUG if debug else level, handlers=[handler])
    if not debug:
        for noisy in ("apscheduler", "watchdog", "googleapiclient", "oauth2client", "urllib3"):
            logging.getLogger(noisy).setLevel(max(level, logging.WARNING))


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        _setup_logging(args)
        return int(args.func(args))
    except KeyboardInterrupt:
        return EXIT_FAIL
    except Exception as exc:  # noqa: BLE001 - the last net: one sentence, never a traceback
        # Never a traceback without --debug: one sentence (the error's own, or where it
        # happened), and the exit code of the README's table.
        if args.debug:
            traceback.print_exc()
        if isinstance(exc, SyncdError):
            print(f"syncd: {exc}", file=sys.stderr)
            return exc.exit_code
        hint = "" if args.debug else " (run again with --debug for details)"
        print(f"syncd: {_unexpected(exc)}{hint}", file=sys.stderr)
        return EXIT_FAIL


def _unexpected(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        where = f" ({exc.filename})" if exc.filename else ""
        return f"{exc.strerror}{where}"
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"unexpected error: {type(exc).__name__}{': ' + text if text else ''}"

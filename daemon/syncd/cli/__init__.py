"""The ``syncd`` command: argument parsing, exit codes and one-sentence errors.

Exit codes: 0 ok, 1 failure, 2 usage or config error, 3 daemon not running.
No traceback reaches the user unless ``--debug`` is given.  ``parser`` lists the
commands, ``commands_*`` carry them out, ``render`` is what people read.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from ..errors import ConfigError, SyncdError
from .context import EXIT_FAIL, EXIT_USAGE
from .parser import build_parser

__all__ = ["main"]


def _setup_logging(debug: bool, log_file: str | None = None) -> None:
    # Under systemd (JOURNAL_STREAM set) journald adds its own timestamps; no colours anywhere.
    fmt = (
        "%(levelname)s %(message)s"
        if os.environ.get("JOURNAL_STREAM")
        else ("%(asctime)s %(levelname)s %(message)s")
    )
    handler: logging.Handler = logging.StreamHandler(sys.stderr)
    if log_file:
        from logging.handlers import RotatingFileHandler

        path = Path(log_file).expanduser()
        path.parent.mkdir(parents=True, exist_ok=True)
        handler = RotatingFileHandler(path, maxBytes=10 * 1024 * 1024, backupCount=3)
        fmt = "%(asctime)s %(levelname)s %(message)s"
    handler.setFormatter(logging.Formatter(fmt))
    logging.basicConfig(level=logging.DEBUG if debug else logging.INFO, handlers=[handler])
    if not debug:
        for noisy in ("apscheduler", "watchdog", "googleapiclient", "oauth2client", "urllib3"):
            logging.getLogger(noisy).setLevel(logging.WARNING)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _setup_logging(args.debug, getattr(args, "log_file", None))
    try:
        return args.func(args)
    except ConfigError as exc:
        print(f"syncd: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except SyncdError as exc:
        if args.debug:
            raise
        print(f"syncd: {exc}", file=sys.stderr)
        return EXIT_FAIL
    except KeyboardInterrupt:
        return EXIT_FAIL

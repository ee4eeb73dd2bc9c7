"""The ``syncd`` command: argument parsing, exit codes and one-sentence errors.

Exit codes: 0 ok, 1 failure, 2 usage or config error, 3 daemon not running.
No traceback reaches the user unless ``--debug`` is given.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path

from . import __version__
from .config import Config, default_config_path, load_config, render_initial_config
from .errors import ConfigError, RemoteError, SyncdError

EXIT_OK, EXIT_FAIL, EXIT_USAGE, EXIT_NOT_RUNNING = 0, 1, 2, 3

log = logging.getLogger("syncd")


def _setup_logging(debug: bool) -> None:
    # Under systemd (JOURNAL_STREAM set) journald adds its own timestamps.
    fmt = (
        "%(levelname)s %(message)s"
        if os.environ.get("JOURNAL_STREAM")
        else ("%(asctime)s %(levelname)s %(message)s")
    )
    logging.basicConfig(
        stream=sys.stderr, level=logging.DEBUG if debug else logging.INFO, format=fmt
    )
    if not debug:
        for noisy in ("apscheduler", "watchdog", "googleapiclient", "urllib3"):
            logging.getLogger(noisy).setLevel(logging.WARNING)


def _config_path(args: argparse.Namespace) -> Path:
    return Path(args.config).expanduser().resolve() if args.config else default_config_path()


def _load(args: argparse.Namespace) -> Config:
    return load_config(_config_path(args))


def _open_db(config: Config):
    from .state import StateDB, state_db_path

    return StateDB(state_db_path(config.path))


# --- commands ----------------------------------------------------------------


def cmd_init(args: argparse.Namespace) -> int:
    path = _config_path(args)
    folder = Path(args.dir).expanduser().resolve()
    if path.exists():
        print(
            f"{path} already exists; add the project to it by hand (see config.example.yaml).",
            file=sys.stderr,
        )
        return EXIT_FAIL
    if not folder.is_dir():
        print(f"{folder} is not a folder; pass the project folder to mirror.", file=sys.stderr)
        return EXIT_USAGE
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", folder.name).strip("-._") or "project"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_initial_config(folder, name))
    print(f"wrote {path} with project '{name}' ({folder} → gdrive:/syncd/{name}).")
    print("Next: `syncd auth drive`, then `syncd run` (or `syncd service install`).")
    return EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    from .daemon import Daemon, InstanceLock

    config = _load(args)
    db = _open_db(config)
    lock = InstanceLock(db.path.with_suffix(".lock"))
    lock.acquire()
    log.info("syncd %s starting (pid %d, config %s)", __version__, os.getpid(), config.path)
    try:
        Daemon(config, db).run_forever()
    finally:
        db.close()
        lock.release()
    return EXIT_OK


def cmd_sync(args: argparse.Namespace) -> int:
    from .daemon import InstanceLock, build_engine

    if not args.once:
        print(
            "talking to a running daemon is not available yet; use `syncd sync --once`.",
            file=sys.stderr,
        )
        return EXIT_USAGE
    config = _load(args)
    projects = [config.project(args.project)] if args.project else list(config.projects)
    db = _open_db(config)
    lock = InstanceLock(db.path.with_suffix(".lock"))
    lock.acquire()
    failed = False
    try:
        for pc in projects:
            if pc.mirror is None:
                continue
            _, _, engine = build_engine(pc, db)
            if args.confirm_deletes:
                engine.resume(confirm_deletes=True)
            elif engine.status().state == "paused":
                print(f"{pc.name}: paused: {engine.status().reason}", file=sys.stderr)
                failed = True
                continue
            try:
                engine.full_scan()
            except RemoteError as exc:
                print(f"{pc.name}: {exc}", file=sys.stderr)
                failed = True
                continue
            finally:
                engine.remote.close()
            st = engine.status()
            if st.state == "paused":
                print(f"{pc.name}: paused: {st.reason}", file=sys.stderr)
                failed = True
            for path, why in st.file_errors.items():
                print(f"{pc.name}: skipped {path}: {why}", file=sys.stderr)
            print(
                f"{pc.name}: {st.files} files ({st.bytes} bytes) mirrored to "
                f"{pc.mirror.to.raw}; {st.pending} pending, {len(st.file_errors)} skipped"
            )
            failed = failed or bool(st.file_errors) or st.pending > 0
    finally:
        db.close()
        lock.release()
    return EXIT_FAIL if failed else EXIT_OK


# --- parser ------------------------------------------------------------------


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


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    _common_options(common, argparse.SUPPRESS)
    parser = argparse.ArgumentParser(
        prog="syncd",
        description="Mirror project folders to Google Drive and snapshot them to Kaggle.",
    )
    _common_options(parser, None)
    parser.add_argument("--version", action="version", version=f"syncd {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, func: Callable[[argparse.Namespace], int], help_: str):
        p = sub.add_parser(name, parents=[common], help=help_, description=help_)
        p.set_defaults(func=func)
        return p

    p = add("init", cmd_init, "write a config with one project for DIR if none exists")
    p.add_argument("dir", nargs="?", default=".", metavar="DIR")
    add("run", cmd_run, "run the daemon in the foreground (what the service runs)")
    p = add("sync", cmd_sync, "reconcile now; --once mirrors without a daemon and exits")
    p.add_argument("project", nargs="?", metavar="PROJECT")
    p.add_argument("--once", action="store_true", help="one-shot mirror, no daemon (cron)")
    p.add_argument(
        "--confirm-deletes",
        action="store_true",
        help="allow the deletions the mass-deletion guard held back",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _setup_logging(args.debug)
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


if __name__ == "__main__":
    sys.exit(main())

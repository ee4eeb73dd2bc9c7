"""The ``syncd`` command: argument parsing, exit codes and one-sentence errors.

Exit codes: 0 ok, 1 failure, 2 usage or config error, 3 daemon not running.
No traceback reaches the user unless ``--debug`` is given.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from . import __version__
from .errors import ConfigError, RemoteError, SyncdError

if TYPE_CHECKING:
    from .config import Config

EXIT_OK, EXIT_FAIL, EXIT_USAGE, EXIT_NOT_RUNNING = 0, 1, 2, 3

log = logging.getLogger("syncd")


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


def _config_path(args: argparse.Namespace) -> Path:
    from .config import default_config_path

    return Path(args.config).expanduser().resolve() if args.config else default_config_path()


def _load(args: argparse.Namespace) -> Config:
    from .config import load_config

    return load_config(_config_path(args))


def _open_db(config: Config):
    from .state import StateDB, state_db_path

    return StateDB(state_db_path(config.path))


# --- commands ----------------------------------------------------------------


def cmd_init(args: argparse.Namespace) -> int:
    from .config import render_initial_config

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
    from .state import state_db_path

    config = _load(args)
    lock = InstanceLock(state_db_path(config.path).with_suffix(".lock"))
    lock.acquire()  # before the db: a second daemon must not touch the first one's index
    db = _open_db(config)
    log.info("syncd %s starting (pid %d, config %s)", __version__, os.getpid(), config.path)
    try:
        Daemon(config, db).run_forever()
    finally:
        db.close()
        lock.release()
    return EXIT_OK


def _ask(args: argparse.Namespace, cmd: str, **fields: object) -> object:
    """One request to the daemon of this config.

    Only the config's *path* is needed to find the daemon, so a config broken on
    disk (and not yet reloaded) does not lock the user out of a running daemon.
    """
    from .ipc import request, socket_path

    return request(socket_path(_config_path(args)), cmd, **fields)


def cmd_status(args: argparse.Namespace) -> int:
    from .ipc import DaemonNotRunning
    from .status import render, status_from_disk

    code = EXIT_OK
    try:
        status = _ask(args, "status", project=args.project)
    except DaemonNotRunning:
        code = EXIT_NOT_RUNNING
        config = _load(args)
        if args.project:
            config.project(args.project)  # a clear error for a name that isn't there
        db = _open_db(config)
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
    from .ipc import DaemonNotRunning

    project = getattr(args, "project", None)
    try:
        _ask(args, cmd, project=project, **fields)
    except DaemonNotRunning:
        config = _load(args)
        if cmd in ("pause", "resume"):
            return _control_offline(config, cmd, project, bool(fields.get("confirm_deletes")))
        hint = " (use `syncd sync --once` without a daemon)" if cmd == "sync" else ""
        print(f"syncd is not running for {config.path}{hint}.", file=sys.stderr)
        return EXIT_NOT_RUNNING
    print(done.format(project or "all projects"))
    return EXIT_OK


def _control_offline(config: Config, cmd: str, project: str | None, confirm: bool) -> int:
    """pause/resume without a daemon: record it, so the next start obeys it."""
    db = _open_db(config)
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


def cmd_service(args: argparse.Namespace) -> int:
    from . import service

    if args.action == "status":
        for line in service.status().describe():
            print(line)
        return EXIT_OK
    if args.action == "install":
        config = _load(args)  # refuse to install a service that would fail on a bad config
        lines = service.install(config_path=config.path, dry_run=args.dry_run)
    else:
        lines = service.uninstall(dry_run=args.dry_run)
    for line in lines:
        print(line)
    return EXIT_OK


def cmd_doctor(args: argparse.Namespace) -> int:
    from .doctor import run_checks

    worst = EXIT_OK
    for level, message in run_checks(_config_path(args)):
        print(f"[{level}] {message}")
        if level == "fail":
            worst = EXIT_FAIL
    return worst


def _snapshot_service(config: Config, db, name: str | None):
    from .snapshots import SnapshotService

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
    from .ipc import DaemonNotRunning, request, socket_path

    fields = {
        "project": args.project,
        "message": args.message,
        "force": args.force,
        "wait": args.wait,
    }
    try:
        # A snapshot through the daemon blocks on the socket until Kaggle has processed it.
        result = request(socket_path(_config_path(args)), "snapshot", timeout=7200, **fields)
        print(result["message"])
        return EXIT_FAIL if result["status"] in ("failed", "error") else EXIT_OK
    except DaemonNotRunning:
        pass
    config = _load(args)
    db = _open_db(config)
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
    from .status import human_size

    config = _load(args)
    db = _open_db(config)
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
    print(f"{'version':>7}  {'time (UTC)':20}  {'files':>6}  {'size':>9}  {'status':9}  notes")
    for h in history:
        version = f"v{h['version']}" if h.get("version") else "-"
        first_line = (h.get("notes") or "").splitlines()[0] if h.get("notes") else ""
        print(
            f"{version:>7}  {h['at'] or '-':20}  {h['files']:>6}  {human_size(h['bytes']):>9}  "
            f"{h['status']:9}  {first_line[:60]}"
        )
    return EXIT_OK


def cmd_auth(args: argparse.Namespace) -> int:
    if args.service == "kaggle":
        from .config import KaggleConfig
        from .kaggle_credentials import store_from
        from .snapshots import check_kaggle_credentials

        if args.source:
            print(store_from(args.source))
        kaggle = _load(args).kaggle if _config_path(args).exists() else KaggleConfig()
        print(check_kaggle_credentials(kaggle))
        return EXIT_OK
    from .auth import auth_drive
    from .config import DriveConfig

    path = _config_path(args)
    # Authorising before the first config exists is fine: the defaults say where to save.
    drive = _load(args).drive if path.exists() else DriveConfig()
    auth_drive(
        drive,
        no_browser=args.no_browser,
        service_account=Path(args.service_account) if args.service_account else None,
        config_path=path if path.exists() else None,
    )
    return EXIT_OK


def cmd_sync(args: argparse.Namespace) -> int:
    from .daemon import InstanceLock, build_engine

    if not args.once:
        return _control(args, "sync", "asked the daemon to reconcile {} now.")
    config = _load(args)
    projects = [config.project(args.project)] if args.project else list(config.projects)
    from .state import state_db_path

    lock = InstanceLock(state_db_path(config.path).with_suffix(".lock"))
    lock.acquire()  # before the db: never open a running daemon's index
    db = _open_db(config)
    failed = False
    try:
        for pc in projects:
            if pc.mirror is None:
                continue
            _, _, engine = build_engine(pc, db, config.drive)
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
    p = add("auth", cmd_auth, "set up and check credentials")
    p.add_argument("service", choices=["drive", "kaggle"])
    p.add_argument(
        "source",
        nargs="?",
        metavar="SOURCE",
        help="kaggle: store a kaggle.json or a token file, or - to paste an API token",
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


if __name__ == "__main__":
    sys.exit(main())

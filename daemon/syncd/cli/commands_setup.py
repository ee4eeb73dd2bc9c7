"""Commands that set syncd up: init, auth, service install/uninstall/status, doctor."""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from .context import EXIT_FAIL, EXIT_OK, EXIT_USAGE, config_path, load


def cmd_init(args: argparse.Namespace) -> int:
    from ..config import render_initial_config

    path = config_path(args)
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


def cmd_service(args: argparse.Namespace) -> int:
    from . import service_install as service

    if args.action == "status":
        for line in service.status().describe():
            print(line)
        return EXIT_OK
    if args.action == "install":
        config = load(args)  # refuse to install a service that would fail on a bad config
        lines = service.install(config_path=config.path, dry_run=args.dry_run)
    else:
        lines = service.uninstall(dry_run=args.dry_run)
    for line in lines:
        print(line)
    return EXIT_OK


def cmd_doctor(args: argparse.Namespace) -> int:
    from .doctor import run_checks

    worst = EXIT_OK
    for level, message in run_checks(config_path(args)):
        print(f"[{level}] {message}")
        if level == "fail":
            worst = EXIT_FAIL
    return worst


def cmd_auth(args: argparse.Namespace) -> int:
    if args.service == "kaggle":
        from ..config import KaggleConfig
        from ..remotes.kaggle.credentials import store_from
        from ..snapshot.service import check_kaggle_credentials

        if args.source:
            print(store_from(args.source))
        kaggle = load(args).kaggle if config_path(args).exists() else KaggleConfig()
        print(check_kaggle_credentials(kaggle))
        return EXIT_OK
    from ..config import DriveConfig
    from .auth import auth_drive

    path = config_path(args)
    # Authorising before the first config exists is fine: the defaults say where to save.
    drive = load(args).drive if path.exists() else DriveConfig()
    auth_drive(
        drive,
        no_browser=args.no_browser,
        service_account=Path(args.service_account) if args.service_account else None,
        config_path=path if path.exists() else None,
    )
    return EXIT_OK

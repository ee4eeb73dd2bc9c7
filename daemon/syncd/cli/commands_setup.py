"""Commands that set syncd up: init, auth, service install/uninstall/status, doctor."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from ..errors import UsageError
from .context import EXIT_FAIL, EXIT_OK, EXIT_USAGE, config_path, load, say


def cmd_service(args: argparse.Namespace) -> int:
    from . import service_install as service

    if args.action == "status":
        for line in service.status().describe():
            print(line)
        return EXIT_OK
    if args.action == "install":
        from .service_env import credentials_story

        path = config_path(args)
        if args.dry_run and not path.exists():  # show the unit before there is a config
            lines = service.install(config_path=path, dry_run=True)
            lines.append(f"(there is no config at {path} yet: `syncd init DIR` writes one)")
        else:
            config = load(args)  # refuse to install a service that fails on a bad config
            lines = service.install(config_path=config.path, dry_run=args.dry_run)
            lines += credentials_story(config)
    else:
        lines = service.uninstall(dry_run=args.dry_run)
    for line in lines:
        print(line)
    return EXIT_OK


def cmd_doctor(args: argparse.Namespace) -> int:
    from .doctor import CONFIG_BROKEN, run_checks

    failures, code = 0, EXIT_OK
    for level, message in run_checks(config_path(args)):
        print(f"[{'fail' if level == CONFIG_BROKEN else level}] {message}")
        if level in ("fail", CONFIG_BROKEN):
            failures += 1
            code = EXIT_USAGE if level == CONFIG_BROKEN else max(code, EXIT_FAIL)
    if failures:
        problems = f"{failures} problem{'s' if failures > 1 else ''}"
        say(f"doctor found {problems}; each [fail] line above says how to fix it")
    return code


def cmd_auth(args: argparse.Namespace) -> int:
    if args.service == "kaggle":
        from ..config import KaggleConfig
        from ..remotes.kaggle.credentials import store_from
        from ..snapshot.service import check_kaggle_credentials

        if args.source and args.from_env:
            raise UsageError("give SOURCE or --from-env, not both")
        if args.source:
            print(store_from(args.source))
        elif args.from_env:
            print(_store_from_environment())
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


def _store_from_environment() -> str:
    """``syncd auth kaggle --from-env``: what this shell's KAGGLE_* variables hold, stored
    where a service finds it (a service does not see the shell's variables)."""
    from ..remotes.kaggle.credentials import store_from, store_legacy, store_token, tilde

    token = os.environ.get("KAGGLE_API_TOKEN", "").strip()
    user, key = os.environ.get("KAGGLE_USERNAME", ""), os.environ.get("KAGGLE_KEY", "")
    if token:
        if Path(token).expanduser().is_file():  # the variable may name a file holding it
            return store_from(token)
        saved, what, names = store_token(token), "API token", "KAGGLE_API_TOKEN"
    elif user and key:
        saved, what, names = store_legacy(user, key), "legacy key", "KAGGLE_USERNAME/KAGGLE_KEY"
    else:
        raise UsageError(
            "--from-env: neither KAGGLE_API_TOKEN nor KAGGLE_USERNAME and KAGGLE_KEY are set "
            "in this shell",
            "give the token or kaggle.json instead: `syncd auth kaggle -` or "
            "`syncd auth kaggle path/to/kaggle.json`",
        )
    return f"Saved the {what} from {names} to {tilde(saved)} (mode 0600), where a service finds it."

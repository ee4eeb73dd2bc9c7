"""``syncd init [DIR] [--to ADDRESS] [--snapshot OWNER/SLUG]``: asks nothing, writes a config
that runs now.

No config yet: write one with a project for DIR, mirrored to ``local:~/syncd-mirror/NAME``
when there are no Drive credentials (and say how to switch), else to
``gdrive:/syncd/NAME``.  A config that exists: add DIR as a project, or, when DIR
is already one, switch its target (``--to``) or set its Kaggle dataset
(``--snapshot``), keeping the file's comments; the result is loaded before it
replaces the file.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..config import Config, DriveConfig, SnapshotConfig, load_config, parse_address
from ..config.edit import add_project, set_dataset, set_target, write_checked
from ..config.template import (
    default_target,
    name_for,
    project_block,
    render_initial_config,
    tilde,
)
from ..errors import ConfigError, UsageError
from .context import EXIT_OK, config_path


def _check_dataset(name: str, dataset: str) -> None:
    """Kaggle's rules for owner/slug, before the config says it (exit 2 with the rule)."""
    from ..remotes.kaggle.rules import dataset_metadata

    try:
        dataset_metadata(name, SnapshotConfig(dataset=dataset))
    except ConfigError as exc:
        raise UsageError(f"--snapshot {dataset}: {exc}") from None


def _target(args: argparse.Namespace, name: str, folder: Path, drive: DriveConfig) -> str:
    if args.to:
        try:
            parse_address(args.to, Path.cwd())
        except ValueError as exc:
            raise UsageError(f"--to: {exc}") from None
        return str(args.to)
    target = default_target(name, drive.credentials.exists() or bool(drive.service_account_key))
    local = parse_address(target, Path.cwd())
    mirror = Path(local.path or "") if local.kind == "local" else None
    if mirror is not None and (mirror.is_relative_to(folder) or folder.is_relative_to(mirror)):
        raise UsageError(
            f"the default target {target} would be inside {tilde(folder)}",
            "choose one with --to local:/some/other/dir (or --to gdrive:/syncd/NAME)",
        )
    return target


def _next_steps(name: str, folder: Path, target: str, drive: DriveConfig) -> list[str]:
    lines = []
    if target.startswith("local:") and not drive.credentials.exists():
        lines += [
            "There are no Google Drive credentials yet, so it mirrors into a local folder for now.",
            "Once `syncd auth drive` has saved them, switch this project to Drive with:",
            f"    syncd init {tilde(folder)} --to gdrive:/syncd/{name}",
        ]
    elif target.startswith("gdrive:") and not (
        drive.credentials.exists() or drive.service_account_key
    ):
        lines.append("No Drive credentials yet: run `syncd auth drive` before syncd can upload.")
    return lines


def cmd_init(args: argparse.Namespace) -> int:
    path = config_path(args)
    folder = Path(args.dir).expanduser().resolve()
    if not folder.is_dir():
        raise UsageError(f"{folder} is not a folder", "pass the project folder to mirror")
    if not path.exists():
        name = name_for(folder)
        drive = DriveConfig()
        target = _target(args, name, folder, drive)
        if args.snapshot:
            _check_dataset(name, args.snapshot)
        text = render_initial_config(folder, name, target, args.snapshot)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_checked(path, text)
        print(f"wrote {tilde(path)}: project '{name}' ({tilde(folder)} → {target}).")
        for line in _next_steps(name, folder, target, drive):
            print(line)
        print(
            "Start it: `syncd run` (foreground) or `syncd service install`; check: `syncd doctor`."
        )
        return EXIT_OK
    return _update(args, path, folder, load_config(path))


def _update(args: argparse.Namespace, path: Path, folder: Path, config: Config) -> int:
    text = path.read_text(encoding="utf-8")
    label = str(path)
    index = next((i for i, pc in enumerate(config.projects) if pc.path == folder), None)
    if index is None:
        name = name_for(folder, {pc.name for pc in config.projects})
        target = _target(args, name, folder, config.drive)
        if args.snapshot:
            _check_dataset(name, args.snapshot)
        text = add_project(text, label, project_block(folder, name, target, args.snapshot))
        write_checked(path, text)
        print(f"added project '{name}' to {tilde(path)} ({tilde(folder)} → {target}).")
        for line in _next_steps(name, folder, target, config.drive):
            print(line)
    else:
        pc = config.projects[index]
        if not args.to and not args.snapshot:
            to = pc.mirror.to.raw if pc.mirror else "no mirror"
            print(f"{tilde(folder)} is already project '{pc.name}' in {tilde(path)} ({to}).")
            print("Change it with --to ADDRESS or --snapshot OWNER/SLUG, or edit the file.")
            return EXIT_OK
        if args.to:
            _target(args, pc.name, folder, config.drive)
            text = set_target(text, label, index, args.to)
        if args.snapshot:
            _check_dataset(pc.name, args.snapshot)
            text = set_dataset(text, label, index, args.snapshot)
        write_checked(path, text)
        changes = [f"mirrors to {args.to}"] if args.to else []
        changes += [f"snapshots to Kaggle dataset {args.snapshot}"] if args.snapshot else []
        print(f"project '{pc.name}' now {' and '.join(changes)} ({tilde(path)}).")
        if args.to:
            print("A new target starts a fresh index: the first walk adopts files already there.")
    print("If syncd is running, `syncd reload` applies it.")
    return EXIT_OK

"""``syncd doctor``: checks that say what to fix before the daemon trips over it.

Each check yields ``(level, message)`` with level ``ok``, ``warn`` or ``fail``;
a message that is not ``ok`` ends with the remedy.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from .config import Config, load_config
from .errors import ConfigError
from .ignore import IgnoreRules

Check = tuple[str, str]

INOTIFY_WATCHES = Path("/proc/sys/fs/inotify/max_user_watches")


def run_checks(config_path: Path) -> Iterator[Check]:
    try:
        config = load_config(config_path)
    except ConfigError as exc:
        yield "fail", str(exc)
        return
    yield "ok", f"config {config.path} is valid ({len(config.projects)} projects)"
    yield from _folders_and_watches(config)
    yield from _drive_credentials(config)
    yield from _kaggle_credentials(config)
    yield from _clock()
    yield from _free_disk(config)


def _count(root: Path, rules: IgnoreRules) -> tuple[int, int]:
    """(folders, bytes) that the watcher and a snapshot would cover."""
    folders, size = 0, 0
    for dirpath, dirnames, filenames in os.walk(root):
        rel = os.path.relpath(dirpath, root)
        rel = "" if rel == "." else rel + "/"
        dirnames[:] = [d for d in dirnames if not rules.is_ignored(rel + d, True)]
        folders += 1
        for name in filenames:
            try:
                size += os.lstat(os.path.join(dirpath, name)).st_size
            except OSError:
                pass
    return folders, size


def _folders_and_watches(config: Config) -> Iterator[Check]:
    total = 0
    for pc in config.projects:
        if not pc.path.is_dir():
            yield "fail", f"{pc.name}: folder {pc.path} does not exist (fix `path` in the config)"
            continue
        folders, _ = _count(pc.path, IgnoreRules(pc.path, pc.ignore))
        total += folders
        yield "ok", f"{pc.name}: {pc.path} has {folders} folders to watch"
    try:
        limit = int(INOTIFY_WATCHES.read_text())
    except (OSError, ValueError):
        return
    if total > limit // 2:
        want = max(524288, total * 4)
        yield (
            "warn" if total < limit else "fail",
            f"inotify allows {limit} watches and the projects need {total}: raise it with "
            f"`echo fs.inotify.max_user_watches={want} | sudo tee /etc/sysctl.d/90-syncd.conf "
            "&& sudo sysctl --system`",
        )
    else:
        yield "ok", f"inotify watch limit {limit} covers the {total} folders"


def _private_file(path: Path, what: str, remedy: str) -> Iterator[Check]:
    if not path.exists():
        yield "fail", f"{what} {path} is missing ({remedy})"
        return
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        yield "warn", f"{what} {path} is readable by others (run `chmod 600 {path}`)"
    else:
        yield "ok", f"{what} {path} is present and private"


def _drive_credentials(config: Config) -> Iterator[Check]:
    if not any(pc.mirror and pc.mirror.to.kind == "gdrive" for pc in config.projects):
        return
    if config.drive.service_account_key:
        checks = list(
            _private_file(
                config.drive.service_account_key, "service account key", "download it again"
            )
        )
    else:
        checks = list(
            _private_file(config.drive.credentials, "Drive credentials", "run `syncd auth drive`")
        )
    yield from checks
    if all(level != "fail" for level, _ in checks):
        yield from _drive_targets(config)


def _drive_targets(config: Config) -> Iterator[Check]:
    """Each project's Drive folder, found (or made before a first sync) as the daemon would."""
    from .errors import AuthRequired, SyncdError, TransientError
    from .remotes.gdrive_probe import probe, synced_before

    for pc in config.projects:
        if pc.mirror is None or pc.mirror.to.kind != "gdrive":
            continue
        to = pc.mirror.to
        try:
            first = not synced_before(config.path, pc.name, to.raw)
            reached = probe(config.drive, to, pc.name, create=first)
        except TransientError as exc:
            yield "warn", f"{pc.name}: cannot reach Google Drive to check {to} ({exc})"
            return
        except AuthRequired as exc:
            yield "fail", f"{pc.name}: {exc}"
            return
        except SyncdError as exc:
            yield "fail", f"{pc.name}: {to} is not reachable: {exc}"
            continue
        verb = "made" if reached.created else "reaches"
        yield "ok", f"{pc.name}: syncd {verb} {to} on Google Drive (folder id {reached.folder_id})"


def _kaggle_credentials(config: Config) -> Iterator[Check]:
    if not any(pc.snapshot for pc in config.projects):
        return
    if os.environ.get("KAGGLE_USERNAME") and os.environ.get("KAGGLE_KEY"):
        yield "ok", "Kaggle credentials come from KAGGLE_USERNAME/KAGGLE_KEY"
        return
    folder = Path(os.environ.get("KAGGLE_CONFIG_DIR") or Path.home() / ".kaggle")
    yield from _private_file(
        folder / "kaggle.json", "Kaggle credentials", "run `syncd auth kaggle`"
    )


def _clock() -> Iterator[Check]:
    if time.gmtime().tm_year < 2025:
        yield "fail", "the system clock is in the past: OAuth tokens and schedules will fail"
        return
    if shutil.which("timedatectl") is None:
        return
    try:
        out = subprocess.run(
            ["timedatectl", "show", "-p", "NTPSynchronized", "--value"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        ).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return
    if out == "yes":
        yield "ok", "the clock is synchronised (NTP)"
    elif out == "no":
        yield "warn", "the clock is not NTP-synchronised: enable it (`timedatectl set-ntp true`)"


def _free_disk(config: Config) -> Iterator[Check]:
    staging = Path(tempfile.gettempdir())
    free = shutil.disk_usage(staging).free
    for pc in config.projects:
        if not pc.snapshot or not pc.path.is_dir():
            continue
        _, size = _count(pc.path, IgnoreRules(pc.path, pc.ignore))
        if size * 2 > free:
            yield (
                "warn",
                (
                    f"{pc.name}: snapshots stage {size // 2**20} MB in {staging}, which has "
                    f"{free // 2**20} MB free (set TMPDIR to a roomier disk)"
                ),
            )
        else:
            yield "ok", f"{pc.name}: {free // 2**20} MB free in {staging} for snapshot staging"

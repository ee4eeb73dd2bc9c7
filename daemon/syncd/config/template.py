"""What ``syncd init`` writes: a config that runs as soon as it is written.

Without Drive credentials the project mirrors into a plain folder
(``local:~/syncd-mirror/<name>``), so ``syncd run`` works before any account
exists; with them, into ``gdrive:/syncd/<name>``.  Only keys that are built
appear, and the commented Kaggle dataset has a slug Kaggle accepts (6–50
lowercase letters, digits and single hyphens), derived from the name.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Collection
from pathlib import Path

from .model import DriveConfig
from .values import project_name

LOCAL_MIRRORS = "~/syncd-mirror"  # where `init` mirrors when there are no Drive credentials


def tilde(path: Path | str) -> str:
    """``path`` with the home folder written as ``~`` (what people read and type)."""
    home = os.path.expanduser("~")
    text = str(path)
    if home not in ("", "/") and (text == home or text.startswith(home + os.sep)):
        return "~" + text[len(home) :]
    return text


def name_for(folder: Path, taken: Collection[str] = ()) -> str:
    """A project name from a folder's name: letters, digits, ``. _ -``; unique among ``taken``."""
    base = re.sub(r"[^A-Za-z0-9._-]+", "-", folder.name).strip("-._") or "project"
    name, n = base, 2
    while name in taken:
        name, n = f"{base}-{n}", n + 1
    return name


def kaggle_slug(name: str) -> str:
    """A dataset slug Kaggle accepts, from a project name: ``cifar`` → ``cifar-code``."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    if len(slug) < 6:
        slug = f"{slug}-code" if slug else "syncd-project"
    if len(slug) < 6:
        slug = f"{slug}-files"
    return slug[:50].rstrip("-")


def default_target(name: str, drive_ready: bool) -> str:
    return f"gdrive:/syncd/{name}" if drive_ready else f"local:{LOCAL_MIRRORS}/{name}"


def _target_comment(name: str) -> str:
    return (
        f"# local:DIR is a plain folder; gdrive:/syncd/{name} is your Google Drive "
        "(after `syncd auth drive`)"
    )


def project_block(
    project_dir: Path, name: str, target: str, dataset: str | None = None, indent: str = "  "
) -> str:
    """One ``projects:`` entry, as ``- name: ...`` lines indented by ``indent``."""
    project_name(name)  # the name becomes part of a Drive path and a YAML scalar unquoted
    folder = json.dumps(str(Path(project_dir).expanduser().resolve()), ensure_ascii=False)
    slug = kaggle_slug(name)
    lines = [
        f"- name: {name}",
        f"  path: {folder}",
        "  mirror:",
        f"    {_target_comment(name)}",
        f"    to: {_quoted(target)}",
        "    delay: 1s                      # quiet time after the last change",
        "    max_delay: 10s                 # a file that never stops changing still goes",
        "    deletions: trash               # trash | keep",
        '  ignore: []                       # e.g. ["*.ckpt", "data/raw/"]; plus .gitignore, '
        ".syncignore",
    ]
    if dataset:
        lines += [
            "  snapshot:                        # Kaggle dataset versions (`syncd snapshot`)",
            f"    dataset: {_quoted(dataset)}",
            "    private: true",
            '    # schedule: "0 3 * * *"        # cron, optional',
            "    # on_git_tag: false",
        ]
    else:
        lines += [
            "  # snapshot:                      # Kaggle dataset versions: "
            f"syncd init {tilde(project_dir)} --snapshot OWNER/{slug}",
            f"  #   dataset: your-kaggle-name/{slug}",
            "  #   private: true",
            '  #   schedule: "0 3 * * *"        # cron, optional',
            "  #   on_git_tag: false",
        ]
    return "".join(f"{indent}{line}\n" for line in lines)


def _quoted(value: str) -> str:
    return json.dumps(value, ensure_ascii=False) if re.search(r"[\s#'\"]", value) else value


def render_initial_config(
    project_dir: Path, name: str, target: str | None = None, dataset: str | None = None
) -> str:
    """The whole file ``syncd init DIR`` writes when there is no config yet."""
    drive = DriveConfig()
    target = target or default_target(name, drive.credentials.exists())
    return f"""\
# syncd configuration, written by `syncd init`. config.example.yaml describes every key;
# `syncd doctor` checks it.

# drive:                            # Google Drive: `syncd auth drive` writes the credentials
#   credentials: {tilde(drive.credentials)}
#   client_secrets: {tilde(drive.client_secrets)}
#   scope: file                     # file: only what syncd created | full: all of Drive

projects:
{project_block(project_dir, name, target, dataset)}"""

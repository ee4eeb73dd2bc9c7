"""The text ``syncd init DIR`` writes: one project mirrored to ``gdrive:/syncd/<name>``."""

from __future__ import annotations

import json
from pathlib import Path

from .model import DriveConfig
from .values import project_name


def render_initial_config(project_dir: Path, name: str) -> str:
    """The config ``syncd init DIR`` writes: one project mirrored to ``gdrive:/syncd/<name>``."""
    project_name(name)  # the name becomes part of a Drive path and a YAML scalar unquoted
    folder = json.dumps(str(Path(project_dir).expanduser().resolve()), ensure_ascii=False)
    drive = DriveConfig()
    return f"""\
# syncd configuration, written by `syncd init`. config.example.yaml describes every key.
# Check it with `syncd doctor`; set up Drive access with `syncd auth drive`.

# drive:
#   credentials: {drive.credentials}   # OAuth token (`syncd auth drive`)
#   client_secrets: {drive.client_secrets}   # your "Desktop app" OAuth client
#   scope: file                      # file: only what syncd created | full: all of Drive

projects:
  - name: {name}
    path: {folder}
    mirror:
      # gdrive:/syncd/<name> is recommended: the default drive.file scope only sees folders
      # syncd created. Also possible: gdrive:id=<folderId>, or local:/some/dir for a plain folder.
      to: gdrive:/syncd/{name}
      delay: 1s                      # quiet time after the last change
      max_delay: 10s                 # a file that never stops changing still goes
      deletions: trash               # trash | keep
      pull: []                       # e.g. [outputs/]: bring Colab's results back home
    ignore: []                       # e.g. ["*.ckpt", "data/raw/"]; plus .gitignore/.syncignore
    # snapshot:                      # a Kaggle dataset version on demand, schedule or git tag
    #   dataset: your-kaggle-name/{name.lower()}
    #   private: true
    #   schedule: "0 3 * * *"        # cron, optional
    #   on_git_tag: false
"""

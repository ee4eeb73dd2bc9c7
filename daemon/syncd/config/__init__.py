"""The configuration file: YAML → typed, validated, frozen dataclasses.

``model`` holds the dataclasses, ``values`` the parsers of single values
(durations, ``KIND:PATH`` remote addresses, paths), ``loader`` the schema and
the reader with file:line errors, ``template`` the text ``syncd init`` writes.
Everything outside this package imports from here.
"""

from __future__ import annotations

from .loader import load_config
from .model import (
    Config,
    DriveConfig,
    KaggleConfig,
    MirrorConfig,
    ProjectConfig,
    PullConfig,
    RemoteAddress,
    SnapshotConfig,
    TrainConfig,
)
from .template import render_initial_config
from .values import default_config_path, parse_address, parse_duration, resolve_path

__all__ = [
    "Config",
    "DriveConfig",
    "KaggleConfig",
    "MirrorConfig",
    "ProjectConfig",
    "PullConfig",
    "RemoteAddress",
    "SnapshotConfig",
    "TrainConfig",
    "default_config_path",
    "load_config",
    "parse_address",
    "parse_duration",
    "render_initial_config",
    "resolve_path",
]

"""The configuration file: YAML → typed, validated, frozen dataclasses.

Everything outside this package imports from here.
"""

from __future__ import annotations

from .loader import (
    Config,
    DriveConfig,
    KaggleConfig,
    MirrorConfig,
    ProjectConfig,
    RemoteAddress,
    SnapshotConfig,
    default_config_path,
    load_config,
    parse_address,
    parse_duration,
    render_initial_config,
    resolve_path,
)

__all__ = [
    "Config",
    "DriveConfig",
    "KaggleConfig",
    "MirrorConfig",
    "ProjectConfig",
    "RemoteAddress",
    "SnapshotConfig",
    "default_config_path",
    "load_config",
    "parse_address",
    "parse_duration",
    "render_initial_config",
    "resolve_path",
]

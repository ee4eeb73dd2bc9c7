"""The configuration as the rest of syncd sees it: frozen dataclasses, already checked.

``loader`` builds them from the file; nothing else constructs them except tests
and the defaults below.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import platformdirs

from ..errors import ConfigError

APP = "syncd"


def config_dir() -> Path:
    """The platform's config folder for syncd (``~/.config/syncd`` on Linux)."""
    return platformdirs.user_config_path(APP)


@dataclass(frozen=True)
class RemoteAddress:
    raw: str  # as written, e.g. "gdrive:/syncd/cifar"; also how status shows it
    kind: str  # "local" | "gdrive"
    path: str | None  # local: absolute folder; gdrive: "/a/b" ("/" allowed); None for id form
    folder_id: str | None  # gdrive:id=<folderId> only

    def __str__(self) -> str:
        return self.raw


@dataclass(frozen=True)
class DriveConfig:
    credentials: Path = field(default_factory=lambda: config_dir() / "drive-credentials.json")
    client_secrets: Path = field(default_factory=lambda: config_dir() / "client_secrets.json")
    service_account_key: Path | None = None
    endpoint: str = "https://www.googleapis.com/"
    scope: str = "file"  # "file" (drive.file: only what syncd created) | "full" (drive)
    requests_per_second: float = 8.0
    timeout: float = 60.0  # seconds


@dataclass(frozen=True)
class KaggleConfig:
    endpoint: str | None = None  # None: the kaggle client's production default


@dataclass(frozen=True)
class PullConfig:
    """``mirror.pull``: Drive → local for these subfolders (the return path); false when off."""

    paths: tuple[str, ...] = ()  # subfolders brought back from the remote, as "outputs/"
    interval: float = 30.0  # seconds between two polls of Drive's changes feed

    def __bool__(self) -> bool:
        return bool(self.paths)


@dataclass(frozen=True)
class MirrorConfig:
    to: RemoteAddress
    delay: float = 1.0  # seconds of quiet after the last change
    max_delay: float = 10.0  # seconds; a file that never settles still goes
    deletions: str = "trash"  # "trash" | "keep"
    pull: PullConfig = field(default_factory=lambda: PullConfig())  # the return path
    workers: int = 4  # 1..32


@dataclass(frozen=True)
class SnapshotConfig:
    dataset: str  # "owner/slug"; Kaggle's finer rules are checked where datasets are made
    title: str | None = None
    private: bool = True
    license: str = "other"
    schedule: str | None = None  # a valid 5-field cron expression
    every: float | None = None  # seconds
    on_git_tag: bool = False
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    # Folders/files (relative, no trailing slash) that go to the `<slug>-data` dataset,
    # versioned only when they change.
    data: tuple[str, ...] = ()

    @property
    def data_dataset(self) -> str | None:
        """``owner/<slug>-data`` when ``data`` is set."""
        return f"{self.dataset}-data" if self.data else None


@dataclass(frozen=True)
class TrainConfig:
    """``train:``: how ``syncd train`` runs the project's latest snapshot on a Kaggle GPU.
    Kaggle's own rules (accelerator ids, title slugs) are checked by ``train`` before any upload."""

    command: str = "python train.py"  # run in a copy of the snapshot, on Kaggle
    machine_shape: str = "NvidiaTeslaT4"  # a Kaggle accelerator id (T4 x2)
    internet: bool = False  # always sent explicitly
    timeout: float | None = None  # seconds; None: Kaggle's session limit (12 h)
    outputs: str = "runs/"  # runs come home into <outputs>/<run-id>/; ignored by mirror/snapshots
    docker_image: str | None = None  # pin a Kaggle image; None: Kaggle's current default
    poll: float = 30.0  # first poll interval; backs off up to 10x (at most 5 min)
    stalled_after: float = 3600.0  # RUNNING without new log lines this long: "stalled"
    notify: bool = True  # a desktop notification when a run ends
    keep_kernels: int = 5  # finished runs whose Kaggle kernel is kept; older ones are deleted


@dataclass(frozen=True)
class ProjectConfig:
    name: str  # [A-Za-z0-9][A-Za-z0-9._-]*, unique
    path: Path  # absolute and resolved; existence is checked by the daemon, per project
    mirror: MirrorConfig | None  # None for a snapshot-only project
    ignore: tuple[str, ...] = ()
    snapshot: SnapshotConfig | None = None
    train: TrainConfig | None = None  # needs a snapshot section


@dataclass(frozen=True)
class Config:
    path: Path  # the config file, absolute
    drive: DriveConfig
    kaggle: KaggleConfig
    projects: tuple[ProjectConfig, ...]

    def project(self, name: str) -> ProjectConfig:
        for project in self.projects:
            if project.name == name:
                return project
        names = ", ".join(p.name for p in self.projects)
        raise ConfigError(f"no project named {name!r} in {self.path}", f"projects: {names}")

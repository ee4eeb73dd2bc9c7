"""Checks that span several keys of the file: ``snapshot.data`` paths, and what the return
path (``mirror.pull``) needs of the target and of ``drive.scope``.

Each raises one :class:`~syncd.errors.ConfigError` sentence with the file and
line of the key at fault, like every other config error.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from ..errors import ConfigError
from .model import ProjectConfig, PullConfig


class _Located(Protocol):
    """A checked section of the file (``loader._Section``)."""

    @property
    def values(self) -> dict[str, Any]: ...

    def get(self, key: str, default: Any = None) -> Any: ...

    def error(self, key: str | None, message: str, remedy: str | None = None) -> ConfigError: ...


# Kaggle's slug limit (kaggle-cli docs/datasets_metadata.md: 6-50 characters) must leave room
# for the data dataset's "-data".
_DATA_SUFFIX = "-data"


def data_paths(section: _Located, root: Path) -> tuple[str, ...]:
    """``snapshot.data``: each entry relative to the project, inside it, none inside another."""
    paths: list[str] = []
    for entry in section.values["data"]:
        rel = entry
        if entry.startswith(("/", "~")):
            full = Path(entry).expanduser().absolute()
            if full != root and root not in full.parents:
                raise section.error("data", f"{entry!r} is outside the project folder {root}")
            rel = full.relative_to(root).as_posix()
            if rel == ".":
                raise section.error("data", f"{entry!r} is the whole project; name a subfolder")
        for other in paths:
            if rel == other or rel.startswith(other + "/") or other.startswith(rel + "/"):
                why = "is listed twice" if rel == other else f"overlaps {other + '/'!r}"
                raise section.error("data", f"{rel + '/'!r} {why}")
        paths.append(rel)
    slug = str(section.values.get("dataset", "")).partition("/")[2]
    if paths and len(slug) + len(_DATA_SUFFIX) > 50:
        raise section.error(
            "data",
            f"the data dataset's slug {slug + _DATA_SUFFIX!r} would be longer than Kaggle's "
            "50 characters",
            f"shorten snapshot.dataset's slug to at most {50 - len(_DATA_SUFFIX)} characters",
        )
    return tuple(paths)


def pulled(mirror: dict[str, Any]) -> dict[str, Any]:
    """``mirror:`` values with ``pull`` in either form (a list, or ``{paths, interval}``)
    turned into a ``PullConfig``."""
    values = dict(mirror)
    pull = values.get("pull")
    if isinstance(pull, tuple):
        values["pull"] = PullConfig(paths=_once(pull))
    elif pull is not None:  # the mapping form (a checked section)
        fields = dict(pull.values)
        fields["paths"] = _once(fields["paths"])
        values["pull"] = PullConfig(**fields)
    return values


def _once(paths: tuple[str, ...]) -> tuple[str, ...]:
    """The pull folders, each once (``outputs/`` and ``./outputs`` are one folder once
    checked: two pollers' worth of state for one folder would fight over its files)."""
    return tuple(dict.fromkeys(paths))


NEEDS_FULL = (
    "the return path needs drive.scope: full: under drive.scope: file (drive.file) syncd "
    "cannot see the files Colab or anyone else creates on Drive"
)
NEEDS_FULL_FIX = "set drive.scope: full, then run `syncd auth drive` again to grant it"
NEEDS_DRIVE = (
    "the return path reads Google Drive's changes feed, so it needs a gdrive: target "
    "(this project mirrors to a local: folder)"
)


def check_pull_targets(
    sections: Sequence[_Located], projects: Sequence[ProjectConfig], scope: str
) -> None:
    """``mirror.pull`` only with a ``gdrive:`` target and ``drive.scope: full``, and never
    over a ``snapshot.data`` folder (pulled folders are Drive's: not mirrored, not shipped)."""
    for section, project in zip(sections, projects, strict=True):
        if project.mirror is None or not project.mirror.pull:
            continue
        mirror = section.get("mirror")
        if project.mirror.to.kind != "gdrive":
            raise mirror.error(
                "pull", NEEDS_DRIVE, "remove mirror.pull, or mirror to gdrive:/syncd/NAME"
            )
        if scope != "full":
            raise mirror.error("pull", NEEDS_FULL, NEEDS_FULL_FIX)
        _not_nested(mirror, project.mirror.pull.paths)
        _apart_from_data(mirror, project)


def _not_nested(mirror: _Located, paths: tuple[str, ...]) -> None:
    """A pull folder inside another is refused: the outer one covers it already, and a
    second entry would read as if it changed something."""
    for inner in paths:
        for outer in paths:
            if inner != outer and inner.startswith(outer):
                raise mirror.error(
                    "pull",
                    f"{inner!r} is inside {outer!r}, which is pulled already (with every "
                    "folder below it)",
                    f"list only {outer!r}",
                )


def _apart_from_data(mirror: _Located, project: ProjectConfig) -> None:
    assert project.mirror is not None
    data = project.snapshot.data if project.snapshot is not None else ()
    for pulled_dir in project.mirror.pull.paths:
        pull = pulled_dir.rstrip("/")
        for entry in data:
            if pull == entry or pull.startswith(entry + "/") or entry.startswith(pull + "/"):
                raise mirror.error(
                    "pull",
                    f"{pulled_dir!r} is pulled from Drive but overlaps snapshot.data "
                    f"{entry + '/'!r}: files Colab writes there would be mixed into the data "
                    "Kaggle trains on",
                    "list that folder in mirror.pull or in snapshot.data, not both",
                )

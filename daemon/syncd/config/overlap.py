"""Projects and targets that must stay apart, checked at config load on resolved, real paths.

A folder belongs to one project, and a target to one project:

- a project inside another project (or the same folder twice) would be mirrored twice;
- a ``local:`` target inside a project folder, or around one, gets syncd's own copies
  picked up again (with its own project that never ends; with another project syncd
  would rewrite that project's *source* files and rename the originals to conflict copies);
- two projects with one target (or one target inside another's) turn each other's files
  into conflict copies forever; for ``gdrive:`` the same holds for one Drive folder,
  however it is spelled (``gdrive:/a/b`` = ``gdrive://a/b/``), or one folder id.

Paths are compared after ``resolve()`` (the loader resolves ``~``, relative paths and
symlinks), so a target reached through a symlink into a project is caught too.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from typing import Any, Protocol

from ..errors import ConfigError
from .model import ProjectConfig, RemoteAddress

_OWN = "syncd would mirror into itself; choose a folder outside it"
_SHARED = "give each project a target of its own"


class _Located(Protocol):
    """A section of the file that can name its own line in an error."""

    def get(self, key: str, default: Any = None) -> Any: ...

    def error(self, key: str | None, message: str, remedy: str | None = None) -> ConfigError: ...


def _nesting(a: PurePosixPath | Path, b: PurePosixPath | Path) -> str | None:
    """How ``a`` relates to ``b``: "is", "is inside", "contains", or None when apart."""
    if a == b:
        return "is"
    if a.is_relative_to(b):
        return "is inside"
    if b.is_relative_to(a):
        return "contains"
    return None


def _target_key(to: RemoteAddress) -> tuple[str, PurePosixPath | Path | str]:
    if to.kind == "local":
        return "local", Path(to.path or "")
    if to.folder_id is not None:
        return "gdrive-id", to.folder_id
    return "gdrive", PurePosixPath(to.path or "/")


def check_projects_apart(sections: Sequence[_Located], projects: Sequence[ProjectConfig]) -> None:
    """Raise a ConfigError (file:line) for the first project that overlaps an earlier one."""
    for i, (section, project) in enumerate(zip(sections, projects, strict=True)):
        _check_folder(section, project, projects[:i])
        if project.mirror is not None:
            _check_target(section.get("mirror"), project, projects, i)


def _check_folder(
    section: _Located, project: ProjectConfig, earlier: Sequence[ProjectConfig]
) -> None:
    for j, other in enumerate(earlier):
        if other.name == project.name:
            raise section.error("name", f"{project.name!r} is already used by projects[{j}]")
        relation = _nesting(project.path, other.path)
        if relation == "is":
            raise section.error("path", f"{project.path} is already project {other.name!r}")
        if relation is not None:
            raise section.error(
                "path",
                f"{project.path} {relation} the folder of project {other.name!r} ({other.path})",
                "a folder can belong to one project only; mirror the outer one, or split them",
            )


def _check_target(
    mirror: _Located, project: ProjectConfig, projects: Sequence[ProjectConfig], index: int
) -> None:
    assert project.mirror is not None
    to = project.mirror.to
    kind, where = _target_key(to)
    if kind == "local":
        assert isinstance(where, Path)
        for other in projects:
            relation = _nesting(where, other.path)
            if relation is None:
                continue
            whose = "the project folder" if other is project else f"project {other.name!r}"
            relation = "is inside" if relation == "is" else relation
            raise mirror.error("to", f"{to.raw} {relation} {whose} ({other.path})", _OWN)
    for other in projects[:index]:
        if other.mirror is None:
            continue
        other_kind, other_where = _target_key(other.mirror.to)
        if other_kind != kind:
            continue
        if kind == "gdrive-id":
            relation = "is" if where == other_where else None
        else:
            relation = _nesting(where, other_where)  # type: ignore[arg-type]
        if relation is None:
            continue
        if relation == "is":
            message = f"{to.raw} is also the target of project {other.name!r}"
        else:
            message = f"{to.raw} {relation} the target of project {other.name!r}"
        raise mirror.error("to", f"{message} ({other.mirror.to.raw})", _SHARED)

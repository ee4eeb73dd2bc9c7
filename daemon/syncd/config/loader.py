"""Reading ``config.yaml``: YAML nodes checked against one schema table → ``model`` dataclasses.

Every problem is raised as one :class:`~syncd.errors.ConfigError` sentence naming
the file, the line and the key path, e.g. ``config.yaml:12: projects[0].mirror.delay:
'1x' is not a duration (use e.g. 500ms, 1s, 10m)``.

Line numbers come from walking the node tree of ``yaml.compose`` rather than
the loaded objects, which have forgotten where they came from.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from ..errors import ConfigError
from .cross_checks import check_pull_targets, data_paths, pulled
from .model import (
    Config,
    DriveConfig,
    KaggleConfig,
    MirrorConfig,
    ProjectConfig,
    SnapshotConfig,
    TrainConfig,
)
from .overlap import check_projects_apart
from .values import (
    cron_schedule,
    data_path,
    dataset_ref,
    drive_scope,
    http_url,
    literal_ignore,
    parse_address,
    parse_duration,
    positive,
    project_name,
    pull_folder,
    pull_interval,
    resolve_path,
    subfolder,
    worker_count,
)

_CONTROL = {c: f"\\x{c:02x}" for c in [*range(0x20), 0x7F]} | {
    0x0A: "\\n",
    0x0D: "\\r",
    0x09: "\\t",
}


def one_line(message: str) -> str:
    """The message with the file's own text made printable: a key or value echoed from the
    file may hold a line break or a control character, and an error is one line."""
    return message.translate(_CONTROL).replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


# --- the schema: one table per section; keys are the dataclass field names --------------------


@dataclass(frozen=True)
class _Field:
    kind: str  # a key of _KINDS
    required: bool = False
    choices: tuple[str, ...] = ()
    check: Callable[[Any], Any] | None = None  # returns the (possibly normalised) value
    schema: dict[str, _Field] | None = None  # for section / sections


_DRIVE = {
    "credentials": _Field("path"),
    "client_secrets": _Field("path"),
    "service_account_key": _Field("path"),
    "endpoint": _Field("str", check=http_url),
    "scope": _Field("str", check=drive_scope),  # also drive.file / drive (the scope names)
    "requests_per_second": _Field("number", check=positive),
    "timeout": _Field("duration", check=positive),
}
_KAGGLE = {"endpoint": _Field("str", check=http_url)}
_MIRROR = {
    "to": _Field("address", required=True),
    "delay": _Field("duration"),
    "max_delay": _Field("duration", check=positive),
    "deletions": _Field("str", choices=("trash", "keep")),
    "pull": _Field("pull"),  # [outputs/] or {paths: [outputs/], interval: 30s}
    "workers": _Field("int", check=worker_count),
}
_PULL = {
    "paths": _Field("strings", required=True, check=pull_folder),
    "interval": _Field("duration", check=pull_interval),
}
_SNAPSHOT = {
    "dataset": _Field("str", required=True, check=dataset_ref),
    "title": _Field("str"),
    "private": _Field("bool"),
    "license": _Field("str"),
    "schedule": _Field("str", check=cron_schedule),
    "every": _Field("duration", check=positive),
    "on_git_tag": _Field("bool"),
    "include": _Field("strings"),
    "exclude": _Field("strings"),
    "data": _Field("strings", check=data_path),
}


def _train_poll(seconds: float) -> float:
    if seconds < 1:
        raise ValueError(f"{seconds:g}s is too often to ask Kaggle (at least 1s)")
    return seconds


def _kept_kernels(count: int) -> int:
    if count < 0:
        raise ValueError(f"must be 0 or more, got {count}")
    return count


def _command(text: str) -> str:
    if not text.strip():
        raise ValueError("needs a command, e.g. python train.py")
    return text.strip()


# `syncd train`: Kaggle's own rules (accelerator ids, slugs, the P100) are checked by `train`.
_TRAIN = {
    "command": _Field("str", check=_command),
    "machine_shape": _Field("str"),
    "internet": _Field("bool"),
    "timeout": _Field("duration", check=positive),
    "outputs": _Field("str", check=subfolder),
    "docker_image": _Field("str"),
    "poll": _Field("duration", check=_train_poll),
    "stalled_after": _Field("duration", check=positive),
    "notify": _Field("bool"),
    "keep_kernels": _Field("int", check=_kept_kernels),
}
_PROJECT = {
    "name": _Field("str", required=True, check=project_name),
    "path": _Field("path", required=True),
    "mirror": _Field("section", schema=_MIRROR),
    "ignore": _Field("strings"),
    "snapshot": _Field("section", schema=_SNAPSHOT),
    "train": _Field("section", schema=_TRAIN),
}
_ROOT = {
    "drive": _Field("section", schema=_DRIVE),
    "kaggle": _Field("section", schema=_KAGGLE),
    "projects": _Field("sections", required=True, schema=_PROJECT),
}

_TAG = "tag:yaml.org,2002:"
# What each kind of field is called in messages, and which YAML scalar tags it accepts. Strings
# take any scalar as written: ``title: 2024`` or ``license: no`` mean that text, not YAML 1.1's
# integer or boolean.
_KINDS: dict[str, tuple[str, tuple[str, ...]]] = {
    "str": ("a string", ("str", "int", "float", "bool", "timestamp")),
    "bool": ("true or false", ("bool",)),
    "int": ("an integer", ("int",)),
    "number": ("a number", ("int", "float")),
    "duration": ("a duration (e.g. 500ms, 1s, 10m)", ("str", "int", "float")),
    "path": ("a path", ("str",)),
    "address": ("a remote address (local:DIR or gdrive:/DIR)", ("str",)),
    "strings": ('a list of strings (e.g. ["*.ckpt"])', ()),
    "pull": ("a list of subfolders (e.g. [outputs/]) or {paths: [...], interval: 30s}", ()),
    "section": ("a mapping of keys", ()),
    "sections": ("a list of mappings", ()),
}
_TAG_NAMES = {"float": "a number", "timestamp": "a date", "null": "nothing"}


def _join(keypath: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{keypath}[{key}]"
    return f"{keypath}.{key}" if keypath else key


def _describe(node: Node) -> str:
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    tag = node.tag.removeprefix(_TAG)
    return _TAG_NAMES.get(tag) or (_KINDS[tag][0] if tag in _KINDS else f"a {node.tag} value")


def _is_null(node: Node) -> bool:
    return isinstance(node, ScalarNode) and node.tag == _TAG + "null"


@dataclass(frozen=True)
class _Section:
    """One mapping of the file, type-checked, remembering the line of each key for later checks."""

    label: str
    keypath: str
    line: int
    values: dict[str, Any]
    lines: dict[str, int]

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    def error(self, key: str | None, message: str, remedy: str | None = None) -> ConfigError:
        line = self.lines.get(key, self.line) if key else self.line
        where = _join(self.keypath, key) if key else self.keypath
        return ConfigError(one_line(f"{self.label}:{line}: {where}: {message}"), remedy)


class _Reader:
    """Walks composed YAML nodes against the schema tables above."""

    def __init__(self, label: str, base: Path) -> None:
        self.label = label
        self.base = base  # relative paths in the file are relative to the file's folder

    def error(self, node: Node, keypath: str, message: str) -> ConfigError:
        where = f"{keypath}: " if keypath else ""
        return ConfigError(one_line(f"{self.label}:{node.start_mark.line + 1}: {where}{message}"))

    def section(self, node: Node, schema: dict[str, _Field], keypath: str) -> _Section:
        if not isinstance(node, MappingNode):
            raise self.error(node, keypath, f"expected a mapping of keys, got {_describe(node)}")
        values: dict[str, Any] = {}
        lines: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, ScalarNode) else "?"
            where = _join(keypath, key)
            if key not in schema:
                close = difflib.get_close_matches(key, schema, n=1)
                hint = f"did you mean {close[0]!r}?" if close else f"known: {', '.join(schema)}"
                raise self.error(key_node, where, f"unknown key ({hint})")
            if key in lines:
                raise self.error(key_node, where, f"appears twice (first on line {lines[key]})")
            lines[key] = key_node.start_mark.line + 1
            spec = schema[key]
            if _is_null(value_node):
                if spec.required:
                    raise self.error(value_node, where, f"needs a value ({_KINDS[spec.kind][0]})")
                continue  # an empty value means "use the default", like an absent key
            values[key] = self.value(value_node, spec, where)
        for key, spec in schema.items():
            if spec.required and key not in lines:
                raise self.error(node, _join(keypath, key), "missing (this key is required)")
        return _Section(self.label, keypath, node.start_mark.line + 1, values, lines)

    def value(self, node: Node, spec: _Field, keypath: str) -> Any:
        expected, allowed = _KINDS[spec.kind]
        if spec.kind == "section":
            return self.section(node, spec.schema or {}, keypath)
        if spec.kind == "pull":  # the short list form, or the mapping with an interval
            if isinstance(node, MappingNode):
                return self.section(node, _PULL, keypath)
            if not isinstance(node, SequenceNode):
                raise self.error(node, keypath, f"expected {expected}, got {_describe(node)}")
            return self.value(node, _Field("strings", check=pull_folder), keypath)
        if spec.kind in ("sections", "strings"):
            if not isinstance(node, SequenceNode):
                raise self.error(node, keypath, f"expected {expected}, got {_describe(node)}")
            if spec.required and not node.value:
                raise self.error(node, keypath, "needs at least one entry")
            item = (
                _Field("section", schema=spec.schema)
                if spec.kind == "sections"
                else _Field("str", check=spec.check)
            )
            return tuple(self.value(n, item, _join(keypath, i)) for i, n in enumerate(node.value))
        tag = node.tag.removeprefix(_TAG) if isinstance(node, ScalarNode) else None
        if tag not in allowed:
            raise self.error(node, keypath, f"expected {expected}, got {_describe(node)}")
        # Strings keep the text as written; other scalars are YAML's typed value.
        value = node.value if "str" in allowed else SafeConstructor().construct_object(node)
        convert: dict[str, Callable[[Any], Any]] = {
            "duration": parse_duration,
            "number": float,
            "path": lambda text: resolve_path(text, self.base),
            "address": lambda text: parse_address(text, self.base),
        }
        try:
            value = convert.get(spec.kind, lambda v: v)(value)
            if spec.choices and value not in spec.choices:
                raise ValueError(f"{value!r} is not one of {', '.join(spec.choices)}")
            return spec.check(value) if spec.check else value
        except ValueError as exc:
            raise self.error(node, keypath, str(exc)) from None


# --- from checked sections to dataclasses, with the checks that span several keys -------------


def _mirror(section: _Section) -> MirrorConfig:
    mirror = MirrorConfig(**pulled(section.values))
    if mirror.delay > mirror.max_delay:
        message = f"{mirror.delay:g}s is longer than max_delay ({mirror.max_delay:g}s)"
        raise section.error("delay", message)
    return mirror


def _project(section: _Section) -> ProjectConfig:
    values = dict(section.values)
    if "mirror" not in values and "snapshot" not in values:
        raise section.error(None, "needs a mirror section, a snapshot section, or both")
    values["mirror"] = _mirror(values["mirror"]) if "mirror" in values else None
    if values["mirror"] is not None and values["mirror"].pull:
        # The pull subfolders belong to Drive (the return path): never mirrored up, so a
        # pulled file is not uploaded back, nor snapshotted (outputs, not code).
        values["ignore"] = (
            *values.get("ignore", ()),
            *(literal_ignore(p) for p in values["mirror"].pull.paths),  # names, not globs
        )
    if "snapshot" in values:
        snapshot = values["snapshot"]
        if "data" in snapshot.values:
            snapshot.values["data"] = data_paths(snapshot, values["path"])
        values["snapshot"] = SnapshotConfig(**snapshot.values)
    if "train" in section.lines:
        _train(section, values)
    return ProjectConfig(**values)


def _train(section: _Section, values: dict[str, Any]) -> None:
    """``train:`` (an empty one means every default). Its outputs folder joins the project's
    ignore list, so runs brought home are neither mirrored nor snapshotted."""
    if "snapshot" not in values:
        raise section.error("train", "needs a snapshot section: a run trains on a snapshot")
    given = values.get("train")
    train = TrainConfig(**given.values) if given is not None else TrainConfig()
    values["train"] = train
    values["ignore"] = (*values.get("ignore", ()), "/" + train.outputs)


def load_config(path: Path) -> Config:
    """Read, check and convert the config file; every problem is one ConfigError sentence."""
    label = str(path)
    file = Path(path).expanduser().absolute()
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"config file {file} does not exist", "create one with: syncd init DIR"
        ) from None
    except UnicodeDecodeError:
        raise ConfigError(f"{label}:1: not valid YAML: the file is not UTF-8 text") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {file}: {exc.strerror}") from None
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        # Some problems only read well after their context ("..., but found another document").
        problem = exc.problem or ""
        if exc.context and (not problem or problem.startswith("but ")):
            problem = f"{exc.context}, {problem}".rstrip(", ")
        raise ConfigError(one_line(f"{label}:{line}: not valid YAML: {problem}")) from None
    except yaml.reader.ReaderError as exc:  # a character YAML does not allow (NUL, ...)
        line = text[: exc.position].count("\n") + 1
        what = f"#x{exc.character:04x}" if isinstance(exc.character, int) else "a character"
        raise ConfigError(
            f"{label}:{line}: not valid YAML: the file holds {what}, which YAML does not allow",
            "remove it (a text editor shows it as a control character)",
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigError(one_line(f"{label}:1: not valid YAML: {exc}")) from None
    if root is None:
        raise ConfigError(f"{label}:1: the file is empty", "it needs at least a projects list")

    file = file.resolve()
    top = _Reader(label, file.parent).section(root, _ROOT, "")
    sections: tuple[_Section, ...] = top.values["projects"]
    projects = [_project(section) for section in sections]
    check_projects_apart(sections, projects)
    drive, kaggle = top.get("drive"), top.get("kaggle")
    drive_config = DriveConfig(**drive.values) if drive else DriveConfig()
    check_pull_targets(sections, projects, drive_config.scope)
    return Config(
        path=file,
        drive=drive_config,
        kaggle=KaggleConfig(**kaggle.values) if kaggle else KaggleConfig(),
        projects=tuple(projects),
    )

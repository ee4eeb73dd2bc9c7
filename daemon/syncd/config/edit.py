"""Small edits of a config file that keep the user's comments and layout: ``syncd init`` on a
config that exists adds a project, switches a project's target, or adds its snapshot.

Edits are made in the text at the positions PyYAML's node tree gives (``yaml.compose``
keeps them), never by dumping a re-serialised document, which would drop every comment.
The result is loaded before it replaces the file (``write_checked``), so a bad edit never
lands.  Only block-style sections are edited; a flow-style ``projects: [...]`` is refused
with a sentence.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from ..errors import ConfigError
from .loader import load_config
from .model import Config


class EditRefused(ConfigError):
    """The file is laid out in a way this module does not edit; the user does it by hand."""


def _scalar(value: str) -> str:
    """``value`` as a YAML scalar: plain when YAML reads it back as this string, else quoted."""
    plain = re.fullmatch(r"[A-Za-z0-9_./~=-][A-Za-z0-9_./~=:@+-]*", value) is not None
    if plain and yaml.safe_load(value) == value:
        return value
    return json.dumps(value, ensure_ascii=False)


def _comments_after(lines: list[str], line: int, deeper_than: int) -> int:
    """The last line of the comment lines right after ``line`` that are indented deeper than
    ``deeper_than`` (they belong to the entry above them)."""
    while line + 1 < len(lines):
        text = lines[line + 1]
        stripped = text.lstrip(" ")
        if not stripped.startswith("#") or len(text) - len(stripped) <= deeper_than:
            break
        line += 1
    return line


def _last_line(node: Node) -> int:
    """The 0-based line holding the last character of ``node``'s own text."""
    children: list[Node] = []
    if isinstance(node, MappingNode) and not node.flow_style:
        children = [v for _, v in node.value]
    elif isinstance(node, SequenceNode) and not node.flow_style:
        children = list(node.value)
    if children:
        return _last_line(children[-1])
    end = node.end_mark
    return end.line - 1 if end.column == 0 and end.line > node.start_mark.line else end.line


def _insert_after_line(text: str, line: int, block: str) -> str:
    lines = text.splitlines(keepends=True)
    if line < len(lines) and not lines[line].endswith("\n"):
        lines[line] += "\n"
    lines.insert(line + 1, block)
    return "".join(lines)


def _replace(text: str, node: Node, new: str) -> str:
    return text[: node.start_mark.index] + new + text[node.end_mark.index :]


def _root(text: str, label: str) -> MappingNode:
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    if not isinstance(root, MappingNode):
        raise EditRefused(f"{label} is not a mapping of keys", "edit it by hand")
    return root


def _get(node: MappingNode, key: str) -> Node | None:
    return next((v for k, v in node.value if isinstance(k, ScalarNode) and k.value == key), None)


def _projects(root: MappingNode, label: str) -> SequenceNode:
    seq = _get(root, "projects")
    if not isinstance(seq, SequenceNode) or seq.flow_style or not seq.value:
        raise EditRefused(
            f"{label}: `projects:` is not a list of `- name: ...` entries this command can edit",
            "add the project by hand (see config.example.yaml)",
        )
    return seq


def _project(text: str, label: str, index: int) -> MappingNode:
    item = _projects(_root(text, label), label).value[index]
    if not isinstance(item, MappingNode) or item.flow_style:
        raise EditRefused(
            f"{label}: projects[{index}] is written on one line ({{...}})", "edit it by hand"
        )
    return item


def add_project(text: str, label: str, block: str) -> str:
    """Append ``block`` (lines starting with ``- name:``, indented by two) to ``projects:``."""
    seq = _projects(_root(text, label), label)
    column = seq.start_mark.column
    shifted = "".join(
        " " * column + line[2:] if line.strip() else line for line in block.splitlines(True)
    )
    last = _comments_after(text.splitlines(True), _last_line(seq), column)
    return _insert_after_line(text, last, shifted)


def set_target(text: str, label: str, index: int, address: str) -> str:
    """projects[index].mirror.to = ``address``."""
    item = _project(text, label, index)
    mirror = _get(item, "mirror")
    to = _get(mirror, "to") if isinstance(mirror, MappingNode) else None
    if not isinstance(to, ScalarNode) or to.end_mark.index <= to.start_mark.index:
        raise EditRefused(
            f"{label}: projects[{index}] has no `mirror: to:` line to change", "edit it by hand"
        )
    return _replace(text, to, _scalar(address))


def set_dataset(text: str, label: str, index: int, dataset: str) -> str:
    """projects[index].snapshot.dataset = ``dataset`` (adding the section if need be)."""
    item = _project(text, label, index)
    snapshot = _get(item, "snapshot")
    if isinstance(snapshot, MappingNode) and not snapshot.flow_style:
        current = _get(snapshot, "dataset")
        if isinstance(current, ScalarNode) and current.end_mark.index > current.start_mark.index:
            return _replace(text, current, _scalar(dataset))
    if snapshot is not None:
        raise EditRefused(
            f"{label}: projects[{index}].snapshot is written in a way this command does not change",
            "edit it by hand",
        )
    indent = " " * item.start_mark.column
    block = f"{indent}snapshot:\n{indent}  dataset: {_scalar(dataset)}\n"
    last = _last_line(item)
    lines = text.splitlines(True)
    if last + 1 < len(lines) and lines[last + 1].startswith(f"{indent}# snapshot:"):
        # `syncd init` wrote a commented-out snapshot section here: this replaces it.
        end = _comments_after(lines, last + 1, item.start_mark.column - 1)
        text = "".join(lines[: last + 1] + lines[end + 1 :])
    return _insert_after_line(text, last, block)


def write_checked(path: Path, text: str) -> Config:
    """Replace the config file with ``text`` once it loads; the file is left alone otherwise."""
    folder = path.parent
    fd, tmp = tempfile.mkstemp(prefix=".syncd-config-", suffix=".yaml", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        try:
            load_config(Path(tmp))
        except ConfigError as exc:
            message = str(exc).replace(tmp, str(path))
            raise ConfigError(f"the edited config would not load: {message}") from None
        if path.exists():
            os.chmod(tmp, path.stat().st_mode & 0o777)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return load_config(path)

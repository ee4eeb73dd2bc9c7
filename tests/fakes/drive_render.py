"""Answers in Drive v2's shape, and partial responses (the ``fields`` parameter).

``render_file`` builds the whole ``drive#file`` resource: parent references
carry the real id with ``isRoot`` (never the alias ``root``); only files with
binary content have ``md5Checksum``, ``fileSize``, ``headRevisionId``,
``downloadUrl`` — folders, Google Docs editors files and shortcuts have none
(Drive v2 reference, File resource; rclone ``backend/drive/drive.go`` treats
an empty ``md5Checksum`` as "no hash").

``select`` applies ``fields`` like Google's partial-response syntax
(``a,b/c,items(id,title),*``): only what was asked comes back, so a field
the client reads but did not ask for is absent, as on the real API; a key
the resource does not have (``nextPageToken`` on the last page) stays
absent; a name the schema does not know is a 400 ``invalidParameter``
("Invalid field selection …").  Without ``fields``, v2 answers the whole
resource.
"""

from __future__ import annotations

import functools
import json
import os
from typing import Any

from .drive_errors import DriveApiError
from .drive_store import Item, Store


def _ext(title: str) -> str:
    return os.path.splitext(title)[1].lstrip(".")


def etag(item: Item) -> str:
    """Changes with every change to the item (its version), as Drive's etags do."""
    return f'"{item.id}/{item.version}"'


def render_file(store: Store, item: Item, base_url: str) -> dict[str, Any]:
    self_link = f"{base_url}drive/v2/files/{item.id}"
    res: dict[str, Any] = {
        "kind": "drive#file",
        "id": item.id,
        "etag": etag(item),
        "selfLink": self_link,
        "alternateLink": f"https://drive.google.com/file/d/{item.id}/view",
        "title": item.title,
        "mimeType": item.mime_type,
        "labels": {
            "starred": False,
            "hidden": False,
            "trashed": store.is_trashed(item),
            "restricted": False,
            "viewed": True,
        },
        "explicitlyTrashed": item.explicitly_trashed,
        "createdDate": item.created,
        "modifiedDate": item.modified,
        "parents": [
            {
                "kind": "drive#parentReference",
                "id": p,
                "selfLink": f"{self_link}/parents/{p}",
                "parentLink": f"{base_url}drive/v2/files/{p}",
                "isRoot": p in store.roots.values(),
            }
            for p in item.parents
        ],
        "version": str(item.version),
        "editable": True,
        "copyable": True,
        "shared": False,
        "spaces": ["drive"],
        "ownedByMe": bool(item.owner),
        "quotaBytesUsed": str(len(item.content)),
    }
    if item.owner:
        res["ownerNames"] = [item.owner.split("@")[0]]
    if item.drive_id is not None:
        res["driveId"] = res["teamDriveId"] = item.drive_id
    if item.description is not None:
        res["description"] = item.description
    if item.has_blob:
        res.update(
            downloadUrl=f"{base_url}drive/v2/files/{item.id}?alt=media",
            webContentLink=f"https://drive.google.com/uc?id={item.id}&export=download",
            originalFilename=item.title,
            fileExtension=_ext(item.title),
            fullFileExtension=_ext(item.title),
            fileSize=str(len(item.content)),
            md5Checksum=item.md5,
            headRevisionId=f"0B{item.id[1:12]}r{item.head_revision}",
        )
    elif item.shortcut_target is not None:
        target = store.items.get(item.shortcut_target)
        res["shortcutDetails"] = {
            "targetId": item.shortcut_target,
            "targetMimeType": target.mime_type if target else "",
        }
    elif not item.is_folder:  # a Google Docs editors file: export links, no blob
        res["exportLinks"] = {
            "application/pdf": f"{base_url}drive/v2/files/{item.id}/export?mimeType=application/pdf"
        }
    return res


# --------------------------------------------------------------------------- fields

FieldTree = dict[str, "FieldTree"]  # name → sub-selection ({} = the whole value)


def parse_fields(spec: str) -> FieldTree:
    """``a,b/c,d(e,f/g)`` → {"a": {}, "b": {"c": {}}, "d": {"e": {}, "f": {"g": {}}}}."""
    tree: FieldTree = {}
    pos = _parse_list(spec.replace(" ", ""), 0, tree)
    if pos != len(spec.replace(" ", "")):
        raise _bad(spec)
    return tree


def _parse_list(spec: str, pos: int, into: FieldTree) -> int:
    while True:
        start = pos
        while pos < len(spec) and spec[pos] not in ",()":
            pos += 1
        path = spec[start:pos].split("/")
        if not all(path):
            raise _bad(spec)
        node = into
        for name in path:
            node = node.setdefault(name, {})
        if pos < len(spec) and spec[pos] == "(":
            sub: FieldTree = {}
            pos = _parse_list(spec, pos + 1, sub)
            if pos >= len(spec) or spec[pos] != ")":
                raise _bad(spec)
            pos += 1
            _merge(node, sub)
        if pos < len(spec) and spec[pos] == ",":
            pos += 1
            continue
        return pos


def _merge(node: FieldTree, sub: FieldTree) -> None:
    for key, value in sub.items():
        _merge(node.setdefault(key, {}), value)


def _bad(what: str) -> DriveApiError:
    return DriveApiError(400, "invalidParameter", f"Invalid field selection {what}", "fields")


@functools.cache
def _schemas() -> dict[str, Any]:
    from googleapiclient.discovery_cache import get_static_doc

    return json.loads(get_static_doc("drive", "v2"))["schemas"]


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    while True:
        if "$ref" in schema:
            schema = _schemas()[schema["$ref"]]
        elif schema.get("type") == "array":
            schema = schema.get("items", {})
        else:
            return schema


def check_fields(tree: FieldTree, schema_name: str) -> None:
    """Every selected name must exist in the v2 discovery schema (else Google's 400)."""
    _check(tree, _schemas()[schema_name])


def _check(tree: FieldTree, schema: dict[str, Any]) -> None:
    schema = _resolve(schema)
    props = schema.get("properties")
    for name, sub in tree.items():
        if name == "*" or (props is None and "additionalProperties" in schema):
            continue
        if props is None or name not in props:
            raise _bad(name)
        if sub:
            _check(sub, props[name])


def select(value: Any, tree: FieldTree) -> Any:
    if not tree or "*" in tree and len(tree) == 1:
        return value
    if isinstance(value, list):
        return [select(v, tree) for v in value]
    if not isinstance(value, dict):
        return value
    if "*" in tree:
        return {k: select(v, tree.get(k, {})) for k, v in value.items()}
    return {k: select(value[k], sub) for k, sub in tree.items() if k in value}


def partial(resource: dict[str, Any], fields: str | None, schema_name: str) -> dict[str, Any]:
    """``resource`` reduced to ``fields`` (validated against ``schema_name``)."""
    if not fields:
        return resource
    tree = parse_fields(fields)
    check_fields(tree, schema_name)
    return select(resource, tree)

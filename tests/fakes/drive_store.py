"""The fake Drive's data: files and folders in Drive v2's shape, and the query language.

Owns the store (items, parents, the trash, content and md5, reserved ids),
rendering an item as a v2 ``drive#file`` resource, Google's JSON error shape,
and the subset of the ``q`` language syncd uses (``'id' in parents``,
``title =`` (case-insensitive, as Drive), ``mimeType``, ``trashed``, combined
with ``and``/``or``/``not`` and parentheses).  No HTTP here: ``drive_protocol``
maps requests onto it and ``drive_server`` serves them.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

FOLDER_MIME = "application/vnd.google-apps.folder"
ROOT_ID = "0AROOTfakeDriveRootFolderUk9PVA"
DEFAULT_REFRESH_TOKEN = "1//fake-refresh-token"
MAX_PAGE = 1000  # v2 declares no maximum but never returns more than 1000 items per page
STANDARD_REASONS = {
    400: ("badRequest", "Bad Request"),
    403: ("userRateLimitExceeded", "User Rate Limit Exceeded"),
    429: ("rateLimitExceeded", "Rate Limit Exceeded"),
    500: ("backendError", "Backend Error"),
    502: ("backendError", "Bad Gateway"),
    503: ("backendError", "The service is currently unavailable."),
}


class DriveApiError(Exception):
    """An error answered to the client in Google's JSON error shape."""

    def __init__(self, status: int, reason: str, message: str, location: str | None = None) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status, self.reason, self.message, self.location = status, reason, message, location

    def body(self) -> dict[str, Any]:
        detail: dict[str, Any] = {
            "domain": "global",
            "reason": self.reason,
            "message": self.message,
        }
        if self.location:
            detail["locationType"] = "header" if self.location == "Authorization" else "parameter"
            detail["location"] = self.location
        return {"error": {"errors": [detail], "code": self.status, "message": self.message}}


def not_found(file_id: str) -> DriveApiError:
    return DriveApiError(404, "notFound", f"File not found: {file_id}", "fileId")


def invalid(message: str, location: str | None = None) -> DriveApiError:
    return DriveApiError(400, "invalid", message, location)


def now_rfc3339() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def new_file_id() -> str:
    # Same alphabet and length as real Drive ids (33 chars, starting with "1").
    return "1" + secrets.token_urlsafe(24)


# --------------------------------------------------------------------------- file store


@dataclass
class Item:
    id: str
    title: str
    mime_type: str
    parents: list[str]
    content: bytes = b""
    description: str | None = None
    created: str = field(default_factory=now_rfc3339)
    modified: str = field(default_factory=now_rfc3339)
    version: int = 1
    head_revision: int = 1
    explicitly_trashed: bool = False
    md5: str = ""  # cached: listings render thousands of items, content can be large

    def __post_init__(self) -> None:
        self.md5 = hashlib.md5(self.content).hexdigest()

    def replace_content(self, data: bytes) -> None:
        self.content, self.md5 = data, hashlib.md5(data).hexdigest()

    @property
    def is_folder(self) -> bool:
        return self.mime_type == FOLDER_MIME

    def touch(self, content_changed: bool = False, modified: bool = True) -> None:
        self.version += 1
        if content_changed:
            self.head_revision += 1
        if modified:
            self.modified = now_rfc3339()


class Store:
    """Files and their content. Callers hold FakeDrive's lock."""

    def __init__(self) -> None:
        self.items: dict[str, Item] = {}
        self.reserved_ids: set[str] = set()
        root = Item(ROOT_ID, "My Drive", FOLDER_MIME, [])
        self.items[ROOT_ID] = root

    def resolve(self, file_id: str) -> str:
        return ROOT_ID if file_id == "root" else file_id

    def get(self, file_id: str) -> Item:
        item = self.items.get(self.resolve(file_id))
        if item is None:
            raise not_found(file_id)
        return item

    def is_trashed(self, item: Item) -> bool:
        # Trashing a folder implicitly trashes everything below it. Items have
        # at most one parent (enforced in _checked_parents), so this is a chain.
        cur: Item | None = item
        while cur is not None and not cur.explicitly_trashed:
            cur = self.items.get(cur.parents[0]) if cur.parents else None
        return cur is not None

    def render(self, item: Item, base_url: str) -> dict[str, Any]:
        res: dict[str, Any] = {
            "kind": "drive#file",
            "id": item.id,
            "etag": f'"{item.id}/{item.version}"',
            "selfLink": f"{base_url}drive/v2/files/{item.id}",
            "title": item.title,
            "mimeType": item.mime_type,
            "labels": {
                "starred": False,
                "hidden": False,
                "trashed": self.is_trashed(item),
                "restricted": False,
                "viewed": True,
            },
            "explicitlyTrashed": item.explicitly_trashed,
            "createdDate": item.created,
            "modifiedDate": item.modified,
            "parents": [
                {"kind": "drive#parentReference", "id": p, "isRoot": p == ROOT_ID}
                for p in item.parents
            ],
            "version": str(item.version),
            "editable": True,
        }
        if item.description is not None:
            res["description"] = item.description
        if not item.is_folder:
            res.update(
                downloadUrl=f"{base_url}drive/v2/files/{item.id}?alt=media",
                originalFilename=item.title,
                fileSize=str(len(item.content)),
                quotaBytesUsed=str(len(item.content)),
                md5Checksum=item.md5,
                headRevisionId=f"0B{item.id[1:12]}r{item.head_revision}",
            )
        return res

    def _checked_parents(self, refs: list[Any]) -> list[str]:
        parents = []
        for ref in refs:
            pid = self.resolve(ref.get("id", "") if isinstance(ref, dict) else str(ref))
            parent = self.items.get(pid)
            if parent is None:
                raise not_found(pid)
            if not parent.is_folder:
                raise invalid(f"Parent is not a folder: {pid}", "parents")
            parents.append(pid)
        if len(parents) > 1:
            raise DriveApiError(
                403, "cannotAddParent", "Increasing the number of parents is not allowed."
            )
        return parents

    def check_insert(self, meta: dict[str, Any]) -> None:
        """Validation done when a resumable session starts, and again at commit."""
        wanted = meta.get("id")
        if wanted is not None:
            if wanted in self.items:
                raise DriveApiError(409, "duplicate", "A file already exists with the provided ID.")
            if wanted not in self.reserved_ids:
                raise invalid("The provided file ID is not usable.", "file.id")
        self._checked_parents(meta.get("parents") or [{"id": ROOT_ID}])

    def insert(self, meta: dict[str, Any], content: bytes | None, media_type: str | None) -> Item:
        self.check_insert(meta)
        file_id = meta.get("id") or new_file_id()
        self.reserved_ids.discard(file_id)
        mime = meta.get("mimeType") or media_type or "application/octet-stream"
        item = Item(
            id=file_id,
            title=meta.get("title") or "Untitled",
            mime_type=mime,
            parents=self._checked_parents(meta.get("parents") or [{"id": ROOT_ID}]),
            content=content or b"",
            description=meta.get("description"),
        )
        self.items[file_id] = item
        return item

    def update(
        self,
        file_id: str,
        meta: dict[str, Any],
        content: bytes | None = None,
        add_parents: str = "",
        remove_parents: str = "",
    ) -> Item:
        item = self.get(file_id)
        if item.id == ROOT_ID:
            raise DriveApiError(403, "insufficientFilePermissions", "The root cannot be modified.")
        wanted = [r.get("id", "") for r in meta["parents"]] if "parents" in meta else item.parents
        removed = {self.resolve(p) for p in csv_list(remove_parents)}
        wanted = [self.resolve(p) for p in wanted if self.resolve(p) not in removed]
        wanted += [self.resolve(p) for p in csv_list(add_parents) if self.resolve(p) not in wanted]
        item.parents = self._checked_parents(wanted)
        item.title = meta.get("title") or item.title
        item.mime_type = meta.get("mimeType") or item.mime_type
        item.description = meta.get("description", item.description)
        if "trashed" in (meta.get("labels") or {}):
            item.explicitly_trashed = bool(meta["labels"]["trashed"])
        if content is not None:
            if item.is_folder:
                raise invalid("Folders cannot have content.")
            item.replace_content(content)
        item.touch(content_changed=content is not None)
        return item

    def delete(self, file_id: str) -> None:
        item = self.get(file_id)
        if item.id == ROOT_ID:
            raise DriveApiError(403, "insufficientFilePermissions", "The root cannot be deleted.")
        kids: dict[str, list[str]] = {}
        for other in self.items.values():
            for parent in other.parents:
                kids.setdefault(parent, []).append(other.id)
        doomed = [item.id]
        for cur in doomed:  # grows while iterating: a breadth-first walk of descendants
            doomed.extend(kids.get(cur, []))
        for victim in doomed:
            self.items.pop(victim, None)

    def list(
        self, q: str, max_results: int, page_token: str | None
    ) -> tuple[list[Item], str | None]:
        predicates = compile_query(q, self.resolve)
        matches = [
            item
            for item in self.items.values()
            if item.id != ROOT_ID and all(p(item, self.is_trashed(item)) for p in predicates)
        ]
        start = 0
        if page_token:
            m = re.fullmatch(r"~p(\d+)", page_token)
            if m is None:
                raise invalid("Invalid Value", "pageToken")
            start = int(m.group(1))
        end = start + max_results
        return matches[start:end], (f"~p{end}" if end < len(matches) else None)


def json_object(data: bytes) -> dict[str, Any]:
    try:
        parsed = json.loads(data or b"{}")
    except ValueError:
        parsed = None
    if not isinstance(parsed, dict):
        raise DriveApiError(400, "parseError", "Parse Error")
    return parsed


def csv_list(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


# --------------------------------------------------------------------------- query language

_QUERY_TOKEN = re.compile(
    r"\s*(?:(?P<str>'(?:[^'\\]|\\.)*')|(?P<op>!=|=)|(?P<paren>[()])"
    r"|(?P<word>[A-Za-z_][A-Za-z0-9_]*))"
)
# A predicate gets an item and its effective trashed state (which needs the whole store).
_Predicate = Callable[[Item, bool], bool]
_Resolve = Callable[[str], str]


def _tokenize(q: str) -> list[tuple[str, str]]:
    tokens, pos = [], 0
    while pos < len(q.rstrip()):
        m = _QUERY_TOKEN.match(q, pos)
        if m is None or m.end() == pos:
            raise invalid("Invalid query", "q")
        kind = m.lastgroup or ""
        text = m.group(kind)
        if kind == "str":
            text = re.sub(r"\\(.)", r"\1", text[1:-1])
        tokens.append((kind, text))
        pos = m.end()
    return tokens


def _compile_clause(clause: list[tuple[str, str]], resolve: _Resolve) -> _Predicate:
    shape = [k for k, _ in clause]
    words = [t.lower() if k == "word" else t for k, t in clause]
    if shape == ["str", "word", "word"] and words[1:] == ["in", "parents"]:
        parent = resolve(clause[0][1])
        return lambda item, _trashed: parent in item.parents
    if len(clause) != 3 or shape[:2] != ["word", "op"]:
        raise invalid("Invalid query", "q")
    fld, op, (vkind, value) = clause[0][1], clause[1][1], clause[2]

    def compare(actual: Any, expected: Any) -> bool:
        return (actual == expected) == (op == "=")

    if fld == "trashed" and vkind == "word" and value.lower() in ("true", "false"):
        want = value.lower() == "true"
        return lambda _item, trashed: compare(trashed, want)
    if fld == "title" and vkind == "str":
        # Drive compares titles case-insensitively.
        return lambda item, _trashed: compare(item.title.casefold(), value.casefold())
    if fld == "mimeType" and vkind == "str":
        return lambda item, _trashed: compare(item.mime_type, value)
    raise invalid("Invalid query", "q")


class _QueryParser:
    """Recursive descent over Drive's boolean grammar: ``or`` < ``and`` < ``not`` < ( )."""

    def __init__(self, tokens: list[tuple[str, str]], resolve: _Resolve) -> None:
        self.tokens, self.pos, self.resolve = tokens, 0, resolve

    def _peek_word(self) -> str | None:
        if self.pos < len(self.tokens) and self.tokens[self.pos][0] == "word":
            return self.tokens[self.pos][1].lower()
        return None

    def _peek(self, kind: str, text: str) -> bool:
        return self.pos < len(self.tokens) and self.tokens[self.pos] == (kind, text)

    def parse(self) -> _Predicate:
        pred = self._or()
        if self.pos != len(self.tokens):
            raise invalid("Invalid query", "q")
        return pred

    def _or(self) -> _Predicate:
        preds = [self._and()]
        while self._peek_word() == "or":
            self.pos += 1
            preds.append(self._and())
        return preds[0] if len(preds) == 1 else lambda i, t: any(p(i, t) for p in preds)

    def _and(self) -> _Predicate:
        preds = [self._not()]
        while self._peek_word() == "and":
            self.pos += 1
            preds.append(self._not())
        return preds[0] if len(preds) == 1 else lambda i, t: all(p(i, t) for p in preds)

    def _not(self) -> _Predicate:
        if self._peek_word() == "not":
            self.pos += 1
            inner = self._not()
            return lambda i, t: not inner(i, t)
        if self._peek("paren", "("):
            self.pos += 1
            inner = self._or()
            if not self._peek("paren", ")"):
                raise invalid("Invalid query", "q")
            self.pos += 1
            return inner
        clause = []
        while self.pos < len(self.tokens) and self.tokens[self.pos][0] != "paren":
            if self._peek_word() in ("and", "or", "not"):
                break
            clause.append(self.tokens[self.pos])
            self.pos += 1
        return _compile_clause(clause, self.resolve)


def compile_query(q: str, resolve: _Resolve) -> list[_Predicate]:
    if not q.strip():
        return []
    return [_QueryParser(_tokenize(q), resolve).parse()]

"""Requests and responses as the fake Drive's handlers see them, and parameter parsing."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from .drive_access import Access
from .drive_errors import DriveApiError, invalid


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, status: int, payload: Any, headers: dict[str, str] | None = None) -> Response:
        h = {"Content-Type": "application/json; charset=UTF-8", **(headers or {})}
        return cls(status, json.dumps(payload).encode(), h)


@dataclass
class Call:
    method: str
    path: str
    query: dict[str, str]
    headers: Any  # email.message.Message from http.server
    body: bytes
    file_id: str | None = None
    access: Access | None = None  # set once the bearer token is checked
    result_title: str | None = None  # the title of the item the answer describes (request log)

    def json_body(self) -> dict[str, Any]:
        return json_object(self.body)

    def flag(self, name: str) -> bool:
        return self.query.get(name, "false").lower() == "true"

    @property
    def all_drives(self) -> bool:
        # v2 takes either name (supportsTeamDrives is the deprecated one).
        return self.flag("supportsAllDrives") or self.flag("supportsTeamDrives")


def json_object(data: bytes) -> dict[str, Any]:
    try:
        parsed = json.loads(data or b"{}")
    except ValueError:
        parsed = None
    if not isinstance(parsed, dict):
        raise DriveApiError(400, "parseError", "Parse Error")
    return parsed


def int_param(query: dict[str, str], name: str, default: int) -> int:
    try:
        return int(query.get(name, default))
    except ValueError as exc:
        raise invalid("Invalid Value", name) from exc

"""The ``q`` language of ``files.list``: the subset syncd uses, parsed strictly, planned.

Clauses: ``'<id>' in parents`` (``'root'`` is an alias of My Drive),
``title = '<text>'`` (case-insensitive, as Drive compares titles), ``title !=``,
``mimeType = / !=``, ``trashed = true|false``; combined with ``and``, ``or``,
``not`` and parentheses.  Strings escape ``\\`` and ``'`` with a backslash
(Drive v2 "Search for files" guide).  Anything else is a 400 ``invalid``:
a fake that accepts more than Drive would hide a query Drive rejects.

``Query.candidates`` answers the ids worth testing from the parent index
(an ``in parents`` clause that every match must satisfy, or a union of them
under ``or``), so a listing costs O(children), not O(every item).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .drive_errors import invalid

_TOKEN = re.compile(
    r"\s*(?:(?P<str>'(?:[^'\\]|\\.)*')|(?P<op>!=|=)|(?P<paren>[()])"
    r"|(?P<word>[A-Za-z_][A-Za-z0-9_]*))"
)

# A predicate gets an item and its effective trashed state (which needs the whole store).
Predicate = Callable[[Any, bool], bool]


@dataclass
class Node:
    """One node of the parsed query: ``kind`` is and/or/not/parent/cmp."""

    kind: str
    children: list[Node]
    pred: Predicate
    parent: str = ""  # for kind == "parent": the (resolved) folder id


def _tokenize(q: str) -> list[tuple[str, str]]:
    tokens, pos, end = [], 0, len(q.rstrip())
    while pos < end:
        m = _TOKEN.match(q, pos)
        if m is None or m.end() == pos:
            raise invalid("Invalid query", "q")
        kind = m.lastgroup or ""
        text = m.group(kind)
        if kind == "str":
            text = re.sub(r"\\(.)", r"\1", text[1:-1])
        tokens.append((kind, text))
        pos = m.end()
    return tokens


def _clause(clause: list[tuple[str, str]], resolve: Callable[[str], str]) -> Node:
    shape = [k for k, _ in clause]
    words = [t.lower() if k == "word" else t for k, t in clause]
    if shape == ["str", "word", "word"] and words[1:] == ["in", "parents"]:
        parent = resolve(clause[0][1])
        return Node("parent", [], lambda item, _t: parent in item.parents, parent)
    if len(clause) != 3 or shape[:2] != ["word", "op"]:
        raise invalid("Invalid query", "q")
    fld, op, (vkind, value) = clause[0][1], clause[1][1], clause[2]

    def cmp(pred: Callable[[Any, bool], bool]) -> Node:
        if op == "=":
            return Node("cmp", [], pred)
        return Node("cmp", [], lambda i, t: not pred(i, t))

    if fld == "trashed" and vkind == "word" and value.lower() in ("true", "false"):
        want = value.lower() == "true"
        return cmp(lambda _i, trashed: trashed == want)
    if fld == "title" and vkind == "str":
        folded = value.casefold()
        return cmp(lambda i, _t: i.title.casefold() == folded)
    if fld == "mimeType" and vkind == "str":
        return cmp(lambda i, _t: i.mime_type == value)
    raise invalid("Invalid query", "q")


class _Parser:
    """Recursive descent over Drive's boolean grammar: ``or`` < ``and`` < ``not`` < ( )."""

    def __init__(self, tokens: list[tuple[str, str]], resolve: Callable[[str], str]) -> None:
        self.tokens, self.pos, self.resolve = tokens, 0, resolve

    def _word(self) -> str | None:
        if self.pos < len(self.tokens) and self.tokens[self.pos][0] == "word":
            return self.tokens[self.pos][1].lower()
        return None

    def _at(self, kind: str, text: str) -> bool:
        return self.pos < len(self.tokens) and self.tokens[self.pos] == (kind, text)

    def parse(self) -> Node:
        node = self._or()
        if self.pos != len(self.tokens):
            raise invalid("Invalid query", "q")
        return node

    def _or(self) -> Node:
        nodes = [self._and()]
        while self._word() == "or":
            self.pos += 1
            nodes.append(self._and())
        if len(nodes) == 1:
            return nodes[0]
        preds = [n.pred for n in nodes]
        return Node("or", nodes, lambda i, t: any(p(i, t) for p in preds))

    def _and(self) -> Node:
        nodes = [self._not()]
        while self._word() == "and":
            self.pos += 1
            nodes.append(self._not())
        if len(nodes) == 1:
            return nodes[0]
        preds = [n.pred for n in nodes]
        return Node("and", nodes, lambda i, t: all(p(i, t) for p in preds))

    def _not(self) -> Node:
        if self._word() == "not":
            self.pos += 1
            inner = self._not()
            return Node("not", [inner], lambda i, t: not inner.pred(i, t))
        if self._at("paren", "("):
            self.pos += 1
            inner = self._or()
            if not self._at("paren", ")"):
                raise invalid("Invalid query", "q")
            self.pos += 1
            return inner
        clause = []
        while self.pos < len(self.tokens) and self.tokens[self.pos][0] != "paren":
            if self._word() in ("and", "or", "not"):
                break
            clause.append(self.tokens[self.pos])
            self.pos += 1
        return _clause(clause, self.resolve)


def _plan(node: Node) -> set[str] | None:
    """Folder ids whose children hold every match, or None (no index applies)."""
    if node.kind == "parent":
        return {node.parent}
    if node.kind == "and":
        plans = [p for p in (_plan(c) for c in node.children) if p is not None]
        return min(plans, key=len) if plans else None
    if node.kind == "or":
        plans = [_plan(c) for c in node.children]
        if any(p is None for p in plans):
            return None
        return set().union(*plans)  # type: ignore[arg-type]
    return None


def _or_of_parents(node: Node) -> bool:
    if node.kind == "or" and sum(c.kind == "parent" for c in node.children) >= 2:
        return True
    return any(_or_of_parents(c) for c in node.children)


class Query:
    """A parsed ``q``: ``matches(item, trashed)``, ``parents`` (index plan) and bug shape."""

    def __init__(self, q: str, resolve: Callable[[str], str]) -> None:
        self.text = q
        self.node = _Parser(_tokenize(q), resolve).parse() if q.strip() else None
        self.parents = _plan(self.node) if self.node is not None else None
        # `(A in parents) or (B in parents)`: the shape of Google issue 149522397.
        self.or_of_parents = self.node is not None and _or_of_parents(self.node)

    def matches(self, item: Any, trashed: bool) -> bool:
        return self.node is None or self.node.pred(item, trashed)

"""Fuzzing config loading (issue #8): whatever the file holds, ``load_config`` either returns
a config or raises ``ConfigError`` whose message is one line — never another exception.

Three generators: documents shaped like a config (real keys, mistyped keys, values
of every YAML type, durations, addresses, paths with odd characters), raw text,
and valid configs with a few bytes changed.  CI runs a modest number of examples;
``SYNCD_FUZZ_EXAMPLES=10000`` runs the big one.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from syncd.config import load_config
from syncd.errors import ConfigError

EXAMPLES = int(os.environ.get("SYNCD_FUZZ_EXAMPLES", "150"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    print_blob=True,
)


TOP = ["projects", "drive", "kaggle"]
PROJECT = ["name", "path", "mirror", "ignore", "snapshot"]
MIRROR = ["to", "delay", "max_delay", "deletions", "pull", "workers"]
SNAPSHOT = ["dataset", "title", "private", "license", "schedule", "every", "on_git_tag"]
SNAPSHOT += ["include", "exclude"]
DRIVE = ["credentials", "client_secrets", "service_account_key", "endpoint", "scope"]
DRIVE += ["requests_per_second", "timeout"]
KEYS = TOP + PROJECT + MIRROR + SNAPSHOT + DRIVE + ["kaggle_endpoint", "to ", "Delay", ""]

odd_text = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40)
durations = st.one_of(
    st.sampled_from(["1s", "500ms", "10m", "1h30m", "0", "-1s", "1x", "1e309", "nan", "inf"]),
    st.from_regex(r"-?\d{0,5}(\.\d{0,3})?(ms|s|m|h|d)?", fullmatch=True),
)
addresses = st.one_of(
    st.sampled_from(["local:", "gdrive:", "gdrive:/", "gdrive:id=", "gdrive:id=a b", "s3:/x"]),
    st.builds(lambda k, p: f"{k}:{p}", st.sampled_from(["local", "gdrive", "LOCAL"]), odd_text),
    st.builds(lambda p: f"gdrive:/{p}", odd_text),
)
paths = st.one_of(
    odd_text,
    st.sampled_from(["~", "~nobody/x", "~~", "/", ".", "..", "a\x00b", "/proc/self/fd/0"]),
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    odd_text,
    durations,
    addresses,
    paths,
    st.dates(),
    st.binary(max_size=20),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(st.sampled_from(KEYS), odd_text), inner, max_size=5),
    ),
    max_leaves=20,
)


def section(keys: list[str]) -> st.SearchStrategy[dict]:
    return st.dictionaries(st.one_of(st.sampled_from(keys), odd_text), values, max_size=len(keys))


projects = st.fixed_dictionaries(
    {
        "name": st.one_of(st.sampled_from(["p", "a b", "-x", "ok.name"]), values),
        "path": st.one_of(paths, values),
    },
    optional={
        "mirror": st.one_of(
            st.fixed_dictionaries(
                {"to": st.one_of(addresses, values)},
                optional={"delay": durations, "max_delay": durations, "workers": values},
            ),
            values,
        ),
        "snapshot": st.one_of(section(SNAPSHOT), values),
        "ignore": values,
    },
)
documents = st.fixed_dictionaries(
    {"projects": st.one_of(st.lists(projects, max_size=3), values)},
    optional={"drive": st.one_of(section(DRIVE), values), "kaggle": values},
)
VALID = """\
drive:
  endpoint: http://127.0.0.1:9/
projects:
  - name: cifar
    path: ./cifar
    mirror:
      to: local:./cifar-mirror
      delay: 1s
      max_delay: 10s
    ignore: ["*.ckpt"]
    snapshot:
      dataset: alice/cifar-code
      schedule: "0 3 * * *"
"""


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """The valid config with a few bytes inserted, deleted or replaced."""
    data = bytearray(VALID.encode())
    for _ in range(draw(st.integers(1, 6))):
        at = draw(st.integers(0, len(data)))
        kind = draw(st.sampled_from(["insert", "delete", "replace"]))
        byte = draw(st.sampled_from(list(b":-[]{}'\"#&*!|>%@`\t\n \x00\xff\xe9") + [0x41]))
        if kind == "insert" or at == len(data):
            data[at:at] = bytes([byte])
        elif kind == "delete":
            del data[at]
        else:
            data[at] = byte
    return bytes(data)


def _valid_doc(n: int) -> dict:
    return {
        "drive": {"endpoint": "http://127.0.0.1:9/", "timeout": "10s"},
        "projects": [
            {
                "name": f"p{i}",
                "path": f"./p{i}",
                "mirror": {"to": f"local:./p{i}-mirror" if i % 2 else f"gdrive:/syncd/p{i}"},
                "ignore": ["*.ckpt"],
                "snapshot": {"dataset": f"alice/proj-{i}", "every": "1h"},
            }
            for i in range(n)
        ],
    }


@st.composite
def nearly_valid(draw: st.DrawFn) -> dict:
    """A valid config with one to three keys set to something else, added or removed."""
    doc = _valid_doc(draw(st.integers(1, 3)))
    for _ in range(draw(st.integers(1, 3))):
        node: dict = doc
        for step in draw(st.lists(st.sampled_from(["projects", "mirror", "snapshot", "drive"]))):
            nxt = node.get(step)
            if isinstance(nxt, list) and nxt and isinstance(nxt[0], dict):
                nxt = nxt[draw(st.integers(0, len(nxt) - 1))]
            if not isinstance(nxt, dict):
                break
            node = nxt
        key = draw(st.one_of(st.sampled_from(sorted(node) or ["x"]), st.sampled_from(KEYS)))
        action = draw(st.sampled_from(["set", "set", "delete", "same-as-other"]))
        if action == "delete":
            node.pop(key, None)
        elif action == "same-as-other" and key in ("path", "to", "name"):
            projects = doc.get("projects")
            if isinstance(projects, list) and len(projects) > 1 and isinstance(projects[0], dict):
                node[key] = projects[0].get(key, node.get(key))
        else:
            node[key] = draw(values)
    return doc


def _dump(doc: object) -> bytes:
    try:
        return yaml.safe_dump(doc, allow_unicode=True).encode()
    except yaml.YAMLError:
        return yaml.dump(doc, allow_unicode=True).encode()  # binary and dates need tags


@pytest.fixture(scope="module")
def path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz-config") / "config.yaml"


def load(path: Path, data: bytes) -> None:
    """load_config on ``data``: ConfigError with a one-line message, or a config."""
    path.write_bytes(data)
    try:
        load_config(path)
    except ConfigError as exc:
        message = str(exc)
        assert message and "\n" not in message.strip(), f"not one line: {message!r}"
        assert "Traceback" not in message


def check_load(path: Path, data: bytes) -> None:
    load(path, data)


@pytest.mark.parametrize("text", ["", "\n", "---\n---\n", "projects: []", "[", "\x00", "\xff"])
def test_small_edge_cases(path: Path, text: str) -> None:
    check_load(path, text.encode("latin-1"))


@FUZZ
@given(documents)
def test_config_shaped_documents(path: Path, doc: dict) -> None:
    check_load(path, _dump(doc))


@FUZZ
@given(nearly_valid())
def test_valid_config_with_a_few_keys_changed(path: Path, doc: dict) -> None:
    check_load(path, _dump(doc))


@FUZZ
@given(st.one_of(st.binary(max_size=600), st.text(max_size=600).map(str.encode)))
@example(b"projects:\n  - name: p\n    path: \"a\\0b\"\n    mirror: {to: 'local:/x'}\n")
def test_raw_bytes(path: Path, data: bytes) -> None:
    check_load(path, data)


@FUZZ
@given(mutated())
def test_valid_config_with_a_few_bytes_changed(path: Path, data: bytes) -> None:
    check_load(path, data)


# --- findings (minimal examples hypothesis shrank to) -------------------------------------------


def test_finding_nul_byte_is_a_one_line_error(path: Path) -> None:
    load(path, b"\x00")


def test_finding_key_with_a_line_break_is_a_one_line_error(path: Path) -> None:
    load(path, b'kaggle:\n  "\\n": null\nprojects: []\n')

"""The package's shape (README "Layout"): small modules, unmistakable names, one version.

The import direction itself is import-linter's job (pyproject.toml, `make test`).
"""

from __future__ import annotations

import importlib.metadata
import itertools
from pathlib import Path

import pytest

import syncd

PACKAGE = Path(syncd.__file__).parent
MAX_LINES = 400
# Modules allowed over MAX_LINES: one file by design (`syncd colab` copies it to Colab as
# .syncd/colab.py, where nothing else of syncd is installed).
DEBTS = {"remotes/gdrive/colab_helper.py"}


def modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def one_edit_apart(a: str, b: str) -> bool:
    """True when b is a with one letter added, removed or changed (snapshot/snapshots)."""
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        return sum(x != y for x, y in zip(a, b, strict=True)) == 1
    short, long = sorted((a, b), key=len)
    return any(long[:i] + long[i + 1 :] == short for i in range(len(long)))


def test_modules_stay_under_400_lines_except_the_listed_debts() -> None:
    sizes = {str(p.relative_to(PACKAGE)): len(p.read_text().splitlines()) for p in modules()}
    too_long = {name: n for name, n in sizes.items() if n > MAX_LINES and name not in DEBTS}
    assert not too_long
    assert set(sizes) >= DEBTS, "a listed debt no longer exists: drop it from DEBTS"


def test_no_two_module_or_package_names_differ_by_one_letter() -> None:
    names = {p.stem for p in modules() if p.stem != "__init__"}
    names |= {p.name for p in PACKAGE.rglob("*") if p.is_dir() and p.name != "__pycache__"}
    close = [(a, b) for a, b in itertools.combinations(sorted(names), 2) if one_edit_apart(a, b)]
    assert not close


@pytest.mark.parametrize(
    ("a", "b", "close"),
    [("snapshot", "snapshots", True), ("store", "stage", False), ("auth", "auth", False)],
)
def test_the_name_check_itself(a: str, b: str, close: bool) -> None:
    assert one_edit_apart(a, b) is close


def test_one_version_source() -> None:
    try:
        installed = importlib.metadata.version("syncd")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("syncd is not installed (pip install -e .) so it has no metadata")
    assert installed == syncd.__version__  # pyproject reads it from syncd/__init__.py

"""mirror.pull in the config: folder names are literal in the ignore rules (review-2 #4), and a
pull folder never overlaps snapshot.data (review-2 #8)."""

from __future__ import annotations

from pathlib import Path

import pytest

from syncd.config import load_config
from syncd.config.values import literal_ignore
from syncd.localfs.ignore import IgnoreRules
from tests.test_config import error_of, write

FULL = "drive:\n  scope: full\n"
PROJECT = "projects:\n  - name: a\n    path: proj\n    mirror:\n      to: gdrive:/syncd/a\n"


@pytest.mark.parametrize(
    ("folder", "rule"),
    [
        ("outputs/", "/outputs/"),
        ("run[1]/", "/run\\[1\\]/"),
        ("out*/", "/out\\*/"),
        ("a?b/c!/", "/a\\?b/c\\!/"),
        ("!x/", "/\\!x/"),
        ("#x/", "/\\#x/"),
        ("back\\slash/", "/back\\\\slash/"),
    ],
)
def test_literal_ignore_escapes_what_gitignore_reads_as_a_pattern(folder: str, rule: str) -> None:
    assert literal_ignore(folder) == rule


def test_pull_folders_with_glob_characters_are_ignored_literally(tmp_path: Path) -> None:
    pull = '      pull: ["run[1]/", "out*/", "!keep/", "a?/"]\n'
    project = load_config(write(tmp_path, FULL + PROJECT + pull)).projects[0]
    assert project.mirror is not None
    assert project.mirror.pull.paths == ("run[1]/", "out*/", "!keep/", "a?/")
    rules = IgnoreRules(project.path, project.ignore)
    for name in ("run[1]", "out*", "!keep", "a?"):  # the pull folders themselves: not mirrored
        assert rules.is_ignored(name, True), name
        assert rules.is_ignored(f"{name}/x.txt", False), name
    for name in ("run1", "outline", "out", "keep", "ab"):  # what the globs would have hit
        assert not rules.is_ignored(name, True), name
        assert not rules.is_ignored(f"{name}/x.txt", False), name


@pytest.mark.parametrize(
    ("pull", "data"),
    [("data/", "data"), ("data/", "data/raw"), ("data/raw/", "data"), ("./data", "/ABS/data")],
)
def test_a_pull_folder_overlapping_snapshot_data_is_refused(
    tmp_path: Path, pull: str, data: str
) -> None:
    data = data.replace("/ABS", str(tmp_path / "proj"))
    text = (
        FULL
        + PROJECT
        + f"      pull: [{pull}]\n    snapshot:\n      dataset: al/a-code\n      data: [{data}]\n"
    )
    (tmp_path / "proj").mkdir(exist_ok=True)
    message = error_of(tmp_path, text)
    assert "projects[0].mirror.pull" in message
    assert "overlaps snapshot.data" in message and "not both" in message
    assert "\n" not in message.split(" (")[0]


def test_a_pull_folder_beside_snapshot_data_is_fine(tmp_path: Path) -> None:
    snapshot = "    snapshot:\n      dataset: al/a-code\n      data: [data, out]\n"
    text = FULL + PROJECT + "      pull: [outputs/]\n" + snapshot
    project = load_config(write(tmp_path, text)).projects[0]
    assert project.snapshot is not None and project.snapshot.data == ("data", "out")


@pytest.mark.parametrize("folder", [".syncd/", ".syncd-trash/", ".git/", "./.git/hooks"])
def test_syncd_own_folders_and_git_are_never_pulled(tmp_path: Path, folder: str) -> None:
    message = error_of(tmp_path, FULL + PROJECT + f'      pull: ["outputs/", "{folder}"]\n')
    assert "own folder and cannot be pulled from Drive" in message, message
    assert "Traceback" not in message and "\n" not in message.strip()


def test_the_same_folder_listed_twice_is_pulled_once(tmp_path: Path) -> None:
    for pull in ('["outputs/", "./outputs", "ckpt", "/outputs/"]',
                 '{paths: ["outputs/", "./outputs", "ckpt"], interval: 5s}'):  # fmt: skip
        project = load_config(write(tmp_path, FULL + PROJECT + f"      pull: {pull}\n")).projects[0]
        assert project.mirror is not None
        assert project.mirror.pull.paths == ("outputs/", "ckpt/"), pull


@pytest.mark.parametrize("pull", ['["outputs/", "outputs/run1/"]', '["./outputs/run1", "outputs"]'])
def test_a_pull_folder_inside_another_is_refused(tmp_path: Path, pull: str) -> None:
    message = error_of(tmp_path, FULL + PROJECT + f"      pull: {pull}\n")
    assert "'outputs/run1/' is inside 'outputs/', which is pulled already" in message, message
    assert "list only 'outputs/'" in message

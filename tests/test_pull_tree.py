"""pullback.pull_tree: which Drive folders are pull folders, and which titles can be local names."""

from __future__ import annotations

import pytest

from syncd.pullback.pull_tree import PullTree, usable_name


@pytest.mark.parametrize(
    ("title", "usable"),
    [
        ("model.pt", True),
        ("...", True),
        ("é" * 127, True),  # 254 bytes
        ("", False),
        (".", False),
        ("..", False),
        ("a/b", False),
        ("nul\0byte", False),
        ("x" * 256, False),
        ("é" * 128, False),  # 128 characters, 256 bytes: over NAME_MAX
    ],
)
def test_usable_names(title: str, usable: bool) -> None:
    assert usable_name(title) is usable


def test_a_tree_follows_folders_by_id_inside_and_above_the_pull_paths() -> None:
    tree = PullTree("root", ("outputs/", "a/b/"))
    assert tree.path_of("root", "outputs") == "outputs"
    assert tree.wanted_dir("outputs") and tree.inside("outputs")
    assert tree.wanted_dir("a") and not tree.inside("a")  # on the way to a/b/
    assert not tree.wanted_dir("src") and not tree.inside("a/bc")
    tree.add("o", "outputs", "root")
    tree.add("r", "outputs/run1", "o")
    tree.add("s", "outputs/run1/sub", "r")
    assert tree.path_of("s", "ckpt.pt") == "outputs/run1/sub/ckpt.pt"
    assert tree.path_of("elsewhere", "x") is None  # a parent it does not know: not ours
    assert tree.path_of("o", "..") is None
    assert tree.drop("r") == {"r", "s"}
    assert tree.dirs == {"root": "", "o": "outputs"}  # and everything below it went too


def test_files_only_below_a_pull_folder_and_folders_sharing_a_title_are_kept_apart() -> None:
    tree = PullTree("root", ("outputs/",))
    assert not tree.below("outputs")  # a FILE titled like the pull folder is not pulled
    assert tree.below("outputs/x") and not tree.below("outputsx/y")
    tree.add("o", "outputs", "root")
    tree.add("r1", "outputs/run1", "o")
    tree.add("r2", "outputs/run1", "o")  # a second folder with the same title
    tree.add("s2", "outputs/run1/sub", "r2")
    assert sorted(tree.folders_at("outputs/run1")) == ["r1", "r2"]
    assert tree.drop("r1") == {"r1"}  # the other run1 and its subfolder stay
    assert tree.folders_at("outputs/run1") == ["r2"] and "s2" in tree.dirs

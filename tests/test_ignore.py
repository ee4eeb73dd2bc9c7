"""IgnoreRules over real project folders in tmp_path: defaults, secrets, gitignore semantics."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from syncd.localfs.ignore import IgnoreRules


def make(root: Path, *paths: str, text: str = "x") -> None:
    """Create files (or folders, for paths ending in "/") under root."""
    for rel in paths:
        target = root / rel
        if rel.endswith("/"):
            target.mkdir(parents=True, exist_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)


def rules_with(root: Path, gitignore: str = "", syncignore: str = "", **kw) -> IgnoreRules:
    if gitignore:
        (root / ".gitignore").write_text(gitignore)
    if syncignore:
        (root / ".syncignore").write_text(syncignore)
    return IgnoreRules(root, **kw)


@pytest.mark.parametrize(
    ("category", "paths"),
    [
        ("version control", [".git/", ".hg/", ".svn/", "sub/.git/"]),
        ("python bytecode", ["__pycache__/", "pkg/__pycache__/", "a.pyc", "pkg/b.pyo"]),
        ("notebook checkpoints", [".ipynb_checkpoints/", "nb/.ipynb_checkpoints/"]),
        ("os droppings", [".DS_Store", "img/Thumbs.db"]),
        ("editor swap and backup", [".a.py.swp", ".a.py.swo", "a.py~", ".#a.py", "#a.py#", "4913"]),
        ("kate swap", ["a.py.kate-swp"]),
        ("tool caches", [".mypy_cache/", ".pytest_cache/", ".ruff_cache/"]),
        ("virtualenv names", [".venv/", "venv/", "tools/venv/"]),
        ("syncd trash", [".syncd-trash/"]),
    ],
)
def test_default_category_is_ignored(tmp_path: Path, category: str, paths: list[str]) -> None:
    make(tmp_path, *paths)
    rules = IgnoreRules(tmp_path)
    for rel in paths:
        assert rules.is_ignored(rel.rstrip("/"), rel.endswith("/")), (category, rel)


def test_ordinary_project_files_are_kept(tmp_path: Path) -> None:
    paths = ["train.py", "src/model.py", "configs/base.yaml", "README.md", ".gitignore", "env.py"]
    make(tmp_path, *paths)
    rules = IgnoreRules(tmp_path)
    assert not any(rules.is_ignored(rel, False) for rel in paths)
    assert not rules.is_ignored("src", True)


def test_anything_under_an_ignored_folder_is_ignored_without_asking_parents(
    tmp_path: Path,
) -> None:
    rules = IgnoreRules(tmp_path)
    assert rules.is_ignored(".git/objects/ab/cdef0123", False)
    assert rules.is_ignored("pkg/__pycache__/deep/mod.py", False)


@pytest.mark.parametrize(
    ("category", "paths"),
    [
        ("kaggle token", ["kaggle.json", "sub/kaggle.json"]),
        ("google oauth files", ["client_secrets.json", "client_secrets_desktop.json"]),
        ("saved credentials", ["drive-credentials.json", "credentials.json", "mycreds.txt"]),
        ("oauth tokens", ["token.json", "token.pickle"]),
        ("service account keys", ["service-account.json", "service-account-prod.json"]),
        ("env files", [".env", ".env.local", "app/.env.production"]),
        ("keys and certificates", ["cert.pem", "server.key", "store.p12", "store.pfx"]),
        ("ssh keys", ["id_rsa", "id_rsa.pub", "id_dsa", "id_ecdsa", "id_ed25519"]),
        ("credential dotfiles", [".netrc", ".pypirc", ".git-credentials"]),
        ("credential folders", [".ssh/", ".aws/", ".kaggle/", ".gnupg/"]),
    ],
)
def test_secret_category_is_kept_out(tmp_path: Path, category: str, paths: list[str]) -> None:
    make(tmp_path, *paths)
    rules = IgnoreRules(tmp_path)
    for rel in paths:
        is_dir = rel.endswith("/")
        assert rules.is_ignored(rel.rstrip("/"), is_dir), (category, rel)
        assert rules.is_secret(rel.rstrip("/"), is_dir), (category, rel)


def test_file_inside_a_secret_folder_is_a_secret(tmp_path: Path) -> None:
    make(tmp_path, ".aws/config")
    rules = IgnoreRules(tmp_path)
    assert rules.is_secret(".aws/config", False)


def test_default_ignored_file_is_not_a_secret(tmp_path: Path) -> None:
    make(tmp_path, "a.pyc")
    rules = IgnoreRules(tmp_path)
    assert rules.is_ignored("a.pyc", False)
    assert not rules.is_secret("a.pyc", False)


def test_syncignore_negation_unignores_a_secret(tmp_path: Path) -> None:
    make(tmp_path, "kaggle.json", ".env.example", ".env")
    rules = rules_with(tmp_path, syncignore="!kaggle.json\n!.env.example\n")
    assert not rules.is_ignored("kaggle.json", False)
    assert not rules.is_secret("kaggle.json", False)
    assert not rules.is_ignored(".env.example", False)
    assert rules.is_ignored(".env", False)


def test_config_pattern_negation_unignores_a_secret(tmp_path: Path) -> None:
    make(tmp_path, "certs/ca.pem")
    rules = IgnoreRules(tmp_path, ["!certs/ca.pem"])
    assert not rules.is_ignored("certs/ca.pem", False)


def test_config_patterns_are_relative_to_the_root(tmp_path: Path) -> None:
    make(tmp_path, "data/raw/a.csv", "src/data/raw/b.csv", "m.ckpt")
    rules = IgnoreRules(tmp_path, ["*.ckpt", "data/raw/"])
    assert rules.is_ignored("m.ckpt", False)
    assert rules.is_ignored("data/raw", True)
    assert not rules.is_ignored("src/data/raw", True)


def test_syncignore_overrides_gitignore(tmp_path: Path) -> None:
    make(tmp_path, "outputs/metrics.csv")
    rules = rules_with(tmp_path, gitignore="outputs/\n", syncignore="!outputs/\n")
    assert not rules.is_ignored("outputs/metrics.csv", False)


def test_gitignore_negation_keeps_one_file(tmp_path: Path) -> None:
    make(tmp_path, "run.log", "keep.log", "logs/keep.log")
    rules = rules_with(tmp_path, gitignore="*.log\n!keep.log\n")
    assert rules.is_ignored("run.log", False)
    assert not rules.is_ignored("keep.log", False)
    assert not rules.is_ignored("logs/keep.log", False)


def test_double_star_patterns(tmp_path: Path) -> None:
    make(tmp_path, "a/x/y/b/f", "tmp/f", "deep/er/tmp/f", "logs/2024/01/run.txt")
    rules = rules_with(tmp_path, gitignore="a/**/b\n**/tmp\nlogs/**\n")
    assert rules.is_ignored("a/x/y/b", True)
    assert rules.is_ignored("a/b", True)
    assert rules.is_ignored("tmp", True)
    assert rules.is_ignored("deep/er/tmp", True)
    assert rules.is_ignored("logs/2024/01/run.txt", False)
    assert not rules.is_ignored("logs", True)  # "logs/**" matches what is inside, not logs/


def test_anchored_pattern_matches_only_at_the_root(tmp_path: Path) -> None:
    make(tmp_path, "build/", "src/build/")
    rules = rules_with(tmp_path, gitignore="/build\n")
    assert rules.is_ignored("build", True)
    assert not rules.is_ignored("src/build", True)


def test_unanchored_pattern_matches_at_any_depth(tmp_path: Path) -> None:
    make(tmp_path, "build/", "src/build/")
    rules = rules_with(tmp_path, gitignore="build\n")
    assert rules.is_ignored("build", True)
    assert rules.is_ignored("src/build", True)


def test_trailing_slash_matches_only_folders(tmp_path: Path) -> None:
    make(tmp_path, "out/", "src/out")
    rules = rules_with(tmp_path, gitignore="out/\n")
    assert rules.is_ignored("out", True)
    assert not rules.is_ignored("src/out", False)


def test_nested_gitignore_is_relative_to_its_folder(tmp_path: Path) -> None:
    make(tmp_path, "sub/out/f", "out/f", "sub/x/out/f", "sub/a.tmp", "b.tmp")
    (tmp_path / "sub/.gitignore").write_text("/out\n*.tmp\n")
    rules = IgnoreRules(tmp_path)
    assert rules.is_ignored("sub/out", True)
    assert rules.is_ignored("sub/out/f", False)
    assert not rules.is_ignored("out", True)
    assert not rules.is_ignored("sub/x/out", True)
    assert rules.is_ignored("sub/a.tmp", False)
    assert not rules.is_ignored("b.tmp", False)


def test_nested_gitignore_negation_overrides_the_root_one(tmp_path: Path) -> None:
    make(tmp_path, "sub/keep.log", "other.log")
    (tmp_path / "sub/.gitignore").write_text("!keep.log\n")
    rules = rules_with(tmp_path, gitignore="*.log\n")
    assert not rules.is_ignored("sub/keep.log", False)
    assert rules.is_ignored("other.log", False)


def test_gitignore_inside_an_ignored_folder_is_not_read(tmp_path: Path) -> None:
    make(tmp_path, "vendor/pkg/x.txt")
    (tmp_path / "vendor/.gitignore").write_text("!*\n")
    rules = rules_with(tmp_path, gitignore="vendor/\n")
    assert rules.is_ignored("vendor/pkg/x.txt", False)


def test_file_under_excluded_folder_cannot_be_reincluded(tmp_path: Path) -> None:
    make(tmp_path, "build/keep.txt")
    rules = rules_with(tmp_path, gitignore="build/\n!build/keep.txt\n")
    assert rules.is_ignored("build/keep.txt", False)


def test_file_in_folder_excluded_by_star_can_be_reincluded(tmp_path: Path) -> None:
    make(tmp_path, "build/keep.txt", "build/other.txt")
    rules = rules_with(tmp_path, gitignore="build/*\n!build/keep.txt\n")
    assert not rules.is_ignored("build/keep.txt", False)
    assert rules.is_ignored("build/other.txt", False)


def test_folder_negation_does_not_reinclude_files_a_file_rule_excludes(tmp_path: Path) -> None:
    make(tmp_path, "important/x.log")
    rules = rules_with(tmp_path, gitignore="*.log\n!important/\n")
    assert not rules.is_ignored("important", True)
    assert rules.is_ignored("important/x.log", False)


def test_folder_with_pyvenv_cfg_is_a_virtualenv(tmp_path: Path) -> None:
    make(tmp_path, "myenv/pyvenv.cfg", "myenv/lib/site.py", "notenv/lib/site.py")
    rules = IgnoreRules(tmp_path)
    assert rules.is_ignored("myenv", True)
    assert rules.is_ignored("myenv/lib/site.py", False)
    assert not rules.is_ignored("notenv", True)


def test_venv_created_after_its_folder_was_judged_is_ignored(tmp_path: Path) -> None:
    make(tmp_path, "env2/")
    rules = IgnoreRules(tmp_path)
    assert not rules.is_ignored("env2", True)
    make(tmp_path, "env2/pyvenv.cfg", "env2/bin/python")
    assert rules.is_ignored("env2/pyvenv.cfg", False)  # the watcher's event for the new file
    assert rules.is_ignored("env2/bin/python", False)


def test_negation_unignores_a_default(tmp_path: Path) -> None:
    make(tmp_path, "venv/setup.sh")
    rules = rules_with(tmp_path, syncignore="!venv/\n")
    assert not rules.is_ignored("venv", True)
    assert not rules.is_ignored("venv/setup.sh", False)


def test_reload_picks_up_an_edited_gitignore(tmp_path: Path) -> None:
    make(tmp_path, "a.csv", "sub/b.csv")
    rules = rules_with(tmp_path, gitignore="*.txt\n")
    assert not rules.is_ignored("a.csv", False)
    (tmp_path / ".gitignore").write_text("*.csv\n")
    (tmp_path / "sub/.gitignore").write_text("!b.csv\n")
    assert not rules.is_ignored("a.csv", False)  # nothing re-read until told
    rules.reload()
    assert rules.is_ignored("a.csv", False)
    assert not rules.is_ignored("sub/b.csv", False)


def test_invalid_pattern_does_not_disable_the_others(tmp_path: Path) -> None:
    make(tmp_path, "a.log")
    rules = rules_with(tmp_path, gitignore="!\n*.log\n")
    assert rules.is_ignored("a.log", False)


@pytest.mark.parametrize(
    ("rel", "expected"),
    [
        (".gitignore", True),
        ("sub/deep/.gitignore", True),
        (".syncignore", True),
        ("sub/.syncignore", False),
        ("gitignore", False),
        ("a.gitignore", False),
    ],
)
def test_is_rules_file(rel: str, expected: bool) -> None:
    assert IgnoreRules.is_rules_file(rel) is expected


def test_secret_warning_is_logged_once_per_path(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    make(tmp_path, "kaggle.json")
    rules = IgnoreRules(tmp_path)
    with caplog.at_level(logging.WARNING, logger="syncd.ignore"):
        assert rules.is_ignored("kaggle.json", False)
        assert rules.is_ignored("kaggle.json", False)
    warnings = [r for r in caplog.records if r.name == "syncd.ignore"]
    assert [r.getMessage() for r in warnings] == [
        "not mirroring kaggle.json: it looks like a secret "
        "(add !kaggle.json to .syncignore to include it)"
    ]
    assert warnings[0].levelno == logging.WARNING


def test_unignored_secret_is_not_warned_about(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    make(tmp_path, "kaggle.json")
    rules = rules_with(tmp_path, syncignore="!kaggle.json\n")
    with caplog.at_level(logging.WARNING, logger="syncd.ignore"):
        rules.is_ignored("kaggle.json", False)
    assert not [r for r in caplog.records if r.name == "syncd.ignore"]


def test_a_pattern_git_accepts_but_regex_rejects_is_skipped(tmp_path: Path) -> None:
    (tmp_path / ".gitignore").write_text("[z-a].bak\n*.log\n")
    rules = IgnoreRules(tmp_path)
    assert rules.is_ignored("x.log", False)
    assert not rules.is_ignored("z.bak", False)

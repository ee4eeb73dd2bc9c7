"""config.py: the YAML file becomes checked dataclasses; every error names file, line and key."""

from __future__ import annotations

import dataclasses
import re
import textwrap
from pathlib import Path

import pytest

from syncd.config import (
    DriveConfig,
    KaggleConfig,
    MirrorConfig,
    ProjectConfig,
    PullConfig,
    RemoteAddress,
    SnapshotConfig,
    TrainConfig,
    default_config_path,
    load_config,
    parse_address,
    parse_duration,
    render_initial_config,
)
from syncd.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "config.example.yaml"


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "proj").mkdir(exist_ok=True)
    path = tmp_path / "config.yaml"
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def error_of(tmp_path: Path, text: str) -> str:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return str(info.value)


def uncomment_keys(text: str) -> str:
    """The example with every commented-out ``key: value`` line switched on."""
    keys = {"drive", "kaggle", "snapshot", "train"} | {
        f.name
        for cls in (
            DriveConfig,
            KaggleConfig,
            MirrorConfig,
            SnapshotConfig,
            TrainConfig,
            ProjectConfig,
        )
        for f in dataclasses.fields(cls)
    }
    pattern = re.compile(r"^(\s*)# (\s*)([a-z_]+):")
    lines = []
    for line in text.splitlines():
        match = pattern.match(line)
        if match and match.group(3) in keys:
            line = match.group(1) + line[match.end(1) + 2 :]
        lines.append(line)
    return "\n".join(lines) + "\n"


# --- the example config -----------------------------------------------------------------------


def test_example_config_loads_with_the_documented_values() -> None:
    config = load_config(EXAMPLE)

    assert config.path == EXAMPLE
    assert config.drive == DriveConfig()
    assert config.kaggle == KaggleConfig(endpoint=None)
    (project,) = config.projects
    assert project.name == "example"
    assert project.path == REPO / "example"
    assert project.mirror == MirrorConfig(
        to=RemoteAddress("local:./example-mirror", "local", str(REPO / "example-mirror"), None),
        delay=1.0,
        max_delay=10.0,
        deletions="trash",
        pull=PullConfig(),
        workers=4,
    )
    assert project.ignore == ("*.ckpt", "data/raw/")
    assert project.snapshot is None
    assert config.project("example") is project


def test_example_config_shows_every_key_and_its_commented_defaults_load(tmp_path: Path) -> None:
    text = uncomment_keys(EXAMPLE.read_text())
    for cls in (
        DriveConfig,
        KaggleConfig,
        MirrorConfig,
        SnapshotConfig,
        TrainConfig,
        ProjectConfig,
    ):
        for f in dataclasses.fields(cls):
            assert re.search(rf"^[\s-]*{f.name}:", text, re.M), f"{cls.__name__}.{f.name} not shown"
    (tmp_path / "example").mkdir()
    path = tmp_path / "config.yaml"
    path.write_text(text)

    config = load_config(path)

    # Keys shown commented out carry their default value, so switching them on changes nothing.
    defaults = DriveConfig()
    assert config.drive.endpoint == defaults.endpoint
    assert config.drive.scope == defaults.scope
    assert config.drive.requests_per_second == defaults.requests_per_second
    assert config.drive.timeout == defaults.timeout
    snapshot = config.projects[0].snapshot
    assert snapshot is not None
    assert (snapshot.private, snapshot.license, snapshot.on_git_tag) == (True, "other", False)
    assert (snapshot.include, snapshot.exclude) == ((), ())
    assert snapshot.schedule == "0 3 * * *"
    assert snapshot.every == 6 * 3600
    train = config.projects[0].train
    assert train is not None
    defaults_train = TrainConfig()
    for key in ("command", "machine_shape", "internet", "outputs", "poll", "stalled_after"):
        assert getattr(train, key) == getattr(defaults_train, key), key
    assert (train.notify, train.keep_kernels, train.timeout) == (True, 5, 12 * 3600)
    assert config.projects[0].ignore == ("*.ckpt", "data/raw/", "/runs/")


# --- durations --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("500ms", 0.5),
        ("1s", 1.0),
        ("1.5s", 1.5),
        ("10m", 600.0),
        ("2h", 7200.0),
        ("1d", 86400.0),
        ("1h30m", 5400.0),
        ("0s", 0.0),
        ("3", 3.0),
        (" 2 s ", 2.0),
        (4, 4.0),
        (0.25, 0.25),
    ],
)
def test_parse_duration_accepts(text: str | int | float, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["1x", "", "s", "1 sec", "-1s", -2, "1.5.5s", "inf", True])
def test_parse_duration_rejects(text: str | int | float) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_bad_duration_names_file_line_and_key(tmp_path: Path) -> None:
    message = error_of(
        tmp_path,
        """
        projects:
          - name: a
            path: proj
            mirror:
              to: local:out
              delay: 1x
        """,
    )
    assert message == (
        f"{tmp_path / 'config.yaml'}:6: projects[0].mirror.delay: "
        "'1x' is not a duration (use e.g. 500ms, 1s, 10m)"
    )


def test_delay_longer_than_max_delay_is_rejected(tmp_path: Path) -> None:
    message = error_of(
        tmp_path,
        """
        projects:
          - name: a
            path: proj
            mirror: {to: "local:out", delay: 20s, max_delay: 10s}
        """,
    )
    assert "config.yaml:4: projects[0].mirror.delay: 20s is longer than max_delay" in message


# --- unknown keys and types -------------------------------------------------------------------


def test_unknown_key_names_line_and_suggests_the_close_one(tmp_path: Path) -> None:
    message = error_of(
        tmp_path,
        """
        projects:
          - name: a
            path: proj
            mirorr:
              to: local:out
        """,
    )
    assert message.endswith(
        "config.yaml:4: projects[0].mirorr: unknown key (did you mean 'mirror'?)"
    )


def test_unknown_key_without_a_close_match_lists_the_known_ones(tmp_path: Path) -> None:
    message = error_of(tmp_path, "colour: red\nprojects: []\n")
    assert message.endswith("config.yaml:1: colour: unknown key (known: drive, kaggle, projects)")


def test_duplicate_key_is_an_error(tmp_path: Path) -> None:
    message = error_of(
        tmp_path,
        """
        projects:
          - name: a
            path: proj
            name: b
            mirror: {to: "local:out"}
        """,
    )
    assert "config.yaml:4: projects[0].name: appears twice (first on line 2)" in message


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('ignore: "*.ckpt"', "projects[0].ignore: expected a list of strings"),
        ("ignore: [a, [b]]", "projects[0].ignore[1]: expected a string, got a list"),
        ("snapshot: {dataset: a/b, private: maybe}", "snapshot.private: expected true or false"),
        ("mirror: {to: local:out, workers: many}", "mirror.workers: expected an integer"),
        ("mirror: {to: local:out, workers: 0}", "mirror.workers: must be from 1 to 32, got 0"),
        ("mirror: local:out", "projects[0].mirror: expected a mapping of keys, got a string"),
        ("mirror: {to: local:out, deletions: purge}", "'purge' is not one of trash, keep"),
    ],
)
def test_wrong_types_and_values_are_errors(tmp_path: Path, line: str, expected: str) -> None:
    message = error_of(tmp_path, f"projects:\n  - name: a\n    path: proj\n    {line}\n")
    assert message.startswith(f"{tmp_path / 'config.yaml'}:4: ")
    assert expected in message


def test_drive_scope_must_be_file_or_full(tmp_path: Path) -> None:
    message = error_of(
        tmp_path,
        """
        drive:
          scope: everything
        projects: [{name: a, path: proj, mirror: {to: "local:out"}}]
        """,
    )
    assert "config.yaml:2: drive.scope: 'everything' is not one of file, full" in message


def test_missing_required_key_and_empty_projects(tmp_path: Path) -> None:
    message = error_of(tmp_path, "projects:\n  - name: a\n    mirror: {to: local:out}\n")
    assert "config.yaml:2: projects[0].path: missing (this key is required)" in message
    message = error_of(tmp_path, "drive: {}\nprojects: []\n")
    assert "config.yaml:2: projects: needs at least one entry" in message


def test_project_needs_a_mirror_or_a_snapshot(tmp_path: Path) -> None:
    message = error_of(tmp_path, "projects:\n  - name: a\n    path: proj\n")
    assert "config.yaml:2: projects[0]: needs a mirror section, a snapshot section" in message

    path = write(tmp_path, "projects:\n  - {name: a, path: proj, snapshot: {dataset: al/a-code}}\n")
    (project,) = load_config(path).projects
    assert project.mirror is None
    assert project.snapshot == SnapshotConfig(dataset="al/a-code")


# --- file level problems ----------------------------------------------------------------------


def test_malformed_yaml_gives_the_line(tmp_path: Path) -> None:
    message = error_of(tmp_path, "projects:\n  - name: a\n   path: [proj\n")
    assert re.search(r"config\.yaml:3: not valid YAML: \S", message), message


def test_missing_file_says_how_to_create_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "nope.yaml")
    assert str(info.value) == (
        f"config file {tmp_path / 'nope.yaml'} does not exist (create one with: syncd init DIR)"
    )


def test_empty_file_is_an_error(tmp_path: Path) -> None:
    assert "config.yaml:1: the file is empty" in error_of(tmp_path, "# nothing yet\n")


# --- paths ------------------------------------------------------------------------------------


def test_paths_expand_home_and_resolve_against_the_config_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("HOME", str(home))
    path = write(
        tmp_path,
        """
        drive:
          credentials: secrets/token.json
          client_secrets: ~/cs.json
        projects:
          - name: rel
            path: ./proj/../proj
            mirror: {to: "local:../mirror-rel"}
          - name: home
            path: ~/code/cifar
            mirror: {to: "local:~/mirror-home"}
        """,
    )

    config = load_config(path)

    assert config.drive.credentials == tmp_path / "secrets" / "token.json"
    assert config.drive.client_secrets == home / "cs.json"
    rel, in_home = config.projects
    assert rel.path == tmp_path / "proj"
    assert rel.mirror is not None and rel.mirror.to.path == str(tmp_path.parent / "mirror-rel")
    assert in_home.path == home / "code" / "cifar"
    assert in_home.mirror is not None and in_home.mirror.to.path == str(home / "mirror-home")


@pytest.mark.parametrize(
    ("target", "relation"),
    [("local:proj/.mirror", "is inside"), ("local:proj", "is inside"), ("local:.", "contains")],
)
def test_local_target_overlapping_the_project_is_rejected(
    tmp_path: Path, target: str, relation: str
) -> None:
    message = error_of(
        tmp_path,
        f"""
        projects:
          - name: a
            path: proj
            mirror:
              to: {target}
        """,
    )
    assert (
        f"config.yaml:5: projects[0].mirror.to: {target} {relation} the project folder" in message
    )
    assert "would mirror into itself" in message


def test_local_target_inside_another_project_is_rejected(tmp_path: Path) -> None:
    message = error_of(
        tmp_path,
        """
        projects:
          - {name: a, path: proj, mirror: {to: "local:other/a"}}
          - {name: b, path: other, mirror: {to: "local:b-mirror"}}
        """,
    )
    assert "config.yaml:2: projects[0].mirror.to: local:other/a is inside project 'b'" in message


def test_duplicate_project_names_and_folders_are_rejected(tmp_path: Path) -> None:
    message = error_of(
        tmp_path,
        """
        projects:
          - {name: a, path: proj, mirror: {to: "local:m1"}}
          - {name: a, path: proj2, mirror: {to: "local:m2"}}
        """,
    )
    assert "config.yaml:3: projects[1].name: 'a' is already used by projects[0]" in message
    message = error_of(
        tmp_path,
        """
        projects:
          - {name: a, path: proj, mirror: {to: "local:m1"}}
          - {name: b, path: ./proj/, mirror: {to: "local:m2"}}
        """,
    )
    assert "config.yaml:3: projects[1].path: " in message
    assert "is already project 'a'" in message


FULL = "drive:\n  scope: full\n"
PULL_BASE = "projects:\n  - name: a\n    path: proj\n    mirror:\n      to: gdrive:/syncd/a\n"


def test_pull_folders_are_normalised_and_must_stay_inside(tmp_path: Path) -> None:
    path = write(tmp_path, FULL + PULL_BASE + "      pull: [outputs, /logs/, ./ckpt/best/]\n")
    project = load_config(path).projects[0]
    assert project.mirror is not None
    assert project.mirror.pull == PullConfig(("outputs/", "logs/", "ckpt/best/"), 30.0)
    # The pull folders belong to Drive: never mirrored up (nor snapshotted).
    assert project.ignore[-3:] == ("/outputs/", "/logs/", "/ckpt/best/")

    text = FULL + PULL_BASE + "      pull:\n        - outputs/\n        - ../up\n"
    message = error_of(tmp_path, text)
    assert "config.yaml:10: projects[0].mirror.pull[1]: '../up'" in message


def test_pull_takes_a_mapping_with_an_interval(tmp_path: Path) -> None:
    text = FULL + PULL_BASE + "      pull: {paths: [outputs/], interval: 2s}\n"
    mirror = load_config(write(tmp_path, text)).projects[0].mirror
    assert mirror is not None and mirror.pull == PullConfig(("outputs/",), 2.0)
    text = FULL + PULL_BASE + "      pull:\n        paths: [outputs/]\n"
    mirror = load_config(write(tmp_path, text)).projects[0].mirror
    assert mirror is not None and mirror.pull.interval == 30.0
    assert not MirrorConfig(to=mirror.to).pull  # off by default


@pytest.mark.parametrize(
    ("pull", "expected"),
    [
        ("{paths: [outputs/], interval: 500ms}", "0.5s is too often to poll Google Drive"),
        ("{paths: [outputs/], interval: soon}", "'soon' is not a duration"),
        ("{interval: 5s}", "projects[0].mirror.pull.paths: missing"),
        ("{paths: [outputs/], every: 5s}", "projects[0].mirror.pull.every: unknown key"),
        ("outputs/", "expected a list of subfolders"),
    ],
)
def test_bad_pull_settings_are_one_sentence(tmp_path: Path, pull: str, expected: str) -> None:
    message = error_of(tmp_path, FULL + PULL_BASE + f"      pull: {pull}\n")
    assert expected in message and "\n" not in message


@pytest.mark.parametrize("scope", ["file", "drive.file", None])
def test_pull_under_the_drive_file_scope_is_refused_with_the_reason(
    tmp_path: Path, scope: str | None
) -> None:
    top = f"drive:\n  scope: {scope}\n" if scope else ""
    message = error_of(tmp_path, top + PULL_BASE + "      pull: [outputs/]\n")
    line = 7 if scope else 5
    assert f"config.yaml:{line + 1}: projects[0].mirror.pull: " in message
    assert "needs drive.scope: full" in message
    assert "cannot see the files Colab or anyone else creates" in message
    assert "syncd auth drive" in message


def test_pull_with_a_local_target_is_refused_not_ignored(tmp_path: Path) -> None:
    text = "projects:\n  - name: a\n    path: proj\n    mirror:\n      to: local:out\n"
    message = error_of(tmp_path, text + "      pull: [outputs/]\n")
    assert "projects[0].mirror.pull: the return path reads Google Drive's changes feed" in message
    empty = write(tmp_path, text + "      pull: []\n")  # an empty list is no return path
    assert not load_config(empty).projects[0].mirror.pull  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("written", "scope"),
    [("file", "file"), ("drive.file", "file"), ("full", "full"), ("drive", "full")],
)
def test_drive_scope_takes_google_s_names_too(tmp_path: Path, written: str, scope: str) -> None:
    text = f"drive:\n  scope: {written}\n" + PULL_BASE
    assert load_config(write(tmp_path, text)).drive.scope == scope


def test_an_unknown_drive_scope_is_refused(tmp_path: Path) -> None:
    message = error_of(tmp_path, "drive:\n  scope: drive.readonly\n" + PULL_BASE)
    assert "'drive.readonly' is not one of file, full (also spelled drive.file, drive)" in message


# --- snapshot ---------------------------------------------------------------------------------


def test_bad_cron_schedule_is_rejected(tmp_path: Path) -> None:
    message = error_of(
        tmp_path,
        """
        projects:
          - name: a
            path: proj
            snapshot:
              dataset: alice/a-code
              schedule: "0 3 * *"
        """,
    )
    assert "config.yaml:6: projects[0].snapshot.schedule: '0 3 * *' is not a cron" in message


def test_dataset_must_be_owner_slash_slug(tmp_path: Path) -> None:
    message = error_of(
        tmp_path, "projects:\n  - name: a\n    path: proj\n    snapshot: {dataset: cifar}\n"
    )
    assert "config.yaml:4: projects[0].snapshot.dataset: 'cifar' is not owner/slug" in message


# --- remote addresses -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "kind", "path", "folder_id"),
    [
        ("local:mirror", "local", "{base}/mirror", None),
        ("local:/mnt/usb/x/", "local", "/mnt/usb/x", None),
        ("gdrive:/syncd/cifar", "gdrive", "/syncd/cifar", None),
        ("gdrive:/syncd//cifar/", "gdrive", "/syncd/cifar", None),
        ("gdrive:/", "gdrive", "/", None),
        ("gdrive:id=1AbC-d_E", "gdrive", None, "1AbC-d_E"),
    ],
)
def test_parse_address(
    tmp_path: Path, raw: str, kind: str, path: str | None, folder_id: str | None
) -> None:
    expected_path = path.format(base=tmp_path) if path else None
    assert parse_address(raw, tmp_path) == RemoteAddress(raw, kind, expected_path, folder_id)


def test_parse_address_expands_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    assert parse_address("local:~/m", Path("/elsewhere")).path == str(tmp_path / "m")


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("dropbox:/x", "local:"),
        ("/plain/path", "gdrive:"),
        ("local:", "needs a folder"),
        ("gdrive:syncd/x", "must start with /"),
        ("gdrive:/a/../b", "'..'"),
        ("gdrive:id=", "not a Drive folder id"),
    ],
)
def test_parse_address_rejects(tmp_path: Path, raw: str, reason: str) -> None:
    with pytest.raises(ValueError, match=re.escape(reason)):
        parse_address(raw, tmp_path)


def test_bad_address_in_file_names_the_key(tmp_path: Path) -> None:
    message = error_of(
        tmp_path, "projects:\n  - name: a\n    path: proj\n    mirror:\n      to: s3:/bucket\n"
    )
    assert "config.yaml:5: projects[0].mirror.to: 's3:/bucket' is not a remote address" in message
    assert "local:" in message and "gdrive:" in message


# --- lookups, defaults, syncd init ------------------------------------------------------------


def test_project_lookup_names_the_known_projects(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        projects:
          - {name: a, path: proj, mirror: {to: "local:m1"}}
          - {name: b, path: proj2, mirror: {to: "gdrive:/syncd/b"}}
        """,
    )
    config = load_config(path)
    assert config.project("b").mirror == MirrorConfig(
        to=RemoteAddress("gdrive:/syncd/b", "gdrive", "/syncd/b", None)
    )
    with pytest.raises(ConfigError) as info:
        config.project("c")
    assert str(info.value) == f"no project named 'c' in {path} (projects: a, b)"


def test_default_config_path_honours_syncd_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SYNCD_CONFIG", str(tmp_path / "c.yaml"))
    assert default_config_path() == tmp_path / "c.yaml"
    monkeypatch.delenv("SYNCD_CONFIG")
    assert default_config_path().name == "config.yaml"
    assert "syncd" in default_config_path().parts


def test_initial_config_loads_back(tmp_path: Path) -> None:
    project_dir = tmp_path / "my code" / "cifar"
    project_dir.mkdir(parents=True)
    path = tmp_path / "conf" / "config.yaml"
    path.parent.mkdir()
    path.write_text(render_initial_config(project_dir, "cifar", "gdrive:/syncd/cifar"))

    config = load_config(path)

    (project,) = config.projects
    assert project.name == "cifar"
    assert project.path == project_dir
    assert project.mirror == MirrorConfig(
        to=RemoteAddress("gdrive:/syncd/cifar", "gdrive", "/syncd/cifar", None), delay=1.0
    )
    assert project.snapshot is None
    assert "local:" in path.read_text() and "snapshot:" in path.read_text()
    assert config.project("cifar") == project


def test_initial_config_refuses_a_bad_name(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        render_initial_config(tmp_path, "my project")


# --- projects and targets that overlap (issue #8) ---------------------------------------------


@pytest.mark.parametrize(
    ("projects", "line", "expected"),
    [
        (  # a project inside another project
            '- {name: a, path: proj, mirror: {to: "local:m1"}}\n'
            '- {name: b, path: proj/sub, mirror: {to: "local:m2"}}',
            3,
            "projects[1].path: {tmp}/proj/sub is inside the folder of project 'a' ({tmp}/proj)",
        ),
        (  # ... or around it
            '- {name: a, path: proj/sub, mirror: {to: "local:m1"}}\n'
            '- {name: b, path: proj, mirror: {to: "local:m2"}}',
            3,
            "projects[1].path: {tmp}/proj contains the folder of project 'a'",
        ),
        (  # a target that contains another project's folder
            '- {name: a, path: a, mirror: {to: "local:shared"}}\n'
            '- {name: b, path: shared/b, mirror: {to: "local:b-mirror"}}',
            2,
            "projects[0].mirror.to: local:shared contains project 'b' ({tmp}/shared/b)",
        ),
        (  # two projects, one local target
            '- {name: a, path: a, mirror: {to: "local:one"}}\n'
            '- {name: b, path: b, mirror: {to: "local:./one/"}}',
            3,
            "projects[1].mirror.to: local:./one/ is also the target of project 'a' (local:one)",
        ),
        (  # one target inside another's
            '- {name: a, path: a, mirror: {to: "local:one"}}\n'
            '- {name: b, path: b, mirror: {to: "local:one/b"}}',
            3,
            "projects[1].mirror.to: local:one/b is inside the target of project 'a'",
        ),
        (  # one Drive folder, spelled two ways
            '- {name: a, path: a, mirror: {to: "gdrive:/syncd/shared"}}\n'
            '- {name: b, path: b, mirror: {to: "gdrive://syncd/shared/"}}',
            3,
            "projects[1].mirror.to: gdrive://syncd/shared/ is also the target of project 'a'",
        ),
        (  # a Drive folder inside another project's Drive folder
            '- {name: a, path: a, mirror: {to: "gdrive:/syncd"}}\n'
            '- {name: b, path: b, mirror: {to: "gdrive:/syncd/b"}}',
            3,
            "projects[1].mirror.to: gdrive:/syncd/b is inside the target of project 'a'",
        ),
        (  # one folder id twice
            '- {name: a, path: a, mirror: {to: "gdrive:id=abc"}}\n'
            '- {name: b, path: b, mirror: {to: "gdrive:id=abc"}}',
            3,
            "projects[1].mirror.to: gdrive:id=abc is also the target of project 'a'",
        ),
    ],
)
def test_overlapping_projects_and_targets_are_refused(
    tmp_path: Path, projects: str, line: int, expected: str
) -> None:
    for folder in ("a", "b", "shared/b", "proj/sub"):
        (tmp_path / folder).mkdir(parents=True, exist_ok=True)
    text = "projects:\n" + textwrap.indent(projects, "  ") + "\n"
    message = error_of(tmp_path, text)
    tmp = tmp_path.resolve()
    assert f"config.yaml:{line}: " + expected.format(tmp=tmp) in message, message
    assert "\n" not in message


def test_a_target_reached_through_a_symlink_is_compared_by_its_real_path(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    (tmp_path / "alias").symlink_to(tmp_path / "b")
    message = error_of(
        tmp_path,
        """
        projects:
          - {name: a, path: proj, mirror: {to: "local:alias"}}
          - {name: b, path: b, mirror: {to: "local:b-mirror"}}
        """,
    )
    assert "projects[0].mirror.to: local:alias is inside project 'b'" in message


def test_projects_side_by_side_and_distinct_targets_load(tmp_path: Path) -> None:
    for folder in ("a", "ab", "b"):
        (tmp_path / folder).mkdir()
    path = write(
        tmp_path,
        """
        projects:
          - {name: a, path: a, mirror: {to: "local:m/a"}}
          - {name: ab, path: ab, mirror: {to: "local:m/ab"}}
          - {name: b, path: b, mirror: {to: "gdrive:/syncd/b"}}
          - {name: c, path: proj, mirror: {to: "gdrive:/syncd/bc"}}
        """,
    )
    assert [p.name for p in load_config(path).projects] == ["a", "ab", "b", "c"]

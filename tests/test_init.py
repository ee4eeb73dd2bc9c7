"""``syncd init`` (issue #11): asks nothing, writes a config that runs now, and edits an
existing one without losing its comments.  The CLI runs in-process (``syncd.cli.main``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from syncd.cli import main
from syncd.config import SnapshotConfig, load_config
from syncd.config.template import kaggle_slug, name_for
from syncd.remotes.kaggle.rules import dataset_metadata


@pytest.fixture
def cfg(home: Path) -> Path:
    return home / ".config/syncd/config.yaml"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    folder = tmp_path / "code" / "cifar"
    folder.mkdir(parents=True)
    (folder / "train.py").write_text("print('train')\n")
    return folder


def init(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["init", *args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(
    ("name", "slug"),
    [
        ("cifar", "cifar-code"),
        ("CIFAR_10.v2", "cifar-10-v2"),
        ("resnet50", "resnet50"),
        ("a", "a-code"),
        ("ab", "ab-code"),
        ("--", "syncd-project"),
        ("x" * 80, "x" * 50),
        ("a" * 49 + "-b", "a" * 49),
        ("étude", "tude-code"),
    ],
)
def test_the_slug_from_a_name_is_one_kaggle_accepts(name: str, slug: str) -> None:
    assert kaggle_slug(name) == slug
    meta = dataset_metadata("p", SnapshotConfig(dataset=f"alice/{slug}"))  # raises if refused
    assert meta.slug == slug


def test_project_names_come_from_the_folder_and_stay_unique() -> None:
    assert name_for(Path("/x/my project!")) == "my-project"
    assert name_for(Path("/x/...")) == "project"
    assert name_for(Path("/x/cifar"), {"cifar", "cifar-2"}) == "cifar-3"


def test_without_drive_credentials_it_mirrors_to_a_local_folder_and_says_how_to_switch(
    capsys: pytest.CaptureFixture[str], home: Path, cfg: Path, project: Path
) -> None:
    code, out, err = init(capsys, str(project))
    assert (code, err) == (0, "")
    config = load_config(cfg)
    (pc,) = config.projects
    assert pc.name == "cifar" and pc.path == project
    assert pc.mirror is not None and pc.mirror.to.raw == "local:~/syncd-mirror/cifar"
    assert pc.mirror.to.path == str(home / "syncd-mirror/cifar")
    assert pc.snapshot is None
    assert "no Google Drive credentials yet" in out
    assert f"syncd init {project} --to gdrive:/syncd/cifar" in out
    text = cfg.read_text()
    assert "pull" not in text  # only keys that are built
    assert "your-kaggle-name/cifar-code" in text  # a slug syncd accepts, ready to uncomment


def test_with_drive_credentials_it_mirrors_to_drive(
    capsys: pytest.CaptureFixture[str], home: Path, cfg: Path, project: Path
) -> None:
    creds = home / ".config/syncd/drive-credentials.json"
    creds.parent.mkdir(parents=True)
    creds.write_text("{}")
    code, out, _ = init(capsys, str(project))
    assert code == 0
    (pc,) = load_config(cfg).projects
    assert pc.mirror is not None and pc.mirror.to.raw == "gdrive:/syncd/cifar"
    assert "local folder" not in out


def test_to_and_snapshot_on_a_new_config(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, cfg: Path, project: Path
) -> None:
    target = tmp_path / "usb" / "cifar"
    code, _, _ = init(
        capsys, str(project), "--to", f"local:{target}", "--snapshot", "alice/cifar-v1"
    )
    assert code == 0
    (pc,) = load_config(cfg).projects
    assert pc.mirror is not None and pc.mirror.to.path == str(target)
    assert pc.snapshot is not None and pc.snapshot.dataset == "alice/cifar-v1"


def test_an_existing_config_is_edited_and_keeps_its_comments(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, cfg: Path, project: Path
) -> None:
    assert init(capsys, str(project))[0] == 0
    cfg.write_text(cfg.read_text() + "# my own note, kept\n")
    code, out, _ = init(capsys, str(project))
    assert code == 0 and "is already project 'cifar'" in out

    code, out, _ = init(capsys, str(project), "--to", "gdrive:/syncd/cifar")
    assert code == 0 and "now mirrors to gdrive:/syncd/cifar" in out and "syncd reload" in out
    code, _, _ = init(capsys, str(project), "--snapshot", "alice/cifar-code")
    assert code == 0
    other = tmp_path / "code" / "mnist"
    other.mkdir()
    code, out, _ = init(capsys, str(other), "--snapshot", "alice/mnist-code")
    assert code == 0 and "added project 'mnist'" in out

    config = load_config(cfg)
    cifar, mnist = config.projects
    assert cifar.mirror is not None and cifar.mirror.to.raw == "gdrive:/syncd/cifar"
    assert cifar.snapshot is not None and cifar.snapshot.dataset == "alice/cifar-code"
    assert mnist.mirror is not None and mnist.mirror.to.raw == "local:~/syncd-mirror/mnist"
    assert mnist.snapshot is not None and mnist.snapshot.dataset == "alice/mnist-code"
    text = cfg.read_text()
    assert "# my own note, kept" in text and "your-kaggle-name/cifar-code" not in text
    assert text.count("# snapshot:") == 0 and text.count("snapshot:") == 2


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--snapshot", "alice/mn"], "the slug 'mn' has 2 characters; Kaggle needs 6 to 50"),
        (["--snapshot", "alice/Bad_Slug"], "may only hold lowercase letters"),
        (["--to", "s3:/bucket"], "is not a remote address"),
        (["--to", "gdrive:syncd"], "must start with /"),
    ],
)
def test_bad_options_are_usage_errors_that_change_nothing(
    capsys: pytest.CaptureFixture[str], cfg: Path, project: Path, args: list[str], needle: str
) -> None:
    code, _, err = init(capsys, str(project), *args)
    assert code == 2 and needle in err and len(err.strip().splitlines()) == 1, err
    assert not cfg.exists()
    assert init(capsys, str(project))[0] == 0
    before = cfg.read_text()
    code, _, err = init(capsys, str(project), *args)
    assert code == 2 and needle in err
    assert cfg.read_text() == before


def test_a_folder_that_is_not_there_or_would_hold_its_own_mirror(
    capsys: pytest.CaptureFixture[str], home: Path, cfg: Path, tmp_path: Path
) -> None:
    code, _, err = init(capsys, str(tmp_path / "nope"))
    assert code == 2 and "is not a folder" in err
    code, _, err = init(capsys, str(home))  # ~/syncd-mirror/home would be inside it
    assert code == 2 and "--to" in err and not cfg.exists()


def test_a_config_with_a_flow_style_project_list_is_left_alone(
    capsys: pytest.CaptureFixture[str], cfg: Path, project: Path, tmp_path: Path
) -> None:
    cfg.parent.mkdir(parents=True)
    (tmp_path / "a").mkdir()
    cfg.write_text(
        f'projects: [{{name: a, path: "{tmp_path / "a"}", mirror: {{to: "local:/m"}}}}]\n'
    )
    before = cfg.read_text()
    code, _, err = init(capsys, str(project))
    assert code == 2 and "add the project by hand" in err
    assert cfg.read_text() == before

"""The `train:` section of the config: defaults, checks with file:line, the outputs folder
joining the project's ignore list (so runs are neither mirrored nor snapshotted)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from syncd.config import TrainConfig, load_config
from syncd.errors import ConfigError
from syncd.localfs.ignore import IgnoreRules


def write(tmp_path: Path, train: str, snapshot: bool = True) -> Path:
    (tmp_path / "p").mkdir(exist_ok=True)
    text = "projects:\n  - name: p\n    path: ./p\n    ignore: ['*.ckpt']\n"
    if snapshot:
        text += "    snapshot: {dataset: alice/cifar-code}\n"
    else:
        text += "    mirror: {to: 'local:./m'}\n"
    path = tmp_path / "c.yaml"
    path.write_text(text + train)
    return path


def test_an_empty_train_section_takes_every_default(tmp_path: Path) -> None:
    for text in ("    train:\n", "    train: {}\n"):
        (project,) = load_config(write(tmp_path, text)).projects
        assert project.train == TrainConfig()
        assert project.ignore == ("*.ckpt", "/runs/")
    (project,) = load_config(write(tmp_path, "")).projects
    assert project.train is None and project.ignore == ("*.ckpt",)


def test_every_key_is_read(tmp_path: Path) -> None:
    text = (
        "    train:\n      command: python train.py --epochs 80\n"
        "      machine_shape: NvidiaL4\n      internet: true\n      timeout: 9h\n"
        "      outputs: ./results\n      docker_image: gcr.io/kaggle-gpu-images/python:v150\n"
        "      poll: 1s\n      stalled_after: 20m\n      notify: false\n      keep_kernels: 0\n"
    )
    (project,) = load_config(write(tmp_path, text)).projects
    assert project.train == TrainConfig(
        command="python train.py --epochs 80",
        machine_shape="NvidiaL4",
        internet=True,
        timeout=9 * 3600,
        outputs="results/",
        docker_image="gcr.io/kaggle-gpu-images/python:v150",
        poll=1.0,
        stalled_after=1200.0,
        notify=False,
        keep_kernels=0,
    )
    assert project.ignore[-1] == "/results/"


@pytest.mark.parametrize(
    ("train", "message"),
    [
        ("    train: {poll: 100ms}\n", "c.yaml:6: projects[0].train.poll: 0.1s is too often"),
        ("    train: {outputs: ../x}\n", "projects[0].train.outputs: '../x': '..' would leave"),
        ("    train: {command: ' '}\n", "projects[0].train.command: needs a command"),
        ("    train: {keep_kernels: -1}\n", "projects[0].train.keep_kernels: must be 0 or more"),
        ("    train: {internet: maybe}\n", "projects[0].train.internet: expected true or false"),
        ("    train: {gpu: T4}\n", "projects[0].train.gpu: unknown key"),
    ],
)
def test_bad_values_are_one_sentence_with_the_line(
    tmp_path: Path, train: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(write(tmp_path, train))


def test_train_needs_a_snapshot_section(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="train: needs a snapshot section"):
        load_config(write(tmp_path, "    train: {}\n", snapshot=False))


def test_the_outputs_folder_is_ignored_by_the_projects_rules(tmp_path: Path) -> None:
    (project,) = load_config(write(tmp_path, "    train: {}\n")).projects
    rules = IgnoreRules(project.path, project.ignore)
    assert rules.is_ignored("runs/r1/model.ckpt", False)
    assert rules.is_ignored("runs", True)
    assert not rules.is_ignored("src/runs.py", False)
    assert not rules.is_ignored("models/runs/x.py", False)  # only the top-level folder

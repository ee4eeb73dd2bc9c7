"""The README keeps its word (issue #11): its "First ten minutes" run as written, in a fresh
home folder, against the fake Drive and the fake Kaggle; `make run`'s config mirrors; the
built-in ignore rules it lists are the ones in the code; it never sends users to files
they do not have.

How the walkthrough is followed: each ```sh block of the section, line by line, through
bash, with `syncd` on PATH (a shim running this checkout), HOME a temporary folder, and the
project `~/code/cifar` made beforehand.  Where the README asks for something that is not a
command, the harness does it the way a person would:

* `pip install .` is skipped (this checkout is what the shim runs);
* "save the OAuth client's JSON as ~/.config/syncd/client_secrets.json": the fake Drive's
  client is saved there, and the config gets `drive: endpoint:` and `kaggle: endpoint:`
  lines pointing at the fakes (what tests/gdrive_support.py and the snapshot tests do; the
  real services need no such lines);
* the browser that `syncd auth drive` opens is $BROWSER, a script that loads the consent
  page, as a person clicking "Allow" would;
* "download kaggle.json": the fake Kaggle's key is put in ~/Downloads;
* after `syncd run ... &` the harness waits for the daemon's socket before the next line.

Every line must exit 0, and each block's outcome is checked: the file mirrored, the same
on Drive after the switch, a Kaggle dataset version after the snapshot.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from syncd.localfs.ignore import DEFAULT_PATTERNS, SECRET_PATTERNS
from tests.conftest import REPO, DaemonProcess, syncd_env, tree, wait_for
from tests.fakes.drive_server import FakeDrive
from tests.fakes.kaggle_server import FakeKaggle
from tests.gdrive_support import files_below
from tests.kaggle_support import FAST, KEY, USER

README = (REPO / "README.md").read_text(encoding="utf-8")


def section(title: str) -> str:
    start = README.index(f"\n## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start : end if end != -1 else len(README)]


def sh_blocks(text: str) -> list[list[str]]:
    """The lines of each ```sh block, comments and blank lines left to bash."""
    return [block.splitlines() for block in re.findall(r"```sh\n(.*?)```", text, re.S)]


# --- the walkthrough --------------------------------------------------------------------------


class Walkthrough:
    def __init__(self, home: Path, drive: FakeDrive, kaggle: FakeKaggle) -> None:
        self.home = home
        self.drive = drive
        self.kaggle = kaggle
        self.daemon: subprocess.Popen[bytes] | None = None
        bin_dir = home / "bin"
        bin_dir.mkdir()
        shim = bin_dir / "syncd"
        shim.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -m syncd "$@"\n')
        shim.chmod(0o755)
        browser = bin_dir / "browser"
        fetch = (
            "import sys, urllib.request; "
            "urllib.request.build_opener(urllib.request.ProxyHandler({}))"
            ".open(sys.argv[1], timeout=20).read()"
        )
        browser.write_text(
            f'#!/bin/sh\n({shlex.quote(sys.executable)} -c {shlex.quote(fetch)} "$1" '
            ">/dev/null 2>&1 &)\nexit 0\n"
        )
        browser.chmod(0o755)
        env = kaggle.client_env(home=home, auth="none", via_proxy=False, base=syncd_env())
        env.update(FAST)
        for name in ("XDG_CONFIG_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME", "XDG_DATA_HOME"):
            env.pop(name, None)  # a fresh account: the platform defaults under HOME
        env.update(
            PATH=f"{bin_dir}{os.pathsep}{env['PATH']}",
            XDG_RUNTIME_DIR=str(home / "run"),
            BROWSER=f"{browser} %s",
        )
        env.pop("SYNCD_CONFIG", None)
        (home / "run").mkdir(mode=0o700)
        self.env = env
        self.outputs: list[tuple[str, str]] = []

    def run(self, line: str) -> str:
        stripped = line.strip()
        if not stripped or stripped.startswith("#") or stripped.startswith("pip install"):
            return ""
        if stripped.split("#")[0].rstrip().endswith("&"):
            command = stripped.split("#")[0].rstrip()[:-1]
            log = open(self.home / "background.log", "ab")  # noqa: SIM115 - lives with the daemon
            self.daemon = subprocess.Popen(
                ["bash", "-c", command], env=self.env, cwd=self.home, stdout=log, stderr=log
            )
            wait_for(lambda: self.syncd("status").returncode == 0, 30, "the daemon's socket")
            return ""
        done = subprocess.run(
            ["bash", "-c", line],
            env=self.env,
            cwd=self.home,
            capture_output=True,
            text=True,
            timeout=300,
        )
        self.outputs.append((line, done.stdout + done.stderr))
        assert done.returncode == 0, f"`{line}` exited {done.returncode}:\n{done.stderr}"
        assert "Traceback" not in done.stderr, done.stderr
        return done.stdout

    def block(self, lines: list[str]) -> str:
        return "".join(self.run(line) for line in lines)

    def syncd(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["syncd", *args], env=self.env, capture_output=True, text=True, timeout=60
        )

    def status(self) -> dict:
        return json.loads(self.syncd("status", "--json").stdout)

    def stop(self) -> None:
        if self.daemon is not None and self.daemon.poll() is None:
            self.daemon.kill()
            self.daemon.wait(10)


@pytest.fixture
def walk(tmp_path: Path) -> Iterator[Walkthrough]:
    home = tmp_path / "home"
    home.mkdir()
    with FakeDrive() as drive, FakeKaggle() as kaggle:
        kaggle.add_user(USER, KEY)
        w = Walkthrough(home, drive, kaggle)
        try:
            yield w
        finally:
            w.stop()


@pytest.mark.e2e
def test_the_first_ten_minutes_run_as_written(walk: Walkthrough) -> None:
    blocks = sh_blocks(section("First ten minutes"))
    assert len(blocks) == 3, "the walkthrough has three steps: a folder, Drive, Kaggle"
    home = walk.home
    project = home / "code/cifar"
    project.mkdir(parents=True)
    (project / "train.py").write_text("print('train')\n")

    # 1. a local: target, no account: `init` + `run` mirror at once.
    out = walk.block(blocks[0])
    assert "hello.py" in out.split()  # what `ls ~/syncd-mirror/cifar` printed
    assert tree(home / "syncd-mirror/cifar").keys() == {"train.py", "hello.py"}
    init_line, init_said = walk.outputs[0]
    assert init_line.startswith("syncd init ~/code/cifar")
    assert "syncd init ~/code/cifar --to gdrive:/syncd/cifar" in init_said  # how to switch

    # 2. Google Drive: the manual step, then the commands as written.
    secrets = home / ".config/syncd/client_secrets.json"
    secrets.write_text(json.dumps(walk.drive.client_secrets()))
    config = home / ".config/syncd/config.yaml"
    endpoints = f"drive:\n  endpoint: {walk.drive.url}\nkaggle:\n  endpoint: {walk.kaggle.url}\n"
    config.write_text(config.read_text() + "\n" + endpoints)
    walk.block(blocks[1])
    assert "Signed in as" in "".join(out for _, out in walk.outputs)
    creds = home / ".config/syncd/drive-credentials.json"
    assert creds.stat().st_mode & 0o777 == 0o600
    wait_for(
        lambda: set(files_below(walk.drive, "syncd/cifar")) == {"train.py", "hello.py"},
        30,
        "the project on Drive after the switch",
    )
    (project / "model.py").write_text("class Net: ...\n")
    wait_for(lambda: "model.py" in files_below(walk.drive, "syncd/cifar"), 30, "a new edit")

    # 3. Kaggle: the downloaded key, then the commands as written.
    downloads = home / "Downloads"
    downloads.mkdir()
    (downloads / "kaggle.json").write_text(json.dumps({"username": USER, "key": KEY}))
    walk.block(blocks[2])
    versions = walk.kaggle.dataset("alice/cifar-code").versions
    assert len(versions) == 1
    said = "".join(out for line, out in walk.outputs if "syncd snapshots" in line)
    assert re.search(r"\bv1\b", said) and "ready" in said
    assert walk.daemon is not None
    assert walk.daemon.wait(20) == 0  # `syncd stop` ended it


# --- `make run` ---------------------------------------------------------------------------------


@pytest.mark.e2e
def test_make_runs_config_mirrors_the_example(tmp_path: Path, run_daemon) -> None:
    """What `make run` starts after installing: `syncd run -c config.example.yaml`."""
    assert "syncd run -c config.example.yaml" in README.split("## First ten minutes")[0]
    shutil.copy(REPO / "config.example.yaml", tmp_path / "config.example.yaml")
    shutil.copytree(REPO / "example", tmp_path / "example")
    d: DaemonProcess = run_daemon(tmp_path / "config.example.yaml")
    mirror = tmp_path / "example-mirror"
    expected = set(tree(tmp_path / "example"))
    wait_for(lambda: set(tree(mirror)) == expected, 30, "the example mirrored")
    (tmp_path / "example/new.py").write_text("x = 1\n")
    wait_for(lambda: (mirror / "new.py").exists(), 20, "an edit")
    (tmp_path / "example/new.py").unlink()
    wait_for(lambda: not (mirror / "new.py").exists(), 20, "a deletion")
    assert any(p.name == "new.py" for p in (mirror / ".syncd-trash").rglob("*"))
    assert d.stop() == 0


# --- what the README says about itself -----------------------------------------------------------


def test_the_built_in_ignore_rules_listed_are_the_codes() -> None:
    rules = section("Choices made where the design is silent")
    listed = rules[rules.index("Built in") : rules.index("- **Symlinks")]
    names = set(re.findall(r"`([^`]+)`", listed)) - {"/", "pyvenv.cfg", "!name"}
    assert names == set(DEFAULT_PATTERNS) | set(SECRET_PATTERNS)


def test_the_readme_stands_alone() -> None:
    assert "shared/" not in README and "design.md" not in README
    shape = section("Commands")
    assert '"manifest": {"seq": 118' in shape and '"runs": [{' in shape
    assert '"reason": null' in shape


def test_every_command_is_in_the_commands_table() -> None:
    from syncd.cli.parser import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    table = section("Commands")
    for name in sub.choices:  # type: ignore[union-attr]
        assert f"`syncd {name}" in table, f"`syncd {name}` is not in the README's table"


def test_status_json_in_the_readme_has_the_keys_status_returns(tmp_path: Path, home: Path) -> None:
    from syncd.cli import main

    block = re.search(r"```json\n(.*?)```", section("Commands"), re.S)
    assert block is not None
    documented = json.loads(block.group(1))
    (tmp_path / "p").mkdir()
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        f"projects:\n  - name: p\n    path: {tmp_path / 'p'}\n    mirror:\n"
        f"      to: local:{tmp_path / 'm'}\n    snapshot:\n      dataset: a/p-code\n"
    )
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        assert main(["sync", "--once", "-c", str(cfg)]) == 0  # a manifest on the target
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        assert main(["status", "--json", "-c", str(cfg)]) == 3
    actual = json.loads(out.getvalue())

    def keys(d: dict) -> dict:
        return {k: keys(v) if isinstance(v, dict) else None for k, v in d.items()}

    assert keys(actual) | {"projects": None} == keys(documented) | {"projects": None}
    # `pull` is null here (a local: target has no return path); tests/test_e2e_pull.py
    # checks the block's keys against this same README example.
    assert keys(actual["projects"][0]) | {"pull": None} == keys(documented["projects"][0]) | {
        "pull": None
    }
    assert actual["projects"][0]["pull"] is None

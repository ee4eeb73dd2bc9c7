"""pytest fixtures for the hostile tests: one project mirrored to ``local:`` or the fake Drive.

Import them into a test module (``from tests.chaos.fixtures import drive, scenario``);
``scenario("local")`` / ``scenario("gdrive")`` gives a project folder, a target, a
config and a way to start the real daemon against it.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.drive_limits import DEFAULT_CREATE_BURST, DEFAULT_CREATE_RATE
from tests.fakes.drive_server import FakeDrive

from .control import Daemon, cli, syncd_env, wait_quiet, write_config
from .targets import REMOTES as REMOTES
from .targets import DriveTarget, LocalTarget, drive_section, md5_file, write_drive_credentials


@pytest.fixture
def drive(home: Path) -> Iterator[FakeDrive]:
    with FakeDrive() as fake:
        yield fake
    assert fake.internal_errors == []


@dataclass
class Scenario:
    """One project ``p`` at ``src``, mirrored to ``target`` by daemons started from ``cfg``."""

    tmp: Path
    home: Path
    src: Path
    target: LocalTarget | DriveTarget
    cfg: Path
    project: dict[str, Any]
    top: dict[str, Any]
    daemons: list[Daemon] = field(default_factory=list)

    @property
    def remote(self) -> str:
        return self.target.kind

    def env(self, **extra: str) -> dict[str, str]:
        return syncd_env(**extra)

    def rewrite(self, **mirror: Any) -> None:
        """Change the project's mirror section and write the config again."""
        self.project["mirror"].update(mirror)
        write_config(self.cfg, [self.project], **self.top)

    def start(self, *, prefix: tuple[str, ...] = (), **env: str) -> Daemon:
        log = self.tmp / f"daemon-{len(self.daemons)}.log"
        d = Daemon(self.cfg, self.env(**env), log, prefix=prefix).start()
        self.daemons.append(d)
        d.wait_up()
        return d

    def quiet(self, d: Daemon, timeout: float = 60.0, **kw: Any) -> float:
        return wait_quiet(d, timeout=timeout, **kw)

    @contextmanager
    def set_up_unthrottled(self) -> Iterator[None]:
        """On the fake Drive, lift the creation limit for a test's set-up (its first
        mirror of many files or folders, not what it tests), then put the real pace
        (3 creations/s, bursts of 10) back for the rest of the test."""
        if not isinstance(self.target, DriveTarget):
            yield
            return
        self.target.fake.set_write_limit(rate=500.0, burst=200.0)
        try:
            yield
        finally:
            self.target.fake.set_write_limit(DEFAULT_CREATE_RATE, DEFAULT_CREATE_BURST)

    def cli(
        self, *args: str, timeout: float = 60.0, **env: str
    ) -> subprocess.CompletedProcess[str]:
        return cli(*args, "-c", str(self.cfg), env=self.env(**env), timeout=timeout)

    def src_tree(self, skip: tuple[str, ...] = (".git/",)) -> dict[str, str]:
        out = {}
        for dirpath, _dirs, names in os.walk(self.src):
            for name in names:
                full = Path(dirpath) / name
                rel = str(full.relative_to(self.src))
                if rel.startswith(skip) or full.is_symlink() or not full.is_file():
                    continue
                out[rel] = md5_file(full)
        return out

    def converged(self, skip: tuple[str, ...] = (".git/",)) -> bool:
        return self.target.live() == self.src_tree(skip)

    def diff(self, skip: tuple[str, ...] = (".git/",)) -> str:
        want, have = self.src_tree(skip), self.target.live()
        lost = sorted(set(want) - set(have))
        extra = sorted(set(have) - set(want))
        stale = sorted(p for p in set(want) & set(have) if want[p] != have[p])
        return f"lost={lost[:8]} extra={extra[:8]} stale={stale[:8]}"


@pytest.fixture
def scenario(
    tmp_path: Path, home: Path, request: pytest.FixtureRequest
) -> Iterator[Callable[..., Scenario]]:
    made: list[Scenario] = []

    def make(remote: str = "local", *, delay: str = "200ms", **mirror: Any) -> Scenario:
        src = tmp_path / "p"
        src.mkdir(exist_ok=True)
        top: dict[str, Any] = {}
        target: LocalTarget | DriveTarget
        if remote == "local":
            target = LocalTarget(tmp_path / "p-mirror")
        else:
            fake: FakeDrive = request.getfixturevalue("drive")
            creds = write_drive_credentials(fake, home / ".config/syncd/drive-credentials.json")
            top["drive"] = drive_section(fake, creds)
            target = DriveTarget(fake, "syncd/p")
        project = {
            "name": "p",
            "path": str(src),
            "mirror": {"to": target.address(), "delay": delay, **mirror},
        }
        cfg = write_config(tmp_path / "c.yaml", [project], **top)
        sc = Scenario(tmp_path, home, src, target, cfg, project, top)
        made.append(sc)
        return sc

    yield make
    for sc in made:
        for d in sc.daemons:
            d.kill()

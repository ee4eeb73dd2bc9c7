"""The control commands: one table of names, fields and timeouts, used by both ends.

``dispatch`` checks a request against the table and calls the ``Controller``;
the daemon's socket server calls it, and so does ``ControlClient`` in-process
when no daemon answers, so a request is checked the same way on both paths.
``ControlClient`` is what the CLI holds (Maestral's ``MaestralProxy(fallback=True)``):
it sends a command to the daemon of a config, with a deadline, and with
``fallback`` carries it out in this process when no daemon listens.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import SyncdError, UsageError
from .controller import Controller
from .ipc import DaemonNotAnswering, DaemonNotRunning, request, socket_path

QUICK_TIMEOUT_S = 10.0  # status, pause, resume, sync, stop: the daemon answers in milliseconds
SNAPSHOT_TIMEOUT_S = 7200.0  # a snapshot through the daemon answers when Kaggle is done
FLUSH_TIMEOUT_S = 60.0  # flush/colab without a `wait`: the daemon's own default (service.colab)


def quick_timeout() -> float:
    """``SYNCD_CONTROL_TIMEOUT_S`` (for slow machines and tests), else 10 s."""
    try:
        value = float(os.environ.get("SYNCD_CONTROL_TIMEOUT_S") or QUICK_TIMEOUT_S)
    except ValueError:
        return QUICK_TIMEOUT_S
    return value if 0 < value < 86400 else QUICK_TIMEOUT_S


OPTIONAL_TEXT = "a string or null"
FLAG = "true or false"
OPTIONAL_NUMBER = "a number or null"
TRAIN_TIMEOUT_S = 7200.0  # the daemon answers once the snapshot is ready and the push is done


@dataclass(frozen=True)
class Command:
    fields: dict[str, str]  # field name → OPTIONAL_TEXT | FLAG
    run: Callable[[Controller, dict[str, Any]], Any]
    timeout: Callable[[], float] = quick_timeout  # how long the client waits for the answer


COMMANDS: dict[str, Command] = {
    "status": Command({"project": OPTIONAL_TEXT}, lambda c, a: c.status(**a)),
    "pause": Command({"project": OPTIONAL_TEXT}, lambda c, a: c.pause(**a)),
    "resume": Command(
        {"project": OPTIONAL_TEXT, "confirm_deletes": FLAG}, lambda c, a: c.resume(**a)
    ),
    "sync": Command({"project": OPTIONAL_TEXT, "confirm_deletes": FLAG}, lambda c, a: c.sync(**a)),
    "snapshot": Command(
        {"project": OPTIONAL_TEXT, "message": OPTIONAL_TEXT, "force": FLAG, "wait": FLAG},
        lambda c, a: c.snapshot(**a),
        lambda: SNAPSHOT_TIMEOUT_S,
    ),
    "snapshots": Command({"project": OPTIONAL_TEXT}, lambda c, a: c.history(**a)),
    # The CLI waits `wait` + a quick timeout (cli/commands_colab.py); `wait` is seconds.
    "flush": Command(
        {"project": OPTIONAL_TEXT, "wait": OPTIONAL_NUMBER},
        lambda c, a: c.flush(**a),
        lambda: FLUSH_TIMEOUT_S + quick_timeout(),
    ),
    "colab": Command(
        {"project": OPTIONAL_TEXT, "wait": OPTIONAL_NUMBER},
        lambda c, a: c.colab(**a),
        lambda: FLUSH_TIMEOUT_S + quick_timeout(),
    ),
    "train": Command(
        {
            "project": OPTIONAL_TEXT,
            "message": OPTIONAL_TEXT,
            "gpu": OPTIONAL_TEXT,
            "command": OPTIONAL_TEXT,
        },  # fmt: skip
        lambda c, a: c.train(**a),
        lambda: TRAIN_TIMEOUT_S,
    ),
    # `train --wait` asks for a run's events and waits up to `wait` (≤ 25 s) for new ones.
    "runs": Command(
        {
            "project": OPTIONAL_TEXT,
            "run": OPTIONAL_TEXT,
            "after": OPTIONAL_NUMBER,
            "wait": OPTIONAL_NUMBER,
        },  # fmt: skip
        lambda c, a: c.runs(**a),
        lambda: 60.0,
    ),
    "runs_stop": Command({"run": OPTIONAL_TEXT}, lambda c, a: c.runs_stop(**a)),
    # A reload stops changed projects (each gets a few seconds to finish a copy).
    "reload": Command({}, lambda c, a: c.reload(), lambda: 3 * quick_timeout()),
    "stop": Command({}, lambda c, a: c.stop()),
    # Before a long request: is anybody there to carry it out?  (A stopped daemon would
    # otherwise hold a `snapshot --wait` for its whole timeout.)
    "ping": Command({}, lambda c, a: {"pong": True}),
}
ENVELOPE = ("cmd", "deadline")  # checked by the socket server (ipc)


def _checked(name: str, kind: str, value: Any) -> Any:
    if kind == FLAG and isinstance(value, bool):
        return value
    if kind == OPTIONAL_TEXT and (value is None or isinstance(value, str)):
        return value
    if kind == OPTIONAL_NUMBER and (
        value is None
        or (isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value < 1e9)
    ):
        return value
    raise UsageError(f'"{name}" must be {kind}')


def dispatch(controller: Controller, req: dict[str, Any]) -> Any:
    """Carry out one request (already a JSON object with a ``cmd`` string)."""
    name = req.get("cmd")
    command = COMMANDS.get(name) if isinstance(name, str) else None
    if command is None:
        known = ", ".join(COMMANDS)
        raise UsageError(f"unknown command {str(name)[:40]!r} (known: {known})")
    args = {}
    for key, value in req.items():
        if key in ENVELOPE:
            continue
        kind = command.fields.get(key)
        if kind is None:
            raise UsageError(f"{name!r} takes no field {str(key)[:40]!r}")
        args[key] = _checked(key, kind, value)
    return command.run(controller, args)


class ControlClient:
    """The controller of one config, as the CLI sees it: the daemon's, else this process's.

    ``fallback``: without a daemon, carry the command out here (``LocalHost``), as
    ``pause``/``resume``/``status``/``snapshot`` do; otherwise raise ``DaemonNotRunning``.
    Close it (or use ``with``) to release what the in-process path opened.
    """

    def __init__(
        self,
        config_path: Path,
        *,
        fallback: bool = True,
        progress: bool = False,
        busy_hint: str | None = None,
        not_running_hint: str | None = None,
    ) -> None:
        self.config_path = config_path
        self.fallback = fallback
        self.progress = progress
        self.busy_hint = busy_hint  # in-process: why a daemon holding the config is in the way
        self.not_running_hint = not_running_hint  # no fallback: what to do without a daemon
        self.in_process = False  # set once a command ran here because no daemon answered
        self._local: Any = None  # the LocalHost, opened on first need

    def __enter__(self) -> ControlClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def call(self, cmd: str, **fields: Any) -> Any:
        if not self.in_process:
            try:
                return self.remote(cmd, **fields)
            except DaemonNotRunning:
                if not self.fallback:
                    raise DaemonNotRunning(
                        f"syncd is not running for {self.config_path}",
                        self.not_running_hint
                        or "start it with `syncd run` or `syncd service install`",
                    ) from None
        self.in_process = True
        return self.local(cmd, **fields)

    def remote(self, cmd: str, timeout: float | None = None, **fields: Any) -> Any:
        """Over the socket only; a daemon that does not answer in time is one sentence."""
        if timeout is None:
            timeout = COMMANDS[cmd].timeout() if cmd in COMMANDS else quick_timeout()
        path = socket_path(self.config_path)
        waited = quick_timeout()
        try:
            if timeout > waited:
                request(path, "ping", timeout=waited)
            waited = timeout
            return request(path, cmd, timeout=timeout, **fields)
        except DaemonNotAnswering:
            pid = _daemon_pid(self.config_path)
            who, stuck = (f"syncd (pid {pid})", f"`kill {pid}`") if pid else ("syncd", "it")
            raise SyncdError(
                f"{who} did not answer `{cmd}` within {waited:g} s, and it drops a request "
                "that reaches it later, so nothing was done",
                f"if it stays stuck, restart {stuck}; raise SYNCD_CONTROL_TIMEOUT_S if it is "
                "only slow",
            ) from None

    def local(self, cmd: str, **fields: Any) -> Any:
        """In this process, through the same table and the same controller."""
        from .hosts import LocalHost

        if self._local is None:
            self._local = LocalHost(
                self.config_path, progress=self.progress, busy_hint=self.busy_hint
            )
        return dispatch(Controller(self._local), {"cmd": cmd, **fields})

    def close(self) -> None:
        if self._local is not None:
            self._local.close()
            self._local = None


def _daemon_pid(config_path: Path) -> int | None:
    from .lock import instance_lock

    try:
        return instance_lock(config_path).holder()
    except (OSError, ValueError):
        return None

"""Where the kaggle client finds credentials, what to say about them, and storing new ones.

Kaggle hands out two forms today: an API **token** (kaggle.com/settings/api, "Generate New
Token"), and the **legacy** key file `kaggle.json`. The client (kaggle 2.2.5
`KaggleApi.authenticate`, kagglesdk 0.1.38 `kaggle_env.get_access_token_from_env` and
`kaggle_http_client._try_fill_auth`) looks for them in this order, and so does
``locate_credentials``:

1. a token: ``KAGGLE_API_TOKEN`` (the token itself, or the path of a file holding it),
   then ``~/.kaggle/access_token``, then ``~/.kaggle/access_token.txt``; always under
   ``~/.kaggle``, whatever ``KAGGLE_CONFIG_DIR`` says. It counts only if Kaggle's token
   introspection calls it active, but a token that is found is sent with *every* request,
   so a stale one makes a good legacy key fail too;
2. a legacy key: ``kaggle.json`` in ``KAGGLE_CONFIG_DIR`` (else ``~/.kaggle``, else on
   Linux ``$XDG_CONFIG_HOME/kaggle`` when ``~/.kaggle`` does not exist), with
   ``KAGGLE_USERNAME`` / ``KAGGLE_KEY`` overriding its fields one by one;
3. the OAuth login of ``kaggle auth login`` (``~/.kaggle/credentials.json``).

No secret is ever returned or logged here: only where things are and what is wrong.
A systemd/launchd service does not see variables exported in a shell, so files are
what a daemon can rely on; ``store_token`` and ``store_legacy`` write them owner-only.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ...errors import ConfigError

TOKEN_URL = "https://www.kaggle.com/settings/api"
BOTH_FORMS = (
    "an API token (KAGGLE_API_TOKEN or ~/.kaggle/access_token) or a legacy key "
    "(~/.kaggle/kaggle.json or KAGGLE_USERNAME/KAGGLE_KEY)"
)
HOW_TO_STORE = (
    f"create an API token at {TOKEN_URL} and store it with `syncd auth kaggle -` (paste it), "
    "or store a legacy key with `syncd auth kaggle path/to/kaggle.json`"
)


@dataclass(frozen=True)
class CredentialSource:
    """One credential the client would find; never the secret itself."""

    kind: str  # "token" | "legacy" | "oauth"
    where: str  # "KAGGLE_API_TOKEN", "~/.kaggle/access_token", "KAGGLE_USERNAME/KAGGLE_KEY", ...
    username: str | None = None  # legacy keys name their user; tokens do not
    problem: str | None = None  # why the client cannot use it ("empty", "has no key", ...)

    @property
    def usable(self) -> bool:
        return self.problem is None


@dataclass(frozen=True)
class CredentialReport:
    sources: tuple[CredentialSource, ...]  # in the client's order of precedence
    config_dir: Path  # where the client reads kaggle.json

    @property
    def chosen(self) -> CredentialSource | None:
        """What the client will try first (a token it then finds inactive is skipped)."""
        return next((s for s in self.sources if s.usable), None)

    @property
    def token(self) -> CredentialSource | None:
        return next((s for s in self.sources if s.kind == "token" and s.usable), None)

    def describe(self) -> str:
        if not self.sources:
            return f"no Kaggle credentials found: syncd needs {BOTH_FORMS}"
        parts = []
        for s in self.sources:
            what = {"token": "API token", "legacy": "legacy key", "oauth": "OAuth login"}[s.kind]
            who = f" for {s.username}" if s.username else ""
            state = f" (unusable: {s.problem})" if s.problem else ""
            parts.append(f"{what}{who} in {s.where}{state}")
        return "Kaggle credentials: " + "; ".join(parts)


def tilde(path: Path | str) -> str:
    home = os.path.expanduser("~")
    text = str(path)
    return "~" + text[len(home) :] if home != "/" and text.startswith(home + os.sep) else text


def config_dir() -> Path:
    """The folder the client reads kaggle.json from (kaggle_api_extended.py, KaggleApi)."""
    folder = os.environ.get("KAGGLE_CONFIG_DIR") or ""
    if not folder:
        folder = os.path.join(os.path.expanduser("~"), ".kaggle")
        if sys.platform.startswith("linux") and not os.path.exists(folder):
            xdg = os.environ.get("XDG_CONFIG_HOME") or os.path.expanduser("~/.config")
            folder = os.path.join(xdg, "kaggle")
    return Path(folder)


def token_path() -> Path:
    """Where the client reads a token file: always ~/.kaggle (kagglesdk kaggle_env.py)."""
    return Path(os.path.expanduser("~/.kaggle")) / "access_token"


def _file_problem(path: Path) -> str | None:
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        return f"cannot be read ({exc.strerror})"
    if mode & 0o077:
        return f"readable by other users (run chmod 600 {tilde(path)})"
    return None


def _token_sources() -> list[CredentialSource]:
    found = []
    value = os.environ.get("KAGGLE_API_TOKEN")
    if value:
        if Path(value).exists():
            text = Path(value).read_text(errors="replace").strip() if Path(value).is_file() else ""
            problem = None if text else "names an empty file"
            found.append(
                CredentialSource("token", f"KAGGLE_API_TOKEN ({tilde(value)})", None, problem)
            )
        else:
            found.append(CredentialSource("token", "KAGGLE_API_TOKEN"))
    for path in (token_path(), token_path().with_name("access_token.txt")):
        if path.exists():
            try:
                empty = not path.read_text(errors="replace").strip()
            except OSError as exc:
                found.append(CredentialSource("token", tilde(path), None, exc.strerror))
                continue
            problem = "empty" if empty else _file_problem(path)
            found.append(CredentialSource("token", tilde(path), None, problem))
    return found


def _legacy_source() -> CredentialSource | None:
    path = config_dir() / "kaggle.json"
    values: dict[str, str] = {}
    problem = None
    if path.exists():
        try:
            loaded = json.loads(path.read_text() or "{}")
            values = {k: str(v) for k, v in loaded.items()} if isinstance(loaded, dict) else {}
        except (OSError, ValueError):
            problem = "not valid JSON"
    env_user, env_key = os.environ.get("KAGGLE_USERNAME"), os.environ.get("KAGGLE_KEY")
    if not path.exists() and not env_user and not env_key:
        return None
    # The client overrides the file's fields with KAGGLE_* variables one by one.
    user = env_user or values.get("username")
    key = env_key or values.get("key")
    if env_user and env_key:
        where = "KAGGLE_USERNAME/KAGGLE_KEY"
    elif env_user or env_key:
        where = f"{tilde(path)} with {'KAGGLE_USERNAME' if env_user else 'KAGGLE_KEY'}"
    else:
        where = tilde(path)
    if problem is None and (not user or not key):
        problem = "has no username" if not user else "has no key"
    if problem is None and path.exists() and not (env_user and env_key):
        problem = _file_problem(path)
    return CredentialSource("legacy", where, user, problem)


def locate_credentials() -> CredentialReport:
    """Every credential the client would find, in its order of precedence; no secrets."""
    sources = _token_sources()
    legacy = _legacy_source()
    if legacy is not None:
        sources.append(legacy)
    oauth = Path(os.path.expanduser("~/.kaggle/credentials.json"))
    if oauth.exists():
        sources.append(CredentialSource("oauth", tilde(oauth)))
    return CredentialReport(tuple(sources), config_dir())


def _write_private(path: Path, text: str) -> Path:
    """Write owner-only, atomically: the folder 0700, the file 0600 from its first byte."""
    if not path.parent.exists():
        path.parent.mkdir(mode=0o700, parents=True)
        path.parent.chmod(0o700)  # whatever the umask
    fd, tmp = tempfile.mkstemp(prefix=".syncd-", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as out:
            out.write(text)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def store_token(text: str) -> Path:
    """Save an API token where the client reads it (~/.kaggle/access_token, 0600)."""
    token = text.strip()
    if not token or any(c.isspace() for c in token) or token.startswith("{"):
        raise ConfigError(
            "that is not a Kaggle API token (one word, like KGAT_...)",
            f"copy the token shown at {TOKEN_URL} after 'Generate New Token'",
        )
    legacy_before = config_dir() / "kaggle.json"
    saved = _write_private(token_path(), token + "\n")
    _keep_legacy_visible(legacy_before)
    return saved


def _keep_legacy_visible(legacy: Path) -> None:
    """A kaggle.json the client read from $XDG_CONFIG_HOME/kaggle stops being read once
    ~/.kaggle exists (the client prefers that folder): copy it there, so storing a token
    never silently hides a working legacy key."""
    now = config_dir() / "kaggle.json"
    if now != legacy and legacy.is_file() and not now.exists():
        _write_private(now, legacy.read_text(errors="replace"))


def store_legacy(username: str, key: str) -> Path:
    """Save a legacy key as kaggle.json where the client reads it (0600, folder 0700)."""
    if not username.strip() or not key.strip():
        raise ConfigError(
            "a Kaggle legacy key needs both a username and a key", "download kaggle.json again"
        )
    body = json.dumps({"username": username.strip(), "key": key.strip()})
    return _write_private(config_dir() / "kaggle.json", body + "\n")


def store_from(source: str, read_secret: Callable[[], str] | None = None) -> str:
    """For ``syncd auth kaggle SOURCE``: store what SOURCE holds (a kaggle.json, a file with
    a token, or ``-``: a token typed or piped on stdin); the sentence to print."""
    if source == "-":
        text = (read_secret or _read_stdin)()
        name = "the token"
    else:
        path = Path(source).expanduser()
        if not path.is_file():
            raise ConfigError(
                f"{source} is not a file", "give a kaggle.json, or - to paste a token"
            )
        text = path.read_text(errors="replace")
        name = tilde(path)
    if text.lstrip().startswith("{"):
        saved = store_legacy(*_legacy_fields(text, name))
        what = "legacy key"
    else:
        saved = store_token(text)
        what = "API token"
    note = ""
    shadow = [n for n in ("KAGGLE_API_TOKEN", "KAGGLE_USERNAME", "KAGGLE_KEY") if os.environ.get(n)]
    if shadow:
        note = f"; {'/'.join(shadow)} set in this shell take precedence over it"
    return f"Saved the {what} to {tilde(saved)} (mode 0600){note}."


def _legacy_fields(text: str, name: str) -> tuple[str, str]:
    try:
        data = json.loads(text)
        return str(data["username"]), str(data["key"])
    except (ValueError, KeyError, TypeError):
        raise ConfigError(
            f'{name} is not a kaggle.json (it needs "username" and "key")',
            f"download it again from {TOKEN_URL}",
        ) from None


def _read_stdin() -> str:
    if sys.stdin.isatty():
        import getpass

        return getpass.getpass("Kaggle API token (not shown): ")
    return sys.stdin.read()


def doctor_checks() -> list[tuple[str, str]]:
    """``syncd doctor``'s view, as the service will see it: a systemd/launchd service does
    not inherit variables exported in a shell, so only files count for the daemon."""
    report = locate_credentials()
    checks: list[tuple[str, str]] = []
    for s in report.sources:
        if s.problem:
            checks.append(("warn", f"Kaggle credentials in {s.where} are unusable: {s.problem}"))
    if report.chosen is None:
        checks.append(
            ("fail", f"no usable Kaggle credentials: syncd needs {BOTH_FORMS} ({HOW_TO_STORE})")
        )
        return checks
    what = {"token": "API token", "legacy": "legacy key", "oauth": "OAuth login"}
    chosen = report.chosen
    checks.append(
        ("ok", f"Kaggle {what[chosen.kind]} in {chosen.where} (the client uses it first)")
    )
    in_files = [s for s in report.sources if s.usable and not s.where.startswith("KAGGLE_")]
    if chosen.where.startswith("KAGGLE_") and not in_files:
        checks.append(
            (
                "warn",
                f"Kaggle credentials come only from {chosen.where.split(' ')[0]}, which a "
                "systemd/launchd service does not see (store them in a file with "
                "`syncd auth kaggle`)",
            )
        )
    return checks

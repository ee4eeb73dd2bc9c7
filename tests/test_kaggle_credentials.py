"""Kaggle credentials: where the client finds them, storing new ones, and what syncd says
when they are missing or rejected (the real client against the fake)."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from syncd.errors import AuthRequired, ConfigError, TransientError
from syncd.remotes.kaggle.client import KaggleDatasets
from syncd.remotes.kaggle.credentials import (
    doctor_checks,
    locate_credentials,
    store_from,
    store_legacy,
    store_token,
)
from syncd.snapshot.service import check_kaggle_credentials
from tests.fakes.kaggle_server import FakeKaggle

from .kaggle_support import KEY, USER, kaggle_config

BOTH = "API token (KAGGLE_API_TOKEN or ~/.kaggle/access_token)"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def use(fake: FakeKaggle, home: Path, monkeypatch: pytest.MonkeyPatch, kind: str) -> None:
    for name, value in fake.credentials_env(kind, home).items():
        monkeypatch.setenv(name, value)


def no_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KAGGLE_USERNAME", raising=False)
    monkeypatch.delenv("KAGGLE_KEY", raising=False)


# --- where the client looks ---------------------------------------------------------------


def test_sources_are_listed_in_the_clients_order(
    kaggle_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kagglesdk.kaggle_env import get_access_token_from_env

    assert [s.where for s in locate_credentials().sources] == ["KAGGLE_USERNAME/KAGGLE_KEY"]
    store_legacy("bob", "k2")
    monkeypatch.delenv("KAGGLE_KEY")  # the file's key, the variable's user: the client mixes
    store_token("KGAT_file")
    monkeypatch.setenv("KAGGLE_API_TOKEN", "KGAT_env")

    report = locate_credentials()

    assert [(s.kind, s.where, s.username) for s in report.sources] == [
        ("token", "KAGGLE_API_TOKEN", None),
        ("token", "~/.kaggle/access_token", None),
        ("legacy", "~/.kaggle/kaggle.json with KAGGLE_USERNAME", USER),
    ]
    assert report.chosen is not None and report.chosen.where == "KAGGLE_API_TOKEN"
    assert get_access_token_from_env() == ("KGAT_env", "KAGGLE_API_TOKEN")  # agrees
    monkeypatch.delenv("KAGGLE_API_TOKEN")
    assert locate_credentials().chosen.where == "~/.kaggle/access_token"  # type: ignore[union-attr]
    assert get_access_token_from_env() == ("KGAT_file", "access_token")
    assert "KGAT" not in report.describe() and "k2" not in report.describe()  # no secrets


def test_kaggle_api_token_may_name_a_file(
    kaggle_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    token_file = kaggle_env / "secrets" / "kaggle-token"
    token_file.parent.mkdir()
    token_file.write_text("KGAT_in_a_file\n")
    monkeypatch.setenv("KAGGLE_API_TOKEN", str(token_file))

    first = locate_credentials().sources[0]

    assert (first.kind, first.where, first.usable) == (
        "token",
        "KAGGLE_API_TOKEN (~/secrets/kaggle-token)",
        True,
    )


def test_unusable_files_say_why(kaggle_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    no_credentials(monkeypatch)
    folder = kaggle_env / ".kaggle"
    folder.mkdir(exist_ok=True)
    (folder / "kaggle.json").write_text(json.dumps({"username": USER, "key": KEY}))
    (folder / "kaggle.json").chmod(0o644)
    (folder / "access_token").write_text("\n")

    problems = [(s.where, s.problem) for s in locate_credentials().sources]

    assert problems == [
        ("~/.kaggle/access_token", "empty"),
        ("~/.kaggle/kaggle.json", "readable by other users (run chmod 600 ~/.kaggle/kaggle.json)"),
    ]


# --- storing ----------------------------------------------------------------------------------


def test_a_token_is_stored_owner_only_where_the_client_reads_it(
    kaggle_env: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path / "elsewhere"))  # not for tokens

    saved = store_token("  KGAT_0123456789abcdef\n")

    assert saved == kaggle_env / ".kaggle" / "access_token"
    assert saved.read_text() == "KGAT_0123456789abcdef\n"
    assert (mode(saved), mode(saved.parent)) == (0o600, 0o700)
    for bad in ("", "two words", '{"username": "a"}'):
        with pytest.raises(ConfigError):
            store_token(bad)


def test_a_legacy_key_is_stored_in_the_config_dir(
    kaggle_env: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path / "conf" / "kaggle"))

    saved = store_legacy(USER, KEY)

    assert saved == tmp_path / "conf" / "kaggle" / "kaggle.json"
    assert json.loads(saved.read_text()) == {"username": USER, "key": KEY}
    assert (mode(saved), mode(saved.parent)) == (0o600, 0o700)
    # Without KAGGLE_CONFIG_DIR and without ~/.kaggle, Linux clients read XDG_CONFIG_HOME.
    monkeypatch.delenv("KAGGLE_CONFIG_DIR")
    assert store_legacy(USER, KEY) == Path(os.environ["XDG_CONFIG_HOME"]) / "kaggle" / "kaggle.json"


def test_storing_a_token_keeps_an_xdg_kaggle_json_readable(
    kaggle_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # ~/.config/kaggle/kaggle.json is read only while ~/.kaggle does not exist; storing a
    # token creates ~/.kaggle, so the legacy key is copied along instead of going dark.
    monkeypatch.delenv("KAGGLE_CONFIG_DIR", raising=False)
    assert not (kaggle_env / ".kaggle").exists()
    xdg_key = store_legacy(USER, KEY)
    assert xdg_key.parent == Path(os.environ["XDG_CONFIG_HOME"]) / "kaggle"

    store_token("KGAT_0123456789abcdef")

    copied = kaggle_env / ".kaggle" / "kaggle.json"
    assert json.loads(copied.read_text()) == {"username": USER, "key": KEY}
    assert mode(copied) == 0o600
    legacy = [s for s in locate_credentials().sources if s.kind != "token"]
    assert legacy and legacy[0].username == USER


def test_store_from_a_downloaded_file_or_stdin(
    kaggle_env: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    no_credentials(monkeypatch)
    download = tmp_path / "kaggle.json"
    download.write_text(json.dumps({"username": USER, "key": KEY}))

    assert store_from(str(download)) == (
        "Saved the legacy key to ~/.kaggle/kaggle.json (mode 0600)."
    )
    monkeypatch.setenv("KAGGLE_API_TOKEN", "KGAT_old")
    assert store_from("-", read_secret=lambda: "KGAT_new\n") == (
        "Saved the API token to ~/.kaggle/access_token (mode 0600); "
        "KAGGLE_API_TOKEN set in this shell take precedence over it."
    )
    with pytest.raises(ConfigError, match="is not a file"):
        store_from(str(tmp_path / "missing.json"))


# --- authenticating through syncd -------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "sentence"),
    [
        ("env_token", "API token from KAGGLE_API_TOKEN"),
        ("token_file", "API token from ~/.kaggle/access_token"),
        ("kaggle_json", "legacy key from ~/.kaggle/kaggle.json"),
        ("env_key", "legacy key from KAGGLE_USERNAME/KAGGLE_KEY"),
    ],
)
def test_every_credential_form_works(
    fake: FakeKaggle, kaggle_env: Path, monkeypatch: pytest.MonkeyPatch, kind: str, sentence: str
) -> None:
    no_credentials(monkeypatch)
    use(fake, kaggle_env, monkeypatch, kind)

    assert check_kaggle_credentials(kaggle_config(fake)) == (
        f"Kaggle credentials for alice work ({sentence})"
    )
    scheme = "Bearer" if "token" in kind else "Basic"
    assert fake.requests[-1].auth_scheme == scheme and fake.requests[-1].user == USER


def test_missing_credentials_are_one_sentence_naming_both_forms(
    fake: FakeKaggle, kaggle_env: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    no_credentials(monkeypatch)

    with pytest.raises(AuthRequired) as caught:
        KaggleDatasets(kaggle_config(fake))

    assert str(caught.value) == (
        "no Kaggle credentials found: syncd needs an API token (KAGGLE_API_TOKEN or "
        "~/.kaggle/access_token) or a legacy key (~/.kaggle/kaggle.json or "
        "KAGGLE_USERNAME/KAGGLE_KEY) (create an API token at https://www.kaggle.com/settings/api "
        "and store it with `syncd auth kaggle -` (paste it), or store a legacy key with "
        "`syncd auth kaggle path/to/kaggle.json`)"
    )
    assert capsys.readouterr().out == ""  # the client's help text was not printed
    assert fake.requests == []


@pytest.mark.parametrize("reply", [401, "inactive"])
def test_a_rejected_token_is_one_sentence_not_an_attribute_error(
    fake: FakeKaggle, kaggle_env: Path, monkeypatch: pytest.MonkeyPatch, reply: int | str
) -> None:
    # Before: the introspection's HTTPError reached the error path before `username` was
    # set: "AttributeError: 'KaggleDatasets' object has no attribute 'username'".
    fake.inactive_token_reply = reply
    no_credentials(monkeypatch)
    monkeypatch.setenv("KAGGLE_API_TOKEN", "KGAT_revoked")

    with pytest.raises(AuthRequired) as caught:
        KaggleDatasets(kaggle_config(fake))

    message = str(caught.value)
    assert message.startswith("Kaggle rejected the API token in KAGGLE_API_TOKEN (create ")
    assert "`syncd auth kaggle -`" in message and "legacy key" in message
    assert "\n" not in message


def test_a_stale_token_shadowing_a_good_key_is_named(
    fake: FakeKaggle, kaggle_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake.inactive_token_reply = "inactive"  # the client skips it, then sends it anyway
    store_token("KGAT_expired")

    with pytest.raises(AuthRequired) as caught:
        check_kaggle_credentials(kaggle_config(fake))

    assert str(caught.value).startswith(
        "Kaggle rejected the stale API token in ~/.kaggle/access_token, which the kaggle "
        "client sends instead of the legacy key in KAGGLE_USERNAME/KAGGLE_KEY (delete it, "
    )


def test_a_wrong_legacy_key_is_named(
    fake: FakeKaggle, kaggle_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KAGGLE_KEY", "wrong")
    with pytest.raises(AuthRequired) as caught:
        check_kaggle_credentials(kaggle_config(fake))
    assert str(caught.value).startswith(
        "Kaggle rejected the legacy key for alice in KAGGLE_USERNAME/KAGGLE_KEY (create an API "
    )


def test_throttled_token_introspection_is_retried(
    fake: FakeKaggle, kaggle_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    no_credentials(monkeypatch)
    use(fake, kaggle_env, monkeypatch, "env_token")
    fake.inject(status=429, rpc="IntrospectToken", html=True, retry_after=0)
    fake.inject(status=503, rpc="IntrospectToken")

    client = KaggleDatasets(kaggle_config(fake))

    assert client.username == USER
    assert [r.status for r in fake.requests if r.rpc == "IntrospectToken"] == [429, 503, 200]

    fake.inject(status=503, count=10, rpc="IntrospectToken", html=True)
    with pytest.raises(TransientError) as caught:
        KaggleDatasets(kaggle_config(fake))
    assert str(caught.value) == (
        "Kaggle is unavailable (HTTP 503) while checking the Kaggle credentials (4 attempts) "
        "(syncd tries again at the next trigger)"
    )


def test_doctor_judges_credentials_as_the_service_will_see_them(
    kaggle_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # kaggle_env exports KAGGLE_USERNAME/KAGGLE_KEY: a service would not see them.
    levels = [level for level, _ in doctor_checks()]
    assert levels == ["ok", "warn"]
    assert "a systemd/launchd service does not see" in doctor_checks()[1][1]

    store_token("KGAT_abc")
    assert doctor_checks() == [
        ("ok", "Kaggle API token in ~/.kaggle/access_token (the client uses it first)")
    ]

    no_credentials(monkeypatch)
    (kaggle_env / ".kaggle" / "access_token").write_text("")
    checks = doctor_checks()
    assert [level for level, _ in checks] == ["warn", "fail"]
    assert checks[1][1].startswith("no usable Kaggle credentials: syncd needs an API token")

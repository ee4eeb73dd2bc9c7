"""The Kaggle fake's accounts, driven by the real client: legacy keys and API tokens."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.fakes.kaggle_server import FakeKaggle

from .kaggle_support import DATASET, KEY, USER, make_api, running_fake


@pytest.fixture
def fake() -> Iterator[FakeKaggle]:
    yield from running_fake()


def use(fake: FakeKaggle, home: Path, monkeypatch: pytest.MonkeyPatch, kind: str) -> None:
    for name, value in fake.credentials_env(kind, home).items():
        monkeypatch.setenv(name, value)


def introspections_then(requests: list) -> tuple:
    """The first introspection and the last request; everything before the last is an
    introspection (kaggle 2.2.5 introspects once or twice, depending on what the client
    already set up in this process — the count is the client's, not the service's)."""
    assert len(requests) >= 2, requests
    assert all(r.rpc == "IntrospectToken" for r in requests[:-1]), requests
    return requests[0], requests[-1]


@pytest.mark.parametrize("kind", ["env_token", "token_file"])
def test_an_api_token_is_introspected_then_sent_as_bearer(
    fake: FakeKaggle, kaggle_home: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    fake.seed_dataset(DATASET, {"a.py": b"1"})
    use(fake, kaggle_home, monkeypatch, kind)
    if kind == "token_file":
        token_file = kaggle_home / ".kaggle" / "access_token"
        assert (
            token_file.read_text().startswith("KGAT_")
            and token_file.stat().st_mode & 0o777 == 0o600
        )

    with fake.patch_endpoint():
        api = make_api(kaggle_home, monkeypatch, key=None)
        assert api.dataset_status(DATASET) == "ready"

    assert api.config_values["username"] == USER
    assert api.config_values["auth_method"] == "ACCESS_TOKEN"
    introspect, status = introspections_then(fake.requests)
    assert (introspect.rpc, introspect.auth_scheme, introspect.status) == (
        "IntrospectToken",
        "Bearer",
        200,
    )
    assert introspect.body["token"].startswith("KGAT_")
    assert (status.rpc, status.auth_scheme, status.user) == ("GetDatasetStatus", "Bearer", USER)


def test_a_legacy_kaggle_json_is_sent_as_basic_auth(
    fake: FakeKaggle, kaggle_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake.seed_dataset(DATASET, {"a.py": b"1"})
    use(fake, kaggle_home, monkeypatch, "kaggle_json")
    saved = json.loads((kaggle_home / ".kaggle" / "kaggle.json").read_text())
    assert saved == {"username": USER, "key": KEY}

    with fake.patch_endpoint():
        api = make_api(kaggle_home, monkeypatch, key=None)
        assert api.dataset_status(DATASET) == "ready"

    assert [(r.rpc, r.auth_scheme, r.user) for r in fake.requests] == [
        ("GetDatasetStatus", "Basic", USER)
    ]


def test_a_revoked_token_fails_authenticate_by_default(
    fake: FakeKaggle, kaggle_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    use(fake, kaggle_home, monkeypatch, "env_token")
    fake.revoke_token(os.environ["KAGGLE_API_TOKEN"])
    monkeypatch.setenv("KAGGLE_USERNAME", USER)
    monkeypatch.setenv("KAGGLE_KEY", KEY)  # a good legacy key does not help

    with fake.patch_endpoint(), pytest.raises(requests.HTTPError) as caught:
        make_api(kaggle_home, monkeypatch, key=None)

    assert caught.value.response.status_code == 401
    assert [(r.rpc, r.status) for r in fake.requests] == [("IntrospectToken", 401)]


@pytest.mark.parametrize("reply", ["inactive", 400, 403, 404])
def test_a_token_the_client_ignores_is_still_sent_instead_of_the_key(
    fake: FakeKaggle, kaggle_home: Path, monkeypatch: pytest.MonkeyPatch, reply: int | str
) -> None:
    # The client falls back to the legacy key at authenticate(), but every later request
    # still carries the (stale) token: kagglesdk looks for a token first.
    fake.inactive_token_reply = reply
    fake.seed_dataset(DATASET, {"a.py": b"1"})
    (kaggle_home / ".kaggle" / "access_token").write_text("expired-token")
    with fake.patch_endpoint():
        api = make_api(kaggle_home, monkeypatch)  # right key
        assert api.config_values["auth_method"] == "LEGACY_API_KEY"
        with pytest.raises(requests.HTTPError) as caught:
            api.dataset_status(DATASET)
    assert caught.value.response.status_code == 401
    introspect, status = introspections_then(fake.requests)
    expected = 200 if reply == "inactive" else reply
    assert (introspect.rpc, introspect.status) == ("IntrospectToken", expected)
    assert (status.auth_scheme, status.user, status.status) == ("Bearer", None, 401)


def test_bad_credentials_are_401(
    fake: FakeKaggle, kaggle_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake.seed_dataset(DATASET, {"a.py": b"1"})
    with fake.patch_endpoint():
        api = make_api(kaggle_home, monkeypatch, key="wrong")
        with pytest.raises(requests.HTTPError) as caught:
            api.dataset_status(DATASET)
        assert caught.value.response.status_code == 401
        # kernels_status and kernels_output turn 401/403 into a ValueError about slugs.
        with pytest.raises(ValueError, match="Permission 'kernels.get' was denied"):
            api.kernels_status("alice/cifar-train")

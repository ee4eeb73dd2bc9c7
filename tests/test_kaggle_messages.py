"""Kaggle failures as log lines and errors: one line, never cut mid-word (issue #11)."""

from __future__ import annotations

import socket

import pytest
import requests

from syncd.remotes.kaggle.rules import clip, short


def _refused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed again: connecting is refused


def test_a_refused_connection_names_the_host_and_the_reason() -> None:
    with pytest.raises(requests.ConnectionError) as info:
        requests.get(f"http://127.0.0.1:{_refused_port()}/v1/datasets", timeout=5)
    assert len(str(info.value)) > 150  # urllib3's own text: pools, reprs, the url
    assert short(info.value) == "cannot reach 127.0.0.1: Connection refused"


def test_a_long_message_is_cut_at_a_word_and_marked() -> None:
    text = "the dataset alice/cifar-code could not be versioned because " * 10
    line = short(RuntimeError(text), limit=80)
    assert len(line) <= 80
    assert line.endswith("…")
    assert text.startswith(line[:-1])
    assert text[len(line) - 1] == " "  # the cut fell between two words


def test_short_text_is_left_alone() -> None:
    assert clip("HTTP 429 Too Many Requests", 200) == "HTTP 429 Too Many Requests"

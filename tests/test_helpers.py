"""The tests' own checks can fail: stdout that is not all Singer messages fails a test."""

from __future__ import annotations

import pytest

from tap_amplemarket.client import AmplemarketStream
from tests.conftest import parse_messages, stdout_messages, sync

STATE = '{"type":"STATE","value":{}}'


def test_singer_messages_are_parsed():
    assert parse_messages(f"{STATE}\n{STATE}\n") == [{"type": "STATE", "value": {}}] * 2


@pytest.mark.parametrize(
    "stray",
    [
        "hello",
        "",
        "[1]",
        "{}",
        '{"type":"LOG","message":"x"}',
        '{"type":"RECORD","stream":"s"}',
        '{"type":"STATE","value":{},"note":1}',
    ],
)
def test_a_stdout_line_that_is_no_singer_message_fails(stray):
    with pytest.raises(AssertionError, match="stdout line 2"):
        parse_messages(f"{STATE}\n{stray}\n{STATE}\n")


def test_discover_must_print_a_catalog():
    assert stdout_messages(["--discover"], '{"streams": []}') == []
    with pytest.raises(AssertionError):
        stdout_messages(["--discover"], '{"type": "STATE", "value": {}}')


def test_a_stray_print_on_the_singer_path_fails_sync(config, monkeypatch):
    post_process = AmplemarketStream.post_process

    def noisy(self, row, context=None):
        print("debug:", row.get("id"))
        return post_process(self, row, context)

    monkeypatch.setattr(AmplemarketStream, "post_process", noisy)
    with pytest.raises(AssertionError, match="is no Singer message"):
        sync(config)

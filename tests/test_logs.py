"""Logs a person can trust: counts per window and partition, progress, a summary per stream."""

from __future__ import annotations

import datetime
import logging
import os
import pathlib
import re

import pytest

from tap_amplemarket import progress
from tests.conftest import config_for, run_cli, sync
from tests.fake_api import FakeAmplemarketAPI, sample_dataset

UTC = datetime.timezone.utc


def lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "METRIC" not in line]


def test_a_normal_run_logs_no_warning_and_a_summary_per_stream(api, config, tmp_path):
    result = run_cli([], config, tmp_path)

    assert result.returncode == 0, result.stderr[-2000:]
    log = lines(result.stderr)
    warnings = [line for line in log if "WARNING" in line or "ERROR" in line]
    # Not about the API: the SDK's notice that the interpreter is past its end of life (3.10).
    assert [line for line in warnings if "SingerSDKPythonEOLWarning" not in line] == []
    for stream in ("calls", "users", "tasks", "lead_list_entries", "accounts"):
        summary = next(line for line in log if re.search(rf"\| {stream}: [\d,]+ records?, ", line))
        records = int(re.search(r": ([\d,]+) records?", summary).group(1).replace(",", ""))
        assert records == len(result.records(stream)), summary
        assert "requests" in summary or "1 request " in summary


def test_pages_are_counted_per_partition_at_debug_and_no_line_per_window(api, config, tmp_path):
    debug = {"TAP_AMPLEMARKET_LOGLEVEL": "DEBUG"}
    result = run_cli([], {**config, "page_size": 5}, tmp_path, env=debug)

    log = lines(result.stderr)
    assert not [line for line in log if "calls: window" in line], "no line per window"
    per_user = [
        line for line in log if re.search(r"tasks \[user_id=[^\]]+\]: 7 records in 2 pages", line)
    ]
    assert len(per_user) == len(api.data.users), "page 1 of each user is page 1, not page 7"
    assert len(api.requests_to("/tasks")) == 2 * len(api.data.users), "no empty page asked for"


def test_a_long_read_of_calls_says_how_far_it_has_come(api, config, monkeypatch, caplog):
    monkeypatch.setattr(progress, "PROGRESS_SECONDS", 0.0)  # a line at every window
    caplog.set_level(logging.INFO)

    sync({**config, "page_size": 2})

    reports = [r.getMessage() for r in caplog.records if "records read" in r.getMessage()]
    assert len(reports) >= 3, "a line after each checkpoint (PROGRESS_SECONDS is 0)"
    last = reports[-1]
    assert re.search(
        r"calls: [\d,]+ records read; every window read up to \S+Z of \[\S+Z, "
        r"2026-06-02T00:00:00Z\); about \d+ (s|min) left at this pace",
        last,
    )


@pytest.fixture
def tiny_api():
    with FakeAmplemarketAPI(sample_dataset(20), api_key="test-api-key") as server:
        yield server


def test_retries_and_rate_limit_waits_show_in_the_summary(tiny_api, tmp_path):
    tiny_api.fail_next("429", times=2, path="/users", retry_after="1")

    result = run_cli([], config_for(tiny_api), tmp_path)

    summary = next(line for line in lines(result.stderr) if "| users: 3 records" in line)
    assert "3 requests (2 retried, rate-limited 2 s)" in summary


DOC = pathlib.Path(__file__).parent.parent / "docs" / "logs.md"
START, END = "<!-- run:start -->\n```text\n", "```\n<!-- run:end -->"


def comparable(line: str) -> str:
    """A log line less what changes from run to run: its time, and durations."""
    line = re.sub(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} ", "", line)
    return re.sub(r"\b\d+\.\d s\b", "0.0 s", line)


def test_docs_logs_md_shows_the_lines_of_a_real_run(tmp_path):
    """docs/logs.md quotes a default run's log; UPDATE_DOCS=1 rewrites it from this run."""
    data = sample_dataset(1000, users=3, days=60, end=datetime.datetime(2026, 6, 1, tzinfo=UTC))
    with FakeAmplemarketAPI(data, api_key="demo-api-key") as api:
        config = {"api_key": api.api_key, "api_url": api.url}
        dates = {"start_date": "2026-04-01T00:00:00Z", "end_date": "2026-06-02T00:00:00Z"}
        result = run_cli([], {**config, **dates}, tmp_path)

    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stderr.replace(api.url, "http://127.0.0.1:8000").splitlines()
    text = DOC.read_text()
    before, rest = text.split(START, 1)
    quoted, after = rest.split(END, 1)
    if os.environ.get("UPDATE_DOCS"):
        DOC.write_text(before + START + "\n".join(lines) + "\n" + END + after)
        return
    assert [comparable(line) for line in quoted.splitlines()] == [
        comparable(line) for line in lines
    ], "docs/logs.md is not what a run prints: UPDATE_DOCS=1 pytest tests/test_logs.py"

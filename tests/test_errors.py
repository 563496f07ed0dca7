"""Bad keys, bad settings and rejected requests end in one clear line; the key never shows."""

from __future__ import annotations

import re

import pytest

from tests.conftest import SECRET_LOOKING_KEY, config_for, run_cli
from tests.fake_api import FakeAmplemarketAPI, sample_dataset

DEBUG = {"LOGLEVEL": "DEBUG", "TAP_AMPLEMARKET_LOGLEVEL": "DEBUG"}


@pytest.fixture
def secret_api():
    with FakeAmplemarketAPI(sample_dataset(60), api_key=SECRET_LOOKING_KEY) as server:
        yield server


@pytest.fixture
def secret_config(secret_api):
    return config_for(secret_api, start_date="2026-04-01T00:00:00Z", page_size=10)


def last_line(text: str) -> str:
    return text.strip().splitlines()[-1]


def error_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if re.search(r"\|\s*(ERROR|CRITICAL)\s*\|", line)]


def test_a_rejected_key_stops_at_once_with_one_clear_line(secret_api, secret_config, tmp_path):
    result = run_cli([], {**secret_config, "api_key": "wrong-key"}, tmp_path, env=DEBUG)

    assert result.returncode != 0
    assert "Amplemarket rejected the API key (401): check api_key" in last_line(result.stderr)
    assert "Traceback" not in result.stderr
    assert len(secret_api.requests) == 1, "a 401 is not retried"
    assert "wrong-key" not in result.stdout + result.stderr


def test_the_key_is_never_printed_even_at_debug_level(secret_api, secret_config, tmp_path):
    secret_api.fail_next("503", times=1, path="/calls")
    result = run_cli([], secret_config, tmp_path, env=DEBUG)
    discover = run_cli(["--discover"], secret_config, tmp_path, env=DEBUG)
    about = run_cli(["--about"], secret_config, tmp_path, env=DEBUG)

    assert result.returncode == 0, result.stderr[-2000:]
    assert len(result.records("calls")) == sum(
        c["start_date"] >= secret_config["start_date"] for c in secret_api.data.calls
    )
    assert "DEBUG" in result.stderr, "debug logging was on"
    for run in (result, discover, about):
        assert SECRET_LOOKING_KEY not in run.stdout + run.stderr


def test_a_4xx_quotes_the_api_error_and_its_parameter(secret_api, secret_config, tmp_path):
    secret_api.fail_next("400", path="/calls")

    result = run_cli([], secret_config, tmp_path)

    assert result.returncode != 0
    line = last_line(result.stderr)
    assert "Invalid date format (parameter: start_date_from)" in line
    assert "400" in line
    assert "Traceback" not in result.stderr
    assert len(secret_api.requests_to("/calls")) == 1, "a 400 is not retried"


@pytest.mark.parametrize(
    ("setting", "value", "message"),
    [
        ("start_date", "yesterday", "start_date 'yesterday' is not an ISO 8601 date-time"),
        ("end_date", "2020-01-01T00:00:00Z", "end_date must be after start_date"),
        ("page_size", 0, "page_size must be greater than 0"),
        ("max_retries", 0, "max_retries must be greater than 0"),
        ("lookback_window_days", -1, "lookback_window_days must not be negative"),
        ("api_url", "api.amplemarket.com", "is not an http(s) URL"),
        ("max_requests_per_minute", "fast", "'fast' is not of type 'integer'"),
        ("page_size", "50", "page_size is the text '50', not a number: in a Meltano project"),
        ("window_days", 10**9, "window_days must be at most 3650"),
        ("window_days", 0.0000001, "is not of type 'integer'"),
        ("lookback_window_days", 10**9, "lookback_window_days must be at most 3650"),
        ("request_timeout", 10**12, "request_timeout must be at most 3600"),
        ("max_retries", 10**6, "max_retries must be at most 100"),
        ("max_requests_per_minute", 10**400, "max_requests_per_minute must be at most"),
        ("page_size", -(10**400), "page_size must be greater than 0"),
        ("start_date", "0001-01-01T00:00:00Z", "start_date must be between 1970 and 2999"),
        ("end_date", "9999-12-31T23:59:59Z", "end_date must be between 1970 and 2999"),
        ("api_url", "http://api.amplemarket.com", "plain http to another machine"),
        ("api_url", "https://evil.example\\@api.amplemarket.com", "names its host ambiguously"),
        ("api_url", "https://api.amplemarket.com/?v=1", "has a query or fragment"),
        ("api_url", "http://[::1/", "is not an http(s) URL"),
        ("api_key", SECRET_LOOKING_KEY + "\n", "api_key holds a space, a line break"),
        ("api_key", "sk-live-€-DO-NOT-PRINT", "api_key holds a space, a line break"),
        ("api_key", " ", "api_key is empty"),
        ("window_days", None, "window_days is null: give it a value, or leave it out"),
        ("user_agent", "acme\r\nX-Injected: 1", "user_agent holds a line break"),
    ],
)
def test_bad_settings_are_rejected_before_any_request(
    secret_api, secret_config, tmp_path, setting, value, message
):
    result = run_cli([], {**secret_config, setting: value}, tmp_path)

    assert result.returncode != 0
    assert message in last_line(result.stderr), "the last line says what to fix"
    assert secret_api.requests == []
    assert SECRET_LOOKING_KEY not in result.stdout + result.stderr


def test_a_number_given_as_text_is_named_once(secret_api, secret_config, tmp_path):
    result = run_cli([], {**secret_config, "page_size": "50"}, tmp_path)

    errors = [line for line in result.stderr.splitlines() if "ERROR" in line]
    assert len(errors) == 1, "the hint, not the type error beside it"
    assert "page_size is the text '50', not a number" in errors[0]


def test_a_missing_key_names_the_setting(secret_api, secret_config, tmp_path):
    config = {k: v for k, v in secret_config.items() if k != "api_key"}

    result = run_cli([], config, tmp_path)

    assert result.returncode == 1
    (error,) = [line for line in result.stderr.splitlines() if "ERROR" in line]
    assert "api_key" in error, "one line, naming the setting"
    assert secret_api.requests == []


@pytest.mark.parametrize("bad_key", [987654321987, ["sk", "live", "123"]])
def test_a_key_of_the_wrong_type_is_rejected_without_being_echoed(
    secret_api, secret_config, tmp_path, bad_key
):
    result = run_cli([], {**secret_config, "api_key": bad_key}, tmp_path)

    assert result.returncode != 0
    assert "is not of type 'string'" in result.stderr
    assert "987654321987" not in result.stderr
    assert "'live'" not in result.stderr
    assert secret_api.requests == []


def test_the_apis_own_400_on_an_oversized_page_is_followed_by_a_smaller_page(
    api, config, monkeypatch, caplog
):
    from tap_amplemarket import streams
    from tests.conftest import sync

    # Pretend the tap believed /mailboxes took 100 a page: the fake API, like the real one,
    # answers 400 with `_errors` naming page[size] and its maximum.
    monkeypatch.setattr(streams.MailboxesStream, "max_page_size", 100)

    result = sync({**config, "page_size": 50})

    mailboxes = api.requests_to("/mailboxes")
    assert [(r.status, r.params.get("page[size]")) for r in mailboxes] == [(400, "50"), (200, "20")]
    assert result.ids("mailboxes") == [m["id"] for m in api.data.mailboxes]
    (warning,) = [m for m in caplog.messages if "refused page[size]" in m]
    assert warning.endswith("GET /mailboxes refused page[size]=50; reading it with page[size]=20")


def test_a_400_about_page_size_without_one_is_reported_and_not_retried(api, config, tmp_path):
    api.fail_next("400-page-size", times=None, path="/calls/dispositions")  # sent no size

    result = run_cli([], config, tmp_path)

    assert result.returncode == 1
    assert last_line(result.stderr).endswith(
        "Amplemarket rejected GET /calls/dispositions (400) even without page[size]: "
        "Invalid value (parameter: page[size]): report it to Amplemarket"
    )
    assert [r.status for r in api.requests_to("/calls/dispositions")] == [400]


def test_an_unreachable_api_url_names_the_setting(secret_config, tmp_path):
    import socket

    with socket.socket() as probe:  # a port with nothing listening
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    result = run_cli(
        [], {**secret_config, "api_url": f"http://127.0.0.1:{port}", "max_retries": 1}, tmp_path
    )

    assert result.returncode != 0
    line = last_line(result.stderr)
    assert f"api_url http://127.0.0.1:{port} has not answered" in line
    assert line.endswith("check api_url (if it is right, the API may be down: try again later)")
    assert "Traceback" not in result.stderr
    assert error_lines(result.stderr) == [last_line(result.stderr)], "said once, at the end"


def test_a_server_that_keeps_failing_ends_in_one_line(secret_api, secret_config, tmp_path):
    secret_api.fail_next("503", times=10, path="/calls")

    result = run_cli([], {**secret_config, "max_retries": 2}, tmp_path)

    assert result.returncode != 0
    line = last_line(result.stderr)
    assert "Amplemarket kept failing after every retry (503 Server Error" in line
    assert "try again later" in line
    assert "Traceback" not in result.stderr
    assert len(secret_api.requests_to("/calls")) == 2


@pytest.mark.parametrize("at", range(170, 215, 3))
def test_a_key_an_error_body_echoes_is_hidden_before_the_text_is_cut(at):
    """A key cut in two by the 200 characters kept of a body would no longer match whole."""
    import requests

    from tap_amplemarket.errors import APIRequestError, failure_message
    from tap_amplemarket.http import describe_api_errors
    from tap_amplemarket.secrets import remember

    remember({"api_key": SECRET_LOOKING_KEY})
    response = requests.Response()
    response.headers["Content-Type"] = "text/plain"  # quoted: see describe_api_errors
    response._content = ("x" * at + f"Authorization: Bearer {SECRET_LOOKING_KEY}").encode()
    detail = describe_api_errors(response)
    line = failure_message(APIRequestError("y" * (at + 290) + SECRET_LOOKING_KEY))

    for text in (detail, line):
        assert not any(SECRET_LOOKING_KEY[:n] in text for n in range(6, len(SECRET_LOOKING_KEY)))

"""Hostile answers end in one line and a non-zero exit, in seconds, with no piece of the key.

Each run is a subprocess (the Singer tap, or the Airbyte source) against the fake API on
127.0.0.1 answering raw bytes; every byte printed, stdout and stderr, is searched for every
five characters of the key, in any case, and URL-encoded.
"""

from __future__ import annotations

import json
import socket
import typing as t
from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tap_amplemarket.secrets import PIECE, add, redacted
from tests.conftest import config_for, run_cli
from tests.fake_api import FakeAmplemarketAPI, sample_dataset
from tests.test_safety import airbyte_messages, http_response, run_source

#: Random-looking, with characters URL-encoding changes.
KEY = "Xk7Qp2Lw9+Vz4/Rt8Ym3=Hc6"
FORMS = {
    "as is": KEY,
    "upper": KEY.upper(),
    "lower": KEY.lower(),
    "url-encoded": quote(KEY, safe=""),
}
#: The first stream a sync reads (alphabetical), and where `check` asks.
FIRST = "/accounts"
CHECK = "/calls/dispositions"


def leaks(output: str, secret: str = KEY) -> list[str]:
    """The pieces of `secret` in `output`, in any case, as is or URL-encoded."""
    found = []
    for form in (secret, quote(secret, safe="")):
        for start in range(len(form) - PIECE + 1):
            piece = form[start : start + PIECE]
            if piece.casefold() in output.casefold():
                found.append(piece)
    return found


def one_line_failure(returncode: int, stderr: str) -> str:
    assert returncode == 1, stderr[-3000:]
    assert "Traceback" not in stderr
    return stderr.strip().splitlines()[-1]


@pytest.fixture
def api() -> t.Iterator[FakeAmplemarketAPI]:
    with FakeAmplemarketAPI(sample_dataset(30), api_key=KEY, request_budget=500) as server:
        yield server


@pytest.fixture
def config(api: FakeAmplemarketAPI) -> dict[str, t.Any]:
    return config_for(api, start_date="2026-04-01T00:00:00Z", max_retries=2)


# -- no piece of a secret, in any form ------------------------------------------------------

KEYS = st.text(st.sampled_from("abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789+/=-_"),
               min_size=16, max_size=48)  # fmt: skip


@settings(max_examples=150, deadline=None)
@given(
    key=KEYS,
    start=st.integers(0, 40),
    length=st.integers(PIECE, 48),
    form=st.sampled_from([str, str.upper, str.lower, lambda s: quote(s, safe="")]),
    before=st.text(max_size=30),
    after=st.text(max_size=30),
    limit=st.none() | st.integers(1, 120),
)
def test_no_piece_of_a_secret_survives_redaction(key, start, length, form, before, after, limit):
    add(key)
    echoed = form(key)[start : start + length]
    shown = redacted(before + echoed + after, limit)

    assert leaks(shown, key) == []


ECHOES = {
    "content type": lambda echo: http_response(
        "406 Not Acceptable", b"{}", f"application/json; profile={echo}"
    ),
    "reason phrase": lambda echo: http_response(f"400 Bad {echo}", b"not json", "text/plain"),
    "plain text": lambda echo: http_response(
        "400 Bad Request", f"key {echo}".encode(), "text/plain"
    ),
    "page size error": lambda echo: http_response(
        "400 Bad Request",
        json.dumps(
            {"_errors": [{"detail": f"page[size] {echo}", "source": {"parameter": "x"}}]}
        ).encode(),
    ),
    "503 reason": lambda echo: http_response(f"503 {echo}", b"down", "text/plain"),
}


@pytest.mark.parametrize("form", FORMS, ids=list(FORMS))
@pytest.mark.parametrize("where", ECHOES, ids=list(ECHOES))
def test_what_the_server_echoes_of_the_key_shows_no_piece_of_it(api, config, tmp_path, where, form):
    api.fail_next("raw", times=None, path=FIRST, raw=ECHOES[where](FORMS[form]))

    result = run_cli([], config, tmp_path, timeout=60)

    one_line_failure(result.returncode, result.stderr)
    assert leaks(result.stdout + result.stderr) == []


@pytest.mark.parametrize("form", FORMS, ids=list(FORMS))
@pytest.mark.parametrize("command", ["check", "read"])
def test_the_airbyte_source_shows_no_piece_of_the_key(api, config, tmp_path, command, form):
    api.fail_next("raw", times=None, raw=ECHOES["page size error"](FORMS[form]))
    catalog = None
    if command == "read":
        stream = {"name": "accounts", "json_schema": {}, "supported_sync_modes": ["full_refresh"]}
        catalog = {"streams": [{"stream": stream, "sync_mode": "full_refresh",
                                "destination_sync_mode": "overwrite"}]}  # fmt: skip

    result = run_source([command], config, tmp_path, catalog)

    answers = [m for m in airbyte_messages(result.stdout) if m["type"] != "LOG"]
    assert {m["type"] for m in answers} == {"CONNECTION_STATUS" if command == "check" else "TRACE"}
    assert leaks(result.stdout + result.stderr) == []


# -- one line, whatever the body ------------------------------------------------------------

DEEP = b'{"a":' * 5000 + b"1" + b"}" * 5000
BODIES = {
    "deep 200": http_response("200 OK", DEEP),
    "deep 400": http_response("400 Bad Request", DEEP),
    "deep 422": http_response("422 Unprocessable Entity", DEEP),
    "deep 500": http_response("500 Internal Server Error", DEEP),
    "NaN then deep": http_response("200 OK", b'{"x": NaN, "y": ' + DEEP + b"}"),
    "non-UTF-8 then deep": http_response("200 OK", b'{"x": "\xff", "y": ' + DEEP + b"}"),
    "deep list 400": http_response("400 Bad Request", b"[" * 50000 + b"]" * 50000),
    "unknown charset": http_response("200 OK", b"{}", "application/json; charset=x-no-such-42"),
    "not valid in its charset": http_response(
        "200 OK", b'{"\xff": 1}', "application/json; charset=ascii"
    ),
}


@pytest.mark.parametrize("body", BODIES, ids=list(BODIES))
def test_a_body_the_tap_cannot_read_ends_in_one_line(api, config, tmp_path, body):
    api.fail_next("raw", times=None, path=FIRST, raw=BODIES[body])

    result = run_cli([], config, tmp_path, timeout=60)

    one_line_failure(result.returncode, result.stderr)


def test_a_deep_404_is_a_stream_the_plan_lacks_not_a_traceback(api, config, tmp_path):
    api.fail_next("raw", times=None, path=FIRST, raw=http_response("404 Not Found", DEEP))

    result = run_cli([], config, tmp_path, timeout=60)

    assert result.returncode == 0, result.stderr[-3000:]
    (warning,) = [line for line in result.stderr.splitlines() if "WARNING" in line]
    assert FIRST in warning
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("body", ["deep 200", "deep 400", "NaN then deep"])
def test_the_airbyte_source_reports_it_as_a_failure_not_a_bug(api, config, tmp_path, body):
    api.fail_next("raw", times=None, path=FIRST, raw=BODIES[body])
    stream = {"name": "accounts", "json_schema": {}, "supported_sync_modes": ["full_refresh"]}
    catalog = {"streams": [{"stream": stream, "sync_mode": "full_refresh",
                            "destination_sync_mode": "overwrite"}]}  # fmt: skip

    result = run_source(["read"], config, tmp_path, catalog)

    assert result.returncode == 1
    (trace,) = [
        m for m in airbyte_messages(result.stdout) if m["type"] == "TRACE" and "error" in m["trace"]
    ]
    assert "stack_trace" not in trace["trace"]["error"]
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("charset", ["iso-8859-1", "windows-1252", "latin-1", "ISO-8859-15"])
def test_a_body_in_a_declared_charset_is_read_in_it(api, config, tmp_path, charset):
    record = {"id": "d-1", "name": "José Müller"}
    body = json.dumps({"dispositions": [record]}, ensure_ascii=False).encode(charset)
    content_type = f"application/json; charset={charset}"
    api.fail_next("raw", path=CHECK, raw=http_response("200 OK", body, content_type))

    result = run_cli([], config, tmp_path)

    assert result.returncode == 0, result.stderr[-3000:]
    assert [r["name"] for r in result.records("dispositions")] == ["José Müller"]


# -- a wrong api_url says so, in seconds ----------------------------------------------------

PAGE = b"<html><body><h1>Not here</h1></body></html>"
PAGES = {
    status: http_response(status, PAGE, "text/html; charset=utf-8", Retry_After="600")
    for status in (
        "200 OK",
        "401 Unauthorized",
        "405 Method Not Allowed",
        "406 Not Acceptable",
        "415 Unsupported Media Type",
        "418 I'm a teapot",
        "429 Too Many Requests",
    )
}


@pytest.mark.parametrize("args", [[], ["--test"]], ids=["sync", "test"])
@pytest.mark.parametrize("status", PAGES, ids=list(PAGES))
def test_a_web_page_at_first_contact_names_api_url(api, config, tmp_path, status, args):
    api.fail_next("raw", times=None, raw=PAGES[status])

    result = run_cli(args, {**config, "max_retries": 8}, tmp_path, timeout=60)

    line = one_line_failure(result.returncode, result.stderr)
    assert "api_url" in line
    assert api.url in line
    assert len(api.requests) == 1, "a page is not the API: not retried, nor waited for"


def test_an_unresolvable_host_says_the_name_did_not_resolve(config, tmp_path):
    host = "no-such-host.invalid"

    result = run_cli([], {**config, "api_url": f"https://{host}"}, tmp_path, timeout=60)

    line = one_line_failure(result.returncode, result.stderr)
    assert host in line
    assert "resolve" in line


RATE_LIMITED = http_response(
    "429 Too Many Requests", b'{"_errors": [{"code": "rate_limited"}]}', Retry_After="600"
)


def test_a_connection_test_does_not_wait_out_a_429(api, config, tmp_path):
    api.fail_next("raw", times=None, raw=RATE_LIMITED)

    result = run_cli(["--test"], config, tmp_path, timeout=60)

    line = one_line_failure(result.returncode, result.stderr)
    assert "600" in line, "says when to try again"
    assert len(api.requests) == 1


def test_an_airbyte_check_does_not_wait_out_a_429(api, config, tmp_path):
    api.fail_next("raw", times=None, raw=RATE_LIMITED)

    result = run_source(["check"], config, tmp_path)

    (status,) = [m for m in airbyte_messages(result.stdout) if m["type"] == "CONNECTION_STATUS"]
    assert status["connectionStatus"]["status"] == "FAILED"
    assert "600" in status["connectionStatus"]["message"]
    assert len(api.requests) == 1


def test_a_connection_test_gives_up_on_a_server_that_never_answers(config, tmp_path):
    with socket.socket() as silent:  # accepts connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        api_url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        # request_timeout is 60 s: a test that waited for it would time out here.
        result = run_cli(["--test"], {**config, "api_url": api_url}, tmp_path, timeout=40)

    line = one_line_failure(result.returncode, result.stderr)
    assert "api_url" in line

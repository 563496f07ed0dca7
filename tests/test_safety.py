"""No secret shows, whole or in part; every failure is one line, in seconds (issue 20).

Each run is a subprocess against the fake API on 127.0.0.1, and every byte it prints (stdout
and stderr) is searched for every piece of every secret it was given.
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import shutil
import socket
import subprocess
import sys
import typing as t

import pytest

from tap_amplemarket.secrets import redacted, remember
from tests.conftest import TAP_COMMAND, SyncResult, config_for, run_cli
from tests.fake_api import FakeAmplemarketAPI, sample_dataset
from tests.fake_api.endpoints import ENDPOINTS
from tests.test_airbyte import validated

#: Random-looking secrets: any five characters of one in the output are a leak.
KEY = "Zq8kP2xW7mN4vB9cR3tY6hJ1"
PASSWORD = "S3cretPassW0rd"
PROXY_PASSWORD = "Pr0xyPassW0rd"
PIECE = 5
SOURCE_COMMAND = (sys.executable, "-c", "from tap_amplemarket.airbyte import main; main()")
ROOT = pathlib.Path(__file__).parent.parent
#: Where the tap cuts text it quotes, and the streams it pages without a replication key.
CUTS = (80, 200, 300, 500)
PAGED_WITHOUT_BOOKMARK = tuple(
    e
    for e in ENDPOINTS
    if e.cursor and not e.detail and not e.required_filters and e.stream != "calls"
)


def assert_no_secret_shows(output: str, secrets: t.Iterable[str] = (KEY,)) -> None:
    for secret in secrets:
        for start in range(len(secret) - PIECE + 1):
            piece = secret[start : start + PIECE]
            assert piece not in output, f"{piece!r}, part of a secret, was printed"


def last_line(text: str) -> str:
    return text.strip().splitlines()[-1]


def one_line_failure(result: SyncResult | subprocess.CompletedProcess[str]) -> str:
    """The run's last line, checked to be the one line of a failed run, not a traceback."""
    assert result.returncode == 1, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    return last_line(result.stderr)


def echo_at(cut: int, offset: int, prefix: str = "") -> str:
    """Text that, after `prefix`, puts the key's first `offset` characters before `cut`."""
    return "p" * (cut - len(prefix) - offset) + KEY


def http_response(
    status: str, body: bytes, content_type: str = "application/json", **headers: str
) -> bytes:
    """A raw HTTP answer; each keyword a header (underscores read as hyphens)."""
    head = [f"HTTP/1.1 {status}", f"Content-Type: {content_type}", f"Content-Length: {len(body)}"]
    head += [f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
    return "\r\n".join(head).encode() + b"\r\n\r\n" + body


def free_port() -> int:
    with socket.socket() as probe:  # bound, never listening: connections are refused
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def api() -> t.Iterator[FakeAmplemarketAPI]:
    with FakeAmplemarketAPI(sample_dataset(60), api_key=KEY, request_budget=2000) as server:
        yield server


@pytest.fixture
def config(api: FakeAmplemarketAPI) -> dict[str, t.Any]:
    return config_for(api, start_date="2026-04-01T00:00:00Z", max_retries=1)


def run_source(
    args: list[str], config: dict[str, t.Any], tmp_path: pathlib.Path, catalog: t.Any = None
) -> subprocess.CompletedProcess[str]:
    (tmp_path / "config.json").write_text(json.dumps(config))
    command = [*SOURCE_COMMAND, *args, "--config", str(tmp_path / "config.json")]
    if catalog is not None:
        (tmp_path / "catalog.json").write_text(json.dumps(catalog))
        command += ["--catalog", str(tmp_path / "catalog.json")]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    validated(done.stdout)  # every stdout line an Airbyte message
    return done


def airbyte_messages(stdout: str) -> list[dict[str, t.Any]]:
    """The messages of a run_source stdout (which checked each line)."""
    return [json.loads(line) for line in stdout.splitlines()]


def configured_catalog(*streams: t.Any) -> dict[str, t.Any]:
    return {
        "streams": [
            {
                "stream": {
                    "name": name,
                    "json_schema": {},
                    "supported_sync_modes": ["full_refresh"],
                },
                "sync_mode": "full_refresh",
                "destination_sync_mode": "overwrite",
            }
            for name in streams
        ]
    }


# -- no secret shows, whole or in part -----------------------------------------------------


@pytest.mark.parametrize("cut", CUTS)
def test_a_secret_at_any_cut_position_shows_no_part(cut):
    remember({"api_key": KEY})
    for offset in range(len(KEY) + 1):  # from wholly after the cut to wholly before it
        text = "p" * (cut - offset) + KEY + " and after"
        assert_no_secret_shows(redacted(text, cut))


@pytest.mark.parametrize("offset", range(1, len(KEY), 5))
def test_the_link_cycle_error_shows_no_part_of_the_key(api, config, tmp_path, offset):
    # The link puts the key across the error line's cut at another position each time.
    endpoint = PAGED_WITHOUT_BOOKMARK[0]
    href = f"{endpoint.path}?pad={echo_at(300, offset, f'{endpoint.path}?pad=')}"
    api.fail_next("link", path=endpoint.path, times=None, href=href)

    result = run_cli([], config, tmp_path)

    assert result.returncode == 1, result.stderr[-3000:]
    assert endpoint.path in result.stderr.splitlines()[-1]
    assert_no_secret_shows(result.stdout + result.stderr)


@pytest.mark.parametrize("source", [False, True], ids=["singer", "airbyte"])
def test_a_body_of_another_shape_shows_no_part_of_the_key(api, config, tmp_path, source):
    # "has no 'accounts' list (keys: ['pp...KEY'])": the key across that cut at 200.
    body = json.dumps({echo_at(200, 9, "keys: ['"): 1}).encode()
    api.fail_next("raw", path="/accounts", times=None, raw=http_response("200 OK", body))

    if source:
        result = run_source(["read"], config, tmp_path, configured_catalog("accounts"))
        (trace,) = [
            m
            for m in airbyte_messages(result.stdout)
            if m["type"] == "TRACE" and "error" in m["trace"]
        ]
        assert "check api_url" in trace["trace"]["error"]["message"]
    else:
        result = run_cli([], config, tmp_path)
    assert "check api_url" in one_line_failure(result)
    assert_no_secret_shows(result.stdout + result.stderr)


def test_an_error_text_shows_no_part_of_the_key(api, config, tmp_path):
    body = echo_at(200, 12).encode()  # not JSON: quoted up to 200 characters
    api.fail_next("raw", path="/accounts", raw=http_response("400 Bad Request", body, "text/plain"))

    result = run_cli([], config, tmp_path)

    assert "(400)" in one_line_failure(result)
    assert_no_secret_shows(result.stdout + result.stderr)


def test_an_error_line_cut_at_its_end_shows_no_part_of_the_key(api, config, tmp_path):
    prefix = "Amplemarket rejected GET /accounts (400): "
    detail = echo_at(500, 7, prefix)
    body = json.dumps({"_errors": [{"code": "x", "detail": detail}]}).encode()
    api.fail_next("raw", path="/accounts", raw=http_response("400 Bad Request", body))

    result = run_cli([], config, tmp_path)

    assert prefix in one_line_failure(result)
    assert_no_secret_shows(result.stdout + result.stderr)


@pytest.mark.parametrize(
    "state",
    [
        {"bookmarks": echo_at(80, 10, "{'bookmarks': '")},  # quoted up to 80 characters
        {"bookmarks": {"users": echo_at(500, 10, "The state of stream users is not a bookmark")}},
    ],
    ids=["not-an-object", "not-a-bookmark"],
)
def test_a_state_that_quotes_the_key_shows_no_part_of_it(config, tmp_path, state):
    result = run_cli([], config, tmp_path, state=state)

    assert "The state" in one_line_failure(result)
    assert_no_secret_shows(result.stdout + result.stderr)


def test_a_password_in_api_url_is_never_printed(config, tmp_path):
    api_url = f"http://amplemarket:{PASSWORD}@127.0.0.1:{free_port()}"

    result = run_cli([], {**config, "api_url": api_url}, tmp_path)

    assert "check api_url" in one_line_failure(result)
    assert_no_secret_shows(result.stdout + result.stderr, [KEY, PASSWORD])


def test_a_token_in_api_urls_query_is_never_printed(config, tmp_path):
    result = run_cli([], {**config, "api_url": f"{config['api_url']}/?token={PASSWORD}"}, tmp_path)

    assert "has a query" in one_line_failure(result)
    assert_no_secret_shows(result.stdout + result.stderr, [KEY, PASSWORD])


def test_a_proxy_never_gets_the_key_of_a_plain_http_api_url(api, config, tmp_path):
    with FakeAmplemarketAPI(sample_dataset(5), api_key=KEY) as proxy:
        proxy_url = f"http://proxy:{PROXY_PASSWORD}@{proxy.url.removeprefix('http://')}"
        env = {"HTTP_PROXY": proxy_url, "http_proxy": proxy_url, "NO_PROXY": "", "no_proxy": ""}
        result = run_cli([], config, tmp_path, env=env)

    assert result.returncode == 0, result.stderr[-3000:]
    assert proxy.requests == [], "the proxy saw a request, and its Authorization header"
    assert {r.headers.get("Authorization") for r in api.requests} == {f"Bearer {KEY}"}
    assert_no_secret_shows(result.stdout + result.stderr, [KEY, PROXY_PASSWORD])


def test_a_proxys_credentials_are_never_printed(config, tmp_path):
    proxy_url = f"http://proxy:{PROXY_PASSWORD}@127.0.0.1:{free_port()}"  # refuses
    env = {"HTTPS_PROXY": proxy_url, "https_proxy": proxy_url, "NO_PROXY": "", "no_proxy": ""}
    api_url = "https://api.invalid"  # through the proxy, which is not there

    result = run_cli([], {**config, "api_url": api_url}, tmp_path, env=env)

    assert "check api_url" in one_line_failure(result)
    assert_no_secret_shows(result.stdout + result.stderr, [KEY, PROXY_PASSWORD])


# -- one line, not a traceback -------------------------------------------------------------


def run_with_stdout(command: list[str], stdout: t.Any) -> subprocess.CompletedProcess[str]:
    completed = subprocess.run(
        command, stdout=stdout, stderr=subprocess.PIPE, text=True, timeout=120, check=False
    )
    return subprocess.CompletedProcess(command, completed.returncode, "", completed.stderr)


def closed_pipe() -> int:
    """The write end of a pipe whose reader has gone: every write fails with EPIPE."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    return write_end


@pytest.mark.parametrize(
    "args", [[], ["--discover"], ["--about"]], ids=["sync", "discover", "about"]
)
@pytest.mark.parametrize("output", ["closed pipe", "full disk"])
def test_output_that_cannot_be_written_ends_in_one_line(config, tmp_path, args, output):
    if output == "full disk" and not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full here")
    (tmp_path / "config.json").write_text(json.dumps(config))
    command = [*TAP_COMMAND, "--config", str(tmp_path / "config.json"), *args]
    if output == "closed pipe":
        # --about's few lines wait in Python's buffer until the flush at exit.
        write_end = closed_pipe()
        try:
            result = run_with_stdout(command, write_end)
        finally:
            os.close(write_end)
    else:
        with open("/dev/full", "w") as full:
            result = run_with_stdout(command, full)

    assert "stdout" in one_line_failure(result)
    assert "Exception ignored" not in result.stderr


def test_a_target_that_stops_reading_mid_sync_ends_the_run_in_one_line(tmp_path):
    with FakeAmplemarketAPI(sample_dataset(3000), api_key=KEY) as big:
        (tmp_path / "config.json").write_text(json.dumps(config_for(big)))
        command = [*TAP_COMMAND, "--config", str(tmp_path / "config.json")]
        with subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        ) as tap:
            assert tap.stdout is not None
            assert tap.stderr is not None
            tap.stdout.read(1000)  # as `| head -c 1000` does
            tap.stdout.close()
            stderr = tap.stderr.read()
            returncode = tap.wait(timeout=120)

    assert returncode == 1, stderr[-3000:]
    assert "Traceback" not in stderr
    assert "stdout" in last_line(stderr)
    assert_no_secret_shows(stderr)


@pytest.mark.parametrize("name", [7, None, ["calls"]])
def test_an_airbyte_stream_name_that_is_not_text_is_a_config_error(config, tmp_path, name):
    result = run_source(["read"], config, tmp_path, configured_catalog(name))

    assert result.returncode == 1
    (trace,) = [m for m in airbyte_messages(result.stdout) if m["type"] == "TRACE"]
    assert trace["trace"]["error"]["failure_type"] == "config_error"
    assert "stack_trace" not in trace["trace"]["error"]
    assert "Traceback" not in result.stderr


def calls_of(result: SyncResult) -> list[str]:
    assert result.returncode == 0, result.stderr[-3000:]
    return sorted(result.ids("calls"))


@pytest.mark.parametrize("form", [str.lower, lambda text: text.replace("Z", "z")])
def test_a_lowercase_z_or_t_in_a_date_reads_as_its_uppercase(api, config, tmp_path, form):
    expected = calls_of(run_cli([], config, tmp_path))
    calls = {"replication_key": "start_date", "replication_key_value": "2026-05-01T00:00:00Z"}
    calls["replication_key_value"] = form(calls["replication_key_value"])
    resumed = run_cli([], config, tmp_path, state={"bookmarks": {"calls": calls}})
    lowercase = run_cli([], {**config, "start_date": form(config["start_date"])}, tmp_path)

    assert calls_of(lowercase) == expected
    lookback = "2026-04-28T00:00:00Z"  # the bookmark less lookback_window_days (3)
    assert calls_of(resumed) == sorted(
        c["id"] for c in api.data.calls if lookback <= c["start_date"] < config["end_date"]
    )


INTERIM = {
    "103": b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n",
    "102 and 103": b"HTTP/1.1 102 Processing\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n",
}


@pytest.mark.parametrize("interim", INTERIM, ids=list(INTERIM))
def test_interim_responses_before_each_answer_are_read_past(api, config, tmp_path, interim):
    expected = run_cli([], config, tmp_path)
    api.fail_next("raw", times=None, raw=INTERIM[interim] + b"{page}")

    result = run_cli([], config, tmp_path)

    assert result.returncode == 0, result.stderr[-3000:]
    assert result.counts() == expected.counts()
    assert "Retrying" not in result.stderr


def test_a_304_is_not_called_a_redirect(api, config, tmp_path):
    api.fail_next("raw", path="/accounts", raw=b"HTTP/1.1 304 Not Modified\r\n\r\n")

    line = one_line_failure(run_cli([], config, tmp_path))

    assert "304" in line
    assert "redirect" not in line


def test_key_properties_are_emitted_whatever_the_catalog_says(api, config, tmp_path):
    catalog = json.loads(run_cli(["--discover"], config, tmp_path).stdout)
    for stream in catalog["streams"]:
        for entry in stream["metadata"]:
            if entry["breadcrumb"] == []:
                entry["metadata"]["selected"] = stream["tap_stream_id"] == "calls"
            if entry["breadcrumb"] in (["properties", "id"], ["properties", "start_date"]):
                entry["metadata"] |= {"inclusion": "available", "selected": False}
    (tmp_path / "catalog.json").write_text(json.dumps(catalog))

    result = run_cli(["--catalog", str(tmp_path / "catalog.json")], config, tmp_path)

    assert result.returncode == 0, result.stderr[-3000:]
    records = result.records("calls")
    assert records
    assert all(record["id"] and record["start_date"] for record in records)
    assert result.last_state["bookmarks"]["calls"]["replication_key_value"] == config["end_date"], (
        "checkpointed at the end of the range read"
    )
    assert "deselects id and start_date" in result.stderr


# -- a wrong api_url says so, in seconds ----------------------------------------------------

NOT_THE_API = {
    "html": http_response("200 OK", b"<html><body>Please log in</body></html>", "text/html"),
    "other json": http_response("200 OK", b'{"status": "ok", "version": "2.1"}'),
    "502": http_response("502 Bad Gateway", b"<html>Bad Gateway</html>", "text/html"),
}


@pytest.mark.parametrize("answer", NOT_THE_API, ids=list(NOT_THE_API))
def test_what_is_not_the_api_is_named_after_a_few_attempts(api, config, tmp_path, answer):
    api.fail_next("raw", times=None, raw=NOT_THE_API[answer])

    result = run_cli([], {**config, "max_retries": 8}, tmp_path, timeout=60)

    assert "check api_url" in one_line_failure(result)
    assert len(api.requests) < 8, "retried as if the API were down"
    assert_no_secret_shows(result.stdout + result.stderr)


@pytest.mark.parametrize("args", [[], ["--test"]], ids=["sync", "test"])
def test_nothing_listening_at_api_url_is_named_after_a_few_attempts(config, tmp_path, args):
    api_url = f"http://127.0.0.1:{free_port()}"

    result = run_cli(args, {**config, "api_url": api_url, "max_retries": 8}, tmp_path, timeout=60)

    line = one_line_failure(result)
    assert f"api_url {api_url} has not answered" in line
    assert "check api_url" in line
    assert result.stderr.count("Retrying") < 7


def test_an_api_that_has_answered_is_retried_as_before(api, config, tmp_path):
    api.fail_next("503", path="/users", times=2)  # /accounts answered first

    result = run_cli([], {**config, "max_retries": 3}, tmp_path)

    assert result.returncode == 0, result.stderr[-3000:]
    assert [r.status for r in api.requests_to("/users")] == [503, 503, 200]


# -- the README's walkthrough leaves no key in the repository ---------------------------------


def test_the_offline_airbyte_walkthrough_writes_outside_the_repository():
    readme = (ROOT / "docs" / "airbyte.md").read_text()
    section = readme.split("## Try it offline", 1)[1].split("\n## ", 1)[0]
    script = section.split("```bash\n", 1)[1].split("```", 1)[0]
    before_scratch, after = script.split('cd "$(mktemp -d)"', 1)
    written = re.findall(r'> ?([\w.]+\.jsonl?)|open\("([\w.]+)", "w"\)', after)
    names = {a or b for a, b in written}

    assert "config.json" in names
    assert not re.search(r"> ?\w", before_scratch.replace("2>", "")), "a file in the repo"
    if shutil.which("git") and (ROOT / ".git").exists():  # and ignored there, should it be
        for name in names:
            ignored = subprocess.run(
                ["git", "check-ignore", "-q", name],
                cwd=ROOT,
                check=False,
            )
            assert ignored.returncode == 0, f"{name} is not in .gitignore"

"""A misbehaving API cannot leak the key, loop, stall or hide a failed run (issue 10)."""

from __future__ import annotations

import datetime
import json
import signal
import subprocess
import time

import pytest

from tap_amplemarket.timefmt import parse_timestamp
from tests.conftest import (
    SECRET_LOOKING_KEY,
    TAP_COMMAND,
    config_for,
    parse_messages,
    run_cli,
    sync,
)
from tests.fake_api import FakeAmplemarketAPI, sample_dataset


@pytest.fixture
def secret_api():
    with FakeAmplemarketAPI(
        sample_dataset(120), api_key=SECRET_LOOKING_KEY, request_budget=2000
    ) as server:
        yield server


@pytest.fixture
def secret_config(secret_api):
    return config_for(secret_api, page_size=10)


@pytest.fixture
def other_host():
    """Another origin (same address, other port): it must never see a request."""
    with FakeAmplemarketAPI(sample_dataset(5), api_key=SECRET_LOOKING_KEY) as server:
        yield server


def last_line(text: str) -> str:
    return text.strip().splitlines()[-1]


def assert_key_never_shown(result) -> None:
    assert SECRET_LOOKING_KEY not in result.stdout + result.stderr


# -- the key goes only to api_url's origin ------------------------------------------------


@pytest.mark.parametrize(
    "form", ["absolute", "protocol-relative", "backslash", "protocol-relative backslash"]
)
def test_a_next_link_to_another_host_is_refused_and_the_key_stays_home(
    secret_api, secret_config, other_host, tmp_path, form
):
    port = other_host.url.rsplit(":", 1)[1]
    home = secret_api.url.removeprefix("http://")
    # urllib.parse reads the host after the "@" (api_url's), requests the one before it.
    href = {
        "absolute": f"{other_host.url}/users?page[after]=x",
        "protocol-relative": f"//localhost:{port}/users?page[after]=x",
        "backslash": f"http://127.0.0.1:{port}\\@{home}/users?page[after]=x",
        "protocol-relative backslash": f"//127.0.0.1:{port}\\@{home}/users?page[after]=x",
    }[form]
    secret_api.fail_next("link", path="/users", href=href)

    result = run_cli([], {**secret_config, "page_size": 1}, tmp_path)

    assert result.returncode == 1
    assert "refusing to send the API key" in last_line(result.stderr)
    assert "Traceback" not in result.stderr
    assert other_host.requests == [], "nothing, let alone the key, went to the other host"
    assert_key_never_shown(result)


@pytest.mark.parametrize("href", ["http://[127.0.0.1]/users", "http://[::1/users"])
def test_a_next_link_no_parser_can_read_ends_in_one_line(secret_api, secret_config, tmp_path, href):
    secret_api.fail_next("link", path="/users", href=href)

    result = run_cli([], {**secret_config, "page_size": 1}, tmp_path)

    assert result.returncode == 1
    assert "a link that is not a URL the tap can follow safely" in last_line(result.stderr)
    assert "Traceback" not in result.stderr


def test_a_redirect_is_not_followed(secret_api, secret_config, other_host, tmp_path):
    secret_api.fail_next("redirect", path="/users", href=f"{other_host.url}/users")

    result = run_cli([], secret_config, tmp_path)

    assert result.returncode == 1
    assert "with a redirect (302)" in last_line(result.stderr)
    assert other_host.requests == []
    assert_key_never_shown(result)


@pytest.mark.parametrize("status", ["echo-400", "echo-500"])
def test_an_error_body_that_echoes_the_key_is_redacted(secret_api, secret_config, tmp_path, status):
    secret_api.fail_next(status, path="/calls")

    result = run_cli([], {**secret_config, "max_retries": 2}, tmp_path)

    echoed = [r for r in secret_api.requests_to("/calls") if r.status == int(status[-3:])]
    assert echoed, "the fault fired"
    assert echoed[0].headers["Authorization"] == f"Bearer {SECRET_LOOKING_KEY}"
    assert result.returncode == (1 if status == "echo-400" else 0), result.stderr[-2000:]
    assert_key_never_shown(result)


def test_each_request_carries_the_key_only_to_api_url(secret_api, secret_config, tmp_path):
    result = run_cli([], secret_config, tmp_path)

    assert result.returncode == 0
    assert {r.headers.get("Authorization") for r in secret_api.requests} == {
        f"Bearer {SECRET_LOOKING_KEY}"
    }


# -- every loop ends -----------------------------------------------------------------------


@pytest.mark.parametrize("target", ["{first}", "{self}"])
def test_a_next_link_back_to_a_page_already_read_stops_the_run(
    secret_api, secret_config, tmp_path, target
):
    # The second page of the first listing links back to page 1 (A -> B -> A), or to itself:
    # the users after page 2 are unread, so the run must not end as if it had them all.
    secret_api.fail_next("link", path="/users", after=1, href=target)

    result = run_cli([], {**secret_config, "page_size": 1}, tmp_path)

    assert result.returncode == 1
    users = result.ids("users")
    assert len(users) == len(set(users)) == 2, "two pages read once each, then stopped"
    assert len(secret_api.requests_to("/users")) == 2
    assert "leads back to a page already read" in last_line(result.stderr)
    assert "Traceback" not in result.stderr
    assert sorted(result.ids("calls")) == sorted(c["id"] for c in secret_api.data.calls)


def test_a_cycle_of_any_length_ends(secret_api, secret_config, tmp_path):
    # Page 4 links back to page 1: A -> B -> C -> D -> A.
    secret_api.fail_next("link", path="/sequences", after=3, href="{first}")

    result = run_cli([], {**secret_config, "page_size": 2}, tmp_path)

    assert result.returncode == 1
    assert "sequences: " in last_line(result.stderr)
    assert len(secret_api.requests_to("/sequences")) == 4
    assert len(result.ids("sequences")) == len(set(result.ids("sequences"))) == 8


def test_new_cursors_on_records_already_read_stop_the_run(secret_api, secret_config, tmp_path):
    # Every page from the second on links to "the first page again", under a new URL each
    # time (a cursor that changes, records that do not): no URL repeats.
    for n in range(50):
        secret_api.fail_next(
            "link", path="/sequences", after=1 if n == 0 else 0, href=f"{{first}}&n={n}"
        )

    result = run_cli([], {**secret_config, "page_size": 5}, tmp_path)

    assert result.returncode == 1
    # Pages 1 and 2, then page 1 under new cursors: paged past five times, then stopped.
    assert len(secret_api.requests_to("/sequences")) == 2 + 6
    assert len(set(result.ids("sequences"))) == 10
    assert "past 5 pages in a row with nothing new" in last_line(result.stderr)


def test_a_page_repeated_under_a_new_cursor_is_paged_past(secret_api, secret_config, tmp_path):
    # Page 2 links to itself under a new cursor (a listing that shifted), which goes on to
    # page 3 and the rest: nothing may be lost to the guard against loops.
    secret_api.fail_next("link", path="/calls", after=1, href="{self}&shifted=1")
    settings = {**secret_config, "page_size": 5, "max_concurrent_requests": 1}

    result = run_cli([], settings, tmp_path)

    assert result.returncode == 0, result.stderr[-2000:]
    assert sorted(set(result.ids("calls"))) == sorted(c["id"] for c in secret_api.data.calls)
    assert "nothing new" not in result.stderr


def test_empty_pages_that_keep_linking_on_end_the_run_for_calls(
    secret_api, secret_config, tmp_path
):
    # From the second page on, every page links to a new, empty one (a date range with no
    # calls, under a new URL each time): no record repeats, no URL repeats, nothing ends.
    empty = "/calls?start_date_from=2031-01-01T00:00:00Z&start_date_to=2031-01-02T00:00:00Z"
    for n in range(50):
        secret_api.fail_next(
            "link", path="/calls", after=1 if n == 0 else 0, href=f"{empty}&page[size]=5&n={n}"
        )

    result = run_cli([], {**secret_config, "page_size": 5, "max_concurrent_requests": 1}, tmp_path)

    # Calls after them may be unread: no checkpoint may pass them, so the run fails.
    assert result.returncode == 1
    assert len(secret_api.requests_to("/calls")) < 20, "stopped after a few empty pages"
    assert last_line(result.stderr).endswith(
        "past 5 pages in a row with nothing new: stopping, so that nothing is skipped; report "
        "it to Amplemarket"
    )
    # Only the first window, read before the empty pages began, may be checkpointed.
    first_page_of_second_window = secret_api.requests_to("/calls")[1].params["start_date_from"]
    bookmarks = [
        s["bookmarks"]["calls"]["replication_key_value"]
        for s in result.states
        if "replication_key_value" in str(s)
    ]
    second_window = parse_timestamp(first_page_of_second_window) + datetime.timedelta(seconds=1)
    assert all(parse_timestamp(b) <= second_window for b in bookmarks)


def test_what_the_api_names_cannot_forge_a_log_line(secret_api, secret_config, tmp_path):
    secret_api.data.calls[0]["x\n2026-01-01 00:00:00,000 | ERROR    | forged"] = 1

    result = run_cli([], secret_config, tmp_path)

    assert result.returncode == 0
    assert not [line for line in result.stderr.splitlines() if line.startswith("2026-01-01")]
    assert "calls: x\\n2026-01-01 00:00:00,000 | ERROR    | forged: not declared" in result.stderr


def test_a_body_that_inflates_without_end_is_cut_off_in_one_line(
    secret_api, secret_config, tmp_path
):
    secret_api.fail_next("gzip-bomb", path="/calls/dispositions")

    result = run_cli([], secret_config, tmp_path)

    assert result.returncode == 1
    assert last_line(result.stderr).endswith(
        "Amplemarket sent more than 64 MiB for /calls/dispositions (decompressed): stopping "
        "rather than run out of memory; report it to Amplemarket, or lower page_size"
    )
    assert len(secret_api.requests_to("/calls/dispositions")) == 1, "not retried"


def test_retry_after_beyond_the_cap_ends_the_run_at_once(secret_api, secret_config, tmp_path):
    secret_api.fail_next("429", path="/calls", retry_after="86400")

    started = time.monotonic()
    result = run_cli([], secret_config, tmp_path, timeout=60)

    assert result.returncode == 1
    line = last_line(result.stderr)
    assert "rate-limited GET /calls for longer than 600s (Retry-After 86400s)" in line
    assert "the next run resumes from the last checkpoint" in line
    assert time.monotonic() - started < 60, "it did not sleep a day"


def test_rate_limit_waits_add_up_to_the_cap(api, config, monkeypatch):
    from tap_amplemarket import retries
    from tap_amplemarket.errors import RateLimitedTooLongError

    monkeypatch.setattr(retries, "MAX_RATE_LIMIT_WAIT_SECONDS", 0.25)
    api.fail_next("429", times=50, path="/calls/dispositions", retry_after="0.1")

    with pytest.raises(RateLimitedTooLongError):
        sync(config)
    assert len(api.requests_to("/calls/dispositions")) == 3, "0.1 + 0.1 + 0.1 > 0.25"


@pytest.mark.parametrize("retry_after", ["0", "-5", "soon"])
def test_a_zero_negative_or_unusable_retry_after_counts_as_a_retry(
    api, config, fast_retries, retry_after
):
    from singer_sdk.exceptions import RetriableAPIError

    api.fail_next("429", times=50, path="/calls/dispositions", retry_after=retry_after)

    with pytest.raises(RetriableAPIError):
        sync({**config, "max_retries": 3})
    assert len(api.requests_to("/calls/dispositions")) == 3


def test_429_and_503_in_turn_are_bounded(api, config, fast_retries):
    from singer_sdk.exceptions import RetriableAPIError

    for _ in range(30):
        api.fail_next("429", path="/calls/dispositions", retry_after="0.01")
        api.fail_next("503", path="/calls/dispositions")

    with pytest.raises(RetriableAPIError):
        sync({**config, "max_retries": 3})
    assert [r.status for r in api.requests_to("/calls/dispositions")] == [429, 503] * 3


def test_a_body_that_drips_hits_the_whole_response_deadline(api, config, fast_retries, caplog):
    api.fail_next("drip", path="/calls/dispositions")  # ~20 s at a byte per 50 ms

    started = time.monotonic()
    result = sync({**config, "request_timeout": 1})

    assert result.ids("dispositions") == [d["id"] for d in api.data.dispositions]
    assert len(api.requests_to("/calls/dispositions")) == 2, "cut off once, then retried"
    assert "No complete response within 1s" in caplog.text
    assert time.monotonic() - started < 15, "the drip was cut at the deadline"


def test_finished_requests_are_not_held_until_their_deadline(api, config):
    # The watchdog sleeps until the earliest deadline (request_timeout away): requests that
    # finished meanwhile must not pile up in its queue, which grew with every page.
    import gc

    from tap_amplemarket.deadline import _Deadline

    in_flight = 4
    sync({**config, "page_size": 10, "max_concurrent_requests": in_flight})

    assert len(api.requests) > 50
    gc.collect()
    alive = [o for o in gc.get_objects() if isinstance(o, _Deadline)]
    assert len(alive) <= in_flight + 1


# -- exit codes tell the truth --------------------------------------------------------------


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_ends_the_run_non_zero_with_a_resumable_state(tmp_path, signum, code):
    data = sample_dataset(1000, days=60)  # 100 pages of 10
    with FakeAmplemarketAPI(data, api_key="k") as api:
        # Paced at 10 requests/s: the run would last 10 s; a signal lands mid-sync.
        config = config_for(api, page_size=10, window_days=5, max_requests_per_minute=600)
        (tmp_path / "config.json").write_text(json.dumps(config))
        command = [*TAP_COMMAND, "--config", str(tmp_path / "config.json")]
        with (
            (tmp_path / "stderr.log").open("w") as stderr_file,
            subprocess.Popen(
                command, stdout=subprocess.PIPE, stderr=stderr_file, text=True
            ) as process,
        ):
            lines = []
            assert process.stdout is not None
            for line in process.stdout:
                lines.append(line)
                if '"type":"STATE"' in line and "replication_key_value" in line:
                    process.send_signal(signum)
                    break
            # Read on through the same buffer: communicate() would skip what it holds.
            output = "".join(lines) + process.stdout.read()
            process.wait(timeout=60)
        stderr = (tmp_path / "stderr.log").read_text()

        assert process.returncode == code, stderr[-2000:]
        assert f"Interrupted by {signal.Signals(signum).name}" in stderr
        for line in output.splitlines():
            assert json.loads(line), f"a line cut in half: {line[:200]!r}"
        first = parse_messages(output)
        state = [m["value"] for m in first if m["type"] == "STATE"][-1]
        resumed = sync({**config, "max_requests_per_minute": 100_000}, state=state)
    delivered = {m["record"]["id"] for m in first if m["type"] == "RECORD"}
    assert len(delivered) < len(data.calls) / 2, "it stopped, not ran to the end"
    delivered |= set(resumed.ids("calls"))
    assert {c["id"] for c in data.calls} <= delivered


# -- bad state is named -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "message"),
    [
        (
            {
                "bookmarks": {
                    "calls": {"replication_key": "start_date", "replication_key_value": "x"}
                }
            },
            "The state of stream calls has bookmark start_date='x', not a start_date date-time",
        ),
        (
            {"bookmarks": {"calls": {"replication_key": "updated_at", "replication_key_value": 7}}},
            "The state of stream calls has bookmark updated_at=7",
        ),
        ({"bookmarks": {"calls": "2026-01-01"}}, "The state of stream calls is not a bookmark"),
        ({"bookmarks": ["calls"]}, "The state is not a Singer state object"),
        (
            {"type": "STATE", "value": {"bookmarks": {}}},
            'The state is a Singer STATE message, not a state: pass its "value"',
        ),
        ({"calls": {"replication_key_value": "2026-01-01"}}, "The state has no bookmarks"),
        (
            {"singer_state": {"bookmarks": {}}},
            "The state is Meltano's wrapping of one (`meltano state get` prints it so): pass what "
            'is inside "singer_state"',
        ),
        (
            {"bookmarks": {"calls": {"partitions": [{}]}}},
            "The state of stream calls is not a bookmark",
        ),
        (
            {"bookmarks": {"calls": {"progress_markers": "junk"}}},
            "The state of stream calls is not a bookmark",
        ),
        (
            {"bookmarks": {"calls": {"replication_key_value": SECRET_LOOKING_KEY}}},
            "The state of stream calls has bookmark start_date='***', not a start_date",
        ),
    ],
)
def test_a_corrupt_or_foreign_bookmark_is_named_in_one_line(
    secret_api, secret_config, tmp_path, state, message
):
    result = run_cli([], secret_config, tmp_path, state=state)

    assert result.returncode == 1
    assert message in last_line(result.stderr)
    assert "meltano state clear" in last_line(result.stderr)
    assert "Traceback" not in result.stderr
    assert secret_api.requests == []


def test_a_bookmark_without_its_key_is_resumed_from(secret_api, secret_config, tmp_path):
    state = {"bookmarks": {"calls": {"replication_key_value": "2026-05-20T00:00:00Z"}}}

    result = run_cli([], {**secret_config, "lookback_window_days": 1}, tmp_path, state=state)

    assert result.returncode == 0, result.stderr[-2000:]
    first_window = secret_api.requests_to("/calls")[0].params["start_date_from"]
    assert first_window.startswith("2026-05-18T23:59:59"), "from the bookmark, less a day"
    assert result.ids("calls")
    assert all(c["start_date"] >= "2026-05-19" for c in result.records("calls"))


def test_a_future_bookmark_is_clamped_to_now_with_a_warning(secret_api, secret_config, tmp_path):
    state = {
        "bookmarks": {
            "calls": {
                "replication_key": "start_date",
                "replication_key_value": "2999-01-01T00:00:00Z",
            }
        }
    }
    config = {k: v for k, v in secret_config.items() if k != "end_date"}
    newest = max(c["start_date"] for c in secret_api.data.calls)
    secret_api.add_call({**secret_api.data.calls[0], "id": "recent", "start_date": newest})

    result = run_cli([], {**config, "lookback_window_days": 3650}, tmp_path, state=state)

    assert result.returncode == 0, result.stderr[-2000:]
    assert "bookmark start_date=2999-01-01T00:00:00Z, in the future" in result.stderr
    assert "recent" in result.ids("calls"), "not a silent no-op"
    assert result.last_state["bookmarks"]["calls"]["replication_key_value"] < "2999"


def test_a_bookmark_before_1970_is_ignored_with_a_warning(secret_api, secret_config, tmp_path):
    state = {"bookmarks": {"calls": {"replication_key_value": "0001-01-02T00:00:00Z"}}}

    result = run_cli([], secret_config, tmp_path, state=state)

    assert result.returncode == 0, result.stderr[-2000:]
    assert "start_date=0001-01-02T00:00:00Z, before 1970: syncing from start_date" in result.stderr
    assert sorted(result.ids("calls")) == sorted(c["id"] for c in secret_api.data.calls)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "is empty"),
        ("{bookm", "is not valid JSON"),
        ("[]", "holds list, not a JSON object"),
        ("null", "holds NoneType, not a JSON object"),
        ("[" * 100_000, "nests JSON deeper than can be read"),
    ],
)
@pytest.mark.parametrize("broken", ["state", "config"])
def test_an_empty_or_broken_state_or_config_file_is_named(
    secret_api, secret_config, tmp_path, content, message, broken
):
    (tmp_path / "config.json").write_text(json.dumps(secret_config))
    (tmp_path / "state.json").write_text("{}")
    (tmp_path / f"{broken}.json").write_text(content)

    completed = subprocess.run(
        [
            *TAP_COMMAND,
            "--config",
            str(tmp_path / "config.json"),
            f"--state={tmp_path / 'state.json'}",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert completed.returncode == 1
    expected = f"The {broken} file {tmp_path / f'{broken}.json'} {message}"
    assert expected in last_line(completed.stderr)
    assert "Traceback" not in completed.stderr
    assert secret_api.requests == []


def test_a_config_file_that_is_not_there_is_named(tmp_path):
    missing = tmp_path / "nowhere.json"

    completed = subprocess.run(
        [*TAP_COMMAND, "--config", str(missing)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert completed.returncode == 1
    assert last_line(completed.stderr) == (
        f"Cannot read the config file {missing} (No such file or directory): pass a JSON "
        "object of settings (see --about)"
    )


@pytest.mark.parametrize("location", ["http://[::1/x", "http://[127.0.0.1]/x"])
def test_a_redirect_to_a_location_no_parser_reads_ends_in_one_line(
    secret_api, secret_config, tmp_path, location
):
    secret_api.fail_next("redirect", path="/users", href=location)

    result = run_cli([], secret_config, tmp_path)

    assert result.returncode == 1
    assert "with a redirect (302) to no URL the tap can read" in last_line(result.stderr)
    assert "Traceback" not in result.stderr

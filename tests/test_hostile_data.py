"""Whatever the API sends, the run succeeds, every record fits its SCHEMA and nothing is lost.

The tap runs as a subprocess against the fake API serving surprising records; `run_cli`
validates every record against its stream's SCHEMA, as a target would.
"""

from __future__ import annotations

import datetime
import re
from collections import Counter

import pytest

from tap_amplemarket.timefmt import normalize_datetime
from tests.conftest import SECRET_LOOKING_KEY, config_for, run_cli
from tests.fake_api import FakeAmplemarketAPI, sample_dataset
from tests.fake_api.dataset import SampleFactory, add_surprises

UTC = datetime.timezone.utc
#: Earlier than every sample call (the surprises need it); "2025-13-45" sorts after it.
SURPRISES_AT = datetime.datetime(2025, 12, 1, 6, tzinfo=UTC)
WARNING = re.compile(r"(\w+): (\S+): .*; kept in _extra")


def conformance_warnings(stderr: str) -> Counter[tuple[str, str]]:
    """(stream, field) of each conformance warning."""
    return Counter(m.groups() for m in map(WARNING.search, stderr.splitlines()) if m)


@pytest.fixture
def surprising_api():
    data = sample_dataset(250)
    surprises = add_surprises(data, SURPRISES_AT)
    with FakeAmplemarketAPI(data, api_key=SECRET_LOOKING_KEY, request_budget=1000) as server:
        yield server, surprises


def test_surprising_records_are_coerced_or_kept_and_the_run_succeeds(surprising_api, tmp_path):
    api, surprises = surprising_api
    data = api.data
    # One window: the fake filters dates as text, so an offset near a boundary could be
    # served in a window the tap does not place it in (the real API filters instants).
    config = config_for(api, start_date="2025-12-01T00:00:00Z", window_days=200)

    result = run_cli([], config, tmp_path)

    assert result.returncode == 0, result.stderr[-3000:]
    assert SECRET_LOOKING_KEY not in result.stdout + result.stderr
    expected_ids = [str(call["id"]) for call in data.calls if call["id"] is not None]
    assert set(result.ids()) == set(expected_ids), "every call with an id"

    calls = {record["id"]: record for record in result.records("calls")}

    def delivered(name: str) -> dict:
        return calls[str(surprises[name]["id"])]

    transcript = delivered("transcript_string")
    assert transcript["transcript"] is None
    assert transcript["_extra"] == {"transcript": "Hello"}
    assert delivered("duration_string")["duration"] == 12
    assert delivered("contact_string")["contact"] is None
    assert delivered("contact_string")["_extra"] == {"contact": "Jane Roe <jane@x.example>"}
    assert "phone" not in delivered("contact_unknown_field")["contact"]
    assert delivered("contact_unknown_field")["_extra"] == {"contact.phone": "+1 555 0100"}
    assert delivered("bad_date")["start_date"] is None
    assert delivered("bad_date")["_extra"] == {"start_date": "2025-13-45"}
    assert delivered("offset_date")["start_date"] == "2025-12-01T12:00:00Z"
    assert delivered("naive_date")["start_date"] == "2025-12-01T13:00:00Z"
    assert delivered("numeric_phone")["from"] == "15551234567"
    assert delivered("integer_id")["id"] == "424242"
    assert delivered("unknown_field")["_extra"] == {"sentiment": "positive"}
    assert delivered("boolean_string")["answered"] is True
    assert delivered("own_extra")["_extra"] == {"_extra": {"sent": "by the API"}}
    with_extra = [r for r in calls.values() if "_extra" in r]
    assert len(with_extra) == 6, "only the calls with something to keep have an _extra"
    bookmark = result.last_state["bookmarks"]["calls"]["replication_key_value"]
    assert bookmark == config["end_date"], "the end of the range read, not a call's date"

    user = result.records("users")[-1]
    assert [m["id"] for m in user["mailboxes"]] == [data.users[-1]["mailboxes"][0]["id"], "5"]
    assert user["_extra"] == {"mailboxes[1]": "not a mailbox", "mailboxes[2].provider": "google"}
    mailbox = result.records("mailboxes")[-1]
    assert mailbox["daily_email_limit"] == 200
    assert mailbox["created_at"] == "2025-01-02T09:00:00.123000Z"
    task = next(t for t in result.records("tasks") if t["id"] == data.tasks[-1]["id"])
    # A date-time, as documented; a bare date (an older form) is that day's midnight UTC.
    assert task["due_on"] == "2026-05-20T00:00:00Z"
    assert "_extra" not in task
    documented = [t for t in result.records("tasks") if t["id"] != data.tasks[-1]["id"]]
    assert [t["due_on"] for t in documented] == [
        normalize_datetime(t["due_on"]) for t in data.tasks[:-1]
    ]
    assert len(result.records("dispositions")) == len(data.dispositions) - 2
    leads = sum(len(lead_list["leads"]) for lead_list in data.lead_lists)
    assert len(result.records("lead_list_entries")) == leads - 1
    assert all("_extra" not in r for r in result.records("lead_lists")), "leads: by design"

    assert conformance_warnings(result.stderr) == Counter(
        {
            ("calls", "transcript"): 1,
            ("calls", "contact"): 1,
            ("calls", "contact.phone"): 1,
            ("calls", "start_date"): 1,
            ("calls", "sentiment"): 1,
            ("calls", "_extra"): 1,
            ("users", "mailboxes[]"): 1,
            ("users", "mailboxes[].provider"): 1,
        }
    )
    assert "calls: transcript: a string does not fit type array or null" in result.stderr
    for stream, keys, skipped in [
        ("calls", "id", 1),
        ("dispositions", "id", 2),
        ("lead_list_entries", "lead_list_id, id", 1),
    ]:
        assert result.stderr.count(f"{stream}: skipping records without") == 1
        summary = f"{stream}: skipped {skipped} record(s) without a usable primary key ({keys})"
        assert result.stderr.count(summary) == 1
    assert re.search(
        r"calls: \d+ record\(s\) served without a usable date were written", (result.stderr)
    )


def test_a_call_without_a_usable_date_is_written_as_served_and_moves_no_bookmark(tmp_path):
    data = sample_dataset(120, days=20, end=datetime.datetime(2026, 4, 21, tzinfo=UTC))
    undated = []
    for day in range(11, 20):
        call = SampleFactory(day).call(SURPRISES_AT, data.users, data.dispositions)
        # At a window boundary as text, so two padded window queries of the fake return it.
        call["start_date"] = f"2026-04-{day}T00:00:00Z (estimated)"
        undated.append(call)
    data.calls.extend(undated)

    with FakeAmplemarketAPI(data, api_key=SECRET_LOOKING_KEY) as api:
        config = config_for(
            api,
            start_date="2026-04-10T00:00:00Z",
            end_date="2026-04-21T00:00:00Z",
            window_days=1,
            max_concurrent_requests=1,  # a first window of a whole day
        )
        result = run_cli([], config, tmp_path)

    queried = {
        (r.params["start_date_from"], r.params["start_date_to"]) for r in api.requests_to("/calls")
    }
    assert queried
    assert result.returncode == 0, result.stderr[-3000:]
    assert SECRET_LOOKING_KEY not in result.stdout + result.stderr
    in_range = [c for c in data.calls if "2026-04-10" <= c["start_date"] < "2026-04-21"]
    assert {c["id"] for c in in_range} <= set(result.ids()), "each call"
    assert Counter(result.ids())[undated[0]["id"]] >= 1
    by_id = {record["id"]: record for record in result.records("calls")}
    for call in undated:
        assert by_id[call["id"]]["start_date"] is None
        assert by_id[call["id"]]["_extra"] == {"start_date": call["start_date"]}
    bookmark = result.last_state["bookmarks"]["calls"]["replication_key_value"]
    assert bookmark == "2026-04-21T00:00:00Z", "the end of the range read, not a call's date"
    assert re.search(
        r"calls: \d+ record\(s\) served without a usable date were written", (result.stderr)
    )
    warnings = conformance_warnings(result.stderr)
    assert {k: n for k, n in warnings.items() if k[0] == "calls"} == {("calls", "start_date"): 1}
    assert result.stderr.count("New replication value is null") <= 1, "no line per call"


def test_the_sample_data_fits_the_declared_types(api, config, tmp_path):
    result = run_cli([], config, tmp_path)

    assert result.returncode == 0, result.stderr[-3000:]
    assert "does not fit" not in result.stderr
    assert "without a usable" not in result.stderr
    assert set(conformance_warnings(result.stderr)) == set()
    assert [a["website"] for a in result.records("accounts")] == [
        a["website"] for a in api.data.accounts
    ]
    assert all("_links" not in r for s in ("sequences", "lead_lists") for r in result.records(s))
    assert "_links" not in result.stderr, "per-record links are dropped without a warning"
    assert all(
        r.get("_extra") is None for stream in ("calls", "accounts") for r in result.records(stream)
    )


def test_a_bad_date_in_the_usual_shape_is_delivered_and_moves_no_bookmark(tmp_path):
    data = sample_dataset(60, days=20, end=datetime.datetime(2026, 4, 21, tzinfo=UTC))
    odd = SampleFactory(3).call(SURPRISES_AT, data.users, data.dispositions)
    odd["start_date"] = "2026-04-15T25:61:61Z"  # 20 characters ending in Z, not a time
    data.calls.append(odd)

    with FakeAmplemarketAPI(data, api_key=SECRET_LOOKING_KEY) as api:
        config = config_for(
            api, start_date="2026-04-01T00:00:00Z", end_date="2026-04-21T00:00:00Z", window_days=1
        )
        result = run_cli([], config, tmp_path)

    assert result.returncode == 0, result.stderr[-3000:]
    assert Counter(result.ids())[odd["id"]] >= 1
    delivered = next(r for r in result.records("calls") if r["id"] == odd["id"])
    assert delivered["start_date"] is None
    assert delivered["_extra"] == {"start_date": "2026-04-15T25:61:61Z"}
    bookmark = result.last_state["bookmarks"]["calls"]["replication_key_value"]
    assert bookmark == "2026-04-21T00:00:00Z"


def test_text_cut_mid_emoji_is_read_not_retried_for_ever(tmp_path):
    data = sample_dataset(40, days=20, end=datetime.datetime(2026, 4, 21, tzinfo=UTC))
    data.calls[5]["notes"] = "Great call \ud83d"  # a lone surrogate: msgspec refuses it
    with FakeAmplemarketAPI(data, api_key=SECRET_LOOKING_KEY) as api:
        config = config_for(api, start_date="2026-04-01T00:00:00Z", max_retries=2)
        result = run_cli([], config, tmp_path)

    assert result.returncode == 0, result.stderr[-3000:]
    assert "Retrying" not in result.stderr
    notes = {r["id"]: r["notes"] for r in result.records("calls")}
    assert notes[data.calls[5]["id"]] == "Great call \ufffd"
    assert len(notes) == len(data.calls)


def test_json_msgspec_refuses_is_read_leniently():
    from tap_amplemarket.http import lenient_json

    body = lenient_json(b'{"a": "x\\udfffy", "b": 1e400, "c": "\\ud83d\\ude00", "d": 1.5}')
    odd = lenient_json(b'{"e": "caf\xe9", "f": NaN, "g": -Infinity, "h": ' + b"9" * 5000 + b"}")

    assert body == {"a": "x\ufffdy", "b": "1e400", "c": "\U0001f600", "d": 1.5}
    assert odd == {"e": "caf\ufffd", "f": "NaN", "g": "-Infinity", "h": "9" * 5000}


def test_nan_and_infinity_are_kept_as_their_text_not_nulled(tmp_path):
    data = sample_dataset(40, days=20, end=datetime.datetime(2026, 4, 21, tzinfo=UTC))
    data.calls[3]["duration"] = float("nan")  # the fake's json.dumps writes NaN, as some do
    data.calls[4]["duration"] = float("-inf")
    with FakeAmplemarketAPI(data, api_key=SECRET_LOOKING_KEY) as api:
        result = run_cli([], config_for(api, start_date="2026-04-01T00:00:00Z"), tmp_path)

    assert result.returncode == 0, result.stderr[-3000:]
    calls = {r["id"]: r for r in result.records("calls")}
    for call, text in ((data.calls[3], "NaN"), (data.calls[4], "-Infinity")):
        assert calls[call["id"]]["duration"] is None
        assert calls[call["id"]]["_extra"] == {"duration": text}

"""`tap-amplemarket --probe` against the fake API in each of its UNKNOWN switches: the fact
each switch changes is reported DIFFERS, the exit code says whether the tap depends on it, and
nothing personal (nor the key) is printed."""

from __future__ import annotations

import datetime
import json
import subprocess
import typing as t

import pytest

from tests.conftest import API_KEY, TAP_COMMAND, config_for
from tests.fake_api import FakeAmplemarketAPI, sample_dataset
from tests.fake_api.dataset import add_surprises
from tests.fake_api.endpoints import ENDPOINTS

#: Paths the probe may send a GET to: the list endpoints the streams read, nothing else.
STREAM_PATHS = {e.path for e in ENDPOINTS}


def probe(api: FakeAmplemarketAPI, tmp_path: t.Any, **overrides: t.Any) -> tuple[dict, str, int]:
    """Run `--probe --probe-json` as a user would: (findings by fact, all output, exit code)."""
    config_file = tmp_path / "config.json"
    config_file.write_text(json.dumps(config_for(api, page_size=100, **overrides)))
    report = tmp_path / "probe.json"
    command = [*TAP_COMMAND, "--config", str(config_file), "--probe", "--probe-json", str(report)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    output = done.stdout + done.stderr + report.read_text()
    findings = {f["fact"]: f for f in json.loads(report.read_text())["findings"]}
    assert json.loads(report.read_text())["exit_code"] == done.returncode
    assert len(done.stdout.splitlines()) == len(findings), "one line per fact"
    assert "Traceback" not in done.stderr
    return findings, output, done.returncode


def assert_read_only(api: FakeAmplemarketAPI) -> None:
    assert 0 < len(api.requests) <= 60
    assert {r.method for r in api.requests} == {"GET"}
    assert all(api.endpoint_at_or_none(r.path) is not None for r in api.requests)


def test_the_documented_api_confirms_every_fact(tmp_path):
    with FakeAmplemarketAPI(sample_dataset(60), api_key=API_KEY) as api:
        findings, _, code = probe(api, tmp_path)

    assert code == 0
    statuses = {fact: f["status"] for fact, f in findings.items() if fact != "summary"}
    assert set(statuses.values()) <= {"CONFIRMED", "NO DATA"}, statuses
    assert statuses["calls_date_filter"] == "CONFIRMED"
    assert statuses["plan_gated"] == "NO DATA"
    assert len(statuses) >= 15
    assert_read_only(api)


#: Each UNKNOWN switch of the fake: the fact it makes DIFFER, and whether the tap depends
#: on it (exit 1) or copes (exit 0).
SWITCHES = [
    ({"plan_lacks": {"/accounts": 403}}, "plan_gated", False),
    ({"entries_key": "results"}, "lead_list_entries_key", False),
    ({"exclusion_page_param": "size"}, "exclusions_page_param", False),
    ({"next_links_drop_filters": True}, "next_links_keep_filters", False),
    ({"silent_page_caps": {"/calls": 10}}, "page_size", False),
    ({"page_size_refusal": "plain", "max_page_sizes": {"/users": 50}}, "page_size", False),
    ({"page_size_refusal": "detail", "max_page_sizes": {"/users": 50}}, "page_size", False),
    ({"page_size_refusal": "opaque", "max_page_sizes": {"/users": 50}}, "page_size", True),
    ({"unfiltered_hides_finished": True}, "unfiltered_users", True),
    ({"unfiltered_hides_finished": True}, "unfiltered_tasks", True),
    ({"unfiltered_hides_finished": True}, "unfiltered_sequences", True),
    ({"calls_date_filter": "ignored"}, "calls_date_filter", True),
    ({"calls_date_filter": "inclusive"}, "calls_date_filter", False),
    ({"calls_date_filter": "exclusive"}, "calls_date_filter", False),
    ({"calls_date_filter": "mixed"}, "calls_date_filter", False),
    ({"calls_date_filter": "days"}, "calls_date_filter", False),
    ({"calls_date_filter": "local:+05:30"}, "calls_date_filter", False),
    ({"calls_by_id": True}, "calls_order", False),
    ({"media_type": "application/json"}, "media_type", False),
]


@pytest.mark.parametrize(("switch", "fact", "matters"), SWITCHES, ids=lambda v: str(v))
def test_each_unknown_switch_is_reported(tmp_path, switch, fact, matters):
    with FakeAmplemarketAPI(sample_dataset(60), api_key=API_KEY, **switch) as api:
        findings, _, code = probe(api, tmp_path)

    assert findings[fact]["status"] == "DIFFERS", findings[fact]
    assert findings[fact]["follows"], "it says what the tap does, or what to change"
    assert findings[fact]["matters"] is matters
    assert code == (1 if matters else 0)
    assert_read_only(api)


def test_records_the_tap_cannot_read_are_reported(tmp_path):
    data = sample_dataset(60)
    add_surprises(data, datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc))
    with FakeAmplemarketAPI(data, api_key=API_KEY) as api:
        api.fail_next("records-as", times=None, path="/sequences", value={"id": "x"})
        findings, _, code = probe(api, tmp_path, max_retries=1)

    assert code == 1
    for fact in ("records_keys", "transcript_entries", "date_formats", "undeclared_fields"):
        assert findings[fact]["status"] == "DIFFERS", findings[fact]
    assert "calls.sentiment" in findings["undeclared_fields"]["seen"]


@pytest.mark.parametrize("how", ["wrong key", "403 first"], ids=["401", "403-on-the-first-request"])
def test_a_rejected_key_exits_2(tmp_path, how):
    every_path = {e.path: 403 for e in ENDPOINTS} if how == "403 first" else {}
    with FakeAmplemarketAPI(sample_dataset(5), api_key=API_KEY, plan_lacks=every_path) as api:
        key = "a-wrong-key" if how == "wrong key" else API_KEY
        findings, _, code = probe(api, tmp_path, api_key=key)

    assert code == 2
    assert list(findings) == ["key"]
    assert len(api.requests) <= 3


PERSONAL = {"id", "name", "email", "from", "to", "notes", "text", "domain", "website",
            "linkedin_url", "owner", "owner_email", "user_email", "created_by_user_id",
            "created_by_user_email", "sequence_key", "sequence_name", "person_id",
            "disposition_id", "task_id", "user_id", "recording_url"}  # fmt: skip


def personal_values(value: t.Any, key: str = "") -> t.Iterator[str]:
    if isinstance(value, dict):
        for k, v in value.items():
            yield from personal_values(v, k)
    elif isinstance(value, list):
        for item in value:
            yield from personal_values(item, key)
    elif key in PERSONAL and isinstance(value, (str, int)) and len(str(value)) >= 4:
        yield str(value)


@pytest.mark.parametrize(
    "switch", [{}, {"unfiltered_hides_finished": True}], ids=["plain", "hides"]
)
def test_no_personal_data_nor_the_key_is_printed(tmp_path, switch):
    data = sample_dataset(60)
    add_surprises(data, datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc))
    with FakeAmplemarketAPI(data, api_key="probe-key-s3cr3t-0042", **switch) as api:
        _, output, _ = probe(api, tmp_path)

    values = set(personal_values(dict(api.dataset)))
    assert len(values) > 100
    leaked = sorted(v for v in values if v in output)
    assert leaked == []
    assert "s3cr3t" not in output

"""Adding a stream takes a class in streams.py, its schema, and a row of the fake API's table
written from the endpoint's docs, and nothing else.

On a copy of the project, two streams are added as CONTRIBUTING.md says (a list, and a child
read per parent record): the tap discovers them, the fake API serves copies of their rows'
examples, a sync delivers them across pages, and the copy's own contract, stream, fake API
and metadata tests pass once `make metadata` has regenerated the docs.
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
import sys
import typing as t

import pytest
import requests

from tests.conftest import API_KEY, run_cli
from tests.fake_api.process import fake_api_process
from tests.fake_api.server import STATS_PATH

ROOT = pathlib.Path(__file__).resolve().parent.parent
#: The schema files a contributor writes for the two new streams.
NEW_SCHEMAS = pathlib.Path(__file__).resolve().parent / "new_stream"
COPIED = ("tap_amplemarket", "tests", "scripts", "docs", ".github")
COPIED_FILES = ("pyproject.toml", "README.md", "meltano.yml")

NEW_STREAMS = '''

class MeetingsStream(AmplemarketStream):
    """Meetings booked with leads; parent of `meeting_notes`."""

    name = "meetings"
    path = "/meetings"
    max_page_size = 25
    child_context_key = "meeting_id"


class MeetingNotesStream(AmplemarketStream):
    """Notes taken in each meeting: /meeting-notes requires `meeting_id`."""

    name = "meeting_notes"
    path = "/meeting-notes"
    records_key = "notes"
    max_page_size = 50
    parent_stream_type = MeetingsStream
'''

#: The fake API's rows for them, as a contributor writes them from the endpoints' docs.
NEW_ENDPOINTS = """

ENDPOINTS += (
    Endpoint(
        "meetings",
        "/meetings",
        "meetings",
        ("id",),
        example={
            "title": "Intro call",
            "starts_at": "2026-05-04T10:00:00Z",
            "duration_minutes": 30,
            "confirmed": True,
            "organizer_email": "rep@acme.example",
            "attendees": [],
        },
    ),
    Endpoint(
        "meeting_notes",
        "/meeting-notes",
        "notes",
        ("id",),
        parent="meetings",
        parent_key="meeting_id",
        example={"text": "Asked for pricing", "created_at": "2026-05-04T10:30:00Z"},
    ),
)
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> pathlib.Path:
    """A copy of the project with two streams added: their classes and schemas only."""
    copy = tmp_path_factory.mktemp("project")
    for name in COPIED:
        shutil.copytree(ROOT / name, copy / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in COPIED_FILES:
        shutil.copy(ROOT / name, copy / name)
    with (copy / "tap_amplemarket" / "streams.py").open("a") as streams:
        streams.write(NEW_STREAMS)
    with (copy / "tests" / "fake_api" / "endpoints.py").open("a") as endpoints:
        endpoints.write(NEW_ENDPOINTS)
    for schema in NEW_SCHEMAS.glob("*.json"):
        shutil.copy(schema, copy / "tap_amplemarket" / "schemas" / schema.name)
    return copy


def in_copy(project: pathlib.Path) -> dict[str, t.Any]:
    """How to run the copy's code rather than this checkout's (the venv has the checkout)."""
    return {"env": {**os.environ, "PYTHONPATH": str(project)}, "cwd": project}


def test_a_new_stream_is_discovered_served_and_synced(project, tmp_path):
    fake = [sys.executable, "-m", "tests.fake_api"]
    calls = ("--calls", "20", "--days", "60", "--end", "2026-06-01T00:00:00Z")
    with fake_api_process(*fake, "--api-key", API_KEY, *calls, **in_copy(project)) as url:
        config = {
            "api_key": API_KEY,
            "api_url": url,
            "start_date": "2026-03-01T00:00:00Z",
            "end_date": "2026-06-02T00:00:00Z",
            "page_size": 5,
        }
        catalog = json.loads(run_cli(["--discover"], config, tmp_path, **in_copy(project)).stdout)
        result = run_cli([], config, tmp_path, **in_copy(project))
        served = requests.get(url + STATS_PATH, timeout=10).json()["requests_by_path"]

    keys = {stream["tap_stream_id"]: stream["key_properties"] for stream in catalog["streams"]}
    assert keys["meetings"] == keys["meeting_notes"] == ["id"]
    assert result.returncode == 0, result.stderr[-2000:]
    meetings = {meeting["id"] for meeting in result.records("meetings")}
    notes = result.records("meeting_notes")
    assert len(meetings) == 12
    assert len(notes) == 3 * len(meetings)
    assert {note["meeting_id"] for note in notes} == meetings
    assert served["/meetings"] == 3, "12 meetings in pages of 5"
    assert served["/meeting-notes"] == len(meetings), "one request per meeting"


def test_the_copys_own_tests_pass_once_make_metadata_has_run(project):
    metadata = [sys.executable, "scripts/sync_plugin_metadata.py"]
    subprocess.run(metadata, check=True, capture_output=True, **in_copy(project))
    assert "## meetings" in (project / "docs" / "streams.md").read_text()

    tests = [
        "tests/test_contract.py::test_the_taps_streams_are_the_documented_endpoints",
        "tests/test_streams.py",
        "tests/test_fake_api.py",
        "tests/test_plugin_metadata.py",
        "tests/test_core.py",  # the SDK's standard tests, on every stream
    ]
    pytest_args = ["-v", "-p", "no:cacheprovider", "-m", "not meltano", *tests]
    run = subprocess.run(
        [sys.executable, "-m", "pytest", *pytest_args],
        **in_copy(project),
        capture_output=True,
        text=True,
        check=False,
    )

    assert run.returncode == 0, run.stdout[-3000:]
    assert "test_the_fakes_records_fit_the_taps_schema[meeting_notes] PASSED" in run.stdout
    assert "test_the_taps_streams_are_the_documented_endpoints PASSED" in run.stdout
    assert "test_tap_stream_returns_record[meeting_notes] PASSED" in run.stdout

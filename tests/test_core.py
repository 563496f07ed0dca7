"""The SDK's standard tap tests, run against the fake API."""

from __future__ import annotations

import atexit
import json
import pathlib
import typing as t

from singer_sdk.testing import get_tap_test_class

from tap_amplemarket.schemas import FIELD_SOURCE
from tap_amplemarket.tap import TapAmplemarket
from tests.conftest import API_KEY
from tests.fake_api import FakeAmplemarketAPI, sample_dataset
from tests.fake_api.endpoints import ENDPOINTS
from tests.fake_api.generate import fill_missing

#: A value of each JSON type, for fields the docs do not list.
PLAUSIBLE = {"string": "text", "integer": 1, "number": 0.5, "boolean": True}


def undocumented_values(stream_name: str) -> dict[str, t.Any]:
    """A value for each column the docs do not list (the API may send them: the schema keeps
    them), so that the standard tests, which warn about a column without values, see one."""
    schema = json.loads((SCHEMAS / f"{stream_name}.json").read_text())
    values = {}
    for name, prop in schema["properties"].items():
        kinds = [k for k in ([prop["type"]] if isinstance(prop["type"], str) else prop["type"])]
        if prop[FIELD_SOURCE].startswith("undocumented") and (
            kind := next((k for k in kinds if k in PLAUSIBLE), None)
        ):
            values[name] = PLAUSIBLE[kind]
    return values


def with_an_undeclared_field_in_every_stream():
    """Sample data where each stream's first record has a field its schema lacks, so the
    `_extra` column that keeps it has values for the standard tests to check (their data
    would otherwise never fill it, and they warn about a field without values), and the
    fields the docs do not list but the schema keeps."""
    data = sample_dataset(120)
    fill_missing(data, ENDPOINTS)  # what the fake would serve for a stream with no sample data
    for endpoint in ENDPOINTS:
        if endpoint.detail:
            first = data[endpoint.parent][0][endpoint.records_key][0]
        else:
            first = min(data[endpoint.stream], key=lambda record: record.get("start_date", ""))
        first["undeclared"] = f"a {endpoint.stream} field no schema declares"
        extra = undocumented_values(endpoint.stream)
        extra.pop(endpoint.parent_key or "", None)  # added by the tap, not sent
        first.update({k: v for k, v in extra.items() if k not in first})
    return data


SCHEMAS = pathlib.Path(__file__).resolve().parent.parent / "tap_amplemarket" / "schemas"

# The standard test class reads its config at import time, so the server starts here.
_API = FakeAmplemarketAPI(with_an_undeclared_field_in_every_stream(), api_key=API_KEY).start()
atexit.register(_API.stop)

TestTapAmplemarket = get_tap_test_class(
    tap_class=TapAmplemarket,
    config={
        "api_key": API_KEY,
        "api_url": _API.url,
        "start_date": "2026-04-01T00:00:00Z",
        "end_date": "2026-06-02T00:00:00Z",
        "page_size": 30,
    },
)

"""The SDK's standard tap tests, run against the fake API."""

from __future__ import annotations

import atexit

from singer_sdk.testing import get_tap_test_class

from tap_amplemarket.tap import TapAmplemarket
from tests.conftest import API_KEY
from tests.fake_api import FakeAmplemarketAPI, sample_dataset
from tests.fake_api.endpoints import ENDPOINTS
from tests.fake_api.generate import fill_missing


def with_an_undeclared_field_in_every_stream():
    """Sample data where each stream's first record has a field its schema lacks, so the
    `_extra` column that keeps it has values for the standard tests to check (their data
    would otherwise never fill it, and they warn about a field without values)."""
    data = sample_dataset(120)
    fill_missing(data, ENDPOINTS)  # what the fake would serve for a stream with no sample data
    for endpoint in ENDPOINTS:
        if endpoint.detail:
            first = data[endpoint.parent][0][endpoint.records_key][0]
        else:
            first = min(data[endpoint.stream], key=lambda record: record.get("start_date", ""))
        first["undeclared"] = f"a {endpoint.stream} field no schema declares"
    return data


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

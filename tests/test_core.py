"""The SDK's standard tap tests, run against the fake API."""

from __future__ import annotations

import atexit

from singer_sdk.testing import get_tap_test_class

from tap_amplemarket.fake_api import FakeAmplemarketAPI, sample_dataset
from tap_amplemarket.tap import TapAmplemarket
from tests.conftest import API_KEY

# The standard test class reads its config at import time, so the server starts here.
_API = FakeAmplemarketAPI(sample_dataset(120), api_key=API_KEY).start()
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

"""PyAirbyte runs `source-amplemarket` as a local executable into a DuckDB cache.

Runs in its own virtualenv (`make test-airbyte`), without the tap's dependencies: the fake
API runs from the project's virtualenv, beside source-amplemarket, in a process of its own.
"""

from __future__ import annotations

import datetime
import json
import os
import pathlib
import typing as t
import urllib.request

import airbyte as ab
import pytest
from airbyte.caches import DuckDBCache

from tap_amplemarket.timefmt import isoformat_z, parse_timestamp
from tests.fake_api.dataset import Dataset, SampleFactory, sample_dataset
from tests.fake_api.process import fake_api_process

ROOT = pathlib.Path(__file__).resolve().parent.parent

KEY = "sk-live-DO-NOT-PRINT-5f3c9a"
LOOKBACK_DAYS = 3
CALLS, DAYS, END = 300, 60, "2026-06-01T00:00:00Z"


class FakeAPI(t.NamedTuple):
    url: str
    data: Dataset  # what it serves: the same sample data, made from the same arguments

    def add_call(self, call: dict[str, t.Any]) -> None:
        """Log a call after the fact (`POST /calls`)."""
        request = urllib.request.Request(  # noqa: S310 (the fake's own http://127.0.0.1 URL)
            f"{self.url}/calls",
            data=json.dumps(call).encode(),
            headers={"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            assert response.status == 201
        self.data.calls.append(call)


@pytest.fixture
def source_executable() -> str:
    path = os.environ.get("SOURCE_AMPLEMARKET", "")
    assert pathlib.Path(path).is_file(), "set SOURCE_AMPLEMARKET (make test-airbyte does)"
    return path


@pytest.fixture
def api(source_executable) -> t.Iterator[FakeAPI]:
    python = pathlib.Path(source_executable).with_name("python")
    args = ("--api-key", KEY, "--calls", str(CALLS), "--days", str(DAYS), "--end", END)
    with fake_api_process(python, "-m", "tests.fake_api", *args, cwd=ROOT) as url:
        yield FakeAPI(url, sample_dataset(CALLS, days=DAYS, end=parse_timestamp(END)))


def calls_in_cache(cache: DuckDBCache) -> list[str]:
    return list(cache["calls"].to_pandas()["id"])


def test_pyairbyte_syncs_into_duckdb_and_then_reads_only_the_lookback(
    api, source_executable, tmp_path
):
    config = {
        "api_key": KEY,
        "api_url": api.url,
        "start_date": "2026-03-01T00:00:00Z",
        "end_date": "2026-06-02T00:00:00Z",
        "page_size": 25,
        "window_days": 14,
        "lookback_window_days": LOOKBACK_DAYS,
        "max_requests_per_minute": 100_000,
    }
    source = ab.get_source("source-amplemarket", config=config, local_executable=source_executable)
    cache = DuckDBCache(db_path=tmp_path / "pyairbyte.duckdb", schema_name="amplemarket")

    source.check()
    source.select_all_streams()
    first = source.read(cache=cache)

    # PyAirbyte drops lines it cannot parse without a word: count what landed.
    ids = calls_in_cache(cache)
    assert len(ids) == len(set(ids)) == len(api.data.calls)
    assert set(ids) == {call["id"] for call in api.data.calls}
    for stream, expected in (("dispositions", api.data.dispositions), ("users", api.data.users)):
        assert len(cache[stream].to_pandas()) == len(expected)
    assert len(cache["lead_list_entries"].to_pandas()) > 0
    # The bookmark is the end of the range read (docs/windows.md), here end_date.
    bookmark = config["end_date"]
    state = cache.get_state_provider("source-amplemarket").get_stream_state("calls")
    assert state.stream.stream_state.replication_key_value == bookmark

    logged_late = parse_timestamp(bookmark) - (datetime.timedelta(days=LOOKBACK_DAYS - 1))
    late = SampleFactory(seed=99).call(logged_late, api.data.users, api.data.dispositions)
    api.add_call(late)
    source.select_streams(["calls"])
    second = source.read(cache=cache)

    # Read again: [bookmark - lookback, end_date), its query a second lower.
    lookback_start = isoformat_z(
        parse_timestamp(bookmark) - datetime.timedelta(days=LOOKBACK_DAYS, seconds=1)
    )
    in_lookback = sum(call["start_date"] >= lookback_start for call in api.data.calls)
    assert second.processed_records == in_lookback
    assert second.processed_records < first.processed_records / 10
    ids = calls_in_cache(cache)
    assert late["id"] in ids
    assert len(ids) == len(set(ids)) == len(api.data.calls), "merged on id, no duplicates"

"""Benchmark: the Connector Builder manifest's first sync of calls against a distant,
rate-limited API, at the quota's floor? (bench/latency.py measures the tap the same way.)

The fake API runs in its own process, adds --latency seconds to every answer and enforces
--quota requests per minute itself (429 + Retry-After beyond it). airbyte-cdk's
`source-declarative-manifest read` runs manifest/manifest.yaml (calls only, incremental) from
.venv-cdk (`make .venv-cdk/bin/.installed`) with concurrency 1 and the manifest's default; it
prints the wall time, the rate-limit floor (requests made / quota), their ratio (with and
without the CDK's start-up), the requests made against ceil(N / page size), the 429s drawn
and peak RSS.
Usage: python bench/manifest_latency.py [--latency 0.25] [--quota 500] [--histories 1]
"""

from __future__ import annotations

import argparse
import datetime
import json
import pathlib
import sys
import tempfile
import typing as t

import yaml
from _common import KEY, fake_api, request_stats, run_measured
from latency import END, HISTORIES, PAGE_SIZE, print_header, print_row

ROOT = pathlib.Path(__file__).resolve().parent.parent
MANIFEST = ROOT / "manifest" / "manifest.yaml"
SOURCE = ROOT / ".venv-cdk" / "bin" / "source-declarative-manifest"
DEFAULT_CONCURRENCY = yaml.safe_load(MANIFEST.read_text())["concurrency_level"]


def calls_catalog() -> dict[str, t.Any]:
    """A configured catalog of `calls` alone, incremental, from the manifest's declaration."""
    calls = yaml.safe_load(MANIFEST.read_text())["definitions"]["streams"]["calls"]
    stream = {
        "name": "calls",
        "json_schema": calls["schema_loader"]["schema"],
        "supported_sync_modes": ["full_refresh", "incremental"],
        "source_defined_cursor": True,
        "default_cursor_field": [calls["incremental_sync"]["cursor_field"]],
    }
    return {
        "streams": [
            {"stream": stream, "sync_mode": "incremental", "destination_sync_mode": "append"}
        ]
    }


def run(url: str, days: int, concurrency: int | None, workdir: pathlib.Path) -> dict[str, float]:
    config: dict[str, t.Any] = {
        "api_key": KEY,
        "api_url": url,
        "start_date": (END - datetime.timedelta(days=days)).isoformat(),
        "end_date": END.isoformat(),
        "page_size": PAGE_SIZE,
    }
    if concurrency is not None:
        config["max_concurrent_requests"] = concurrency
    (workdir / "config.json").write_text(json.dumps(config))
    (workdir / "catalog.json").write_text(json.dumps(calls_catalog()))
    before = request_stats(url)
    measured = run_measured(
        [
            str(SOURCE),
            "read",
            "--config",
            str(workdir / "config.json"),
            "--catalog",
            str(workdir / "catalog.json"),
            "--manifest-path",
            str(MANIFEST),
        ]
    )
    after = request_stats(url)
    made = after["requests_by_path"]["/calls"] - before["requests_by_path"].get("/calls", 0)
    rejected = after["requests_by_status"].get("429", 0) - before["requests_by_status"].get(
        "429", 0
    )
    return {
        "seconds": measured.seconds,
        "requests": made,
        "429s": rejected,
        "rss": measured.rss,
        "records": measured.records,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--latency", type=float, default=0.25)
    parser.add_argument("--quota", type=float, default=500, help="requests per minute")
    parser.add_argument("--histories", type=int, default=len(HISTORIES), help="the first N")
    args = parser.parse_args()
    if not SOURCE.exists():
        sys.exit(f"{SOURCE} is missing: make .venv-cdk/bin/.installed")
    default = DEFAULT_CONCURRENCY["default_concurrency"]
    print(
        f"latency {args.latency:g} s per request, quota {args.quota:g} requests/min, "
        f"page size {PAGE_SIZE}, concurrency_level {default!r}"
    )
    startup = min(run_measured([str(SOURCE), "spec"]).seconds for _ in range(3))
    print(f"CDK start-up (source-declarative-manifest spec, best of 3): {startup:.2f} s")
    print_header()
    with tempfile.TemporaryDirectory() as tmp:
        for name, (sparse, days, workdays, burst) in list(HISTORIES.items())[: args.histories]:
            calls = sparse + burst
            fake_args = ["--calls", str(sparse), "--days", str(days), "--end", END.isoformat()]
            fake_args += ["--burst", str(burst)]
            fake_args += ["--latency", str(args.latency), "--quota", str(args.quota)]
            with fake_api(*fake_args, *(["--workdays"] if workdays else [])) as url:
                for concurrency in (1, None):
                    row = run(url, days, concurrency, pathlib.Path(tmp))
                    if row["records"] != calls:
                        sys.exit(f"{name}: {row['records']} calls read, not {calls}")
                    shown = concurrency or "dflt"
                    print_row(name, calls, shown, row, args.quota, startup)


if __name__ == "__main__":
    main()

"""Benchmark: a full sync of N calls from the fake API, the tap beside a bare HTTP loop.

For each N it runs, against the same fake API on 127.0.0.1 and side by side:
  - the tap (`tap-amplemarket`, calls stream only, Singer messages to /dev/null);
  - a bare `requests` + `json` loop that pages through the same calls and discards them;
and prints records/s of both (best of --repeat runs, alternating), their ratio, the ratio of
their CPU seconds (bare / tap: the tap's concurrent windows cannot flatter it), requests made
vs ceil(N / page_size), and the peak RSS of each process.
Usage: python bench/full_sync.py [--sizes 10000 50000 200000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import math
import pathlib
import sys
import tempfile

from _common import KEY, TAP, calls_only_catalog, fake_api, request_stats, run_measured

START, END = "2026-03-01T00:00:00Z", "2026-05-01T00:00:00Z"
PAGE_SIZE = 100
BARE_LOOP = """
import json, sys, requests
base, key, start, end = sys.argv[1:5]
session = requests.Session()
session.headers["Authorization"] = f"Bearer {key}"
url = f"{base}/calls?page[size]=100&start_date_from={start}&start_date_to={end}"
records = 0
while url:
    body = json.loads(session.get(url, timeout=60).content)
    records += len(body["calls"])
    next_link = body["_links"].get("next")
    url = base + next_link["href"] if next_link else None
print(records)
"""


def bench_size(calls: int, workdir: pathlib.Path, repeat: int) -> dict[str, float]:
    with fake_api("--calls", str(calls), "--days", "60", "--end", END) as url:
        config = {
            "api_key": KEY,
            "api_url": url,
            "start_date": START,
            "end_date": END,
            "page_size": PAGE_SIZE,
            "window_days": 7,
            "max_requests_per_minute": 10_000_000,
        }
        catalog = calls_only_catalog(config, workdir)
        config_path = workdir / "config.json"

        bare_s = tap_s = bare_cpu = tap_cpu = math.inf
        bare_rss = tap_rss = 0.0
        requests_made = 0
        for _ in range(repeat):  # alternate the two, keep each one's best run
            bare = run_measured([sys.executable, "-c", BARE_LOOP, url, KEY, START, END])
            assert int(bare.first_line) == calls, (bare.first_line, calls)
            bare_s, bare_rss = min(bare_s, bare.seconds), max(bare_rss, bare.rss)
            bare_cpu = min(bare_cpu, bare.cpu)
            before = request_stats(url)["requests_by_path"].get("/calls", 0)
            tap = run_measured([TAP, "--config", str(config_path), "--catalog", str(catalog)])
            assert tap.records == calls, "every call came out as a RECORD line"
            tap_s, tap_rss = min(tap_s, tap.seconds), max(tap_rss, tap.rss)
            tap_cpu = min(tap_cpu, tap.cpu)
            requests_made = request_stats(url)["requests_by_path"]["/calls"] - before
    return {
        "calls": calls,
        "tap_rps": calls / tap_s,
        "bare_rps": calls / bare_s,
        "ratio": bare_s / tap_s,
        "cpu_ratio": bare_cpu / tap_cpu,
        "requests": requests_made,
        "min_requests": math.ceil(calls / PAGE_SIZE),
        "tap_rss": tap_rss,
        "bare_rss": bare_rss,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 50_000, 200_000])
    parser.add_argument("--repeat", type=int, default=3, help="runs of each; the best counts")
    args = parser.parse_args()
    header = (
        f"{'calls':>8} {'tap rec/s':>10} {'bare rec/s':>11} {'tap/bare':>9} {'CPU b/t':>8} "
        f"{'requests':>9} {'ceil(N/ps)':>11} {'tap RSS MiB':>12} {'bare RSS MiB':>13}"
    )
    print(header)
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            row = bench_size(size, pathlib.Path(tmp), args.repeat)
            print(
                f"{row['calls']:>8} {row['tap_rps']:>10.0f} {row['bare_rps']:>11.0f} "
                f"{row['ratio']:>9.2f} {row['cpu_ratio']:>8.2f} {row['requests']:>9} "
                f"{row['min_requests']:>11} "
                f"{row['tap_rss']:>12.1f} {row['bare_rss']:>13.1f}",
                flush=True,
            )


if __name__ == "__main__":
    main()

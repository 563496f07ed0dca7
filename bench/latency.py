"""Benchmark: a first sync of calls against a distant, rate-limited API, at the quota's floor?

The fake API runs in its own process, adds --latency seconds to every answer and enforces
--quota requests per minute itself (a token bucket: 429 + Retry-After beyond it). For each
history (dense working-hours calls, a sparse history of several years, the same with one
very busy day, and with 4,500 calls stamped with one second) it prints, side by side in one run:
  - the tap's wall time with max_concurrent_requests 1 and with the default;
  - the rate-limit floor: requests made / quota (the least time those requests can take);
  - the ratio of wall time to floor (with and without the tap's start-up, which a long sync
    does not notice), the requests made against ceil(N / page size), the 429s the tap drew,
    and peak RSS.
Usage: python bench/latency.py [--latency 0.25] [--quota 500] [--default-only]
"""

from __future__ import annotations

import argparse
import datetime
import math
import pathlib
import tempfile

from _common import KEY, TAP, calls_only_catalog, fake_api, request_stats, run_measured

from tap_amplemarket.tap import TapAmplemarket

PAGE_SIZE = 100
END = datetime.datetime(2026, 6, 1, tzinfo=datetime.timezone.utc)
#: name: (calls, days, working hours only, calls more on the middle day, over how many seconds)
HISTORIES = {
    "dense, 60 days of workdays": (6_000, 60, True, 0, 1),
    "denser, 60 days of workdays": (30_000, 60, True, 0, 1),
    "sparse, 5 years": (5_000, 5 * 365, False, 0, 1),
    "sparse, 5 years, a busy day": (5_000, 5 * 365, False, 8_000, 9 * 3600),
    "sparse, 5 years, 1-second burst": (500, 5 * 365, False, 4_500, 1),
}
DEFAULT_CONCURRENCY = TapAmplemarket.config_jsonschema["properties"]["max_concurrent_requests"][
    "default"
]


def run(url: str, days: int, concurrency: int, workdir: pathlib.Path) -> dict[str, float]:
    config = {
        "api_key": KEY,
        "api_url": url,
        "start_date": (END - datetime.timedelta(days=days)).isoformat(),
        "end_date": END.isoformat(),
        "page_size": PAGE_SIZE,
        "max_concurrent_requests": concurrency,
    }
    catalog = calls_only_catalog(config, workdir)
    before = request_stats(url)
    seconds, rss, *_ = run_measured(
        [TAP, "--config", str(workdir / "config.json"), "--catalog", str(catalog)]
    )
    after = request_stats(url)
    calls_requests = after["requests_by_path"]["/calls"] - before["requests_by_path"].get(
        "/calls", 0
    )
    rejected = after["requests_by_status"].get("429", 0) - before["requests_by_status"].get(
        "429", 0
    )
    return {"seconds": seconds, "requests": calls_requests, "429s": rejected, "rss": rss}


def print_header() -> None:
    print(
        f"{'history':<30} {'calls':>6} {'conc.':>5} {'wall s':>7} {'floor s':>8} "
        f"{'wall/floor':>10} {'w/o start':>9} {'requests':>9} {'ceil(N/ps)':>10} "
        f"{'429s':>5} {'RSS MiB':>8}"
    )


def print_row(
    name: str, calls: int, concurrency: object, row: dict[str, float], quota: float, startup: float
) -> None:
    """One run's figures; the floor is the requests made over the quota."""
    floor = row["requests"] / (quota / 60)
    print(
        f"{name:<30} {calls:>6} {concurrency!s:>5} {row['seconds']:>7.1f} "
        f"{floor:>8.1f} {row['seconds'] / floor:>10.2f} "
        f"{(row['seconds'] - startup) / floor:>9.2f} {row['requests']:>9.0f} "
        f"{math.ceil(calls / PAGE_SIZE):>10} {row['429s']:>5.0f} {row['rss']:>8.1f}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--latency", type=float, default=0.25)
    parser.add_argument("--quota", type=float, default=500, help="requests per minute")
    parser.add_argument(
        "--default-only", action="store_true", help="skip max_concurrent_requests 1"
    )
    args = parser.parse_args()
    print(
        f"latency {args.latency:g} s per request, quota {args.quota:g} requests/min, "
        f"page size {PAGE_SIZE}, default max_concurrent_requests {DEFAULT_CONCURRENCY}"
    )
    startup = min(run_measured([TAP, "--about"]).seconds for _ in range(3))
    print(f"tap start-up (tap-amplemarket --about, best of 3): {startup:.2f} s")
    print_header()
    with tempfile.TemporaryDirectory() as tmp:
        for name, (sparse, days, workdays, burst, burst_seconds) in HISTORIES.items():
            calls = sparse + burst
            fake_args = ["--calls", str(sparse), "--days", str(days), "--end", END.isoformat()]
            fake_args += ["--burst", str(burst), "--burst-seconds", str(burst_seconds)]
            fake_args += ["--latency", str(args.latency), "--quota", str(args.quota)]
            with fake_api(*fake_args, *(["--workdays"] if workdays else [])) as url:
                for concurrency in (1, DEFAULT_CONCURRENCY)[args.default_only :]:
                    row = run(url, days, concurrency, pathlib.Path(tmp))
                    print_row(name, calls, concurrency, row, args.quota, startup)


if __name__ == "__main__":
    main()

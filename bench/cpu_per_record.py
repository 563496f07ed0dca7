"""Benchmark: records per CPU-second of the tap, a plain SDK tap and a bare HTTP loop.

From one fake API of N calls on 127.0.0.1 (its own process), one run each, in turn:
  - a bare `requests` + `json` loop paging through the calls (bench/full_sync.py's);
  - a plain Singer SDK tap of the calls endpoint, as the SDK's cookiecutter writes one
    (bench/plain_sdk_tap.py: the SDK's own conformance, nothing overridden for speed);
  - the tap (`tap-amplemarket`, calls stream only).
Each prints records per CPU-second (user + system, of its process) and records/s. The API's
quota (about 800 records/s) needs a small fraction of a core from any of the three.
Usage: python bench/cpu_per_record.py [--calls 50000]
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
import tempfile

from _common import KEY, TAP, Measured, calls_only_catalog, fake_api, run_measured
from full_sync import BARE_LOOP

START, END = "2026-03-01T00:00:00Z", "2026-05-01T00:00:00Z"
PLAIN_SDK_TAP = str(pathlib.Path(__file__).resolve().parent / "plain_sdk_tap.py")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=50_000)
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory() as tmp,
        fake_api("--calls", str(args.calls), "--days", "60", "--end", END) as url,
    ):
        workdir = pathlib.Path(tmp)
        config = {
            "api_key": KEY,
            "api_url": url,
            "start_date": START,
            "end_date": END,
            "page_size": 100,
            "window_days": 7,
            "max_requests_per_minute": 10_000_000,
        }
        catalog = calls_only_catalog(config, workdir)
        plain_config = workdir / "plain.json"
        plain_config.write_text(
            json.dumps({"api_key": KEY, "api_url": url, "start_date": START, "end_date": END})
        )
        bare = [sys.executable, "-c", BARE_LOOP, url, KEY, START, END]
        plain = [sys.executable, PLAIN_SDK_TAP, "--config", str(plain_config)]
        tap = [TAP, "--config", str(workdir / "config.json"), "--catalog", str(catalog)]
        runs: dict[str, Measured] = {
            "bare requests loop": run_measured(bare),
            "plain SDK tap": run_measured(plain),
            "tap-amplemarket": run_measured(tap),
        }
    print(f"{args.calls} calls; one run each")
    print(f"{'':<20} {'records':>8} {'CPU s':>7} {'rec/CPU-s':>10} {'rec/s':>8} {'RSS MiB':>8}")
    for name, run in runs.items():
        records = int(run.first_line) if name.startswith("bare") else run.records
        assert records == args.calls, f"{name}: {records} records of {args.calls}"
        print(
            f"{name:<20} {records:>8} {run.cpu:>7.2f} {records / run.cpu:>10.0f} "
            f"{records / run.seconds:>8.0f} {run.rss:>8.1f}",
            flush=True,
        )


if __name__ == "__main__":
    main()

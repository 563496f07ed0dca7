"""Benchmark: the same calls synced through the Singer tap and through the Airbyte source.

For each N, against one fake API (in its own process) and side by side in one run:
  - `tap-amplemarket --catalog` (calls only): Singer messages;
  - `source-amplemarket read` (calls only, incremental): Airbyte messages;
both drained through a pipe as a target or the Airbyte platform would. Prints records/s of
each (best of --repeat alternating runs), their ratio, and the peak RSS of each.
Usage: python bench/airbyte_vs_singer.py [--sizes 50000 200000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import math
import pathlib
import subprocess
import tempfile
import typing as t

from _common import KEY, SOURCE, TAP, fake_api, run_measured

START, END = "2026-03-01T00:00:00Z", "2026-05-01T00:00:00Z"


def discovered(command: list[str]) -> t.Any:
    return json.loads(subprocess.run(command, capture_output=True, text=True, check=True).stdout)


def calls_only_catalogs(config: pathlib.Path, workdir: pathlib.Path) -> tuple[str, str]:
    """The Singer catalog and the Airbyte configured catalog, each selecting only calls."""
    singer = discovered([TAP, "--config", str(config), "--discover"])
    for stream in singer["streams"]:
        for entry in stream["metadata"]:
            if entry["breadcrumb"] == []:
                entry["metadata"]["selected"] = stream["tap_stream_id"] == "calls"
    airbyte = discovered([SOURCE, "discover", "--config", str(config)])["catalog"]
    (calls,) = (stream for stream in airbyte["streams"] if stream["name"] == "calls")
    configured = {
        "streams": [
            {"stream": calls, "sync_mode": "incremental", "destination_sync_mode": "append"}
        ]
    }
    singer_path, airbyte_path = workdir / "singer-catalog.json", workdir / "airbyte-catalog.json"
    singer_path.write_text(json.dumps(singer))
    airbyte_path.write_text(json.dumps(configured))
    return str(singer_path), str(airbyte_path)


def bench_size(calls: int, workdir: pathlib.Path, repeat: int) -> dict[str, float]:
    with fake_api("--calls", str(calls), "--days", "60", "--end", END) as url:
        config = workdir / "config.json"
        settings = {"api_key": KEY, "api_url": url, "start_date": START, "end_date": END}
        config.write_text(json.dumps({**settings, "max_requests_per_minute": 10_000_000}))
        singer_catalog, airbyte_catalog = calls_only_catalogs(config, workdir)
        commands = {
            "singer": [TAP, "--config", str(config), "--catalog", singer_catalog],
            "airbyte": [SOURCE, "read", "--config", str(config), "--catalog", airbyte_catalog],
        }
        best = dict.fromkeys(commands, math.inf)
        rss = dict.fromkeys(commands, 0.0)
        for _ in range(repeat):  # alternate the two, keep each one's best run
            for name, command in commands.items():
                seconds, peak, _, records, _ = run_measured(command)
                assert records == calls, (name, records, calls)
                best[name], rss[name] = min(best[name], seconds), max(rss[name], peak)
    return {
        "calls": calls,
        "singer_rps": calls / best["singer"],
        "airbyte_rps": calls / best["airbyte"],
        "ratio": best["singer"] / best["airbyte"],
        "singer_rss": rss["singer"],
        "airbyte_rss": rss["airbyte"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[50_000, 200_000])
    parser.add_argument("--repeat", type=int, default=3, help="runs of each; the best counts")
    args = parser.parse_args()
    print(
        f"{'calls':>8} {'singer rec/s':>13} {'airbyte rec/s':>14} {'airbyte/singer':>15} "
        f"{'singer RSS MiB':>15} {'airbyte RSS MiB':>16}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            row = bench_size(size, pathlib.Path(tmp), args.repeat)
            print(
                f"{row['calls']:>8} {row['singer_rps']:>13.0f} {row['airbyte_rps']:>14.0f} "
                f"{row['ratio']:>15.2f} {row['singer_rss']:>15.1f} {row['airbyte_rss']:>16.1f}",
                flush=True,
            )


if __name__ == "__main__":
    main()

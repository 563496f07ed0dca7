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
import contextlib
import json
import math
import os
import pathlib
import subprocess
import sys
import tempfile
import time
import typing as t

KEY = "bench-key"
START, END = "2026-03-01T00:00:00Z", "2026-05-01T00:00:00Z"
BIN = pathlib.Path(sys.executable).parent
TAP = str(BIN / "tap-amplemarket")
SOURCE = str(BIN / "source-amplemarket")
FAKE_API = str(BIN / "tap-amplemarket-fake-api")
RECORD = b'"type":"RECORD"'


def run_measured(command: list[str]) -> tuple[float, float, int]:
    """Wall seconds, peak RSS (MiB) and RECORD count of a child whose stdout is drained."""
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert process.stdout is not None
    records, tail = 0, b""
    while chunk := process.stdout.read1(1 << 16):
        text = tail + chunk
        records += text.count(RECORD)
        tail = text[-len(RECORD) + 1 :]  # a marker split across two reads counts once
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{command[:2]} failed with status {status}")
    return elapsed, usage.ru_maxrss / 1024, records


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


@contextlib.contextmanager
def fake_api(calls: int) -> t.Iterator[str]:
    """The fake API in its own process, so serving does not compete in the measured one."""
    options = {"--port": "0", "--calls": str(calls), "--days": "60", "--end": END, "--api-key": KEY}
    command = [FAKE_API, *(part for option in options.items() for part in option)]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        banner = server.stdout.readline() if server.stdout else ""
        yield banner.split(" on ")[1].split()[0]
    finally:
        server.terminate()
        server.wait()


def bench_size(calls: int, workdir: pathlib.Path, repeat: int) -> dict[str, float]:
    with fake_api(calls) as url:
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
                seconds, peak, records = run_measured(command)
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

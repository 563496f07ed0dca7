"""What the benchmarks share: the fake API in its own process, measured child processes."""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import subprocess
import sys
import time
import typing as t

import requests

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the fake API lives beside the tests, not in the package

from tests.fake_api.server import STATS_PATH  # noqa: E402

KEY = "bench-key"
BIN = pathlib.Path(sys.executable).parent
TAP = str(BIN / "tap-amplemarket")
SOURCE = str(BIN / "source-amplemarket")
FAKE_API = (sys.executable, "-m", "tests.fake_api")


RECORD = b'"type":"RECORD"'


class Measured(t.NamedTuple):
    seconds: float  # wall time
    rss: float  # peak RSS, MiB
    first_line: bytes
    records: int  # RECORD lines, Singer or Airbyte
    cpu: float  # user + system seconds: what the run cost, however it overlapped waiting


def run_measured(command: list[str]) -> Measured:
    """What a child costs whose stdout is drained as a target would: through a pipe, in large
    reads."""
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert process.stdout is not None
    first_line = tail = process.stdout.readline()
    records = first_line.count(RECORD)
    while chunk := process.stdout.read1(1 << 16):
        text = tail[-len(RECORD) + 1 :] + chunk  # a marker split across two reads counts once
        records += text.count(RECORD)
        tail = chunk
    process.stdout.close()
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{command[:3]} failed with status {status}")
    cpu = usage.ru_utime + usage.ru_stime
    return Measured(elapsed, usage.ru_maxrss / 1024, first_line, records, cpu)


def calls_only_catalog(config: dict[str, t.Any], workdir: pathlib.Path) -> pathlib.Path:
    """A catalog with only `calls` selected, and the config file beside it."""
    config_path = workdir / "config.json"
    config_path.write_text(json.dumps(config))
    catalog = json.loads(
        subprocess.run(
            [TAP, "--config", str(config_path), "--discover"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    for stream in catalog["streams"]:
        selected = stream["tap_stream_id"] == "calls"
        for entry in stream["metadata"]:
            if entry["breadcrumb"] == []:
                entry["metadata"]["selected"] = selected
    path = workdir / "catalog.json"
    path.write_text(json.dumps(catalog))
    return path


@contextlib.contextmanager
def fake_api(*args: str) -> t.Iterator[str]:
    """The fake API in its own process (its dataset must not inflate the RSS measured)."""
    server = subprocess.Popen(
        [*FAKE_API, "--port", "0", "--api-key", KEY, *args],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        banner = server.stdout.readline() if server.stdout else ""
        yield banner.split(" on ")[1].split()[0]
    finally:
        server.terminate()
        server.wait()


def request_stats(base_url: str) -> dict[str, dict[str, int]]:
    """Requests the fake API served so far, by path and by status."""
    return requests.get(base_url + STATS_PATH, timeout=10).json()  # type: ignore[no-any-return]

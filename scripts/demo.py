"""The main job, offline: a full sync of the bundled fake Amplemarket API into DuckDB.

Runs `meltano run --full-refresh tap-amplemarket target-duckdb` against a fake API served
on 127.0.0.1 (no key, no network), then prints the rows per table it loaded. Point the
same job at the real API by setting TAP_AMPLEMARKET_API_KEY instead (see README).
"""

from __future__ import annotations

import datetime
import os
import pathlib
import subprocess
import sys

from tap_amplemarket.fake_api import FakeAmplemarketAPI, sample_dataset

ROOT = pathlib.Path(__file__).resolve().parent.parent
DUCKDB_FILE = ROOT / "output" / "warehouse.duckdb"
DEMO_KEY = "demo-api-key"
SUMMARY_SQL = """
import duckdb, sys
db = duckdb.connect(sys.argv[1], read_only=True)
rows = db.sql("select table_name from information_schema.tables "
              "where table_schema = 'amplemarket' order by 1").fetchall()
for (table,) in rows:
    count = db.sql(f'select count(*) from amplemarket."{table}"').fetchone()[0]
    print(f"  {table:<20} {count:>7} rows")
"""


def meltano(*args: str, env: dict[str, str]) -> None:
    meltano_bin = pathlib.Path(sys.executable).with_name("meltano")
    subprocess.run([str(meltano_bin), *args], cwd=ROOT, env=env, check=True)


def main() -> None:
    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    data = sample_dataset(2000, users=8, days=90, end=now)
    DUCKDB_FILE.parent.mkdir(exist_ok=True)
    with FakeAmplemarketAPI(data, api_key=DEMO_KEY) as api:
        env = {
            **os.environ,
            "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
            "TAP_AMPLEMARKET_API_KEY": DEMO_KEY,
            "TAP_AMPLEMARKET_API_URL": api.url,
            "TAP_AMPLEMARKET_START_DATE": (now - datetime.timedelta(days=120)).isoformat(),
            "TARGET_DUCKDB_FILEPATH": str(DUCKDB_FILE),
        }
        print(f"Fake Amplemarket API on {api.url}; installing plugins...", flush=True)
        meltano("--log-level=warning", "install", env=env)
        meltano(
            "--log-level=warning",
            "run",
            "--full-refresh",
            "tap-amplemarket",
            "target-duckdb",
            env=env,
        )
    target_python = ROOT / ".meltano/loaders/target-duckdb/venv/bin/python"
    print(f"\nLoaded into {DUCKDB_FILE.relative_to(ROOT)} (schema amplemarket):")
    subprocess.run([str(target_python), "-c", SUMMARY_SQL, str(DUCKDB_FILE)], check=True)
    print(f"  (the fake API served {len(data.calls)} calls)")


if __name__ == "__main__":
    main()

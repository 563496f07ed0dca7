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

from process_group import run_in_group

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the fake API lives beside the tests, not in the package

from tests.fake_api import FakeAmplemarketAPI, sample_dataset  # noqa: E402

DUCKDB_FILE = ROOT / "output" / "warehouse.duckdb"
LOADER_PYTHON = ROOT / ".meltano/loaders/target-duckdb/venv/bin/python"
DEMO_KEY = "demo-api-key"
QUIET = "--log-level=warning"
STEP_TIMEOUT = 600  # seconds; installing both plugins takes well under a minute


def run(command: list[str], env: dict[str, str]) -> None:
    """Run one step; a failure ends the demo with one line (the step's own output is above)."""
    step = " ".join(arg for arg in [pathlib.Path(command[0]).name, *command[1:]] if arg != QUIET)
    try:
        result = run_in_group(command, cwd=ROOT, env=env, timeout=STEP_TIMEOUT)
    except subprocess.TimeoutExpired:
        sys.exit(f"make demo: `{step}` took over {STEP_TIMEOUT} s and was stopped")
    if result.returncode != 0:
        sys.exit(f"make demo: `{step}` failed (exit {result.returncode}); its error is above")


def plugins_on_another_python() -> bool:
    """Whether a plugin virtualenv in .meltano runs another Python than this demo's."""
    this = f"{sys.version_info.major}.{sys.version_info.minor}"
    for config in ROOT.glob(".meltano/*/*/venv/pyvenv.cfg"):
        versions = [line for line in config.read_text().splitlines() if line.startswith("version")]
        if versions and not versions[0].split("=")[1].strip().startswith(this + "."):
            return True
    return False


def main() -> None:
    meltano = str(pathlib.Path(sys.executable).with_name("meltano"))
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
        # Plugins installed by a demo on another Python are rebuilt on this one.
        clean = ["--clean"] if plugins_on_another_python() else []
        run([meltano, QUIET, "install", *clean, "tap-amplemarket", "target-duckdb"], env)
        run([meltano, QUIET, "run", "--full-refresh", "tap-amplemarket", "target-duckdb"], env)
    print(f"\nLoaded into {DUCKDB_FILE.relative_to(ROOT)} (schema amplemarket):", flush=True)
    run([str(LOADER_PYTHON), "scripts/duckdb_query.py", str(DUCKDB_FILE)], env)
    print(f"(the fake API served {len(data.calls)} calls)")
    print('Query it: make query SQL="select * from amplemarket.calls limit 5"')


if __name__ == "__main__":
    main()

"""End to end into a real Snowflake account: `meltano run tap-amplemarket target-snowflake`.

Opt-in: runs only when the SNOWFLAKE_* variables in conftest.REQUIRED are set (key-pair
authentication, as README describes). Loads the fake API's data into a throwaway schema,
checks every row and the column types README documents, then drops the schema.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid

import pytest

from tests.fake_api import FakeAmplemarketAPI, sample_dataset
from tests.test_pipelines import KEY, ROOT, TABLES, meltano

pytestmark = [pytest.mark.meltano, pytest.mark.snowflake]

SETTINGS = ("ACCOUNT", "USER", "ROLE", "WAREHOUSE", "DATABASE", "PRIVATE_KEY_PATH")
SETTINGS += ("PRIVATE_KEY_PASSPHRASE",)
QUERY = """
import json, os, sys
import snowflake.connector
env = os.environ
with snowflake.connector.connect(
    account=env["SNOWFLAKE_ACCOUNT"], user=env["SNOWFLAKE_USER"], role=env.get("SNOWFLAKE_ROLE"),
    warehouse=env["SNOWFLAKE_WAREHOUSE"], database=env["SNOWFLAKE_DATABASE"],
    private_key_file=env["SNOWFLAKE_PRIVATE_KEY_PATH"],
    private_key_file_pwd=env.get("SNOWFLAKE_PRIVATE_KEY_PASSPHRASE"),
) as connection:
    print(json.dumps(connection.cursor().execute(sys.argv[1]).fetchall(), default=str))
"""


def snowflake(sql: str) -> list[list[str]]:
    """Rows of a query, run by the Snowflake connector the loader itself installed."""
    target_python = ROOT / ".meltano/loaders/target-snowflake/venv/bin/python"
    out = subprocess.run(
        [str(target_python), "-c", QUERY, sql], check=True, capture_output=True, text=True
    ).stdout
    return json.loads(out)


def test_meltano_run_into_snowflake_lands_every_row_with_the_documented_types(meltano_env):
    schema = f"AMPLEMARKET_TEST_{uuid.uuid4().hex[:8].upper()}"
    env = {
        **meltano_env,
        **{
            f"TARGET_SNOWFLAKE_{name}": os.environ[f"SNOWFLAKE_{name}"]
            for name in SETTINGS
            if os.environ.get(f"SNOWFLAKE_{name}")
        },
        "TARGET_SNOWFLAKE_DEFAULT_TARGET_SCHEMA": schema,
    }
    meltano(["install", "target-snowflake"], env)
    data = sample_dataset(120, users=3, days=20)
    try:
        with FakeAmplemarketAPI(data, api_key=KEY) as api:
            env["TAP_AMPLEMARKET_API_URL"] = api.url
            meltano(["run", "--full-refresh", "tap-amplemarket", "target-snowflake"], env)

        counts = snowflake(
            " union all ".join(f"select '{t}', count(*) from {schema}.{t}" for t in TABLES)
        )
        assert dict(counts) == {table: len(getattr(data, table)) for table in TABLES}
        types = dict(
            snowflake(
                "select lower(column_name), data_type from information_schema.columns "
                f"where table_schema = '{schema}' and table_name = 'CALLS'"
            )
        )
        assert types["id"] == "TEXT"
        assert types["duration"] == "NUMBER"
        assert types["answered"] == "BOOLEAN"
        assert types["contact"] == "VARIANT"
        assert types["start_date"] == "TIMESTAMP_NTZ"
        sample = data.calls[17]
        stored = snowflake(
            f'select to_char(start_date, \'YYYY-MM-DD"T"HH24:MI:SS"Z"\') from {schema}.calls '
            f"where id = '{sample['id']}'"
        )
        assert stored == [[sample["start_date"]]]
    finally:
        snowflake(f"drop schema if exists {schema}")

"""End to end: `meltano run` from the fake API into a throwaway PostgreSQL and into DuckDB."""

from __future__ import annotations

import datetime
import glob
import os
import pathlib
import shutil
import socket
import subprocess
import sys
import tempfile
import typing as t

import pytest

from scripts.process_group import run_in_group
from tap_amplemarket.timefmt import isoformat_z, normalize_datetime, parse_timestamp
from tests.conftest import COLLECTIONS
from tests.fake_api import FakeAmplemarketAPI, sample_dataset
from tests.fake_api.dataset import Dataset, SampleFactory, add_surprises
from tests.test_deletes import delete

ROOT = pathlib.Path(__file__).resolve().parent.parent
MELTANO = str(pathlib.Path(sys.executable).with_name("meltano"))
KEY = "pipeline-key"
TABLES = COLLECTIONS  # lead_list_entries is counted separately

pytestmark = pytest.mark.meltano


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def postgres_bin_dir() -> pathlib.Path:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[4]))
    if candidates:
        return pathlib.Path(candidates[-1])
    initdb = shutil.which("initdb")
    if initdb:
        return pathlib.Path(initdb).resolve().parent
    pytest.fail("PostgreSQL server binaries not found: install Debian's postgresql (.ci/run does)")


class Postgres:
    """A throwaway PostgreSQL server in a temp dir, on a free loopback port."""

    def __init__(self) -> None:
        self.bin = postgres_bin_dir()
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix="pg-"))
        self.port = free_port()
        # initdb refuses to run as root: drop to the postgres user the Debian package creates.
        self.as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self.as_user:
            shutil.chown(self.dir, "postgres")

    def run(self, *args: str) -> None:
        subprocess.run([*self.as_user, *args], check=True, capture_output=True, text=True)

    def start(self) -> Postgres:
        data = self.dir / "data"
        self.run(
            str(self.bin / "initdb"),
            "-D",
            str(data),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
        )
        options = (
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
            " -c timezone=America/New_York"  # a non-UTC server must still store UTC
        )
        self.run(
            str(self.bin / "pg_ctl"),
            "-D",
            str(data),
            "-o",
            options,
            "-l",
            str(self.dir / "log"),
            "-w",
            "start",
        )
        return self

    def stop(self) -> None:
        self.run(str(self.bin / "pg_ctl"), "-D", str(self.dir / "data"), "-m", "immediate", "stop")
        shutil.rmtree(self.dir, ignore_errors=True)

    def query(self, sql: str) -> list[list[str]]:
        out = subprocess.run(
            [
                str(self.bin / "psql"),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                "postgres",
                "-d",
                "postgres",
                "-At",
                "-F",
                "|",
                "-c",
                sql,
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        return [line.split("|") for line in out.splitlines()]

    def scalar(self, sql: str) -> str:
        return self.query(sql)[0][0]


@pytest.fixture(scope="module")
def postgres() -> t.Iterator[Postgres]:
    server = Postgres().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def meltano_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Environment for `meltano` in the repo, with its own state database; plugins installed."""
    system_db = tmp_path_factory.mktemp("meltano") / "meltano.db"
    env = {
        **os.environ,
        "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
        "MELTANO_DATABASE_URI": f"sqlite:///{system_db}",
        "TAP_AMPLEMARKET_API_KEY": KEY,
        "TAP_AMPLEMARKET_START_DATE": "2026-01-01T00:00:00Z",
    }
    meltano(["install", "tap-amplemarket", "target-postgres", "target-duckdb", "target-jsonl"], env)
    return env


def meltano(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    result = run_in_group(
        [MELTANO, *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def postgres_env(meltano_env: dict[str, str], api_url: str, port: int) -> dict[str, str]:
    """Settings of a meltano run from the fake API at `api_url` into the PostgreSQL on `port`."""
    return {
        **meltano_env,
        "TAP_AMPLEMARKET_API_URL": api_url,
        "TARGET_POSTGRES_HOST": "127.0.0.1",
        "TARGET_POSTGRES_PORT": str(port),
        "TARGET_POSTGRES_USER": "postgres",
        "TARGET_POSTGRES_PASSWORD": "",
        "TARGET_POSTGRES_DATABASE": "postgres",
    }


def new_call(api: FakeAmplemarketAPI, when: datetime.datetime, seed: int) -> dict[str, t.Any]:
    call = SampleFactory(seed).call(when, api.data.users, api.data.dispositions)
    api.add_call(call)
    return call


def test_meltano_run_into_postgres_is_complete_typed_and_incremental(postgres, meltano_env):
    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    data = sample_dataset(600, users=5, days=40, end=now - datetime.timedelta(days=1))
    with FakeAmplemarketAPI(data, api_key=KEY) as api:
        env = postgres_env(meltano_env, api.url, postgres.port)
        meltano(["run", "tap-amplemarket", "target-postgres"], env)

        for table in TABLES:
            expected = len(getattr(data, table))
            assert int(postgres.scalar(f"select count(*) from amplemarket.{table}")) == expected
        entries = sum(len(lead_list["leads"]) for lead_list in data.lead_lists)
        assert int(postgres.scalar("select count(*) from amplemarket.lead_list_entries")) == entries

        types = dict(
            postgres.query(
                "select column_name, data_type from information_schema.columns "
                "where table_schema = 'amplemarket' and table_name = 'calls'"
            )
        )
        assert types["start_date"].startswith("timestamp")
        assert types["answered"] == "boolean"
        assert types["duration"] in {"bigint", "integer"}
        assert types["contact"] == "jsonb"
        sample = data.calls[17]
        stored = postgres.scalar(
            'select to_char(start_date, \'YYYY-MM-DD"T"HH24:MI:SS"Z"\') '
            f"from amplemarket.calls where id = '{sample['id']}'"
        )
        assert stored == sample["start_date"]
        assert_documented_columns_land_typed(postgres, data)

        # Second, incremental run: two new calls and one logged late, 2 days back.
        newest = max(c["start_date"] for c in data.calls)
        newest_at = parse_timestamp(newest)
        added = [
            new_call(api, now - datetime.timedelta(hours=2), seed=1),
            new_call(api, now - datetime.timedelta(hours=1), seed=2),
            new_call(api, now - datetime.timedelta(days=2), seed=3),  # the bookmark: the run end
        ]
        api.requests.clear()
        meltano(["run", "tap-amplemarket", "target-postgres"], env)

        assert int(postgres.scalar("select count(*) from amplemarket.calls")) == 603
        assert int(postgres.scalar("select count(distinct id) from amplemarket.calls")) == 603
        ids = {row[0] for row in postgres.query("select id from amplemarket.calls")}
        assert {call["id"] for call in added} <= ids
        assert len(api.requests_to("/calls")) <= 3, "incremental: only the recent window is read"
        lowest_from = min(r.params["start_date_from"] for r in api.requests_to("/calls"))
        assert lowest_from > isoformat_z(newest_at - datetime.timedelta(days=4))

        state = meltano(["state", "list"], env).stdout
        assert "tap-amplemarket-to-target-postgres" in state


def column_types(postgres: Postgres, table: str) -> dict[str, str]:
    return dict(
        postgres.query(
            "select column_name, data_type from information_schema.columns "
            f"where table_schema = 'amplemarket' and table_name = '{table}'"
        )
    )


def assert_documented_columns_land_typed(postgres: Postgres, data: Dataset) -> None:
    """What the docs define lands as its own typed column, for every record: each task's
    due date and time (a date-time, per the docs), each entry's person_id, each list's
    options."""
    assert column_types(postgres, "tasks")["due_on"].startswith("timestamp")
    assert column_types(postgres, "tasks")["finished_on"].startswith("timestamp")
    due = dict(
        postgres.query(
            'select id, to_char(due_on, \'YYYY-MM-DD"T"HH24:MI:SS"Z"\') from amplemarket.tasks'
        )
    )
    assert due == {task["id"]: normalize_datetime(task["due_on"]) for task in data.tasks}
    assert "person_id" in column_types(postgres, "lead_list_entries")
    people = dict(postgres.query("select id, person_id from amplemarket.lead_list_entries"))
    expected = {e["id"]: e["person_id"] for ll in data.lead_lists for e in ll["leads"]}
    assert {k: (v or None) for k, v in people.items()} == expected
    assert column_types(postgres, "lead_lists")["options"] == "jsonb"
    # The docs' second reading (S1-S7): typed columns; per-record _links dropped.
    calls = column_types(postgres, "calls")
    assert calls["transcript"] in {"jsonb", "ARRAY"}  # target-postgres: an array of objects
    assert {"direction", "disposition_name", "user_email"} <= set(calls)
    assert column_types(postgres, "excluded_domains")["excluded_reasons"] in {"jsonb", "ARRAY"}
    sequences = column_types(postgres, "sequences")
    assert sequences["dynamic_fields_used"] in {"jsonb", "ARRAY"}
    assert "_links" not in sequences
    assert column_types(postgres, "accounts")["last_contacted_at"].startswith("timestamp")
    entries = postgres.scalar(
        "select count(*) from amplemarket.calls where transcript::text not in ('{}', '[]')"
    )
    assert int(entries) == sum(1 for call in data.calls if call.get("transcript"))


#: Each table's primary key, as SQL.
TABLE_KEYS = {
    "excluded_domains": "domain",
    "excluded_emails": "email",
    "lead_list_entries": "lead_list_id || '/' || id",
}


def test_rows_deleted_in_amplemarket_are_marked_deleted_then_removed_with_hard_delete(
    postgres, meltano_env
):
    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    data = sample_dataset(120, users=4, days=20, end=now - datetime.timedelta(days=1))
    schema = "amplemarket_deletes"  # apart from the other tests' tables and state
    tables = [*TABLES, "lead_list_entries"]

    def rows(table: str, where: str = "true") -> set[str]:
        key = TABLE_KEYS.get(table, "id")
        return {
            row[0] for row in postgres.query(f"select {key} from {schema}.{table} where {where}")
        }

    def dataset_keys(table: str) -> set[str]:
        if table == "lead_list_entries":
            return {f"{ll['id']}/{e['id']}" for ll in data.lead_lists for e in ll["leads"]}
        key = TABLE_KEYS.get(table, "id")
        records = data[table]
        if table == "tasks":  # the tasks of users still listed
            records = [r for r in records if r["user_id"] in {u["id"] for u in data.users}]
        return {r[key] for r in records}

    with FakeAmplemarketAPI(data, api_key=KEY) as api:
        env = {
            **postgres_env(meltano_env, api.url, postgres.port),
            "TARGET_POSTGRES_DEFAULT_TARGET_SCHEMA": schema,
            "MELTANO_RUN_STATE_ID_SUFFIX": "deletes",
        }
        meltano(["run", "tap-amplemarket", "target-postgres"], env)
        assert all(rows(table) == dataset_keys(table) for table in tables)

        (user,) = delete(api, "users", id=data.users[1]["id"])
        (domain,) = delete(api, "excluded_domains", domain=data.excluded_domains[5]["domain"])
        lead_list = data.lead_lists[2]
        (entry,) = delete(api, "lead_list_entries", id=lead_list["leads"][4]["id"])
        user_tasks = {task["id"] for task in data.tasks if task["user_id"] == user["id"]}
        assert user_tasks
        meltano(["run", "tap-amplemarket", "target-postgres"], env)

        marked = {table: rows(table, "_sdc_deleted_at is not null") for table in tables}
        assert marked == {
            **{table: set() for table in tables},  # calls among them: none ever marked
            "users": {user["id"]},
            "tasks": user_tasks,  # gone with their user
            "excluded_domains": {domain["domain"]},
            "lead_list_entries": {f"{lead_list['id']}/{entry['id']}"},
        }
        for table in tables:
            assert rows(table, "_sdc_deleted_at is null") == dataset_keys(table), table
        assert rows("calls") == {call["id"] for call in data.calls}, "every call read, kept"

        data.excluded_domains.append(domain)  # added back to the exclusion list
        (second_domain,) = delete(
            api, "excluded_domains", domain=data.excluded_domains[9]["domain"]
        )
        hard_delete = {**env, "TARGET_POSTGRES_HARD_DELETE": "true"}
        meltano(["run", "tap-amplemarket", "target-postgres"], hard_delete)

        for table in tables:  # the user, their tasks, the entry and the second domain: gone
            assert rows(table) == dataset_keys(table), table
            assert rows(table, "_sdc_deleted_at is not null") == set(), table
        assert user["id"] not in rows("users")
        assert second_domain["domain"] not in rows("excluded_domains")
        assert domain["domain"] in rows("excluded_domains"), "back on the list: live again"
        assert rows("calls") == {call["id"] for call in data.calls}


def test_meltano_run_into_target_jsonl_writes_every_record_with_the_messages_on(
    meltano_env, tmp_path
):
    data = sample_dataset(50, users=2, days=10)
    with FakeAmplemarketAPI(data, api_key=KEY) as api:
        env = {
            **meltano_env,
            "TAP_AMPLEMARKET_API_URL": api.url,
            "TAP_AMPLEMARKET_START_DATE": "2026-05-01T00:00:00Z",
            "TAP_AMPLEMARKET_END_DATE": "2026-06-02T00:00:00Z",
            "TARGET_JSONL_DESTINATION_PATH": str(tmp_path),
        }
        run = meltano(
            ["run", "--full-refresh", "--no-state-update", "tap-amplemarket", "target-jsonl"], env
        )

    # target-jsonl read the messages, and says it ignores them (a warning per stream).
    assert "Unknown message type ACTIVATE_VERSION" in run.stderr

    for table in TABLES:
        lines = (tmp_path / f"{table}.jsonl").read_text().splitlines()
        assert len(lines) == len(data[table]), table


def test_meltano_run_loads_surprising_records_and_keeps_what_did_not_fit(postgres, meltano_env):
    data = sample_dataset(200, users=3, days=30)
    surprises = add_surprises(data, datetime.datetime(2025, 12, 1, 6, tzinfo=datetime.timezone.utc))
    schema = "amplemarket_surprises"  # apart from the other test's tables and state
    with FakeAmplemarketAPI(data, api_key=KEY) as api:
        env = {
            **postgres_env(meltano_env, api.url, postgres.port),
            "TAP_AMPLEMARKET_START_DATE": "2025-12-01T00:00:00Z",
            "TAP_AMPLEMARKET_END_DATE": "2026-06-02T00:00:00Z",
            "TAP_AMPLEMARKET_WINDOW_DAYS": "200",
            "TARGET_POSTGRES_DEFAULT_TARGET_SCHEMA": schema,
        }
        meltano(
            [
                "run",
                "--full-refresh",
                "--no-state-update",
                "--refresh-catalog",
                "tap-amplemarket",
                "target-postgres",
            ],
            env,
        )

    loaded = {row[0] for row in postgres.query(f"select id from {schema}.calls")}
    assert loaded == {str(call["id"]) for call in data.calls if call["id"] is not None}

    def calls_value(sql: str, surprise: str) -> str:
        return postgres.scalar(
            f"select {sql} from {schema}.calls where id = '{surprises[surprise]['id']}'"
        )

    assert calls_value("_extra->>'transcript'", "transcript_string") == "Hello"
    assert calls_value("coalesce(transcript::text, 'null')", "transcript_string") == "null"
    assert calls_value("duration", "duration_string") == "12"
    assert calls_value("_extra->>'contact'", "contact_string") == "Jane Roe <jane@x.example>"
    assert calls_value("_extra->>'contact.phone'", "contact_unknown_field") == "+1 555 0100"
    assert calls_value("_extra->>'start_date'", "bad_date") == "2025-13-45"
    assert calls_value("coalesce(start_date::text, 'null')", "bad_date") == "null"
    assert calls_value("_extra->>'sentiment'", "unknown_field") == "positive"
    assert calls_value('"from"', "numeric_phone") == "15551234567"
    types = dict(
        postgres.query(
            "select column_name, data_type from information_schema.columns "
            f"where table_schema = '{schema}' and table_name = 'calls'"
        )
    )
    assert types["_extra"] == "jsonb"
    # target-postgres stores a missing _extra as JSON null: `?` finds the rows that have one.
    assert postgres.query(
        f"select _extra->>'mailboxes[1]' from {schema}.users where _extra ? 'mailboxes[1]'"
    ) == [["not a mailbox"]]


def test_meltano_run_into_duckdb_loads_every_row(meltano_env, tmp_path):
    data = sample_dataset(300, users=4, days=30)
    database = tmp_path / "warehouse.duckdb"
    with FakeAmplemarketAPI(data, api_key=KEY) as api:
        api.fail_next("429", path="/users", retry_after="0")  # one warning from the tap
        env = {
            **meltano_env,
            "TAP_AMPLEMARKET_API_URL": api.url,
            "TARGET_DUCKDB_FILEPATH": str(database),
        }
        run = meltano(["run", "--full-refresh", "tap-amplemarket", "target-duckdb"], env)

    # Structured logging: Meltano shows the tap's warning as a warning, not as [info].
    (warning,) = [line for line in run.stderr.splitlines() if "Rate limited on /users" in line]
    assert "[warning" in warning

    loaded = duckdb_query(
        database,
        " union all ".join(f"select '{t}', count(*) from amplemarket.{t}" for t in TABLES),
    )
    assert {table: int(count) for table, count in loaded} == {
        table: len(getattr(data, table)) for table in TABLES
    }
    sample = data.calls[17]
    stored = duckdb_query(
        database,
        "select strftime(start_date, '%Y-%m-%dT%H:%M:%SZ') from amplemarket.calls "
        f"where id = '{sample['id']}'",
    )
    assert stored == [[sample["start_date"]]]
    # `make query` hands DuckDB the SQL as typed: make itself must not expand its `$`.
    typed = "select count(*) || ' calls, $5 and $$x' from amplemarket.calls where id like '%'"
    shown = subprocess.run(
        ["make", "-s", "query", f"DUCKDB_FILE={database}", f"SQL={typed}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert f"{len(data.calls)} calls, $5 and $$x" in shown


def duckdb_query(database: pathlib.Path, sql: str) -> list[list[str]]:
    """Rows of a query, run by the DuckDB the loader itself installed (as `make query` does)."""
    target_python = ROOT / ".meltano/loaders/target-duckdb/venv/bin/python"
    script = ROOT / "scripts/duckdb_query.py"
    out = subprocess.run(
        [str(target_python), str(script), str(database), sql, "--plain"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return [line.split("|") for line in out.splitlines()]


#: What a person reads of the tap in a default `meltano run` (Meltano's own lines included):
#: start, a line per stream, the end.
MAX_LOG_LINES = 40


def test_a_meltano_run_of_a_thousand_calls_prints_a_log_a_person_reads(meltano_env, tmp_path):
    data = sample_dataset(1000, users=4, days=30)
    with FakeAmplemarketAPI(data, api_key=KEY) as api:
        env = {
            **meltano_env,
            "TAP_AMPLEMARKET_API_URL": api.url,
            "TARGET_DUCKDB_FILEPATH": str(tmp_path / "warehouse.duckdb"),
        }
        run = meltano(
            ["run", "--full-refresh", "--no-state-update", "tap-amplemarket", "target-duckdb"], env
        )

    # The target's own lines are its own (target-duckdb logs each table it loads).
    lines = [
        line for line in (run.stdout + run.stderr).splitlines() if " target-duckdb " not in line
    ]
    assert len(lines) <= MAX_LOG_LINES, "\n".join(lines)
    assert not [line for line in lines if "METRIC" in line], "METRIC lines are opt-in"
    for stream in TABLES:
        assert [line for line in lines if f"{stream}: " in line and " records" in line], stream

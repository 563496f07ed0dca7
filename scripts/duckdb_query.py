"""Query a DuckDB file: python duckdb_query.py FILE [SQL] [--plain].

Run by the DuckDB loader's own Python (`make query`), the one environment here with duckdb.
The SQL comes as an argument or, from `make query SQL=...`, in the environment variable SQL
(untouched by any shell quoting). Without SQL it prints the rows per table in schema
amplemarket; --plain prints bare pipe-separated rows (for tests) instead of a table. A query
DuckDB refuses ends in one line.
"""

from __future__ import annotations

import os
import sys

import duckdb  # type: ignore[import-not-found]

TABLES = "select table_name from duckdb_tables() where schema_name = 'amplemarket' order by 1"


def table_rows_sql(db: duckdb.DuckDBPyConnection) -> str:
    tables = [name for (name,) in db.sql(TABLES).fetchall()]
    return " union all ".join(
        f"select '{name}' as table_name, count(*) as rows from amplemarket.\"{name}\""  # noqa: S608
        for name in tables
    )


def main(argv: list[str]) -> None:
    plain = "--plain" in argv
    database, *sql = [arg for arg in argv if arg != "--plain"]
    query = sql[0] if sql else os.environ.get("SQL")
    if not os.path.exists(database):
        sys.exit(f"make query: no {database} yet; run make demo first")
    with duckdb.connect(database, read_only=True) as db:
        try:
            result = db.sql(query or table_rows_sql(db))
        except duckdb.Error as exc:
            sys.exit(f"make query: {' '.join(str(exc).split())}")
        if plain:
            for row in result.fetchall():
                print("|".join(map(str, row)))
        else:
            result.show(max_width=200, max_rows=1000)


if __name__ == "__main__":
    main(sys.argv[1:])

"""target-duckdb 0.8.0 with upstream's unreleased fix for DuckDB >= 1.1 (jwills/target-duckdb#58).

target-duckdb loads each batch with `COPY t FROM 'batch.csv' WITH (new_line '\\r\\n')`, a CSV
with no header row. Since 1.1, DuckDB sniffs such a file for a header unless told `header
false`, and often takes the batch's first row for one: that row is silently lost. DuckDB 1.0,
the last release without the sniffer, has no wheels for Python 3.13 and later. This wrapper
only adds `header false` to that one statement; everything else is target-duckdb's own code.
"""

from __future__ import annotations

import typing as t

import target_duckdb

HEADERLESS_COPY_OPTIONS = ("WITH (new_line '\\r\\n')", "WITH (new_line '\\r\\n', header false)")


class HeaderlessCopyConnection:
    """A DuckDB connection whose CSV COPY statements say the file has no header row."""

    def __init__(self, connection: t.Any) -> None:
        self._connection = connection

    def execute(self, query: str, *args: t.Any) -> t.Any:
        if query.startswith("COPY "):
            old, new = HEADERLESS_COPY_OPTIONS
            if old not in query:  # target-duckdb changed: fail rather than lose rows
                raise RuntimeError(f"unexpected target-duckdb COPY statement: {query}")
            query = query.replace(old, new)
        return self._connection.execute(query, *args)

    def __getattr__(self, name: str) -> t.Any:
        return getattr(self._connection, name)


def main() -> None:
    connect = target_duckdb.duckdb_connect
    target_duckdb.duckdb_connect = lambda config: HeaderlessCopyConnection(connect(config))
    target_duckdb.main()


if __name__ == "__main__":
    main()

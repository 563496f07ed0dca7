"""The Snowflake end-to-end test runs only with credentials; otherwise it is reported as not run.

It is deselected (not skipped, so never counted as passed or skipped) and the run's summary
says so in one line. `make test-snowflake` runs it alone and fails when it cannot run.
"""

from __future__ import annotations

import os
import typing as t

# The Meltano project fixture of the other end-to-end tests (its own system database).
from tests.test_pipelines import meltano_env  # noqa: F401

if t.TYPE_CHECKING:
    import pytest

#: What the test needs; SNOWFLAKE_ROLE and SNOWFLAKE_PRIVATE_KEY_PASSPHRASE are optional.
REQUIRED = (
    "SNOWFLAKE_ACCOUNT",
    "SNOWFLAKE_USER",
    "SNOWFLAKE_PRIVATE_KEY_PATH",
    "SNOWFLAKE_DATABASE",
    "SNOWFLAKE_WAREHOUSE",
)
NOT_RUN: list[str] = []


def missing_credentials() -> list[str]:
    return [name for name in REQUIRED if not os.environ.get(name)]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not (missing := missing_credentials()):
        return
    deselected = [item for item in items if item.get_closest_marker("snowflake")]
    if deselected:
        items[:] = [item for item in items if item not in deselected]
        config.hook.pytest_deselected(items=deselected)
        NOT_RUN.append(
            f"NOT RUN: {len(deselected)} Snowflake end-to-end test(s): set {', '.join(missing)}"
            " (see docs/meltano.md, Loading into Snowflake) and run `make test-snowflake`"
        )


def pytest_terminal_summary(terminalreporter: t.Any) -> None:
    config = terminalreporter.config
    # Under pytest-xdist the workers collect, not this process: say it from the credentials.
    spread = config.getoption("numprocesses", None) and not hasattr(config, "workerinput")
    if spread and not NOT_RUN and (missing := missing_credentials()):
        NOT_RUN.append(
            f"NOT RUN: the Snowflake end-to-end test: set {', '.join(missing)}"
            " (see docs/meltano.md, Loading into Snowflake) and run `make test-snowflake`"
        )
    for line in NOT_RUN:
        terminalreporter.write_line(line, yellow=True, bold=True)

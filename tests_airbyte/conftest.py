"""PyAirbyte's environment and the warnings it raises that are not ours.

PyAirbyte reads the environment at import time: no telemetry, no connector registry lookups.
Warnings fail the tests (pyproject.toml's filterwarnings) except these, each PyAirbyte's own
or its dependencies'.
"""

from __future__ import annotations

import os
import typing as t

if t.TYPE_CHECKING:
    import pytest

os.environ["AIRBYTE_OFFLINE_MODE"] = "1"
os.environ["DO_NOT_TRACK"] = "1"

PYAIRBYTE_WARNINGS = (
    # airbyte-cdk marks classes it defines at import as experimental (its ExperimentalClass-
    # Warning, named by its text: naming the class would import airbyte-cdk to find it).
    "ignore:This class is experimental",
    # google-api-core announces the Python versions it will stop (3.11, 3.12) or has stopped
    # (3.10) supporting.
    "ignore:You are using a (non-supported )?Python version:FutureWarning:google",
    # PyAirbyte's secrets module uses a pydantic-core argument pydantic deprecates.
    "ignore:The `field_name` argument:DeprecationWarning:airbyte",
)


def pytest_configure(config: pytest.Config) -> None:
    for spec in PYAIRBYTE_WARNINGS:
        config.addinivalue_line("filterwarnings", spec)

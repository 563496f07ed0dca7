"""PyAirbyte reads these at import time: no telemetry, no connector registry lookups."""

import os

os.environ["AIRBYTE_OFFLINE_MODE"] = "1"
os.environ["DO_NOT_TRACK"] = "1"

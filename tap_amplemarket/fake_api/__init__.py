"""A fake Amplemarket API server and deterministic sample data (tests, bench, demo).

The sample data needs only the standard library (PyAirbyte's test virtualenv reads it); the
server derives its endpoints from the tap's streams, so it is imported on first use.
"""

from __future__ import annotations

import typing as t

from tap_amplemarket.fake_api.dataset import Dataset, sample_dataset

if t.TYPE_CHECKING:
    from tap_amplemarket.fake_api.server import FakeAmplemarketAPI

__all__ = ["Dataset", "FakeAmplemarketAPI", "sample_dataset"]


def __getattr__(name: str) -> t.Any:
    if name == "FakeAmplemarketAPI":
        from tap_amplemarket.fake_api.server import FakeAmplemarketAPI

        return FakeAmplemarketAPI
    raise AttributeError(name)

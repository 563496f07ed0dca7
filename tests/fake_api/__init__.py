"""A fake Amplemarket API server and deterministic sample data (tests, bench, demo), written
from the API's documentation (../shared/amplemarket-docs/api-facts.md), not from the tap:
it imports nothing from tap_amplemarket. Standard library only.

From the repository's root: `python -m tests.fake_api` (any free port; it prints its URL).
"""

from __future__ import annotations

from tests.fake_api.dataset import Dataset, sample_dataset
from tests.fake_api.server import FakeAmplemarketAPI

__all__ = ["Dataset", "FakeAmplemarketAPI", "sample_dataset"]

"""A fake Amplemarket API server and deterministic sample data (tests, bench, demo)."""

from tap_amplemarket.fake_api.dataset import Dataset, sample_dataset
from tap_amplemarket.fake_api.server import FakeAmplemarketAPI

__all__ = ["Dataset", "FakeAmplemarketAPI", "sample_dataset"]

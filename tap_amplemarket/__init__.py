"""Singer tap for the Amplemarket API."""

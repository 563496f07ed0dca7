"""`python -m tests.fake_api`, from the repository's root: serve the fake API."""

from tests.fake_api.server import main

main()

"""Shared fixtures: real services (tests/fixtures_services.py) for integration and end-to-end tests."""

pytest_plugins = ["tests.fixtures_services", "tests.fixtures_broker", "tests.fixtures_chaos"]

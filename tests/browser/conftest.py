"""Headless Chromium (Debian's package) driven by Playwright, and where screenshots go."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures_dashboard import dashboard_data, dashboard_url  # noqa: F401  (fixtures)

CHROMIUM = os.environ.get("ISSUANCE_CHROMIUM", "/usr/bin/chromium")
# The flags this machine needs: no sandbox as root, no GPU, and no background calls to a closed network.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"


@pytest.fixture(scope="package")
def browser() -> Iterator[object]:
    """One headless Chromium for the browser tests; missing: skipped locally, a failure in CI.

    Package scope, not session: Playwright's sync API keeps an event loop running in the main thread
    while it is open, which would break later tests that run their own loop.
    """
    if not os.access(CHROMIUM, os.X_OK):
        message = f"no Chromium at {CHROMIUM}: run `python tests/browser_setup.py` (as root it installs it)"
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        # Playwright starts the browser with a fresh temporary profile (user data dir) every time.
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def screenshots() -> Path:
    """The folder for screenshots kept as test artifacts (gitignored)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS

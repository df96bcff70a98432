"""Browser tests (marked ``browser``) drive Debian's Chromium with Playwright against a live server.

Without /usr/bin/chromium they are skipped and listed; with ``CI=true`` they fail instead, as the
PostgreSQL and Redis tests do (``make browser-deps`` installs Chromium with apt-get; never
``playwright install``, which downloads a browser build and fails on a closed network).
"""

import os
import shutil
import tempfile

import pytest

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
# Without the background-networking flags Chromium tries to reach Google's services at start.
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


def pytest_runtest_setup(item):
    if item.get_closest_marker("browser") and not (os.path.exists(CHROMIUM) and shutil.which(CHROMIUM)):
        why = f"needs Chromium at {CHROMIUM} (make browser-deps)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true but this test {why}, which is missing", pytrace=False)
        pytest.skip(why)


@pytest.fixture
def chromium(monkeypatch):
    """A headless Chromium with a fresh profile, 1280 px wide (the dashboard's target width).

    Playwright's sync API keeps an event loop in the test's thread; Django refuses ORM calls there
    unless told it is safe (it is: the loop only talks to the browser, and the test is synchronous).
    """
    from playwright.sync_api import sync_playwright

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with tempfile.TemporaryDirectory() as profile, sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 900},
        )  # fmt: skip
        try:
            yield context
        finally:
            context.close()

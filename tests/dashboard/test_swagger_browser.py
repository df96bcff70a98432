"""Swagger UI at /api/docs/ in headless Chromium on a live server, offline: the operations render.

Every request goes to the live server (Swagger UI's files come from drf-spectacular-sidecar), no console error
(a CSP refusal would be one). The screenshot lands in var/screenshots/swagger-offline.png; the one in
docs/img/ was taken by this test.
"""

from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.db import connections

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SCREENSHOTS = Path(settings.BASE_DIR) / "var" / "screenshots"


def test_swagger_ui_renders_the_operations_offline_in_chromium(transactional_db, live_server, chromium):
    server = urlsplit(live_server.url).netloc
    page = chromium.new_page()
    hosts, errors = set(), []
    page.on("request", lambda request: hosts.add(urlsplit(request.url).netloc))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{live_server.url}/api/docs/")
    page.wait_for_selector(".opblock", timeout=30_000)
    page.wait_for_load_state("networkidle")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / "swagger-offline.png")
    assert errors == [], errors  # a CSP refusal shows as a console error
    assert hosts == {server}, f"requests left the live server: {hosts - {server}}"
    assert page.locator(".opblock").count() > 30
    assert page.locator(".opblock-summary-path", has_text="/api/v1/participants/").count() > 0
    page.close()
    for alias in connections:
        connections[alias].close()

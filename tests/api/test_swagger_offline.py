"""Swagger UI at /api/docs/ from this site's static files (drf-spectacular-sidecar): no CDN, no inline script.

A hospital network has no internet: the page, its init script and Swagger UI's own files all come from this
origin, the page satisfies the site's CSP as it is (no exception for the docs), and in headless Chromium it
renders the operations (tests/dashboard/test_swagger_browser.py; its screenshot is docs/img/swagger-offline.png).
"""

import re
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.contrib.staticfiles import finders

from tests.core.test_csp import inline_scripts, policy

ASSET = re.compile(r"""<(?:script|link)\b[^>]*\b(?:src|href)\s*=\s*["']([^"']+)["']""", re.IGNORECASE)

pytestmark = pytest.mark.django_db


def _assets(html: str) -> list[str]:
    return ASSET.findall(html)


def test_the_docs_page_references_only_static_files_of_this_site_and_its_own_script(client):
    page = client.get("/api/docs/")
    assert page.status_code == 200
    assets = _assets(page.content.decode())
    assert len(assets) == 5  # favicon, swagger-ui.css, the bundle, the standalone preset, the init script
    for url in assets:
        parts = urlsplit(url)
        assert not parts.scheme and not parts.netloc, url  # same origin: no CDN
        if parts.path == "/api/docs/":
            assert parts.query == "script="
            continue
        assert parts.path.startswith(f"{settings.STATIC_URL}drf_spectacular_sidecar/swagger-ui-dist/"), url
        assert finders.find(parts.path.removeprefix(settings.STATIC_URL)), f"{url} is not a static file"


def test_the_docs_page_has_no_inline_script_and_the_site_policy_unchanged(client):
    page = client.get("/api/docs/")
    assert inline_scripts(page.content.decode()) == []
    assert policy(page) == policy(client.get("/accounts/login/"))
    assert policy(page)["script-src"] == ["'self'"]
    assert "cdn" not in page["Content-Security-Policy"]


def test_the_init_script_is_javascript_pointing_at_the_schema_without_a_validator(client):
    script = client.get("/api/docs/?script=")
    assert script.status_code == 200
    assert script["Content-Type"].startswith("application/javascript")
    body = script.content.decode()
    assert '"/api/schema/"' in body
    assert '"validatorUrl": null' in body  # no badge image from validator.swagger.io
    assert "http://" not in body and "https://" not in body

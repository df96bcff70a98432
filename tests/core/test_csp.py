"""Content-Security-Policy: every page carries it, and no rendered page has an inline script to allow."""

import re

import pytest
from django.contrib import admin
from django.test import RequestFactory

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

SCRIPT = re.compile(r"<script\b([^>]*)>(.*?)</script\s*>", re.IGNORECASE | re.DOTALL)
HANDLER = re.compile(r"<[^>]+\son[a-z]+\s*=", re.IGNORECASE)
JSON_DATA = re.compile(r"""type\s*=\s*["']application/(ld\+)?json["']""", re.IGNORECASE)


def inline_scripts(html: str) -> list[str]:
    """Script elements that run code written in the page (a data block of type application/json runs nothing)."""
    found = [
        body.strip()[:80]
        for attrs, body in SCRIPT.findall(html)
        if "src=" not in attrs.lower() and not JSON_DATA.search(attrs) and body.strip()
    ]
    return found + [m.group(0)[:80] for m in HANDLER.finditer(html)]


def policy(response) -> dict[str, list[str]]:
    header = response["Content-Security-Policy"]
    return {part.split()[0]: part.split()[1:] for part in (p.strip() for p in header.split(";")) if part}


@pytest.mark.parametrize(
    ("html", "found"),
    [
        ('<script src="/static/x.js"></script>', 0),
        ('<script type="application/json" id="d">{"a": 1}</script>', 0),
        ("<script>alert(1)</script>", 1),
        ('<script type="text/javascript">\n x()</script>', 1),
        ('<a href="#" onclick="x()">x</a>', 1),
        ("<p>one onclick= in text is no handler</p>", 0),
    ],
)
def test_the_scanner_finds_inline_code_and_nothing_else(html, found):
    assert len(inline_scripts(html)) == found


def test_the_policy_allows_scripts_from_this_origin_only(client):
    directives = policy(client.get("/accounts/login/"))
    assert directives["script-src"] == ["'self'"]
    assert directives["default-src"] == ["'self'"]
    assert directives["object-src"] == ["'none'"] and directives["frame-ancestors"] == ["'none'"]
    assert "'unsafe-inline'" not in directives["script-src"] and "'unsafe-eval'" not in directives["script-src"]


def _admin_pages(user) -> list[str]:
    request = RequestFactory().get("/admin/")
    request.user = user
    pages = ["/admin/"]
    for app in admin.site.get_app_list(request):
        for model in app["models"]:
            pages += [url for url in (model.get("admin_url"), model.get("add_url")) if url]
    return pages


def test_no_admin_page_has_an_inline_script_and_every_one_has_the_policy(client, nct_trial):
    root = UserFactory(username="root", is_superuser=True)
    client.force_login(root)
    pages = _admin_pages(root)
    assert len(pages) > 40, "the walk found the admin's pages"
    for page in pages:
        response = client.get(page, follow=True)  # an add page may lead to its form (simulation reports: run)
        assert response.status_code == 200, page
        assert "script-src 'self'" in response["Content-Security-Policy"], page
        assert inline_scripts(response.content.decode()) == [], page


def test_the_dashboard_and_the_login_pages_have_no_inline_script(client, nct_trial):
    for page in ("/accounts/login/", "/admin/login/"):
        assert inline_scripts(client.get(page).content.decode()) == [], page
    client.force_login(UserFactory(username="root", is_superuser=True))
    for page in ("/dashboard/", "/dashboard/NCT06949137/"):
        response = client.get(page)
        assert response.status_code == 200, page
        assert inline_scripts(response.content.decode()) == [], page


def test_the_api_docs_load_their_script_as_a_file_under_the_same_policy(client):
    page = client.get("/api/docs/")
    assert page.status_code == 200
    assert inline_scripts(page.content.decode()) == []
    assert policy(page) == policy(client.get("/accounts/login/"))  # no CDN exception


def test_the_other_security_headers_are_set(client):
    response = client.get("/accounts/login/")
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"

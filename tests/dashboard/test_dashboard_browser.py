"""The dashboard in a real browser (Debian's Chromium, headless, driven by Playwright) on a live server.

For a sponsor, a committee member and a data manager: they log in through the dashboard's own page,
the page raises no console error, every request it makes goes to the live server and nowhere else
(a hospital network has no internet), it fits 1280 px, the numbers it shows equal the API's for the
seeded trial, and every export it offers downloads with the reader's session (IE only for roles that
read screening data). Screenshots are saved under var/screenshots/ (CI keeps them as artifacts).
"""

from pathlib import Path
from urllib.parse import urlsplit

import pytest
import time_machine
from django.conf import settings
from django.db import connections
from rest_framework.test import APIClient

from core.roles import DATA_MANAGER, SAFETY_COMMITTEE, SPONSOR
from tests.dashboard.seed import VIEW, seed_trial
from tests.factories import UserFactory, token_for

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SCREENSHOTS = Path(settings.BASE_DIR) / "var" / "screenshots"
PASSWORD = "correct horse battery staple"
ROLES = {"sponsor": SPONSOR, "committee": SAFETY_COMMITTEE, "data-manager": DATA_MANAGER}

ROWS_JS = """(selector) => [...document.querySelectorAll(selector)].map(row => Object.assign(
    {...row.dataset},
    Object.fromEntries([...row.querySelectorAll('td[data-field], td[data-grade]')].map(td =>
        [td.dataset.field || ('grade_' + td.dataset.grade), td.dataset.value ?? td.textContent.trim()])),
    {signatures: [...row.querySelectorAll('li[data-signer]')].map(li => [li.dataset.signer, li.dataset.meaning])}))"""


@pytest.fixture
def plain_http_cookies(settings):
    """The live server speaks plain HTTP: cookies marked Secure (DEBUG off) would not come back over it."""
    settings.SESSION_COOKIE_SECURE = False
    settings.CSRF_COOKIE_SECURE = False


def _api(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token_for(user)}")
    return client


def _log_in(page, live_server, user):
    page.goto(f"{live_server.url}/dashboard/NCT06949137/")
    assert urlsplit(page.url).path == "/accounts/login/"  # login required
    page.fill("#id_username", user.username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/dashboard/NCT06949137/")


def test_each_role_reads_the_dashboard_offline_with_the_api_numbers(
    nct_trial, transactional_db, plain_http_cookies, live_server, chromium
):  # the database first, so that it is torn down after the live server has stopped
    seeded = seed_trial(nct_trial)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    server = urlsplit(live_server.url).netloc
    with time_machine.travel(VIEW, tick=True):
        for name, role in ROLES.items():
            user = UserFactory(username=f"{name}-reader", first_name="Reader", last_name=name.title(), role=role,
                               is_staff=role != SPONSOR)  # fmt: skip
            chromium.clear_cookies()  # each role logs in afresh
            page = chromium.new_page()
            hosts, errors = set(), []
            page.on("request", lambda request, hosts=hosts: hosts.add(urlsplit(request.url).netloc))
            page.on("console", lambda msg, errors=errors: errors.append(msg.text) if msg.type == "error" else None)
            page.on("pageerror", lambda exc, errors=errors: errors.append(str(exc)))
            _log_in(page, live_server, user)
            page.wait_for_load_state("networkidle")
            page.screenshot(path=SCREENSHOTS / f"dashboard-{name}.png", full_page=True)
            page.screenshot(path=SCREENSHOTS / f"dashboard-{name}-top.png")

            assert errors == [], f"{name}: console errors {errors}"
            assert hosts == {server}, f"{name}: requests left the live server: {hosts - {server}}"
            assert page.evaluate("document.documentElement.scrollWidth") <= 1280  # no sideways scrolling
            assert page.locator("svg.chart").count() == 5

            api = _api(user)
            summary = api.get("/api/v1/trials/NCT06949137/summary/").json()
            shown = {int(r["cohort"]): r for r in page.evaluate(ROWS_JS, "#cohort-table tr[data-cohort]")}
            assert sorted(shown) == [row["cohort"] for row in summary["cohorts"]]
            for row in summary["cohorts"]:
                for field in ("capacity", "enrolled", "infused", "in_dlt_window", "dlts", "dlt_candidates",
                              "serious_adverse_events", "state"):  # fmt: skip
                    assert shown[row["cohort"]][field] == str(row[field]), (name, field)

            by_dose = {}
            for row in summary["cohorts"]:
                counts = by_dose.setdefault(str(row["dose_level"]), dict.fromkeys("12345", 0))
                for grade, count in row["adverse_events_by_grade"].items():
                    counts[grade] += count
            for row in page.evaluate(ROWS_JS, "#grade-table tr[data-dose-level]"):
                expected = by_dose.get(row["doseLevel"], dict.fromkeys("12345", 0))
                assert {g: int(row[f"grade_{g}"]) for g in "12345"} == expected, (name, row)

            history = api.get("/api/v1/trials/NCT06949137/escalation-history/").json()
            effective = page.evaluate(ROWS_JS, "#review-table tr[data-state=effective]")
            assert [(int(r["review"]), r["decision"], r["to_cohort"]) for r in effective] == [
                (h["review"], h["decision"], str(h["to_cohort"])) for h in history]  # fmt: skip
            assert [r["signatures"] for r in effective] == [
                [[s["signer"], s["meaning"]] for s in h["signatures"]] for h in history]  # fmt: skip
            assert history and history[0]["review"] == seeded.escalation.pk

            clocks = api.get("/api/v1/reporting-clocks/?trial=NCT06949137").json()["results"]
            shown_clocks = {r["kind"]: r for r in page.evaluate(ROWS_JS, "#clock-table tr[data-kind]")}
            for kind, row in shown_clocks.items():
                mine = [c for c in clocks if c["kind"] == kind]
                assert int(row["total"]) == len(mine), (name, kind)
                assert int(row["open_overdue"]) == sum(1 for c in mine if c["overdue"]), (name, kind)
                assert int(row["on_time"]) + int(row["late"]) == sum(1 for c in mine if c["done_at"]), (name, kind)
            assert sum(int(r["late"]) for r in shown_clocks.values()) == 1
            assert sum(int(r["on_time"]) for r in shown_clocks.values()) >= 1

            # Every export the page offers downloads with the reader's session, and only those her role allows.
            links = page.eval_on_selector_all("#exports a", "links => links.map(a => a.getAttribute('href'))")
            assert any("/export/fhir/" in link for link in links) and any("dossier.pdf" in link for link in links)
            assert any(link.endswith("/IE.csv") for link in links) is (role != SPONSOR)
            for link in links:
                response = page.request.get(f"{live_server.url}{link}")
                assert response.status == 200, (name, link, response.status)
            page.close()
    # Playwright's sync API runs an event loop in this thread, so Django gave the ORM calls above their own
    # (context-local) connection, which the test teardown does not see: close it, or PostgreSQL keeps a
    # session on the test database and refuses to drop it.
    connections.close_all()

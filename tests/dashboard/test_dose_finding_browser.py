"""Issue 15's pages in a real browser (Debian's Chromium, headless, Playwright) on a live server: a committee
member opens a review and sees the decision tables and the pathways, prints the printable page (print media),
and a data manager runs a seeded scenario on the operating-characteristics page. No console error, nothing
fetched from outside the server, no sideways scrolling at 1280 px. Screenshots go to var/screenshots/."""

from pathlib import Path
from urllib.parse import urlsplit

import pytest
import time_machine
from django.conf import settings
from django.db import connections

from core.roles import DATA_MANAGER, SAFETY_COMMITTEE
from safety import services
from tests.cohorts.test_infusions_support import DAY, HOUR, T0, enrolled_cohort, infuse, record_visits
from tests.factories import UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SCREENSHOTS = Path(settings.BASE_DIR) / "var" / "screenshots"
PASSWORD = "correct horse battery staple"
AFTER_WINDOWS = T0 + 40 * DAY


@pytest.fixture
def plain_http_cookies(settings):
    settings.SESSION_COOKIE_SECURE = False
    settings.CSRF_COOKIE_SECURE = False


def _watch(page, errors: list, hosts: set):
    """Console errors and failed responses; the admin's pages ask for /favicon.ico, which the project does not
    serve (the browser's own request, not the page's): that one 404 is not counted."""
    page.on("request", lambda request: hosts.add(urlsplit(request.url).netloc))
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text)
            if msg.type == "error" and not msg.text.startswith("Failed to load resource") else None)  # fmt: skip
    page.on("response", lambda response: errors.append(f"{response.status} {response.url}")
            if response.status >= 400 and urlsplit(response.url).path != "/favicon.ico" else None)  # fmt: skip


def _admin_login(page, live_server, user, path: str):
    page.goto(f"{live_server.url}/admin/login/?next={path}")
    page.fill("#id_username", user.username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(f"{live_server.url}{path}")


def test_the_committee_sees_tables_and_pathways_and_a_data_manager_runs_a_scenario(
    nct_trial, plain_http_cookies, live_server, chromium
):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    server = urlsplit(live_server.url).netloc
    errors, hosts = [], set()
    # Before the first cohort: the data manager runs (and may record) the operating characteristics
    manager = UserFactory(username="dm-browser", first_name="Data", last_name="Manager", role=DATA_MANAGER)
    page = chromium.new_page()
    _watch(page, errors, hosts)
    _admin_login(page, live_server, manager, "/admin/safety/simulationreport/run/")
    page.select_option("#id_preset", "MTD at dose 2")
    page.fill("#id_seed", "11")
    page.click("input[name=action][value=run]")
    page.wait_for_load_state("networkidle")
    assert page.locator("#oc-doses tbody tr").count() == 3
    assert page.locator("input[name=action][value=record]").is_visible()  # no cohort yet: it may be recorded
    assert "10,000 simulated trials, seed 11" in page.locator("#oc-report").inner_text()
    page.screenshot(path=SCREENSHOTS / "operating-characteristics.png", full_page=True)
    page.close()
    chromium.clear_cookies()

    _, people = enrolled_cohort(nct_trial)
    for person, offset in zip(people, (0 * DAY, 8 * DAY, 9 * DAY + HOUR), strict=True):
        infuse(person, T0 + offset)
    record_visits(people, until=AFTER_WINDOWS.date())
    with time_machine.travel(AFTER_WINDOWS, tick=True):
        (review,) = services.reviews_open_due()
        member = UserFactory(username="src-browser", first_name="Ana", last_name="Costa", role=SAFETY_COMMITTEE)
        page = chromium.new_page()
        _watch(page, errors, hosts)
        _admin_login(page, live_server, member, f"/admin/safety/safetyreview/{review.pk}/change/")
        page.wait_for_load_state("networkidle")
        assert page.locator("#three-plus-three-table tbody tr").count() == 27
        assert page.locator("#pathway-table tbody tr").count() == 20
        assert page.locator("#pathway-tree li").count() == 21
        assert page.locator("#recommendations tr[data-design='tite-boin']").is_visible()
        assert page.locator("#three-plus-three-table th.df-current").text_content().endswith("(the next cohort's dose)")
        page.locator("#pathways").screenshot(path=SCREENSHOTS / "review-pathways.png")
        page.screenshot(path=SCREENSHOTS / "review-dose-finding.png", full_page=True)
        assert page.evaluate("document.documentElement.scrollWidth") <= 1280

        page.click("text=Printable page: decision tables, pathways and TITE-BOIN")
        page.wait_for_load_state("networkidle")
        page.emulate_media(media="print")
        assert not page.locator(".df-print-link").is_visible()  # the print stylesheet hides the links
        page.screenshot(path=SCREENSHOTS / "review-printable.png", full_page=True)
        page.close()

    assert errors == [], errors
    assert hosts == {server}, hosts
    connections.close_all()

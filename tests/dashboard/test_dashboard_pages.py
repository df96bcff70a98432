"""The dashboard pages, server-side: login, what each role sees, and the numbers against the API's."""

import re

import pytest
from rest_framework.test import APIClient

from core.roles import DATA_MANAGER, SAFETY_COMMITTEE, SPONSOR
from tests.dashboard.seed import VIEW, frozen, seed_trial
from tests.factories import UserFactory, token_for

pytestmark = pytest.mark.django_db

IDENTIFIERS = ("1960-03-15", "WL", "coordinator", "investigator", "src0", "src1", "src2")


@pytest.fixture
def seeded(nct_trial):
    return seed_trial(nct_trial)


def sponsor():
    return UserFactory(username="sponsor1", first_name="Dana", last_name="Board", role=SPONSOR, is_staff=False)


def test_an_anonymous_visitor_is_sent_to_the_dashboard_login(client, nct_trial):
    response = client.get("/dashboard/")
    assert response.status_code == 302 and response.url.startswith("/accounts/login/")


def test_a_sponsor_without_admin_access_logs_in_and_sees_the_trial(client, seeded):
    user = sponsor()
    with frozen(VIEW):
        response = client.post(
            "/accounts/login/", {"username": user.username, "password": "correct horse battery staple"}
        )
        assert response.status_code == 302 and response.url == "/dashboard/"
        page = client.get("/dashboard/NCT06949137/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "Cohort progress" in html and "<svg" in html and "<script" not in html
    assert client.get("/admin/").status_code == 302  # still no admin


def test_the_sponsor_page_shows_no_identifier_and_no_staff_username(client, seeded):
    with frozen(VIEW):
        client.force_login(sponsor())
        response = client.get("/dashboard/NCT06949137/")
    assert response.status_code == 200, response
    html = response.content.decode()
    for text in IDENTIFIERS:
        assert not re.search(rf"\b{re.escape(text)}\b", html), text
    assert "9137-001" in html or re.search(r"data-study-id=\"[^\"]+\"", html)
    assert "Member Number0" in html  # the printed name of a signature (21 CFR 11.50) is shown


@pytest.mark.parametrize("role", [SPONSOR, SAFETY_COMMITTEE, DATA_MANAGER])
def test_the_cohort_table_equals_the_api_trial_summary_for_each_role(client, seeded, role):
    user = UserFactory(username="reader", role=role, is_staff=role != SPONSOR)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {token_for(user)}")
    with frozen(VIEW):
        client.force_login(user)
        html = client.get("/dashboard/NCT06949137/").content.decode()
        summary = api.get("/api/v1/trials/NCT06949137/summary/").json()
    for row in summary["cohorts"]:
        block = re.search(rf'<tr data-cohort="{row["cohort"]}">(.*?)</tr>', html, re.S).group(1)
        for name in ("capacity", "enrolled", "infused", "in_dlt_window", "dlts", "dlt_candidates",
                     "serious_adverse_events"):  # fmt: skip
            assert re.search(rf'data-field="{name}">{row[name]}<', block), (name, row[name])
        assert f'data-value="{row["state"]}"' in block


@pytest.mark.parametrize("size", ["one cohort", "the seeded trial"])
def test_the_trial_page_takes_a_constant_number_of_queries(client, nct_trial, django_assert_max_num_queries, size):
    if size == "one cohort":
        from tests.cohorts.test_infusions_support import enrolled_cohort, infuse_cohort

        _, people = enrolled_cohort(nct_trial)
        infuse_cohort(people)
    else:
        seed_trial(nct_trial)
    with frozen(VIEW):
        client.force_login(UserFactory(username="reader", role=SAFETY_COMMITTEE))
        # 30 before issue 15; the dose-finding card reads 3 more (dose count, enrollments, DLT statuses)
        with django_assert_max_num_queries(33):
            assert client.get("/dashboard/NCT06949137/").status_code == 200


def test_the_index_lists_each_trial_with_a_link_to_its_page(client, nct_trial):
    client.force_login(sponsor())
    html = client.get("/dashboard/").content.decode()
    assert 'href="/dashboard/NCT06949137/"' in html and "0 cohorts opened" in html


def test_a_user_without_a_role_is_refused(client, nct_trial):
    client.force_login(UserFactory(username="nobody", is_staff=False))
    assert client.get("/dashboard/NCT06949137/").status_code == 403

"""Every list endpoint and every admin changelist takes the same number of queries at 10 and at 1,000 rows.

The endpoints are enumerated from the API router (every ``*-list`` route, plus the list views outside
it) and from the admin site (every registered model), so a new list is measured without anyone adding it
here. The data come from the bench generator (``bench/generate_data.py``): first a trial of 10
participants and 10 adverse events, then a second of 1,000 and 1,000 (the second cohort of each opened by
an effective signed review). Each endpoint is requested once to warm the caches, then measured; the API
as a superuser (staff shapes) and as a sponsor (pseudonymised shapes).
"""

import pytest
from django.conf import settings
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import connection, transaction
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from rest_framework.test import APIClient

from api.urls import router
from bench.generate_data import generate
from cohorts.models import Cohort
from core.roles import SPONSOR
from trial.models import Trial

pytestmark = pytest.mark.django_db

API_LISTS = sorted(
    {url.name for url in router.urls if url.name and url.name.endswith("-list") and url.name != "api-root"}
)
EXTRA_LISTS = ("escalation-history", "cohort-enrollments")
ADMIN_CHANGELISTS = sorted(f"admin:{m._meta.app_label}_{m._meta.model_name}_changelist" for m in admin.site._registry)
# Tables the generator fills: their lists must really have grown between the two measures.
GROWING = {
    "trial-list", "participant-list", "consent-list", "consent-document-list", "cohort-list", "review-list",
    "infusion-list", "followupvisit-list", "deviation-list", "adverse-event-list", "reporting-clock-list",
    "cohort-enrollments",
    *(f"admin:{name}_changelist" for name in (
        "trial_trial", "cohorts_participant", "cohorts_enrollment", "cohorts_infusion", "cohorts_followupvisit",
        "cohorts_protocoldeviation", "cohorts_consentrecord", "cohorts_screeningrecord", "cohorts_cohort",
        "safety_adverseevent", "safety_reportingclock", "safety_safetyreview",
    )),
}  # fmt: skip


def _path(name: str, trial: Trial) -> str:
    if name == "escalation-history":
        return reverse("escalation-history", kwargs={"registry_id": trial.registry_id})
    if name == "cohort-enrollments":
        return reverse("cohort-enrollments", kwargs={"pk": Cohort.objects.get(trial=trial, sequence=2).pk})
    return reverse(name)


def _rows(response) -> int:
    if "cl" in (response.context or {}):
        return response.context["cl"].result_count
    body = response.json()
    return body["count"] if isinstance(body, dict) and "count" in body else len(body)


def _measure_all(clients: dict, trial: Trial) -> dict:
    measured = {}
    for who, client in clients.items():
        names = ADMIN_CHANGELISTS if who == "admin" else (*API_LISTS, *EXTRA_LISTS)
        for name in names:
            path = _path(name, trial)
            client.get(path)  # warm: content types, permissions, sessions
            with CaptureQueriesContext(connection) as queries:
                response = client.get(path)
            if who == "sponsor" and response.status_code == 403:  # a list the sponsor role may not read
                measured[who, name] = (len(queries), None)
                continue
            assert response.status_code == 200, (who, name, response.status_code)
            measured[who, name] = (len(queries), _rows(response))
    return measured


@pytest.fixture(scope="module")
def measured(django_db_setup, django_db_blocker):
    """Query counts and row counts of every list at both sizes: {(who, name): ((queries, rows), (queries, rows))}."""
    # What the suite's function-scoped fixtures set (tests/conftest.py), for this module-scoped one.
    plain = override_settings(
        PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"],
        STORAGES={
            **settings.STORAGES,
            "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
        },
    )
    with django_db_blocker.unblock(), plain, transaction.atomic():
        superuser = get_user_model().objects.create_superuser("qc-admin", password="x")
        sponsor = get_user_model().objects.create_user("qc-sponsor")
        sponsor.groups.add(Group.objects.get(name=SPONSOR))
        staff_api, sponsor_api, site = APIClient(), APIClient(), Client()
        staff_api.force_authenticate(superuser)
        sponsor_api.force_authenticate(sponsor)
        site.force_login(superuser)
        clients = {"staff": staff_api, "sponsor": sponsor_api, "admin": site}
        generate(trials=1, participants=10, adverse_events=10, big_trial_events=10, medium_trial_events=0)
        small = _measure_all(clients, Trial.objects.get(registry_id="GEN00000"))
        generate(trials=1, participants=1000, adverse_events=1000, big_trial_events=1000, prefix="GEM")
        large = _measure_all(clients, Trial.objects.get(registry_id="GEM00000"))
        transaction.set_rollback(True)
    return {key: (small[key], large[key]) for key in small}


CASES = [("staff", n) for n in (*API_LISTS, *EXTRA_LISTS)] + [("sponsor", n) for n in (*API_LISTS, *EXTRA_LISTS)]
CASES += [("admin", n) for n in ADMIN_CHANGELISTS]


@pytest.mark.parametrize(("who", "name"), CASES, ids=[f"{who}:{name}" for who, name in CASES])
def test_a_list_takes_the_same_number_of_queries_at_10_and_at_1000_rows(measured, who, name):
    (small_queries, small_rows), (large_queries, large_rows) = measured[who, name]
    if small_rows is None:
        assert large_rows is None  # refused (403) at both sizes
    elif name in GROWING:
        assert large_rows > small_rows, f"{name} did not grow ({small_rows} -> {large_rows} rows)"
    assert large_queries == small_queries, (
        f"{name}: {small_queries} queries at {small_rows} rows, {large_queries} at {large_rows}"
    )


def test_the_lists_measured_cover_the_router_and_the_admin_site():
    assert {"participant-list", "adverse-event-list", "infusion-list", "reporting-clock-list"} <= set(API_LISTS)
    assert "admin:safety_adverseevent_changelist" in ADMIN_CHANGELISTS
    assert len(ADMIN_CHANGELISTS) == len(admin.site._registry) >= 20

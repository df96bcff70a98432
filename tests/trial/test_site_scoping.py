"""Site scoping (issue 12, item 8): site staff and investigators see and write only their own sites'
participants; sponsors' tokens read only their trials; the committee and data managers see everything.

Two sites of NCT06949137 (A, the protocol's HelpThera, and B), a participant screened and consented at
each; ``nurse_a`` works at A only. Each attack is tried through the API, the admin and the services.
"""

import importlib
import json
from datetime import date

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.auth.models import AnonymousUser
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import RequestFactory
from rest_framework.test import APIClient

from cohorts import services
from cohorts.models import (
    ConsentRecord,
    DripRateReading,
    Enrollment,
    Fracture,
    Participant,
    ScreeningRecord,
)
from core.errors import PermissionDenied
from core.roles import DATA_MANAGER, INVESTIGATOR, SAFETY_COMMITTEE, SITE_STAFF, SPONSOR
from safety.models import AdverseEvent, ReportingClock
from tests.factories import TrialFactory, UserFactory, consent_document, eligible_participant, token_for
from trial.access import (
    assignments_sql,
    participant_path,
    scope_of,
    scope_participants,
    scope_trials,
    site_assignment_save,
    trial_assignment_save,
    trial_scope_sql,
)
from trial.models import Site, SiteAssignment, Trial, TrialAssignment

pytestmark = pytest.mark.django_db


@pytest.fixture
def sites(nct_trial):
    site_a = nct_trial.sites.get()
    site_b = Site.objects.create(
        trial=nct_trial, name="Site B", city="Suzhou", country="China", time_zone="Asia/Shanghai"
    )
    return site_a, site_b


@pytest.fixture
def people(nct_trial, sites):
    site_a, site_b = sites
    a = eligible_participant(nct_trial, number="A-001", site=site_a)
    b = eligible_participant(nct_trial, number="B-001", site=site_b)
    return a, b


@pytest.fixture
def nurse_a(sites):
    return UserFactory(username="nurse_a", role=SITE_STAFF, sites=[sites[0]])


def _api(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token_for(user)}")
    return client


def _ids(response) -> set[int]:
    assert response.status_code == 200, response.content
    return {row["id"] for row in response.json()["results"]}


# --- the API -------------------------------------------------------------------------------------------


def test_a_site_a_nurse_reading_a_site_b_participant_gets_404_json(people, nurse_a):
    _, b = people
    response = _api(nurse_a).get(f"/api/v1/participants/{b.pk}/")
    assert response.status_code == 404 and response.json()["code"] == "not_found"


@pytest.mark.parametrize(
    ("path", "model", "participant"),
    [
        ("/api/v1/participants/", Participant, ""),
        ("/api/v1/consents/", ConsentRecord, "participant"),
    ],
)
def test_a_site_a_nurse_lists_only_site_a_records(people, nurse_a, path, model, participant):
    a, _ = people
    listed = _ids(_api(nurse_a).get(path))
    owner = {row.pk: row for row in model.objects.all()}
    assert listed, "site A has records here"
    for pk in listed:
        record = owner[pk]
        for name in filter(None, participant.split("__")):
            record = getattr(record, name)
        assert record.site_id == a.site_id
    assert len(listed) < model.objects.count()  # site B's are there, and hidden


def test_a_site_a_nurse_writing_to_a_site_b_participant_gets_404_and_nothing_changes(people, nurse_a):
    _, b = people
    response = _api(nurse_a).post(
        f"/api/v1/participants/{b.pk}/withdraw/", {"on": "2026-01-05", "reason": "Moved away"}, format="json"
    )
    assert response.status_code == 404
    b.refresh_from_db()
    assert b.status != Participant.Status.WITHDRAWN


def test_a_site_a_nurse_recording_consent_for_a_site_b_participant_is_refused(people, nurse_a, nct_trial):
    _, b = people
    before = ConsentRecord.objects.count()
    response = _api(nurse_a).post(
        "/api/v1/consents/",
        {"participant": b.pk, "document": consent_document(nct_trial).pk, "signed_at": "2026-01-05T08:00:00Z"},
        format="json",
    )
    assert response.status_code == 403 and response.json()["code"] == "not_assigned"
    assert ConsentRecord.objects.count() == before


def test_a_nurse_assigned_to_no_site_sees_no_participant(people, sites):
    nobody = UserFactory(username="unassigned", role=SITE_STAFF, sites=[])
    assert _ids(_api(nobody).get("/api/v1/participants/")) == set()


@pytest.mark.parametrize("role", [SAFETY_COMMITTEE, DATA_MANAGER])
def test_the_committee_and_data_managers_see_every_site(people, role):
    reader = UserFactory(username="reader", role=role)
    assert _ids(_api(reader).get("/api/v1/participants/")) == {p.pk for p in people}


def test_an_ended_assignment_hides_the_site_again(people, sites, nurse_a):
    manager = UserFactory(username="dm", role=DATA_MANAGER)
    site_assignment_save(user=nurse_a, site=sites[0], active=False, by=manager, reason="Left the site")
    assert _ids(_api(nurse_a).get("/api/v1/participants/")) == set()
    assignment = SiteAssignment.objects.get(user=nurse_a, site=sites[0])
    assert assignment.history.latest().history_change_reason == "Left the site"
    assert assignment.history.latest().history_user == manager


# --- sponsors: tokens read only their trials -----------------------------------------------------------


def test_a_sponsor_token_reads_only_the_trials_assigned_to_it(people, nct_trial):
    other = TrialFactory(registry_id="NCT00000002")
    sponsor = UserFactory(username="sponsor_x", role=SPONSOR, is_staff=False, trials=[other])
    client = _api(sponsor)
    assert [t["registry_id"] for t in client.get("/api/v1/trials/").json()["results"]] == ["NCT00000002"]
    assert client.get(f"/api/v1/trials/{nct_trial.registry_id}/").status_code == 404
    assert client.get(f"/api/v1/trials/{nct_trial.registry_id}/summary/").status_code == 404
    assert client.get(f"/api/v1/trials/{nct_trial.registry_id}/escalation-history/").status_code == 404
    assert _ids(client.get("/api/v1/participants/")) == set()
    assigned = UserFactory(username="sponsor_nct", role=SPONSOR, is_staff=False, trials=[nct_trial])
    assert len(_ids(_api(assigned).get("/api/v1/participants/"))) == 2


def test_a_sponsor_with_no_trial_assigned_reads_nothing(people):
    sponsor = UserFactory(username="sponsor_none", role=SPONSOR, is_staff=False, trials=[])
    assert _api(sponsor).get("/api/v1/trials/").json()["results"] == []


def test_the_trials_scoped_in_plain_sql_are_those_of_the_users_scope(people, sites, nurse_a, nct_trial):
    other = TrialFactory(registry_id="NCT00000002")
    manager = UserFactory(username="dm-scope", role=DATA_MANAGER)
    sponsor = UserFactory(username="sponsor-scope", role=SPONSOR, is_staff=False, trials=[other])
    ended = UserFactory(username="nurse-ended", role=SITE_STAFF, sites=[sites[1]])
    site_assignment_save(user=ended, site=sites[1], active=False, by=manager, reason="Left the site")
    ended_sponsor = UserFactory(username="sponsor-ended", role=SPONSOR, is_staff=False, trials=[nct_trial])
    trial_assignment_save(user=ended_sponsor, trial=nct_trial, active=False, by=manager, reason="Contract ended")
    nobody = UserFactory(username="sponsor-none", role=SPONSOR, is_staff=False, trials=[])
    inactive = UserFactory(username="sponsor-inactive", role=SPONSOR, is_staff=False, trials=[other])
    inactive.is_active = False
    inactive.save()
    expected = {
        nurse_a: {nct_trial.pk}, sponsor: {other.pk}, manager: {nct_trial.pk, other.pk}, ended: set(),
        ended_sponsor: set(), nobody: set(), inactive: set(), AnonymousUser(): set(),
    }  # fmt: skip
    for user, trials in expected.items():
        fresh = type(user).objects.get(pk=user.pk) if user.pk else user
        condition, parameters = trial_scope_sql(fresh, "t.id")
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT t.id FROM {Trial._meta.db_table} t WHERE {condition}", parameters)  # noqa: S608
            seen = {pk for (pk,) in cursor.fetchall()}
        assert seen == trials == {t.pk for t in scope_trials(Trial.objects.all(), fresh, trial="pk")}, user


def test_the_plain_sql_scope_reads_the_models_own_tables():
    for model in (SiteAssignment, Site, TrialAssignment):
        assert connection.ops.quote_name(model._meta.db_table) in assignments_sql(), model


# --- the services --------------------------------------------------------------------------------------


def test_the_service_refuses_a_site_a_nurse_writing_a_site_b_participant(people, nurse_a):
    _, b = people
    with pytest.raises(PermissionDenied) as refused:
        services.participant_withdraw(participant=b, on=date(2026, 1, 5), reason="Moved", by=nurse_a)
    assert refused.value.code == "not_assigned"
    with pytest.raises(PermissionDenied):
        services.screening_record_save(participant=b, values={"height_cm": 160}, by=nurse_a, reason="Typo")
    b.refresh_from_db()
    assert b.status != Participant.Status.WITHDRAWN


def test_the_service_refuses_registering_a_participant_at_another_site(sites, nurse_a, nct_trial):
    with pytest.raises(PermissionDenied):
        services.participant_register(
            trial=nct_trial, site=sites[1], screening_number="B-9", date_of_birth=date(1960, 1, 1), sex="F", by=nurse_a
        )
    assert not Participant.objects.filter(screening_number="B-9").exists()


def test_the_service_lets_a_site_a_nurse_write_her_own_sites_participant(people, nurse_a):
    a, _ = people
    services.participant_withdraw(participant=a, on=date(2026, 1, 5), reason="Moved", by=nurse_a)
    a.refresh_from_db()
    assert a.status == Participant.Status.WITHDRAWN


def test_an_investigator_of_another_trial_cannot_open_this_trials_first_cohort(nct_trial):
    other = TrialFactory(registry_id="NCT00000003")
    other_site = Site.objects.create(trial=other, name="Elsewhere", city="X", country="Y", time_zone="UTC")
    investigator = UserFactory(username="inv_other", role=INVESTIGATOR, sites=[other_site])
    with pytest.raises(PermissionDenied):
        services.cohort_open_first(trial=nct_trial, by=investigator)
    assert not nct_trial.cohorts.exists()


# --- the admin -----------------------------------------------------------------------------------------


def test_the_admin_changelist_of_a_site_a_nurse_excludes_site_b(client, people, nurse_a):
    client.force_login(nurse_a)
    page = client.get("/admin/cohorts/participant/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "A-001" in html and "B-001" not in html
    b = people[1]
    assert client.get(f"/admin/cohorts/participant/{b.pk}/change/").status_code == 302  # "does not exist"


def test_every_admin_of_a_model_that_hangs_off_a_participant_narrows_its_queryset(people, nurse_a):
    request = RequestFactory().get("/admin/")
    request.user = nurse_a
    scoped, checked = [], 0
    for model, model_admin in admin.site._registry.items():
        if participant_path(model) is None:
            continue
        checked += 1
        sql = str(model_admin.get_queryset(request).query)
        if "site_id" not in sql:
            scoped.append(model._meta.label)
    assert checked >= 10
    assert scoped == []


@pytest.mark.parametrize(
    ("model", "path"),
    [
        (Participant, ""),
        (ScreeningRecord, "participant"),
        (Fracture, "screening__participant"),
        (Enrollment, "participant"),
        (DripRateReading, "infusion__participant"),
        (AdverseEvent, "participant"),
        (ReportingClock, "adverse_event__participant"),
        (apps.get_model("cohorts", "Cohort"), None),
        (apps.get_model("trial", "Trial"), None),
    ],
)
def test_the_path_to_the_participant_is_found_from_the_foreign_keys(model, path):
    assert participant_path(model) == path


def test_an_anonymous_user_sees_nothing(people):
    assert scope_participants(Participant.objects.all(), AnonymousUser()).count() == 0
    assert scope_of(AnonymousUser()).site_ids == frozenset()


# --- create_role_user and the migration ----------------------------------------------------------------


def test_create_role_user_assigns_the_site_and_refuses_a_site_role_without_one(capsys, sites):
    call_command("create_role_user", "nurse9", "--role", SITE_STAFF, "--site", "Site B")
    printed = json.loads(capsys.readouterr().out)
    assert printed["sites"] == ["NCT06949137 Site B"]
    assert list(SiteAssignment.objects.filter(user__username="nurse9").values_list("site__name", flat=True)) == [
        "Site B"
    ]
    with pytest.raises(CommandError, match="--site"):
        call_command("create_role_user", "nurse10", "--role", SITE_STAFF)
    with pytest.raises(CommandError, match="No site"):
        call_command("create_role_user", "nurse11", "--role", INVESTIGATOR, "--site", "Nowhere")


def test_create_role_user_assigns_a_sponsor_its_trials_and_refuses_one_without(capsys, nct_trial):
    call_command("create_role_user", "sponsor9", "--role", SPONSOR, "--trial", "NCT06949137")
    assert TrialAssignment.objects.filter(user__username="sponsor9", trial=nct_trial).exists()
    with pytest.raises(CommandError, match="--trial"):
        call_command("create_role_user", "sponsor10", "--role", SPONSOR)


MIGRATION = importlib.import_module("trial.migrations.0007_site_and_trial_assignments")


def test_the_migration_assigns_existing_staff_to_the_only_site_and_sponsors_to_the_only_trial(nct_trial):
    nurse = UserFactory(username="old_nurse", role=SITE_STAFF, sites=[])
    sponsor = UserFactory(username="old_sponsor", role=SPONSOR, trials=[])
    MIGRATION.assign_existing_users(apps, None)
    assert list(SiteAssignment.objects.filter(user=nurse).values_list("site", flat=True)) == [nct_trial.sites.get().pk]
    assert TrialAssignment.objects.filter(user=sponsor, trial=nct_trial).exists()
    row = SiteAssignment.objects.get(user=nurse)
    assert "Migration trial 0007" in row.history.latest().history_change_reason


def test_the_migration_assigns_nobody_when_there_are_several_sites(sites):
    nurse = UserFactory(username="old_nurse", role=SITE_STAFF, sites=[])
    MIGRATION.assign_existing_users(apps, None)
    assert not SiteAssignment.objects.filter(user=nurse).exists()


@pytest.mark.parametrize("url", ["/admin/cohorts/consentrecord/add/", "/admin/cohorts/gilbertsyndromediagnosis/add/"])
def test_the_admin_add_forms_offer_only_site_a_participants_to_a_site_a_user(client, people, sites, url):
    investigator = UserFactory(username="inv_a", role=INVESTIGATOR, sites=[sites[0]])
    client.force_login(investigator)
    page = client.get(url)
    assert page.status_code == 200
    choices = set(page.context["adminform"].form.fields["participant"].queryset.values_list("pk", flat=True))
    assert people[0].pk in choices and people[1].pk not in choices

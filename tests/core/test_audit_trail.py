"""The audit trail is complete and append-only (21 CFR 11.10(e); issue 12, item 2).

Each attack of the issue as a test: a verdict written past the history, a command or task with no actor,
a Revert of a stopped trial, an UPDATE/DELETE/TRUNCATE of a history row, a deleted user erasing "who", and
user, role and chair-permission changes left unaudited.
"""

import json
from decimal import Decimal
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.core.management import call_command
from django.db import IntegrityError, connection, transaction
from django.db.models import ProtectedError
from django.urls import reverse

from cohorts import services
from cohorts.models import ScreeningRecord
from core.actors import is_system_actor, system_actor
from core.append_only import append_only_tables
from core.roles import DATA_MANAGER, SAFETY_COMMITTEE, SITE_STAFF
from tests.factories import ELIGIBLE_SCREENING, UserFactory, eligible_participant, staff_users
from trial.models import Trial

pytestmark = pytest.mark.django_db
User = get_user_model()


# --- the screening verdict is saved with its history -------------------------------------------------------


def test_a_screening_change_that_makes_her_not_eligible_leaves_history_saying_not_eligible(nct_trial):
    participant = eligible_participant(nct_trial, number="A001")
    record = ScreeningRecord.objects.get(participant=participant)
    assert record.verdict == ScreeningRecord.Verdict.ELIGIBLE
    coordinator, _ = staff_users()
    services.screening_record_save(
        participant=participant,
        values={**ELIGIBLE_SCREENING, "egfr": Decimal("20")},
        by=coordinator,
        reason="eGFR re-measured",
    )
    record.refresh_from_db()
    latest = record.history.latest()
    assert record.verdict == latest.verdict == ScreeningRecord.Verdict.NOT_ELIGIBLE
    assert latest.history_user == coordinator
    assert latest.history_change_reason.startswith("Eligibility evaluated: not_eligible (unmet:")


# --- commands and tasks name a system actor ------------------------------------------------------------------


def test_load_protocol_names_its_system_actor_on_every_history_row():
    call_command("load_protocol", stdout=StringIO(), stderr=StringIO())
    trial = Trial.objects.get(registry_id="NCT06949137")
    rows = [
        trial.history.get(),
        *(c.history.get() for c in trial.criteria.all()),
        *(s.history.get() for s in trial.sites.all()),
    ]
    assert {row.history_user.username for row in rows} == {"system:load_protocol"}
    assert all(row.history_change_reason.startswith("Loaded from protocol file") for row in rows)


def test_load_ctcae_terms_names_its_system_actor():
    call_command("load_ctcae_terms", stdout=StringIO(), stderr=StringIO())
    from safety.models import CtcaeTerm

    users = set(CtcaeTerm.history.values_list("history_user__username", flat=True))
    assert users == {"system:load_ctcae_terms"}


def test_a_system_actor_cannot_log_in_and_no_person_can_take_its_name():
    actor = system_actor("beat")
    assert is_system_actor(actor) and not actor.is_active and not actor.has_usable_password()
    assert system_actor("beat") == actor  # one row per name
    from django.contrib.auth.forms import UserCreationForm

    form = UserCreationForm(data={"username": "system:beat", "password1": "x" * 20, "password2": "x" * 20})
    assert not form.is_valid() and "username" in form.errors


def test_create_role_user_records_the_user_the_role_and_the_chair_permission_with_its_actor():
    out = StringIO()
    call_command("create_role_user", "chair1", "--role", SAFETY_COMMITTEE, "--chair", stdout=out)
    assert json.loads(out.getvalue())["chair"] is True
    user = User.objects.get(username="chair1")
    rows = list(user.history.order_by("history_id"))
    assert [r.history_type for r in rows] == ["+", "~", "~"]  # created, role given, chair permission given
    assert {r.history_user.username for r in rows} == {"system:create_role_user"}
    assert all(
        r.history_change_reason.startswith("create_role_user chair1 --role Safety committee --chair") for r in rows
    )
    last = rows[-1]
    assert [g.group.name for g in last.groups.all()] == [SAFETY_COMMITTEE]
    assert [p.permission.codename for p in last.user_permissions.all()] == ["chair_review"]
    assert "password" not in {f.name for f in type(last)._meta.fields}


# --- users, roles and permissions in the admin ---------------------------------------------------------------


def user_form(user, **changes) -> dict:
    data = {
        "username": user.username,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "email": user.email,
        "is_active": "on" if user.is_active else "",
        "is_staff": "on" if user.is_staff else "",
        "groups": [g.pk for g in user.groups.all()],
        "user_permissions": [p.pk for p in user.user_permissions.all()],
        "last_login_0": "",
        "last_login_1": "",
        "date_joined_0": "2026-01-01",
        "date_joined_1": "00:00:00",
    }
    data.update(changes)
    return {k: v for k, v in data.items() if v != ""}


def test_a_role_given_in_the_admin_is_in_the_users_history_with_who_and_why(client):
    admin_user = User.objects.create_superuser("root", password="pw-for-the-test-0")
    nurse = UserFactory(username="nurse9")
    client.force_login(admin_user)
    staff = Group.objects.get(name=SITE_STAFF)
    response = client.post(
        reverse("admin:auth_user_change", args=[nurse.pk]),
        user_form(nurse, groups=[staff.pk], change_reason="Joined the site team"),
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    latest = nurse.history.latest()
    assert latest.history_user == admin_user
    assert latest.history_change_reason == "Joined the site team"
    assert [g.group.name for g in latest.groups.all()] == [SITE_STAFF]


def test_a_user_change_in_the_admin_without_a_reason_is_refused(client):
    client.force_login(User.objects.create_superuser("root", password="pw-for-the-test-0"))
    nurse = UserFactory(username="nurse9")
    response = client.post(reverse("admin:auth_user_change", args=[nurse.pk]), user_form(nurse, is_active=""))
    assert response.status_code == 200 and "Give the reason for this change" in response.content.decode()
    nurse.refresh_from_db()
    assert nurse.is_active


def test_a_chair_permission_taken_away_is_audited_like_a_clinical_change():
    member = UserFactory(username="src1", role=SAFETY_COMMITTEE)
    chair = Permission.objects.get(codename="chair_review")
    member._history_user, member._change_reason = system_actor("test"), "Chair handed over"
    member.user_permissions.add(chair)
    member.user_permissions.remove(chair)
    rows = list(member.history.order_by("-history_id")[:2])
    assert list(rows[0].user_permissions.all()) == []
    assert [p.permission.codename for p in rows[1].user_permissions.all()] == ["chair_review"]
    assert {r.history_change_reason for r in rows} == {"Chair handed over"}


def test_a_login_writes_no_history_row_but_a_password_change_does(client):
    user = UserFactory(username="nurse9")
    before = user.history.count()
    # Through the login page: django-axes' backend needs the request (client.login passes none).
    client.post("/accounts/login/", {"username": "nurse9", "password": "correct horse battery staple"})
    assert "_auth_user_id" in client.session
    assert user.history.count() == before
    user.set_password("another long passphrase")
    user._change_reason = "Password reset at the user's request"
    user.save()
    assert user.history.count() == before + 1


# --- users are deactivated, never deleted --------------------------------------------------------------------


def test_a_user_named_in_the_history_cannot_be_deleted_and_the_history_keeps_who(nct_trial):
    coordinator, _ = staff_users()
    participant = eligible_participant(nct_trial, number="A002")
    with pytest.raises(ProtectedError):
        coordinator.delete()
    assert participant.history.earliest().history_user == coordinator


def test_the_database_refuses_to_delete_a_user_even_one_named_nowhere():
    stranger = UserFactory(username="stranger")
    with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM auth_user WHERE id = %s", [stranger.pk])
    assert User.objects.filter(pk=stranger.pk).exists()


def test_no_one_can_delete_a_user_or_a_group_in_the_admin(client):
    admin_user = User.objects.create_superuser("root", password="pw-for-the-test-0")
    client.force_login(admin_user)
    nurse = UserFactory(username="nurse9")
    assert client.get(reverse("admin:auth_user_delete", args=[nurse.pk])).status_code == 403
    group = Group.objects.get(name=DATA_MANAGER)
    assert client.get(reverse("admin:auth_group_delete", args=[group.pk])).status_code == 403


# --- Revert is off ---------------------------------------------------------------------------------------


def test_the_history_view_of_a_stopped_trial_offers_no_revert_and_a_posted_revert_is_refused(client, nct_trial):
    old = nct_trial.history.earliest()
    nct_trial.status = Trial.Status.STOPPED
    nct_trial._change_reason = "The committee stopped the trial"
    nct_trial.save()
    client.force_login(User.objects.create_superuser("root", password="pw-for-the-test-0"))
    url = reverse("admin:trial_trial_simple_history", args=[nct_trial.pk, old.history_id])
    page = client.get(url)
    assert page.status_code == 200 and "Revert" not in page.content.decode()
    response = client.post(url, {"status": "recruiting", "change_reason": "revert"})
    assert response.status_code == 403
    nct_trial.refresh_from_db()
    assert nct_trial.status == Trial.Status.STOPPED


# --- history tables and the failed-signature log are append-only -------------------------------------------


def _refused(sql: str, params=()) -> bool:
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql, params)
    except IntegrityError:
        return True
    return False


def test_an_update_or_a_delete_of_a_history_row_is_refused_by_the_database(nct_trial):
    row = nct_trial.history.earliest()
    table = row._meta.db_table
    assert _refused(f"UPDATE {table} SET history_change_reason = 'forged' WHERE history_id = %s", [row.history_id])  # noqa: S608
    assert _refused(f"DELETE FROM {table} WHERE history_id = %s", [row.history_id])  # noqa: S608
    with pytest.raises(IntegrityError), transaction.atomic():
        type(row).objects.filter(pk=row.pk).update(history_change_reason="forged")
    row.refresh_from_db()
    assert row.history_change_reason.startswith("Loaded from protocol file")


def test_the_failed_signature_log_refuses_update_and_delete(nct_trial):
    from django.utils import timezone

    from safety import services as safety_services
    from safety.models import SignatureFailure

    _, investigator = staff_users()
    chair = UserFactory(username="chair", role=SAFETY_COMMITTEE)
    chair.user_permissions.add(Permission.objects.get(codename="chair_review"))
    cohort = services.cohort_open_first(trial=nct_trial, by=investigator)
    review = safety_services.review_open_by_chair(cohort=cohort, reason="A question of the chair", by=chair)
    failure = SignatureFailure.objects.create(user=chair, review=review, at=timezone.now())
    table = SignatureFailure._meta.db_table
    assert table in append_only_tables()
    assert _refused(f"UPDATE {table} SET at = at WHERE id = %s", [failure.pk])  # noqa: S608 - fixed table name
    assert _refused(f"DELETE FROM {table} WHERE id = %s", [failure.pk])  # noqa: S608
    assert SignatureFailure.objects.filter(pk=failure.pk).exists()


def _release():
    from core.lockouts import lockout_release

    return lockout_release(kind="login", username="nurse", by=UserFactory(role=DATA_MANAGER), reason="identity checked")


def _alert():
    import datetime as dt

    from safety.models import IntegrityAlert

    return IntegrityAlert.objects.create(
        kind="signatures", detected_on=dt.date(2026, 12, 1), detected_at=dt.datetime(2026, 12, 1, tzinfo=dt.UTC),
        signatures_checked=3, problem_count=1, problems=[{"code": "head_mismatch", "message": "broken"}],
    )  # fmt: skip


def _free_text_review():
    from django.contrib.contenttypes.models import ContentType
    from django.utils import timezone

    from core.models import FreeTextReview

    return FreeTextReview.objects.create(
        content_type=ContentType.objects.get_for_model(Trial), object_id=1, text_digest="0" * 64,
        reviewed_by=UserFactory(role=DATA_MANAGER), reviewed_at=timezone.now(), reason="Read: no identifiers",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("make", "column"), [(_release, "reason"), (_alert, "problem_count"), (_free_text_review, "reason")]
)
def test_lockout_releases_integrity_alerts_and_free_text_releases_refuse_update_and_delete(make, column):
    row = make()
    before = getattr(row, column)
    table = row._meta.db_table
    assert table in append_only_tables()
    value = "'forged'" if column == "reason" else "0"
    assert _refused(f"UPDATE {table} SET {column} = {value} WHERE id = %s", [row.pk])  # noqa: S608 - fixed names
    assert _refused(f"DELETE FROM {table} WHERE id = %s", [row.pk])  # noqa: S608
    with pytest.raises(IntegrityError), transaction.atomic():
        type(row).objects.filter(pk=row.pk).delete()
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        assert _refused(f"TRUNCATE {table} CASCADE")
    row.refresh_from_db()
    assert getattr(row, column) == before
    assert type(row).objects.filter(pk=row.pk).exists()


def _triggers() -> dict[str, set[str]]:
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("SELECT tbl_name, name FROM sqlite_master WHERE type = 'trigger'")
        else:
            cursor.execute("SELECT c.relname, t.tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid")
        found: dict[str, set[str]] = {}
        for table, name in cursor.fetchall():
            found.setdefault(table, set()).add(name)
    return found


def test_every_history_table_and_the_user_table_carry_their_triggers():
    found = _triggers()
    tables = append_only_tables()
    assert len(tables) >= 30  # 24 clinical and protocol histories, users, groups and their m2m rows, the log
    for table in tables:
        expected = (
            {f"{table}_append_only_update", f"{table}_append_only_delete"}
            if connection.vendor == "sqlite"
            else {"core_append_only", "core_append_only_truncate"}
        )
        assert expected <= found.get(table, set()), table
    assert found.get("auth_user"), "auth_user has no delete trigger"


@pytest.mark.postgres
def test_truncate_of_a_history_table_the_log_or_the_users_is_refused_on_postgresql(nct_trial):
    from safety.models import SignatureFailure

    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # no pending FK checks from the test's own inserts
    for table in (nct_trial.history.model._meta.db_table, SignatureFailure._meta.db_table, "auth_user"):
        assert _refused(f"TRUNCATE {table} CASCADE"), table
    assert nct_trial.history.exists()


@pytest.mark.django_db(transaction=True)
def test_the_suites_flush_still_empties_the_append_only_tables_after_a_transactional_test():
    """The flush after this test (tests/conftest.py) must get past the triggers: it errors otherwise."""
    nurse = UserFactory(username="nurse9")
    nurse._change_reason = "Renamed"
    nurse.first_name = "Li"
    nurse.save()
    assert nurse.history.count() == 2
    assert _refused(f"DELETE FROM {nurse.history.model._meta.db_table}")  # noqa: S608 - outside the flush: refused

"""API tokens: hashed at rest, expiring by role, revocable, issued without a shell, guesses throttled."""

import json

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.utils import timezone
from knox.models import AuthToken
from knox.settings import CONSTANTS
from rest_framework.test import APIClient

from core.errors import DomainError
from core.roles import DATA_MANAGER, SITE_STAFF, SPONSOR
from core.tokens import CANDIDATES_SQL, token_candidates, token_issue, token_revoke
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def _get(token: str, path: str = "/api/v1/trials/", **extra):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}", **extra)
    return client.get(path)


@pytest.fixture
def data_manager():
    return UserFactory(username="dm", role=DATA_MANAGER)


def test_an_issued_token_authenticates_and_only_its_digest_is_stored(nct_trial, data_manager):
    token, secret = token_issue(user=UserFactory(role=SPONSOR, is_staff=False), by=data_manager)
    assert _get(secret).status_code == 200
    stored = AuthToken.objects.get(pk=token.pk)
    assert secret not in {stored.digest, stored.token_key}
    assert len(stored.digest) == 128 and stored.token_key == secret[:15]


def test_a_token_value_read_from_the_database_does_not_authenticate(nct_trial, data_manager):
    token_issue(user=UserFactory(role=SPONSOR, is_staff=False), by=data_manager)
    stored = AuthToken.objects.get()
    for value in (stored.digest, stored.token_key):
        response = _get(value)
        assert response.status_code == 401
        assert response.json()["code"] == "authentication_failed"


@pytest.mark.parametrize(
    ("role", "is_staff", "days"),
    [(SPONSOR, False, 90), (SITE_STAFF, True, 30), (DATA_MANAGER, True, 30), (None, True, 30)],
)
def test_a_token_expires_after_its_roles_lifetime(role, is_staff, days, data_manager):
    token, _ = token_issue(user=UserFactory(role=role, is_staff=is_staff), by=data_manager)
    assert round((token.expiry - token.created).total_seconds() / 3600) == days * 24


@pytest.mark.parametrize(("days_later", "status"), [(89, 200), (90, 401)])
def test_a_sponsor_token_works_until_its_90th_day_then_answers_401_json(nct_trial, data_manager, days_later, status):
    _, secret = token_issue(user=UserFactory(role=SPONSOR, is_staff=False), by=data_manager)
    with time_machine.travel(timezone.now() + timezone.timedelta(days=days_later, seconds=1)):
        response = _get(secret)
    assert response.status_code == status
    if status == 401:
        assert response.json() == {
            "code": "token_expired",
            "message": "This token has expired. Ask a data manager for a new one.",
            "fields": {},
        }
        assert AuthToken.objects.count() == 1, "an expired token stays on record"


def test_the_lifetimes_come_from_settings(settings, data_manager):
    settings.API_TOKEN_TTL_STAFF_DAYS = 7
    token, _ = token_issue(user=UserFactory(role=SITE_STAFF), by=data_manager)
    assert round((token.expiry - timezone.now()).total_seconds() / 86400) == 7


def test_a_revoked_token_answers_401_at_once(nct_trial, data_manager):
    token, secret = token_issue(user=UserFactory(role=SPONSOR, is_staff=False), by=data_manager)
    assert _get(secret).status_code == 200
    token_revoke(token=token, by=data_manager, reason="dashboard retired")
    response = _get(secret)
    assert response.status_code == 401
    assert response.json()["code"] == "authentication_failed"


def test_revoking_needs_a_reason_and_the_data_managers_permission(data_manager):
    token, _ = token_issue(user=UserFactory(role=SITE_STAFF), by=data_manager)
    with pytest.raises(DomainError) as refused:
        token_revoke(token=token, by=data_manager, reason="  ")
    assert refused.value.code == "reason_required"
    with pytest.raises(DomainError) as refused:
        token_revoke(token=token, by=UserFactory(role=SITE_STAFF), reason="x")
    assert refused.value.code == "permission_denied"
    assert AuthToken.objects.filter(pk=token.pk).exists()


@pytest.mark.parametrize(
    ("target", "by_superuser", "code"),
    [
        ({"is_active": False}, False, "token_issue_refused"),
        ({"is_superuser": True}, False, "token_issue_refused"),
    ],
)
def test_some_tokens_are_refused(data_manager, target, by_superuser, code):
    by = UserFactory(is_superuser=True) if by_superuser else data_manager
    with pytest.raises(DomainError) as refused:
        token_issue(user=UserFactory(**target), by=by)
    assert refused.value.code == code


def test_a_superuser_may_issue_a_superusers_token_and_staff_may_issue_none():
    root = UserFactory(is_superuser=True)
    assert token_issue(user=UserFactory(username="root2", is_superuser=True), by=root)[1]
    with pytest.raises(DomainError) as refused:
        token_issue(user=UserFactory(), by=UserFactory(role=SITE_STAFF))
    assert refused.value.code == "permission_denied"


def test_create_role_user_prints_a_token_once_that_authenticates(nct_trial, capsys):
    call_command("create_role_user", "dash", "--role", SPONSOR, "--trial", "NCT06949137", "--token")
    printed = json.loads(capsys.readouterr().out)
    assert _get(printed["token"]).status_code == 200
    assert not AuthToken.objects.filter(digest=printed["token"]).exists()
    (row,) = AuthToken.history.all()
    assert (row.history_type, row.history_user.username) == ("+", "system:create_role_user")
    assert row.history_change_reason == "create_role_user --token"


# --- the history: who issued and revoked which token, and why -------------------------------------------------


def test_issuing_and_revoking_a_token_leave_history_rows_with_who_and_why(data_manager):
    holder = UserFactory(username="holder", role=SITE_STAFF)
    token, secret = token_issue(user=holder, by=data_manager, reason="bedside tablet")
    token_revoke(token=token, by=data_manager, reason="tablet lost")
    rows = AuthToken.history.filter(digest=token.digest).order_by("history_id")
    assert [(r.history_type, r.history_user, r.history_change_reason, r.user_id) for r in rows] == [
        ("+", data_manager, "bedside tablet", holder.pk),
        ("-", data_manager, "tablet lost", holder.pk),
    ]
    assert secret not in {value for row in rows.values() for value in row.values()}, "never the token itself"


def test_a_token_issued_without_a_reason_says_whose_it_is(data_manager):
    token, _ = token_issue(user=UserFactory(username="holder"), by=data_manager)
    assert AuthToken.history.get(digest=token.digest).history_change_reason == "API token issued for holder"


def test_revoking_a_token_twice_is_refused_and_writes_one_row(data_manager):
    token, _ = token_issue(user=UserFactory(role=SITE_STAFF), by=data_manager)
    token_revoke(token=token, by=data_manager, reason="left")
    with pytest.raises(DomainError) as refused:
        token_revoke(token=token, by=data_manager, reason="left again")
    assert refused.value.code == "rule_violation"
    assert AuthToken.history.filter(digest=token.digest, history_type="-").count() == 1


# --- the admin: list, issue (shown once), revoke ------------------------------------------------------------


def test_a_data_manager_issues_a_token_in_the_admin_and_sees_it_once(client, nct_trial, data_manager):
    sponsor = UserFactory(username="dashboard", role=SPONSOR, is_staff=False)
    client.force_login(data_manager)
    page = client.get("/admin/core/apitoken/add/")
    assert page.status_code == 200 and b"90 days" in page.content
    response = client.post("/admin/core/apitoken/add/", {"user": sponsor.pk, "reason": "sponsor dashboard"})
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    secret = response.context["issued"]["token"]
    assert secret.encode() in response.content
    assert _get(secret).status_code == 200
    listing = client.get("/admin/core/apitoken/")
    assert listing.status_code == 200
    assert secret.encode() not in listing.content and b"dashboard" in listing.content


def test_the_token_list_takes_a_constant_number_of_queries(client, data_manager, django_assert_max_num_queries):
    client.force_login(data_manager)
    for n in range(2):
        token_issue(user=UserFactory(username=f"s{n}"), by=data_manager)
    with django_assert_max_num_queries(12) as small:
        assert client.get("/admin/core/apitoken/").status_code == 200
    for n in range(2, 12):
        token_issue(user=UserFactory(username=f"s{n}"), by=data_manager)
    with django_assert_max_num_queries(len(small.captured_queries)):
        assert client.get("/admin/core/apitoken/").status_code == 200


def test_a_data_manager_revokes_a_token_with_a_reason_in_the_admin(client, nct_trial, data_manager):
    token, secret = token_issue(user=UserFactory(role=SITE_STAFF), by=data_manager)
    client.force_login(data_manager)
    ask = client.post("/admin/core/apitoken/", {"action": "revoke", "_selected_action": [token.pk]})
    assert ask.status_code == 200 and b"Revoke API tokens" in ask.content
    done = client.post(
        "/admin/core/apitoken/",
        {"action": "revoke", "_selected_action": [token.pk], "apply": "yes", "reason": "left the site"},
        follow=True,
    )
    assert done.status_code == 200
    assert not AuthToken.objects.exists()
    assert _get(secret).status_code == 401
    revoked = AuthToken.history.get(digest=token.digest, history_type="-")  # the admin's proxy row is knox's row
    assert (revoked.history_user, revoked.history_change_reason) == (data_manager, "left the site")


def test_site_staff_cannot_open_the_tokens_in_the_admin(client):
    client.force_login(UserFactory(role=SITE_STAFF))
    assert client.get("/admin/core/apitoken/").status_code == 403
    assert client.get("/admin/core/apitoken/add/").status_code == 403


# --- guessing: 429 with Retry-After ------------------------------------------------------------------------


def test_the_eleventh_failed_token_in_a_minute_answers_429_with_retry_after_even_for_a_good_token(
    nct_trial, data_manager
):
    _, secret = token_issue(user=UserFactory(role=SPONSOR, is_staff=False), by=data_manager)
    for _ in range(10):
        assert _get("0" * 64).status_code == 401
    response = _get(secret)
    assert response.status_code == 429
    assert response.json()["code"] == "throttled"
    assert set(response.json()) == {"code", "message", "fields"}
    assert 1 <= int(response["Retry-After"]) <= 60
    assert _get(secret, REMOTE_ADDR="10.0.0.9").status_code == 200, "another address is not blocked"


def test_nine_failures_leave_the_good_token_working(nct_trial, data_manager):
    _, secret = token_issue(user=UserFactory(role=SPONSOR, is_staff=False), by=data_manager)
    for _ in range(9):
        assert _get("0" * 64).status_code == 401
    assert _get(secret).status_code == 200


def test_the_block_ends_when_the_minute_has_passed(nct_trial, data_manager):
    _, secret = token_issue(user=UserFactory(role=SPONSOR, is_staff=False), by=data_manager)
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        for _ in range(10):
            _get("0" * 64)
        assert _get(secret).status_code == 429
        traveller.shift(61)
        assert _get(secret).status_code == 200


def test_the_migration_turns_old_clear_text_tokens_into_hashed_expiring_ones_and_drops_their_table(nct_trial):
    import importlib
    from types import SimpleNamespace

    from django.apps import apps
    from django.db import connection

    migration = importlib.import_module("core.migrations.0005_hash_clear_text_tokens")
    sponsor = UserFactory(username="old-dash", role=SPONSOR, is_staff=False)
    old_key = "a" * 40
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE authtoken_token (key varchar(40) PRIMARY KEY, user_id integer, created timestamp)")
        cursor.execute("INSERT INTO authtoken_token VALUES (%s, %s, %s)", [old_key, sponsor.pk, timezone.now()])
    # The migration uses only these two of its schema editor (SQLite's refuses to open inside a test's transaction).
    editor = SimpleNamespace(connection=connection, execute=lambda sql: connection.cursor().execute(sql))
    migration.hash_clear_text_tokens(apps, editor)
    assert "authtoken_token" not in connection.introspection.table_names()
    moved = AuthToken.objects.get(user=sponsor)
    assert moved.digest != old_key and round((moved.expiry - timezone.now()).total_seconds() / 86400) == 90
    assert _get(old_key).status_code == 200


def test_the_candidates_are_the_orms_rows_with_their_users(data_manager):
    token, secret = token_issue(user=UserFactory(username="reader", role=SPONSOR, is_staff=False), by=data_manager)
    token_issue(user=data_manager, by=data_manager)  # another key: not a candidate
    (candidate,) = token_candidates(secret[: CONSTANTS.TOKEN_KEY_LENGTH])
    stored = AuthToken.objects.select_related("user").get(pk=token.pk)
    for field in AuthToken._meta.concrete_fields:
        assert getattr(candidate, field.attname) == getattr(stored, field.attname), field
    for field in get_user_model()._meta.concrete_fields:
        assert getattr(candidate.user, field.attname) == getattr(stored.user, field.attname), field
    assert candidate.expiry.tzinfo is not None and isinstance(candidate.user.is_active, bool)
    assert not candidate._state.adding and not candidate.user._state.adding
    assert token_candidates("0" * CONSTANTS.TOKEN_KEY_LENGTH) == []


def test_the_candidates_statement_reads_the_models_tables_and_columns_in_their_order():
    selected = CANDIDATES_SQL.split("SELECT", 1)[1].split("FROM", 1)[0]
    columns = [name.strip() for name in selected.split(",")]
    tokens = [f"t.{field.column}" for field in AuthToken._meta.concrete_fields]
    users = [f"u.{field.column}" for field in get_user_model()._meta.concrete_fields]
    assert columns == [*tokens, *users, "{permissions}"]
    for model in (AuthToken, get_user_model()):
        assert f" {model._meta.db_table} " in CANDIDATES_SQL, model


@pytest.mark.parametrize(
    "who", ["a sponsor", "staff with their own and their group's permissions", "a superuser", "nobody's role"]
)
def test_a_tokens_user_comes_with_the_permissions_django_gives_it(data_manager, who, django_assert_num_queries):
    user = {
        "a sponsor": lambda: UserFactory(username="p-sponsor", role=SPONSOR, is_staff=False),
        "staff with their own and their group's permissions": lambda: UserFactory(username="p-staff", role=SITE_STAFF),
        "a superuser": lambda: get_user_model().objects.create_superuser("p-root", password="x" * 12),
        "nobody's role": lambda: get_user_model().objects.create_user("p-none", password="x" * 12),
    }[who]()
    if who.startswith("staff"):
        user.user_permissions.add(Permission.objects.get(codename="view_every_site"))
    secret = token_issue(user=user, by=data_manager if not user.is_superuser else None)[1]
    with django_assert_num_queries(1):
        (candidate,) = token_candidates(secret[: CONSTANTS.TOKEN_KEY_LENGTH])
    with django_assert_num_queries(0):  # the request's checks read what came with the token
        permissions = candidate.user.get_all_permissions()
        assert candidate.user.has_perm("trial.view_every_site") == (who != "a sponsor" and who != "nobody's role")
    assert permissions == ModelBackend().get_all_permissions(get_user_model().objects.get(pk=user.pk))
    assert bool(permissions) == (who != "nobody's role")


def test_a_permission_taken_away_is_gone_at_the_next_request(nct_trial, data_manager):
    sponsor = UserFactory(username="p-revoked", role=SPONSOR, is_staff=False)
    sponsor.user_permissions.add(Permission.objects.get(codename="view_every_site"))
    secret = token_issue(user=sponsor, by=data_manager)[1]
    assert token_candidates(secret[: CONSTANTS.TOKEN_KEY_LENGTH])[0].user.has_perm("trial.view_every_site")
    sponsor.user_permissions.clear()
    assert not token_candidates(secret[: CONSTANTS.TOKEN_KEY_LENGTH])[0].user.has_perm("trial.view_every_site")


def test_an_inactive_users_token_carries_no_permission(data_manager):
    user = UserFactory(username="p-off", role=SITE_STAFF)
    secret = token_issue(user=user, by=data_manager)[1]
    get_user_model().objects.filter(pk=user.pk).update(is_active=False)
    (candidate,) = token_candidates(secret[: CONSTANTS.TOKEN_KEY_LENGTH])
    assert candidate.user.get_all_permissions() == set() and not candidate.user.has_perm("trial.view_trial")

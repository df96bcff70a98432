"""``core.statements.planned_once``: on PostgreSQL the hot statements are prepared once per connection and behave as
Django's own cursor does (same rows, same aware times, errors as Django's, counted by the query log)."""

import datetime as dt

import pytest
from django.contrib.auth import get_user_model
from django.db import IntegrityError, connection, transaction
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from core.statements import planned_once
from tests.factories import UserFactory
from trial.models import Trial

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

STATEMENT = "SELECT username, date_joined FROM auth_user WHERE username = %(username)s"


def _prepared(text: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE %s", [f"%{text}%"])
        return cursor.fetchone()[0]


def test_a_statement_run_twice_is_prepared_once_and_reads_what_djangos_cursor_reads():
    assert connection.vendor == "postgresql"
    user = UserFactory(username="planned-once")
    with connection.cursor() as cursor:
        cursor.execute(STATEMENT, {"username": user.username})
        expected = cursor.fetchall()
    assert _prepared("FROM auth_user WHERE username") == 0, "Django's own cursor prepares nothing"
    for _ in range(2):
        with planned_once() as cursor:
            cursor.execute(STATEMENT, {"username": user.username})
            assert cursor.fetchall() == expected
    assert _prepared("FROM auth_user WHERE username") == 1
    ((_, joined),) = expected
    assert joined.utcoffset() == dt.timedelta(0) and joined == get_user_model().objects.get(pk=user.pk).date_joined


def test_its_statements_are_counted_and_its_errors_are_djangos(nct_trial):
    with CaptureQueriesContext(connection) as queries:
        for _ in range(2):  # prepared at the first run, run prepared at the second: both in the log
            with planned_once() as cursor:
                cursor.execute(STATEMENT, {"username": "nobody-at-all"})
                assert cursor.fetchall() == []
    assert len(queries) == 2 and all("FROM auth_user WHERE username" in query["sql"] for query in queries)
    with pytest.raises(IntegrityError), transaction.atomic(), planned_once() as cursor:
        cursor.execute("INSERT INTO trial_trial (id) VALUES (%(id)s)", {"id": nct_trial.pk})
    assert Trial.objects.filter(pk=nct_trial.pk).exists()  # the refused insert changed nothing


@pytest.mark.parametrize("use_tz", [True, False])
def test_times_come_back_as_djangos_cursor_gives_them_whatever_the_zone_setting(use_tz):
    """Django gives its cursor a time loader of its own when the connection's zone is not Django's (here, with
    USE_TZ off: naive times); the prepared statement's cursor reads times with that same loader."""
    user = UserFactory(username=f"planned-zone-{use_tz}")
    with override_settings(USE_TZ=use_tz):
        with connection.cursor() as cursor:
            cursor.execute(STATEMENT, {"username": user.username})
            expected = cursor.fetchall()
        with planned_once() as cursor:
            cursor.execute(STATEMENT, {"username": user.username})
            ((_, joined),) = cursor.fetchall()
    ((_, django_joined),) = expected
    assert joined == django_joined and (joined.tzinfo is None) == (not use_tz)

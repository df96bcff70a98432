"""The large-table changelist paginator: the same pages as Django's, and an estimated count only where it pays."""

import pytest
from django.core.paginator import Paginator
from django.db import connection

from core import paginators
from core.paginators import LargeTablePaginator, estimated_rows
from safety.models import AdverseEvent
from tests.cohorts.test_infusions_support import T0, enrolled_cohort
from tests.factories import staff_users

pytestmark = pytest.mark.django_db


@pytest.fixture
def events(nct_trial):
    coordinator, _ = staff_users()
    _, people = enrolled_cohort(nct_trial, size=2)
    AdverseEvent.objects.bulk_create(
        AdverseEvent(
            participant=people[n % 2], verbatim_term=f"event {n}", ctcae_term_text="Headache",
            onset_date=T0.date().replace(day=1 + n % 20), grade=1, worst_grade=1, relationship="not_related",
            site_aware_at=T0, reported_by=coordinator,
        )
        for n in range(25)
    )  # fmt: skip
    return AdverseEvent.objects.select_related("participant__site").order_by("-onset_date", "-pk")


@pytest.mark.parametrize("number", [1, 2, 3])
def test_each_page_holds_the_rows_djangos_paginator_gives_in_the_same_order(events, number):
    ours = LargeTablePaginator(events, 10).page(number)
    theirs = Paginator(events, 10).page(number)
    assert [e.pk for e in ours.object_list] == [e.pk for e in theirs.object_list]
    assert (ours.has_next(), ours.has_previous()) == (theirs.has_next(), theirs.has_previous())


def test_a_page_is_one_query_whatever_the_page(events, django_assert_num_queries):
    paginator = LargeTablePaginator(events, 10)
    assert paginator.count == 25
    with django_assert_num_queries(1):
        assert len(list(paginator.page(3).object_list)) == 5


@pytest.mark.parametrize(
    ("estimate", "filtered", "expected"),
    [
        (None, False, 25),  # SQLite, or no statistics yet: exact
        (10_000, False, 25),  # at the threshold: exact
        (10_001, False, 10_001),  # above it, unfiltered: the planner's estimate
        (10_001, True, 13),  # filtered: always exact
    ],
)
def test_the_count_is_estimated_only_for_an_unfiltered_table_above_the_threshold(
    events, monkeypatch, estimate, filtered, expected
):
    monkeypatch.setattr(paginators, "estimated_rows", lambda model, using="default": estimate)
    queryset = events.filter(participant=events.last().participant) if filtered else events
    assert LargeTablePaginator(queryset, 10).count == expected


@pytest.mark.postgres
def test_the_estimate_on_postgresql_is_the_row_count_analyze_saw(events):
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE safety_adverseevent")
    assert estimated_rows(AdverseEvent) == 25

"""Two nurses starting two infusions of one cohort at the same moment: exactly one starts (PostgreSQL)."""

import threading

import pytest
from django.db import connection

from cohorts import services
from cohorts.models import Infusion
from core.errors import DomainError
from tests.cohorts.test_infusions_support import (
    DAY,
    HOUR,
    T0,
    enrolled_cohort,
    frozen,
    infuse,
    nurse,
)

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
]


def test_two_infusions_started_at_once_in_one_cohort_let_exactly_one_through(nct_trial):
    _, participants = enrolled_cohort(nct_trial)
    infuse(participants[0], T0)
    when = T0 + 8 * DAY
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def nurse_starts(participant):
        try:
            barrier.wait(timeout=10)
            services.infusion_start(
                participant=participant,
                by=nurse(),
                started_at=when,
                product_lot="HM-2611-02",
                product_expiry=when + 6 * HOUR,
            )
            outcomes.append("started")
        except DomainError as refused:
            outcomes.append(refused.code)
        finally:
            connection.close()

    nurse()  # created before the threads race
    with frozen(when + HOUR):  # the clock stands still for both threads (time_machine patches the process)
        threads = [threading.Thread(target=nurse_starts, args=(p,)) for p in participants[1:]]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    assert sorted(outcomes) == ["stagger_hold", "started"]
    assert Infusion.objects.filter(status=Infusion.Status.IN_PROGRESS).count() == 1

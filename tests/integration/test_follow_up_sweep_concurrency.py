"""Two follow-up sweeps at the same moment (two workers): every overdue visit is missed once, with exactly one
deviation, and a streak is flagged once (PostgreSQL: the row locks and unique keys decide)."""

import datetime as dt
import threading

import pytest
from django.db import connection

from cohorts import services
from cohorts.models import FollowUpVisit, LostToFollowUp, ProtocolDeviation
from core.actors import BEAT, system_actor
from tests.cohorts.test_infusions_support import SH, enrolled_cohort, frozen, infuse_cohort

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize("round_", range(3))
def test_two_concurrent_sweeps_miss_each_visit_once_with_one_deviation(nct_trial, round_):
    _, participants = enrolled_cohort(nct_trial, size=3)
    infuse_cohort(participants)
    system_actor(BEAT)  # created before the threads race
    barrier = threading.Barrier(2)
    reports, errors = [], []

    def worker_sweeps():
        try:
            barrier.wait(timeout=10)
            reports.append(services.follow_up_sweep(trial_id=nct_trial.pk))
        except Exception as exc:
            errors.append(repr(exc))
        finally:
            connection.close()

    with frozen(dt.datetime(2026, 12, 20, 9, tzinfo=SH)):
        threads = [threading.Thread(target=worker_sweeps) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    assert errors == []
    missed = FollowUpVisit.objects.filter(status=FollowUpVisit.Status.MISSED)
    assert sorted(len(r.missed) for r in reports) == [0, missed.count()] and missed.count() > 0
    assert ProtocolDeviation.objects.count() == missed.count()
    assert ProtocolDeviation.objects.values("visit").distinct().count() == missed.count()
    assert LostToFollowUp.objects.count() == 3

"""Many coordinators enroll at the same instant: the cohort lock must hand out each slot once.

Real PostgreSQL, real threads, one database connection per thread, the real
``cohorts.services.enroll_participant``. A plain ``TestCase`` would wrap every thread in the test's
own transaction and hide the race; hence ``transaction=True`` (STYLE.md, "Concurrency and tasks").
"""

import threading
from dataclasses import dataclass

import pytest
from django.contrib.auth import get_user_model
from django.db import connection

from cohorts import services
from cohorts.models import (
    Cohort,
    Enrollment,
    Participant,
)
from core.errors import DomainError
from tests.factories import eligible_participant, staff_users
from tests.integration.participant_pool import clone_eligible, trial_copy

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

THREADS = 50
# One cohort per repetition; its capacity k varies, including 1 (the sentinel is also the last slot).
CAPACITIES = (3, 1, 2, 4, 3, 1, 2, 5, 3, 1, 2, 4, 3, 1, 2, 6, 3, 1, 2, 3)
JOIN_TIMEOUT = 60


@dataclass
class Outcome:
    participant_id: int
    slot: int | None = None
    is_sentinel: bool | None = None
    refused: str | None = None
    error: str | None = None


def enroll_all_at_once(*, cohort_id: int, participant_ids: list[int], user_id: int) -> list[Outcome]:
    """One thread per participant, each on its own connection, released together by a barrier."""
    barrier = threading.Barrier(len(participant_ids))
    outcomes = [Outcome(participant_id=pid) for pid in participant_ids]

    def run(outcome: Outcome) -> None:
        try:
            # Everything but the enrollment happens before the barrier: the connection is open and
            # the user and cohort are read, so the threads race only for the cohort's lock.
            user = get_user_model().objects.get(pk=user_id)
            cohort = Cohort.objects.get(pk=cohort_id)
            participant = Participant.objects.get(pk=outcome.participant_id)
            barrier.wait(timeout=JOIN_TIMEOUT)
            enrollment = services.enroll_participant(participant=participant, cohort=cohort, by=user)
            outcome.slot, outcome.is_sentinel = enrollment.slot, enrollment.is_sentinel
        except DomainError as exc:
            outcome.refused = exc.code
        except Exception as exc:  # any other exception is what the test reports
            outcome.error = f"{type(exc).__name__}: {exc}"
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(o,), name=f"enroll-{o.participant_id}") for o in outcomes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=JOIN_TIMEOUT)
    assert not [t.name for t in threads if t.is_alive()], "threads still running (a deadlock?)"
    return outcomes


def test_fifty_simultaneous_enrollments_fill_each_cohort_exactly_once_twenty_times_over(nct_trial, tmp_path):
    coordinator, investigator = staff_users()
    template = eligible_participant(nct_trial, number="TEMPLATE")
    assert template.status == Participant.Status.ELIGIBLE

    for rep, k in enumerate(CAPACITIES):
        where = f"repetition {rep} (capacity {k})"
        # A fresh trial per repetition: the protocol allows one active cohort per trial and later
        # cohorts open only through a safety decision, so each repetition opens a trial's first cohort.
        trial = trial_copy(tmp_path, registry_id=f"NCT9{rep:07d}", cohort_size=k)
        participant_ids = clone_eligible(template, trial=trial, count=THREADS, prefix=f"R{rep:02d}-")
        cohort = services.cohort_open_first(trial=trial, by=investigator)
        assert (cohort.state, cohort.capacity) == (Cohort.State.OPEN, k), where

        outcomes = enroll_all_at_once(cohort_id=cohort.pk, participant_ids=participant_ids, user_id=coordinator.pk)

        errors = [o for o in outcomes if o.error]
        assert not errors, f"{where}: {len(errors)} unexpected exceptions, e.g. {errors[0].error}"
        enrolled = [o for o in outcomes if o.refused is None]
        refusals = sorted({o.refused for o in outcomes if o.refused is not None})
        assert len(enrolled) == k, f"{where}: {len(enrolled)} enrolled"
        assert refusals == ["cohort_full"], f"{where}: refusal codes {refusals}"
        assert sorted(o.slot for o in enrolled) == list(range(1, k + 1)), where
        assert [o.slot for o in enrolled if o.is_sentinel] == [1], f"{where}: sentinels"

        # What the database holds, not only what the threads were told.
        rows = list(Enrollment.objects.filter(cohort=cohort).values_list("slot", "is_sentinel", "participant_id"))
        assert sorted(slot for slot, _, _ in rows) == list(range(1, k + 1)), where
        assert [slot for slot, sentinel, _ in rows if sentinel] == [1], where
        assert {pid for _, _, pid in rows} == {o.participant_id for o in enrolled}, where
        assert Enrollment.objects.filter(trial=trial).count() == k, where
        people = Participant.objects.filter(trial=trial)
        study_ids = list(people.exclude(study_id=None).values_list("study_id", flat=True))
        assert len(study_ids) == len(set(study_ids)) == k, f"{where}: study IDs {study_ids}"
        assert sorted(study_ids) == [f"{trial.registry_id[-4:]}-{n:03d}" for n in range(1, k + 1)], where
        assert people.filter(status=Participant.Status.ENROLLED).count() == k, where
        assert people.filter(status=Participant.Status.ELIGIBLE, study_id=None).count() == THREADS - k, where
        cohort.refresh_from_db()
        assert cohort.state == Cohort.State.FULL, where

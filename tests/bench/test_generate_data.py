"""The bench data generator, at a tiny size: what it builds holds every rule the services hold."""

import pytest

from bench.generate_data import events_per_trial, generate
from cohorts.models import Cohort, Enrollment, Participant
from safety.models import AdverseEvent, SafetyReview, SignOff
from safety.selectors import trial_summary
from safety.services import verify_signatures
from trial.models import Trial

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("trials", "total", "big", "medium", "expected"),
    [
        (4, 100, 50, 20, [50, 20, 15, 15]),
        (4, 101, 50, 20, [50, 20, 16, 15]),
        (2, 100, 50, 20, [50, 50]),
        (1, 7, 50, 20, [7]),
    ],
)
def test_events_are_shared_big_trial_first_then_medium_then_evenly(trials, total, big, medium, expected):
    counts = events_per_trial(trials=trials, total=total, big=big, medium=medium)
    assert counts == expected
    assert sum(counts) == total


def test_a_tiny_data_set_opens_every_second_cohort_through_an_effective_signed_review():
    made = generate(trials=2, participants=12, adverse_events=30, big_trial_events=20, medium_trial_events=10)
    assert (made["trials"], made["participants"], made["adverse_events"]) == (2, 12, 30)
    assert Trial.objects.filter(registry_id__startswith="GEN").count() == 2
    assert Participant.objects.count() == Enrollment.objects.count() == 12
    for trial in Trial.objects.filter(registry_id__startswith="GEN"):
        first, second = Cohort.objects.filter(trial=trial).order_by("sequence")
        review = SafetyReview.objects.get(cohort=first)
        assert (review.state, review.decision, review.resulting_cohort) == ("effective", "escalate", second)
        assert SignOff.objects.filter(review=review, meaning="approve").count() == 3
        assert (first.state, second.state, second.capacity) == ("closed", "observing", 3)
        summary = trial_summary(trial)["cohorts"]
        assert [row["enrolled"] for row in summary] == [3, 3]
        assert sum(sum(row["adverse_events_by_grade"].values()) for row in summary) == (
            AdverseEvent.objects.filter(participant__trial=trial).count()
        )
        assert sum(row["dlts"] for row in summary) <= 1  # one confirmed DLT at most: no stopping rule
    assert verify_signatures() == []

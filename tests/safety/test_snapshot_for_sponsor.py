"""A sponsor reads a review's frozen snapshot without unreleased free text or staff names (issue 12, item 8):
the DLT decision's reason and a missed visit's reason are null until a data manager releases the record, the
investigator who decided is shown by role; coded CTCAE terms stay; staff and the digest see the frozen data."""

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from cohorts.models import FollowUpVisit
from core.free_text import free_text_mark_reviewed
from core.roles import DATA_MANAGER, INVESTIGATOR, SPONSOR
from safety.models import AdverseEvent, SafetyReview
from safety.selectors import canonical_json, sha256_hex
from tests.dashboard.seed import VIEW, frozen, seed_trial
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def review(nct_trial):
    seed_trial(nct_trial)
    return SafetyReview.objects.get(state=SafetyReview.State.OPEN)  # a DLT decided, a visit missed


def _snapshot(review, role: str, name: str, trials=()) -> dict:
    api = APIClient()
    api.force_authenticate(UserFactory(username=name, role=role, is_staff=role != SPONSOR, trials=list(trials)))
    with frozen(VIEW):
        response = api.get(reverse("review-detail", args=[review.pk]))
    assert response.status_code == 200
    body = response.json()
    assert body["snapshot_digest"] == review.snapshot_digest == sha256_hex(canonical_json(review.snapshot))
    return body["snapshot"]


def test_a_sponsor_reads_no_dlt_reason_no_missed_reason_and_no_staff_name(review):
    frozen_snapshot = review.snapshot
    (candidate,) = frozen_snapshot["dlt_candidates"]
    assert candidate["reason"] and candidate["decided_by"] and frozen_snapshot["unrecorded_visits"][0]["missed_reason"]
    shown = _snapshot(review, SPONSOR, "sponsor-snap", trials=[review.trial])
    (seen,) = shown["dlt_candidates"]
    assert seen["reason"] is None and seen["decided_by"] == "Investigator"
    assert AdverseEvent.objects.get(pk=candidate["id"]).ctcae_term is None and seen["term"] is None  # typed text
    coded = dict(AdverseEvent.objects.filter(ctcae_term__isnull=False).values_list("pk", "ctcae_term__term"))
    serious = [(e["id"], e["term"]) for e in shown["serious_events"]]
    assert serious and all(term == coded[pk] for pk, term in serious if pk in coded)  # coded terms stay
    assert shown["unrecorded_visits"][0]["missed_reason"] is None
    assert candidate["decided_by"] not in str(shown)
    review.refresh_from_db()
    assert review.snapshot == frozen_snapshot  # the stored snapshot is never changed


def test_staff_read_the_snapshot_as_frozen(review):
    assert _snapshot(review, INVESTIGATOR, "inv-snap") == review.snapshot


def test_a_released_record_shows_its_text_to_the_sponsor_and_an_edit_withholds_it_again(review):
    (candidate,) = review.snapshot["dlt_candidates"]
    visit_id = review.snapshot["unrecorded_visits"][0]["id"]
    manager = UserFactory(username="dm-snap", role=DATA_MANAGER)
    event = AdverseEvent.objects.get(pk=candidate["id"])
    free_text_mark_reviewed(record=event, by=manager, reason="No identifiers")
    free_text_mark_reviewed(record=FollowUpVisit.objects.get(pk=visit_id), by=manager, reason="No identifiers")
    shown = _snapshot(review, SPONSOR, "sponsor-snap2", trials=[review.trial])
    assert shown["dlt_candidates"][0]["reason"] == candidate["reason"]
    assert shown["dlt_candidates"][0]["term"] == candidate["term"]
    assert shown["unrecorded_visits"][0]["missed_reason"] == review.snapshot["unrecorded_visits"][0]["missed_reason"]
    AdverseEvent.objects.filter(pk=event.pk).update(dlt_reason="Seen by Dr Example at home")
    assert _snapshot(review, SPONSOR, "sponsor-snap3", trials=[review.trial])["dlt_candidates"][0]["reason"] is None

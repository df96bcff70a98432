"""The escalation gate: the next dose opens only through an effective, signed committee decision.

The whole loop on the NCT06949137 protocol (CI runs it on PostgreSQL): the low-dose cohort of three
is infused (sentinel first), the DLT windows pass (clock moved), the review opens by itself, three
members sign (the chair among them) and the medium-dose cohort opens and takes enrollments. Then
every way around the gate is tried and refused.
"""

import json
from io import StringIO

import pytest
from django.contrib.auth.models import Permission
from django.core.management import call_command
from rest_framework.test import APIClient

from cohorts import services as cohort_services
from cohorts.models import Cohort
from core.errors import DomainError
from core.roles import SAFETY_COMMITTEE, SITE_STAFF
from safety import services
from safety.models import SafetyReview, SignatureFailure, SignOff
from tests.cohorts.test_infusions_support import DAY, HOUR, T0, enrolled_cohort, frozen, infuse, record_visits
from tests.factories import UserFactory, eligible_participant, staff_users, token_for

pytestmark = pytest.mark.django_db
PASSWORD = "correct horse battery staple"
AFTER_WINDOWS = T0 + 40 * DAY


def committee(n: int = 3) -> list:
    members = [
        UserFactory(username=f"src{i}", first_name="Member", last_name=f"Number{i}", role=SAFETY_COMMITTEE)
        for i in range(n)
    ]
    members[0].user_permissions.add(Permission.objects.get(codename="chair_review"))
    return members


@pytest.fixture
def reviewed(nct_trial):
    """Low-dose cohort of three infused per protocol; after the DLT windows the review is open."""
    cohort, people = enrolled_cohort(nct_trial)
    infuse(people[0], T0)  # the sentinel, alone
    infuse(people[1], T0 + 8 * DAY)  # after the 7-day sentinel observation
    infuse(people[2], T0 + 9 * DAY + HOUR)  # after the 24 h stagger
    cohort.refresh_from_db()
    assert cohort.state == Cohort.State.OBSERVING
    with frozen(T0 + 20 * DAY):
        assert services.reviews_open_due() == []  # windows still running: no review
    assert record_visits(people, until=AFTER_WINDOWS.date()) == 12  # D1, D7, D14, D28 of each
    with frozen(AFTER_WINDOWS):
        (review,) = services.reviews_open_due()
    cohort.refresh_from_db()
    assert cohort.state == Cohort.State.IN_REVIEW
    return review


def _sign_all(review, members, meanings=("approve", "approve", "approve")):
    with frozen(AFTER_WINDOWS + HOUR):
        return [
            services.review_sign(review=review, user=m, password=PASSWORD, meaning=meaning)
            for m, meaning in zip(members, meanings, strict=False)
        ]


def test_the_whole_loop_opens_the_medium_dose_only_after_three_signatures(reviewed, nct_trial):
    members = committee()
    assert reviewed.snapshot["outcomes"] == "1NNN"
    assert reviewed.snapshot["recommendations"]["3+3"]["recommended_dose"] == 2
    assert reviewed.snapshot["recommendations"]["boin"]["recommended_dose"] == 2
    with frozen(AFTER_WINDOWS):
        services.review_propose(review=reviewed, decision="escalate", by=members[0])
    coordinator, _ = staff_users()
    with frozen(AFTER_WINDOWS + HOUR):
        services.review_sign(review=reviewed, user=members[0], password=PASSWORD, meaning="approve")
        services.review_sign(review=reviewed, user=members[1], password=PASSWORD, meaning="approve")
        assert Cohort.objects.filter(dose_level__level=2).count() == 0  # below quorum: nothing opens
        services.review_sign(review=reviewed, user=members[2], password=PASSWORD, meaning="approve")
    reviewed.refresh_from_db()
    assert reviewed.state == SafetyReview.State.EFFECTIVE
    low = Cohort.objects.get(sequence=1)
    medium = Cohort.objects.get(dose_level__level=2)
    assert (low.state, low.decision) == (Cohort.State.CLOSED, "escalate")
    assert (medium.state, medium.sequence, reviewed.resulting_cohort) == (Cohort.State.OPEN, 2, medium)
    with frozen(AFTER_WINDOWS + 2 * HOUR):
        enrollment = cohort_services.enroll_participant(
            participant=eligible_participant(nct_trial, number="M01"), cohort=medium, by=coordinator
        )
    assert enrollment.is_sentinel
    out = StringIO()
    call_command("verify_signatures", stdout=out)
    report = json.loads(out.getvalue())
    assert (report["signatures_checked"], report["intact"], report["problems"]) == (3, True, [])
    assert report["heads"]["NCT06949137"]["count"] == 3 and report["legacy_unkeyed"] == 0


def test_no_cohort_opens_by_a_direct_service_call_without_an_effective_decision(reviewed, nct_trial):
    _, investigator = staff_users()
    with pytest.raises(DomainError) as refused:
        cohort_services.cohort_open_next(
            trial=nct_trial,
            dose_level=nct_trial.dose_levels.get(level=2),
            by=UserFactory(username="root", is_superuser=True),
        )
    assert refused.value.code == "escalation_decision_required"
    with pytest.raises(DomainError) as refused:
        cohort_services.cohort_open_first(trial=nct_trial, by=investigator)
    assert refused.value.code == "escalation_decision_required"
    assert Cohort.objects.count() == 1


def test_below_quorum_nothing_opens(reviewed):
    members = committee()
    with frozen(AFTER_WINDOWS):
        services.review_propose(review=reviewed, decision="escalate", by=members[0])
    _sign_all(reviewed, members[:2])
    reviewed.refresh_from_db()
    assert reviewed.state == SafetyReview.State.OPEN
    assert Cohort.objects.count() == 1


def test_a_quorum_without_the_chair_does_not_take_effect(reviewed):
    members = committee(4)
    with frozen(AFTER_WINDOWS):
        services.review_propose(review=reviewed, decision="escalate", by=members[1])
    _sign_all(reviewed, members[1:])
    reviewed.refresh_from_db()
    assert reviewed.state == SafetyReview.State.OPEN and Cohort.objects.count() == 1
    _sign_all(reviewed, members[:1])
    reviewed.refresh_from_db()
    assert reviewed.state == SafetyReview.State.EFFECTIVE and Cohort.objects.count() == 2


def test_a_rejection_means_the_decision_never_takes_effect(reviewed):
    members = committee(4)
    with frozen(AFTER_WINDOWS):
        services.review_propose(review=reviewed, decision="escalate", by=members[0])
    _sign_all(reviewed, members[:2], ("approve", "reject"))
    reviewed.refresh_from_db()
    assert reviewed.state == SafetyReview.State.REJECTED
    with pytest.raises(DomainError) as refused:
        _sign_all(reviewed, members[2:3])
    assert refused.value.code == "review_closed"
    assert Cohort.objects.count() == 1


def test_a_non_member_cannot_sign_and_a_token_alone_is_not_a_signature(reviewed):
    members = committee()
    with frozen(AFTER_WINDOWS):
        services.review_propose(review=reviewed, decision="escalate", by=members[0])
    nurse = UserFactory(username="nurse9", role=SITE_STAFF)
    with pytest.raises(DomainError) as refused:
        services.review_sign(review=reviewed, user=nurse, password=PASSWORD, meaning="approve")
    assert refused.value.code == "permission_denied"
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {token_for(members[1])}")
    response = api.post(f"/api/v1/reviews/{reviewed.pk}/sign/", {"meaning": "approve"}, format="json")
    assert response.status_code == 400 and "password" in response.json()["fields"]
    response = api.post(
        f"/api/v1/reviews/{reviewed.pk}/sign/", {"meaning": "approve", "password": "guess"}, format="json"
    )
    assert response.status_code == 403 and response.json()["code"] == "wrong_password"
    assert SignOff.objects.count() == 0
    assert SignatureFailure.objects.filter(user=members[1]).count() == 1
    response = api.post(
        f"/api/v1/reviews/{reviewed.pk}/sign/", {"meaning": "approve", "password": PASSWORD}, format="json"
    )
    assert response.status_code == 201 and response.json()["signer"] == "Member Number1"


def test_the_same_member_cannot_sign_twice(reviewed):
    members = committee()
    with frozen(AFTER_WINDOWS):
        services.review_propose(review=reviewed, decision="escalate", by=members[0])
    _sign_all(reviewed, members[:1])
    with pytest.raises(DomainError) as refused:
        _sign_all(reviewed, members[:1])
    assert refused.value.code == "already_signed"


def test_repeated_wrong_passwords_lock_signing(reviewed):
    members = committee()
    with frozen(AFTER_WINDOWS):
        services.review_propose(review=reviewed, decision="escalate", by=members[0])
    for _ in range(services.SIGNING_LOCKOUT_FAILURES):
        with pytest.raises(DomainError):
            services.review_sign(review=reviewed, user=members[1], password="wrong", meaning="approve")
    with pytest.raises(DomainError) as refused:
        services.review_sign(review=reviewed, user=members[1], password=PASSWORD, meaning="approve")
    assert refused.value.code == "signing_locked"


def test_a_decision_that_differs_from_the_recommendation_needs_a_rationale(reviewed):
    members = committee()
    with frozen(AFTER_WINDOWS), pytest.raises(DomainError) as refused:
        services.review_propose(review=reviewed, decision="expand", by=members[0])
    assert refused.value.code == "rationale_required"
    with frozen(AFTER_WINDOWS):
        services.review_propose(review=reviewed, decision="expand", rationale="Grade 2 hepatic signal", by=members[0])
    _sign_all(reviewed, members)
    assert Cohort.objects.get(sequence=2).dose_level.level == 1


def test_a_signed_review_cannot_change_its_decision(reviewed):
    members = committee()
    with frozen(AFTER_WINDOWS):
        services.review_propose(review=reviewed, decision="escalate", by=members[0])
    _sign_all(reviewed, members[:1])
    with pytest.raises(DomainError) as refused:
        services.review_propose(review=reviewed, decision="stop", rationale="changed mind", by=members[0])
    assert refused.value.code == "review_signed"


def test_signatures_and_decided_reviews_cannot_be_edited_even_by_a_raw_update(reviewed):
    from django.db import DatabaseError, transaction

    members = committee()
    with frozen(AFTER_WINDOWS):
        services.review_propose(review=reviewed, decision="escalate", by=members[0])
    _sign_all(reviewed, members)
    with pytest.raises(DatabaseError), transaction.atomic():
        SignOff.objects.update(meaning="reject")
    with pytest.raises(DatabaseError), transaction.atomic():
        SignOff.objects.all().delete()
    with pytest.raises(DatabaseError), transaction.atomic():
        SafetyReview.objects.filter(pk=reviewed.pk).update(decision="stop")
    assert SignOff.objects.filter(meaning="approve").count() == 3


def test_verify_signatures_finds_a_tampered_snapshot(reviewed):
    members = committee()
    with frozen(AFTER_WINDOWS):
        services.review_propose(review=reviewed, decision="escalate", by=members[0])
    _sign_all(reviewed, members[:2])  # still open, so the row can be written (by someone bypassing the app)
    tampered = dict(reviewed.snapshot, outcomes="1NNN 2NNN")
    SafetyReview.objects.filter(pk=reviewed.pk).update(snapshot=tampered)
    out = StringIO()
    with pytest.raises(SystemExit) as exited:
        call_command("verify_signatures", stdout=out)
    assert exited.value.code == 1
    report = json.loads(out.getvalue())
    assert report["intact"] is False
    first = report["problems"][0]
    assert (first["code"], first["sequence"]) == ("snapshot_changed", 1) and "signature #1" in first["message"]
    with pytest.raises(DomainError) as refused:
        _sign_all(reviewed, members[2:])
    assert refused.value.code == "snapshot_tampered"
    assert Cohort.objects.count() == 1


def test_the_api_cannot_write_cohort_state(reviewed):
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {token_for(UserFactory(username='root', is_superuser=True))}")
    cohort = Cohort.objects.get()
    assert api.patch(f"/api/v1/cohorts/{cohort.pk}/", {"state": "closed"}, format="json").status_code == 405
    assert api.post("/api/v1/cohorts/", {"trial": cohort.trial_id, "dose_level": 2}, format="json").status_code == 405
    cohort.refresh_from_db()
    assert cohort.state == Cohort.State.IN_REVIEW


def test_sponsors_read_the_decision_and_signatures_in_the_escalation_history(reviewed, nct_trial):
    from core.roles import SPONSOR

    members = committee()
    with frozen(AFTER_WINDOWS):
        services.review_propose(review=reviewed, decision="escalate", by=members[0])
    _sign_all(reviewed, members)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {token_for(UserFactory(username='sp', role=SPONSOR))}")
    history = api.get(f"/api/v1/trials/{nct_trial.registry_id}/escalation-history/").json()
    assert [(h["decision"], h["from_dose_level"], h["to_dose_level"]) for h in history] == [("escalate", 1, 2)]
    assert [s["signer"] for s in history[0]["signatures"]] == ["Member Number0", "Member Number1", "Member Number2"]
    assert (
        api.post(
            f"/api/v1/reviews/{reviewed.pk}/sign/", {"meaning": "approve", "password": "x"}, format="json"
        ).status_code
        == 403
    )


def test_the_database_refuses_a_later_cohort_inserted_without_an_effective_decision(reviewed, nct_trial):
    from django.db import DatabaseError, transaction
    from django.utils import timezone

    # A shell user closing it by hand.
    Cohort.objects.filter(sequence=1).update(state=Cohort.State.CLOSED, closed_at=timezone.now())
    with pytest.raises(DatabaseError), transaction.atomic():
        Cohort.objects.create(
            trial=nct_trial,
            dose_level=nct_trial.dose_levels.get(level=2),
            sequence=2,
            capacity=3,
            state=Cohort.State.OPEN,
        )
    members = committee()
    with frozen(AFTER_WINDOWS):
        services.review_propose(review=reviewed, decision="escalate", by=members[0])
    _sign_all(reviewed, members[:2])  # below quorum: still refused
    with pytest.raises(DatabaseError), transaction.atomic():
        Cohort.objects.create(
            trial=nct_trial,
            dose_level=nct_trial.dose_levels.get(level=2),
            sequence=2,
            capacity=3,
            state=Cohort.State.OPEN,
        )
    with pytest.raises(DatabaseError), transaction.atomic():
        Cohort.objects.filter(sequence=1).update(dose_level=nct_trial.dose_levels.get(level=3))
    assert Cohort.objects.count() == 1


def test_after_the_committee_resumes_a_paused_cohort_a_later_event_does_not_pause_it_again(nct_trial):
    from cohorts.models import Participant

    cohort, people = enrolled_cohort(nct_trial)
    infuse(people[0], T0)
    record_visits(people[:1], until=(T0 + DAY).date())  # her day-1 visit, the day before she died
    coordinator, _ = staff_users()
    death = {
        "verbatim_term": "Sudden death",
        "ctcae_term_text": "Death NOS",
        "grade": 5,
        "outcome": "fatal",
        "serious": True,
        "sae_death": True,
        "relationship": "possible",
    }
    with frozen(T0 + 2 * DAY):
        event = services.adverse_event_record(
            participant=people[0], by=coordinator, values=death | {"onset_date": (T0 + 2 * DAY).date()}
        )
    cohort.refresh_from_db()
    assert (cohort.state, cohort.state_before_pause) == (Cohort.State.PAUSED, Cohort.State.FULL)
    members = committee()
    with frozen(T0 + 3 * DAY):
        # The autopsy finds an unrelated stroke: the follow-up removes the DLT candidacy; the chair
        # calls a review on the corrected data (the first one would show a pending candidate).
        services.adverse_event_update(
            event=event, values={"relationship": "not_related"}, reason="Autopsy report", by=coordinator
        )
        review = services.review_open_by_chair(cohort=cohort, reason="Autopsy: unrelated stroke", by=members[0])
        services.review_propose(
            review=review,
            decision="resume",
            by=members[0],
            rationale="Death from an unrelated stroke per autopsy; DLT rule not met",
        )
        for member in members:
            services.review_sign(review=review, user=member, password=PASSWORD, meaning="approve")
    cohort.refresh_from_db()
    assert cohort.state == Cohort.State.FULL
    Participant.objects.filter(pk=people[1].pk).update(status=Participant.Status.ENROLLED)
    with frozen(T0 + 4 * DAY):
        services.adverse_event_record(
            participant=people[1],
            by=coordinator,
            values={
                "verbatim_term": "Headache",
                "ctcae_term_text": "Headache",
                "grade": 1,
                "relationship": "not_related",
                "onset_date": (T0 + 4 * DAY).date(),
                "outcome": "recovered",
            },
        )
    cohort.refresh_from_db()
    assert cohort.state == Cohort.State.FULL
    assert list(SafetyReview.objects.order_by("pk").values_list("kind", "state")) == [
        ("unscheduled", "withdrawn"),
        ("chair", "effective"),
    ]


def test_the_trial_summary_gives_a_sponsor_each_cohort_at_a_glance(reviewed, nct_trial, django_assert_max_num_queries):
    from core.roles import SPONSOR

    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {token_for(UserFactory(username='sp', role=SPONSOR))}")
    with frozen(T0 + 20 * DAY):
        during = api.get(f"/api/v1/trials/{nct_trial.registry_id}/summary/").json()["cohorts"][0]
    assert (during["enrolled"], during["infused"], during["in_dlt_window"]) == (3, 3, 3)
    with frozen(AFTER_WINDOWS), django_assert_max_num_queries(12):
        body = api.get(f"/api/v1/trials/{nct_trial.registry_id}/summary/").json()
    (low,) = body["cohorts"]
    assert (low["dose_label"], low["cells_display"], low["state"], low["capacity"]) == (
        "Low",
        "6.0×10⁷",
        "in_review",
        3,
    )
    assert (low["in_dlt_window"], low["dlts"], low["serious_adverse_events"]) == (0, 0, 0)
    assert low["next_review"] == {"review": reviewed.pk, "state": "open", "opens_on": None}


def test_a_dlt_candidate_recorded_after_the_review_opened_blocks_signing(reviewed, nct_trial):
    from cohorts.models import Participant

    members = committee()
    with frozen(AFTER_WINDOWS):
        services.review_propose(review=reviewed, decision="escalate", by=members[0])
    _sign_all(reviewed, members[:1])
    coordinator, _ = staff_users()
    sentinel = Participant.objects.get(study_id="9137-001")
    with frozen(AFTER_WINDOWS + HOUR):  # a late report: grade 3, related, onset on day 3 of the window
        services.adverse_event_record(
            participant=sentinel,
            by=coordinator,
            values={
                "verbatim_term": "Hepatitis",
                "ctcae_term_text": "ALT increased",
                "grade": 3,
                "relationship": "probable",
                "onset_date": sentinel.dlt_window_start + 3 * DAY,
                "outcome": "recovering",
            },
        )
    with pytest.raises(DomainError) as refused:
        _sign_all(reviewed, members[1:2])
    assert refused.value.code == "dlt_pending"
    assert Cohort.objects.count() == 1 and SignOff.objects.count() == 1


def test_the_due_review_task_skips_a_cohort_the_chair_is_already_reviewing_and_goes_on(nct_trial):
    cohort, people = enrolled_cohort(nct_trial)
    infuse(people[0], T0)
    infuse(people[1], T0 + 8 * DAY)
    infuse(people[2], T0 + 9 * DAY + HOUR)
    members = committee()
    with frozen(T0 + 20 * DAY):
        called = services.review_open_by_chair(cohort=cohort, reason="Hepatic signal", by=members[0])
    with frozen(AFTER_WINDOWS):
        assert services.reviews_open_due() == []
    assert list(SafetyReview.objects.values_list("pk", "state")) == [(called.pk, "open")]


def test_a_dose_level_never_takes_more_than_the_protocols_maximum(reviewed, nct_trial):
    members = committee()
    with frozen(AFTER_WINDOWS):
        services.review_propose(review=reviewed, decision="expand", rationale="More data at dose 1", by=members[0])
    _sign_all(reviewed, members)  # 3 + 3 = 6 at dose 1: allowed (max_per_dose_level 6)
    second = Cohort.objects.get(sequence=2)
    assert second.dose_level.level == 1
    Cohort.objects.filter(pk=second.pk).update(state=Cohort.State.IN_REVIEW)
    # A third cohort at dose 1 would make 9 > 6: refused whatever the committee writes.
    third_review = SafetyReview.objects.create(
        trial=nct_trial,
        cohort=second,
        kind="chair",
        reason="test",
        opened_at=reviewed.opened_at,
        snapshot=reviewed.snapshot,
        snapshot_digest=reviewed.snapshot_digest,
    )
    with frozen(AFTER_WINDOWS), pytest.raises(DomainError) as refused:
        services.review_propose(review=third_review, decision="expand", rationale="again", by=members[0])
    assert refused.value.code == "dose_level_full"


def test_the_database_refuses_two_open_cohorts_in_one_trial_even_past_the_services(reviewed):
    from django.db import IntegrityError, transaction

    members = committee()
    with frozen(AFTER_WINDOWS):
        services.review_propose(review=reviewed, decision="escalate", by=members[0])
    _sign_all(reviewed, members)  # cohort 1 closed, cohort 2 open
    with (
        pytest.raises(
            IntegrityError,
            match=r"cohort_one_(open|active)_per_trial|UNIQUE constraint failed: cohorts_cohort.trial_id",
        ),
        transaction.atomic(),
    ):
        Cohort.objects.filter(sequence=1).update(state=Cohort.State.OPEN, closed_at=None)  # a raw reopen
    assert list(Cohort.objects.order_by("sequence").values_list("state", flat=True)) == ["closed", "open"]

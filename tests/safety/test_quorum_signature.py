"""The signature that reaches quorum does each thing once, and its answer says what it did."""

import pytest
from rest_framework.test import APIClient

from cohorts.models import Cohort
from safety import services
from safety.models import SafetyReview
from tests.factories import token_for
from tests.safety import test_escalation_gate as gate
from tests.safety.test_escalation_gate import AFTER_WINDOWS, HOUR, PASSWORD, committee, frozen

pytestmark = pytest.mark.django_db
reviewed = gate.reviewed  # the fixture: the low-dose cohort infused, its review open

# The queries of the signature that reaches quorum and opens the next cohort (54 before the live data
# were checked once and the rows locked once per signature; see docs/architecture.md). 39 of the signature and
# the decision, and 13 of their reminders (issue 11): the signer's cancelled and the review's cancelled (each:
# two locking SELECTs, then the UPDATE and its history rows' INSERT for what they found), the site told that the
# decision took effect (the site, a savepoint, the row and its history: 5).
QUORUM_SIGNATURE_QUERIES = 52


def _proposed(review, members):
    with frozen(AFTER_WINDOWS):
        services.review_propose(review=review, decision="escalate", by=members[0])


def test_the_signature_that_reaches_quorum_takes_a_constant_number_of_queries(reviewed, django_assert_max_num_queries):
    members = committee()
    _proposed(reviewed, members)
    with frozen(AFTER_WINDOWS + HOUR):
        for member in members[:2]:
            services.review_sign(review=reviewed, user=member, password=PASSWORD, meaning="approve")
        with django_assert_max_num_queries(QUORUM_SIGNATURE_QUERIES):
            services.review_sign(review=reviewed, user=members[2], password=PASSWORD, meaning="approve")
    reviewed.refresh_from_db()
    assert reviewed.state == SafetyReview.State.EFFECTIVE


def test_the_sign_answer_says_whether_the_decision_took_effect_and_which_cohort_opened(reviewed):
    members = committee()
    _proposed(reviewed, members)
    answers = []
    with frozen(AFTER_WINDOWS + HOUR):
        for member in members:
            api = APIClient()
            api.credentials(HTTP_AUTHORIZATION=f"Token {token_for(member)}")
            response = api.post(
                f"/api/v1/reviews/{reviewed.pk}/sign/", {"meaning": "approve", "password": PASSWORD}, format="json"
            )
            assert response.status_code == 201, response.json()
            answers.append(response.json())
    opened = Cohort.objects.get(dose_level__level=2)
    assert [(a["decision_effective"], a["review_state"], a["resulting_cohort"]) for a in answers] == [
        (False, "open", None),
        (False, "open", None),
        (True, "effective", opened.pk),
    ]
    assert [a["sequence"] for a in answers] == [1, 2, 3] and answers[2]["signer"] == "Member Number2"

"""Free text reaches sponsors only after a data manager reviewed it, and only as it was then (issue 12, item 8)."""

from io import StringIO

import pytest
from django.core.management import call_command
from django.urls import reverse
from rest_framework.test import APIClient

from core.errors import DomainError
from core.free_text import free_text_mark_reviewed
from core.models import FreeTextReview
from core.roles import DATA_MANAGER, SITE_STAFF, SPONSOR
from safety import services as safety_services
from safety.models import AdverseEvent
from tests.cohorts.test_infusions_support import DAY, T0, enrolled_cohort, frozen, infuse
from tests.dashboard.seed import record_event
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def events(nct_trial):
    """Two adverse events whose verbatim terms staff typed (the second names a participant's initials)."""
    call_command("load_ctcae_terms", verbosity=0, stdout=StringIO())
    _, people = enrolled_cohort(nct_trial)
    infuse(people[0], T0)
    people[0].refresh_from_db()
    day0 = people[0].dlt_window_start
    first = record_event(people[0], at=T0 + DAY, term="Headache", grade=1, relationship="not_related",
                         onset_date=day0, verbatim_term="mild headache after infusion")  # fmt: skip
    second = record_event(people[0], at=T0 + DAY, term="Fever", grade=1, relationship="not_related",
                          onset_date=day0, verbatim_term="fever, told by W.L. at home")  # fmt: skip
    return first, second


def _client(user) -> APIClient:
    api = APIClient()
    api.force_authenticate(user)
    return api


@pytest.fixture
def sponsor(nct_trial):
    return _client(UserFactory(username="sponsor-reader", role=SPONSOR, is_staff=False, trials=[nct_trial]))


@pytest.fixture
def data_manager():
    return UserFactory(username="dm", role=DATA_MANAGER)


def _terms(api) -> dict[int, str | None]:
    rows = api.get(reverse("adverse-event-list"), {"limit": 100}).json()["results"]
    return {row["id"]: row["verbatim_term"] for row in rows}


def _release(api, event, reason="Read: no identifiers"):
    return api.post(
        reverse("free-text-review"), {"record": "safety.adverseevent", "id": event.pk, "reason": reason}, format="json"
    )


def test_a_sponsor_sees_free_text_only_once_a_data_manager_released_it(events, sponsor, data_manager):
    first, second = events
    assert _terms(sponsor) == {first.pk: None, second.pk: None}
    response = _release(_client(data_manager), first)
    assert response.status_code == 201, response.json()
    assert response.json()["record"] == "safety.adverseevent" and response.json()["record_id"] == first.pk
    assert _terms(sponsor) == {first.pk: "mild headache after infusion", second.pk: None}
    detail = sponsor.get(reverse("adverse-event-detail", args=[first.pk])).json()
    assert detail["verbatim_term"] == "mild headache after infusion"
    assert detail["dlt_reason"] == AdverseEvent.objects.get(pk=first.pk).dlt_reason  # the record's text, all of it


def test_a_change_of_the_text_after_the_review_withholds_it_again_until_it_is_reviewed_anew(
    events, sponsor, data_manager
):
    first, _ = events
    free_text_mark_reviewed(record=first, by=data_manager, reason="Read: no identifiers")
    assert _terms(sponsor)[first.pk] == "mild headache after infusion"
    coordinator = UserFactory(username="coordinator")
    with frozen(T0 + 2 * DAY):
        safety_services.adverse_event_update(
            event=first, values={"verbatim_term": "headache, patient W.L. called"}, reason="follow-up", by=coordinator
        )
    assert _terms(sponsor)[first.pk] is None
    free_text_mark_reviewed(record=AdverseEvent.objects.get(pk=first.pk), by=data_manager, reason="Read again")
    assert _terms(sponsor)[first.pk] == "headache, patient W.L. called"


def test_staff_see_the_free_text_whether_it_was_reviewed_or_not(events):
    first, second = events
    coordinator = _client(UserFactory(username="coordinator"))
    assert _terms(coordinator) == {first.pk: "mild headache after infusion", second.pk: "fever, told by W.L. at home"}


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"reason": "  "}, 400, "reason"),
        ({"reason": 5}, 400, "reason"),
        ({"record": "cohorts.participant"}, 400, "record"),  # a participant's identifiers are never released
        ({"record": "nothing.here"}, 400, "record"),
        ({"id": 10**9}, 404, None),
    ],
)
def test_a_release_needs_a_record_with_free_text_that_exists_and_a_reason(events, data_manager, body, status, field):
    first, _ = events
    payload = {"record": "safety.adverseevent", "id": first.pk, "reason": "Read", **body}
    response = _client(data_manager).post(reverse("free-text-review"), payload, format="json")
    assert response.status_code == status, response.json()
    if field:
        assert field in response.json()["fields"]
    assert not FreeTextReview.objects.exists()


@pytest.mark.parametrize("role", [SITE_STAFF, SPONSOR])
def test_only_a_data_manager_may_release_free_text(events, nct_trial, role):
    first, _ = events
    user = UserFactory(username="someone", role=role, is_staff=role != SPONSOR, trials=[nct_trial])
    assert _release(_client(user), first).status_code == 403
    with pytest.raises(DomainError) as refused:
        free_text_mark_reviewed(record=first, by=user, reason="Read")
    assert refused.value.code == "permission_denied"
    assert not FreeTextReview.objects.exists()


def test_a_data_manager_releases_free_text_with_the_admin_action_and_the_release_is_listed(
    client, events, sponsor, data_manager
):
    first, second = events
    client.force_login(data_manager)
    url = reverse("admin:safety_adverseevent_changelist")
    assert b"release_free_text" in client.get(url).content
    done = client.post(url, {"action": "release_free_text", "_selected_action": [first.pk]}, follow=True)
    assert done.status_code == 200 and b"released to sponsors" in done.content
    review = FreeTextReview.objects.get()
    assert (review.object_id, review.reviewed_by) == (first.pk, data_manager)
    assert _terms(sponsor) == {first.pk: "mild headache after infusion", second.pk: None}
    listed = client.get(reverse("admin:core_freetextreview_changelist"))
    assert listed.status_code == 200 and str(first.pk).encode() in listed.content


def test_site_staff_are_not_offered_the_release_action(client, events):
    client.force_login(UserFactory(username="coordinator"))
    assert b"release_free_text" not in client.get(reverse("admin:safety_adverseevent_changelist")).content


def test_a_sponsors_list_asks_for_the_releases_once_whatever_its_length(
    events, sponsor, data_manager, django_assert_max_num_queries
):
    first, _ = events
    free_text_mark_reviewed(record=first, by=data_manager, reason="Read")
    with django_assert_max_num_queries(30) as small:
        _terms(sponsor)
    person = first.participant
    for n in range(8):
        record_event(person, at=T0 + DAY, term="Headache", grade=1, relationship="not_related",
                     onset_date=first.onset_date, verbatim_term=f"headache {n}")  # fmt: skip
    with django_assert_max_num_queries(len(small.captured_queries)):
        assert len(_terms(sponsor)) == 10

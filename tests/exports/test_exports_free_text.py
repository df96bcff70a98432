"""A sponsor's exports show staff free text only where a data manager released it, as the API does
(issue 12, item 8): the AE verbatim term in SDTM AE, an early stop's reason in SDTM EX and FHIR, a review's
reason and rationale and the signatures' comments in the dossier. Staff get the text as typed."""

import json

import pytest

from core.free_text import free_text_mark_reviewed
from core.roles import DATA_MANAGER, INVESTIGATOR, SPONSOR
from exports.permissions import WITHHELD
from safety.models import AdverseEvent
from tests.dashboard.seed import VIEW, frozen
from tests.exports import test_exports as base
from tests.exports.test_exports import BASE, body, reader, rows
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
seeded = base.seeded  # the fixture: the seeded trial


def _ae_terms(role: str, name: str) -> dict[str, str]:
    with frozen(VIEW):
        return {r["AESPID"]: r["AETERM"] for r in rows(reader(role, name).get(f"{BASE}/sdtm/AE.csv"))}


def test_a_sponsor_gets_the_verbatim_term_of_an_adverse_event_only_once_it_is_released(seeded):
    event = AdverseEvent.objects.order_by("pk").first()
    before = _ae_terms(SPONSOR, "sponsor-a")
    assert before[str(event.pk)] == WITHHELD and set(before.values()) == {WITHHELD}
    free_text_mark_reviewed(record=event, by=UserFactory(username="dm-a", role=DATA_MANAGER), reason="No names")
    after = _ae_terms(SPONSOR, "sponsor-b")
    assert after[str(event.pk)] == event.verbatim_term
    assert [term for pk, term in after.items() if pk != str(event.pk)] == [WITHHELD] * (len(after) - 1)


def test_a_change_of_the_verbatim_term_after_its_release_withholds_it_again(seeded):
    event = AdverseEvent.objects.order_by("pk").first()
    free_text_mark_reviewed(record=event, by=UserFactory(username="dm-b", role=DATA_MANAGER), reason="No names")
    AdverseEvent.objects.filter(pk=event.pk).update(verbatim_term="Headache after the visit with Mrs Example")
    assert _ae_terms(SPONSOR, "sponsor-c")[str(event.pk)] == WITHHELD


def test_staff_get_every_verbatim_term_as_typed(seeded):
    terms = _ae_terms(INVESTIGATOR, "inv-a")
    assert WITHHELD not in terms.values()
    assert set(terms.values()) == set(AdverseEvent.objects.values_list("verbatim_term", flat=True))


def test_a_sponsors_fhir_bundle_shows_coded_terms_and_withholds_a_term_typed_as_text(seeded):
    from fhir.resources.bundle import Bundle

    with frozen(VIEW):
        text = body(reader(SPONSOR, "sponsor-d").get(f"{BASE}/fhir/"))
    Bundle.parse_raw(text)  # still valid R4
    shown = {
        e["resource"]["identifier"]["value"]: e["resource"]["event"]["text"]
        for e in json.loads(text)["entry"]
        if e["resource"]["resourceType"] == "AdverseEvent"
    }
    coded = dict(AdverseEvent.objects.filter(ctcae_term__isnull=False).values_list("pk", "ctcae_term__term"))
    typed = set(AdverseEvent.objects.filter(ctcae_term__isnull=True).values_list("pk", flat=True))
    assert coded and typed, "the seed has both kinds"
    assert {shown[str(pk)] for pk in typed} == {WITHHELD}
    assert all(shown[str(pk)] == term for pk, term in coded.items())


def _review_reason(role: str, name: str, review) -> str:
    with frozen(VIEW):
        response = reader(role, name).get(f"/api/v1/reviews/{review.pk}/dossier.json")
    assert response.status_code == 200
    return json.loads(response.content)["review"]["reason"]


def test_a_sponsors_dossier_withholds_the_reviews_reason_until_it_is_released(seeded):
    review = seeded.escalation
    assert review.reason
    assert _review_reason(SPONSOR, "sponsor-e", review) == WITHHELD
    assert _review_reason(DATA_MANAGER, "dm-reader", review) == review.reason
    free_text_mark_reviewed(record=review, by=UserFactory(username="dm-c", role=DATA_MANAGER), reason="No names")
    assert _review_reason(SPONSOR, "sponsor-f", review) == review.reason

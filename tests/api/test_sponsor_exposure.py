"""What a sponsor reads never names a member of staff nor identifies a participant (issue 12, item 8).

A seeded trial (two cohorts, an effective escalation, an open review, adverse events with clocks reported,
a DLT decided, visits done and missed, deviations) is read by a sponsor through every list endpoint,
every detail of every row listed, the summary, the escalation history and the exports a sponsor may
download; every response is scanned for every username in the database and every participant's screening
number, initials and date of birth. Staff appear as stable pseudonyms (``staff-`` and 8 hex digits);
free text that staff type (verbatim terms, reasons, descriptions) is withheld (null). Signatures keep the
signer's printed name: 21 CFR 11.50 requires it on the signed record, and the committee signs knowing it.
"""

import re

import pytest
from django.contrib.auth import get_user_model
from django.db.models import CharField, F, Value
from django.db.models.functions import Cast, Concat
from django.urls import reverse
from rest_framework.test import APIClient

from api.urls import router
from cohorts import services as cohort_services
from cohorts.models import Participant, ProtocolDeviation
from core.roles import SPONSOR
from tests.dashboard.seed import VIEW, frozen, seed_trial
from tests.factories import UserFactory, staff_users

pytestmark = pytest.mark.django_db
LISTS = sorted(u.name for u in router.urls if u.name and u.name.endswith("-list"))
PSEUDONYM = re.compile(r"^staff-[0-9a-f]{8}$")


@pytest.fixture
def world(nct_trial):
    seeded = seed_trial(nct_trial)
    coordinator, _ = staff_users()
    participant = seeded.first.enrollments.order_by("slot").first().participant
    with frozen(VIEW):
        cohort_services.deviation_record(
            participant=participant,
            category="procedure",
            severity="minor",
            occurred_on=VIEW.date(),
            description="Nurse coordinator mislabelled the sample of WL",
            by=coordinator,
        )  # fmt: skip
    # Usernames nobody would write by chance, so that a hit is a leak and never a coincidence.
    get_user_model().objects.update(username=Concat(Value("uname-"), Cast(F("pk"), CharField()), Value("-x")))
    sponsor = UserFactory(username="sponsor-reader", role=SPONSOR, is_staff=False)
    api = APIClient()
    api.force_authenticate(sponsor)
    return seeded, api


def _secrets() -> dict[str, str]:
    staff = get_user_model().objects.exclude(username="sponsor-reader").values_list("username", flat=True)
    secrets = dict.fromkeys(staff, "username")
    for p in Participant.objects.all():
        secrets[p.screening_number] = "screening number"
        secrets[p.date_of_birth.isoformat()] = "date of birth"
        if p.initials:
            secrets[p.initials] = "initials"
    return secrets


def _leaks(text: str, secrets: dict[str, str]) -> list[str]:
    return [
        f"{kind} {value!r}"
        for value, kind in secrets.items()
        if re.search(rf"(?<![A-Za-z0-9]){re.escape(value)}(?![A-Za-z0-9])", text)
    ]


def _sponsor_responses(api, trial) -> dict[str, str]:
    """Every sponsor-readable response's text, by path."""
    texts = {}
    with frozen(VIEW):
        for name in LISTS:
            response = api.get(reverse(name), {"limit": 1000})
            if response.status_code == 403:
                continue
            assert response.status_code == 200, name
            texts[response.request["PATH_INFO"]] = response.content.decode()
            body = response.json()
            for row in body["results"] if isinstance(body, dict) and "results" in body else body:
                if "id" in row and name != "trial-list":
                    detail = reverse(name.replace("-list", "-detail"), kwargs={"pk": row["id"]})
                    texts[detail] = api.get(detail).content.decode()
        registry = trial.registry_id
        for path in (
            f"/api/v1/trials/{registry}/", f"/api/v1/trials/{registry}/summary/",
            f"/api/v1/trials/{registry}/escalation-history/", f"/api/v1/trials/{registry}/export/fhir/",
            *(f"/api/v1/trials/{registry}/export/sdtm/{domain}.csv" for domain in ("DM", "EX", "AE", "DS")),
            f"/api/v1/trials/{registry}/export/define/",
        ):  # fmt: skip
            response = api.get(path)
            assert response.status_code == 200, path
            texts[path] = b"".join(response.streaming_content if response.streaming else [response.content]).decode()
        for review in trial.safety_reviews.all():
            path = f"/api/v1/reviews/{review.pk}/dossier.json"
            response = api.get(path)
            assert response.status_code == 200, path
            texts[path] = b"".join(response.streaming_content if response.streaming else [response.content]).decode()
    return texts


def test_no_sponsor_response_names_staff_or_identifies_a_participant(world):
    seeded, api = world
    texts = _sponsor_responses(api, seeded.trial)
    assert len(texts) > 40  # every list, its rows, the summary, the history and the exports
    secrets = _secrets()
    leaks = {path: found for path, text in texts.items() if (found := _leaks(text, secrets))}
    assert leaks == {}


def test_a_sponsor_sees_staff_as_stable_pseudonyms_and_no_free_text(world):
    _, api = world
    with frozen(VIEW):
        first = api.get(reverse("adverse-event-list"), {"limit": 1000}).json()["results"]
        again = api.get(reverse("adverse-event-list"), {"limit": 1000}).json()["results"]
        deviations = api.get(reverse("deviation-list")).json()["results"]
    reporters = {event["reported_by"] for event in first}
    assert reporters and all(PSEUDONYM.match(r) for r in reporters)
    assert [e["reported_by"] for e in first] == [e["reported_by"] for e in again]  # stable
    assert {e["verbatim_term"] for e in first} == {None}
    assert ProtocolDeviation.objects.filter(description__contains="WL").exists()
    assert {d["description"] for d in deviations} == {None}


def test_staff_still_see_usernames_and_the_free_text(world):
    coordinator = get_user_model().objects.filter(groups__name="Site staff").first()
    api = APIClient()
    api.force_authenticate(coordinator)
    with frozen(VIEW):
        events = api.get(reverse("adverse-event-list"), {"limit": 1000}).json()["results"]
    assert {e["reported_by"] for e in events} == {coordinator.username}
    assert None not in {e["verbatim_term"] for e in events}

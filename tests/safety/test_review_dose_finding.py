"""What the review snapshot freezes for dose-finding (issue 15): both designs' decision tables with the protocol
version, the dose-transition pathways of the next two cohorts from this trial's data, and TITE-BOIN as a
second opinion over the pending participants' follow-up, with its accrual suspension on both sides of the
boundary. TITE-BOIN never becomes the protocol's recommendation."""

import datetime as dt
import re

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from safety import selectors, services
from safety.models import SafetyReview
from tests.cohorts.test_infusions_support import DAY, HOUR, T0, enrolled_cohort, frozen, infuse
from tests.factories import UserFactory, token_for
from tests.safety.test_escalation_gate import AFTER_WINDOWS, reviewed  # noqa: F401

pytestmark = pytest.mark.django_db


def _children(node) -> dict[str, object]:
    return {child["outcomes"]: child for child in node["children"]}


def test_the_snapshot_freezes_both_decision_tables_with_the_protocol_version(reviewed):  # noqa: F811
    frozen_tables = reviewed.snapshot["dose_finding"]
    assert frozen_tables["protocol_version"] == reviewed.trial.protocol_version
    three = frozen_tables["decision_tables"]["3+3"]
    assert (three["role"], three["variant"]) == ("protocol", "confirm_on_six")
    assert set(three["contexts"]) == {"lowest", "generic", "highest"}
    lowest = {(r["n"], r["dlts"]): r for r in three["contexts"]["lowest"]["rows"]}
    assert lowest[(3, 0)]["action"] == "escalate"
    assert lowest[(3, 1)]["action"] == "stay"  # expand to 6
    assert lowest[(6, 1)]["action"] == "escalate"
    assert lowest[(6, 2)]["action"] == "stop"
    boin = frozen_tables["decision_tables"]["boin"]
    assert (boin["role"], boin["target"]) == ("second opinion", 0.3)
    by_n = {b["n"]: b for b in boin["boundaries"]}
    assert sorted(by_n) == list(range(1, 19))  # the planned enrollment, 18
    # BOIN::get.boundary(target = 0.3): n = 3 -> (0, 2, 3), n = 6 -> (1, 3, 4)
    assert [by_n[3][k] for k in ("escalate_at_most", "deescalate_at_least", "eliminate_at_least")] == [0, 2, 3]
    assert [by_n[6][k] for k in ("escalate_at_most", "deescalate_at_least", "eliminate_at_least")] == [1, 3, 4]


def test_the_snapshot_holds_the_pathways_of_the_next_two_cohorts_from_this_trials_data(reviewed):  # noqa: F811
    paths = reviewed.snapshot["dose_finding"]["pathways"]
    assert (paths["from"], paths["cohorts"], paths["error"]) == ("1NNN", 2, "")
    root = paths["tree"]
    assert (root["recommended_dose"], root["continue"]) == (2, True)
    first = _children(root)
    # confirm_on_six after 1NNN, the next cohort at dose 2: NNN -> 3, NNT -> 2, NTT -> 1, TTT -> 1
    assert {k: (v["dose"], v["recommended_dose"]) for k, v in first.items()} == {
        "NNN": (2, 3), "NNT": (2, 2), "NTT": (2, 1), "TTT": (2, 1),
    }  # fmt: skip
    assert {k: v["recommended_dose"] for k, v in _children(first["NNT"]).items()} == {
        "NNN": 3, "NNT": 1, "NTT": 1, "TTT": 1,
    }  # fmt: skip
    assert sum(1 for node in first.values() for _ in node["children"]) == 16


def test_with_every_window_complete_tite_boin_gives_boins_answer_and_is_never_the_protocols(reviewed):  # noqa: F811
    recs = reviewed.snapshot["recommendations"]
    tite = recs[selectors.TITE_KEY]
    assert (tite["recommended_dose"], tite["continue"], tite["reason"]) == (
        recs["boin"]["recommended_dose"], recs["boin"]["continue"], recs["boin"]["reason"],
    )  # fmt: skip
    assert tite["suspended"] is False and tite["numbers"]["pending"] == 0
    assert services.protocol_recommendation(reviewed) == "escalate"  # from 3+3, the protocol's design


@pytest.fixture
def running_cohort(nct_trial):
    """Cohort 1 infused per protocol (T0, T0 + 8 d, T0 + 9 d); the DLT windows still running."""
    cohort, people = enrolled_cohort(nct_trial)
    for person, offset in zip(people, (0 * DAY, 8 * DAY, 9 * DAY + 2 * HOUR), strict=True):
        infuse(person, T0 + offset)
    for person in people:
        person.refresh_from_db()
    cohort.refresh_from_db()
    return cohort, people


def _day_after(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day + dt.timedelta(days=1), dt.time(9), tzinfo=T0.tzinfo)


@pytest.mark.parametrize(
    ("windows_over", "suspended"),
    [
        (1, True),  # 2 of 3 pending: more than half, accrual suspended
        (2, False),  # 1 of 3 pending: not more than half, TITE-BOIN decides
    ],
)
def test_tite_boin_suspends_accrual_only_when_more_than_half_of_the_dose_is_pending(
    running_cohort, windows_over, suspended
):
    cohort, people = running_cohort
    with frozen(_day_after(people[windows_over - 1].dlt_window_end)):
        snapshot = selectors.review_snapshot(cohort)
    tite = snapshot["recommendations"][selectors.TITE_KEY]
    assert tite["numbers"]["n"] == 3
    assert tite["numbers"]["pending"] == 3 - windows_over
    assert tite["suspended"] is suspended
    if suspended:
        assert (tite["recommended_dose"], tite["continue"]) == (None, True)
        assert "suspended" in tite["reason"]
    else:
        assert 0 < tite["numbers"]["stft"] <= 1  # the last participant's follow-up, as a fraction of 28 days
        assert tite["recommended_dose"] == 2  # no DLT: p~ well below lambda_e, escalate
    # BOIN beside it counts only the completed participants
    assert snapshot["outcomes"] == "1" + "N" * windows_over


def test_a_review_the_chair_calls_mid_cohort_carries_tite_boin_and_the_api_shows_it(running_cohort):
    cohort, people = running_cohort
    chair = UserFactory(username="chair", first_name="Chair", last_name="Person", role="Safety committee")
    chair.user_permissions.add(*chair.user_permissions.model.objects.filter(codename="chair_review"))
    with frozen(_day_after(people[0].dlt_window_end)):
        review = services.review_open_by_chair(cohort=cohort, reason="Look at the sentinel", by=chair)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {token_for(chair)}")
    body = api.get(f"/api/v1/reviews/{review.pk}/").json()
    tite = body["snapshot"]["recommendations"][selectors.TITE_KEY]
    assert tite["suspended"] is True
    assert tite["numbers"]["pending"] == 2
    assert body["snapshot"]["dose_finding"]["pathways"]["from"] == "1N"


# --- the committee's review page and its printable page -------------------------------------------------------


def _member():
    return UserFactory(username="src-reader", first_name="Ana", last_name="Costa", role="Safety committee")


def _rows(page: str, marker: str) -> list[str]:
    """The ``data-…`` values of the rows of one table of the page, in order."""
    return re.findall(rf'<tr {marker}="([^"]+)"', page)


def test_a_committee_member_sees_the_decision_tables_and_pathways_for_this_trial(reviewed, client):  # noqa: F811
    url = reverse("admin:safety_safetyreview_change", args=[reviewed.pk])
    with frozen(AFTER_WINDOWS):
        client.force_login(_member())
        page = client.get(url).content.decode()
    assert 'id="three-plus-three-table"' in page and 'id="boin-table"' in page
    # 3+3 rows n = 1..6, every number of DLTs: 2 + 3 + ... + 7 = 27 rows
    assert len(re.findall(r'<tr data-n="\d+" data-dlts="\d+">', page)) == 27
    assert f"Protocol version <strong>{reviewed.trial.protocol_version}</strong>, frozen when the review opened" in page
    # the next cohort goes to dose 2, a middle dose of 3: that column is marked
    assert 'class="df-current" data-context="generic"' in page
    # the pathways of this trial's data: after 1NNN the next cohort at dose 2, then the one after it
    paths = _rows(page, "data-path")
    assert paths[:2] == ["2NNN", "2NNN 3NNN"]
    assert len(paths) == 4 + 16
    assert 'id="pathway-tree"' in page and page.count("<li>") >= 21
    assert 'data-design="tite-boin"' in page and "never the protocol&#x27;s rule" in page
    ours = page.split('id="recommendations"')[1].split('id="pathway-tree"')[0]
    assert "style=" not in ours  # a strict CSP: classes from safety/dosefinding.css, no inline style


def test_the_printable_page_holds_the_frozen_tables_without_the_admin(reviewed, client):  # noqa: F811
    with frozen(AFTER_WINDOWS):
        client.force_login(_member())
        response = client.get(reverse("admin:safety_safetyreview_dose_finding", args=[reviewed.pk]))
    page = response.content.decode()
    assert response.status_code == 200
    assert 'class="df-print"' in page and "@media print" not in page  # the print rules live in the stylesheet
    assert "safety/dosefinding.css" in page
    assert 'id="three-plus-three-table"' in page and 'id="pathway-table"' in page and 'id="tite-boin"' in page
    assert reviewed.snapshot_digest[:16] in page
    assert "<script" not in page


def test_the_review_page_and_the_printable_page_read_a_constant_number_of_queries(
    reviewed,  # noqa: F811
    client,
    django_assert_max_num_queries,
):
    with frozen(AFTER_WINDOWS):
        client.force_login(_member())
        with django_assert_max_num_queries(25):
            assert client.get(reverse("admin:safety_safetyreview_change", args=[reviewed.pk])).status_code == 200
        with django_assert_max_num_queries(8):
            assert client.get(reverse("admin:safety_safetyreview_dose_finding", args=[reviewed.pk])).status_code == 200


def test_a_snapshot_frozen_before_dose_finding_says_so_instead_of_guessing(reviewed, client):  # noqa: F811
    snapshot = {k: v for k, v in reviewed.snapshot.items() if k != "dose_finding"}
    snapshot["recommendations"].pop(selectors.TITE_KEY)
    SafetyReview.objects.filter(pk=reviewed.pk).update(snapshot=snapshot)
    with frozen(AFTER_WINDOWS):
        client.force_login(_member())
        page = client.get(reverse("admin:safety_safetyreview_change", args=[reviewed.pk])).content.decode()
        missing = client.get(reverse("admin:safety_safetyreview_dose_finding", args=[reviewed.pk]))
    assert "Not recorded in this snapshot (opened before dose-finding" in page
    assert missing.status_code == 404

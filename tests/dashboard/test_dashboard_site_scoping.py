"""The dashboard's trial page shows site staff only their sites' participants, as the API does (trial.access)."""

from io import StringIO

import pytest
from django.core.management import call_command

from cohorts import services as cohort_services
from core.free_text import free_text_mark_reviewed
from core.roles import DATA_MANAGER, INVESTIGATOR, SITE_STAFF, SPONSOR
from dashboard import selectors
from exports.permissions import WITHHELD
from safety.models import AdverseEvent
from tests.cohorts.test_infusions_support import DAY, T0, frozen, infuse
from tests.dashboard.seed import VIEW, record_event, seed_trial
from tests.dashboard.seed import frozen as seeded_clock
from tests.factories import SiteFactory, UserFactory, eligible_participant, staff_users

pytestmark = pytest.mark.django_db


@pytest.fixture
def two_sites(nct_trial):
    """Cohort 1 with two participants at site A and one at site B, each infused with an adverse event."""
    call_command("load_ctcae_terms", verbosity=0, stdout=StringIO())
    coordinator, investigator = staff_users()
    site_a = nct_trial.sites.order_by("pk").first()
    site_b = SiteFactory(trial=nct_trial, name="Site B")  # the staff made so far work at both
    with frozen(T0 - DAY):
        cohort = cohort_services.cohort_open_first(trial=nct_trial, by=investigator)
        people = []
        for number, site in (("A01", site_a), ("A02", site_a), ("B01", site_b)):
            participant = eligible_participant(nct_trial, number=number, site=site)
            cohort_services.enroll_participant(participant=participant, cohort=cohort, by=coordinator)
            participant.refresh_from_db()
            people.append(participant)
    infuse(people[0], T0)
    people[0].refresh_from_db()
    record_event(people[0], at=T0 + DAY, term="Headache", grade=1, relationship="not_related",
                 onset_date=people[0].dlt_window_start)  # fmt: skip
    return site_a, site_b, people


def _lanes(data) -> set[str]:
    return {lane.study_id for lane in data.lanes}


def test_a_site_a_nurse_sees_only_site_a_participants_in_the_plots(two_sites, nct_trial):
    site_a, _, people = two_sites
    nurse = UserFactory(username="nurse-a", role=SITE_STAFF, sites=[site_a])
    data = selectors.trial_dashboard(nct_trial, user=nurse)
    assert _lanes(data) == {people[0].study_id, people[1].study_id}
    assert sum(sum(row.counts.values()) for row in data.grades_by_dose) == 1
    assert data.enrollment[1][-1][1] == 2  # her site's two enrollments, not the cohort's three
    assert [row.sequence for row in data.cohorts] == [1]  # the cohort itself is the trial's (its slots are shared)


def test_a_site_b_nurse_sees_her_participant_only_and_no_other_sites_events(two_sites, nct_trial):
    _, site_b, people = two_sites
    nurse = UserFactory(username="nurse-b", role=SITE_STAFF, sites=[site_b])
    data = selectors.trial_dashboard(nct_trial, user=nurse)
    assert _lanes(data) == {people[2].study_id}
    assert sum(sum(row.counts.values()) for row in data.grades_by_dose) == 0


def test_the_data_manager_sees_every_site(two_sites, nct_trial):
    data = selectors.trial_dashboard(nct_trial, user=UserFactory(username="dm", role=DATA_MANAGER))
    assert _lanes(data) == {p.study_id for p in two_sites[2]}


def test_the_trial_page_of_a_site_b_nurse_names_no_site_a_study_id(client, two_sites):
    _, site_b, people = two_sites
    client.force_login(UserFactory(username="nurse-b", role=SITE_STAFF, sites=[site_b]))
    html = client.get("/dashboard/NCT06949137/").content.decode()
    assert people[2].study_id in html
    assert people[0].study_id not in html and people[1].study_id not in html


def test_a_sponsor_reads_a_typed_ae_term_on_the_swimmer_plot_only_once_it_is_released(nct_trial):
    """Issue 12, item 8 on the dashboard (the review timeline's rationale follows the same rule)."""
    seed_trial(nct_trial)
    reader = UserFactory(username="sponsor-dash", role=SPONSOR, is_staff=False, trials=[nct_trial])
    typed = AdverseEvent.objects.filter(ctcae_term__isnull=True).order_by("pk").first()
    assert typed is not None

    def terms(user) -> set[str]:
        with seeded_clock(VIEW):
            data = selectors.trial_dashboard(nct_trial, user=user)
        return {mark.term for lane in data.lanes for mark in lane.events}

    assert WITHHELD in terms(reader) and (typed.ctcae_term_text or typed.verbatim_term) not in terms(reader)
    staff = UserFactory(username="inv-dash", role=INVESTIGATOR)
    assert WITHHELD not in terms(staff)
    free_text_mark_reviewed(record=typed, by=UserFactory(username="dm-dash", role=DATA_MANAGER), reason="No names")
    assert (typed.ctcae_term_text or typed.verbatim_term) in terms(reader)

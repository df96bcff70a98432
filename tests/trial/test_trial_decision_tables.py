"""The protocol admin shows the decision tables of the trial's design parameters and protocol version, on the
trial's page and on a printable page (issue 15); the review freezes the same tables into its snapshot."""

import re

import pytest
from django.urls import reverse

from core.roles import DATA_MANAGER
from safety import selectors as safety_selectors
from tests.factories import UserFactory
from trial.models import Trial

pytestmark = pytest.mark.django_db


@pytest.fixture
def manager_client(client):
    client.force_login(UserFactory(username="dm", role=DATA_MANAGER))
    return client


def _cell(page: str, n: int, dlts: int) -> list[str]:
    """The actions of one 3+3 row, one per context (dose 1, a middle dose, the highest dose)."""
    row = re.search(rf'<tr data-n="{n}" data-dlts="{dlts}">(.*?)</tr>', page, re.S).group(1)
    return re.findall(r"<strong>([a-z-]+)</strong>", row)


def test_the_trial_page_shows_both_decision_tables_of_its_protocol_version(nct_trial, manager_client):
    page = manager_client.get(reverse("admin:trial_trial_change", args=[nct_trial.pk])).content.decode()
    assert "Decision tables of this protocol version" in page
    assert f"Protocol version <strong>{nct_trial.protocol_version}</strong>." in page
    assert len(re.findall(r'<tr data-n="\d+" data-dlts="\d+">', page)) == 27
    assert "3+3 (confirm_on_six) (protocol)" in page and "BOIN (target 0.3) (second opinion)" in page
    assert _cell(page, 3, 0) == ["escalate", "escalate", "stay"]  # confirm_on_six expands the top dose to 6
    assert _cell(page, 6, 2) == ["stop", "de-escalate", "de-escalate"]  # confirm_on_six: 6 at the dose below
    assert reverse("admin:trial_trial_decision_table", args=[nct_trial.pk]) in page


@pytest.mark.parametrize(
    ("variant", "top_dose_after_0_of_3"),
    [("confirm_on_six", "stay"), ("escalation_default", "stop")],
)
def test_the_tables_follow_the_protocols_3_plus_3_variant(nct_trial, manager_client, variant, top_dose_after_0_of_3):
    Trial.objects.filter(pk=nct_trial.pk).update(three_plus_three_variant=variant)
    page = manager_client.get(reverse("admin:trial_trial_decision_table", args=[nct_trial.pk])).content.decode()
    assert _cell(page, 3, 0)[2] == top_dose_after_0_of_3


def test_the_boin_table_is_the_one_get_boundary_prints_for_the_trials_target(nct_trial, manager_client):
    Trial.objects.filter(pk=nct_trial.pk).update(escalation_design="boin", boin_target_rate="0.250")
    page = manager_client.get(reverse("admin:trial_trial_decision_table", args=[nct_trial.pk])).content.decode()
    assert "BOIN (target 0.25) (protocol)" in page
    boin = page.split('id="boin-table"')[1].split("</table>")[0]
    rows = [re.findall(r"<t[dh]>([^<]*)</t[dh]>", row) for row in re.findall(r"<tr>(.*?)</tr>", boin, re.S)]
    # n = 1..18 at target 0.25 (docs/dose-finding.md): escalate <= ..., de-escalate >= ..., eliminate >= ...
    assert " ".join(rows[1][1:]) == "0 0 0 0 0 1 1 1 1 1 2 2 2 2 2 3 3 3"
    assert " ".join(rows[2][1:]) == "1 1 1 2 2 2 3 3 3 3 4 4 4 5 5 5 6 6"
    assert " ".join(rows[3][1:]) == "NA NA 3 3 3 4 4 4 5 5 6 6 6 7 7 7 8 8"


def test_the_printable_page_is_plain_html_with_a_print_stylesheet(nct_trial, manager_client):
    response = manager_client.get(reverse("admin:trial_trial_decision_table", args=[nct_trial.pk]))
    page = response.content.decode()
    assert response.status_code == 200
    assert 'class="df-print"' in page and "safety/dosefinding.css" in page
    assert "<script" not in page and "style=" not in page
    assert 'id="pathway-table"' not in page  # a protocol has no data yet: tables only


def test_the_protocol_tables_and_a_reviews_frozen_tables_are_the_same_data(nct_trial):
    shown = safety_selectors.protocol_tables_display(nct_trial)
    frozen = safety_selectors.decision_tables(nct_trial, num_doses=3)
    assert shown["three"] == frozen["3+3"] and shown["boin"] == frozen["boin"]


def test_the_trial_page_and_the_printable_page_read_a_bounded_number_of_queries(
    nct_trial, manager_client, django_assert_max_num_queries
):
    with django_assert_max_num_queries(60):
        assert manager_client.get(reverse("admin:trial_trial_change", args=[nct_trial.pk])).status_code == 200
    with django_assert_max_num_queries(8):
        assert manager_client.get(reverse("admin:trial_trial_decision_table", args=[nct_trial.pk])).status_code == 200

"""The dashboard's dose-finding card (issue 15): the pathways of the next two cohorts from the trial's current
data, as a table (the numbers) and a tree, and TITE-BOIN as a second opinion; the same answers as the pure
``safety.dosefinding.dose_paths`` on the same outcome string."""

import re

import pytest

from core.roles import SPONSOR
from safety import dosefinding
from tests.dashboard.seed import VIEW, frozen, seed_trial
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def _page(client, role=SPONSOR) -> str:
    with frozen(VIEW):
        client.force_login(UserFactory(username="reader", role=role, is_staff=role != SPONSOR))
        response = client.get("/dashboard/NCT06949137/")
    assert response.status_code == 200
    return response.content.decode()


def test_the_dashboard_shows_the_pathways_of_the_next_two_cohorts_from_the_current_data(client, nct_trial):
    seed_trial(nct_trial)
    html = _page(client)
    card = html.split('id="dose-finding"')[1].split("</section>")[0]
    assert "<code>1NNN 2NTN</code>" in card  # cohort 2's second participant had the DLT
    design = dosefinding.make_design("3+3", num_doses=3, variant="confirm_on_six")
    root = dosefinding.dose_paths(design, "1NNN 2NTN", cohorts=2)
    expected = [node for node in root.walk() if node is not root]
    rows = re.findall(r'<tr data-path="([^"]+)" class="df-depth-(\d)">.*?<td class="df-(?:go|stop)">([^<]+)</td>', card)
    assert len(rows) == len(expected) > 0
    for (path, depth, answer), node in zip(rows, expected, strict=True):
        assert path.split()[-1] == f"{node.dose}{node.outcomes}"
        assert int(depth) == node.depth
        want = f"dose {node.recommended_dose}" if node.continue_ else (
            f"stop: dose {node.recommended_dose}" if node.recommended_dose else "stop: no dose"
        )  # fmt: skip
        assert answer == want
    assert 'id="pathway-tree"' in card and "TITE-BOIN (second opinion" in card
    assert "<script" not in html and "style=" not in card


def test_before_anyone_is_treated_the_pathways_start_at_dose_1(client, nct_trial):
    card = _page(client).split('id="dose-finding"')[1].split("</section>")[0]
    assert "gives the next cohort dose <strong>1</strong>" in card
    # NNN -> dose 2 and NNT -> dose 1 again, 4 outcomes each; NTT and TTT at dose 1 stop the trial
    assert card.count('<tr data-path="') == 4 + 4 + 4

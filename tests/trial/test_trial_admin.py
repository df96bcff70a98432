import pytest
from django.urls import reverse

from core.roles import DATA_MANAGER, SITE_STAFF
from tests.factories import UserFactory
from trial.models import Trial

pytestmark = pytest.mark.django_db


def _change_form_data(trial: Trial, **overrides) -> dict:
    """The change form as the browser posts it (inline management forms included)."""
    data = {
        field: getattr(trial, field)
        for field in (
            "title",
            "short_title",
            "phase",
            "design",
            "product",
            "sponsor",
            "protocol_version",
            "status",
            "planned_enrollment",
            "eligible_sex",
            "min_age_years",
            "max_age_years",
            "escalation_design",
            "three_plus_three_variant",
            "evaluability_rule",
            "boin_target_rate",
            "cohort_size",
            "max_per_dose_level",
            "review_quorum",
            "dlt_window_days",
            "sentinel_observation_days",
            "stagger_hours",
            "infusion_rate_min",
            "infusion_rate_max",
            "default_drop_factor",
            "dose_tolerance_pct",
            "max_infusions_per_participant",
            "dlt_min_grade",
            "dlt_min_relationship",
            "dlt_stop_count",
            "stop_on_related_death",
            "lost_to_follow_up_missed_visits",
        )
    }
    for prefix, related in (
        ("sites", trial.sites.all()),
        ("dose_levels", trial.dose_levels.all()),
        ("visit_schedule", trial.visit_schedule.all()),
        ("criteria", trial.criteria.all()),
    ):
        rows = list(related)
        data |= {
            f"{prefix}-TOTAL_FORMS": len(rows),
            f"{prefix}-INITIAL_FORMS": len(rows),
            f"{prefix}-MIN_NUM_FORMS": 0,
            f"{prefix}-MAX_NUM_FORMS": 1000,
        }
        for i, row in enumerate(rows):
            data[f"{prefix}-{i}-id"] = row.pk
            data[f"{prefix}-{i}-trial"] = trial.pk
            for field in row._meta.fields:
                if field.name not in {"id", "trial"}:
                    value = getattr(row, field.name)
                    data[f"{prefix}-{i}-{field.name}"] = (
                        "" if value is None else (__import__("json").dumps(value) if field.name == "params" else value)
                    )
    return data | overrides


def test_an_admin_edit_leaves_a_history_row_with_the_user_and_the_reason(client, nct_trial):
    manager = UserFactory(username="dm", role=DATA_MANAGER)
    client.force_login(manager)
    url = reverse("admin:trial_trial_change", args=[nct_trial.pk])
    response = client.post(
        url,
        _change_form_data(
            nct_trial, sentinel_observation_days=10, change_reason="SRC asked for a longer sentinel period"
        ),
    )
    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else ""
    nct_trial.refresh_from_db()
    assert nct_trial.sentinel_observation_days == 10
    latest = nct_trial.history.latest()
    assert latest.history_user == manager
    assert latest.history_change_reason == "SRC asked for a longer sentinel period"
    assert latest.history_type == "~"


def test_an_admin_edit_without_a_reason_is_refused_and_changes_nothing(client, nct_trial):
    client.force_login(UserFactory(username="dm", role=DATA_MANAGER))
    url = reverse("admin:trial_trial_change", args=[nct_trial.pk])
    response = client.post(url, _change_form_data(nct_trial, sentinel_observation_days=10, change_reason=" "))
    assert response.status_code == 200
    assert "Give the reason for this change" in response.content.decode()
    nct_trial.refresh_from_db()
    assert nct_trial.sentinel_observation_days == 7


def test_the_history_page_shows_who_changed_what(client, nct_trial):
    client.force_login(UserFactory(username="dm", role=DATA_MANAGER))
    url = reverse("admin:trial_trial_change", args=[nct_trial.pk])
    client.post(url, _change_form_data(nct_trial, stagger_hours=48, change_reason="Slower stagger"))
    page = client.get(reverse("admin:trial_trial_history", args=[nct_trial.pk])).content.decode()
    assert "Slower stagger" in page and "dm" in page


def test_site_staff_can_read_the_protocol_in_the_admin_but_not_change_it(client, nct_trial):
    client.force_login(UserFactory(username="nurse", role=SITE_STAFF))
    url = reverse("admin:trial_trial_change", args=[nct_trial.pk])
    page = client.get(url)
    assert page.status_code == 200
    assert 'name="sentinel_observation_days"' not in page.content.decode()
    response = client.post(url, _change_form_data(nct_trial, sentinel_observation_days=1, change_reason="x"))
    assert response.status_code == 403
    nct_trial.refresh_from_db()
    assert nct_trial.sentinel_observation_days == 7


@pytest.mark.parametrize("extra", [0, 5])
def test_criteria_changelist_stays_at_a_constant_number_of_queries(
    client, nct_trial, django_assert_max_num_queries, extra
):
    from tests.factories import TrialFactory
    from trial.models import EligibilityCriterion

    for n in range(extra):
        other = TrialFactory()
        EligibilityCriterion.objects.create(
            trial=other, code="I1", kind="inclusion", text=f"t{n}", rule="consent", order=1
        )
    client.force_login(UserFactory(username="dm", role=DATA_MANAGER))
    with django_assert_max_num_queries(12):
        assert client.get(reverse("admin:trial_eligibilitycriterion_changelist")).status_code == 200


def test_a_stopped_trial_cannot_be_reopened_by_an_admin_edit(client, nct_trial):
    Trial.objects.filter(pk=nct_trial.pk).update(status=Trial.Status.STOPPED)
    nct_trial.refresh_from_db()
    client.force_login(UserFactory(username="dm", role=DATA_MANAGER))
    url = reverse("admin:trial_trial_change", args=[nct_trial.pk])
    client.post(url, _change_form_data(nct_trial, status="recruiting", change_reason="Reopen"))
    nct_trial.refresh_from_db()
    assert nct_trial.status == Trial.Status.STOPPED


@pytest.mark.parametrize(
    ("changes", "field"),
    [({"rule": "no_such_rule"}, "rule"), ({"params": {"min_bmi": "eighteen"}}, "params")],
)
def test_a_criterion_with_an_unknown_rule_or_unusable_params_is_refused(nct_trial, changes, field):
    from django.core.exceptions import ValidationError

    criterion = nct_trial.criteria.get(code="I3")
    for name, value in changes.items():
        setattr(criterion, name, value)
    with pytest.raises(ValidationError) as refused:
        criterion.full_clean()
    assert field in refused.value.message_dict


def test_a_site_time_zone_must_be_a_real_zone(nct_trial):
    from django.core.exceptions import ValidationError

    site = nct_trial.sites.get()
    site.time_zone = "Asia/Shangai"
    with pytest.raises(ValidationError, match="not an IANA time zone"):
        site.full_clean()

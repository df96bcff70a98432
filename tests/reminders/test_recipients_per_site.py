"""Reminders to a role at a site reach the role's users who see that site (trial.access), on both sides: the
e-mail (reminders.services.delivery) and the in-app list ("My reminders", GET /api/v1/reminders/)."""

from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from reminders import selectors, services
from tests.factories import SiteFactory, UserFactory, token_for
from trial.models import SiteAssignment, TrialAssignment

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 12, 2, 1, 0, tzinfo=UTC)


@pytest.fixture
def sites(db):
    """Two sites of one trial, a third of another trial; nobody assigned yet."""
    here = SiteFactory(name="Nanjing")
    there = SiteFactory(name="Suzhou", trial=here.trial)
    elsewhere = SiteFactory(name="Other trial's site")
    return here, there, elsewhere


@pytest.fixture
def staff(sites):
    """Who works where: a nurse and an investigator at each site of the trial, a nurse of the other trial, a nurse
    assigned nowhere, a nurse whose assignment ended, and the trial-wide roles."""
    here, there, elsewhere = sites
    users = {
        "nurse here": UserFactory(email="here@example.org", role="Site staff", sites=[here]),
        "nurse there": UserFactory(email="there@example.org", role="Site staff", sites=[there]),
        "nurse elsewhere": UserFactory(email="elsewhere@example.org", role="Site staff", sites=[elsewhere]),
        "nurse nowhere": UserFactory(email="nowhere@example.org", role="Site staff", sites=[]),
        "nurse who left": UserFactory(email="left@example.org", role="Site staff", sites=[here]),
        "investigator here": UserFactory(email="inv-here@example.org", role="Investigator", sites=[here]),
        "investigator there": UserFactory(email="inv-there@example.org", role="Investigator", sites=[there]),
        "committee member": UserFactory(email="dsmc@example.org", role="Safety committee"),
        "data manager": UserFactory(email="dm@example.org", role="Data manager"),
    }
    SiteAssignment.objects.filter(user=users["nurse who left"]).update(active=False)
    return users


def _schedule(site, kind, n=1, **kwargs):
    return services.reminder_schedule(
        kind=kind, subject=f"s:{kind}:{n}", subject_label=f"{kind} {n}", due_at=NOW - timedelta(minutes=1),
        trial=site.trial if site else None, site=site, **kwargs,
    )  # fmt: skip


def _delivered_to(reminder) -> list[str]:
    """The addresses one delivery of ``reminder`` goes to (it is claimed first, as the sweep does)."""
    services.reminders_sweep(publish=[].append, now=NOW)
    return services.reminder_recipients(reminder)


def _names(staff, addresses):
    by_address = {user.email: name for name, user in staff.items()}
    return sorted(by_address[a] for a in addresses)


@pytest.mark.parametrize(
    ("kind", "at", "receivers"),
    [
        # a participant's follow-up and safety kinds: the role's users assigned to that site
        ("visit-window-opens", "here", ["nurse here"]),
        ("visit-window-opens", "there", ["nurse there"]),
        ("reconsent", "here", ["nurse here"]),
        ("dlt-decision", "here", ["investigator here"]),
        ("sponsor-notice", "there", ["investigator there"]),
        # trial-wide kinds (the site only gives the time zone): the role's users at any site of the trial
        ("decision-effective", "here", ["nurse here", "nurse there"]),
        ("sentinel-ended", "there", ["nurse here", "nurse there"]),
        # the committee and the data manager see every site (trial.view_every_site)
        ("review-opened", "here", ["committee member"]),
        ("review-opened", "elsewhere", ["committee member"]),
        # no trial, no site: every active user of the role
        ("integrity-alert", None, ["data manager"]),
    ],
)
def test_a_role_at_a_site_is_e_mailed_to_the_roles_users_who_see_that_site(sites, staff, kind, at, receivers):
    site = dict(zip(["here", "there", "elsewhere"], sites, strict=True)).get(at)
    reminder = _schedule(site, kind)
    assert _names(staff, _delivered_to(reminder)) == receivers


def test_another_sites_nurse_an_unassigned_nurse_and_an_ended_assignment_get_nothing(sites, staff, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    from django.core import mail

    mail.outbox = []
    here = sites[0]
    reminder = _schedule(here, "visit-window-closes")
    services.reminders_sweep(publish=[].append, now=NOW)
    assert services.reminder_deliver(reminder_id=reminder.pk) == "sent"
    [message] = mail.outbox
    assert message.to == ["here@example.org"]


def test_a_site_with_no_assigned_user_of_the_role_fails_the_attempt_rather_than_mailing_other_sites(sites, staff):
    lonely = SiteFactory(name="Wuxi", trial=sites[0].trial)  # nobody works here (the factory assigns no one new)
    SiteAssignment.objects.filter(site=lonely).delete()
    reminder = _schedule(lonely, "visit-missed")
    services.reminders_sweep(publish=[].append, now=NOW)
    assert services.reminder_deliver(reminder_id=reminder.pk) == "pending"
    assert "at its site" in type(reminder).objects.get(pk=reminder.pk).last_error


def test_a_sponsor_reading_the_whole_trial_is_not_made_a_recipient_of_a_site_role(sites, staff):
    sponsor = UserFactory(email="sponsor@example.org", role="Sponsor", trials=[sites[0].trial])
    assert TrialAssignment.objects.filter(user=sponsor).exists()
    reminder = _schedule(sites[0], "visit-window-opens")
    assert "sponsor@example.org" not in _delivered_to(reminder)


def test_a_muted_kind_counts_only_the_recipients_at_the_site(sites, staff):
    """Everyone at the site muted it: delivered in-app only, even though a nurse elsewhere did not mute it."""
    services.reminder_mute(user=staff["nurse here"], kind="visit-window-opens", by=staff["nurse here"])
    reminder = _schedule(sites[0], "visit-window-opens")
    assert _delivered_to(reminder) == []
    assert services.reminder_deliver(reminder_id=reminder.pk) == "sent"


# --- the in-app side: the same rule ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reader", "sees"),
    [
        ("nurse here", ["decision-effective", "visit-window-opens here"]),
        ("nurse there", ["decision-effective", "visit-window-opens there"]),
        ("nurse elsewhere", ["visit-window-opens elsewhere"]),
        ("nurse nowhere", []),
        ("nurse who left", []),
        ("investigator here", ["dlt-decision here"]),
        ("investigator there", []),
        ("committee member", ["review-opened"]),
        ("data manager", ["integrity-alert"]),
    ],
)
def test_my_reminders_follow_the_same_rule_as_the_e_mail(sites, staff, reader, sees):
    here, there, elsewhere = sites
    labels = {}
    for site, name in ((here, "here"), (there, "there"), (elsewhere, "elsewhere")):
        labels[_schedule(site, "visit-window-opens", n=name).pk] = f"visit-window-opens {name}"
    labels[_schedule(here, "dlt-decision", n="here").pk] = "dlt-decision here"
    labels[_schedule(here, "decision-effective").pk] = "decision-effective"
    labels[_schedule(here, "review-opened").pk] = "review-opened"
    labels[_schedule(None, "integrity-alert").pk] = "integrity-alert"
    mine = selectors.reminders_for_user(staff[reader]).values_list("pk", flat=True)
    assert sorted(labels[pk] for pk in mine) == sees


def test_the_api_and_my_reminders_show_another_sites_nurse_nothing_of_this_site(sites, staff, client):
    here = sites[0]
    reminder = _schedule(here, "visit-window-opens")
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {token_for(staff['nurse there'])}")
    assert api.get("/api/v1/reminders/").json()["results"] == []
    assert api.get(f"/api/v1/reminders/{reminder.pk}/").status_code == 404
    api.credentials(HTTP_AUTHORIZATION=f"Token {token_for(staff['nurse here'])}")
    assert [r["id"] for r in api.get("/api/v1/reminders/").json()["results"]] == [reminder.pk]
    client.force_login(staff["nurse there"])
    page = client.get(reverse("admin:reminders_myreminder_changelist")).content.decode()
    assert reminder.subject_label not in page
    client.force_login(staff["nurse here"])
    assert reminder.subject_label in client.get(reverse("admin:reminders_myreminder_changelist")).content.decode()


def test_an_ended_assignment_stops_both_the_mail_and_the_list(sites, staff):
    here = sites[0]
    reminder = _schedule(here, "visit-window-opens")
    nurse = staff["nurse here"]
    SiteAssignment.objects.filter(user=nurse, site=here).update(active=False)
    assert "here@example.org" not in _delivered_to(reminder)
    assert not selectors.reminders_for_user(type(nurse).objects.get(pk=nurse.pk)).exists()

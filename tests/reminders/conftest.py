import pytest
from django.core import mail

from tests.factories import SiteFactory, UserFactory


@pytest.fixture
def site(db):
    return SiteFactory(time_zone="Asia/Shanghai")


@pytest.fixture
def nurse(db):
    return UserFactory(username="nurse", email="nurse@example.org", role="Site staff")


@pytest.fixture
def investigator(db):
    return UserFactory(username="inv", email="inv@example.org", role="Investigator")


@pytest.fixture
def outbox(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    mail.outbox = []
    return mail.outbox


def claimed(result_ids):
    """A publish function for reminders_sweep that records what it would send."""
    return result_ids.append

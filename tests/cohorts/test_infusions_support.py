"""Builders shared by the infusion, visit, deviation, API and admin tests (this module holds no tests).

Everything happens at fixed moments at the site (Asia/Shanghai) with the clock frozen, so the
hold messages and the visit dates are exact: the cohort is enrolled on 2026-11-25 07:00 and the
sentinel is infused 08:00–09:00 the same day.

Volumes are realistic for the protocol's 20–25 drops/min with the default 20 drops/mL set: 70 mL in
the default hour averages 23.3 drops/min (70 mL/h), so finishing opens no average-rate deviation.
"""

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import time_machine

from cohorts import services
from cohorts.models import Cohort, Infusion, Participant
from tests.factories import eligible_participant, staff_users

SH = ZoneInfo("Asia/Shanghai")
T0 = dt.datetime(2026, 11, 25, 8, 0, tzinfo=SH)
HOUR = dt.timedelta(hours=1)
DAY = dt.timedelta(days=1)
VOLUME_PER_HOUR = Decimal("70.0")  # mL: 23.3 drops/min over an hour with a 20 drops/mL set


def frozen(moment: dt.datetime):
    """The clock stands still at ``moment`` (``timezone.now()`` answers it)."""
    return time_machine.travel(moment, tick=False)


def nurse():
    from django.contrib.auth import get_user_model

    return get_user_model().objects.filter(username="coordinator").first() or staff_users()[0]


def enrolled_cohort(trial, *, size: int = 3, when: dt.datetime = T0 - HOUR, prefix: str = "P"):
    """The trial's first cohort opened and ``size`` participants enrolled (the first is the sentinel)."""
    with frozen(when):
        coordinator, investigator = staff_users()
        cohort = services.cohort_open_first(trial=trial, by=investigator)
        participants: list[Participant] = []
        for n in range(size):
            participant = eligible_participant(trial, number=f"{prefix}{n + 1:02d}")
            services.enroll_participant(participant=participant, cohort=cohort, by=coordinator)
            participant.refresh_from_db()
            participants.append(participant)
    cohort.refresh_from_db()
    return cohort, participants


def start(participant: Participant, when: dt.datetime, **overrides) -> Infusion:
    with frozen(when):
        kwargs = {
            "participant": participant,
            "by": nurse(),
            "started_at": when,
            "product_lot": "HM-2611-01",
            "product_expiry": when + 6 * HOUR,
            "volume_ml": VOLUME_PER_HOUR,
        }
        return services.infusion_start(**(kwargs | overrides))


def complete(infusion: Infusion, when: dt.datetime, *, cells: int | None = None, **overrides) -> Infusion:
    with frozen(when):
        kwargs = {
            "infusion": infusion,
            "ended_at": when,
            "volume_ml": VOLUME_PER_HOUR,
            "by": nurse(),
            "cells_administered": infusion.cells_planned if cells is None else cells,
        }
        return services.infusion_complete(**(kwargs | overrides))


def infuse(participant: Participant, when: dt.datetime, *, minutes: int = 60, **overrides) -> Infusion:
    """Start at ``when`` and complete ``minutes`` later."""
    return complete(start(participant, when), when + dt.timedelta(minutes=minutes), **overrides)


# The cohort's infusions as the protocol allows them: the sentinel on day 0, the second after the
# 7-day observation, the third 25 h after the second ended.
SCHEDULE = (T0, T0 + 8 * DAY, T0 + 9 * DAY + 2 * HOUR)


def infuse_cohort(participants: list[Participant]) -> list[Infusion]:
    return [infuse(p, when) for p, when in zip(participants, SCHEDULE, strict=False)]


def record_visits(participants: list[Participant], *, until: dt.date) -> int:
    """Record every scheduled visit of ``participants`` with a target on or before ``until`` (site date) as
    done on its target day, as the site would (the clock at noon that day). Returns how many."""
    from cohorts.models import FollowUpVisit

    visits = FollowUpVisit.objects.filter(
        participant__in=participants, status=FollowUpVisit.Status.SCHEDULED, target_date__lte=until
    ).order_by("target_date", "pk")
    count = 0
    for visit in visits:
        with frozen(dt.datetime.combine(visit.target_date, dt.time(12), tzinfo=SH)):
            services.visit_complete(visit=visit, on=visit.target_date, by=nurse())
        count += 1
    return count


def refresh(*objects):
    for obj in objects:
        obj.refresh_from_db()
    return objects


__all__ = [
    "DAY",
    "HOUR",
    "SCHEDULE",
    "SH",
    "T0",
    "VOLUME_PER_HOUR",
    "Cohort",
    "complete",
    "enrolled_cohort",
    "frozen",
    "infuse",
    "infuse_cohort",
    "nurse",
    "record_visits",
    "refresh",
    "start",
]

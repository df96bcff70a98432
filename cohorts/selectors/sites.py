"""Time where the participant is seen: the site's zone, today there, the infusion day."""

import zoneinfo
from datetime import date, datetime

from django.utils import timezone

from cohorts.models import (
    Infusion,
    Participant,
)


def site_today(participant: Participant) -> date:
    """Today's date where the participant is seen (the site's time zone)."""
    return timezone.localdate(timezone=zoneinfo.ZoneInfo(participant.site.time_zone))


def site_zone(participant: Participant) -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(participant.site.time_zone)


def format_site_time(moment: datetime, zone: zoneinfo.ZoneInfo) -> str:
    """``2026-12-02 09:00 (Asia/Shanghai)``: how a hold's end is told to the nurse."""
    return f"{moment.astimezone(zone):%Y-%m-%d %H:%M} ({zone.key})"


def infusion_day(infusion: Infusion, zone: zoneinfo.ZoneInfo) -> date:
    """Day 0 of the DLT window and the visit schedule: the site's date the infusion started."""
    return timezone.localdate(infusion.started_at, timezone=zone)

"""Follow-up visits and protocol deviations, with their joins."""

from django.db.models import QuerySet

from cohorts.models import (
    FollowUpVisit,
    LostToFollowUp,
    ProtocolDeviation,
)


def followup_visit_list() -> QuerySet[FollowUpVisit]:
    return FollowUpVisit.objects.select_related("participant__site", "infusion__cohort", "recorded_by").order_by(
        "target_date", "participant_id", "day_offset"
    )


def deviation_list() -> QuerySet[ProtocolDeviation]:
    return ProtocolDeviation.objects.select_related(
        "trial", "participant", "detected_by", "closed_by", "infusion", "visit", "drip_rate_reading"
    ).order_by("-detected_at", "-pk")


def lost_to_follow_up_list() -> QuerySet[LostToFollowUp]:
    return LostToFollowUp.objects.select_related("participant", "last_missed_visit", "decided_by").order_by(
        "-flagged_at", "-pk"
    )

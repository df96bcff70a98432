from django.conf import settings
from django.db.models import Prefetch, QuerySet

from trial.models import DoseLevel, EligibilityCriterion, Site, Trial, VisitDefinition


def trial_list() -> QuerySet[Trial]:
    """Trials with everything the API shows, in a constant number of queries."""
    return Trial.objects.prefetch_related(
        Prefetch("dose_levels", queryset=DoseLevel.objects.order_by("level")),
        Prefetch("sites", queryset=Site.objects.order_by("name")),
        Prefetch("criteria", queryset=EligibilityCriterion.objects.order_by("order")),
        Prefetch("visit_schedule", queryset=VisitDefinition.objects.order_by("day_offset")),
    ).order_by("registry_id")


def display_time_zone() -> str:
    """The zone times are shown in: the site's when all sites share one zone, else settings' default."""
    # order_by(): the model's ordering would make DISTINCT run over (zone, trial, name), and two sites of one
    # zone could then fill both rows while a third site has another zone.
    zones = set(Site.objects.order_by().values_list("time_zone", flat=True).distinct()[:2])
    return zones.pop() if len(zones) == 1 else settings.TIME_ZONE

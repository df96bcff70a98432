"""The follow-up lifecycle on a schedule: beat runs ``sweep_follow_up``, which sends one task per trial."""

from celery import shared_task
from django.db import transaction

from cohorts import services
from trial.models import Trial


@shared_task(name="cohorts.tasks.sweep_follow_up")
def sweep_follow_up() -> list[int]:
    """Send ``sweep_trial_follow_up`` for every trial that is not completed (ids only, after commit)."""
    ids = list(Trial.objects.exclude(status=Trial.Status.COMPLETED).order_by("pk").values_list("pk", flat=True))
    for trial_id in ids:
        transaction.on_commit(lambda trial_id=trial_id: sweep_trial_follow_up.delay(trial_id))
    return ids


@shared_task(name="cohorts.tasks.sweep_trial_follow_up")
def sweep_trial_follow_up(trial_id: int) -> dict:
    """Overdue visits of one trial become missed (a deviation each); participants complete or are flagged lost
    to follow-up. Safe to run twice and from several workers: the row locks and unique keys decide."""
    return services.follow_up_sweep(trial_id=trial_id).as_dict()

from celery import shared_task

from core.actors import BEAT, system_actor
from core.history import acting_as
from safety.services import reviews_open_due


@shared_task(name="safety.tasks.open_due_reviews")
def open_due_reviews() -> list[int]:
    """Open the safety review of every cohort whose DLT windows are all complete.

    Safe to run twice and from several workers: the cohort row is locked and only an observing cohort
    opens a review (then it is in review); the partial unique index allows one open review per cohort.
    """
    actor = system_actor(BEAT)
    with acting_as(actor, "Scheduled task safety.tasks.open_due_reviews"):
        return [review.pk for review in reviews_open_due(by=actor)]

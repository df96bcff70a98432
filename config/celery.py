import os

from celery import Celery
from celery.signals import task_postrun, task_prerun
from django.db import close_old_connections

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("cohort_manager")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@task_prerun.connect
@task_postrun.connect
def _close_old_connections(sender=None, **kwargs) -> None:
    """Around each task, as Django does around each request: a connection in error or older than
    ``DB_CONN_MAX_AGE`` is closed (the next query opens a new one); a healthy one is kept. With
    ``CELERY_DB_REUSE_MAX`` set, Celery's own fix-up no longer closes it after every task."""
    if sender is not None and getattr(sender.request, "is_eager", False):
        return
    close_old_connections()

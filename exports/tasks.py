from celery import shared_task

from exports.services import export_job_run


@shared_task(name="exports.tasks.run_export")
def run_export(job_id: int) -> str:
    """Write one export job's file. Safe to run twice: only a queued job is claimed."""
    return export_job_run(job_id=job_id).state

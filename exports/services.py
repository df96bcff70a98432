"""Export jobs: the admin's way to an export, run by a Celery task with its progress in the database.

``export_job_start`` checks the role and the input, creates the job with its total and sends the task
after commit; ``export_job_run`` (the task) claims the job, writes the file under ``var/exports/``,
updates ``records_done`` as it goes (the admin page polls it) and renames the file into place when done.
Safe to run twice: only a queued job is claimed.
"""

import contextlib
import io
import logging
import zipfile
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from core.errors import InvalidInput, PermissionDenied, require_permission
from exports import dossier, fhir, sdtm, selectors
from exports.models import ExportJob
from exports.permissions import SDTM_DOMAINS, audience_for, may_export
from trial.access import require_trial_access

log = logging.getLogger(__name__)
PROGRESS_EVERY = 200  # records between two progress updates
DOSSIERS = (ExportJob.Kind.DOSSIER_PDF, ExportJob.Kind.DOSSIER_JSON)


def export_dir() -> Path:
    folder = Path(settings.VAR_DIR) / "exports"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def job_path(job: ExportJob) -> Path:
    return export_dir() / job.file_name


def _domains_for(user) -> list[str]:
    return [domain for domain in SDTM_DOMAINS if may_export(user, domain)]


def export_job_check(*, trial, kind: str, review, by) -> None:
    """What starting the job would refuse, raised as a DomainError (the admin form shows it)."""
    require_permission(by, "exports.add_exportjob", "start exports")
    require_trial_access(by, trial_id=trial.pk)
    if kind not in ExportJob.Kind.values:
        raise InvalidInput("invalid", "Choose what to export.", {"kind": ["Unknown export."]})
    if kind in DOSSIERS:
        if review is None:
            raise InvalidInput("review_required", "A dossier is of one safety review: choose it.",
                               {"review": ["Required for a dossier."]})  # fmt: skip
        if review.trial_id != trial.pk:
            raise InvalidInput("wrong_trial", "That review belongs to another trial.", {"review": ["Wrong trial."]})
    elif review is not None:
        raise InvalidInput("invalid", "Only a dossier is of a review.", {"review": ["Only for a dossier."]})
    allowed = {ExportJob.Kind.FHIR: may_export(by, "fhir"), ExportJob.Kind.SDTM: bool(_domains_for(by)),
               ExportJob.Kind.DOSSIER_PDF: may_export(by, "dossier"),
               ExportJob.Kind.DOSSIER_JSON: may_export(by, "dossier")}[kind]  # fmt: skip
    if not allowed:
        raise PermissionDenied("permission_denied", "Your role does not allow this export.")


def _total(job: ExportJob) -> int:
    audience = audience_for(job.requested_by)
    if job.kind == ExportJob.Kind.FHIR:
        return fhir.record_count(job.trial, audience)
    if job.kind == ExportJob.Kind.SDTM:
        return sum(sdtm.record_count(d, job.trial, audience) for d in _domains_for(job.requested_by))
    return 1


def export_job_start(*, trial, kind: str, review=None, by) -> ExportJob:
    export_job_check(trial=trial, kind=kind, review=review, by=by)
    from exports.tasks import run_export

    with transaction.atomic():
        job = ExportJob(trial=trial, kind=kind, review=review, requested_by=by, requested_at=timezone.now())
        job.records_total = _total(job)
        job.save()
        transaction.on_commit(lambda: run_export.delay(job.pk))
    return job


def _progress(job: ExportJob, done: int) -> None:
    ExportJob.objects.filter(pk=job.pk).update(records_done=min(done, job.records_total))


def _counted(job: ExportJob, chunks, done: int = 0):
    """Pass the chunks through, one record each (after the first, a header), reporting progress."""
    for n, chunk in enumerate(chunks):
        if n and (done + n) % PROGRESS_EVERY == 0:
            _progress(job, done + n)
        yield chunk


def _write(job: ExportJob, target: Path) -> None:
    audience = audience_for(job.requested_by)
    trial = job.trial
    if job.kind == ExportJob.Kind.FHIR:
        with target.open("w", encoding="utf-8") as out:
            for chunk in _counted(job, fhir.bundle_json(trial, audience)):
                out.write(chunk)
    elif job.kind == ExportJob.Kind.SDTM:
        done = 0
        with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for domain in _domains_for(job.requested_by):
                with (
                    archive.open(f"{domain.lower()}.csv", "w") as raw,
                    io.TextIOWrapper(raw, "utf-8", newline="") as out,
                ):
                    for chunk in _counted(job, sdtm.domain_csv(domain, trial, audience), done):
                        out.write(chunk)
                done += sdtm.record_count(domain, trial, audience)
                _progress(job, done)
            with archive.open("define.csv", "w") as raw, io.TextIOWrapper(raw, "utf-8", newline="") as out:
                out.writelines(sdtm.define_csv(audience))
    else:
        data = dossier.dossier_data(selectors.review_for_dossier(job.review_id), audience)
        if job.kind == ExportJob.Kind.DOSSIER_PDF:
            target.write_bytes(dossier.dossier_pdf(data))
        else:
            target.write_text(dossier.dossier_json(data), encoding="utf-8")


SUFFIX = {"fhir": "fhir-r4.json", "sdtm": "sdtm.zip", "dossier_pdf": "dossier.pdf", "dossier_json": "dossier.json"}


def export_job_run(*, job_id: int) -> ExportJob:
    """Claim a queued job, write its file, mark it done (or failed with the reason)."""
    claimed = ExportJob.objects.filter(pk=job_id, state=ExportJob.State.QUEUED).update(
        state=ExportJob.State.RUNNING, started_at=timezone.now()
    )
    job = ExportJob.objects.select_related("trial", "requested_by").get(pk=job_id)
    if not claimed:
        return job  # another worker has it, or it already ran
    review = f"-review-{job.review_id}" if job.review_id else ""
    name = f"{job.pk:06d}-{job.trial.registry_id}{review}-{SUFFIX[job.kind]}"
    final, partial = export_dir() / name, export_dir() / f"{name}.part"
    try:
        _write(job, partial)
        partial.replace(final)
    except Exception as exc:  # the job records why; the worker keeps running
        log.exception("Export %s failed", job.pk)
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()
        ExportJob.objects.filter(pk=job.pk).update(state=ExportJob.State.FAILED, finished_at=timezone.now(),
                                                   error=f"{type(exc).__name__}: {exc}"[:2000])  # fmt: skip
    else:
        ExportJob.objects.filter(pk=job.pk).update(state=ExportJob.State.DONE, finished_at=timezone.now(),
                                                   records_done=job.records_total, file_name=name)  # fmt: skip
    job.refresh_from_db()
    return job

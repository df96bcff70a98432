"""Exports from the admin: a job per export, run by the Celery task, with progress and a download."""

import io
import zipfile

import pytest

from core.roles import DATA_MANAGER, SAFETY_COMMITTEE, SPONSOR
from exports import services
from exports.models import ExportJob
from tests.dashboard.seed import VIEW, frozen, seed_trial
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def eager_celery():
    """Run the task in-process even when REDIS_URL points Celery at a real broker (CI has no worker here)."""
    from config.celery import app

    before = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = before


@pytest.fixture
def seeded(nct_trial, settings, tmp_path):
    settings.VAR_DIR = tmp_path  # the files go to var/exports/ in production
    return seed_trial(nct_trial)


def test_a_data_manager_exports_every_sdtm_domain_as_a_zip_from_the_admin(
    seeded, client, django_capture_on_commit_callbacks, eager_celery
):
    user = UserFactory(username="dm1", role=DATA_MANAGER)
    with frozen(VIEW):
        client.force_login(user)
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post("/admin/exports/exportjob/add/", {"trial": seeded.trial.pk, "kind": "sdtm"})
        job = ExportJob.objects.get()
        assert response.status_code == 302 and response.url == f"/admin/exports/exportjob/{job.pk}/change/"
        page = client.get(response.url).content.decode()
        download = client.get(f"/admin/exports/exportjob/{job.pk}/download/")
    assert job.state == ExportJob.State.DONE and job.records_done == job.records_total > 10
    assert f"{job.records_total} of {job.records_total} records (100 %)" in page
    assert 'http-equiv="refresh"' not in page  # done: the page stops refreshing
    archive = zipfile.ZipFile(io.BytesIO(b"".join(download.streaming_content)))
    assert sorted(archive.namelist()) == ["ae.csv", "define.csv", "dm.csv", "ds.csv", "ex.csv", "ie.csv"]
    assert archive.read("dm.csv").decode().startswith("STUDYID,DOMAIN,USUBJID,SUBJID,")


def test_a_queued_job_shows_its_progress_and_refreshes_itself(seeded, client):
    user = UserFactory(username="src-reader", role=SAFETY_COMMITTEE)
    with frozen(VIEW):
        client.force_login(user)
        job = services.export_job_start(trial=seeded.trial, kind="fhir", by=user)  # on-commit task not run: queued
        page = client.get(f"/admin/exports/exportjob/{job.pk}/change/").content.decode()
    assert 'http-equiv="refresh"' in page and f"0 of {job.records_total} records (0 %)" in page


def test_the_task_writes_a_committee_members_dossier_once_even_when_run_twice(seeded):
    user = UserFactory(username="src-reader", role=SAFETY_COMMITTEE)
    with frozen(VIEW):
        job = services.export_job_start(trial=seeded.trial, kind="dossier_pdf", review=seeded.escalation, by=user)
        first = services.export_job_run(job_id=job.pk)
        again = services.export_job_run(job_id=job.pk)
    assert first.state == again.state == ExportJob.State.DONE and first.finished_at == again.finished_at
    assert services.job_path(first).read_bytes().startswith(b"%PDF")


def test_a_dossier_job_without_its_review_is_refused_on_the_form(seeded, client):
    with frozen(VIEW):
        client.force_login(UserFactory(username="dm1", role=DATA_MANAGER))
        response = client.post("/admin/exports/exportjob/add/", {"trial": seeded.trial.pk, "kind": "dossier_pdf"})
    assert response.status_code == 200 and "A dossier is of one safety review" in response.content.decode()
    assert not ExportJob.objects.exists()


def test_nobody_downloads_another_readers_export_and_sponsors_have_no_admin(seeded, client):
    owner = UserFactory(username="dm1", role=DATA_MANAGER)
    with frozen(VIEW):
        job = services.export_job_run(job_id=services.export_job_start(trial=seeded.trial, kind="fhir", by=owner).pk)
        client.force_login(UserFactory(username="dm2", role=DATA_MANAGER))
        assert client.get(f"/admin/exports/exportjob/{job.pk}/download/").status_code == 403
        client.force_login(UserFactory(username="sponsor1", role=SPONSOR, is_staff=False))
        assert client.get("/admin/exports/exportjob/add/").status_code == 302  # to the admin login

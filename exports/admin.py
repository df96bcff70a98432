"""Exports in the admin: start one (Export jobs → Add), watch its progress, download the file.

Adding a job calls ``exports.services.export_job_start``; a refusal comes back on the form. The job's
page shows records done of the total and refreshes itself (an HTML meta refresh: no script) until the
file is ready. Each user sees and downloads only the jobs they started: an export holds what the
requester's role may see, not what another reader's may.
"""

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import FileResponse, Http404
from django.urls import path, reverse
from django.utils.html import format_html

from core.errors import DomainError
from exports import services
from exports.models import ExportJob
from safety.models import SafetyReview


class ExportJobForm(forms.ModelForm):
    class Meta:
        model = ExportJob
        fields = ("trial", "kind", "review")

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        if "review" in self.fields:  # the add form (a job's own page is read-only)
            self.fields["review"].queryset = SafetyReview.objects.select_related("cohort", "trial").order_by(
                "-opened_at"
            )

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        try:
            services.export_job_check(trial=data["trial"], kind=data["kind"], review=data.get("review"), by=self.user)
        except DomainError as refusal:
            raise ValidationError(refusal.message) from None
        return data


@admin.register(ExportJob)
class ExportJobAdmin(admin.ModelAdmin):
    form = ExportJobForm
    list_display = ("id", "kind", "trial", "review", "state", "progress", "requested_at", "download")
    list_filter = ("kind", "state")
    list_select_related = ("trial", "review__cohort")
    readonly_fields = ("trial", "kind", "review", "state", "progress", "requested_at", "started_at", "finished_at",
                       "error", "download")  # fmt: skip
    change_form_template = "admin/exports/exportjob/change_form.html"

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)

        class WithUser(form):
            def __init__(self, *args, **kw):
                super().__init__(*args, user=request.user, **kw)

        return WithUser

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields if obj else ()

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        return queryset if request.user.is_superuser else queryset.filter(requested_by=request.user)

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        job = services.export_job_start(trial=obj.trial, kind=obj.kind, review=obj.review, by=request.user)
        obj.pk, obj.requested_by, obj.requested_at = job.pk, job.requested_by, job.requested_at

    def response_add(self, request, obj, post_url_continue=None):
        self.message_user(request, f"Export {obj.pk} started: this page shows its progress.")
        from django.shortcuts import redirect

        return redirect(reverse("admin:exports_exportjob_change", args=[obj.pk]))

    @admin.display(description="progress")
    def progress(self, job: ExportJob) -> str:
        if not job.records_total:
            return "—"
        return f"{job.records_done} of {job.records_total} records ({100 * job.records_done // job.records_total} %)"

    @admin.display(description="file")
    def download(self, job: ExportJob):
        if job.state != ExportJob.State.DONE:
            return job.get_state_display()
        return format_html('<a href="{}">Download {}</a>', reverse("admin:exports_exportjob_download", args=[job.pk]),
                           job.file_name)  # fmt: skip

    def get_urls(self):
        return [
            path("<int:pk>/download/", self.admin_site.admin_view(self.download_view),
                 name="exports_exportjob_download"),
            *super().get_urls(),
        ]  # fmt: skip

    def download_view(self, request, pk: int):
        job = self.get_queryset(request).filter(pk=pk).first()
        if job is None or not self.has_view_permission(request, job):
            raise PermissionDenied
        if job.state != ExportJob.State.DONE or not services.job_path(job).is_file():
            raise Http404("The export is not ready.")
        return FileResponse(services.job_path(job).open("rb"), as_attachment=True, filename=job.file_name)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        job = self.get_queryset(request).filter(pk=object_id).first()
        running = job is not None and job.state in (ExportJob.State.QUEUED, ExportJob.State.RUNNING)
        return super().change_view(request, object_id, form_url, {**(extra_context or {}), "refresh": running})

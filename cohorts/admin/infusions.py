"""Infusion at the bedside: start, drip-rate readings, vital signs, interruptions, finish.

Every write calls a service. When a service refuses (a hold, an expired product, a malformed rate),
the transaction of the admin view is rolled back and the same form is shown again, with the nurse's
input and the refusal in plain words (``ServiceRefusalMixin``).
"""

from django.contrib import admin, messages
from django.db.models import Count, Q
from django.utils.html import format_html, format_html_join

from cohorts import selectors, services
from cohorts.admin.cohorts import CohortListFilter
from cohorts.admin.data_lock import DataLockAdminMixin
from cohorts.admin.infusion_forms import (
    DripRateReadingInline,
    InfusionFinishForm,
    InfusionStartForm,
    InterruptionInline,
    VitalSignsInline,
    rate_guide,
)
from cohorts.models import (
    Cohort,
    DripRateReading,
    Infusion,
    InfusionInterruption,
    Participant,
    ProtocolDeviation,
    VitalSigns,
)
from core.admin import (
    AuditedAdmin,
    ServiceRefusalMixin,
)
from core.cleaning import plain_number
from core.paginators import LargeTablePaginator


@admin.register(Infusion)
class InfusionAdmin(DataLockAdminMixin, ServiceRefusalMixin, AuditedAdmin):
    paginator = LargeTablePaginator  # large tables: keys first, count estimated (core.paginators)
    show_full_result_count = False
    list_display = (
        "participant",
        "cohort_dose",
        "status",
        "started_at",
        "ended_at",
        "cells",
        "rate_flags",
        "administered_by",
    )
    list_filter = ("status", "cohort__trial", ("cohort", CohortListFilter))
    search_fields = ("participant__study_id", "product_lot")
    list_select_related = ("participant", "cohort__dose_level", "administered_by")
    date_hierarchy = "started_at"
    inlines = (DripRateReadingInline, VitalSignsInline, InterruptionInline)
    START_FIELDS = (
        "participant",
        "started_at",
        "product_lot",
        "product_expiry",
        "cells_in_product",
        "set_drop_factor",
        "volume_to_give_ml",
        "premedication",
    )
    RECORD_FIELDS = (
        "participant",
        "cohort",
        "dose_level",
        "status",
        "started_at",
        "ended_at",
        "product_lot",
        "product_expiry",
        "cells_planned",
        "cells_administered",
        "volume_planned_ml",
        "volume_ml",
        "drop_factor",
        "derived",
        "average_rate",
        "premedication",
        "stop_reason",
        "administered_by",
    )

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(flagged_count=Count("readings", filter=Q(readings__out_of_range=True)))
        )

    def get_form(self, request, obj=None, change=False, **kwargs):
        kwargs["form"] = InfusionStartForm if obj is None else InfusionFinishForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fieldsets(self, request, obj=None):
        if obj is None:
            return [
                ("Hold: who can be infused now", {"fields": ["holds"]}),
                ("Product and start", {"fields": list(self.START_FIELDS)}),
                ("Drip rate", {"fields": ["rate_guide"]}),
            ]
        fieldsets = [("Infusion", {"fields": list(self.RECORD_FIELDS)}), ("Drip rate", {"fields": ["rate_guide"]})]
        if self.has_change_permission(request, obj):
            finish = [
                "outcome",
                "finished_at",
                "cells_given",
                "volume_given_ml",
                "why_stopped",
                "confirm_implausible_rate",
                "restart_at",
            ]
            fieldsets.append(("Finish or resume", {"fields": finish}))
        return fieldsets

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ("holds", "rate_guide")
        return (*self.RECORD_FIELDS, "rate_guide")

    def has_change_permission(self, request, obj=None):
        # A finished infusion is a record: it is read, not edited (corrections are new audited records).
        return super().has_change_permission(request, obj) and (obj is None or not obj.is_finished)

    # --- list columns -----------------------------------------------------------------------------

    @admin.display(description="Cohort / dose")
    def cohort_dose(self, obj):
        return f"{obj.cohort.sequence} — {obj.cohort.dose_level.label}"

    @admin.display(description="Cells given")
    def cells(self, obj):
        return obj.cells_administered_display or "—"

    @admin.display(description="Rate off protocol")
    def rate_flags(self, obj):
        parts = [f"{obj.flagged_count} reading(s)"] if obj.flagged_count else []
        if obj.average_rate_out_of_range:
            parts.append(f"average {obj.average_drops_per_minute} drops/min")
        return format_html('<strong style="color:#ba2121">{}</strong>', ", ".join(parts)) if parts else "—"

    # --- read-only panels -------------------------------------------------------------------------

    @admin.display(description="Derived")
    def derived(self, obj):
        minutes = obj.duration_minutes
        if minutes is None:
            return "Running"
        return f"{minutes:.0f} min running time (interruptions excluded); {obj.average_ml_per_hour or '—'} mL/h average"

    @admin.display(description="Average rate")
    def average_rate(self, obj):
        """volume × drop factor ÷ running minutes, checked against the protocol range copied when it finished."""
        if not obj.is_finished:
            return "Computed when the infusion finishes"
        rate = obj.average_drops_per_minute
        if rate is None:
            return "— (no volume given)" if obj.volume_ml == 0 else "— (not computed)"
        if not obj.average_rate_out_of_range:
            return f"{rate} drops/min ✔ in range"
        deviation = obj.deviations.filter(category="infusion_rate", source="system", drip_rate_reading=None).first()
        return format_html(
            '<strong style="color:#ba2121">{} drops/min ✘ outside {}–{}</strong>{}{}',
            rate,
            plain_number(obj.average_rate_min),
            plain_number(obj.average_rate_max),
            f" (deviation #{deviation.pk})" if deviation else "",
            " — confirmed as entered although implausible" if obj.implausible_rate_confirmed else "",
        )

    @admin.display(description="Protocol rate")
    def rate_guide(self, obj):
        if obj is not None and obj.pk:
            trial = obj.trial
            return rate_guide(
                {obj.participant_id: (trial.infusion_rate_min, trial.infusion_rate_max, obj.drop_factor)},
                participant_id=obj.participant_id,
            )
        ranges = {
            p.pk: (p.trial.infusion_rate_min, p.trial.infusion_rate_max, p.trial.default_drop_factor)
            for p in Participant.objects.filter(status=Participant.Status.ENROLLED).select_related("trial")
        }
        return rate_guide(ranges, participant_id=None)

    @admin.display(description="Holds now")
    def holds(self, obj):
        rows = []
        cohorts = Cohort.objects.filter(state__in=("open", "full", "paused")).select_related("trial", "dose_level")
        for cohort in cohorts:
            if cohort.state == Cohort.State.PAUSED:
                rows.append((str(cohort), "Paused by a stopping rule: no infusion until the committee resumes it."))
                continue
            for ready in selectors.cohort_infusion_readiness(cohort=cohort):
                who = f"{ready.participant}" + (" (sentinel)" if ready.is_sentinel else "")
                rows.append((f"{cohort} — {who}", ready.hold.message if ready.hold else "Can be infused now."))
        if not rows:
            return "Nobody is waiting for an infusion."
        body = format_html_join("", "<tr><td>{}</td><td>{}</td></tr>", rows)
        return format_html("<table><tr><th>Participant</th><th>Until when and why</th></tr>{}</table>", body)

    # --- writes: every one through a service -------------------------------------------------------

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        if not change:
            infusion = services.infusion_start(
                participant=data["participant"],
                by=request.user,
                started_at=data["started_at"],
                product_lot=data["product_lot"],
                product_expiry=data["product_expiry"],
                cells_planned=data.get("cells_in_product"),
                drop_factor=data.get("set_drop_factor"),
                volume_ml=data.get("volume_to_give_ml"),
                premedication=data.get("premedication") or "",
            )
            obj.pk = infusion.pk
            obj.refresh_from_db()
        elif data.get("restart_at"):
            services.infusion_resume(infusion=obj, restarted_at=data["restart_at"], by=request.user)

    def save_related(self, request, form, formsets, change):
        for formset in formsets:
            self.save_formset(request, form, formset, change)
        data = form.cleaned_data
        outcome = data.get("outcome") if change else ""
        if outcome:
            finish = services.infusion_complete if outcome == "complete" else services.infusion_stop_early
            extra = {"reason": data["why_stopped"]} if outcome == "stop_early" else {}
            finish(
                infusion=form.instance,
                ended_at=data["finished_at"],
                cells_administered=data["cells_given"],
                volume_ml=data["volume_given_ml"],
                by=request.user,
                confirm_implausible_rate=bool(data.get("confirm_implausible_rate")),
                **extra,
            )
            self.message_user(
                request,
                "Infusion finished: the DLT window started and the follow-up visits were planned.",
                messages.SUCCESS,
            )
            deviation = ProtocolDeviation.objects.filter(infusion=form.instance, category="dose").first()
            if deviation is not None:
                self.message_user(
                    request,
                    f"Dose outside the protocol: major deviation #{deviation.pk} opened. {deviation.description}",
                    messages.WARNING,
                )
            deviation = ProtocolDeviation.objects.filter(
                infusion=form.instance, category="infusion_rate", source="system", drip_rate_reading=None
            ).first()
            if deviation is not None:
                self.message_user(
                    request,
                    "Average rate outside the protocol: "
                    f"{deviation.get_severity_display().lower()} deviation #{deviation.pk} opened. "
                    f"{deviation.description}",
                    messages.WARNING,
                )

    def save_formset(self, request, form, formset, change):
        infusion = form.instance
        # What the admin's change message reads; the services below create the rows.
        formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
        for inline_form in formset.extra_forms:
            if not inline_form.has_changed() or not inline_form.cleaned_data:
                continue
            data = inline_form.cleaned_data
            if formset.model is DripRateReading:
                reading = services.drip_rate_record(
                    infusion=infusion,
                    observed_at=data["observed_at"],
                    drops_per_minute=data["drops_per_minute"],
                    by=request.user,
                )
                formset.new_objects.append(reading)
                if reading.out_of_range:
                    deviation = ProtocolDeviation.objects.get(drip_rate_reading=reading)
                    self.message_user(
                        request,
                        f"{deviation.description} It is flagged and deviation #{deviation.pk} "
                        f"({deviation.get_severity_display().lower()}) was opened.",
                        messages.WARNING,
                    )
            elif formset.model is VitalSigns:
                values = {name: data.get(name) for name in services.VITAL_FIELDS}
                formset.new_objects.append(
                    services.vital_signs_record(
                        infusion=infusion,
                        timepoint=data["timepoint"],
                        values=values,
                        measured_at=data["measured_at"],
                        by=request.user,
                    )
                )
            elif formset.model is InfusionInterruption:
                formset.new_objects.append(
                    services.infusion_interrupt(
                        infusion=infusion, stopped_at=data["stopped_at"], reason=data["reason"], by=request.user
                    )
                )
                if data.get("restarted_at"):
                    services.infusion_resume(infusion=infusion, restarted_at=data["restarted_at"], by=request.user)

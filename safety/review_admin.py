"""The committee's pages: a review with its snapshot, both recommendations, the outcomes per dose
level, the signatures so far, and the forms to propose a decision and to sign (password re-entered).

Imported from safety/admin.py. Every write calls safety.services; nothing here changes state itself.
"""

from django import forms
from django.contrib import admin, messages
from django.db.models import Count
from django.shortcuts import get_object_or_404, redirect
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from core.errors import DomainError
from safety import services
from safety.models import SafetyReview, SignOff


class ProposeForm(forms.Form):
    decision = forms.ChoiceField(choices=SafetyReview.Decision.choices)
    rationale = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3, "cols": 80}),
        required=False,
        help_text="Required when the decision differs from the protocol's recommendation.",
    )


class SignForm(forms.Form):
    meaning = forms.ChoiceField(choices=SignOff.Meaning.choices, widget=forms.RadioSelect)
    comment = forms.CharField(widget=forms.Textarea(attrs={"rows": 2, "cols": 80}), required=False)
    password = forms.CharField(
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
        help_text="Re-enter your password: it is your electronic signature (21 CFR Part 11 §11.200).",
    )


class SignOffInline(admin.TabularInline):
    model = SignOff
    fields = ("sequence", "signer_full_name", "meaning", "decision", "signed_at", "comment", "digest")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(SafetyReview)
class SafetyReviewAdmin(admin.ModelAdmin):
    change_form_template = "admin/safety/safetyreview/change_form.html"
    list_display = ("pk", "trial", "cohort_label", "kind", "state", "decision", "signatures_count", "opened_at")
    list_filter = ("state", "kind", "trial")
    list_select_related = ("trial", "cohort__dose_level")
    inlines = (SignOffInline,)
    fieldsets = (
        ("Review", {"fields": ("trial", "cohort", "kind", "reason", "state", "opened_at", "opened_by")}),
        ("What the committee sees", {"fields": ("dose_table", "recommendation_table", "event_summary")}),
        ("Decision", {"fields": ("decision", "rationale", "protocol_recommends", "proposed_by", "proposed_at",
                                 "decided_at", "resulting_cohort", "mtd_dose_level")}),
        ("Integrity", {"fields": ("snapshot_digest",)}),
    )  # fmt: skip
    readonly_fields = (
        "trial", "cohort", "kind", "reason", "state", "opened_at", "opened_by", "dose_table", "recommendation_table",
        "event_summary", "decision", "rationale", "protocol_recommends", "proposed_by", "proposed_at", "decided_at",
        "resulting_cohort", "mtd_dose_level", "snapshot_digest",
    )  # fmt: skip

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(signature_total=Count("signatures"))

    def has_add_permission(self, request):
        return False  # reviews open by the DLT windows, a stopping rule, or the chair (services)

    def has_change_permission(self, request, obj=None):
        return False  # proposals and signatures go through the forms below, never an edit

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="Cohort")
    def cohort_label(self, obj):
        return f"{obj.cohort.sequence} — {obj.cohort.dose_level.label}"

    @admin.display(description="Signatures")
    def signatures_count(self, obj):
        return obj.signature_total

    @admin.display(description="Per dose level")
    def dose_table(self, obj):
        rows = obj.snapshot.get("dose_levels", [])
        bars = format_html_join(
            "",
            "<tr><td>{} ({})</td><td>{}</td><td>{}</td><td>{}</td>"
            '<td><span style="display:inline-block;background:#c0392b;height:10px;width:{}px"></span>'
            '<span style="display:inline-block;background:#27ae60;height:10px;width:{}px"></span></td></tr>',
            ((r["dose_level"], r["label"], r["treated"], r["evaluable"], r["dlts"], 20 * r["dlts"],
              20 * (r["evaluable"] - r["dlts"])) for r in rows),
        )  # fmt: skip
        return format_html(
            "<table><tr><th>Dose level</th><th>Treated</th><th>Evaluable</th><th>DLTs</th><th>Outcomes "
            "(red DLT, green none)</th></tr>{}</table><p>Outcome string: <code>{}</code></p>",
            bars, obj.snapshot.get("outcomes") or "(no evaluable participant)",
        )  # fmt: skip

    @admin.display(description="Recommendations")
    def recommendation_table(self, obj):
        recs = obj.snapshot.get("recommendations", {})
        design = obj.snapshot.get("design")
        rows = format_html_join(
            "", "<tr><td>{}{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            ((name, " (protocol)" if name == design else " (second opinion)", rec.get("recommended_dose") or "none",
              "continue" if rec.get("continue") else "stop", rec.get("reason", "")) for name, rec in recs.items()),
        )  # fmt: skip
        return format_html("<table><tr><th>Design</th><th>Next dose</th><th></th><th>Reason</th></tr>{}</table>", rows)

    @admin.display(description="Adverse events")
    def event_summary(self, obj):
        ae = obj.snapshot.get("adverse_events", {})
        grades = ", ".join(f"grade {g}: {n}" for g, n in ae.get("by_worst_grade", {}).items())
        pending = ae.get("pending_dlt_candidates") or []
        return format_html(
            "{} events ({}); serious: {}; DLT candidates awaiting an investigator: {}",
            ae.get("total", 0), grades, ae.get("serious", 0), ", ".join(map(str, pending)) or "none",
        )  # fmt: skip

    @admin.display(description="The protocol's design recommends")
    def protocol_recommends(self, obj):
        return services.protocol_recommendation(obj)

    def get_urls(self):
        prefix = f"{self.opts.app_label}_{self.opts.model_name}"
        return [
            path("<int:pk>/sign/", self.admin_site.admin_view(self.sign_view), name=f"{prefix}_sign"),
            path("<int:pk>/propose/", self.admin_site.admin_view(self.propose_view), name=f"{prefix}_propose"),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        review = self.get_object(request, object_id)
        member = request.user.has_perm("safety.sign_review")
        extra = {
            "can_sign": member and review is not None and review.state == SafetyReview.State.OPEN
            and bool(review.decision) and not review.signatures.filter(signer=request.user).exists(),
            "can_propose": member and review is not None and review.state == SafetyReview.State.OPEN
            and not review.signatures.exists(),
            "sign_form": SignForm(),
            "propose_form": ProposeForm(
                initial={"decision": services.protocol_recommendation(review)} if review else {}
            ),
        }  # fmt: skip
        return super().change_view(request, object_id, form_url, {**(extra_context or {}), **extra})

    def _back(self, pk):
        return redirect(reverse("admin:safety_safetyreview_change", args=[pk]))

    def sign_view(self, request, pk):
        review = get_object_or_404(SafetyReview, pk=pk)
        if request.method != "POST":
            return self._back(pk)
        form = SignForm(request.POST)
        if not form.is_valid():
            self.message_user(request, "Choose approve or reject and re-enter your password.", messages.ERROR)
            return self._back(pk)
        try:
            signature = services.review_sign(
                review=review, user=request.user, password=form.cleaned_data["password"],
                meaning=form.cleaned_data["meaning"], comment=form.cleaned_data["comment"],
            )  # fmt: skip
        except DomainError as refused:
            self.message_user(request, f"Not signed: {refused.message}", messages.ERROR)
            return self._back(pk)
        review.refresh_from_db()
        outcome = {
            SafetyReview.State.EFFECTIVE: " Quorum reached: the decision has taken effect.",
            SafetyReview.State.REJECTED: " The review is rejected: its decision will not take effect.",
        }.get(review.state, " Waiting for more signatures (quorum and the chair).")
        self.message_user(request, f"Signed ({signature.get_meaning_display().lower()}) by "
                          f"{signature.signer_full_name} at {signature.signed_at:%Y-%m-%d %H:%M} UTC.{outcome}",
                          messages.SUCCESS)  # fmt: skip
        return self._back(pk)

    def propose_view(self, request, pk):
        review = get_object_or_404(SafetyReview, pk=pk)
        if request.method != "POST":
            return self._back(pk)
        form = ProposeForm(request.POST)
        if not form.is_valid():
            self.message_user(request, "Choose a decision.", messages.ERROR)
            return self._back(pk)
        try:
            services.review_propose(review=review, decision=form.cleaned_data["decision"],
                                    rationale=form.cleaned_data["rationale"], by=request.user)  # fmt: skip
        except DomainError as refused:
            self.message_user(request, f"Not proposed: {refused.message}", messages.ERROR)
        else:
            self.message_user(request, "Decision proposed: committee members can now sign.", messages.SUCCESS)
        return self._back(pk)

"""The committee's pages: a review with its snapshot, both recommendations, the outcomes per dose
level, the signatures so far, and the forms to propose a decision and to sign (password re-entered).

Registered by the ``safety.admin`` package. Every write calls safety.services; nothing here changes state.
"""

from django import forms
from django.contrib import admin, messages
from django.db.models import Count
from django.shortcuts import get_object_or_404, redirect
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from core.errors import DomainError
from safety import services
from safety.admin.dose_finding import ReviewDoseFindingMixin
from safety.models import SafetyReview, SignOff


class ProposeForm(forms.Form):
    decision = forms.ChoiceField(choices=SafetyReview.Decision.choices)
    rationale = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3, "cols": 80}),
        required=False,
        help_text="Required when the decision differs from the protocol's recommendation, when the MTD departs "
        "from the design's selection, and when overdue visits are acknowledged.",
    )
    mtd_level = forms.TypedChoiceField(
        label="MTD declared by the committee",
        required=False,
        coerce=int,
        empty_value=None,
        help_text="Only with 'End escalation': leave empty to record the design's MTD selection shown above.",
    )
    acknowledge_visits = forms.BooleanField(
        label="The rationale addresses the overdue safety visits listed above",
        required=False,
    )

    def __init__(self, *args, treated_levels=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["mtd_level"].choices = [
            ("", "— the design's selection —"),
            *((level, f"Dose level {level}") for level in treated_levels),
        ]


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


def _treated_levels(review: SafetyReview | None) -> list[int]:
    if review is None:
        return []
    return [d["dose_level"] for d in review.snapshot.get("dose_levels", []) if d.get("treated")]


@admin.register(SafetyReview)
class SafetyReviewAdmin(ReviewDoseFindingMixin, admin.ModelAdmin):
    change_form_template = "admin/safety/safetyreview/change_form.html"
    list_display = ("pk", "trial", "cohort_label", "kind", "state", "decision", "signatures_count", "opened_at")
    list_filter = ("state", "kind", "trial")
    list_select_related = ("trial", "cohort__dose_level")
    inlines = (SignOffInline,)
    fieldsets = (
        ("Review", {"fields": ("trial", "cohort", "kind", "reason", "state", "opened_at", "opened_by")}),
        (
            "What the committee sees",
            {
                "fields": (
                    "dose_table",
                    "recommendation_table",
                    "tite_boin_table",
                    "decision_tables",
                    "pathway_display",
                    "mtd_table",
                    "participant_table",
                    "event_summary",
                    "serious_table",
                    "dlt_table",
                    "visit_table",
                )
            },
        ),
        (
            "Decision",
            {
                "fields": (
                    "decision",
                    "rationale",
                    "protocol_recommends",
                    "proposed_by",
                    "proposed_at",
                    "decided_at",
                    "resulting_cohort",
                    "mtd_statement",
                    "mtd_departs_from_rule",
                    "acknowledged_visits",
                )
            },
        ),
        ("Integrity", {"fields": ("snapshot_digest",)}),
    )
    # Every field shown is read-only (the forms below write through services); mtd_dose_level is not shown.
    readonly_fields = (*(name for _, section in fieldsets for name in section["fields"]), "mtd_dose_level")

    class Media:
        css = {"all": ("safety/dosefinding.css",)}

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
            (
                (
                    r["dose_level"],
                    r["label"],
                    r["treated"],
                    r["evaluable"],
                    r["dlts"],
                    20 * r["dlts"],
                    20 * (r["evaluable"] - r["dlts"]),
                )
                for r in rows
            ),
        )
        return format_html(
            "<table><tr><th>Dose level</th><th>Treated</th><th>Evaluable</th><th>DLTs</th><th>Outcomes "
            "(red DLT, green none)</th></tr>{}</table><p>Outcome string: <code>{}</code></p>",
            bars,
            obj.snapshot.get("outcomes") or "(no evaluable participant)",
        )

    @admin.display(description="Adverse events")
    def event_summary(self, obj):
        ae = obj.snapshot.get("adverse_events", {})
        grades = ", ".join(f"grade {g}: {n}" for g, n in ae.get("by_worst_grade", {}).items())
        pending = ae.get("pending_dlt_candidates") or []
        return format_html(
            "{} events ({}); serious: {}; DLT candidates awaiting an investigator: {}",
            ae.get("total", 0),
            grades,
            ae.get("serious", 0),
            ", ".join(map(str, pending)) or "none",
        )

    @admin.display(description="MTD selection (over the data above)")
    def mtd_table(self, obj):
        selections = obj.snapshot.get("mtd_selection") or {obj.snapshot["design"]: services.review_mtd_selection(obj)}
        design = obj.snapshot.get("design")
        rows = format_html_join(
            "",
            "<tr><td>{}{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    name,
                    " (protocol)" if name == design else " (second opinion)",
                    sel.get("statement", ""),
                    sel.get("reason", ""),
                )
                for name, sel in selections.items()
            ),
        )
        return format_html(
            "<table><tr><th>Design</th><th>Records</th><th>Why</th></tr>{}</table>"
            "<p>The MTD is always a treated dose; a committee that declares another says why.</p>",
            rows,
        )

    @admin.display(description="Participants (evaluability)")
    def participant_table(self, obj):
        people = obj.snapshot.get("participants")
        if people is None:
            return "Not recorded in this snapshot."
        rows = format_html_join(
            "",
            '<tr><td>{}</td><td>{}</td><td>{}</td><td style="{}">{}</td><td>{}</td></tr>',
            (
                (
                    p["study_id"],
                    p["cohort"],
                    p["dose_level"],
                    "color:#ba2121;font-weight:bold" if p["evaluability"] == "not_evaluable" else "",
                    "needs replacement"
                    if p["evaluability"] == "not_evaluable"
                    else p["evaluability"].replace("_", " "),
                    p["reason"],
                )
                for p in people
            ),
        )
        return format_html(
            "<table><tr><th>Study ID</th><th>Cohort</th><th>Dose</th><th>Evaluable</th><th>Why</th></tr>{}</table>",
            rows,
        )

    @admin.display(description="Serious adverse events")
    def serious_table(self, obj):
        events = obj.snapshot.get("serious_events")
        if events is None:
            return "Not recorded in this snapshot."
        if not events:
            return "None."
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    e["study_id"],
                    e["term"],
                    e["grade"],
                    e["relationship"].replace("_", " "),
                    "expected" if e["expected"] else "unexpected",
                    e["outcome"].replace("_", " "),
                    e["onset_date"],
                )
                for e in events
            ),
        )
        return format_html(
            "<table><tr><th>Study ID</th><th>Term</th><th>Worst grade</th><th>Relationship</th>"
            "<th>Expectedness</th><th>Outcome</th><th>Onset</th></tr>{}</table>",
            rows,
        )

    @admin.display(description="DLT candidates and decisions")
    def dlt_table(self, obj):
        candidates = obj.snapshot.get("dlt_candidates")
        if candidates is None:
            return "Not recorded in this snapshot."
        if not candidates:
            return "None."
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (c["study_id"], c["term"], c["grade"], c["status"], c["decided_by"] or "—", c["reason"])
                for c in candidates
            ),
        )
        return format_html(
            "<table><tr><th>Study ID</th><th>Term</th><th>Grade</th><th>Decision</th>"
            "<th>Investigator</th><th>Reason</th></tr>{}</table>",
            rows,
        )

    @admin.display(description="Safety visits in DLT windows: missed or overdue")
    def visit_table(self, obj):
        visits = obj.snapshot.get("unrecorded_visits")
        if visits is None:
            return "Not recorded in this snapshot."
        if not visits:
            return "None: every safety visit due in the DLT windows was recorded."
        rows = format_html_join(
            "",
            '<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td style="{}">{}</td><td>{}</td></tr>',
            (
                (
                    v["study_id"],
                    v["code"],
                    v["target_date"],
                    v["window_end"],
                    "color:#ba2121;font-weight:bold" if v["status"] == "overdue" else "",
                    v["status"],
                    v["missed_reason"],
                )
                for v in visits
            ),
        )
        return format_html(
            "<table><tr><th>Study ID</th><th>Visit</th><th>Target</th><th>Window closed</th><th>Status</th>"
            "<th>Reason</th></tr>{}</table><p>A decision other than stop takes effect only when every overdue "
            "visit is recorded, or acknowledged in the rationale.</p>",
            rows,
        )

    @admin.display(description="The protocol's design recommends")
    def protocol_recommends(self, obj):
        return services.protocol_recommendation(obj)

    def get_urls(self):
        prefix = f"{self.opts.app_label}_{self.opts.model_name}"
        return [
            path("<int:pk>/sign/", self.admin_site.admin_view(self.sign_view), name=f"{prefix}_sign"),
            path("<int:pk>/propose/", self.admin_site.admin_view(self.propose_view), name=f"{prefix}_propose"),
            path(
                "<int:pk>/dose-finding/",
                self.admin_site.admin_view(self.dose_finding_print_view),
                name=f"{prefix}_dose_finding",
            ),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        review = self.get_object(request, object_id)
        member = request.user.has_perm("safety.sign_review")
        extra = {
            "can_sign": member
            and review is not None
            and review.state == SafetyReview.State.OPEN
            and bool(review.decision)
            and not review.signatures.filter(signer=request.user).exists(),
            "can_propose": member
            and review is not None
            and review.state == SafetyReview.State.OPEN
            and not review.signatures.exists(),
            "sign_form": SignForm(),
            "propose_form": ProposeForm(
                initial={"decision": services.protocol_recommendation(review)} if review else {},
                treated_levels=_treated_levels(review),
            ),
        }
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
                review=review,
                user=request.user,
                password=form.cleaned_data["password"],
                meaning=form.cleaned_data["meaning"],
                comment=form.cleaned_data["comment"],
            )
        except DomainError as refused:
            self.message_user(request, f"Not signed: {refused.message}", messages.ERROR)
            return self._back(pk)
        review.refresh_from_db()
        outcome = {
            SafetyReview.State.EFFECTIVE: " Quorum reached: the decision has taken effect.",
            SafetyReview.State.REJECTED: " The review is rejected: its decision will not take effect.",
        }.get(review.state, " Waiting for more signatures (quorum and the chair).")
        self.message_user(
            request,
            f"Signed ({signature.get_meaning_display().lower()}) by "
            f"{signature.signer_full_name} at {signature.signed_at:%Y-%m-%d %H:%M} UTC.{outcome}",
            messages.SUCCESS,
        )
        return self._back(pk)

    def propose_view(self, request, pk):
        review = get_object_or_404(SafetyReview, pk=pk)
        if request.method != "POST":
            return self._back(pk)
        form = ProposeForm(request.POST, treated_levels=_treated_levels(review))
        if not form.is_valid():
            self.message_user(request, "Choose a decision (and, for the MTD, a treated dose level).", messages.ERROR)
            return self._back(pk)
        try:
            services.review_propose(
                review=review,
                decision=form.cleaned_data["decision"],
                rationale=form.cleaned_data["rationale"],
                mtd_level=form.cleaned_data["mtd_level"],
                acknowledge_visits=form.cleaned_data["acknowledge_visits"],
                by=request.user,
            )
        except DomainError as refused:
            self.message_user(request, f"Not proposed: {refused.message}", messages.ERROR)
        else:
            self.message_user(request, "Decision proposed: committee members can now sign.", messages.SUCCESS)
        return self._back(pk)

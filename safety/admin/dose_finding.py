"""Dose-finding on the committee's review page (issue 15): the recommendations of 3+3, BOIN and TITE-BOIN, the
decision tables frozen with the protocol version, the pathways of the next two cohorts (a table and a tree),
and a printable page of the same. Everything is read from the review's frozen snapshot; nothing is recomputed.
"""

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import get_object_or_404, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from safety import selectors
from safety.models import SafetyReview

NOT_RECORDED = "Not recorded in this snapshot (opened before dose-finding was frozen into reviews)."


def _next(rec: dict) -> str:
    if rec.get("suspended"):
        return "accrual suspended"
    return str(rec.get("recommended_dose") or "none")


def _go(rec: dict) -> str:
    if rec.get("suspended"):
        return "wait for pending outcomes"
    return "continue" if rec.get("continue") else "stop"


def _role(name: str, design: str) -> str:
    if name == design:
        return " (protocol)"
    return " (second opinion, never the protocol's rule)" if name == selectors.TITE_KEY else " (second opinion)"


class ReviewDoseFindingMixin:
    """Display fields and the printable page for ``SafetyReviewAdmin``."""

    @admin.display(description="Recommendations")
    def recommendation_table(self, obj):
        recs = obj.snapshot.get("recommendations", {})
        design = obj.snapshot.get("design")
        rows = format_html_join(
            "",
            '<tr data-design="{}"><td>{}{}</td><td>{}</td><td>{}</td><td>{}</td></tr>',
            (
                (name, name, _role(name, design), _next(rec), _go(rec), rec.get("reason", ""))
                for name, rec in recs.items()
            ),
        )
        return format_html(
            '<table id="recommendations"><tr><th>Design</th><th>Next dose</th><th></th><th>Reason</th></tr>{}</table>',
            rows,
        )

    @admin.display(description="TITE-BOIN: pending participants' follow-up")
    def tite_boin_table(self, obj):
        tite = obj.snapshot.get("recommendations", {}).get(selectors.TITE_KEY)
        if tite is None:
            return NOT_RECORDED
        return render_to_string("safety/dosefinding/_tite_boin.html", {"tite": tite})

    @admin.display(description="Decision tables (frozen with the protocol version)")
    def decision_tables(self, obj):
        df = selectors.dose_finding_display(obj.snapshot)
        if not df:
            return NOT_RECORDED
        link = reverse("admin:safety_safetyreview_dose_finding", args=[obj.pk])
        return format_html(
            '<p class="df-print-link"><a href="{}">Printable page: decision tables, pathways and TITE-BOIN</a></p>{}',
            link,
            render_to_string("safety/dosefinding/_decision_tables.html", {"df": df}),
        )

    @admin.display(description="Dose-transition pathways: the next two cohorts")
    def pathway_display(self, obj):
        df = selectors.dose_finding_display(obj.snapshot)
        if not df:
            return NOT_RECORDED
        context = {"paths": df["paths"], "path_rows": df["path_rows"]}
        return render_to_string("safety/dosefinding/_pathways.html", context)

    def dose_finding_print_view(self, request, pk):
        if not self.has_view_permission(request):
            raise PermissionDenied
        review = get_object_or_404(SafetyReview.objects.select_related("trial", "cohort__dose_level"), pk=pk)
        df = selectors.dose_finding_display(review.snapshot)
        if not df:
            raise Http404(NOT_RECORDED)
        return render(request, "safety/dosefinding/print.html", {
            "heading": f"Safety review {review.pk}: decision tables and pathways", "trial": review.trial,
            "subtitle": f"cohort {review.cohort.sequence} at dose {review.cohort.dose_level.level}, data as of "
                        f"{review.snapshot.get('as_of', '')}, snapshot {review.snapshot_digest[:16]}…",
            "df": df, "back_url": reverse("admin:safety_safetyreview_change", args=[review.pk]),
        })  # fmt: skip

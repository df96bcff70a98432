"""Integrity alerts (a failed daily signature check): listed for the data manager and the committee, never edited."""

import json

from django.contrib import admin
from django.utils.html import format_html

from safety.models import IntegrityAlert


@admin.register(IntegrityAlert)
class IntegrityAlertAdmin(admin.ModelAdmin):
    list_display = ("detected_at", "kind", "problem_count", "signatures_checked", "first_problem")
    list_filter = ("kind",)
    date_hierarchy = "detected_at"
    fields = ("kind", "detected_at", "signatures_checked", "problem_count", "problem_list")
    readonly_fields = fields

    @admin.display(description="first problem")
    def first_problem(self, alert: IntegrityAlert) -> str:
        return alert.problems[0]["message"] if alert.problems else ""

    @admin.display(description="problems")
    def problem_list(self, alert: IntegrityAlert) -> str:
        return format_html("<pre>{}</pre>", json.dumps(alert.problems, indent=2, ensure_ascii=False))

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
